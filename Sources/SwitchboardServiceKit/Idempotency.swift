import Crypto
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC

/// The result of a write that may have been made before under the same request id.
public enum WriteOutcome<Value: Sendable>: Sendable {
    /// The write happened now.
    case fresh(Value)
    /// A retry: the first response, as the handler encoded it then.
    case replayed([UInt8])
}

/// Idempotency for one write: the request id, the method, and how to encode its response for replays.
public struct WriteOptions<Value: Sendable>: Sendable {
    /// The caller's request id; empty disables idempotency.
    public var requestID: String
    /// The RPC, so a request id reused for another method is refused.
    public var method: String
    /// Encodes the response as the handler will return it.
    public var encode: @Sendable (Value) -> [UInt8]
    /// What identifies the request itself (the SHA-256 of its canonical form), kept with the request id so the id
    /// reused for a different request is refused rather than answered with the first one's response; empty skips the
    /// check.
    public var fingerprint: [UInt8]

    /// Longest request id accepted.
    public static var maxRequestIDBytes: Int { 128 }

    /// Creates options, checking the request id: at most ``maxRequestIDBytes`` of printable ASCII.
    /// - Parameters:
    ///   - requestID: the caller's request id; empty disables idempotency.
    ///   - method: the RPC.
    ///   - fingerprint: what identifies the request's content (``IdempotentWrite`` computes it); empty skips the check.
    ///   - encode: encodes the response as the handler will return it.
    /// - Throws: ``InvalidRequest`` naming `request_id`.
    public init(
        requestID: String, method: String, fingerprint: [UInt8], encode: @escaping @Sendable (Value) -> [UInt8]
    ) throws {
        let bytes = requestID.utf8
        if bytes.count > Self.maxRequestIDBytes {
            throw InvalidRequest("request_id", "must be at most \(Self.maxRequestIDBytes) bytes", reason: "TOO_LONG")
        }
        if !bytes.allSatisfy({ (0x20...0x7E).contains($0) }) {
            throw InvalidRequest("request_id", "must be printable ASCII (a UUID, say)", reason: "INVALID_FORMAT")
        }
        self.requestID = requestID
        self.method = method
        self.fingerprint = fingerprint
        self.encode = encode
    }
}

/// A request id used before for another method, or for another request to the same method: INVALID_ARGUMENT naming
/// `request_id`. A retry must repeat its request exactly; a client that reuses an id for new content would otherwise
/// get the first request's response and lose the second write without a word.
public struct RequestIDReused: Error, Sendable, Hashable, RPCErrorConvertible {
    /// The method the id was first used for.
    public var method: String
    /// Whether the method was the same and the request's content differed.
    public var differentRequest: Bool
    /// Creates the error.
    public init(method: String, differentRequest: Bool = false) {
        self.method = method
        self.differentRequest = differentRequest
    }
    /// INVALID_ARGUMENT with a `REUSED` violation on `request_id`.
    public var rpcError: RPCError {
        let message =
            differentRequest
            ? "was already used for a different \(method) request (a retry must repeat its request exactly; use a new id for a new request)"
            : "was already used for \(method)"
        return InvalidRequest("request_id", message, reason: "REUSED").rpcError
    }
}

/// A retry of a request whose first response named a person since erased: replaying it would bring the person back,
/// and running it again could make everything else it wrote twice (a batch), so it is refused.
public struct ResponseErased: Error, Sendable, Hashable, RPCErrorConvertible {
    /// The method the id was used for.
    public var method: String
    /// Creates the error.
    public init(method: String) { self.method = method }
    /// FAILED_PRECONDITION naming `request_id`.
    public var rpcError: RPCError {
        var failure = Google_Rpc_PreconditionFailure()
        var violation = Google_Rpc_PreconditionFailure.Violation()
        violation.type = "RESPONSE_ERASED"
        violation.subject = "request_id"
        violation.description = "the first response of this \(method) request named a person since erased"
        failure.violations = [violation]
        return RPCError(
            code: .failedPrecondition,
            message:
                "request_id: the first response of this \(method) request named a person since erased, so it is not replayed and the request is not run again; check what it wrote, and use a new request_id to write again"
        ).withDetails([Google_Protobuf_Any(packing: failure)])
    }
}

/// The handler's side of an idempotent write: validates the request id, tells the domain how to keep the response,
/// and turns the outcome (fresh, or a replay of the first response) into the response message.
public struct IdempotentWrite<Value: Sendable, Response: ProtoMessage>: Sendable {
    /// What the domain and the store need.
    public let options: WriteOptions<Value>
    private let respond: @Sendable (Value) -> Response

