// The gates' webhook, called from the rollout runner: a POST per step that waits for it, off the
// state queue, its answer kept for the next tick (RolloutStatus judges; this only asks).
import Config
import Fetch
import Routing
import Runtime

extension RolloutRunner {
    /// Asks the gates' webhook, off the state queue, once the step's time is up and it has not
    /// said yes for this step: at most every 2 s, one call at a time.
    func askWebhookIfDue(_ route: String, _ status: RolloutStatus, now: Double) {
        guard let webhook = status.plan.gates.webhook, status.step >= 0, status.step + 1 < status.plan.steps.count,
              let due = status.nextStepAt(), now >= due, webhookAnswers[route].map({ $0.step != status.step || !$0.ok }) ?? true,
              now - (webhookAskedAt[route] ?? 0) >= 2, let url = HTTPURL(webhook.url) else { return }
        webhookAskedAt[route] = now
        let step = status.step
        var payload: ControlValue = ["route": .string(route), "variant": .string(status.plan.variant),
                                     "baseline": .string(status.plan.baseline), "step": .int(step + 1),
                                     "weight": .int(status.weight), "nextWeight": .int(status.plan.steps[step + 1])]
        payload.set("event", .string("confirm_step"))
        let body = Array(payload.json.utf8)
        let queue = state.queue
        queries.async { [weak self] in
            var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("X-Switchyard-Event", "confirm_step")]
            if let file = webhook.secretFile, case .success(let bytes) = ConfigFiles.read(file) {
                headers.append(("X-Switchyard-Signature", Hooks.signature(secret: ConfigParser.strippingTrailingNewlines(bytes), body: body)))
            }
            let answer: WebhookAnswer
            do throws(FetchError) {
                let r = try Fetch.perform(FetchRequest(method: "POST", path: url.path.isEmpty ? "/" : url.path, headers: headers, body: body),
                                          to: url, timeout: Double(webhook.timeoutMs) / 1000, maxBytes: 64 << 10)
                answer = WebhookAnswer(step: step, ok: (200...299).contains(r.status), detail: "answered \(r.status)")
            } catch {
                answer = WebhookAnswer(step: step, ok: false, detail: error.description)
            }
            queue.async { [weak self] in self?.webhookAnswers[route] = answer }
        }
    }
}
