import Logging
import Synchronization

/// What a handler knows about the call it serves, and what it may set on the response.
///
/// One per call, shared by the transport, interceptors and the handler; mutable parts are lock-protected.
public final class ServerContext: Sendable {
    /// The method being called.
    public let method: MethodDescriptor
    /// The request headers, less transport headers (`:path`, `content-type`, `grpc-timeout`, ...).
    public let requestMetadata: Metadata
    /// When the caller stops waiting, if it said (`grpc-timeout`).
    public let deadline: ContinuousClock.Instant?
    /// The peer's address, e.g. `ipv4:127.0.0.1:53122`.
    public let peer: String
    /// Whether the current request message arrived compressed (set per message for streaming calls).
    public var requestMessageCompressed: Bool {
        get { mutable.withLock { $0.requestMessageCompressed } }
        set { mutable.withLock { $0.requestMessageCompressed = newValue } }
    }
    private let baseLogger: Logger

    /// A logger carrying the call's method and what interceptors attached (request and trace ids), built on access:
    /// most calls never log.
    public var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "rpc.method"] = "\(method)"
        // In the order added, so a key added twice keeps its last value.
        for (key, value) in mutable.withLock({ $0.loggerMetadata }) { logger[metadataKey: key] = .string(value) }
        return logger
    }

    /// The level below which the call's log lines are dropped: check it before building a line's metadata, which
    /// ``logger`` builds on every access.
    public var logLevel: Logger.Level { baseLogger.logLevel }

    /// Adds metadata to every log line of this call.
    /// - Parameters:
    ///   - key: the key, e.g. `request_id`.
    ///   - value: the value.
    public func addLoggerMetadata(_ key: String, _ value: String) {
        // Kept as a list (no hashing) until a line is logged: most calls never log.
        mutable.withLock { $0.loggerMetadata.append((key, value)) }
    }

    private struct Mutable {
        var initialMetadata = Metadata()
        var trailingMetadata = Metadata()
        var compressResponses: Bool
        var requestMessageCompressed = false
        var values: [ObjectIdentifier: any Sendable] = [:]
        var loggerMetadata: [(String, String)] = []
    }

    private let mutable: Mutex<Mutable>

    /// Creates a context (done by the transport).
    /// - Parameters:
    ///   - method: the method called.
    ///   - requestMetadata: the caller's metadata.
    ///   - deadline: the caller's deadline.
    ///   - peer: the caller's address.
    ///   - compressResponses: whether responses are compressed unless the handler says otherwise.
    ///   - logger: the call's logger.
    public init(
        method: MethodDescriptor,
        requestMetadata: Metadata,
        deadline: ContinuousClock.Instant?,
        peer: String,
        compressResponses: Bool,
        logger: Logger
    ) {
        self.method = method
        self.requestMetadata = requestMetadata
        self.deadline = deadline
        self.peer = peer
        self.baseLogger = logger
        self.mutable = Mutex(Mutable(compressResponses: compressResponses))
    }

    /// Metadata sent in the response headers; set it before the first response message.
    public var initialMetadata: Metadata {
        get { mutable.withLock { $0.initialMetadata } }
        set { mutable.withLock { $0.initialMetadata = newValue } }
    }

    /// Metadata sent in the trailers with the status.
    public var trailingMetadata: Metadata {
        get { mutable.withLock { $0.trailingMetadata } }
        set { mutable.withLock { $0.trailingMetadata = newValue } }
    }

    /// Whether response messages are compressed (when the caller accepts the server's encoding).
    public var compressResponses: Bool {
        get { mutable.withLock { $0.compressResponses } }
        set { mutable.withLock { $0.compressResponses = newValue } }
    }

    /// A value an interceptor attached for later stages (e.g. the verified identity).
    /// - Parameter key: the value's type.
    public subscript<Value: Sendable>(_ key: Value.Type) -> Value? {
        get { mutable.withLock { $0.values[ObjectIdentifier(key)] as? Value } }
        set { mutable.withLock { $0.values[ObjectIdentifier(key)] = newValue } }
    }

    /// The time left before the deadline, or nil when there is none.
    public var timeRemaining: Duration? { deadline.map { $0 - .now } }
}
