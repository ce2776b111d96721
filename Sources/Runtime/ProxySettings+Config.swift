// Mapping the validated configuration onto what the data path needs.
import Config
import HTTP1
import Proxy
import Reactor

extension Config {
    /// What this instance calls itself to others (exposure lines, hooks): the fleet's instance
    /// name, else the host name.
    public var instanceName: String { fleet?.instance ?? Fleet.hostName() }

    public var proxySettings: ProxySettings {
        var s = ProxySettings()
        s.workers = workers
        s.listeners = listeners.compactMap { SocketAddress(host: $0.address.numericHost ?? $0.address.host, port: $0.address.port) }
        s.maxConnections = limits.maxConnections
        s.limits = HTTPLimits(maxHeadBytes: limits.maxHeaderBytes, maxHeaders: limits.maxHeaders, maxURIBytes: limits.maxUriBytes)
        s.responseLimits = HTTPLimits(maxHeadBytes: limits.maxResponseHeaderBytes, maxHeaders: limits.maxResponseHeaders)
        s.maxBodyBytes = Int64(limits.maxBodyBytes)
        s.bufferBodyBytes = Int64(limits.bufferBodyBytes)
        s.connectMs = UInt64(timeouts.connectMs)
        s.headerMs = UInt64(timeouts.headerMs)
        s.responseMs = UInt64(timeouts.responseMs)
        s.idleMs = UInt64(timeouts.idleMs)
        s.upstreamIdleMs = UInt64(timeouts.upstreamIdleMs)
        s.drainMs = UInt64(timeouts.drainMs)
        s.handshakeMs = UInt64(timeouts.handshakeMs)
        s.tunnelMs = UInt64(timeouts.tunnelMs)
        s.readMs = UInt64(timeouts.readMs)
        s.bodyMs = UInt64(timeouts.bodyMs)
        s.accessLog = accessLog.map { AccessLogSettings(sample: $0.sample, maxQueryBytes: $0.maxQueryBytes) }
        s.tracing = TracingSettings(startWhenMissing: tracing.startWhenMissing)
        s.instance = instanceName
        return s
    }
}
