// The latest changes to what the proxy serves (commits: flips, weights, a rollout's steps and
// rollbacks, guard reverts; reloads applied or refused), newest last, for the admin status
// page. Kept on the state queue; a fixed number, so a busy rollout cannot grow it. Each is
// recorded like a rollout's own history: when, what kind, in words.
import Config
import Foundation

package struct RecentEvents: Sendable {
    package static let capacity = 50
    /// `kind`: `change`, `reload` or `reload refused`.
    package private(set) var events: [RolloutEvent] = []

    mutating func record(_ kind: String, _ detail: String) {
        events.append(RolloutEvent(at: Date().timeIntervalSince1970, kind: kind, detail: detail))
        if events.count > Self.capacity { events.removeFirst(events.count - Self.capacity) }
    }
}
