import SwitchboardServiceKit

/// A streaming vCard 3.0 / 4.0 reader (RFC 2426, RFC 6350): bytes in any chunks, one record per `BEGIN:VCARD` …
/// `END:VCARD`, never more than one card held.
///
/// Lines end with CRLF or LF; a line starting with a space or tab continues the previous one (folding, undone
/// here). Each content line is `[group.]NAME[;PARAM=VALUE…]:VALUE`; parameter values may be quoted (`"…"`, where `;`
/// and `:` are text) and use RFC 6868's `^n`, `^^`, `^'`. Values are unescaped (`\n`, `\,`, `\;`, `\\`); `N` and `ADR`
/// are split into components at unescaped `;`, `CATEGORIES` and `NICKNAME` into values at unescaped `,`.
///
/// Invalid input never stops the reader: a card past ``ImportLimits/maxRecordBytes``, a content line past
/// ``ImportLimits/maxLineBytes``, more than ``ImportLimits/maxFields`` properties, a value that is not UTF-8, a
/// `BEGIN:VCARD` inside a card (nesting is counted, never stored) or input ending inside a card each make that card
/// one unreadable record. Lines outside cards are ignored, and so are the binary properties nothing imports (``binary``:
/// a photo, a logo, a sound, a key), whatever their size: phones' and mail programs' exports embed photos of hundreds
/// of kilobytes, which would otherwise make their cards unreadable.
public struct VCardReader: ContactRecordReader {
    let limits: ImportLimits
    private var offset = 0
    private var line: [UInt8] = []
    private var lineBytes = 0
    /// Every byte of the logical line so far: its folds and line ends too (what it adds to `cardBytes`).
    private var rawLineBytes = 0
    private var atLineStart = true
    private var hasPending = false
    private var inCard = false
    private var nesting = 0
    private var cardBytes = 0
    private var properties: [SourceField] = []
    private var propertyCount = 0
    private var problem: (String, String)?
    private var rows = 0

    /// Structured properties, split into components at `;`.
    static let structured: Set<String> = ["N", "ADR", "ORG", "GENDER"]
    /// List properties, split into values at `,`.
    static let lists: Set<String> = ["CATEGORIES", "NICKNAME"]
    /// Properties of binary data (inline base64 or a URI), which no mapping imports: skipped, never counted against a
    /// bound, never stored.
    static let binary: Set<String> = ["PHOTO", "LOGO", "SOUND", "KEY"]

    /// Creates a reader.
    /// - Parameter limits: the bounds.
    public init(limits: ImportLimits = ImportLimits()) {
        self.limits = limits
    }

    public mutating func read(_ input: UnsafeRawBufferPointer) -> [SourceRecord] {
        var records: [SourceRecord] = []
        for byte in input {
            offset += 1
            if inCard { cardBytes += 1 }
            if atLineStart {
                atLineStart = false
                if hasPending, byte == 0x20 || byte == 0x09 {
                    // A folded line: its first space or tab is the fold, not text.
                    rawLineBytes += 1
                    continue
                }
                if hasPending { endLogicalLine(into: &records) }
                hasPending = true
            }
            rawLineBytes += 1
            if byte == 0x0A {
                if line.last == 0x0D { line.removeLast() }
                atLineStart = true
                continue
            }
            lineBytes += 1
            if lineBytes <= limits.maxLineBytes { line.append(byte) }
        }
        return records
    }

    public mutating func finish() -> [SourceRecord] {
        var records: [SourceRecord] = []
        if hasPending {
            if line.last == 0x0D { line.removeLast() }
            endLogicalLine(into: &records)
        }
        if inCard {
            rows += 1
            records.append(
                SourceRecord(
                    row: rows, endOffset: offset,
                    content: .unreadable(Violation("row", "the input ends inside a vCard (no END:VCARD)", reason: "MALFORMED"))))
            inCard = false
        }
        return records
    }

    private mutating func endLogicalLine(into records: inout [SourceRecord]) {
        defer {
            line.removeAll(keepingCapacity: line.capacity <= 1 << 16)
            lineBytes = 0
            rawLineBytes = 0
            hasPending = false
        }
        if line.isEmpty { return }
        let tooLong = lineBytes > limits.maxLineBytes
        // The name: up to the first `;` or `:`.
        guard let nameEnd = line.firstIndex(where: { $0 == 0x3B || $0 == 0x3A }) else {
            if inCard, problem == nil { problem = ("a line has no `:` (\(ImportText.excerpt(line)))", "MALFORMED") }
            return
        }
        var name = line[..<nameEnd]
        if let dot = name.lastIndex(of: 0x2E) { name = name[(dot + 1)...] }
        let upperName = String(decoding: name, as: UTF8.self).uppercased()
        if upperName == "BEGIN" || upperName == "END" {
            let value = line[(nameEnd + 1)...]
            guard String(decoding: value, as: UTF8.self).trimmingSpaces.uppercased() == "VCARD" else { return }
            if upperName == "BEGIN" {
                if inCard {
                    nesting += 1
                    if problem == nil { problem = ("a vCard holds another (BEGIN:VCARD inside a card)", "MALFORMED") }
                } else {
                    inCard = true
                    cardBytes = lineBytes + 1
                    properties = []
                    propertyCount = 0
                    problem = nil
                }
            } else if nesting > 0 {
                nesting -= 1
            } else if inCard {
                inCard = false
                rows += 1
                let content: SourceRecord.Content
                if let problem {
                    content = .unreadable(Violation("row", problem.0, reason: problem.1))
                } else if cardBytes > limits.maxRecordBytes {
                    content = .unreadable(Violation("row", "the vCard is \(cardBytes) bytes; at most \(limits.maxRecordBytes)", reason: "TOO_LONG"))
                } else {
                    content = .fields(properties)
                }
                records.append(SourceRecord(row: rows, endOffset: offset, content: content))
                properties = []
            }
            return
        }
        guard inCard, nesting == 0 else { return }
        if Self.binary.contains(upperName) {
            // Not imported: its bytes count toward no bound (a photo's hundreds of kilobytes).
            cardBytes -= rawLineBytes
            return
        }
        if tooLong {
            if problem == nil { problem = ("a line is more than \(limits.maxLineBytes) bytes", "TOO_LONG") }
            return
        }
        propertyCount += 1
        if propertyCount > limits.maxFields {
            if problem == nil { problem = ("the vCard has more than \(limits.maxFields) properties", "TOO_MANY") }
            return
        }
        if cardBytes > limits.maxRecordBytes || problem != nil { return }
        guard let property = Self.property(upperName, line[nameEnd...]) else {
            problem = ("property \(upperName.prefix(64)) is not UTF-8 text, holds a NUL byte or is malformed", "INVALID_ENCODING")
            return
        }
        if let unsupported = Self.unsupported(property) {
            problem = (unsupported, "UNSUPPORTED")
            return
        }
        properties.append(property)
    }

