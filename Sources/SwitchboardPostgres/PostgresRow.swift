import FoundationEssentials

/// The rows a statement returned, with its affected-row count.
public struct PostgresResult: Sendable {
    /// Column names, in order.
    public let columns: [String]
    /// The rows.
    public let rows: [PostgresRow]
    /// Rows inserted, updated, deleted or copied, as the server reported.
    public let affectedRows: Int

    init(raw: RawResult) {
        self.columns = raw.columns
        var index: [String: Int] = [:]
        for (i, c) in raw.columns.enumerated() where index[c] == nil { index[c] = i }
        let shared = PostgresRow.Columns(names: raw.columns, index: index)
        self.rows = raw.rows.map { PostgresRow(columns: shared, values: $0) }
        self.affectedRows = raw.affectedRows
    }

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}

/// One row, with typed accessors that throw a decoding error naming the column.
public struct PostgresRow: Sendable {
    final class Columns: Sendable {
        let names: [String]
        let index: [String: Int]
        init(names: [String], index: [String: Int]) {
            self.names = names
            self.index = index
        }
    }

    let columns: Columns
    /// The values, in column order.
    public let values: [PostgresValue]

    /// About the bytes of the row's values in their text form (``PostgresValue/textBytes``).
    public var textBytes: Int { values.reduce(0) { $0 + $1.textBytes } }

    /// The value of a column, or `.null` when there is no such column.
    /// - Parameter column: the column name.
    public subscript(_ column: String) -> PostgresValue {
        columns.index[column].map { values[$0] } ?? .null
    }

    private func mismatch(_ column: String, _ type: String) -> PostgresError {
        PostgresError(kind: .decoding, message: "column \(column) is \(self[column]), not \(type)")
    }

    /// A non-null text column.
    public func string(_ column: String) throws -> String {
        // One lookup per read: a row's accessors run for every column of every row read, so each is one hash.
        switch self[column] {
        case .text(let s), .jsonb(let s), .numeric(let s): return s
        default: throw mismatch(column, "text")
        }
    }
    /// A text column that may be NULL.
    public func optionalString(_ column: String) throws -> String? {
        switch self[column] {
        case .null: return nil
        case .text(let s), .jsonb(let s), .numeric(let s): return s
        default: throw mismatch(column, "text")
        }
    }
    /// A non-null integer column.
    public func int(_ column: String) throws -> Int64 {
        if case .int(let i) = self[column] { return i }
        throw mismatch(column, "an integer")
    }
    /// An integer column that may be NULL.
    public func optionalInt(_ column: String) throws -> Int64? {
        switch self[column] {
        case .null: return nil
        case .int(let i): return i
        default: throw mismatch(column, "an integer")
        }
    }
    /// A non-null boolean column.
    public func bool(_ column: String) throws -> Bool {
        if case .bool(let b) = self[column] { return b }
        throw mismatch(column, "a boolean")
    }
    /// A non-null float column.
    public func double(_ column: String) throws -> Double {
        if case .double(let d) = self[column] { return d }
        throw mismatch(column, "a float")
    }
    /// A non-null uuid column.
    public func uuid(_ column: String) throws -> UUID {
        if case .uuid(let u) = self[column] { return u }
        throw mismatch(column, "a uuid")
    }
    /// A non-null timestamptz column.
    public func date(_ column: String) throws -> Date {
        if case .timestamp(let d) = self[column] { return d }
        throw mismatch(column, "a timestamp")
    }
    /// A timestamptz column that may be NULL.
    public func optionalDate(_ column: String) throws -> Date? {
        switch self[column] {
        case .null: return nil
        case .timestamp(let d): return d
        default: throw mismatch(column, "a timestamp")
        }
    }
    /// A non-null bytea column.
    public func bytes(_ column: String) throws -> [UInt8] {
        if case .bytes(let b) = self[column] { return b }
        throw mismatch(column, "bytea")
    }
    /// A non-null text[] column.
    public func strings(_ column: String) throws -> [String] {
        guard case .array(let elements, _) = self[column] else { throw mismatch(column, "an array") }
        return try elements.map {
            guard case .text(let s) = $0 else { throw mismatch(column, "text[] without NULLs") }
            return s
        }
    }
}
