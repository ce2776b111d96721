// The event loop at its edges, over socket pairs: stale events after a descriptor is reused in
// the same batch, deadlines set after the loop slept past the timer wheel's horizon, and work
// posted from other threads.
import CLinux
import Glibc
import Reactor
import Synchronization
import TestSupport
import XCTest

/// A loop on its own thread with a clock the test moves.
final class TestClock: Sendable {
    let ms = Atomic<UInt64>(1_000_000)
}

final class LoopHarness: @unchecked Sendable {
    let clock = TestClock()
    let loop: EventLoop
    private var thread: LoopThread?

    init() throws {
        let c = clock
        loop = try EventLoop(index: 0, clock: { c.ms.load(ordering: .relaxed) })
    }

    func start() {
        nonisolated(unsafe) let l = loop
        thread = LoopThread.start { l.run() }
    }

    /// Runs `work` on the loop and waits for it.
    func sync<T>(_ work: @escaping () -> T) -> T {
        nonisolated(unsafe) var result: T?
        nonisolated(unsafe) let w = work
        let sem = Semaphore()
        loop.execute {
            result = w()
            sem.signal()
        }
        sem.wait()
        return result!
    }

    func advance(ms: UInt64) {
        clock.ms.add(ms, ordering: .relaxed)
        loop.execute {}   // wakes the loop so it reads the clock
    }

    func stop() {
        nonisolated(unsafe) let l = loop
        l.execute { l.stop() }
        thread?.join()
    }
}

/// A counting semaphore on a mutex and condition.
final class Semaphore: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var count = 0
    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }
    func signal() {
        pthread_mutex_lock(&mutex)
        count += 1
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&mutex)
    }
    func wait() {
        pthread_mutex_lock(&mutex)
        while count == 0 { pthread_cond_wait(&cond, &mutex) }
        count -= 1
        pthread_mutex_unlock(&mutex)
    }
}

/// Records what the loop tells it.
final class Probe: Pollable, @unchecked Sendable {
    var events: [UInt32] = []
    var fired: [UInt64] = []
    var onEvents: ((Probe) -> Void)?
    override func handleEvents(_ events: UInt32) {
        self.events.append(events)
        onEvents?(self)
    }
    override func timerFired(now: UInt64) { fired.append(now) }
}

func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    let r = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds)
    precondition(r == 0)
    return (fds[0], fds[1])
}

final class EventLoopTests: XCTestCase {
    func testReadinessReachesTheRegisteredObject() throws {
        let h = try LoopHarness()
        h.start()
        defer { h.stop() }
        let (a, b) = socketPair()
        defer { Glibc.close(b) }
        let probe = Probe(loop: h.loop)
        XCTAssertTrue(h.sync { (try? h.loop.register(probe, fd: a)) != nil })
        XCTAssertEqual(Glibc.write(b, "x", 1), 1)
        XCTAssertTrue(waitUntil { h.sync { probe.events.contains { $0 & PollEvents.input != 0 } } })
        h.sync { h.loop.close(probe) }
    }

