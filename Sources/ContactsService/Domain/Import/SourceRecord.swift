import SwitchboardProtos
import SwitchboardServiceKit

/// One value of a record as a file holds it, before any mapping: a CSV cell, a vCard property, a JSON value.
public struct SourceField: Sendable, Hashable {
    /// The source's name: the CSV column, the vCard property name (upper-cased, without its group), or the JSON key's
    /// dotted path.
    public var key: String
    /// The value's text (vCard escapes already undone).
    public var value: String
    /// vCard only: the structured value's components (`N`, `ADR`) or the list's values (`CATEGORIES`), unescaped.
    public var components: [String]
    /// vCard only: the property's parameters, names upper-cased, values as given (without quotes).
    public var parameters: [(name: String, value: String)]

    /// Creates a field.
    public init(key: String, value: String, components: [String] = [], parameters: [(name: String, value: String)] = []) {
        self.key = key
        self.value = value
        self.components = components
        self.parameters = parameters
    }

    /// The values of a parameter (comma-separated values split, upper-cased).
    public func parameterValues(_ name: String) -> [String] {
        parameters.filter { $0.name == name }.flatMap { $0.value.split(separator: ",").map { $0.uppercased() } }
    }

    public static func == (lhs: SourceField, rhs: SourceField) -> Bool {
        lhs.key == rhs.key && lhs.value == rhs.value && lhs.components == rhs.components
            && lhs.parameters.map(\.name) == rhs.parameters.map(\.name) && lhs.parameters.map(\.value) == rhs.parameters.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(key)
        hasher.combine(value)
    }
}

/// One record a reader found in the input: a CSV record, a vCard, a JSON line.
public struct SourceRecord: Sendable, Hashable {
    /// What the record holds.
    public enum Content: Sendable, Hashable {
        /// CSV: the cells in column order (the reader's ``CSVReader/header`` names them).
        case cells([String])
        /// vCard: the properties in order.
        case fields([SourceField])
        /// JSON lines: the line's object.
        case json(JSON)
        /// The record could not be read (too large, malformed, not UTF-8): why, for the row's result.
        case unreadable(Violation)
    }

    /// The record's number in the input, from 1 (a header row is not counted).
    public var row: Int
    /// The input bytes up to the end of this record (for progress: every record before this offset is read).
    public var endOffset: Int
    /// The values.
    public var content: Content

    /// Creates a record.
    public init(row: Int, endOffset: Int, content: Content) {
        self.row = row
        self.endOffset = endOffset
        self.content = content
    }
}

extension SourceRecord {
    /// A digest of the record's values (64-bit FNV-1a over each value's length and bytes): the same record gives the
    /// same digest in every process and release, so an import's ledger can tell that a row sent again is the row it
    /// wrote. 0 for an unreadable record (it writes nothing, so the ledger never holds it).
    /// - Parameter header: a CSV record's ``headerDigest(_:)`` (the header names the cells, and without a mapping
    ///   decides where they go); 0 without a header.
    public func digest(header: UInt64 = 0) -> Int64 {
        var fnv = FNV64()
        switch content {
        case .cells(let cells):
            fnv.add(0)
            fnv.add(word: header)
            for cell in cells { fnv.add(cell) }
        case .fields(let fields):
            fnv.add(1)
            for field in fields {
                fnv.add(field.key)
                fnv.add(field.value)
                fnv.add(field.components.count)
                for component in field.components { fnv.add(component) }
                fnv.add(field.parameters.count)
                for parameter in field.parameters {
                    fnv.add(parameter.name)
                    fnv.add(parameter.value)
                }
            }
        case .json(let json):
            // The writer sorts keys: one text per value.
            fnv.add(2)
            fnv.add(json.text)
        case .unreadable:
            return 0
        }
        return Int64(bitPattern: fnv.value)
    }
}

extension SourceRecord {
    /// The digest of a CSV header's names, for ``digest(header:)``: read once per import, not per row.
    public static func headerDigest(_ names: [String]) -> UInt64 {
        var fnv = FNV64()
        fnv.add(names.count)
        for name in names { fnv.add(name) }
        return fnv.value
    }
}

/// 64-bit FNV-1a: stable across processes (Swift's `Hasher` is seeded per process).
struct FNV64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    /// A count, as 8 bytes (little-endian): lengths keep ("ab", "c") apart from ("a", "bc").
    mutating func add(_ count: Int) {
        add(word: UInt64(clamping: count))
    }

    /// A 64-bit word, as 8 bytes (little-endian).
    mutating func add(word: UInt64) {
        var n = word
        for _ in 0..<8 {
            add(UInt8(truncatingIfNeeded: n))
            n >>= 8
        }
    }

    mutating func add(_ text: String) {
        add(text.utf8.count)
        for byte in text.utf8 { add(byte) }
    }
}

/// Bounds on what one import reads: each is an environment setting of the service (see `ContactsService.settings`), so
/// that no input can make the reader hold more than about one record in memory, or run without end.
public struct ImportLimits: Sendable, Hashable {
    /// The most bytes one record may take: a CSV record, a vCard (BEGIN to END), a JSON line.
    public var maxRecordBytes = 64 * 1024
    /// The most bytes of one line: a vCard content line (after unfolding) or a CSV header row.
    public var maxLineBytes = 16 * 1024
    /// The most fields of one record: CSV columns, vCard properties, JSON values (every key at every depth).
    public var maxFields = 200
    /// The most rows one ImportContacts call may send.
    public var maxRows = 1_000_000
    /// The most bytes read without a row ending (blank lines, text outside vCards, a record in progress with the
    /// photos a vCard reader skips): input that never makes a row cannot run a call without end.
    public var maxBytesWithoutRow = 16 << 20
    /// Rows written per transaction.
    public var batchRows = 1000

    /// The defaults: 64 KiB records, 16 KiB lines, 200 fields, 1,000,000 rows per call, batches of 1,000 rows, 16 MiB
    /// without a row.
    public init() {}
}

/// A reader of one file format: bytes in (in chunks of any size, split anywhere), records out. Pure: no I/O.
public protocol ContactRecordReader: Sendable {
    /// Reads a chunk; returns the records it completed.
    /// - Parameter bytes: the next bytes of the input.
    /// - Returns: the records completed by these bytes, in order.
    mutating func read(_ bytes: UnsafeRawBufferPointer) -> [SourceRecord]
    /// Ends the input; returns the last record, if the input did not end with one complete.
    mutating func finish() -> [SourceRecord]
}

extension ContactRecordReader {
    /// ``read(_:)`` of an array (for tests and callers holding arrays).
    public mutating func read(_ bytes: [UInt8]) -> [SourceRecord] {
        bytes.withUnsafeBytes { read($0) }
    }
}

/// Text of a record's bytes: valid UTF-8 without NUL (PostgreSQL text holds no NUL; the protobuf C strings neither).
enum ImportText {
    /// The string, or nil when the bytes are not UTF-8 or hold a NUL.
    static func string(_ bytes: ArraySlice<UInt8>) -> String? {
        if bytes.isEmpty { return "" }
        if bytes.contains(0) { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    static func string(_ bytes: [UInt8]) -> String? { string(bytes[...]) }
}
