// The top-level `hooks`: where release events are posted (a chat bridge, a job that runs a
// database rollback on a rollback), each signed with an HMAC of its body.
//
//   "hooks": [ { "url": "https://hooks.example.com/switchyard", "events": ["rolled_back", "flip"],
//                "secretFile": "/etc/switchyard/hook.secret" } ]
import Routing

extension Config {
    public struct Hook: Sendable, Equatable {
        /// Every event a hook may ask for; an empty `events` means all of them.
        public static let events = ["started", "shadow_passed", "step", "paused", "resumed", "promoted", "rolled_back", "aborted",
                                    "guard_passed", "guard_reverted", "flip"]

        public var url: String
        public var events: [String]
        public var secret: Secret?
        public var caFile: String?
        public var timeoutMs: Int
        public var maxAttempts: Int

        public init(url: String, events: [String] = [], secret: Secret? = nil, caFile: String? = nil, timeoutMs: Int = 5000,
                    maxAttempts: Int = 5) {
            self.url = url
            self.events = events
            self.secret = secret
            self.caFile = caFile
            self.timeoutMs = timeoutMs
            self.maxAttempts = maxAttempts
        }

        public func wants(_ event: String) -> Bool { events.isEmpty || events.contains(event) }
    }
}

extension ConfigParser {
    package static let maxHooks = 16

    /// An `http://` or `https://` URL with a host, at most 2 KiB: what the control plane's
    /// client may call (hooks, a webhook gate, a Google ID token's audience).
    static func isHTTPURL(_ text: String) -> Bool {
        guard text.utf8.count <= 2048, let url = HTTPURL(text) else { return false }
        return url.host.utf8.count > 0
    }

    /// The object's required `url`, an http(s) URL; nil (with an error naming it) otherwise.
    func requiredHTTPURL(_ object: ConfigObject) -> String? {
        guard let field = object.required("url"), let text = field.nonEmptyString() else { return nil }
        guard Self.isHTTPURL(text) else {
            field.error("\"\(text)\" is not an http:// or https:// URL")
            return nil
        }
        return text
    }

    func hooks(_ value: ConfigValue) -> [Config.Hook] {
        guard let elements = value.array() else { return [] }
        if elements.count > Self.maxHooks { value.error("at most \(Self.maxHooks) hooks, got \(elements.count)") }
        var hooks: [Config.Hook] = []
        for element in elements.prefix(Self.maxHooks) {
            guard let object = element.object(keys: ["url", "events", "secretFile", "secretEnv", "caFile", "timeoutMs", "maxAttempts"])
            else { continue }
            let url = requiredHTTPURL(object)
            var events: [String] = []
            if let field = object["events"], let list = field.array() {
                for item in list {
                    guard let name = item.string() else { continue }
                    if Config.Hook.events.contains(name) {
                        events.append(name)
                    } else {
                        item.error("unknown event \"\(name)\"" + ConfigTokens.suggestion(for: name, among: Config.Hook.events)
                                   + "; events: " + Config.Hook.events.joined(separator: ", "))
                    }
                }
            }
            var secret: Config.Secret?
            if object.atMostOne(of: ["secretFile", "secretEnv"]) == 1 {
                if let field = object["secretFile"] { secret = secretFile(field) }
                if let field = object["secretEnv"] { secret = secretEnv(field) }
            }
            let caFile = object["caFile"]?.nonEmptyString()
            let timeoutMs = object.int("timeoutMs", default: 5000, 100...60_000)
            let maxAttempts = object.int("maxAttempts", default: 5, 1...20)
            if let url {
                hooks.append(Config.Hook(url: url, events: events, secret: secret, caFile: caFile, timeoutMs: timeoutMs,
                                         maxAttempts: maxAttempts))
            }
        }
        return hooks
    }
}
