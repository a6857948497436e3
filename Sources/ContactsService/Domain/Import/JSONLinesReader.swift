import SwitchboardProtos
import SwitchboardServiceKit

/// A streaming JSON lines reader: one JSON object per line (LF or CRLF), blank lines skipped, never more than one line
/// held.
///
/// A line past ``ImportLimits/maxRecordBytes`` is read to its end without being kept, then reported unreadable; so is
/// a line that is not UTF-8, not JSON, not an object, nests deeper than the JSON parser allows (512 levels) or holds
/// more than ``ImportLimits/maxFields`` values.
public struct JSONLinesReader: ContactRecordReader {
    let limits: ImportLimits
    private var offset = 0
    private var line: [UInt8] = []
    private var lineBytes = 0
    private var rows = 0

    /// Creates a reader.
    /// - Parameter limits: the bounds.
    public init(limits: ImportLimits = ImportLimits()) {
        self.limits = limits
    }

    public mutating func read(_ input: UnsafeRawBufferPointer) -> [SourceRecord] {
        var records: [SourceRecord] = []
        var start = 0
        for (i, byte) in input.enumerated() where byte == 0x0A {
            take(UnsafeRawBufferPointer(rebasing: input[start..<i]))
            offset += i + 1 - start
            start = i + 1
            if let record = endLine() { records.append(record) }
        }
        take(UnsafeRawBufferPointer(rebasing: input[start...]))
        offset += input.count - start
        return records
    }

    private mutating func take(_ bytes: UnsafeRawBufferPointer) {
        lineBytes += bytes.count
        if lineBytes <= limits.maxRecordBytes { line.append(contentsOf: bytes) }
    }

    public mutating func finish() -> [SourceRecord] {
        guard lineBytes > 0, let record = endLine() else { return [] }
        return [record]
    }

    private mutating func endLine() -> SourceRecord? {
        defer {
            line.removeAll(keepingCapacity: line.capacity <= 1 << 16)
            lineBytes = 0
        }
        if line.last == 0x0D {
            line.removeLast()
            lineBytes -= 1
        }
        if lineBytes == 0 || line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) && lineBytes <= limits.maxRecordBytes { return nil }
        rows += 1
        func unreadable(_ description: String, _ reason: String) -> SourceRecord {
            SourceRecord(row: rows, endOffset: offset, content: .unreadable(Violation("row", description, reason: reason)))
        }
        guard lineBytes <= limits.maxRecordBytes else {
            return unreadable("the line is \(lineBytes) bytes; at most \(limits.maxRecordBytes)", "TOO_LONG")
        }
        guard let text = ImportText.string(line) else { return unreadable("the line is not UTF-8 text, or holds a NUL byte", "INVALID_ENCODING") }
        let json: JSON
        do {
            json = try JSON.parse(text, rejectingDuplicateKeys: true)
        } catch {
            return unreadable("the line is not JSON (\(error))", "MALFORMED")
        }
        guard case .object = json else { return unreadable("the line is not a JSON object", "MALFORMED") }
        guard Self.count(json, limit: limits.maxFields) <= limits.maxFields else {
            return unreadable("the object holds more than \(limits.maxFields) values", "TOO_MANY")
        }
        return SourceRecord(row: rows, endOffset: offset, content: .json(json))
    }

    /// The values in a JSON value (every element and member at every depth), counting no further than `limit` + 1.
    static func count(_ json: JSON, limit: Int) -> Int {
        var total = 0
        var stack = [json]
        while let value = stack.popLast() {
            total += 1
            if total > limit { return total }
            switch value {
            case .array(let a): stack += a
            case .object(let o): stack += o.values
            default: break
            }
        }
        return total
    }
}
