// The observability sections of the config: "accessLog" (where each exchange's JSON line goes,
// which share is sampled, how much of the query is kept) and "tracing" (W3C traceparent).
extension Config {
    public struct AccessLog: Sendable, Equatable {
        /// "stdout", or a file path (opened for appending; SIGUSR1 opens it again).
        public var path: String
        /// Share of exchanges logged, 0...1.
        public var sample: Double = 1
        /// The query string is cut after this many bytes.
        public var maxQueryBytes: Int = 256

        public init(path: String, sample: Double = 1, maxQueryBytes: Int = 256) {
            self.path = path
            self.sample = sample
            self.maxQueryBytes = maxQueryBytes
        }
    }

    public struct Tracing: Sendable, Equatable {
        /// A request without a valid traceparent gets a new trace (the proxy's traceparent
        /// upstream and its id in the access log). Off: a valid one is passed on, an invalid one
        /// dropped.
        public var startWhenMissing = false

        public init(startWhenMissing: Bool = false) { self.startWhenMissing = startWhenMissing }
    }
}

extension ConfigParser {
    func accessLog(_ value: ConfigValue) -> Config.AccessLog? {
        guard let object = value.object(keys: ["path", "sample", "maxQueryBytes"]),
              let path = object.required("path")?.nonEmptyString() else { return nil }
        var log = Config.AccessLog(path: path)
        if let field = object["sample"], let sample = field.number() {
            if (0...1).contains(sample) { log.sample = sample } else { field.error("must be between 0 and 1, got \(sample)") }
        }
        log.maxQueryBytes = object.int("maxQueryBytes", default: log.maxQueryBytes, 0...65_536)
        return log
    }

    func tracing(_ value: ConfigValue) -> Config.Tracing {
        var tracing = Config.Tracing()
        guard let object = value.object(keys: ["startWhenMissing"]) else { return tracing }
        tracing.startWhenMissing = object["startWhenMissing"]?.bool() ?? false
        return tracing
    }
}
