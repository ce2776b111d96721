// A shadow copy's exchange on an upstream connection: the same connection, pool, dial and
// ResponseFramer as a primary's, one copy at a time (as HAProxy and Envoy talk to servers:
// pipelined copies waited behind each other's answers). The copy's bytes are written after the
// batch of events that produced them, so the primary's own write goes first; its answer is
// framed and discarded (its status and body hash kept for a shadow comparison), and the
// connection goes back to the pool for the next request, primary or copy.
import Glibc
import HTTP1
import Reactor

extension UpstreamConnection {
    /// Takes `c` (from the pool, or connecting). The shadow's latency counts from here.
    func attach(_ c: MirrorCopy) {
        serving = .copy(c)
        c.connection = self
        c.sent = 0
        c.compare?.startNs = Sys.monotonicNs()
        beginExchange(method: c.method, upgrade: false)
        if isActive {
            loop.setDeadline(self, afterMs: worker.settings.responseMs)
            c.markDirty()
        }
    }

    func copyEvents(_ c: MirrorCopy) {
        if transport.canWrite { sendCopy(c) }
        if transport.canRead && isActive && isServing(c) { readCopyAnswer(c) }
    }

    private func isServing(_ c: MirrorCopy) -> Bool {
        if case .copy(let current) = serving { return current === c }
        return false
    }

    func copyConnected(_ c: MirrorCopy) {
        worker.shadowEndpointReachable(endpointID)
        loop.setDeadline(self, afterMs: worker.settings.responseMs)
        sendCopy(c)
        if transport.canRead && isActive && isServing(c) { readCopyAnswer(c) }
    }

    /// Nothing to carry when the connect completed: a probe of a shadow endpoint this loop had
    /// seen refuse (or a copy cancelled meanwhile). The endpoint takes connections again, and
    /// this one waits in the pool for the next copy.
    func probeConnected() {
        worker.shadowEndpointReachable(endpointID)
        park()
    }

    /// A shadow's connect failed or timed out: its endpoint is down for this loop's copies.
    func shadowConnectFailed(timedOut: Bool) {
        worker.mirrorEndpointFailed(endpointID)
        let copy: MirrorCopy?
        if case .copy(let c) = serving { copy = c } else { copy = nil }
        serving = .nothing
        close()
        guard let copy else { return }
        copy.connection = nil
        if timedOut { copy.compare?.timedOut = true }
        copy.finish(.mirrorsFailed)
    }

    /// Writes what the copy has of its bytes (more come as the primary's body streams).
    func sendCopy(_ c: MirrorCopy) {
        guard isActive, isServing(c) else { return }
        while transport.canWrite && c.sent < c.data.readableCount {
            let r: IOResult
            do { r = try transport.write(c.data.readPointer + c.sent, c.data.readableCount - c.sent, nil, 0) } catch {
                return copyLost(c, reset: error.errno == ECONNRESET || error.errno == EPIPE)
            }
            switch r {
            case .wouldBlock: return
            case .done(let n): c.sent += n
            }
        }
        if c.fullySent && !requestSent && !headDone {
            // The whole copy is out: the shadow's answer is due within responseMs from here.
            requestSent = true
            loop.setDeadline(self, afterMs: worker.settings.responseMs)
        }
    }

    private func readCopyAnswer(_ c: MirrorCopy) {
        while transport.canRead && isActive {
            let space = inBuf.roomToRead(capacity: headDone ? worker.buffers.blockSize : worker.headRoom(for: inBuf),
                                         pool: worker.buffers)
            guard space > 0 else { return copyRefused(c) }   // a head over the limit
            let r: IOResult
            do { r = try transport.read(into: &inBuf, space: space) } catch {
                return copyLost(c, reset: error.errno == ECONNRESET)
            }
            switch r {
            case .wouldBlock:
                break
            case .done(0):
                eof = true
                // A body delimited by the close is complete now.
                if headDone && framer.endOfStream() { return copyAnswered(c) }
                return copyLost(c, reset: false)
            case .done:
                receivedAny = true
                if !frameCopyAnswer(c) { return }
            }
        }
        if inBuf.isEmpty { inBuf.release(to: worker.buffers) }
    }

    /// Consumes what is buffered of the answer; false once the copy's exchange ended.
    private func frameCopyAnswer(_ c: MirrorCopy) -> Bool {
        while !inBuf.isEmpty {
            switch framer.feed(inBuf.readableBytes) {
            case .needMore:
                return true
            case .failed:
                copyRefused(c)
                return false
            case .interim(let length):
                inBuf.consume(length)
            case .head(let length):
                inBuf.consume(length)
                headDone = true
                if framer.isComplete {
                    copyAnswered(c)
                    return false
                }
            case .body(let count, let done):
                if let side = c.compare, side.spec.bodyHash {
                    side.hash = BodyHash.fold(side.hash, UnsafeRawBufferPointer(rebasing: inBuf.readableBytes.prefix(count)))
                }
                inBuf.consume(count)
                if done {
                    copyAnswered(c)
                    return false
                }
                if count == 0 { return true }
            }
        }
        return true
    }

    /// The copy's answer is complete. The connection is kept only when the shadow can read
    /// the next request cleanly: the copy was written whole (answered early, the shadow may
    /// read the rest as a new request) and the answer neither announced the close nor ended
    /// with it (exchangeFinished). So no copy is ever written behind an announced close.
    private func copyAnswered(_ c: MirrorCopy) {
        complete = true
        c.compare?.status = framer.head.status
        c.connection = nil
        worker.endpointSucceeded(endpointID)
        exchangeFinished(reusable: c.fullySent)
        c.finish(.mirrorsCompleted)
    }

    /// The shadow's answer was not HTTP, or over the limits: the copy failed, and nothing more
    /// is read from this connection.
    private func copyRefused(_ c: MirrorCopy) {
        serving = .nothing
        c.connection = nil
        close()
        c.finish(.mirrorsFailed)
    }

    /// No answer within responseMs.
    func copyTimedOut(_ c: MirrorCopy) {
        c.compare?.timedOut = true
        copyRefused(c)
    }

    /// The connection ended before the answer. A reset on a connection of its own (not one
    /// taken from the pool, which the shadow may have closed while it waited) says the endpoint
    /// went away: this loop dials it no more until it is known back.
    private func copyLost(_ c: MirrorCopy, reset: Bool) {
        if reset && !reused { worker.markShadowDown(endpointID) }
        serving = .nothing
        c.connection = nil
        close()
        c.connectionLost()
    }

    /// `c` is cancelled (its primary ended before its body did, or its body went over a limit):
    /// a connection that wrote nothing of it serves the next exchange; one that wrote part of it
    /// is closed, or the shadow would read the next request as the rest of this one.
    func cancel(_ c: MirrorCopy) {
        guard isServing(c) else { return }
        c.connection = nil
        if !isActive {
            // Still connecting: it goes on, and waits in the pool once connected.
            serving = .nothing
        } else if c.sent == 0 && !receivedAny {
            park()
        } else {
            serving = .nothing
            close()
        }
    }
}
