import SwitchboardRPC

/// How a server listens and what it allows.
public struct ServerConfiguration: Sendable {
    /// Address to bind, e.g. `127.0.0.1` or `0.0.0.0`.
    public var host: String
    /// Port to bind; 0 picks a free port.
    public var port: Int
    /// Largest request message accepted (after decompression); larger ones end the call with RESOURCE_EXHAUSTED.
    public var maxReceiveMessageSize: Int
    /// Largest response message a handler may send.
    public var maxSendMessageSize: Int
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised per connection.
    public var maxConcurrentStreams: Int
    /// The HTTP/2 stream window (bytes the peer may send on one stream before we return window).
    public var initialWindowSize: Int
    /// Compress responses (when the client accepts gzip) unless a handler says otherwise.
    public var compressResponses: Bool
    /// Send a PING after this long without frames, to detect dead peers; nil disables.
    public var keepaliveInterval: Duration?
    /// Close the connection if a keepalive PING is not acknowledged within this time.
    public var keepaliveTimeout: Duration
    /// Close a connection that has had no open stream for this long; nil disables.
    public var idleTimeout: Duration?
    /// Minimum interval between client PINGs the server tolerates while it sends nothing.
    public var minPingInterval: Duration
    /// PINGs arriving faster than `minPingInterval` tolerated before GOAWAY ENHANCE_YOUR_CALM.
    public var maxPingStrikes: Int
    /// Queued response bytes per stream above which a handler's write waits.
    public var streamWriteHighWatermark: Int
    /// Longest a handler's write may wait while the client reads none of the stream's queued response bytes; past it
    /// the stream is reset and the handler's write throws, so a client that stops reading cannot hold a handler, and
    /// whatever it holds (a database connection, say), for ever. A client that reads slowly but steadily is not reset,
    /// however long it takes. nil: no limit.
    public var streamWriteStallTimeout: Duration?
    /// Largest request header block (name + value + 32 bytes per field, as HTTP/2 counts), advertised as
    /// SETTINGS_MAX_HEADER_LIST_SIZE and enforced: a larger block resets its stream.
    public var maxHeaderListSize: Int
    /// Most fields in one request header block; more resets the stream.
    public var maxHeaderCount: Int
    /// Decoded (decompressed) request bytes one stream may hold that its handler has not taken yet. Past it the
    /// server stops decoding that stream's messages and stops returning its flow-control window.
    public var maxBufferedRequestBytesPerStream: Int
    /// Decoded request bytes all streams of one connection may hold together (single-request messages count until
    /// their call ends); past it no stream of the connection decodes more until some are taken.
    public var maxBufferedRequestBytesPerConnection: Int
    /// A new connection must send the HTTP/2 preface and SETTINGS, and every request header block must complete,
    /// within this time; otherwise the connection is closed.
    public var headerTimeout: Duration
    /// Most client connections served at once; further connections are closed as soon as they are accepted.
    public var maxConnections: Int
    /// TLS with ALPN `h2`; nil for plaintext HTTP/2 (h2c with prior knowledge).
    public var tls: ServerTLS?
    /// Start each handler task on its connection's event loop (a task-executor preference) instead of the global
    /// cooperative pool. It saves two cross-thread hops per call; handlers must not block either way (blocking
    /// work, such as libpq calls, belongs on dedicated threads).
    public var runHandlersOnEventLoop: Bool

    /// Creates a configuration with production defaults.
    /// - Parameters:
    ///   - host: address to bind.
    ///   - port: port to bind.
    public init(host: String = "127.0.0.1", port: Int = 0) {
        self.host = host
        self.port = port
        self.maxReceiveMessageSize = 4 * 1024 * 1024
        self.maxSendMessageSize = 4 * 1024 * 1024
        self.maxConcurrentStreams = 100
        self.initialWindowSize = 1 << 20
        self.compressResponses = false
        self.keepaliveInterval = .seconds(7200)
        self.keepaliveTimeout = .seconds(20)
        self.idleTimeout = .seconds(300)
        self.minPingInterval = .seconds(300)
        self.maxPingStrikes = 2
        self.streamWriteHighWatermark = 256 * 1024
        self.streamWriteStallTimeout = .seconds(30)
        self.maxHeaderListSize = 16 * 1024
        self.maxHeaderCount = 256
        self.maxBufferedRequestBytesPerStream = 1 << 20
        self.maxBufferedRequestBytesPerConnection = 32 << 20
        self.headerTimeout = .seconds(10)
        self.maxConnections = 4096
        self.tls = nil
        self.runHandlersOnEventLoop = true
    }
}

/// Certificate and key for serving TLS with ALPN `h2`.
public struct ServerTLS: Sendable {
    /// PEM file with the certificate chain.
    public var certificateChainPath: String
    /// PEM file with the private key.
    public var privateKeyPath: String

    /// Creates a TLS configuration.
    /// - Parameters:
    ///   - certificateChainPath: PEM certificate chain.
    ///   - privateKeyPath: PEM private key.
    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }
}
