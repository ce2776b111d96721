// Secrets the config names by file or environment variable (cookie keys, override and preview
// tokens, values of headers set on upstreams): read when the config loads, so a reload reads
// them again, and printed only as where they come from.
import Glibc

extension Config {
    /// A secret and where it came from. Printing it shows only the source.
    public struct Secret: Sendable, Equatable, CustomStringConvertible {
        public enum Source: Sendable, Equatable {
            case file(String)
            case environment(String)
        }
        public var source: Source
        public var bytes: [UInt8]

        public init(source: Source, bytes: [UInt8]) {
            self.source = source
            self.bytes = bytes
        }

        public var description: String {
            switch source {
            case .file(let path): return "secretFile \(path)"
            case .environment(let name): return "secretEnv \(name)"
            }
        }
    }
}

extension ConfigParser {
    /// What a secret is used for, which decides how it is checked.
    struct SecretUse {
        /// Shorter values are refused: keys that sign or compare need to be unguessable.
        var minimumBytes: Int
        /// What whoever reads the file could do, for the warning about a file others can read.
        var exposure: String
        /// A file another user owns or can write is refused: its bytes are sent as the proxy's
        /// own credential.
        var trustedWriterOnly: Bool

        /// Cookie-signing keys and override and preview tokens.
        static let key = SecretUse(minimumBytes: ConfigParser.minimumSecretBytes, exposure: "sign cookies", trustedWriterOnly: false)
    }

    /// The file's bytes without trailing newlines; relative paths are relative to the working
    /// directory, like every other path in the config.
    func secretFile(_ value: ConfigValue, for use: SecretUse = .key) -> Config.Secret? {
        guard let path = value.nonEmptyString() else { return nil }
        switch ConfigFiles.readWithOwner(path) {
        case .failure(let reason):
            value.error("cannot read \"\(path)\": \(reason)")
            return nil
        case .success(let file):
            let secret = Self.strippingTrailingNewlines(file.bytes)
            guard longEnough(secret, for: use, "\"\(path)\"", made: "`openssl rand -hex 32 > \(path)`", at: value) else { return nil }
            if use.trustedWriterOnly {
                let problem = FileTrust.writerProblem("secret file \"\(path)\"", owner: file.owner, mode: file.mode, serviceUID: serviceUID)
                    ?? FileTrust.directoryProblem(FileTrust.directory(of: path), holding: "secret file", stickyIsEnough: true,
                                                  serviceUID: serviceUID)
                if let problem {
                    value.error("\(problem); whoever can write it chooses the credential the proxy sends")
                    return nil
                }
            }
            // Whoever reads the secret can use it; a warning, not an error, so that a running
            // fleet is not stopped by a permission change.
            value.names(file: path)
            if let problem = FileTrust.secretFileProblem(path, mode: file.mode, group: file.group, serviceGroup: serviceGroup,
                                                         use: use.exposure) {
                value.warning(problem)
            }
            return Config.Secret(source: .file(path), bytes: secret)
        }
    }

    func secretEnv(_ value: ConfigValue, for use: SecretUse = .key) -> Config.Secret? {
        guard let name = value.nonEmptyString() else { return nil }
        guard let raw = getenv(name) else {
            value.error("environment variable \(name) is not set")
            return nil
        }
        let secret = Self.strippingTrailingNewlines(Array(UnsafeBufferPointer(start: raw, count: strlen(raw)))
            .map { UInt8(bitPattern: $0) })
        guard longEnough(secret, for: use, "environment variable \(name)", made: "the output of `openssl rand -hex 32`", at: value)
        else { return nil }
        return Config.Secret(source: .environment(name), bytes: secret)
    }

    /// Whether `secret` is long enough for `use`; else an error naming `what` holds it and how
    /// a good one is `made`.
    private func longEnough(_ secret: [UInt8], for use: SecretUse, _ what: String, made: String, at value: ConfigValue) -> Bool {
        if secret.isEmpty {
            value.error("\(what) is empty")
            return false
        }
        if secret.count < use.minimumBytes {
            value.error("\(what) holds \(secret.count) byte(s); a secret needs at least \(use.minimumBytes) (128 bits), e.g. \(made)")
            return false
        }
        return true
    }

    /// The shortest secret accepted (cookie HMAC keys, override and preview tokens): 16 bytes,
    /// 128 bits if random; a 1-byte key could be guessed by anyone who sends 256 cookies.
    static let minimumSecretBytes = 16

    package static func strippingTrailingNewlines(_ bytes: [UInt8]) -> [UInt8] {
        var end = bytes.count
        while end > 0 && (bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r")) { end -= 1 }
        return Array(bytes[0..<end])
    }
}
