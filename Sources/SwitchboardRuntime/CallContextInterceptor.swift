import FoundationEssentials
import Glibc
import Logging
import Metrics
import SwitchboardRPC
import Synchronization

/// W3C trace context of a call: the caller's trace id (or a new one) and a new span id for this call.
public struct TraceContext: Sendable, Hashable {
    /// 32 lower-case hex digits.
    public var traceID: String
    /// This call's span, 16 hex digits.
    public var spanID: String
    /// The caller's span, if it sent `traceparent`.
    public var parentSpanID: String?
    /// The trace flags, 2 hex digits: the caller's (its sampling decision is kept), or `01` (sampled) for a new trace.
    public var flags: String

    /// Parses a `traceparent` header (`00-<trace>-<parent>-<flags>`), starting a new trace when it is absent or invalid.
    /// - Parameter header: the header value.
    public init(traceparent header: String?) {
        var random = RandomBytes(count: 24)
        self.init(traceparent: header, random: &random)
    }

    init(traceparent header: String?, random: inout RandomBytes) {
        let parts = header?.split(separator: "-", omittingEmptySubsequences: false).map(String.init) ?? []
        // ASCII hex only (`Character.isHexDigit` takes fullwidth digits too), of the right length; an id of zeros is
        // invalid.
        func isHex(_ s: String, _ n: Int, zeroAllowed: Bool = false) -> Bool {
            s.utf8.count == n && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0) }
                && (zeroAllowed || s.utf8.contains { $0 != 0x30 })
        }
        if parts.count == 4, parts[0] == "00", isHex(parts[1], 32), isHex(parts[2], 16), isHex(parts[3], 2, zeroAllowed: true) {
            traceID = parts[1].lowercased()
            parentSpanID = parts[2].lowercased()
            flags = parts[3].lowercased()
        } else {
            traceID = random.hex(16)
            parentSpanID = nil
            flags = "01"
        }
        spanID = random.hex(8)
    }

    /// The header to send downstream: this call as the parent, with the caller's flags.
    public var traceparent: String { "00-\(traceID)-\(spanID)-\(flags)" }

}

/// Random bytes for ids, taken from a process-wide pool that is read from the kernel 4 KiB at a time: ids are made on
/// every RPC, and `SystemRandomNumberGenerator` costs a system call per 8 bytes (`UUID()` even opens `/dev/urandom`),
/// and one read per call still showed up in GetContact's profile. Every byte is used once.
struct RandomBytes {
    private var bytes: [UInt8]
    private var position = 0

    init(count: Int) {
        precondition(count <= Self.poolSize, "RandomBytes asked for more than its pool holds")
        bytes = Self.pool.withLock { pool in
            if pool.bytes.count - pool.position < count {
                pool.bytes = Self.fromKernel(Self.poolSize)
                pool.position = 0
            }
            defer { pool.position += count }
            return Array(pool.bytes[pool.position..<pool.position + count])
        }
    }

    private static let poolSize = 4096
    private static let pool = Mutex<(bytes: [UInt8], position: Int)>(([], 0))

    private static func fromKernel(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        if Self.urandom >= 0 {
            bytes.withUnsafeMutableBytes { buffer in
                while filled < count {
                    let n = read(Self.urandom, buffer.baseAddress! + filled, count - filled)
                    if n > 0 { filled += n } else if n == 0 || errno != EINTR { break }
                }
            }
        }
        if filled < count {
            var generator = SystemRandomNumberGenerator()
            for i in filled..<count { bytes[i] = generator.next() }
        }
        return bytes
    }

    /// Opened once for the life of the process (Glibc's module map does not offer `getrandom`).
    private static let urandom: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    private mutating func take(_ n: Int) -> ArraySlice<UInt8> {
        precondition(position + n <= bytes.count, "RandomBytes exhausted")
        defer { position += n }
        return bytes[position..<position + n]
    }

    /// `n` random bytes as 2n lower-case hex digits; a lookup table, not `String(format:)` per byte.
    mutating func hex(_ n: Int) -> String {
        var out = [UInt8]()
        out.reserveCapacity(n * 2)
        for byte in take(n) {
            out.append(Self.digits[Int(byte >> 4)])
            out.append(Self.digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A version 4 (random) UUID.
    mutating func uuid() -> UUID {
        Self.uuid(Array(take(16)), version: 4)
    }

    /// A version 7 UUID: `milliseconds` (Unix time) big-endian in the first 48 bits, then random bits but for the
    /// version and variant (RFC 9562).
    mutating func uuid(milliseconds: UInt64) -> UUID {
        var b = Array(take(16))
        for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * UInt64(i))) }
        return Self.uuid(b, version: 7)
    }

