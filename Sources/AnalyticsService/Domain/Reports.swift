import FoundationEssentials
import SwitchboardServiceKit

/// A report column: a built-in one or a custom field.
public enum ReportColumn: Sendable, Hashable, CustomStringConvertible {
    /// A built-in column (one of ``ReportColumn/builtIn``).
    case builtIn(String)
    /// The custom field with this key.
    case custom(String)

    /// The built-in columns, in the order a reader would expect.
    public static let builtIn = [
        "contact_id", "display_name", "email", "status", "owner_id", "tags", "create_time", "activities", "interactions", "last_contact_time",
        "engagement_score",
    ]
    /// Built-in columns that hold numbers (filters compare them as numbers).
    public static let numeric: Set<String> = ["activities", "interactions", "engagement_score"]
    /// Built-in columns that hold times (filters compare them as times).
    public static let times: Set<String> = ["create_time", "last_contact_time"]

    /// Whether `text` is a decimal number as JSON and PostgreSQL's `numeric` write one (`-12.5`, `1e6`): not a hex
    /// float, infinity or NaN, which `Double` would read too and `numeric` refuses or orders apart.
    public static func isDecimal(_ text: String) -> Bool {
        var bytes = text.utf8[...]
        func digits() -> Int {
            let count = bytes.prefix { (48...57).contains($0) }.count
            bytes = bytes.dropFirst(count)
            return count
        }
        if bytes.first == 45 || bytes.first == 43 { bytes = bytes.dropFirst() }  // - +
        var mantissa = digits()
        if bytes.first == 46 {  // .
            bytes = bytes.dropFirst()
            mantissa += digits()
        }
        guard mantissa > 0, mantissa <= 100 else { return false }
        if bytes.first == 101 || bytes.first == 69 {  // e E
            bytes = bytes.dropFirst()
            if bytes.first == 45 || bytes.first == 43 { bytes = bytes.dropFirst() }
            guard (1...3).contains(digits()) else { return false }
        }
        return bytes.isEmpty
    }

    /// Parses `name` or `custom.<key>` (key: 1 to 64 of a-z, 0-9, _, -).
    public init?(_ text: String) {
        if text.hasPrefix("custom.") {
            let key = text.dropFirst("custom.".count)
            guard (1...64).contains(key.utf8.count),
                key.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == 95 || $0 == 45 || (65...90).contains($0) })
            else { return nil }
            self = .custom(String(key))
        } else if Self.builtIn.contains(text) {
            self = .builtIn(text)
        } else {
            return nil
        }
    }

    /// The column's name as a definition spells it.
    public var description: String {
        switch self {
        case .builtIn(let name): return name
        case .custom(let key): return "custom.\(key)"
        }
    }
}

/// A report filter's comparison.
public enum ReportOperator: String, Sendable, Hashable, CaseIterable {
    /// Equal, not equal, less, less or equal, greater, greater or equal.
    case eq, ne, lt, le, gt, ge
    /// The value holds the text (case-insensitive).
    case contains
    /// The value is not empty.
    case exists
}

/// A report filter.
public struct ReportFilterSpec: Sendable, Hashable {
    /// The column.
    public var column: ReportColumn
    /// The comparison.
    public var op: ReportOperator
    /// The value compared with (text; numbers and times are parsed).
    public var value: String
    /// The number or time the value holds, for numeric and time columns (and the number a custom field's value
    /// holds, if it does).
    public var number: Double?, time: Date?
}

/// A report: which contacts (filters, creation range), which columns, grouped or not.
public struct ReportSpec: Sendable, Hashable {
    /// The columns.
    public var columns: [ReportColumn]
    /// All must hold.
    public var filters: [ReportFilterSpec]
    /// Group by this column (rows: value, count).
    public var groupBy: ReportColumn?
    /// Only contacts created in this range.
    public var start: Date?, end: Date?

    /// The header row.
    public var header: [String] { groupBy.map { [$0.description, "count"] } ?? columns.map(\.description) }