    /// Creates the write.
    /// - Parameters:
    ///   - request: the request, whose content a retry with the same id must repeat.
    ///   - requestID: the request's `request_id`.
    ///   - method: the RPC.
    ///   - response: maps the written value to the response message.
    /// - Throws: ``InvalidRequest`` for a malformed request id.
    public init<Request: ProtoJSONMessage>(
        request: Request, requestID: String, method: MethodDescriptor, response: @escaping @Sendable (Value) -> Response
    ) throws {
        self.options = try WriteOptions(
            requestID: requestID, method: method.method, fingerprint: requestID.isEmpty ? [] : Self.fingerprint(request)
        ) { response($0).serializedBytes() }
        self.respond = response
    }

    /// The SHA-256 of the request's proto3 JSON: canonical where the binary encoding is not (map entries and `Struct`
    /// keys are written sorted, fields in a fixed order), so the same request gives the same fingerprint whichever
    /// client or process encoded it. A request the JSON mapping refuses (a timestamp out of its range, which the
    /// handler refuses anyway) falls back to its binary encoding.
    static func fingerprint<Request: ProtoJSONMessage>(_ request: Request) -> [UInt8] {
        let bytes = (try? request.protoJSONText()).map { Array($0.utf8) } ?? request.serializedBytes()
        return Array(SHA256.hash(data: bytes))
    }

    /// The response of an outcome.
    /// - Throws: when a stored response no longer decodes (it was written by this code, so only on corruption).
    public func response(_ outcome: WriteOutcome<Value>) throws -> Response {
        switch outcome {
        case .fresh(let value): return respond(value)
        case .replayed(let bytes): return try Response(serializedBytes: bytes)
        }
    }
}

/// The idempotency keys of a service (`<schema>.idempotency_keys`, created by the kit's migrations): the first
/// response of every mutating request, by tenant and request id, kept for the retention period and then pruned.
///
/// A write claims its request id inside its own transaction, so two concurrent retries cannot both write: the second
/// waits on the first's key row and then replays its response.
public struct Idempotency: Sendable {
    /// The service's schema.
    public let schema: String

    /// Creates the component for a schema (an identifier the service controls).
    public init(schema: String) { self.schema = schema }

