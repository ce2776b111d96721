// One epoll loop per thread: edge-triggered readiness for registered descriptors, a timer
// wheel, and a mailbox other threads use to hand it work (woken through an eventfd).
import CLinux
import Glibc
import Synchronization

/// epoll event bits, as Swift constants.
public enum PollEvents {
    public static let input: UInt32 = 0x001
    public static let output: UInt32 = 0x004
    public static let error: UInt32 = 0x008
    public static let hangUp: UInt32 = 0x010
    public static let peerClosed: UInt32 = 0x2000
    public static let edge: UInt32 = 1 << 31
}

/// Something registered with a loop. Subclasses override `handleEvents`. Registered once,
/// edge-triggered, for input, output and peer hang-up, so readiness never needs re-arming.
open class Pollable {
    public internal(set) var fd: Int32 = -1
    public unowned(unsafe) var loop: EventLoop
    /// Set at each registration and carried in the epoll data next to the fd: an event queued for
    /// a descriptor that was closed and reused within the same batch names an older generation
    /// and is dropped instead of reaching the new owner.
    public internal(set) var generation: UInt32 = 0

    public init(loop: EventLoop) {
        self.loop = loop
    }

    /// `events` is a mask of `PollEvents` bits.
    open func handleEvents(_ events: UInt32) {}

    /// Called by the timer wheel when `deadline` has passed.
    open func timerFired(now: UInt64) {}

    /// Called after the next round of events when `EventLoop.resumeSoon` asked for it: work a
    /// handler stopped short (its budget spent) while more was ready. Edge-triggered readiness
    /// brings no new event for bytes already waiting.
    open func resume() {}

    /// Milliseconds (monotonic) after which `timerFired` runs; 0 = no timer.
    public internal(set) var deadline: UInt64 = 0
    /// Where the timer wheel holds it: the tick, the slot (-1 = not on the wheel) and the index
    /// in that slot.
    var scheduledTick: UInt64 = 0
    var wheelSlot = -1
    var wheelIndex = 0
}

public final class EventLoop: @unchecked Sendable {
    public let index: Int
    private let epfd: Int32
    private let wakeFd: Int32
    private var handlers: [Pollable?] = []
    private var events: UnsafeMutablePointer<sy_epoll_event>
    private let maxEvents = 512
    private let mailbox = Mutex<[@Sendable () -> Void]>([])
    private let pendingWake = Atomic<Bool>(false)
    private var stopped = false
    private var nextGeneration: UInt32 = 0
    /// Events dropped because their descriptor was closed (and maybe reused) in the same batch.
    public private(set) var staleEvents = 0
#if DEBUG
    /// The thread that runs this loop; loop-owned objects are touched only from it.
    private var owner: pthread_t?
#endif

    /// Milliseconds (monotonic), refreshed once per loop iteration.
    public private(set) var now: UInt64

    // Timer wheel: 10 ms ticks, 1024 slots. A deadline beyond the horizon sits in the last slot
    // and is looked at again when that fires.
    private static let tickMs: UInt64 = 10
    private static let slotCount = 1024
    private var slots: [[Pollable]]
    private var currentTick: UInt64
    private var timerEntries = 0
    private var spare: [Pollable] = []

    /// The monotonic clock in milliseconds; tests pass their own to move time.
    private let clock: @Sendable () -> UInt64

    public init(index: Int, clock: @escaping @Sendable () -> UInt64 = { Sys.monotonicMs() }) throws(SystemError) {
        self.index = index
        self.clock = clock
        epfd = sy_epoll_create()
        if epfd < 0 { throw SystemError("epoll_create1", sy_errno()) }
        wakeFd = sy_eventfd()
        if wakeFd < 0 { throw SystemError("eventfd", sy_errno()) }
        events = .allocate(capacity: maxEvents)
        now = clock()
        currentTick = now / EventLoop.tickMs
        slots = Array(repeating: [], count: EventLoop.slotCount)
        if sy_epoll_add(epfd, wakeFd, PollEvents.input | PollEvents.edge, UInt64(UInt32(bitPattern: wakeFd))) != 0 {
            throw SystemError("epoll_ctl", sy_errno())
        }
    }

    deinit {
        events.deallocate()
        Sys.close(epfd)
        Sys.close(wakeFd)
    }

    // MARK: registration

    public func register(_ p: Pollable, fd: Int32) throws(SystemError) {
        try add(p, fd: fd, events: PollEvents.input | PollEvents.output | PollEvents.peerClosed | PollEvents.edge)
    }

