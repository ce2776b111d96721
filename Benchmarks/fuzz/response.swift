// libFuzzer target: ResponseFramer over pipelined responses, fed at once, in small pieces, and
// with Content-Length bytes moved around it as a splicing caller does; all three must agree on
// where every message ends, and no answer may claim more bytes than it was given.

/// What one way of feeding saw: per message (interim statuses, status, head end, message end)
/// as offsets into the input, then how it stopped.
private struct Outcome: Equatable {
    var messages: [[Int]] = []
    var failure: HTTPParseError?
    var endMode = ResponseFramer.Mode.head
}

private enum Feeding { case whole, pieces(Int), spliced(Int) }

private func run(_ input: UnsafeRawBufferPointer, method: Method, upgrade: Bool, _ feeding: Feeding) -> Outcome {
    var framer = ResponseFramer(limits: HTTPLimits(maxHeadBytes: 512, maxHeaders: 16))
    framer.reset(requestMethod: method, upgradeRequested: upgrade)
    var out = Outcome()
    var message: [Int] = []
    var framed = 0      // input bytes framed so far: the caller's consume
    var arrived = 0     // input bytes received so far
    let step: Int
    switch feeding {
    case .whole: step = input.count
    case .pieces(let k), .spliced(let k): step = k
    }
    var bodyLength = 0
    while true {
        if framed == arrived {
            if arrived == input.count { break }
            arrived = min(input.count, arrived + step)
        }
        let given = UnsafeRawBufferPointer(rebasing: input[framed..<arrived])
        if case .spliced(let k) = feeding, let remaining = framer.remainingLength {
            // A splicing caller moves body bytes without showing them to the framer.
            precondition(remaining > 0, "contentLength mode with nothing remaining")
            let n = Int(min(remaining, Int64(min(k, given.count))))
            if n > 0 {
                framed += n
                bodyLength += n
                if framer.bodyBytesMovedExternally(n) {
                    precondition(framer.isComplete && framer.remainingLength == nil)
                    message.append(bodyLength)
                    message.append(framed)
                    out.messages.append(message)
                    message = []
                    bodyLength = 0
                    framer.reset(requestMethod: method, upgradeRequested: upgrade)
                }
                continue
            }
        }
        let answer = framer.feed(given)
        switch answer {
        case .needMore:
            precondition(framer.mode == .head || given.count == 0, "needMore for body bytes")
            if arrived == input.count {
                out.endMode = framer.mode
                return out
            }
            arrived = min(input.count, arrived + step)
        case .interim(let n):
            precondition(n > 0 && n <= given.count, "interim head beyond the bytes given")
            precondition(framer.mode == .head)
            let status = framer.head.status
            precondition(status >= 100 && status < 200 && status != 101)
            checkHead(framer.head, n)
            message.append(status)
            framed += n
        case .head(let n):
            precondition(n > 0 && n <= given.count, "head beyond the bytes given")
            checkHead(framer.head, n)
            precondition(framer.head.status >= 200 || framer.head.status == 101)
            message.append(framer.head.status)
            framed += n
            message.append(framed)
            if framer.isComplete {
                message.append(0)
                message.append(framed)
                out.messages.append(message)
                message = []
                framer.reset(requestMethod: method, upgradeRequested: upgrade)
            }
        case .body(let n, let complete):
            precondition(n >= 0 && n <= given.count, "body count beyond the bytes given")
            precondition(complete || n == given.count, "an incomplete body left bytes unframed")
            precondition(complete == framer.isComplete)
            framed += n
            bodyLength += n
            if complete {
                message.append(bodyLength)
                message.append(framed)
                out.messages.append(message)
                message = []
                bodyLength = 0
                framer.reset(requestMethod: method, upgradeRequested: upgrade)
            }
        case .failed(let e):
            precondition(e.status == 502 && e.mustClose)
            precondition(framer.feed(given) == answer, "a failed framer recovered")
            precondition(!framer.endOfStream())
            out.failure = e
            out.endMode = .failed
            return out
        }
    }
    out.endMode = framer.mode
    // Close-delimited bodies and tunnels end at EOF; a body cut short must not look complete.
    let mode = framer.mode
    let ends = framer.endOfStream()
    precondition(ends == (mode == .untilClose || mode == .tunnel || mode == .complete))
    return out
}

private func checkHead(_ head: ResponseHead, _ length: Int) {
    precondition(Int(head.headLength) == length)
    precondition(head.reasonStart <= head.reasonEnd && Int(head.reasonEnd) <= length)
    for h in head.headers {
        precondition(h.nameStart < h.nameEnd && h.nameEnd <= h.valueStart && h.valueStart <= h.valueEnd)
        precondition(Int(h.valueEnd) <= length)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponse(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let methods: [Method] = [.get, .head, .post, .connect]
    let method = methods[Int(data[0] & 3)]
    let upgrade = data[0] & 4 != 0
    let step = 1 + Int(data[1] % 13)
    let input = UnsafeRawBufferPointer(start: data + 2, count: size - 2)
    let whole = run(input, method: method, upgrade: upgrade, .whole)
    let pieces = run(input, method: method, upgrade: upgrade, .pieces(step))
    precondition(whole == pieces, "framing depends on how the bytes arrived")
    let spliced = run(input, method: method, upgrade: upgrade, .spliced(step))
    precondition(whole == spliced, "framing depends on bytes moved around the framer")
    return 0
}
