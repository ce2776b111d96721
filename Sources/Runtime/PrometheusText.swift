// Writing the Prometheus text exposition format (version 0.0.4): one HELP and TYPE per family,
// its samples together, histograms as cumulative `_bucket`s ending in `+Inf`, then `_sum` and
// `_count`. A new family is one `family` call and its samples.
import Proxy

package struct PrometheusText {
    package enum Kind: String { case counter, gauge, histogram }

    package private(set) var text = ""

    package init() {}

    package mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    /// One sample; `labels` is `a="x",b="y"` (escaped) or empty.
    package mutating func sample(_ name: String, _ labels: String = "", _ value: UInt64) {
        text += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
    }

    package mutating func sample(_ name: String, _ labels: String = "", _ value: Double) {
        let v = value.isInfinite ? (value > 0 ? "+Inf" : "-Inf") : value.isNaN ? "NaN" : "\(value)"
        text += labels.isEmpty ? "\(name) \(v)\n" : "\(name){\(labels)} \(v)\n"
    }

    /// A whole family of one counter or gauge per row.
    package mutating func family(_ name: String, _ kind: Kind, _ help: String, _ rows: [(labels: String, value: UInt64)]) {
        family(name, kind, help)
        for r in rows { sample(name, r.labels, r.value) }
    }

    /// One histogram series in seconds: `buckets` per LatencyBuckets (not cumulative, the last
    /// is the overflow), `sumNs` in nanoseconds.
    package mutating func histogram(_ name: String, _ labels: String, buckets: [UInt64], sumNs: UInt64) {
        var cumulative: UInt64 = 0
        let prefix = labels.isEmpty ? "" : labels + ","
        for (i, le) in LatencyBuckets.labels.enumerated() {
            cumulative &+= buckets[i]
            text += "\(name)_bucket{\(prefix)le=\"\(le)\"} \(cumulative)\n"
        }
        cumulative &+= buckets[LatencyBuckets.count]
        text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n"
        sample(name + "_sum", labels, Double(sumNs) / 1e9)
        sample(name + "_count", labels, cumulative)
    }
}