    /// Registers a listening socket: level-triggered input, so connections left queued after
    /// a bounded accept burst wake the loop again.
    public func registerListener(_ p: Pollable, fd: Int32) throws(SystemError) {
        try add(p, fd: fd, events: PollEvents.input)
    }

    private func add(_ p: Pollable, fd: Int32, events: UInt32) throws(SystemError) {
        assertOnLoop()
        p.fd = fd
        nextGeneration &+= 1
        if nextGeneration == 0 { nextGeneration = 1 }
        p.generation = nextGeneration
        let i = Int(fd)
        if i >= handlers.count {
            handlers.append(contentsOf: repeatElement(nil, count: max(i + 1 - handlers.count, handlers.count)))
        }
        handlers[i] = p
        if sy_epoll_add(epfd, fd, events, UInt64(UInt32(bitPattern: fd)) | UInt64(p.generation) << 32) != 0 {
            handlers[i] = nil
            p.fd = -1
            throw SystemError("epoll_ctl", sy_errno())
        }
    }

    /// Stops watching a descriptor without closing it (a listener other loops still share).
    public func unregister(_ p: Pollable) {
        assertOnLoop()
        let fd = p.fd
        guard fd >= 0 else { return }
        _ = sy_epoll_del(epfd, fd)
        if Int(fd) < handlers.count { handlers[Int(fd)] = nil }
        p.fd = -1
    }

    /// Unregisters and closes the descriptor. The object stays alive while others hold it.
    public func close(_ p: Pollable) {
        assertOnLoop()
        let fd = p.fd
        guard fd >= 0 else { return }
        p.fd = -1
        cancelDeadline(p)
        if Int(fd) < handlers.count { handlers[Int(fd)] = nil }
        Sys.close(fd)   // closing removes it from the epoll set
    }

    // MARK: timers

    /// Sets (or moves) `p`'s deadline. A later deadline costs an assignment: the wheel entry is
    /// re-examined when it fires.
    @inline(__always)
    public func setDeadline(_ p: Pollable, afterMs ms: UInt64) {
        assertOnLoop()
        let d = now + ms
        p.deadline = d
        let tick = d / EventLoop.tickMs + 1
        if p.wheelSlot < 0 || tick < p.scheduledTick { place(p, tick: tick) }
    }

    /// Clears the deadline. The wheel entry stays until its tick (a deadline set again soon, as
    /// every request does, costs an assignment); `close` takes it off at once.
    @inline(__always)
    public func clearDeadline(_ p: Pollable) {
        p.deadline = 0
    }

    /// Clears the deadline and takes `p` off the wheel, so the wheel holds no reference to an
    /// object whose connection is over (at 12k connections a second and a 60 s idle timeout,
    /// closed connections kept alive by the wheel were 150 MB).
    public func cancelDeadline(_ p: Pollable) {
        p.deadline = 0
        if p.wheelSlot >= 0 { unplace(p) }
    }

    private func place(_ p: Pollable, tick: UInt64) {
        if p.wheelSlot >= 0 { unplace(p) }
        let t = min(max(tick, currentTick + 1), currentTick + UInt64(EventLoop.slotCount) - 1)
        let slot = Int(t % UInt64(EventLoop.slotCount))
        p.scheduledTick = t
        p.wheelSlot = slot
        p.wheelIndex = slots[slot].count
        slots[slot].append(p)
        timerEntries += 1
    }

    /// O(1): the last entry of the slot takes `p`'s place.
    private func unplace(_ p: Pollable) {
        let slot = p.wheelSlot
        let i = p.wheelIndex
        let last = slots[slot].removeLast()
        if i < slots[slot].count {
            slots[slot][i] = last
            last.wheelIndex = i
        }
        p.wheelSlot = -1
        p.scheduledTick = 0
        timerEntries -= 1
    }

    private func advanceTimers() {
        let nowTick = now / EventLoop.tickMs
        if nowTick - currentTick >= UInt64(EventLoop.slotCount) {
            // The loop was held longer than the wheel's horizon: every slot is due. Walking
            // tick by tick would visit each slot once but leave entries whose tick lies behind
            // the jump, never to be visited again.
            sweepAll(nowTick: nowTick)
            return
        }
        while currentTick < nowTick {
            currentTick += 1
            let idx = Int(currentTick % UInt64(EventLoop.slotCount))
            if slots[idx].isEmpty { continue }
            swap(&spare, &slots[idx])
            takeOff(spare)
            for p in spare { expire(p) }
            spare.removeAll(keepingCapacity: true)
        }
    }