    /// Two ready descriptors in one batch: the first handler closes the second's descriptor and
    /// registers a new object on the same number. The second's queued event must not reach it.
    func testAnEventForAReusedDescriptorIsDropped() throws {
        let h = try LoopHarness()
        let (a1, a2) = socketPair()
        let (b1, b2) = socketPair()
        defer { Glibc.close(a2); Glibc.close(b2) }
        let pa = Probe(loop: h.loop)
        let pb = Probe(loop: h.loop)
        nonisolated(unsafe) var newcomer: Probe?
        nonisolated(unsafe) var wrongDelivery = 0
        nonisolated(unsafe) var batchOver = false
        try h.loop.register(pa, fd: a1)
        try h.loop.register(pb, fd: b1)
        let loop = h.loop
        let takeOver: (Probe) -> Void = { other in
            guard newcomer == nil, other.fd >= 0 else { return }
            let number = other.fd
            loop.close(other)
            // A fresh socket placed on the number just freed, as accept() would hand it out.
            let (n1, n2) = socketPair()
            Glibc.close(n2)
            if n1 != number {
                _ = dup2(n1, number)
                Glibc.close(n1)
            }
            let c = Probe(loop: loop)
            c.onEvents = { _ in if !batchOver { wrongDelivery += 1 } }
            do { try loop.register(c, fd: number) } catch { XCTFail("register: \(error)") }
            newcomer = c
        }
        pa.onEvents = { _ in takeOver(pb) }
        pb.onEvents = { _ in takeOver(pa) }
        h.loop.afterEvents = { if newcomer != nil { batchOver = true } }
        // Both readable before the loop first waits: one batch reports both.
        XCTAssertEqual(Glibc.write(a2, "x", 1), 1)
        XCTAssertEqual(Glibc.write(b2, "x", 1), 1)
        h.start()
        defer { h.stop() }
        XCTAssertTrue(waitUntil { h.sync { batchOver } })
        XCTAssertEqual(h.sync { wrongDelivery }, 0)
        XCTAssertEqual(h.sync { h.loop.staleEvents }, 1)
        h.sync {
            if let c = newcomer { h.loop.close(c) }
            if pa.fd >= 0 { h.loop.close(pa) }
            if pb.fd >= 0 { h.loop.close(pb) }
        }
    }

    /// A deadline set after the loop slept with no timer for longer than the wheel's horizon
    /// (10 s) still fires, and on time.
    func testDeadlineAfterALongIdleFires() throws {
        let h = try LoopHarness()
        h.start()
        defer { h.stop() }
        let (a, b) = socketPair()
        defer { Glibc.close(b) }
        let probe = Probe(loop: h.loop)
        _ = h.sync { try? h.loop.register(probe, fd: a) }
        h.advance(ms: 45_000)
        _ = h.sync { 0 }   // the loop has read the new clock
        h.sync { h.loop.setDeadline(probe, afterMs: 5_000) }
        h.advance(ms: 4_000)
        _ = h.sync { 0 }
        XCTAssertEqual(h.sync { probe.fired.count }, 0, "fired early")
        h.advance(ms: 1_100)
        XCTAssertTrue(waitUntil { h.sync { probe.fired.count == 1 } })
        h.sync { h.loop.close(probe) }
    }

    /// Many deadlines set in one burst after a long idle, then the loop held past the horizon
    /// with timers pending: every one of them fires.
    func testBurstOfDeadlinesAllFireAfterTheLoopIsHeld() throws {
        let h = try LoopHarness()
        h.start()
        defer { h.stop() }
        var probes: [Probe] = []
        var peers: [Int32] = []
        for _ in 0..<100 {
            let (a, b) = socketPair()
            peers.append(b)
            let p = Probe(loop: h.loop)
            probes.append(p)
            _ = h.sync { try? h.loop.register(p, fd: a) }
        }
        defer { for b in peers { Glibc.close(b) } }
        let all = probes
        h.advance(ms: 30_000)
        h.sync { for (i, p) in all.enumerated() { h.loop.setDeadline(p, afterMs: 5_000 + UInt64(i) * 50) } }
        // Held for 20 s in one step, past the wheel's 10.24 s horizon.
        h.advance(ms: 20_000)
        XCTAssertTrue(waitUntil { h.sync { all.allSatisfy { $0.fired.count == 1 } } })
        h.sync { for p in all { h.loop.close(p) } }
    }

    func testWorkPostedFromManyThreadsAllRuns() throws {
        let h = try LoopHarness()
        h.start()
        defer { h.stop() }
        let counter = TestClock()
        let base = counter.ms.load(ordering: .relaxed)
        let threads = (0..<4).map { _ in
            LoopThread.start {
                for _ in 0..<1000 { h.loop.execute { counter.ms.add(1, ordering: .relaxed) } }
            }
        }
        for t in threads { t.join() }
        XCTAssertTrue(waitUntil { counter.ms.load(ordering: .relaxed) == base + 4000 })
    }
}
