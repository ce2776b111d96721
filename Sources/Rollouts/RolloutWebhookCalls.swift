// The gates' webhook, called from the rollout runner: a POST per step that waits for it, off the
// state queue, its answer kept for the next tick (RolloutStatus judges; this only asks).
import Config
import Fetch
import Routing
import Runtime

extension RolloutRunner {
    /// Asks the gates' webhook, off the state queue (on a queue of its own, so a slow webhook
    /// holds no Prometheus reading), once the step's time is up and it has not said yes for this
    /// step: at most every 2 s, one call per route at a time.
    func askWebhookIfDue(_ route: String, _ status: RolloutStatus, now: Double) {
        guard !webhookAsking.contains(route), let webhook = status.plan.gates.webhook, status.step >= 0,
              status.step + 1 < status.plan.steps.count,
              let due = status.nextStepAt(), now >= due, webhookAnswers[route].map({ $0.step != status.step || !$0.ok }) ?? true,
              now - (webhookAskedAt[route] ?? 0) >= 2, let url = HTTPURL(webhook.url) else { return }
        webhookAskedAt[route] = now
        webhookAsking.insert(route)
        let step = status.step
        var payload: ControlValue = ["route": .string(route), "variant": .string(status.plan.variant),
                                     "baseline": .string(status.plan.baseline), "step": .int(step + 1),
                                     "weight": .int(status.weight), "nextWeight": .int(status.plan.steps[step + 1])]
        payload.set("event", .string("confirm_step"))
        let body = Array(payload.json.utf8)
        let queue = state.queue
        webhookCalls.async { [weak self] in
            let answer: WebhookAnswer
            var secret: [UInt8]?
            if let file = webhook.secretFile {
                // Unsigned, the call would be refused for a reason nobody sees: say so instead.
                switch ConfigFiles.read(file) {
                case .success(let bytes): secret = ConfigParser.strippingTrailingNewlines(bytes)
                case .failure(let failure):
                    queue.async { [weak self] in
                        self?.webhookAsking.remove(route)
                        self?.webhookAnswers[route] = WebhookAnswer(step: step, ok: false, detail: "cannot read its secret file \(file): \(failure)")
                    }
                    return
                }
            }
            do throws(FetchError) {
                let status = try Hooks.post(body, event: "confirm_step", to: url, secret: secret, timeoutMs: webhook.timeoutMs)
                answer = WebhookAnswer(step: step, ok: (200...299).contains(status), detail: "answered \(status)")
            } catch {
                answer = WebhookAnswer(step: step, ok: false, detail: error.description)
            }
            queue.async { [weak self] in
                self?.webhookAsking.remove(route)
                self?.webhookAnswers[route] = answer
            }
        }
    }
}
