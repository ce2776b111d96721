// One event loop's side of the logs: access-log lines (one JSON object per finished exchange,
// sampled) and the rate-limited error-log lines about answers the proxy made itself (502, 503,
// 504), formatted into bytes on the loop without Foundation and handed to the LogWriter thread.
import Reactor

/// What the data path needs of the access log's configuration.
public struct AccessLogSettings: Sendable, Equatable {
    /// Share of exchanges logged, 0...1.
    public var sample: Double = 1
    /// The query string is cut after this many bytes (the path is kept, up to `maxPathBytes`).
    public var maxQueryBytes: Int = 256
    public static let maxPathBytes = 4096

    public init(sample: Double = 1, maxQueryBytes: Int = 256) {
        self.sample = sample
        self.maxQueryBytes = maxQueryBytes
    }

    /// `nextRandom() < threshold` samples; UInt64.max for every exchange.
    var threshold: UInt64 {
        // `!(sample > 0)` is also NaN's way out: UInt64(NaN) would stop the process.
        sample >= 1 ? .max : !(sample > 0) ? 0 : UInt64(sample * 18_446_744_073_709_551_615.0)
    }
}

/// Tracing: whether the proxy starts a trace for a request that comes without a valid one.
public struct TracingSettings: Sendable, Equatable {
    public var startWhenMissing = false
    public init(startWhenMissing: Bool = false) { self.startWhenMissing = startWhenMissing }
}

final class WorkerLogs: Pollable {
    private let access: LogChannel?
    private let errors: LogChannel
    let sampleThreshold: UInt64
    let maxQueryBytes: Int
    private var clock = TimestampWriter()
    /// The access-log line of the exchange finishing (capacity kept).
    private var line: [UInt8] = []
    private var flushArmed = false

    init(loop: EventLoop, writer: LogWriter, settings: AccessLogSettings?) {
        access = writer.access == nil ? nil : LogChannel(writer: writer, toErrors: false, chunkBytes: 64 * 1024, maxChunks: 8)
        errors = LogChannel(writer: writer, toErrors: true, chunkBytes: 8 * 1024, maxChunks: 4)
        sampleThreshold = access == nil ? 0 : (settings ?? AccessLogSettings()).threshold
        maxQueryBytes = settings?.maxQueryBytes ?? 256
        line.reserveCapacity(1024)
        super.init(loop: loop)
    }

    var accessEnabled: Bool { access != nil && sampleThreshold > 0 }

    // MARK: handing lines over

    /// Lines reach the writer when a chunk fills or, at the latest, 100 ms after the first
    /// line of a chunk: a quiet loop does not keep its last lines.
    private func pending() {
        if !flushArmed {
            flushArmed = true
            loop.setDeadline(self, afterMs: 100)
        }
    }

    override func timerFired(now: UInt64) {
        flushArmed = false
        flush()
    }

    func flush() {
        if access?.hasPending == true { access?.handOff() }
        if errors.hasPending { errors.handOff() }
    }

    /// Copies `bytes` into the channel; false when the line had to be dropped.
    /// A line to the access log that does not describe an exchange (a shadow mismatch):
    /// `{"time":"...",` then `fields` (the rest of the JSON object, closing brace and newline).
    func logAccessEvent(_ fields: [UInt8]) -> Bool {
        guard let access else { return true }
        var out: [UInt8] = []
        out.reserveCapacity(64 + fields.count)
        out.append(literal: #"{"time":""#)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: Timestamp.length))
        out.withUnsafeMutableBufferPointer { clock.write(Timestamp.nowNs(), to: $0.baseAddress! + start) }
        out.append(literal: #"","#)
        out.append(contentsOf: fields)
        return emit(out, to: access)
    }

    private func emit(_ bytes: [UInt8], to channel: LogChannel) -> Bool {
        guard let p = channel.reserve(bytes.count) else { return false }
        bytes.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: $0.count) }
        channel.commit(bytes.count)
        pending()
        return true
    }

    // MARK: the access log