    /// Sixteen bytes as a UUID of the given version, variant 1 (RFC 9562).
    private static func uuid(_ bytes: [UInt8], version: UInt8) -> UUID {
        var b = bytes
        b[6] = (b[6] & 0x0F) | version << 4
        b[8] = (b[8] & 0x3F) | 0x80
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// A version 4 UUID in its canonical lower-case text form (the request id), formatted here rather than through
    /// the database layer's `UUID.lowercaseText`, which this target does not link.
    mutating func uuidText() -> String {
        let u = uuid()
        var out = [UInt8]()
        out.reserveCapacity(36)
        withUnsafeBytes(of: u.uuid) { bytes in
            for (i, byte) in bytes.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
                out.append(Self.digits[Int(byte >> 4)])
                out.append(Self.digits[Int(byte & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let digits = Array("0123456789abcdef".utf8)
}

/// Gives each call a request id (the caller's `x-request-id`, or a new one, echoed back) and a trace context
/// (`traceparent`), puts both on every log line of the call, writes one access-log line when it ends, and records
/// RPC metrics: `rpc_requests_total` and `rpc_duration_seconds` by method and status, `rpc_in_flight` by method.
public struct CallContextInterceptor: ServerInterceptor {
    /// Creates the interceptor; access-log lines go to the server's logger with the call's metadata.
    public init() {}

    public func intercept<Result: Sendable>(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Result
    ) async throws -> Result {
        var random = RandomBytes(count: 40)
        let requestID =
            context.requestMetadata.firstString("x-request-id").flatMap { $0.count <= 128 ? $0 : nil }
            ?? random.uuidText()
        let trace = TraceContext(traceparent: context.requestMetadata.firstString("traceparent"), random: &random)
        context[TraceContext.self] = trace
        context.addLoggerMetadata("request_id", requestID)
        context.addLoggerMetadata("trace_id", trace.traceID)
        context.addLoggerMetadata("span_id", trace.spanID)
        var initial = context.initialMetadata
        initial.replaceOrAddString(requestID, forKey: "x-request-id")
        context.initialMetadata = initial

        let metrics = CallMetrics.for(context.method)
        metrics.inFlight.increment()
        let started = ContinuousClock.now
        let code: StatusCode
        defer {
            metrics.inFlight.decrement()
            let elapsed = ContinuousClock.now - started
            let nanoseconds = Int64(elapsed.components.seconds) * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
            let (requests, duration) = metrics.completed(code)
            requests.increment()
            duration.recordNanoseconds(nanoseconds)
            let level: Logger.Level = code == .unknown || code == .internal ? .error : .info
            // The access line's metadata is only built when the line will be written.
            if context.logLevel <= level {
                var callLogger = context.logger
                callLogger[metadataKey: "grpc.code"] = "\(code)"
                callLogger[metadataKey: "duration_ms"] = "\(Double(nanoseconds) / 1e6)"
                callLogger[metadataKey: "peer"] = "\(context.peer)"
                callLogger.log(level: level, "rpc")
            }
        }
        do {
            let result = try await next(context)
            code = .ok
            return result
        } catch {
            code = RPCError.from(error).code
            throw error
        }
    }
}

/// A method's metric handles, made once: creating them per call (a factory lookup with label hashing under the
/// registry's lock) showed up in the contacts profile.
final class CallMetrics: Sendable {
    let inFlight: Meter
    private let method: String
    private let byCode = Mutex<[StatusCode: (Counter, Timer)]>([:])
    private static let all = Mutex<[String: CallMetrics]>([:])

    private init(method: String) {
        self.method = method
        inFlight = Meter(label: "rpc_in_flight", dimensions: [("method", method)])
    }

    /// The method's handles, found by its path (stored in the descriptor; its `description` is built on every read).
    static func `for`(_ method: MethodDescriptor) -> CallMetrics {
        all.withLock { all in
            if let existing = all[method.path] { return existing }
            let made = CallMetrics(method: method.description)
            all[method.path] = made
            return made
        }
    }

    func completed(_ code: StatusCode) -> (Counter, Timer) {
        byCode.withLock { byCode in
            if let existing = byCode[code] { return existing }
            let dimensions = [("method", method), ("code", code.description)]
            let made = (Counter(label: "rpc_requests_total", dimensions: dimensions), Timer(label: "rpc_duration_seconds", dimensions: dimensions))
            byCode[code] = made
            return made
        }
    }
}

extension UUID {
    /// A random (version 4) UUID from one read of the already open `/dev/urandom`: on Linux `UUID()` opens, reads
    /// and closes it every time, which showed up on the contacts write path.
    public static func random() -> UUID {
        var random = RandomBytes(count: 16)
        return random.uuid()
    }

    /// A time-ordered (version 7) UUID: the Unix time in milliseconds in its first 48 bits, random bits after. Ids
    /// made later sort later, so the indexes that end in an id (a table's primary key, the contacts' name-word
    /// indexes) take new rows at their right end instead of at random leaves: an import's inserts touch a few hot
    /// pages instead of one cold page per row and index.
    public static func timeOrdered(now: Date = Date()) -> UUID {
        var random = RandomBytes(count: 16)
        return random.uuid(milliseconds: UInt64(max(0, now.timeIntervalSince1970 * 1000)))
    }

    /// A ``random()`` UUID in its canonical lower-case text form (a request id), formatted without Foundation.
    public static func randomText() -> String {
        var random = RandomBytes(count: 16)
        return random.uuidText()
    }
}
