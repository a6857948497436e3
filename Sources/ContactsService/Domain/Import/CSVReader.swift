import SwitchboardServiceKit

/// A streaming RFC 4180 reader: bytes in any chunks, records out, never more than one record held.
///
/// States (per byte): `fieldStart` (nothing of the field read yet), `unquoted`, `quoted` (inside `"…"`),
/// `quoteInQuoted` (a `"` inside a quoted field: either the first of `""` or the closing quote), `afterCR` (a CR ended
/// a record; an LF right after it belongs to that end). Invalid input never stops the reader: text after a closing
/// quote makes the record unreadable (kept in sync up to its end), an unterminated quote makes the last record
/// unreadable at ``finish()``. A record past ``ImportLimits/maxRecordBytes`` or with more than
/// ``ImportLimits/maxFields`` fields is read to its end without being kept, then reported unreadable.
///
/// Lenient where real files need it: a UTF-8 byte-order mark is skipped, LF and lone CR end records as CRLF does,
/// a `"` inside an unquoted field is kept as text, blank lines are skipped (and not counted as rows).
public struct CSVReader: ContactRecordReader {
    private enum State { case fieldStart, unquoted, quoted, quoteInQuoted, afterCR }

    /// The field delimiter (`,` by default).
    public let delimiter: UInt8
    /// Whether the first record names the columns.
    public let hasHeader: Bool
    let limits: ImportLimits

    /// The header's column names, once read (or "1", "2", … as wide as the first record, without a header).
    public private(set) var header: [String]?

    private var state = State.fieldStart
    private var offset = 0
    private var bomChecked = 0
    private var bytes: [UInt8] = []
    /// The end index in `bytes` of each finished field of the record.
    private var fieldEnds: [Int] = []
    /// Fields of the record so far, also those past the bound (whose ends are not kept).
    private var fieldCount = 0
    private var recordBytes = 0
    private var quotedAnywhere = false
    private var problem: String?
    private var rows = 0

    /// Creates a reader.
    /// - Parameters:
    ///   - delimiter: the field delimiter.
    ///   - hasHeader: whether the first record is the header.
    ///   - limits: the bounds.
    public init(delimiter: UInt8 = UInt8(ascii: ","), hasHeader: Bool = true, limits: ImportLimits = ImportLimits()) {
        self.delimiter = delimiter
        self.hasHeader = hasHeader
        self.limits = limits
        bytes.reserveCapacity(1024)
    }

    public mutating func read(_ input: UnsafeRawBufferPointer) -> [SourceRecord] {
        var records: [SourceRecord] = []
        var index = 0
        // The byte-order mark may itself arrive split over chunks.
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        while bomChecked < 3, index < input.count {
            if input[index] == bom[bomChecked] {
                bomChecked += 1
                index += 1
                if bomChecked == 3 { offset += 3 }
            } else {
                // Not a BOM: the bytes taken as its start so far were data.
                let taken = bomChecked
                bomChecked = 3
                for b in bom.prefix(taken) { step(b, into: &records) }
            }
        }
        while index < input.count {
            step(input[index], into: &records)
            index += 1
        }
        return records
    }

    private mutating func step(_ byte: UInt8, into records: inout [SourceRecord]) {
        offset += 1
        recordBytes += 1
        switch state {
        case .afterCR:
            if byte == 0x0A {
                state = .fieldStart
                recordBytes = 0
                return
            }
            state = .fieldStart
            step(byteWithoutCount: byte, into: &records)
        default:
            step(byteWithoutCount: byte, into: &records)
        }
    }

