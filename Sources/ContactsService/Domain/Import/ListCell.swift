/// The list cells of the CSV form: emails, phones, tags and address lines, items separated by `;`, an email or phone
/// `label:value`. A `;` inside an item's text, and a `:` inside a label, are escaped with a backslash, so every tag,
/// label and line survives an export and an import (the tag `a;b` is written `a\;b`; it used to come back as the two
/// tags `a` and `b`). Backslashes follow the rule of quotes in a command line: only a run of them that comes right
/// before a `;`, a label's `:` or the item's end is doubled, so `\\server\share` or `C:\dir` from another program
/// reads as itself. Pure.
enum ListCell {
    private static let backslash = UInt8(ascii: "\\"), semicolon = UInt8(ascii: ";"), colon = UInt8(ascii: ":")

    /// An item's text as written in a cell: `;` escaped, and `:` too when `colons` (a label).
    static func escaped(_ text: String, colons: Bool = false) -> String {
        let bytes = Array(text.utf8)
        func special(_ byte: UInt8) -> Bool { byte == semicolon || (colons && byte == colon) }
        guard bytes.contains(where: { special($0) || $0 == backslash }) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 8)
        var run = 0
        for byte in bytes {
            if byte == backslash {
                run += 1
                continue
            }
            if special(byte) {
                out += Array(repeating: backslash, count: 2 * run + 1)
            } else {
                out += Array(repeating: backslash, count: run)
            }
            run = 0
            out.append(byte)
        }
        out += Array(repeating: backslash, count: 2 * run)
        return String(decoding: out, as: UTF8.self)
    }

    /// Where the unescaped `target` bytes of `bytes` are: those after an even run of backslashes (or none).
    private static func positions(of target: UInt8, in bytes: String.UTF8View) -> [String.Index] {
        var found: [String.Index] = []
        var run = 0
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let byte = bytes[i]
            if byte == target, run % 2 == 0 { found.append(i) }
            run = byte == backslash ? run + 1 : 0
            i = bytes.index(after: i)
        }
        return found
    }

    /// The items of a cell, each still escaped, trimmed of spaces; empty ones dropped.
    static func items(_ cell: String) -> [String] {
        var items: [String] = []
        var start = cell.startIndex
        for separator in positions(of: semicolon, in: cell.utf8) {
            items.append(String(cell[start..<separator]))
            start = cell.utf8.index(after: separator)
        }
        items.append(String(cell[start...]))
        return items.map(\.trimmingSpaces).filter { !$0.isEmpty }
    }

    /// An item's label and value when it holds an unescaped `:` (the first one) and `isLabel` accepts the text on
    /// either side of it, unescaped (the label's `:` too) and trimmed; otherwise nil.
    static func labelled(
        _ item: String, isLabel: (_ label: Substring, _ value: Substring) -> Bool = { _, _ in true }
    ) -> (label: String, value: String)? {
        guard let at = positions(of: colon, in: item.utf8).first else { return nil }
        let label = item[..<at], value = item[item.utf8.index(after: at)...]
        guard isLabel(label, value) else { return nil }
        return (unescaped(String(label), colons: true).trimmingSpaces, unescaped(String(value)).trimmingSpaces)
    }

    /// An item's text with its escapes removed: a run of n backslashes before a `;` (or a `:`, with `colons`) stands
    /// for n / 2 of them, and escapes the character when n is odd; a run at the end stands for half of it when even.
    /// Any other backslash is itself.
    static func unescaped(_ text: String, colons: Bool = false) -> String {
        guard text.utf8.contains(backslash) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var run = 0
        for byte in text.utf8 {
            if byte == backslash {
                run += 1
                continue
            }
            let special = byte == semicolon || (colons && byte == colon)
            out += Array(repeating: backslash, count: special ? run / 2 : run)
            run = 0
            out.append(byte)
        }
        // At the end: halved when even (as written); an odd run was not written by an export, and stays as it is.
        out += Array(repeating: backslash, count: run % 2 == 0 ? run / 2 : run)
        return String(decoding: out, as: UTF8.self)
    }
}
