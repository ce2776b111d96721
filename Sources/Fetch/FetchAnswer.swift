// What a server answered a fetch, read off the bytes it sent before its close: the status line,
// the fields, and the body (up to its Content-Length when it gives one; shorter is an answer
// cut short). Pure: no socket.

enum FetchAnswer {
    /// `headOnly`: the body is still arriving (a stream): its length is not checked.
    static func parse(_ answer: [UInt8], headOnly: Bool = false) throws(FetchError) -> FetchResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let headEnd = answer.firstRange(of: separator) else { throw FetchError("no complete HTTP head in the answer") }
        let headText = String(decoding: answer[..<headEnd.lowerBound], as: UTF8.self)
        var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].utf8.count == 3,
              parts[1].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let status = Int(parts[1]) else {
            throw FetchError("not an HTTP status line: \"\(statusLine.prefix(80))\"")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw FetchError("a field line without a colon in the answer") }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingWhitespace()))
        }
        var body = Array(answer[headEnd.upperBound...])
        let response = FetchResponse(status: status, headers: headers, body: [])
        if let te = response.header("Transfer-Encoding"), te.lowercased() != "identity" {
            throw FetchError("answered with Transfer-Encoding \(te) to an HTTP/1.0 request")
        }
        if headOnly { return FetchResponse(status: status, headers: headers, body: []) }
        if let text = response.header("Content-Length") {
            guard !text.isEmpty, text.utf8.count <= 12, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let length = Int(text) else { throw FetchError("Content-Length \"\(text.prefix(20))\" is not a length") }
            guard body.count >= length else { throw FetchError("answer cut short: \(body.count) of \(length) body bytes") }
            body.removeLast(body.count - length)
        }
        return FetchResponse(status: status, headers: headers, body: body)
    }
}

extension StringProtocol {
    /// Without the spaces and tabs at either end (the white space of HTTP fields and INI lines).
    public func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
