// The process-wide settings of the configuration: listeners, limits, timeouts, the control
// socket and the admin listener (Config.swift holds the document they belong to).
import TLS

extension Config {
    public struct Listener: Sendable, Equatable {
        public var address: Address
        /// nil: plain HTTP.
        public var tls: TLSServerSettings?
        public init(address: Address, tls: TLSServerSettings? = nil) {
            self.address = address
            self.tls = tls
        }
    }

    public struct Limits: Sendable, Equatable {
        public var maxConnections = 10_000
        public var maxHeaderBytes = 16_384
        public var maxHeaders = 100
        public var maxUriBytes = 8_192
        /// 0 = unlimited.
        public var maxBodyBytes = 0
        /// Request bodies up to this many bytes are read whole before an upstream connection is
        /// taken (0 = off). NGINX buffers request bodies by default, 16 KiB of them in memory on
        /// 64-bit (client_body_buffer_size), HAProxy's http-buffer-request waits for one buffer
        /// (tune.bufsize, 16 KiB): the same here, and it fits the 32 KiB block a client already
        /// reads into, so it costs no memory.
        public var bufferBodyBytes = 16_384
        /// Response heads from upstreams: real applications send large cookie sets, so these
        /// are larger than the request limits; over them the client gets a 502 that says so and
        /// the endpoint is not counted as failing.
        public var maxResponseHeaderBytes = 65_536
        public var maxResponseHeaders = 200
        public init() {}
    }

    public struct Timeouts: Sendable, Equatable {
        public var connectMs = 2_000
        public var headerMs = 10_000
        public var responseMs = 60_000
        public var idleMs = 60_000
        public var upstreamIdleMs = 30_000
        public var drainMs = 10_000
        /// A TLS client's handshake must complete within this.
        public var handshakeMs = 10_000
        /// A tunnel (WebSocket) with no byte either way for this long is closed (HAProxy's
        /// `timeout tunnel`): idle WebSockets were cut at idleMs without a close frame.
        public var tunnelMs = 3_600_000
        /// The longest gap between two reads of a response once its head arrived (NGINX's
        /// `proxy_read_timeout`): a server-sent event stream may pause longer than keep-alive idles.
        public var readMs = 60_000
        /// The whole request body must arrive within this, counted from its head (idleMs bounds
        /// the gaps): one byte a second kept a POST, and its upstream slot, for as long as it liked.
        public var bodyMs = 300_000
        public init() {}
    }

    public struct ControlSocket: Sendable, Equatable {
        public var socket = "/run/switchyard/control.sock"
        /// Permission bits of the socket file.
        public var mode = 0o600
        /// Accept a mode that lets every local user connect (and so change the proxy).
        public var forceMode = false
        /// A client that sends no command for this long, outside a transaction, is closed.
        public var idleTimeoutMs = 60_000
        /// Where runtime changes are saved; nil keeps them in memory only.
        public var stateFile: String? = nil
        public init() {}
    }

    public struct Admin: Sendable, Equatable {
        public var address: Address
        /// Open admin connections; at the cap a new one closes the one idle the longest.
        public var maxConnections: Int

        public init(address: Address, maxConnections: Int = 64) {
            self.address = address
            self.maxConnections = maxConnections
        }
    }
}
