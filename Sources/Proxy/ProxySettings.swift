// What the data path needs from the configuration: listeners, limits and timeouts.
import HTTP1
import Reactor

public struct ProxySettings: Sendable {
    public var workers: Int = 0
    public var listeners: [SocketAddress] = []
    public var maxConnections: Int = 10_000
    public var limits = HTTPLimits()
    /// Limits of response heads (larger than the request limits by default).
    public var responseLimits = HTTPLimits(maxHeadBytes: 65_536, maxHeaders: 200)
    /// 0 = unlimited.
    public var maxBodyBytes: Int64 = 0
    /// Bodies up to this are read whole before an upstream is taken; 0 = off.
    public var bufferBodyBytes: Int64 = 16_384
    public var connectMs: UInt64 = 2_000
    public var headerMs: UInt64 = 10_000
    public var responseMs: UInt64 = 60_000
    public var idleMs: UInt64 = 60_000
    public var upstreamIdleMs: UInt64 = 30_000
    public var drainMs: UInt64 = 10_000
    /// A TLS client that has not finished its handshake by then is closed.
    public var handshakeMs: UInt64 = 10_000
    /// A tunnel idle both ways this long is closed.
    public var tunnelMs: UInt64 = 3_600_000
    /// The longest gap between two reads of a response after its head.
    public var readMs: UInt64 = 60_000
    /// The whole request body must arrive within this of its head.
    public var bodyMs: UInt64 = 300_000
    /// nil: no access log.
    public var accessLog: AccessLogSettings? = nil
    public var tracing = TracingSettings()
    /// This instance's name in exposure lines (the fleet's instance name, else the host name).
    public var instance = "switchyard"

    public init() {}
}
