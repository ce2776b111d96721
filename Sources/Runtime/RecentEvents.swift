// The latest changes to what the proxy serves (commits: flips, weights, a rollout's steps and
// rollbacks, guard reverts; reloads applied or refused), newest last, for the admin status
// page. Kept on the state queue; a fixed number, so a busy rollout cannot grow it.
import Foundation

package struct RecentEvents: Sendable {
    package struct Event: Sendable {
        /// Unix seconds.
        package var at: Double
        /// `change`, `reload` or `reload refused`.
        package var kind: String
        package var detail: String

        package init(at: Double, kind: String, detail: String) {
            self.at = at
            self.kind = kind
            self.detail = detail
        }
    }

    package static let capacity = 50
    package private(set) var events: [Event] = []

    mutating func record(_ kind: String, _ detail: String) {
        events.append(Event(at: Date().timeIntervalSince1970, kind: kind, detail: detail))
        if events.count > Self.capacity { events.removeFirst(events.count - Self.capacity) }
    }
}