    /// Validates a definition's parts. A definition saved earlier (`stored`) is read under the rules it was saved
    /// under: an ordering filter on tags, refused since, still compares the tags' joined text, so a saved report keeps
    /// running.
    /// - Throws: ``InvalidRequest`` naming the field (under `prefix`, e.g. `report.`).
    public static func make(
        columns: [String], filters: [(column: String, op: String, value: String)], groupBy: String, start: Date?, end: Date?, prefix: String,
        stored: Bool = false
    ) throws -> ReportSpec {
        guard !columns.isEmpty || !groupBy.isEmpty else {
            throw InvalidRequest(prefix + "columns", "at least one column is required", reason: "REQUIRED")
        }
        guard columns.count <= AnalyticsRules.maxColumns else {
            throw InvalidRequest(prefix + "columns", "at most \(AnalyticsRules.maxColumns) columns", reason: "TOO_MANY")
        }
        guard filters.count <= AnalyticsRules.maxFilters else {
            throw InvalidRequest(prefix + "filters", "at most \(AnalyticsRules.maxFilters) filters", reason: "TOO_MANY")
        }
        var parsed: [ReportColumn] = []
        for (i, name) in columns.enumerated() {
            guard let column = ReportColumn(name) else {
                throw InvalidRequest(
                    prefix + "columns[\(i)]", "must be one of \(ReportColumn.builtIn.joined(separator: ", ")) or custom.<key>", reason: "UNKNOWN")
            }
            parsed.append(column)
        }
        var specs: [ReportFilterSpec] = []
        for (i, filter) in filters.enumerated() {
            guard let column = ReportColumn(filter.column) else {
                throw InvalidRequest(prefix + "filters[\(i)].column", "is not a report column", reason: "UNKNOWN")
            }
            guard let op = ReportOperator(rawValue: filter.op) else {
                throw InvalidRequest(
                    prefix + "filters[\(i)].op", "must be one of \(ReportOperator.allCases.map(\.rawValue).joined(separator: ", "))",
                    reason: "UNKNOWN")
            }
            guard filter.value.utf8.count <= 1024 else {
                throw InvalidRequest(prefix + "filters[\(i)].value", "must be at most 1024 bytes", reason: "TOO_LONG")
            }
            var spec = ReportFilterSpec(column: column, op: op, value: filter.value)
            if case .builtIn("tags") = column, ![.eq, .ne, .contains, .exists].contains(op), !stored {
                throw InvalidRequest(
                    prefix + "filters[\(i)].op", "tags compare by eq, ne, contains or exists (a contact's tags are a set)", reason: "UNSUPPORTED")
            }
            if case .custom = column, op != .exists, op != .contains, ReportColumn.isDecimal(filter.value), let number = Double(filter.value) {
                // Analytics does not know the field's type: a number compares as a number with the values stored as
                // numbers (a NUMBER field's), and as text with the others.
                spec.number = number
            }
            if case .builtIn(let name) = column, op != .exists, op != .contains {
                if ReportColumn.numeric.contains(name) {
                    guard let number = Double(filter.value), number.isFinite else {
                        throw InvalidRequest(prefix + "filters[\(i)].value", "must be a number for \(name)", reason: "INVALID_FORMAT")
                    }
                    spec.number = number
                } else if ReportColumn.times.contains(name) {
                    guard let time = try? Date(filter.value, strategy: .iso8601) else {
                        throw InvalidRequest(prefix + "filters[\(i)].value", "must be an RFC 3339 time for \(name)", reason: "INVALID_FORMAT")
                    }
                    spec.time = time
                }
            }
            specs.append(spec)
        }
        var group: ReportColumn?
        if !groupBy.isEmpty {
            guard let column = ReportColumn(groupBy) else { throw InvalidRequest(prefix + "group_by", "is not a report column", reason: "UNKNOWN") }
            group = column
        }
        if let start, let end, start >= end { throw InvalidRequest(prefix + "end_time", "must be after start_time", reason: "OUT_OF_RANGE") }
        return ReportSpec(columns: parsed, filters: specs, groupBy: group, start: start, end: end)
    }

    /// One CSV line, as every export writes it (``CSV/line(_:spreadsheetSafe:)``).
    public static func csvLine(_ values: [String], spreadsheetSafe: Bool = false) -> String {
        CSV.line(values, spreadsheetSafe: spreadsheetSafe)
    }
}

/// A stored report: its definition as the contract's JSON (the handlers' mapping reads it back).
public struct StoredDefinition: Sendable, Hashable {
    /// Its id.
    public var id: UUID
    /// Its name.
    public var name: String
    /// The definition's proto3 JSON.
    public var json: String
    /// Who made it.
    public var created: Created

    /// Creates one.
    public init(id: UUID, name: String, json: String, created: Created) {
        self.id = id
        self.name = name
        self.json = json
        self.created = created
    }
}

/// A scheduled report's run, published on analytics' feed.
public struct ReportRunData: Sendable, Hashable {
    /// The run and the report.
    public var id: UUID, reportID: UUID
    /// Data rows and CSV bytes.
    public var rows: Int64, csvBytes: Int64
    /// When it ran.
    public var time: Date

    /// Creates a run.
    public init(id: UUID, reportID: UUID, rows: Int64, csvBytes: Int64, time: Date) {
        self.id = id
        self.reportID = reportID
        self.rows = rows
        self.csvBytes = csvBytes
        self.time = time
    }
}
