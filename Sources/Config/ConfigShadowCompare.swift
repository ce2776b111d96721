// A mirror's `compare` block: what of the shadow's answer is held against the primary's.
// `"compare": { "status": true | "exact" | "class", "latency": true, "bodyHash": false }`.

import Routing

extension Config.Mirror {
    public struct Compare: Sendable, Equatable {
        public enum Status: String, Sendable, Equatable {
            /// Statuses are not compared.
            case off
            /// The same code (200 vs 201 differ).
            case exact
            /// The same class (2xx vs 2xx match).
            case `class`
        }

        public var status: Status
        public var latency: Bool
        public var bodyHash: Bool

        public init(status: Status = .exact, latency: Bool = true, bodyHash: Bool = false) {
            self.status = status
            self.latency = latency
            self.bodyHash = bodyHash
        }
    }
}

extension ConfigParser {
    func mirrorCompare(_ value: ConfigValue) -> Config.Mirror.Compare? {
        guard let object = value.object(keys: ["status", "latency", "bodyHash"]) else { return nil }
        var compare = Config.Mirror.Compare()
        if let field = object["status"] {
            if case .string(let text) = field.node.value {
                switch text {
                case "exact": compare.status = .exact
                case "class": compare.status = .class
                default: field.error("expected true, false, \"exact\" or \"class\", got \"\(text)\"")
                }
            } else if let flag = field.bool() {
                compare.status = flag ? .exact : .off
            }
        }
        if let field = object["latency"], let flag = field.bool() { compare.latency = flag }
        if let field = object["bodyHash"], let flag = field.bool() { compare.bodyHash = flag }
        if compare.status == .off && !compare.latency && !compare.bodyHash {
            value.error("compares nothing: set \"status\", \"latency\" or \"bodyHash\" (or leave \"compare\" out)")
            return nil
        }
        return compare
    }
}

extension Config.Mirror.Compare {
    /// The frozen form the workers read.
    package var spec: ShadowCompareSpec {
        let code: UInt8 = switch status {
        case .off: 0
        case .exact: 1
        case .class: 2
        }
        return ShadowCompareSpec(status: code, latency: latency, bodyHash: bodyHash)
    }
}