    /// Why a property makes its card unreadable here, if it does: a version other than 3.0 and 4.0, or a value in
    /// vCard 2.1's quoted-printable encoding or another character set than UTF-8 (imported as written, `=C3=89mile`
    /// would have become a family name; 2.1's soft line breaks would split values besides).
    static func unsupported(_ property: SourceField) -> String? {
        if property.key == "VERSION" {
            let version = property.value.trimmingSpaces
            return version == "3.0" || version == "4.0" ? nil : "vCard version \(version.prefix(16)) is not read here: export vCard 3.0 or 4.0"
        }
        for (name, value) in property.parameters {
            let upper = value.uppercased()
            if name == "ENCODING", upper != "B", upper != "BASE64", upper != "8BIT" {
                return "property \(property.key.prefix(64)) is in the \(value.prefix(32)) encoding (vCard 2.1): export vCard 3.0 or 4.0"
            }
            if name == "CHARSET", upper != "UTF-8", upper != "UTF8", upper != "US-ASCII" {
                return "property \(property.key.prefix(64)) is in the \(value.prefix(32)) character set: export UTF-8 (vCard 3.0 or 4.0)"
            }
        }
        return nil
    }

    /// Parses `;PARAM=VALUE…:VALUE` (starting at the `;` or `:` after the name).
    static func property(_ name: String, _ rest: ArraySlice<UInt8>) -> SourceField? {
        var parameters: [(name: String, value: String)] = []
        var index = rest.startIndex
        // Parameters, each up to an unquoted `;` or `:`.
        while index < rest.endIndex, rest[index] == 0x3B {
            index += 1
            var text: [UInt8] = []
            var quoted = false
            while index < rest.endIndex {
                let b = rest[index]
                if b == 0x22 {
                    quoted.toggle()
                } else if !quoted, b == 0x3B || b == 0x3A {
                    break
                } else {
                    text.append(b)
                }
                index += 1
            }
            guard let parameter = ImportText.string(text) else { return nil }
            if let eq = parameter.firstIndex(of: "=") {
                parameters.append((String(parameter[..<eq]).uppercased(), caretDecoded(String(parameter[parameter.index(after: eq)...]))))
            } else if !parameter.isEmpty {
                // vCard 2.1's bare type (`TEL;WORK:`).
                parameters.append(("TYPE", parameter))
            }
        }
        guard index < rest.endIndex, rest[index] == 0x3A, let raw = ImportText.string(rest[(index + 1)...]) else { return nil }
        var components: [String] = []
        if structured.contains(name) {
            components = split(raw, at: ";").map(unescape)
        } else if lists.contains(name) {
            components = split(raw, at: ",").map(unescape)
        }
        return SourceField(key: name, value: unescape(raw), components: components, parameters: parameters)
    }

    /// Splits at `separator` where it is not escaped with a backslash.
    static func split(_ text: String, at separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var escaped = false
        for c in text {
            if escaped {
                current.append("\\")
                current.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == separator {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        if escaped { current.append("\\") }
        parts.append(current)
        return parts
    }

    /// Undoes text escapes: `\n` or `\N` → line feed, `\,` `\;` `\:` `\\` → the character.
    static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var out = ""
        var escaped = false
        for c in text {
            if escaped {
                out.append(c == "n" || c == "N" ? "\n" : c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        if escaped { out.append("\\") }
        return out
    }

    /// RFC 6868 parameter value encoding: `^n` → line feed, `^'` → `"`, `^^` → `^`.
    static func caretDecoded(_ text: String) -> String {
        guard text.contains("^") else { return text }
        var out = ""
        var caret = false
        for c in text {
            if caret {
                switch c {
                case "n": out.append("\n")
                case "'": out.append("\"")
                case "^": out.append("^")
                default:
                    out.append("^")
                    out.append(c)
                }
                caret = false
            } else if c == "^" {
                caret = true
            } else {
                out.append(c)
            }
        }
        if caret { out.append("^") }
        return out
    }
}

extension ImportText {
    /// At most 32 bytes of a line, as text, for an error message.
    static func excerpt(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(32), as: UTF8.self) + (bytes.count > 32 ? "…" : "")
    }
}
