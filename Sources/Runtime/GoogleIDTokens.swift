// Google ID tokens for `auth.google`: asked of the metadata server the way google-auth does
// (GET .../service-accounts/default/identity?audience=AUD&format=full with Metadata-Flavor:
// Google; GCE_METADATA_HOST, host[:port], names another server), refused unless the answer
// carries Metadata-Flavor: Google too, and kept until shortly before the `exp` of their payload
// (CredentialRefresher). The token itself is never logged, shown or counted.
import Fetch
import Foundation
import Proxy
import Routing
import SigV4

final class GoogleIDTokenSource: ExpiringCredential {
    let audience: String
    let metadataHost: String
    let token: LiveCredential<BearerToken>
    var provider: String { "google" }
    var name: String { audience }

    /// Fetches the first token (a failure is the config's error) from GCE_METADATA_HOST, else
    /// metadata.google.internal.
    init(audience: String, environment: [String: String]) throws(CredentialsError) {
        self.audience = audience
        let host = environment["GCE_METADATA_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "metadata.google.internal"
        metadataHost = host
        token = LiveCredential(try Self.fetch(audience: audience, host: host))
    }

    func renew() throws(CredentialsError) -> Int? {
        let next = try Self.fetch(audience: audience, host: metadataHost)
        token.replace(next)
        return next.expiration
    }

    static func fetch(audience: String, host: String) throws(CredentialsError) -> BearerToken {
        guard let url = HTTPURL("http://\(host)") else { throw CredentialsError("GCE_METADATA_HOST \"\(host)\" is not a host[:port]") }
        let path = "/computeMetadata/v1/instance/service-accounts/default/identity?audience=\(queryEncoded(audience))&format=full"
        let answer: FetchResponse
        do throws(FetchError) {
            answer = try Fetch.perform(FetchRequest(path: path, headers: [("Metadata-Flavor", "Google")]), to: url, timeout: 5, maxBytes: 64 * 1024)
        } catch {
            throw CredentialsError("metadata server \(host): \(error)")
        }
        guard answer.status == 200 else { throw CredentialsError("metadata server \(host) answered \(answer.status)") }
        guard answer.header("Metadata-Flavor") == "Google" else {
            throw CredentialsError("metadata server \(host) answered without Metadata-Flavor: Google (not a metadata server)")
        }
        let text = answer.bodyText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let exp = expiration(ofJWT: text) else {
            throw CredentialsError("metadata server \(host) answered something that is not an ID token with an exp")
        }
        return BearerToken(token: text, expiration: exp)
    }

    /// The `exp` of a JWT's payload (seconds since the epoch); nil unless `token` is three
    /// base64url parts whose second is a JSON object with an integer `exp`. Never traps.
    static func expiration(ofJWT token: String) -> Int? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= 16 * 1024,
              token.utf8.allSatisfy({ isBase64URL($0) || $0 == UInt8(ascii: ".") }) else { return nil }
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        // An exp that is not an integer in range (a string, true, 1.5, 1e400) fails to decode.
        guard let payload = Data(base64Encoded: base64), let claims = try? JSONDecoder().decode(Claims.self, from: payload),
              claims.exp > 0, claims.exp < 100_000_000_000 else { return nil }
        return Int(exactly: claims.exp)
    }

    private struct Claims: Decodable { let exp: Int64 }

    private static func isBase64URL(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
    }

    /// Everything but unreserved characters percent-encoded (RFC 3986), for a query value.
    private static func queryEncoded(_ text: String) -> String {
        var out = ""
        for c in text.utf8 {
            if isBase64URL(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "~") { out.unicodeScalars.append(Unicode.Scalar(c)) } else {
                out += "%" + String(c, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

private extension String {
    func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
