// The `tls` sections: on a listener (termination: certificates chosen by SNI, versions, ALPN)
// and on an upstream or one color of it (verification, SNI, client certificate). Certificates
// and keys are read and matched here, when the config loads, so a bad one is a config error
// with its key path and a reload that names it keeps the running certificates.
import Glibc
import TLS

extension Config {
    /// An upstream's (or a color's) TLS: the TLS client's own settings (serverName, caFile,
    /// verify, cert, key).
    public typealias UpstreamTLS = TLSClientSettings
}

extension ConfigParser {
    /// `"tls": { "certificates": [ { "cert": FILE, "key": FILE } ], "minVersion": "1.2", "alpn": ["http/1.1"], "ciphers": LIST }`
    func listenerTLS(_ value: ConfigValue) -> TLSServerSettings? {
        guard let object = value.object(keys: ["certificates", "minVersion", "alpn", "ciphers", "kernelTLS"]) else { return nil }
        var certificates: [TLSServerSettings.Certificate] = []
        var failed = false
        if let list = object.required("certificates"), let elements = list.array() {
            if elements.isEmpty { list.error("must list at least one certificate") }
            for element in elements {
                guard let c = element.object(keys: ["cert", "key"]),
                      let certField = c.required("cert"), let cert = certField.nonEmptyString(),
                      let keyField = c.required("key"), let key = keyField.nonEmptyString()
                else {
                    failed = true
                    continue
                }
                guard let info = certificate(cert: cert, key: key, at: element, keyField: keyField) else {
                    failed = true
                    continue
                }
                if info.names.isEmpty { certField.warning("\"\(cert)\" names no host (no subjectAltName DNS entry or common name): it serves only as the default") }
                certificates.append(.init(cert: cert, key: key))
            }
        } else {
            failed = true
        }
        var settings = TLSServerSettings(certificates: certificates)
        if let field = object["minVersion"], let text = field.string() {
            switch text {
            case "1.2", "1.3": settings.minVersion = text
            default:
                field.error("must be \"1.2\" or \"1.3\" (older versions are not offered), got \"\(text)\"")
                failed = true
            }
        }
        if let field = object["alpn"], let elements = field.array() {
            var protocols: [String] = []
            for element in elements {
                guard let p = element.nonEmptyString() else { failed = true; continue }
                if p.utf8.count > 255 { element.error("a protocol name is at most 255 bytes"); failed = true; continue }
                if p != "http/1.1" && p != "http/1.0" {
                    element.error("\"\(p)\" is not served: Switchyard speaks HTTP/1.1 (\"http/1.1\")")
                    failed = true
                    continue
                }
                protocols.append(p)
            }
            settings.alpn = protocols
        }
        if let field = object["ciphers"], let text = field.nonEmptyString() { settings.ciphers = text }
        if let field = object["kernelTLS"], let on = field.bool() { settings.kernelTLS = on }
        return failed ? nil : settings
    }

    /// `"tls": { "serverName": NAME, "caFile": FILE, "verify": true, "cert": FILE, "key": FILE }`
    func upstreamTLS(_ value: ConfigValue) -> TLSClientSettings? {
        guard let object = value.object(keys: ["serverName", "caFile", "verify", "cert", "key"]) else { return nil }
        var settings = TLSClientSettings()
        var failed = false
        if let field = object["serverName"], let name = field.nonEmptyString() {
            if ConfigTokens.isHostName(name) { settings.serverName = name } else {
                field.error("\"\(name)\" is not a host name")
                failed = true
            }
        }
        if let field = object["caFile"], let path = field.nonEmptyString() {
            field.names(file: path)
            if access(path, R_OK) != 0 {
                field.error("cannot read \"\(path)\": \(String(cString: strerror(errno)))")
                failed = true
            }
            settings.caFile = path
        }
        if let field = object["verify"], let verify = field.bool() {
            settings.verify = verify
            if !verify {
                field.warning("certificate verification is off: anyone on the path can impersonate this upstream (for tests only)")
            }
        }
        let certField = object["cert"]
        let keyField = object["key"]
        if (certField == nil) != (keyField == nil) {
            object.error("a client certificate needs both \"cert\" and \"key\"")
            failed = true
        } else if let certField, let keyField, let cert = certField.nonEmptyString(), let key = keyField.nonEmptyString() {
            if certificate(cert: cert, key: key, at: certField, keyField: keyField) == nil { failed = true }
            settings.cert = cert
            settings.key = key
        }
        return failed ? nil : settings
    }

    /// Reads and matches a certificate and its key; warns about a key others can read (its
    /// group may, when that is the service's group) and a certificate that expires soon.
    private func certificate(cert: String, key: String, at value: ConfigValue, keyField: ConfigValue) -> TLSCertificate? {
        let info: TLSCertificate
        do throws(TLSError) { info = try TLSCertificate.inspect(cert: cert, key: key) } catch {
            value.error(error.description)
            return nil
        }
        value.names(file: cert)
        keyField.names(file: key)
        var st = stat()
        if stat(key, &st) == 0 {
            let mode = Int(st.st_mode) & 0o777
            if mode & 0o077 != 0 && !FileTrust.readableByServiceGroupOnly(mode: mode, group: st.st_gid, serviceGroup: serviceGroup) {
                keyField.warning("key file \"\(key)\" has mode \(FileTrust.octal(mode)): "
                    + (mode & 0o007 != 0 ? "every local user" : "its group") + " can read the private key; chmod 600 it")
            }
        }
        if info.secondsToExpiry <= 0 {
            value.warning("certificate \"\(cert)\" has expired")
        } else if info.secondsToExpiry < 14 * 86_400 {
            value.warning("certificate \"\(cert)\" expires in \(info.secondsToExpiry / 86_400) days")
        }
        return info
    }
}