    /// Marks entries moved out of their slot as off the wheel (before any handler runs, so a
    /// handler that clears another's deadline finds it already off).
    private func takeOff(_ entries: [Pollable]) {
        timerEntries -= entries.count
        for p in entries {
            p.wheelSlot = -1
        }
    }

    private func sweepAll(nowTick: UInt64) {
        var all: [Pollable] = []
        for idx in slots.indices where !slots[idx].isEmpty {
            all += slots[idx]
            slots[idx].removeAll()
        }
        takeOff(all)
        currentTick = nowTick
        for p in all { expire(p) }
    }

    @inline(__always)
    private func expire(_ p: Pollable) {
        p.scheduledTick = 0
        // Off the wheel already: moved or placed again by a handler that ran before this one.
        if p.wheelSlot >= 0 || p.deadline == 0 { return }
        if p.deadline <= now {
            p.deadline = 0
            p.timerFired(now: now)
        } else {
            place(p, tick: p.deadline / EventLoop.tickMs + 1)
        }
    }

    // MARK: cross-thread work

    /// Runs `work` on this loop's thread soon. Safe from any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        mailbox.withLock { $0.append(work) }
        if !pendingWake.exchange(true, ordering: .acquiringAndReleasing) {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFd, &one, 8)
        }
    }

    private func drainMailbox() {
        var buf: UInt64 = 0
        _ = Glibc.read(wakeFd, &buf, 8)
        pendingWake.store(false, ordering: .releasing)
        let work = mailbox.withLock { m -> [@Sendable () -> Void] in
            let w = m
            m.removeAll()
            return w
        }
        for w in work { w() }
    }

    // Pollables to resume after the next round of events (see `Pollable.resume`).
    private var resumable: [Pollable] = []
    private var resuming: [Pollable] = []

    /// Calls `p.resume()` after the events that are ready now, so one busy connection takes
    /// turns with the others instead of running until it would block. Call on the loop's thread.
    public func resumeSoon(_ p: Pollable) {
        assertOnLoop()
        resumable.append(p)
    }

    private func resumeWaiting() {
        swap(&resumable, &resuming)
        for p in resuming where p.fd >= 0 { p.resume() }
        resuming.removeAll(keepingCapacity: true)
    }

    /// Runs after each batch of events: work deferred so that one batch's output to the same
    /// peer leaves in one write (shadow copies).
    public var afterEvents: (() -> Void)?

    /// Traps in debug builds when called off the loop's thread (before `run()` starts, the
    /// thread that builds the loop may set it up).
    @inline(__always)
    public func assertOnLoop() {
#if DEBUG
        if let o = owner { precondition(pthread_equal(o, pthread_self()) != 0, "event loop object touched off its loop's thread") }
#endif
    }

    /// Ends `run()` after the current iteration. Call on the loop's thread.
    public func stop() { stopped = true }

    /// Runs until `stop()`. `onIteration` runs after each batch of events (for per-loop
    /// housekeeping such as snapshot refresh or drain checks).
    public func run() {
#if DEBUG
        owner = pthread_self()
#endif
        while !stopped {
            let timeout: Int32 = !resumable.isEmpty ? 0 : timerEntries > 0 ? Int32(EventLoop.tickMs) : -1
            let n = sy_epoll_wait(epfd, events, Int32(maxEvents), timeout)
            now = clock()
            // With no timer pending the loop may have slept for minutes: the wheel's position
            // follows the clock, so deadlines set in this batch land ahead of it, not behind.
            if timerEntries == 0 { currentTick = now / EventLoop.tickMs }
            if n > 0 {
                for i in 0..<Int(n) {
                    let ev = events[i]
                    let fd = Int(UInt32(truncatingIfNeeded: ev.data))
                    if fd == Int(wakeFd) {
                        drainMailbox()
                        continue
                    }
                    if fd < handlers.count, let h = handlers[fd] {
                        if h.generation == UInt32(truncatingIfNeeded: ev.data >> 32) {
                            h.handleEvents(ev.events)
                        } else {
                            staleEvents += 1
                        }
                    }
                }
            }
            if timerEntries > 0 { advanceTimers() }
            if !resumable.isEmpty { resumeWaiting() }
            if let after = afterEvents { after() }
        }
    }
}
