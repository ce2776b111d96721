// One admin client connection on the admin loop: reads request heads (HTTP1's RequestParser),
// answers them in order with keep-alive, and writes without blocking, so a client that reads a
// large /metrics slowly holds only its own connection.
import Glibc
import HTTP1
import Reactor

final class AdminConnection: Pollable {
    /// Requests answered per turn before others on the loop get theirs (a pipelining client).
    private static let requestsPerTurn = 16

    private unowned(unsafe) let server: AdminServer
    private var parser: RequestParser
    private var head = RequestHead()
    /// Unparsed bytes in [0, inputCount); as large as the longest head allowed.
    private var input: [UInt8]
    private var inputCount = 0
    /// Body bytes of the last request still to skip before the next head.
    private var discard: Int64 = 0
    /// The answers not yet written: output[written...].
    private var output: [UInt8] = []
    private var written = 0
    private var closeAfterWrite = false
    private var peerClosed = false
    /// A head is being waited for on its own clock: bytes trickling in do not extend it.
    private var headClock = false
    /// Loop time of the accept or of the last answer (which connection to close at the cap).
    private(set) var lastActive: UInt64 = 0

    init(server: AdminServer) {
        self.server = server
        parser = RequestParser(limits: server.httpLimits)
        input = [UInt8](repeating: 0, count: server.httpLimits.maxHeadBytes)
        super.init(loop: server.loop)
    }

    /// Waiting for a request, with nothing of it received and nothing left to write.
    var isIdle: Bool { inputCount == 0 && discard == 0 && written == output.count }

    func start() {
        lastActive = loop.now
        headClock = true
        loop.setDeadline(self, afterMs: server.limits.headerMs)
        drive()
    }

    override func handleEvents(_ events: UInt32) { drive() }

    override func resume() { drive() }

    override func timerFired(now: UInt64) {
        if written < output.count { return finish() }   // its client stopped reading
        guard inputCount > 0 || discard > 0 else { return finish() }   // idle
        inputCount = 0
        discard = 0
        respond(status: 408, contentType: "text/plain", body: "request timeout\n", keepAlive: false, headOnly: false)
        drive()
    }

    func finish() {
        guard fd >= 0 else { return }
        server.remove(self)
        loop.close(self)
    }

    // MARK: the state machine

    /// Writes what is queued, answers what is buffered, reads more; returns when the socket
    /// would block (edge-triggered: the next event comes when it can make progress again).
    private func drive() {
        var answered = 0
        while fd >= 0 {
            if written < output.count {
                guard flush() else { return }
            }
            if closeAfterWrite { return finish() }
            if answered == Self.requestsPerTurn {
                loop.resumeSoon(self)
                return
            }
            if answerBuffered() {
                answered += 1
                continue
            }
            if peerClosed { return finish() }
            guard readMore() else { return }
        }
    }

    /// False when the socket would block (the deadline then runs for the unread answer) or
    /// the connection ended.
    private func flush() -> Bool {
        while written < output.count {
            let r: IOResult? = output.withUnsafeBytes { b in
                try? Sys.write(fd, b.baseAddress! + written, b.count - written)
            }
            switch r {
            case .done(let n)?:
                written += n
            case .wouldBlock?:
                loop.setDeadline(self, afterMs: server.limits.idleMs)
                return false
            case nil:
                finish()
                return false
            }
        }
        output.removeAll(keepingCapacity: output.count <= 65_536)
        written = 0
        return true
    }

    /// False when the socket would block or the connection ended.
    private func readMore() -> Bool {
        let r: IOResult? = input.withUnsafeMutableBytes { b in
            try? Sys.read(fd, b.baseAddress! + inputCount, b.count - inputCount)
        }
        switch r {
        case .done(0)?:
            peerClosed = true
        case .done(let n)?:
            inputCount += n
        case .wouldBlock?:
            armReadClock()
            return false
        case nil:
            finish()
            return false
        }
        return true
    }

    private func armReadClock() {
        if headClock { return }
        if inputCount > 0 || discard > 0 {
            headClock = true
            loop.setDeadline(self, afterMs: server.limits.headerMs)
        } else {
            loop.setDeadline(self, afterMs: server.limits.idleMs)
        }
    }

    /// Answers one buffered request, if a whole head is there; true when it queued an answer.
    private func answerBuffered() -> Bool {
        if discard > 0 {
            let n = Int(min(Int64(inputCount), discard))
            consume(n)
            discard -= Int64(n)
            if discard > 0 { return false }
        }
        guard inputCount > 0 else { return false }
        let status = input.withUnsafeBytes { parser.parse(UnsafeRawBufferPointer(rebasing: $0[0..<inputCount]), into: &head) }
        switch status {
        case .incomplete:
            return false
        case .failed(let error) where error.mustClose:
            // The framing is in doubt: nothing more can be read from this connection.
            inputCount = 0
            respond(status: error.status, contentType: "text/plain", body: "bad request\n", keepAlive: false, headOnly: false)
            return true
        case .complete, .failed:
            // A head whose framing is sound is served even when it is not strictly valid
            // (say an HTTP/1.1 request without Host): the admin port routes on the path only.
            answerHead()
            return true
        }
    }

    private func answerHead() {
        var keepAlive = head.keepAlive
        switch head.framing {
        case .none, .untilClose:
            break
        case .contentLength(let n):
            // A client waiting for 100 Continue may never send the body it announced.
            if head.expectContinue { keepAlive = false } else { discard = n }
        case .chunked:
            keepAlive = false
        }
        let a = input.withUnsafeBytes { b in
            server.answer(method: head.method, path: UnsafeRawBufferPointer(rebasing: b[Int(head.targetStart)..<Int(head.pathEnd)]))
        }
        consume(Int(head.headLength))
        respond(status: a.status, contentType: a.contentType, body: a.body, keepAlive: keepAlive,
                headOnly: head.method == .head)
        if !keepAlive { discard = 0 }
    }

    private func consume(_ n: Int) {
        guard n > 0 else { return }
        let left = inputCount - n
        if left > 0 {
            input.withUnsafeMutableBytes { b in _ = memmove(b.baseAddress!, b.baseAddress! + n, left) }
        }
        inputCount = left
    }

    private func respond(status: Int, contentType: String, body: String, keepAlive: Bool, headOnly: Bool) {
        var text = "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\nContent-Type: \(contentType)\r\n"
        if status == 405 { text += "Allow: GET, HEAD\r\n" }
        text += "Content-Length: \(body.utf8.count)\r\n"
        if !keepAlive {
            text += "Connection: close\r\n"
        } else if head.version == .http10 {
            text += "Connection: keep-alive\r\n"
        }
        text += "\r\n"
        output.append(contentsOf: text.utf8)
        if !headOnly { output.append(contentsOf: body.utf8) }
        if !keepAlive { closeAfterWrite = true }
        headClock = false
        lastActive = loop.now
    }
}