    /// The part of the line known when the request arrives (its head is gone by the time the
    /// exchange finishes): time, client, method, path, and the client's X-Request-Id.
    func writePrefix(into out: inout [UInt8], client: [UInt8], method: UnsafeRawBufferPointer?,
                     path: UnsafeRawBufferPointer?, query: UnsafeRawBufferPointer?, requestID: UnsafeRawBufferPointer?) {
        out.removeAll(keepingCapacity: true)
        out.append(literal: #"{"time":""#)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: Timestamp.length))
        out.withUnsafeMutableBufferPointer { clock.write(Timestamp.nowNs(), to: $0.baseAddress! + start) }
        out.append(literal: #"","client":"#)
        JSONBytes.string(client, into: &out)
        out.append(literal: #","method":"#)
        JSONBytes.string(method, into: &out)
        out.append(literal: #","path":"#)
        if let path {
            out.append(UInt8(ascii: "\""))
            JSONBytes.escaped(UnsafeRawBufferPointer(rebasing: path.prefix(AccessLogSettings.maxPathBytes)), into: &out)
            if let query, query.count > 0 {
                JSONBytes.escaped(UnsafeRawBufferPointer(rebasing: query.prefix(maxQueryBytes + 1)), into: &out)
            }
            out.append(UInt8(ascii: "\""))
        } else {
            out.append(literal: "null")
        }
        if let requestID {
            out.append(literal: #","requestId":"#)
            JSONBytes.string(UnsafeRawBufferPointer(rebasing: requestID.prefix(128)), into: &out)
        }
    }

    /// The rest of the line, from the finished record; false when it was dropped.
    func logExchange(_ e: Exchange, prefix: [UInt8], labels: LogLabels) -> Bool {
        guard let access else { return true }
        line.removeAll(keepingCapacity: true)
        line.append(contentsOf: prefix)
        if !e.clientRequestID {
            line.append(literal: #","requestId":"#)
            if e.requestID != 0 {
                line.append(UInt8(ascii: "\""))
                JSONBytes.hex(e.requestID, into: &line)
                line.append(UInt8(ascii: "\""))
            } else {
                line.append(literal: "null")
            }
        }
        line.append(literal: #","traceId":"#)
        if e.traceHi != 0 || e.traceLo != 0 {
            line.append(UInt8(ascii: "\""))
            JSONBytes.hex(e.traceHi, into: &line)
            JSONBytes.hex(e.traceLo, into: &line)
            line.append(UInt8(ascii: "\""))
        } else {
            line.append(literal: "null")
        }
        line.append(literal: #","status":"#)
        JSONBytes.int(e.status, into: &line)
        line.append(literal: #","bytesIn":"#)
        JSONBytes.int(Int(e.bytesIn), into: &line)
        line.append(literal: #","bytesOut":"#)
        JSONBytes.int(Int(e.bytesOut), into: &line)
        line.append(literal: #","durationMs":"#)
        JSONBytes.millis(e.durationNs, into: &line)
        line.append(literal: #","upstreamMs":"#)
        if e.responseHeadNs > 0 && e.upstreamReadyNs > 0 {
            JSONBytes.millis(e.upstreamDurationNs, into: &line)
        } else {
            line.append(literal: "null")
        }
        labels.writeRoute(Int(e.routeSeries), into: &line)
        labels.writePool(Int(e.poolSeries), into: &line)
        labels.writeEndpoint(Int(e.endpointSeries), into: &line)
        line.append(literal: #","attempts":"#)
        JSONBytes.int(e.attempts, into: &line)
        line.append(literal: #","mirror":"#)
        if let m = e.mirrorOutcome {
            line.append(UInt8(ascii: "\""))
            line.append(contentsOf: m.name.utf8)
            line.append(UInt8(ascii: "\""))
        } else {
            line.append(literal: "null")
        }
        line.append(literal: e.source == .proxy ? #","source":"proxy"}"# : #","source":"upstream"}"#)
        line.append(10)
        return emit(line, to: access)
    }

    // MARK: the error log

    /// Per reason (the answer's detail text): when a line was last written, and how many
    /// answers went unlogged since.
    private var limits: [(reason: UnsafeRawPointer, lastMs: UInt64, suppressed: Int)] = []

    /// Logs an answer the proxy made itself with 502, 503 or 504, at most once a second per
    /// reason on this loop; the next line says how many were left out.
    func logProxyError(_ e: Exchange, labels: LogLabels) {
        let key = UnsafeRawPointer(e.reason.utf8Start)
        var i = limits.firstIndex { $0.reason == key } ?? -1
        if i < 0 {
            limits.append((key, 0, 0))
            i = limits.count - 1
        }
        let now = loop.now
        if limits[i].lastMs != 0 && now < limits[i].lastMs + 1000 {
            limits[i].suppressed += 1
            return
        }
        let suppressed = limits[i].suppressed
        limits[i].lastMs = max(now, 1)
        limits[i].suppressed = 0
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(contentsOf: repeatElement(0, count: Timestamp.length))
        out.withUnsafeMutableBufferPointer { clock.write(Timestamp.nowNs(), to: $0.baseAddress!) }
        out.append(literal: " switchyard: answered ")
        JSONBytes.int(e.status, into: &out)
        out.append(literal: " (")
        out.append(contentsOf: UnsafeRawBufferPointer(start: e.reason.utf8Start, count: e.reason.utf8CodeUnitCount))
        out.append(literal: ")")
        labels.writePlain(route: Int(e.routeSeries), pool: Int(e.poolSeries), endpoint: Int(e.endpointSeries), into: &out)
        if e.requestID != 0 {
            out.append(literal: " request=")
            JSONBytes.hex(e.requestID, into: &out)
        }
        if suppressed > 0 {
            out.append(literal: " (and ")
            JSONBytes.int(suppressed, into: &out)
            out.append(literal: " more for this reason since the last line)")
        }
        out.append(10)
        _ = emit(out, to: errors)
    }
}

/// The label values of the series a worker has seen, as bytes in one arena (no String and no
/// retain when a line is written): spans[start[id] + k] is value k of series `id`.
struct LogLabels {
    private var arena: [UInt8] = []
    /// Each value as it is, and as a JSON value (a quoted string, or (-1, -1) for null).
    private var spans: [(Int32, Int32)] = []
    private var json: [(Int32, Int32)] = []
    private var routeStart: [Int32] = []
    private var poolStart: [Int32] = []
    private var endpointStart: [Int32] = []

    mutating func learn(_ s: SnapshotSeries) {
        if arena.count > 4 << 20 { self = LogLabels() }
        var routes: [Int32] = [], pools: [Int32] = [], endpoints: [Int32] = []
        swap(&routes, &routeStart)
        swap(&pools, &poolStart)
        swap(&endpoints, &endpointStart)
        for (kind, id, values) in s.labelled {
            switch kind {
            case .route: learn(&routes, Int(id), values)
            case .pool: learn(&pools, Int(id), values)
            case .endpoint: learn(&endpoints, Int(id), values)
            }
        }
        swap(&routes, &routeStart)
        swap(&pools, &poolStart)
        swap(&endpoints, &endpointStart)
    }

    private mutating func learn(_ starts: inout [Int32], _ id: Int, _ values: [String]) {
        if starts.count <= id { starts.append(contentsOf: repeatElement(-1, count: id + 1 - starts.count)) }
        if starts[id] >= 0 && (0..<values.count).allSatisfy({ self.value(Int(starts[id]) + $0).elementsEqual(values[$0].utf8) }) {
            return
        }
        starts[id] = Int32(spans.count)
        for v in values {
            let from = arena.count
            arena.append(contentsOf: v.utf8)
            spans.append((Int32(from), Int32(arena.count)))
            // The JSON form, quoted and escaped once here rather than on every line written;
            // a value the proxy could not attribute ("-", no color) is null.
            if v == "-" || v == MetricSeries.noColor {
                json.append((-1, -1))
            } else {
                let start = arena.count
                arena.append(UInt8(ascii: "\""))
                var raw = Array(v.utf8)
                raw.withUnsafeBytes { JSONBytes.escaped($0, into: &arena) }
                raw.removeAll()
                arena.append(UInt8(ascii: "\""))
                json.append((Int32(start), Int32(arena.count)))
            }
        }
    }

    private func value(_ span: Int) -> ArraySlice<UInt8> {
        let (a, b) = spans[span]
        return arena[Int(a)..<Int(b)]
    }

    private func start(_ starts: [Int32], _ id: Int) -> Int {
        id >= 0 && id < starts.count ? Int(starts[id]) : -1
    }

    /// `,"name":"value"`, null for a value the proxy could not attribute.
    private func field(_ name: StaticString, _ span: Int, into out: inout [UInt8]) {
        out.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        let (a, b) = span >= 0 ? json[span] : (-1, -1)
        guard a >= 0 else { return out.append(contentsOf: UnsafeRawBufferPointer(start: JSONBytes.null.utf8Start, count: 4)) }
        out.append(contentsOf: arena[Int(a)..<Int(b)])
    }

    func writeRoute(_ id: Int, into out: inout [UInt8]) {
        let s = start(routeStart, id)
        field(#","route":"#, s, into: &out)
        field(#","variant":"#, s < 0 ? -1 : s + 1, into: &out)
        field(#","upstream":"#, s < 0 ? -1 : s + 2, into: &out)
    }

    func writePool(_ id: Int, into out: inout [UInt8]) {
        let s = start(poolStart, id)
        field(#","color":"#, s < 0 ? -1 : s + 1, into: &out)
    }

    func writeEndpoint(_ id: Int, into out: inout [UInt8]) {
        let s = start(endpointStart, id)
        field(#","endpoint":"#, s < 0 ? -1 : s + 2, into: &out)
    }

    /// ` route=web variant=default upstream=app color=blue endpoint=127.0.0.1:8080` (`-` where unknown).
    func writePlain(route: Int, pool: Int, endpoint: Int, into out: inout [UInt8]) {
        let r = start(routeStart, route)
        let p = start(poolStart, pool)
        let e = start(endpointStart, endpoint)
        for (name, span) in [(" route=", r), (" variant=", r < 0 ? -1 : r + 1), (" upstream=", r < 0 ? -1 : r + 2),
                             (" color=", p < 0 ? -1 : p + 1), (" endpoint=", e < 0 ? -1 : e + 2)] {
            out.append(contentsOf: name.utf8)
            if span >= 0 { out.append(contentsOf: value(span)) } else { out.append(UInt8(ascii: "-")) }
        }
    }
}

/// JSON pieces written as bytes.
enum JSONBytes {
    private static let hexDigits: StaticString = "0123456789abcdef"
    static let null: StaticString = "null"

    /// A quoted, escaped string, or null.
    static func string(_ s: UnsafeRawBufferPointer?, into out: inout [UInt8]) {
        guard let s else { return out.append(literal: "null") }
        out.append(UInt8(ascii: "\""))
        escaped(s, into: &out)
        out.append(UInt8(ascii: "\""))
    }

    static func string(_ s: [UInt8], into out: inout [UInt8]) {
        s.withUnsafeBytes { string($0, into: &out) }
    }

    /// The bytes with `"`, `\`, control characters and bytes over 0x7E escaped as \u00XX, so a
    /// line stays valid JSON (and valid UTF-8) whatever the client sent.
    static func escaped(_ s: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        for b in s {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(b)
            case 0x20..<0x7F:
                out.append(b)
            default:
                out.append(literal: #"\u00"#)
                out.append(hexDigits.utf8Start[Int(b >> 4)])
                out.append(hexDigits.utf8Start[Int(b & 0xF)])
            }
        }
    }

    static func int(_ v: Int, into out: inout [UInt8]) {
        if v < 0 {
            out.append(UInt8(ascii: "-"))
            return int(-v, into: &out)
        }
        if v >= 10 { int(v / 10, into: &out) }
        out.append(UInt8(truncatingIfNeeded: 48 + v % 10))
    }

    /// Milliseconds with microsecond precision: "12.345".
    static func millis(_ ns: UInt64, into out: inout [UInt8]) {
        let us = Int(ns / 1000)
        int(us / 1000, into: &out)
        out.append(UInt8(ascii: "."))
        let frac = us % 1000
        out.append(UInt8(truncatingIfNeeded: 48 + frac / 100))
        out.append(UInt8(truncatingIfNeeded: 48 + frac / 10 % 10))
        out.append(UInt8(truncatingIfNeeded: 48 + frac % 10))
    }

    /// 16 lowercase hex digits.
    static func hex(_ v: UInt64, into out: inout [UInt8]) {
        var shift = 60
        while shift >= 0 {
            out.append(hexDigits.utf8Start[Int((v >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends a literal's bytes (no String on the line-writing path).
    @inline(__always)
    mutating func append(literal s: StaticString) {
        append(contentsOf: UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
}