    private mutating func step(byteWithoutCount byte: UInt8, into records: inout [SourceRecord]) {
        switch state {
        case .fieldStart, .afterCR:
            if byte == 0x22 {
                state = .quoted
                quotedAnywhere = true
            } else if byte == delimiter {
                endField()
            } else if byte == 0x0A {
                endRecord(into: &records)
            } else if byte == 0x0D {
                endRecord(into: &records)
                state = .afterCR
            } else {
                append(byte)
                state = .unquoted
            }
        case .unquoted:
            if byte == delimiter {
                endField()
                state = .fieldStart
            } else if byte == 0x0A {
                endRecord(into: &records)
            } else if byte == 0x0D {
                endRecord(into: &records)
                state = .afterCR
            } else {
                append(byte)
            }
        case .quoted:
            if byte == 0x22 { state = .quoteInQuoted } else { append(byte) }
        case .quoteInQuoted:
            if byte == 0x22 {
                append(byte)
                state = .quoted
            } else if byte == delimiter {
                endField()
                state = .fieldStart
            } else if byte == 0x0A {
                endRecord(into: &records)
            } else if byte == 0x0D {
                endRecord(into: &records)
                state = .afterCR
            } else {
                if problem == nil { problem = "text follows a closing quote (a quote inside a quoted field is written \"\")" }
                append(byte)
                state = .unquoted
            }
        }
    }

    private mutating func append(_ byte: UInt8) {
        if recordBytes > limits.maxRecordBytes || fieldCount >= limits.maxFields { return }
        bytes.append(byte)
    }

    private mutating func endField() {
        fieldCount += 1
        if fieldCount <= limits.maxFields { fieldEnds.append(bytes.count) }
    }

    private mutating func endRecord(into records: inout [SourceRecord]) {
        // The terminator is not part of the record's size.
        let size = recordBytes - 1
        let blank = fieldCount == 0 && bytes.isEmpty && !quotedAnywhere
        endField()
        defer {
            bytes.removeAll(keepingCapacity: bytes.capacity <= 1 << 16)
            fieldEnds.removeAll(keepingCapacity: true)
            fieldCount = 0
            recordBytes = 0
            quotedAnywhere = false
            problem = nil
            state = .fieldStart
        }
        if blank { return }
        if let record = makeRecord(size: size) { records.append(record) }
    }

    private mutating func makeRecord(size: Int) -> SourceRecord? {
        let isHeader = hasHeader && header == nil
        if isHeader {
            rows = 0
        } else {
            rows += 1
        }
        func unreadable(_ description: String, reason: String) -> SourceRecord {
            SourceRecord(
                row: isHeader ? 0 : rows, endOffset: offset, content: .unreadable(Violation(isHeader ? "header" : "row", description, reason: reason))
            )
        }
        if isHeader, size > limits.maxLineBytes {
            header = []
            return unreadable("the header row is \(size) bytes; at most \(limits.maxLineBytes)", reason: "TOO_LONG")
        }
        if size > limits.maxRecordBytes {
            if isHeader { header = [] }
            return unreadable("the record is \(size) bytes; at most \(limits.maxRecordBytes)", reason: "TOO_LONG")
        }
        if fieldCount > limits.maxFields {
            if isHeader { header = [] }
            return unreadable("the record has more than \(limits.maxFields) fields", reason: "TOO_MANY")
        }
        if let problem {
            if isHeader { header = [] }
            return unreadable(problem, reason: "MALFORMED")
        }
        var cells: [String] = []
        cells.reserveCapacity(fieldEnds.count)
        var start = 0
        for (i, end) in fieldEnds.enumerated() {
            guard let text = ImportText.string(bytes[start..<end]) else {
                if isHeader { header = [] }
                return unreadable("column \(i + 1) is not UTF-8 text, or holds a NUL byte", reason: "INVALID_ENCODING")
            }
            cells.append(text)
            start = end
        }
        if isHeader {
            header = cells.map { $0.trimmingSpaces }
            return nil
        }
        if header == nil { header = (1...max(1, cells.count)).map(String.init) }
        return SourceRecord(row: rows, endOffset: offset, content: .cells(cells))
    }

    public mutating func finish() -> [SourceRecord] {
        var records: [SourceRecord] = []
        if bomChecked < 3 {
            let taken = bomChecked
            bomChecked = 3
            for b in [UInt8]([0xEF, 0xBB, 0xBF]).prefix(taken) { step(b, into: &records) }
        }
        switch state {
        case .quoted:
            if problem == nil { problem = "a quoted field is not closed before the end of the input" }
            recordBytes += 1
            endRecord(into: &records)
        case .afterCR:
            break
        default:
            if !(fieldCount == 0 && bytes.isEmpty && !quotedAnywhere && state == .fieldStart) {
                recordBytes += 1
                endRecord(into: &records)
            }
        }
        return records
    }
}
