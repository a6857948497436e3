/// The list cells of the CSV form: emails, phones, tags and address lines, items separated by `;`, an email or phone
/// `label:value`. A `;` inside an item's text, a `:` inside a label, and a backslash before either or before another
/// backslash are escaped with a backslash, so every tag, label and line survives an export and an import (the tag
/// `a;b` is written `a\;b`; it used to come back as the two tags `a` and `b`). A backslash before any other character
/// is read as itself, so text written by other programs keeps its backslashes. Pure.
enum ListCell {
    private static let backslash = UInt8(ascii: "\\"), semicolon = UInt8(ascii: ";"), colon = UInt8(ascii: ":")

    /// Whether a byte after a backslash makes an escape.
    private static func isEscapable(_ byte: UInt8) -> Bool { byte == backslash || byte == semicolon || byte == colon }

    /// An item's text as written in a cell: `;` escaped, and `:` too when `colons` (a label).
    static func escaped(_ text: String, colons: Bool = false) -> String {
        let bytes = Array(text.utf8)
        // A backslash needs escaping only where a reader would take it for an escape: before `\`, `;` or `:`, or last
        // (it would then escape the separator the writer puts after it).
        let needs = bytes.contains { $0 == semicolon || $0 == backslash || (colons && $0 == colon) }
        guard needs else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 4)
        for (i, byte) in bytes.enumerated() {
            if byte == semicolon || (colons && byte == colon) {
                out.append(backslash)
            } else if byte == backslash, i + 1 == bytes.count || isEscapable(bytes[i + 1]) {
                out.append(backslash)
            }
            out.append(byte)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The items of a cell, each still escaped, trimmed of spaces; empty ones dropped.
    static func items(_ cell: String) -> [String] {
        var items: [String] = []
        var start = cell.utf8.startIndex
        var i = start
        let utf8 = cell.utf8
        while i < utf8.endIndex {
            let byte = utf8[i]
            if byte == backslash, case let next = utf8.index(after: i), next < utf8.endIndex, isEscapable(utf8[next]) {
                i = utf8.index(after: next)
                continue
            }
            if byte == semicolon {
                items.append(String(cell[start..<i]))
                start = utf8.index(after: i)
            }
            i = utf8.index(after: i)
        }
        items.append(String(cell[start...]))
        return items.map(\.trimmingSpaces).filter { !$0.isEmpty }
    }

    /// An item's label and value when it holds an unescaped `:` (the first one) and `isLabel` accepts the text before
    /// it, both unescaped and trimmed; otherwise nil.
    static func labelled(_ item: String, isLabel: (_ label: Substring) -> Bool = { _ in true }) -> (label: String, value: String)? {
        let utf8 = item.utf8
        var i = utf8.startIndex
        while i < utf8.endIndex {
            let byte = utf8[i]
            if byte == backslash, case let next = utf8.index(after: i), next < utf8.endIndex, isEscapable(utf8[next]) {
                i = utf8.index(after: next)
                continue
            }
            if byte == colon {
                guard isLabel(item[..<i]) else { return nil }
                return (unescaped(String(item[..<i])).trimmingSpaces, unescaped(String(item[utf8.index(after: i)...])).trimmingSpaces)
            }
            i = utf8.index(after: i)
        }
        return nil
    }

    /// An item's text with its escapes removed.
    static func unescaped(_ text: String) -> String {
        guard text.utf8.contains(backslash) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var escaping = false
        for byte in text.utf8 {
            if escaping {
                if !isEscapable(byte) { out.append(backslash) }
                out.append(byte)
                escaping = false
            } else if byte == backslash {
                escaping = true
            } else {
                out.append(byte)
            }
        }
        if escaping { out.append(backslash) }
        return String(decoding: out, as: UTF8.self)
    }
}
