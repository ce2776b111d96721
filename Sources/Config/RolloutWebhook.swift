// A rollout gate that asks another system: before each next step begins, a POST to `url` must
// answer 2xx (Flagger's confirm-promotion webhook): a load test that must pass, a change window
// kept elsewhere, a person's button. Anything else holds the step, asked again every few seconds.
//
//   "gates": { "webhook": { "url": "https://ci.example.com/confirm", "secretFile": PATH, "timeoutMs": 5000 } }

public struct RolloutWebhook: Sendable, Equatable, Codable {
    public var url: String
    /// Signs the body (X-Switchyard-Signature, as hooks do); read at each call, so it may rotate.
    public var secretFile: String?
    public var timeoutMs: Int

    public init(url: String, secretFile: String? = nil, timeoutMs: Int = 5000) {
        self.url = url
        self.secretFile = secretFile
        self.timeoutMs = timeoutMs
    }
}

/// What the webhook said for a step.
public struct WebhookAnswer: Sendable, Equatable {
    public var step: Int
    public var ok: Bool
    public var detail: String

    public init(step: Int, ok: Bool, detail: String) {
        self.step = step
        self.ok = ok
        self.detail = detail
    }
}

extension ConfigParser {
    func rolloutWebhook(_ value: ConfigValue) -> RolloutWebhook? {
        guard let object = value.object(keys: ["url", "secretFile", "timeoutMs"]) else { return nil }
        let url = requiredHTTPURL(object)
        var secretFile: String?
        // Read now too, so that a missing or unsafe file is a config error; read again at each call.
        if let field = object["secretFile"], let path = field.nonEmptyString(), self.secretFile(field) != nil { secretFile = path }
        let timeoutMs = object.int("timeoutMs", default: 5000, 100...60_000)
        return url.map { RolloutWebhook(url: $0, secretFile: secretFile, timeoutMs: timeoutMs) }
    }
}