    /// The stored response of a request made before, read without a transaction (a cheap check before a write's
    /// work); nil when the request is new or has no request id.
    /// - Throws: ``RequestIDReused`` when the id was used for another method or another request.
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor, pool: PostgresPool) async throws -> [UInt8]? {
        guard !write.requestID.isEmpty else { return nil }
        let rows = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT method, fingerprint, response, erased FROM \(schema).idempotency_keys WHERE tenant_id = $1 AND request_id = $2",
            [.text(actor.tenantID), .text(Self.key(write.requestID, actor: actor))]
        ).rows
        return try rows.first.map { try stored($0, write) } ?? nil
    }

    /// Runs a write in one transaction of the actor's tenant: claims the request id, runs `body`, keeps its encoded
    /// result for replays, commits. A request id already claimed replays the stored response instead of running
    /// `body`.
    /// - Throws: ``RequestIDReused``, or what `body` throws (the transaction is rolled back).
    public func transaction<V: Sendable>(
        _ write: WriteOptions<V>, actor: Actor, pool: PostgresPool, _ body: (PostgresConnection) async throws -> V
    ) async throws -> WriteOutcome<V> {
        try await pool.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
            if let replay = try await claim(write, actor: actor, on: c) { return .replayed(replay) }
            let value = try await body(c)
            if !write.requestID.isEmpty {
                try await c.query(
                    "UPDATE \(schema).idempotency_keys SET response = $3 WHERE tenant_id = $1 AND request_id = $2",
                    [.text(actor.tenantID), .text(Self.key(write.requestID, actor: actor)), .bytes(write.encode(value))])
            }
            return .fresh(value)
        }
    }

    /// Claims the request id inside the caller's transaction; returns the stored response when it was taken.
    /// - Throws: ``RequestIDReused`` when the id was used for another method or another request.
    public func claim<V>(_ write: WriteOptions<V>, actor: Actor, on c: PostgresConnection) async throws -> [UInt8]? {
        guard !write.requestID.isEmpty else { return nil }
        let inserted = try await c.query(
            """
            INSERT INTO \(schema).idempotency_keys (tenant_id, request_id, method, fingerprint) VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant_id, request_id) DO NOTHING RETURNING 1 AS claimed
            """,
            [
                .text(actor.tenantID), .text(Self.key(write.requestID, actor: actor)), .text(write.method),
                write.fingerprint.isEmpty ? .null : .bytes(write.fingerprint),
            ])
        guard inserted.rows.isEmpty else { return nil }
        let row = try await c.query(
            "SELECT method, fingerprint, response, erased FROM \(schema).idempotency_keys WHERE tenant_id = $1 AND request_id = $2",
            [.text(actor.tenantID), .text(Self.key(write.requestID, actor: actor))]
        ).first
        return try row.map { try stored($0, write) ?? [] } ?? []
    }

    /// The claim and the response as one statement, for a write whose result is known before it runs (sent in a
    /// pipeline with the write; a clash on the key fails the pipeline with SQLSTATE 23505, and the caller then takes
    /// the step-by-step path through ``transaction(_:actor:pool:_:)``, which replays). Nil without a request id.
    public func claimStatement<V>(_ write: WriteOptions<V>, value: V, actor: Actor) -> (sql: String, binds: [PostgresValue])? {
        guard !write.requestID.isEmpty else { return nil }
        return (
            sql: "INSERT INTO \(schema).idempotency_keys (tenant_id, request_id, method, fingerprint, response) VALUES ($1, $2, $3, $4, $5)",
            binds: [
                .text(actor.tenantID), .text(Self.key(write.requestID, actor: actor)), .text(write.method),
                write.fingerprint.isEmpty ? .null : .bytes(write.fingerprint), .bytes(write.encode(value)),
            ]
        )
    }

    private func stored<V>(_ row: PostgresRow, _ write: WriteOptions<V>) throws -> [UInt8]? {
        let first = try row.string("method")
        guard first == write.method else { throw RequestIDReused(method: first) }
        // A key claimed before fingerprints were kept (or by a write that keeps none) has none to compare.
        if case .bytes(let fingerprint) = row["fingerprint"], !write.fingerprint.isEmpty, fingerprint != write.fingerprint {
            throw RequestIDReused(method: first, differentRequest: true)
        }
        if case .bool(true) = row["erased"] { throw ResponseErased(method: first) }
        if case .bytes(let b) = row["response"] { return b }
        return nil
    }

    /// The stored key of a request id: the caller's user and the id. Keys are per user, not per tenant: a response
    /// (a private note, an interaction only its owner may read) replays only to the user who made the request, and
    /// another user's request with the same id runs as its own.
    static func key(_ requestID: String, actor: Actor) -> String {
        "\(actor.userID)\u{1F}\(requestID)"
    }

    /// Erasure of a person from the stored first responses: the tenant's keys whose response holds one of `mentioning`
    /// byte for byte (a contact id as the service writes it, an address as stored: see ``protobufString(_:)`` for an
    /// exact match) lose their response and are marked erased. A retry of such a request is then refused
    /// (``ResponseErased``) until the key expires: replaying would bring the person back, and running it again could
    /// write twice what else the request wrote (the other contacts of a batch).
    /// Runs in the caller's transaction, with its tenant set.
    /// - Returns: responses removed.
    @discardableResult
    public func forget(tenantID: String, mentioning: [String], on connection: PostgresConnection) async throws -> Int {
        let needles = mentioning.filter { !$0.isEmpty }.map { PostgresValue.text($0) }
        guard !needles.isEmpty else { return 0 }
        return try await connection.query(
            """
            UPDATE \(schema).idempotency_keys SET response = NULL, erased = true
            WHERE tenant_id = $1 AND response IS NOT NULL
              AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS n WHERE position(convert_to(n, 'UTF8') IN response) > 0)
            """, [.text(tenantID), .array(needles, elementType: .text)]
        ).affectedRows
    }

    /// A string as protobuf writes it in a string field, for ``forget(tenantID:mentioning:on:)``: its length (one varint
    /// byte, below 128 bytes) then its bytes, so that `ann@x.io` does not match inside `joann@x.io`. A longer string is
    /// matched as it is.
    public static func protobufString(_ text: String) -> String {
        let count = text.utf8.count
        guard (1..<128).contains(count) else { return text }
        return String(UnicodeScalar(UInt8(count))) + text
    }

    /// Deletes keys older than `hours`, across tenants (through the table's `retention_purge` policy).
    /// - Returns: rows removed.
    @discardableResult
    public func purge(olderThan hours: Int, pool: PostgresPool) async throws -> Int {
        try await pool.transaction(settings: ["app.retention_purge": "on"]) { connection in
            try await connection.query(
                "DELETE FROM \(schema).idempotency_keys WHERE created_at < now() - make_interval(hours => $1::int)", [.int(Int64(hours))]
            ).affectedRows
        }
    }
}
