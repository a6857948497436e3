/// An error from PostgreSQL or from talking to it.
///
/// `description` names the SQLSTATE and the server's primary message only; `detail` (which may contain row values)
/// is kept for logs and for code that needs it, never printed by default.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, broadly.
    public enum Kind: Sendable, Hashable {
        /// The server rejected a statement (see `sqlState`).
        case server
        /// No connection could be made, or it was lost.
        case connection
        /// A value could not be decoded into the requested Swift type.
        case decoding
        /// The pool had no connection to give within the time allowed.
        case poolTimeout
        /// The pool is closed.
        case poolClosed
        /// The API was used out of order (a bug in the calling code), e.g. a statement after its transaction committed.
        case usage
    }

    /// The kind.
    public var kind: Kind
    /// The five-character SQLSTATE, e.g. `23505` (unique violation), when the server sent one.
    public var sqlState: String?
    /// The server's (or the client library's) primary message.
    public var message: String
    /// The server's DETAIL, which may include row values: for logs only.
    public var detail: String?
    /// The violated constraint's name, for integrity errors.
    public var constraint: String?
    /// The table involved, when the server said.
    public var table: String?

    /// Creates an error.
    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, constraint: String? = nil, table: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.constraint = constraint
        self.table = table
    }

    /// `SQLSTATE 23505: duplicate key value violates unique constraint "..."`.
    public var description: String {
        switch kind {
        case .server: return "SQLSTATE \(sqlState ?? "?????"): \(message)"
        case .connection: return "PostgreSQL connection error: \(message)"
        case .decoding: return "PostgreSQL decoding error: \(message)"
        case .poolTimeout: return "PostgreSQL pool: \(message)"
        case .poolClosed: return "PostgreSQL pool is closed"
        case .usage: return "PostgreSQL API misuse: \(message)"
        }
    }

    /// A serialization failure (40001) or deadlock (40P01): the transaction may succeed if retried.
    public var isRetryableTransactionFailure: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// A unique-constraint violation (23505).
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// The connection failed (class 08, admin shutdown 57P01..57P03), or was never made: retrying on a new
    /// connection may work. Not 08P01 (protocol violation): PostgreSQL answers it to a malformed message, e.g. a
    /// statement bound with the wrong number of parameters, which is a bug to report, not an outage to retry.
    public var isConnectionFailure: Bool {
        guard sqlState != "08P01" else { return false }
        return kind == .connection || sqlState?.hasPrefix("08") == true || ["57P01", "57P02", "57P03"].contains(sqlState ?? "")
    }
}
