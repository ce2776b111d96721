// Starting and joining the OS threads that run event loops.
import Glibc

private final class ThreadBox {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

public struct LoopThread: @unchecked Sendable {
    let handle: pthread_t

    /// Starts `body` on a new thread.
    public static func start(_ body: @escaping @Sendable () -> Void) -> LoopThread {
        let box = Unmanaged.passRetained(ThreadBox(body)).toOpaque()
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            let box = Unmanaged<ThreadBox>.fromOpaque(arg!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(r == 0, "pthread_create failed: \(r)")
        return LoopThread(handle: t)
    }

    public func join() {
        _ = pthread_join(handle, nil)
    }
}
