// Shadow comparison: a mirror with `compare` holds its shadow's answer against the primary's.
// Both ends happen on the same worker loop (the primary's exchange closes in
// Worker.exchangeFinished, the copy's answer on its UpstreamConnection), so they meet in a small
// per-worker table keyed by request id: no lock, no cross-thread traffic. The table is bounded
// and its entries expire; the primary is never delayed and its body never held (its body hash,
// when asked for, is folded in as its bytes stream through the relay). Routes whose mirrors do
// not compare never touch any of this.
import HTTP1
import Reactor
import Routing
import Synchronization

/// How one comparison came out.
public enum ShadowResult: Int, CaseIterable, Sendable {
    case match, statusMismatch, bodyMismatch, shadowError, shadowTimeout

    public var name: String {
        switch self {
        case .match: "match"
        case .statusMismatch: "status_mismatch"
        case .bodyMismatch: "body_mismatch"
        case .shadowError: "shadow_error"
        case .shadowTimeout: "shadow_timeout"
        }
    }
}

/// 64-bit FNV-1a: cheap, streaming, good enough to tell two bodies apart.
public enum BodyHash {
    public static let seed: UInt64 = 0xCBF2_9CE4_8422_2325

    @inline(__always)
    public static func fold(_ h: UInt64, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = h
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01B3
        }
        return h
    }
}

/// One mismatch, kept for `show shadow`.
public struct ShadowMismatch: Sendable {
    public var timeMs: UInt64
    public var mirrorSeries: Int
    public var result: ShadowResult
    /// As received (shared with the join, not copied); decoded when read.
    public var methodBytes: [UInt8]
    public var pathBytes: [UInt8]
    public var method: String { String(decoding: methodBytes, as: UTF8.self) }
    public var path: String { String(decoding: pathBytes, as: UTF8.self) }
    public var primaryStatus: Int
    public var shadowStatus: Int
    public var requestID: UInt64
}

/// The last mismatches of one worker. Written on a mismatch only (never for a match), read by
/// `show shadow`; the lock is never contended by another loop (one log per worker).
public final class ShadowMismatchLog: Sendable {
    public static let capacity = 32
    private let ring = Mutex<(entries: [ShadowMismatch], next: Int)>(([], 0))

    public init() {}

    func append(_ m: ShadowMismatch) {
        ring.withLock { r in
            if r.entries.count < Self.capacity {
                r.entries.append(m)
            } else {
                r.entries[r.next] = m
            }
            r.next = (r.next + 1) % Self.capacity
        }
    }

    /// Oldest first.
    public func entries() -> [ShadowMismatch] {
        ring.withLock { r in
            r.entries.count < Self.capacity ? r.entries : Array(r.entries[r.next...] + r.entries[..<r.next])
        }
    }
}

/// The primary's side of one compared request, and the copies still to be held against it.
final class ShadowJoin {
    let requestID: UInt64
    let createdMs: UInt64
    let method: [UInt8]
    let path: [UInt8]
    /// Copies started with a comparison and not yet resolved.
    var outstanding = 0
    var primaryDone = false
    var primaryStatus = 0
    var primaryNs: UInt64 = 0
    var primaryHash = BodyHash.seed
    /// Some copy compares body hashes: the primary's body is hashed as it streams.
    var wantsHash = false
    /// Copies answered before the primary finished.
    var waiting: [ShadowSide] = []

    init(requestID: UInt64, createdMs: UInt64, method: [UInt8], path: [UInt8]) {
        self.requestID = requestID
        self.createdMs = createdMs
        self.method = method
        self.path = path
    }
}

/// One copy's side of a comparison.
final class ShadowSide {
    let join: ShadowJoin
    let spec: ShadowCompareSpec
    let series: Int
    /// When the copy was handed to its connection (the shadow's latency counts from here).
    var startNs: UInt64
    var status = 0
    var ns: UInt64 = 0
    var hash = BodyHash.seed
    var timedOut = false
    var result: ShadowResult = .match

    init(join: ShadowJoin, spec: ShadowCompareSpec, series: Int, startNs: UInt64) {
        self.join = join
        self.spec = spec
        self.series = series
        self.startNs = startNs
    }
}

/// The per-worker table.
struct ShadowTable {
    /// Most requests awaiting a comparison on one worker; past it new copies go uncompared.
    static let capacity = 4096
    /// An entry older than this is dropped when the table fills (its primary never closed).
    static let maxAgeMs: UInt64 = 120_000

    var joins: [UInt64: ShadowJoin] = [:]
}

extension Worker {
    /// A comparing copy is starting for request `requestID`: its side, joined to the request's
    /// entry (made on the first such copy); nil when the table is full.
    func shadowSide(requestID: UInt64, spec: ShadowCompareSpec, series: Int, view: RequestView) -> ShadowSide? {
        let join: ShadowJoin
        if let j = shadow.joins[requestID] {
            join = j
        } else {
            if shadow.joins.count >= ShadowTable.capacity { expireShadowJoins() }
            guard shadow.joins.count < ShadowTable.capacity else { return nil }
            join = ShadowJoin(requestID: requestID, createdMs: loop.now, method: Array(view.method),
                              path: Array(view.path.prefix(512)))
            shadow.joins[requestID] = join
        }
        join.outstanding += 1
        if spec.bodyHash { join.wantsHash = true }
        return ShadowSide(join: join, spec: spec, series: series, startNs: Sys.monotonicNs())
    }

