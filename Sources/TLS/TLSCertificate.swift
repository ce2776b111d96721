// What `check` and the loader need to know about a certificate file and its key: that both
// parse, that the key matches, which names the certificate serves and when it expires.
internal import COpenSSL
import Glibc

public struct TLSCertificate: Sendable {
    /// DNS names from subjectAltName (else the subject's common name).
    public var names: [String]
    /// Seconds until notAfter (negative: already expired).
    public var secondsToExpiry: Int

    /// Reads `cert` (PEM, leaf first) and `key` (PEM) and checks that they belong together.
    public static func inspect(cert: String, key: String) throws(TLSError) -> TLSCertificate {
        guard let certFile = fopen(cert, "r") else {
            throw TLSError("cannot read the certificate \(cert): \(String(cString: strerror(errno)))")
        }
        let x509 = PEM_read_X509(certFile, nil, nil, nil)
        fclose(certFile)
        guard let x509 else { throw TLSError.fromQueue("\(cert) is not a PEM certificate") }
        defer { X509_free(x509) }
        guard let keyFile = fopen(key, "r") else {
            throw TLSError("cannot read the key \(key): \(String(cString: strerror(errno)))")
        }
        let pkey = PEM_read_PrivateKey(keyFile, nil, nil, nil)
        fclose(keyFile)
        guard let pkey else { throw TLSError.fromQueue("\(key) is not a PEM private key (or it is encrypted)") }
        defer { EVP_PKEY_free(pkey) }
        guard X509_check_private_key(x509, pkey) == 1 else {
            TLSError.clearQueue()
            throw TLSError("the key \(key) does not match the certificate \(cert)")
        }
        return TLSCertificate(names: names(of: x509), secondsToExpiry: secondsToExpiry(x509))
    }

    private static func names(of x509: OpaquePointer) -> [String] {
        var result: [String] = []
        if let raw = X509_get_ext_d2i(x509, NID_subject_alt_name, nil, nil) {
            let list = OpaquePointer(raw)
            let count = OPENSSL_sk_num(list)
            for i in 0..<count {
                guard let item = OPENSSL_sk_value(list, i) else { continue }
                let gen = item.assumingMemoryBound(to: GENERAL_NAME.self)
                guard gen.pointee.type == sy_GEN_DNS(), let ia5 = gen.pointee.d.dNSName,
                      let data = ASN1_STRING_get0_data(ia5) else { continue }
                let n = Int(ASN1_STRING_length(ia5))
                result.append(String(decoding: UnsafeBufferPointer(start: data, count: n), as: UTF8.self))
            }
            GENERAL_NAMES_free(list)
        }
        if result.isEmpty, let subject = X509_get_subject_name(x509) {
            var buf = [CChar](repeating: 0, count: 256)
            let n = X509_NAME_get_text_by_NID(subject, NID_commonName, &buf, Int32(buf.count))
            if n > 0 { result.append(String(cString: buf)) }
        }
        return result
    }

    private static func secondsToExpiry(_ x509: OpaquePointer) -> Int {
        guard let notAfter = X509_get0_notAfter(x509) else { return 0 }
        var days: Int32 = 0
        var seconds: Int32 = 0
        guard ASN1_TIME_diff(&days, &seconds, nil, notAfter) == 1 else { return 0 }
        return Int(days) * 86_400 + Int(seconds)
    }
}
