/// Finds `{{name}}` placeholders in template text in one pass over its bytes.
///
/// Linear time on any input: at each `{{` the scanner looks ahead at most ``maxLookahead`` bytes for the closing
/// `}}` (optional spaces, a name of at most ``TemplateRules/maxVariableLength`` bytes, optional spaces), so inputs
/// such as `{{x{{x{{x…` cost a bounded amount per byte instead of a search to the end of the text from every `{{`.
public enum TemplateScanner {
    /// A piece of template text: literal bytes, or a placeholder's name.
    public enum Piece: Sendable, Hashable {
        /// Text copied as it is.
        case literal(Substring.UTF8View)
        /// A placeholder.
        case variable(String)

        /// Equal when both are the same kind with the same bytes or name.
        public static func == (lhs: Piece, rhs: Piece) -> Bool {
            switch (lhs, rhs) {
            case (.literal(let a), .literal(let b)): return a.elementsEqual(b)
            case (.variable(let a), .variable(let b)): return a == b
            default: return false
            }
        }

        /// Hashes the kind's bytes or name.
        public func hash(into hasher: inout Hasher) {
            switch self {
            case .literal(let bytes): hasher.combine(Array(bytes))
            case .variable(let name): hasher.combine(name)
            }
        }
    }

    /// A `{{` that does not start a well-formed placeholder, at a byte offset.
    public struct Malformed: Error, Sendable, Hashable {
        /// The byte offset of the `{{`.
        public var offset: Int
    }

    /// Spaces allowed on each side of a name inside the braces.
    static let maxPadding = 8
    /// The most bytes read after a `{{` before giving up.
    public static let maxLookahead = 2 * maxPadding + TemplateRules.maxVariableLength + 2

    /// Splits `text` into literal pieces and placeholders.
    /// - Throws: ``Malformed`` at the first `{{` that does not start a well-formed placeholder.
    public static func scan(_ text: String) throws(Malformed) -> [Piece] {
        let utf8 = Substring(text).utf8
        var pieces: [Piece] = []
        var literalStart = utf8.startIndex
        var i = utf8.startIndex
        let open = UInt8(ascii: "{"), close = UInt8(ascii: "}"), space = UInt8(ascii: " ")
        while i != utf8.endIndex {
            guard utf8[i] == open, let next = utf8.index(i, offsetBy: 1, limitedBy: utf8.endIndex), next != utf8.endIndex, utf8[next] == open
            else {
                i = utf8.index(after: i)
                continue
            }
            // At "{{": read [spaces] name [spaces] "}}" within the lookahead.
            var j = utf8.index(after: next)
            var budget = maxLookahead
            func advance() -> Bool {
                guard j != utf8.endIndex, budget > 0 else { return false }
                j = utf8.index(after: j)
                budget -= 1
                return true
            }
            var padding = 0
            while j != utf8.endIndex, utf8[j] == space, padding < maxPadding {
                padding += 1
                _ = advance()
            }
            let nameStart = j
            var length = 0
            while j != utf8.endIndex, isNameByte(utf8[j], first: length == 0), length < TemplateRules.maxVariableLength {
                length += 1
                _ = advance()
            }
            let nameEnd = j
            padding = 0
            while j != utf8.endIndex, utf8[j] == space, padding < maxPadding {
                padding += 1
                _ = advance()
            }
            guard length > 0, j != utf8.endIndex, utf8[j] == close, advance(), j != utf8.endIndex, utf8[j] == close else {
                throw Malformed(offset: utf8.distance(from: utf8.startIndex, to: i))
            }
            j = utf8.index(after: j)
            if literalStart != i { pieces.append(.literal(utf8[literalStart..<i])) }
            pieces.append(.variable(String(Substring(utf8[nameStart..<nameEnd]))))
            literalStart = j
            i = j
        }
        if literalStart != utf8.endIndex { pieces.append(.literal(utf8[literalStart..<utf8.endIndex])) }
        return pieces
    }

    /// Whether `name` can be written as a placeholder: a letter or `_`, then letters, digits, `_` or `.`, at most
    /// ``TemplateRules/maxVariableLength`` bytes.
    public static func isName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= TemplateRules.maxVariableLength else { return false }
        return name.utf8.enumerated().allSatisfy { isNameByte($0.element, first: $0.offset == 0) }
    }

    static func isNameByte(_ byte: UInt8, first: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"): return true
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."): return !first
        default: return false
        }
    }
}
