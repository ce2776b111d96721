// "watchConfig": reload when the config file changes. A Kubernetes ConfigMap volume changes by
// swapping a `..data` symlink to a new directory, which inotify on the file itself never sees;
// so the path is stat'ed (following links) every `interval`, and a change is reloaded once it
// has held for one more tick (an editor's write in two steps is read whole). Detection takes at
// most two intervals (0.5 s by default); a refused file is logged once, not on every tick.
import Config
import Dispatch
import Glibc

public final class ConfigWatcher: @unchecked Sendable {
    public let path: String
    public let interval: Double
    private let state: RuntimeState
    private let queue = DispatchQueue(label: "switchyard.config.watch")
    // Confined to `queue`:
    private var timer: (any DispatchSourceTimer)?
    private var loaded: Identity?
    private var candidate: Identity?

    /// What tells one version of the file from another: the file a path leads to and its
    /// size and times.
    struct Identity: Equatable {
        var device: UInt64, inode: UInt64, size: Int64
        var modified: Int, modifiedNanos: Int, changed: Int, changedNanos: Int

        init?(_ path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modified = st.st_mtim.tv_sec
            modifiedNanos = st.st_mtim.tv_nsec
            changed = st.st_ctim.tv_sec
            changedNanos = st.st_ctim.tv_nsec
        }
    }

    public init(path: String, state: RuntimeState, interval: Double = 0.25) {
        self.path = path
        self.state = state
        self.interval = max(interval, 0.01)
    }

    /// Takes the file as it is now as the loaded one and starts watching.
    public func start() {
        queue.sync {
            loaded = Identity(path)
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(Int(interval * 100)))
            // The source holds the watcher until `stop`.
            timer.setEventHandler { [self] in tick() }
            timer.resume()
            self.timer = timer
        }
    }

    public func stop() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }

    private func tick() {
        // A path that is briefly missing (a hand-made swap) is no change yet.
        guard let now = Identity(path), now != loaded else {
            candidate = nil
            return
        }
        guard now == candidate else {
            candidate = now
            return
        }
        loaded = now
        candidate = nil
        state.reloadAndLog(because: "config file changed")
    }
}