    private func expireShadowJoins() {
        let now = loop.now
        for (id, j) in shadow.joins where now >= j.createdMs + ShadowTable.maxAgeMs { shadow.joins[id] = nil }
    }

    /// Whether the primary of `requestID` should fold its response body into a hash.
    func shadowWantsPrimaryHash(requestID: UInt64) -> Bool {
        shadow.joins[requestID]?.wantsHash ?? false
    }

    /// The primary's exchange closed (from `exchangeFinished`, only for a request with copies).
    func shadowPrimaryFinished(_ e: Exchange) {
        guard let j = shadow.joins[e.requestID] else { return }
        j.primaryDone = true
        j.primaryStatus = e.status
        j.primaryNs = e.durationNs
        j.primaryHash = e.bodyHash
        let waiting = j.waiting
        j.waiting.removeAll()
        for s in waiting { resolve(s) }
        if j.outstanding == 0 { shadow.joins[e.requestID] = nil }
    }

    /// A comparing copy ended: answered (`completed`), failed, or given up without an answer
    /// that means anything (`counted` false: dropped or skipped, not compared).
    func shadowCopyFinished(_ s: ShadowSide, completed: Bool, counted: Bool) {
        let j = s.join
        if completed {
            s.ns = Sys.monotonicNs() &- s.startNs
        } else if counted {
            s.result = s.timedOut ? .shadowTimeout : .shadowError
        }
        if !counted || !completed {
            // Nothing of the primary is needed to count a failure.
            j.outstanding -= 1
            if counted { record(s) }
            if j.primaryDone && j.outstanding == 0 { shadow.joins[j.requestID] = nil }
            return
        }
        if j.primaryDone {
            j.outstanding -= 1
            resolve(s)
            if j.outstanding == 0 { shadow.joins[j.requestID] = nil }
        } else {
            j.outstanding -= 1
            j.waiting.append(s)
        }
    }

    /// Both sides are known: compare and count.
    private func resolve(_ s: ShadowSide) {
        let j = s.join
        if j.primaryStatus == 0 {
            // The primary never answered (client gone before the head): nothing to compare.
            return
        }
        var result = ShadowResult.match
        switch s.spec.status {
        case 1: if s.status != j.primaryStatus { result = .statusMismatch }
        case 2: if s.status / 100 != j.primaryStatus / 100 { result = .statusMismatch }
        default: break
        }
        if result == .match && s.spec.bodyHash && s.hash != j.primaryHash { result = .bodyMismatch }
        s.result = result
        if s.spec.latency {
            metrics.shadowResponse.observe(s.series, ns: s.ns)
            metrics.shadowPrimaryResponse.observe(s.series, ns: j.primaryNs)
        }
        record(s)
    }

    private func record(_ s: ShadowSide) {
        metrics.shadowComparisons.add(s.series, s.result.rawValue)
        guard s.result != .match else { return }
        let j = s.join
        metrics.shadowMismatches.append(ShadowMismatch(
            timeMs: UInt64(Timestamp.nowNs() / 1_000_000), mirrorSeries: s.series, result: s.result, methodBytes: j.method,
            pathBytes: j.path, primaryStatus: j.primaryStatus, shadowStatus: s.status, requestID: j.requestID))
        guard let logs, logs.accessEnabled, nextRandom() <= logs.sampleThreshold else { return }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(contentsOf: #""shadow":"#.utf8)
        JSONBytes.string(shadowLabel(s.series), into: &out)
        out.append(contentsOf: #","result":""#.utf8)
        out.append(contentsOf: s.result.name.utf8)
        out.append(contentsOf: #"","method":"#.utf8)
        JSONBytes.string(j.method, into: &out)
        out.append(contentsOf: #","path":"#.utf8)
        JSONBytes.string(j.path, into: &out)
        out.append(contentsOf: #","status":"#.utf8)
        JSONBytes.int(j.primaryStatus, into: &out)
        out.append(contentsOf: #","shadowStatus":"#.utf8)
        JSONBytes.int(s.status, into: &out)
        out.append(contentsOf: #","requestId":""#.utf8)
        JSONBytes.hex(j.requestID, into: &out)
        out.append(contentsOf: "\"}\n".utf8)
        if !logs.logAccessEvent(out) { stats.add(.accessLogDropped) }
    }

    /// `route/shadow` of a mirror series, for the log line.
    private func shadowLabel(_ series: Int) -> [UInt8] {
        guard let s = metricSeries.mirrors.series(series) else { return [] }
        return Array("\(s.values[0])/\(s.values[1])".utf8)
    }
}
