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
    /// A digest of the record's values (``TextFingerprint``, with the record's kind and each list's length among them):
    /// the same record gives the same digest in every process and release, so an import's ledger can tell that a row
    /// sent again is the row it wrote. 0 for an unreadable record (it writes nothing, so the ledger never holds it).
    /// - Parameter header: a CSV record's ``headerDigest(_:)`` (the header names the cells, and without a mapping
    ///   decides where they go); 0 without a header.
    public func digest(header: UInt64 = 0) -> Int64 {
        var fingerprint = TextFingerprint()
        switch content {
        case .cells(let cells):
            fingerprint.add("csv")
            fingerprint.add(String(header, radix: 16))
            for cell in cells { fingerprint.add(cell) }
        case .fields(let fields):
            fingerprint.add("vcard")
            for field in fields {
                fingerprint.add(field.key)
                fingerprint.add(field.value)
                fingerprint.add(String(field.components.count))
                for component in field.components { fingerprint.add(component) }
                fingerprint.add(String(field.parameters.count))
                for parameter in field.parameters {
                    fingerprint.add(parameter.name)
                    fingerprint.add(parameter.value)
                }
            }
        case .json(let json):
            // The writer sorts keys: one text per value.
            fingerprint.add("json")
            fingerprint.add(json.text)
        case .unreadable:
            return 0
        }
        return Int64(bitPattern: fingerprint.value)
    }

    /// The digest of a CSV header's names, for ``digest(header:)``: read once per import, not per row.
    public static func headerDigest(_ names: [String]) -> UInt64 { TextFingerprint.of(names) }
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
    /// The most a dry run remembers of what its earlier rows would write, estimated (``ImportPreviewMemory``): about
    /// 192 bytes a contact with one address and one number (about 1 KB with the update policy, which keeps each
    /// contact), so the default previews a million rows under the skip and create policies.
    public var maxPreviewBytes = 192 << 20

    /// The defaults: 64 KiB records, 16 KiB lines, 200 fields, 1,000,000 rows per call, batches of 1,000 rows, 16 MiB
    /// without a row, 192 MiB of preview memory.
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
