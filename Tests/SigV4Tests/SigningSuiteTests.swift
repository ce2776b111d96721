// AWS's published SigV4 test suite (aws-c-auth, v4): every header-signing case, canonical request,
// string to sign, signature and Authorization header byte for byte.
import Crypto
import Foundation
import SigV4
import XCTest

final class SigningSuiteTests: XCTestCase {
    private struct Case {
        let name: String
        let request: SigV4Request
        let credentials: AWSCredentials
        let region: String
        let service: String
        let amzDate: [UInt8]
        let normalize: Bool
        let expected: (canonical: [UInt8], stringToSign: [UInt8], signature: [UInt8], authorization: [UInt8])
    }

    private static var suiteDirectory: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures/v4")
    }

    func testEveryHeaderSigningVectorMatchesByteForByte() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.suiteDirectory.path).sorted()
        XCTAssertEqual(names.count, 38, "the suite's 38 header-signing cases are all here")
        var keys = SigningKeyCache()
        for name in names {
            let c = try load(name)
            let s = SigV4.sign(c.request, credentials: c.credentials, region: c.region, service: c.service, amzDate: c.amzDate,
                               normalize: c.normalize, keys: &keys)
            XCTAssertEqual(String(decoding: s.canonicalRequest, as: UTF8.self), String(decoding: c.expected.canonical, as: UTF8.self),
                           "\(name): canonical request")
            XCTAssertEqual(String(decoding: s.stringToSign, as: UTF8.self), String(decoding: c.expected.stringToSign, as: UTF8.self),
                           "\(name): string to sign")
            XCTAssertEqual(String(decoding: s.signature, as: UTF8.self), String(decoding: c.expected.signature, as: UTF8.self),
                           "\(name): signature")
            XCTAssertEqual(String(decoding: s.authorization, as: UTF8.self), String(decoding: c.expected.authorization, as: UTF8.self),
                           "\(name): Authorization")
        }
        // Every case signs on one day, in one region, for one service, with one secret.
        XCTAssertEqual(keys.derivations, 1, "the signing key is derived once and then taken from the cache")
    }

    func testSigningKeyCacheDerivesAgainOnANewDayAndForAnotherService() {
        var keys = SigningKeyCache()
        let a = keys.key(secret: "s", date: Array("20150830".utf8)[...], region: "us-east-1", service: "lambda")
        _ = keys.key(secret: "s", date: Array("20150830".utf8)[...], region: "us-east-1", service: "lambda")
        XCTAssertEqual(keys.derivations, 1)
        let b = keys.key(secret: "s", date: Array("20150831".utf8)[...], region: "us-east-1", service: "lambda")
        let c = keys.key(secret: "s", date: Array("20150831".utf8)[...], region: "us-east-1", service: "sts")
        XCTAssertEqual(keys.derivations, 3)
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(b, c)
        XCTAssertEqual(a, SigV4.signingKey(secret: "s", date: Array("20150830".utf8)[...], region: "us-east-1", service: "lambda"))
    }

    func testAmzDateIsUTC() {
        XCTAssertEqual(String(decoding: SigV4.amzDate(epochSeconds: 1_440_938_160), as: UTF8.self), "20150830T123600Z")
        XCTAssertEqual(String(decoding: SigV4.amzDate(epochSeconds: 0), as: UTF8.self), "19700101T000000Z")
    }

    // MARK: reading a case

    private func read(_ name: String, _ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.suiteDirectory.appendingPathComponent(name).appendingPathComponent(file)))
    }

    private func load(_ name: String) throws -> Case {
        let context = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try read(name, "context.json"))) as? [String: Any])
        let creds = try XCTUnwrap(context["credentials"] as? [String: Any])
        let token = creds["token"] as? String
        let credentials = AWSCredentials(accessKeyID: try XCTUnwrap(creds["access_key_id"] as? String),
                                         secretAccessKey: try XCTUnwrap(creds["secret_access_key"] as? String),
                                         sessionToken: token, source: "test")
        let timestamp = try XCTUnwrap(context["timestamp"] as? String)   // 2015-08-30T12:36:00Z
        let amzDate = Array(timestamp.replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "").utf8)
        var (method, path, query, headers, body) = try parseRequest(read(name, "request.txt"))
        headers.append((Array("X-Amz-Date".utf8), amzDate))
        if let token, !(context["omit_session_token"] as? Bool ?? false) {
            headers.append((Array("X-Amz-Security-Token".utf8), Array(token.utf8)))
        }
        let payloadHash = SigV4.hex(SHA256.digest(body))
        if context["sign_body"] as? Bool ?? false { headers.append((Array("X-Amz-Content-Sha256".utf8), payloadHash)) }
        let signedRequest = String(decoding: try read(name, "header-signed-request.txt"), as: UTF8.self)
        let authLine = try XCTUnwrap(signedRequest.split(separator: "\n").first { $0.hasPrefix("Authorization:") }, name)
        return Case(name: name,
                    request: SigV4Request(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash),
                    credentials: credentials, region: try XCTUnwrap(context["region"] as? String),
                    service: try XCTUnwrap(context["service"] as? String), amzDate: amzDate,
                    normalize: context["normalize"] as? Bool ?? true,
                    expected: (try read(name, "header-canonical-request.txt"), try read(name, "header-string-to-sign.txt"),
                               try read(name, "header-signature.txt"), Array(authLine.dropFirst("Authorization:".count).utf8)))
    }

    /// The suite's request.txt: a request line whose target may hold spaces, header lines (a line
    /// starting with whitespace continues the previous value), a blank line, the body.
    private func parseRequest(_ bytes: [UInt8]) throws
        -> (method: [UInt8], path: [UInt8], query: [UInt8], headers: [(name: [UInt8], value: [UInt8])], body: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.components(separatedBy: "\n")
        let requestLine = lines.removeFirst()
        let firstSpace = try XCTUnwrap(requestLine.firstIndex(of: " "))
        let versionStart = try XCTUnwrap(requestLine.range(of: " HTTP/", options: .backwards)).lowerBound
        let method = Array(requestLine[..<firstSpace].utf8)
        let target = Array(requestLine[requestLine.index(after: firstSpace)..<versionStart].utf8)
        let q = target.firstIndex(of: UInt8(ascii: "?"))
        var headers: [(name: [UInt8], value: [UInt8])] = []
        var bodyLines: [String] = []
        var inBody = false
        for line in lines {
            if inBody { bodyLines.append(line); continue }
            if line.isEmpty { inBody = true; continue }
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += Array("\n\(line)".utf8)
                continue
            }
            let colon = try XCTUnwrap(line.firstIndex(of: ":"))
            headers.append((Array(line[..<colon].utf8), Array(line[line.index(after: colon)...].utf8)))
        }
        return (method, q.map { Array(target[..<$0]) } ?? target, q.map { Array(target[($0 + 1)...]) } ?? [], headers,
                Array(bodyLines.joined(separator: "\n").utf8))
    }
}
