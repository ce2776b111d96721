// libFuzzer target: the control socket's line framing and word splitting, and the JSON replies
// built from what a client sent. Lines must not depend on how the bytes arrived, and every reply
// must be one line of JSON that decodes back to the text it quotes.
import Runtime

private func lines(_ input: UnsafeRawBufferPointer, step: Int, limit: Int) -> [LineFramer.Item] {
    var framer = LineFramer(limit: limit)
    var items: [LineFramer.Item] = []
    var at = 0
    while at < input.count {
        let end = min(input.count, at + step)
        items += framer.feed(UnsafeRawBufferPointer(rebasing: input[at..<end]))
        at = end
    }
    if let last = framer.finish() { items.append(last) }
    precondition(!framer.hasPartialLine, "a line left over after finish")
    return items
}

private func checkReply(_ value: ControlValue) -> ControlValue {
    let line = ControlProtocol.line(value)
    precondition(line.last == UInt8(ascii: "\n"), "a reply without its newline")
    precondition(line.dropLast().firstIndex(of: UInt8(ascii: "\n")) == nil, "a reply over two lines")
    guard let decoded = ControlValue(json: String(decoding: line.dropLast(), as: UTF8.self)) else {
        preconditionFailure("a reply that is not JSON")
    }
    return decoded
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControl(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let limit = data[0] & 0x80 != 0 ? 16 : ControlProtocol.maxLineBytes
    let step = 1 + Int(data[0] & 0x3F)
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let whole = lines(input, step: max(input.count, 1), limit: limit)
    precondition(whole == lines(input, step: step, limit: limit), "lines depend on how the bytes arrived")
    for item in whole {
        guard case .line(let text) = item else { continue }
        // Invalid UTF-8 is replaced (a byte may become three), so count scalars, not bytes.
        precondition(text.unicodeScalars.count <= limit, "a line over the limit")
        let words = ControlProtocol.words(text)
        precondition(words.count <= text.count)
        // Error replies quote the client's words; they must survive the round trip exactly.
        let reply = ControlProtocol.failure("unknown command \"\(text)\"",
                                            details: ["words": .array(words.map { .string($0) })])
        let decoded = checkReply(reply)
        precondition(decoded["error"]?.string == "unknown command \"\(text)\"", "error text changed in JSON")
        precondition(decoded["words"]?.array?.map { $0.string ?? "" } == words, "words changed in JSON")
        // A line that is JSON (what `ctl` reads back) re-encodes to JSON that encodes the same.
        if let value = ControlValue(json: text) {
            let again = checkReply(value)
            precondition(ControlProtocol.line(again) == ControlProtocol.line(checkReply(again)),
                         "encoding is not stable")
        }
    }
    return 0
}
