// Label sets of the labelled metric families as small dense ids. A worker asks for the ids of
// its snapshot's routes, pools and endpoints when it adopts the snapshot (under a lock, off the
// request path); a request then only carries the ids and bumps the worker's own slots at them.
import Synchronization

/// One family's label sets: `["route", "variant", "upstream"]` values to an id, and back to the
/// values and their exposition text.
public final class SeriesTable: Sendable {
    public struct Series: Sendable {
        public let values: [String]
        /// `name="value",...` with Prometheus escaping, ready for a sample line.
        public let labels: String
        /// The endpoint id this series belongs to (endpoint tables), else -1.
        public let endpointID: Int
    }

    public let labelNames: [String]
    /// Ids are below this: per-worker slot tables are sized by it.
    public let capacity: Int
    private struct State {
        var ids: [String: Int] = [:]
        var series: [Series?] = []
        /// Released ids, given out again (endpoint tables only release).
        var free: [Int] = []
    }
    private let state = Mutex(State())

    public init(labels: [String], capacity: Int) {
        labelNames = labels
        self.capacity = capacity
    }

    private static func key(_ values: [String]) -> String { values.joined(separator: "\u{0}") }

    /// The id of a label set, assigned on first use; -1 when the table is full.
    public func id(_ values: [String], endpointID: Int = -1) -> Int {
        precondition(values.count == labelNames.count)
        let k = Self.key(values)
        return state.withLock { s in
            if let id = s.ids[k] { return id }
            let id: Int
            if let reused = s.free.popLast() {
                id = reused
            } else {
                guard s.series.count < capacity else { return -1 }
                id = s.series.count
                s.series.append(nil)
            }
            let labels = zip(labelNames, values).map { "\($0)=\"\(Self.escape($1))\"" }.joined(separator: ",")
            s.series[id] = Series(values: values, labels: labels, endpointID: endpointID)
            s.ids[k] = id
            return id
        }
    }

    /// The id of a label set if it has one, without assigning one.
    public func existingID(_ values: [String]) -> Int? { state.withLock { $0.ids[Self.key(values)] } }

    public func series(_ id: Int) -> Series? {
        state.withLock { s in id >= 0 && id < s.series.count ? s.series[id] : nil }
    }

    /// Every live series with its id, in id order.
    public func all() -> [(id: Int, series: Series)] {
        state.withLock { s in s.series.enumerated().compactMap { i, e in e.map { (i, $0) } } }
    }

    /// Releases the series `release` picks; their ids are given out again. Only for gauges whose
    /// slots are back at zero on every worker (an endpoint with nothing in flight): a counter's
    /// history would pass to the next owner.
    @discardableResult
    public func release(where release: (Int, Series) -> Bool) -> Int {
        state.withLock { s in
            var n = 0
            for (i, e) in s.series.enumerated() {
                guard let e, release(i, e) else { continue }
                s.series[i] = nil
                s.ids[Self.key(e.values)] = nil
                s.free.append(i)
                n += 1
            }
            return n
        }
    }

    /// Label value escaping of the text format: backslash, double quote and line feed.
    public static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return s }
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

/// The label sets every worker shares, one table per family shape.
public final class MetricSeries: Sendable {
    /// `{route,variant,upstream}`: requests by outcome, request duration (summed over upstream
    /// when exposed), routed requests.
    public let routes = SeriesTable(labels: ["route", "variant", "upstream"], capacity: 4096)
    /// `{upstream,color}`: upstream response time (and, later, per-pool retries and ejections).
    public let pools = SeriesTable(labels: ["upstream", "color"], capacity: 4096)
    /// `{upstream,color,endpoint}`: in flight (and health). Two pools that share an address are
    /// two series.
    public let endpoints = SeriesTable(labels: ["upstream", "color", "endpoint"], capacity: 65_536)
    /// `{route,shadow}`: shadow copies by outcome.
    public let mirrors = SeriesTable(labels: ["route", "shadow"], capacity: 4096)

    /// Label values of what the proxy could not attribute (a request no route matched, or
    /// whose head never parsed), and of a plain pool's color.
    public static let none = "-"
    public static let defaultVariant = "default"
    public static let noColor = "none"

    public init() {}
}
