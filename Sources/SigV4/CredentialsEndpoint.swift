// What the providers that ask a server for temporary credentials (STS, a container endpoint,
// EC2 instance metadata) share: reading their settings from the environment, sending one
// request with Fetch, and checking what comes back before it is trusted. The values end up in
// header fields (X-Amz-Security-Token) and the signing key, so each is printable ASCII without
// spaces; an answer that breaks that, or lacks a field, is an error naming the server.
import Fetch
internal import Foundation
import Routing

enum CredentialsEndpoint {
    /// Credentials answers are a few kilobytes; anything much larger is not one.
    static let maxAnswerBytes = 64 * 1024

    /// The value of `name`, nil when unset or empty (an empty variable is an unset one, as for
    /// the SDKs).
    static func value(_ environment: [String: String], _ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `text` read as an http:// or https:// URL; `variable` says where it came from.
    static func url(_ text: String, from variable: String) throws(CredentialsError) -> HTTPURL {
        guard let url = HTTPURL(text) else {
            throw CredentialsError("\(variable) \"\(excerpt(Array(text.utf8)))\" is not an http:// or https:// URL")
        }
        return url
    }

    /// `request` sent to `url`, its whole answer read; what went wrong names `what`.
    static func fetch(_ request: FetchRequest, to url: HTTPURL, what: String, timeout: Double,
                      caFile: String? = nil) throws(CredentialsError) -> FetchResponse {
        do throws(FetchError) {
            return try Fetch.perform(request, to: url, caFile: caFile, timeout: timeout, maxBytes: maxAnswerBytes)
        } catch {
            throw CredentialsError("\(what): \(error)")
        }
    }

    /// Credentials from the JSON object container endpoints and EC2 instance metadata answer:
    /// `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration` (other members are ignored). A
    /// `Code` other than "Success" (instance metadata's) is the server saying why there are none.
    static func credentials(json body: [UInt8], source: String, what: String) throws(CredentialsError) -> AWSCredentials {
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw CredentialsError("\(what): the answer is not a JSON object")
            }
            object = o
        } catch let error as CredentialsError {
            throw error
        } catch {
            throw CredentialsError("\(what): the answer is not JSON (\(body.count) bytes)")
        }
        func field(_ name: String) throws(CredentialsError) -> String {
            guard let v = object[name] else { throw CredentialsError("\(what): the answer has no \(name)") }
            guard let s = v as? String else { throw CredentialsError("\(what): \(name) is not a string") }
            return s
        }
        if object["Code"] != nil, let code = try? field("Code"), code != "Success" {
            throw CredentialsError("\(what): \(code): \(excerpt(Array(((try? field("Message")) ?? "no message").utf8)))")
        }
        return try credentials(key: try field("AccessKeyId"), secret: try field("SecretAccessKey"), token: try field("Token"),
                               expiration: try field("Expiration"), source: source, what: what)
    }

    /// The four values checked: non-empty printable ASCII without spaces, the expiry a date.
    static func credentials(key: String, secret: String, token: String, expiration: String,
                            source: String, what: String) throws(CredentialsError) -> AWSCredentials {
        for (name, value) in [("AccessKeyId", key), ("SecretAccessKey", secret), ("Token", token)] {
            guard !value.isEmpty else { throw CredentialsError("\(what): \(name) is empty") }
            guard value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw CredentialsError("\(what): \(name) holds a space, a control character or a non-ASCII byte")
            }
        }
        guard let expires = CredentialsExpiration.parse(expiration) else {
            throw CredentialsError("\(what): Expiration \"\(excerpt(Array(expiration.utf8)))\" is not an ISO 8601 UTC time")
        }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token, expiration: expires, source: source)
    }

    /// Up to 120 bytes of an answer or value for a message, each byte that is not printable
    /// ASCII shown as "?".
    static func excerpt(_ bytes: [UInt8]) -> String {
        let shown = bytes.prefix(120).map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "?") }
        return String(decoding: shown, as: UTF8.self) + (bytes.count > 120 ? "..." : "")
    }
}
