// Release events posted to the config's `hooks`: one JSON POST per event and hook, signed with
// `X-Switchyard-Signature: sha256=<hex HMAC-SHA256 of the body>` when the hook has a secret (the
// scheme GitHub's webhooks use), retried with exponential backoff (0.5 s doubling, at most 30 s
// between tries, `maxAttempts` tries) on a queue of the hook's own, never on a request or the
// control plane's queue. At most 256 deliveries wait per hook; beyond, an event is dropped.
// Every outcome is counted for /metrics; a delivery that fails for good is one log line.
import Config
import Crypto
import Dispatch
import Fetch
import Foundation
import Proxy
import Routing
import SigV4
import Synchronization

public final class Hooks: Sendable {
    public static let maxPending = 256

    /// Deliveries by event and result (delivered, failed, dropped, retried).
    public struct Counts: Sendable {
        public var byEvent: [String: [String: UInt64]] = [:]
    }

    private final class Target: Sendable {
        let hook: Config.Hook
        let url: HTTPURL
        let queue: DispatchQueue
        let pending = Atomic<Int>(0)

        init?(_ hook: Config.Hook) {
            guard let url = HTTPURL(hook.url) else { return nil }
            self.hook = hook
            self.url = url
            queue = DispatchQueue(label: "switchyard.hook")
        }
    }

    private let targets = Mutex<[Target]>([])
    private let counts = Mutex(Counts())
    private let log: @Sendable (String) -> Void
    private let instance: String

    public init(_ hooks: [Config.Hook], instance: String, log: @escaping @Sendable (String) -> Void) {
        self.log = log
        self.instance = instance
        configure(hooks)
    }

    /// The hooks of a new config (reload); deliveries under way finish with the old settings.
    public func configure(_ hooks: [Config.Hook]) {
        targets.withLock { current in
            current = hooks.map { hook in current.first { $0.hook == hook } ?? Target(hook) }.compactMap { $0 }
        }
    }

    public var snapshot: Counts { counts.withLock { $0 } }

    /// Posts `event` with `fields` to every hook that asks for it.
    public func emit(_ event: String, _ fields: [(String, ControlValue)]) {
        let targets = self.targets.withLock { $0.filter { $0.hook.wants(event) } }
        guard !targets.isEmpty else { return }
        var body: ControlValue = ["event": .string(event), "time": .string(Timestamp.string()), "instance": .string(instance)]
        for (key, value) in fields { body.set(key, value) }
        let bytes = Array(body.json.utf8)
        for target in targets {
            guard target.pending.add(1, ordering: .relaxed).newValue <= Self.maxPending else {
                target.pending.subtract(1, ordering: .relaxed)
                count(event, "dropped")
                log("hook \(target.hook.url): \(event) dropped: \(Self.maxPending) deliveries already wait")
                continue
            }
            let delivery = String(UInt64.random(in: 1...UInt64.max), radix: 16)
            target.queue.async { [self] in deliver(bytes, event: event, delivery: delivery, to: target, attempt: 1) }
        }
    }

    /// One JSON POST of `event` to `url`, signed with `secret` when there is one: the answer's
    /// status. Hooks and the rollout gates' webhook both send this way.
    public static func post(_ body: [UInt8], event: String, delivery: String? = nil, to url: HTTPURL, secret: [UInt8]?,
                            caFile: String? = nil, timeoutMs: Int) throws(FetchError) -> Int {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("X-Switchyard-Event", event)]
        if let delivery { headers.append(("X-Switchyard-Delivery", delivery)) }
        if let secret { headers.append(("X-Switchyard-Signature", signature(secret: secret, body: body))) }
        let request = FetchRequest(method: "POST", path: url.path.isEmpty ? "/" : url.path, headers: headers, body: body)
        return try Fetch.perform(request, to: url, caFile: caFile, timeout: Double(timeoutMs) / 1000, maxBytes: 64 << 10).status
    }

    private func deliver(_ body: [UInt8], event: String, delivery: String, to target: Target, attempt: Int) {
        var problem: String
        do throws(FetchError) {
            let status = try Self.post(body, event: event, delivery: delivery, to: target.url, secret: target.hook.secret?.bytes,
                                       caFile: target.hook.caFile, timeoutMs: target.hook.timeoutMs)
            if (200...299).contains(status) {
                target.pending.subtract(1, ordering: .relaxed)
                count(event, "delivered")
                return
            }
            problem = "answered \(status)"
        } catch {
            problem = error.description
        }
        guard attempt < target.hook.maxAttempts else {
            target.pending.subtract(1, ordering: .relaxed)
            count(event, "failed")
            log("hook \(target.hook.url): \(event) (delivery \(delivery)) not delivered after \(attempt) tries: \(problem)")
            return
        }
        count(event, "retried")
        let wait = min(30, 0.5 * Double(1 << min(attempt - 1, 10)))
        target.queue.asyncAfter(deadline: .now() + wait) { [self] in
            deliver(body, event: event, delivery: delivery, to: target, attempt: attempt + 1)
        }
    }

    /// `sha256=<hex HMAC-SHA256 of body>`, the value of X-Switchyard-Signature.
    public static func signature(secret: [UInt8], body: [UInt8]) -> String {
        "sha256=" + String(decoding: SigV4.hex(HMACSHA256.mac(key: secret, message: body)), as: UTF8.self)
    }

    private func count(_ event: String, _ result: String) {
        counts.withLock { $0.byEvent[event, default: [:]][result, default: 0] &+= 1 }
    }
}

/// Flips become hook events as they commit (from the control socket, a guard's revert or a
/// rollout alike).
final class HookFlips: RuntimeObserver {
    let hooks: Hooks
    init(_ hooks: Hooks) { self.hooks = hooks }

    func committed(_ result: RuntimeState.CommitResult, _ changes: [RuntimeChange]) {
        for change in changes {
            if case .live(let upstream, let color) = change {
                hooks.emit("flip", [("upstream", .string(upstream)), ("live", .string(color.name)),
                                    ("version", .int(Int(clamping: result.version)))])
            }
        }
    }
}
