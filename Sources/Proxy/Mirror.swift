// Shadow copies of a request (filled in by the mirroring feature).
import HTTP1
import Reactor
import Routing

final class MirrorFanout {
    static func start(worker: Worker, snapshot: Snapshot, route: Route, mask: UInt64, view: RequestView,
                      clientIP: [UInt8], secure: Bool, requestID: UInt64,
                      bodyMode: ClientConnection.BodyMode, contentLength: Int64) -> MirrorFanout? {
        nil
    }

    func copyBody(_ bytes: UnsafeRawBufferPointer) {}
    func bodyComplete() {}
    func primaryDone() {}
    func abandon() {}
}
