/// A `google.api.http` path template (`/v1/contacts/{id}:undelete`, `/v1/{name=shelves/*}`), parsed once and
/// matched against request paths.
///
/// Grammar (from `google/api/http.proto`): `Template = "/" Segments [ ":" Verb ]`, a segment is `*`, `**`, a
/// literal or `{field.path}` / `{field.path=Segments}`. A `{var}` alone matches one segment.
struct PathTemplate: Sendable, Hashable {
    enum Segment: Sendable, Hashable {
        case literal(String)
        /// `*`: exactly one segment.
        case single
        /// `**`: the rest of the path (zero or more segments); only last.
        case rest
    }

    /// A variable: the field path it fills and the segments (indices into ``segments``) it covers.
    struct Variable: Sendable, Hashable {
        var fieldPath: [String]
        var range: Range<Int>
    }

    let segments: [Segment]
    let variables: [Variable]
    /// Whether the last segment is `**` (it can only be last).
    let endsWithRest: Bool
    let verb: String
    /// The template as written.
    let text: String

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    init(_ text: String) throws {
        self.text = text
        guard text.hasPrefix("/") else { throw ParseError(description: "\(text): a template starts with /") }
        var body = Substring(text.dropFirst())
        var verb = ""
        // The verb follows the last ':' outside braces.
        var depth = 0
        var verbStart: Substring.Index?
        for i in body.indices {
            switch body[i] {
            case "{": depth += 1
            case "}": depth -= 1
            case ":" where depth == 0: verbStart = i
            default: break
            }
        }
        if let verbStart {
            verb = String(body[body.index(after: verbStart)...])
            body = body[..<verbStart]
        }
        var segments: [Segment] = []
        var variables: [Variable] = []
        var i = body.startIndex
        func parseSegments(_ s: Substring) throws -> [Segment] {
            try s.split(separator: "/", omittingEmptySubsequences: false).map { part in
                switch part {
                case "*": .single
                case "**": .rest
                case "": throw ParseError(description: "\(text): empty segment")
                default: .literal(String(part))
                }
            }
        }
        while i < body.endIndex {
            if body[i] == "{" {
                guard let close = body[i...].firstIndex(of: "}") else { throw ParseError(description: "\(text): unclosed {") }
                let inside = body[body.index(after: i)..<close]
                let parts = inside.split(separator: "=", maxSplits: 1)
                let field = parts.first.map { $0.split(separator: ".").map(String.init) } ?? []
                guard !field.isEmpty else { throw ParseError(description: "\(text): empty variable") }
                let inner = parts.count == 2 ? try parseSegments(parts[1]) : [.single]
                variables.append(Variable(fieldPath: field, range: segments.count..<(segments.count + inner.count)))
                segments += inner
                i = body.index(after: close)
            } else {
                let end = body[i...].firstIndex(where: { $0 == "/" }) ?? body.endIndex
                let part = body[i..<end]
                if !part.isEmpty { segments += try parseSegments(part) }
                i = end
            }
            if i < body.endIndex, body[i] == "/" { i = body.index(after: i) }
        }
        if let restIndex = segments.firstIndex(of: .rest), restIndex != segments.count - 1 {
            throw ParseError(description: "\(text): ** must be last")
        }
        self.segments = segments
        self.variables = variables
        self.endsWithRest = segments.last == .rest
        self.verb = verb
    }

    /// Splits a request path into segments and its custom verb: the text after the last `:` of the last segment, as
    /// grpc-gateway reads it (an encoded `%3A` is not a separator, so an id holding a colon is sent encoded).
    static func split(_ path: Substring) -> (parts: [Substring], verb: Substring) {
        // Split on the UTF-8 bytes: `/` and `:` are ASCII, so every cut is a valid index of the text, and the text's own
        // `split` walks grapheme clusters (it was a third of the route match in a profile of the gateway).
        let bytes = path.utf8.first == UInt8(ascii: "/") ? path.utf8.dropFirst() : path.utf8[...]
        var parts: [Substring] = []
        var start = bytes.startIndex
        var index = start
        while index != bytes.endIndex {
            if bytes[index] == UInt8(ascii: "/") {
                parts.append(path[start..<index])
                start = bytes.index(after: index)
            }
            index = bytes.index(after: index)
        }
        parts.append(path[start..<bytes.endIndex])
        let last = parts[parts.count - 1].utf8
        guard let colon = last.lastIndex(of: UInt8(ascii: ":")) else { return (parts, "") }
        parts[parts.count - 1] = path[last.startIndex..<colon]
        return (parts, path[last.index(after: colon)..<last.endIndex])
    }

    /// Whether this template matches a request path, and the variables' values (percent-decoded; a `**` variable
    /// keeps its slashes). The request's custom verb must equal the template's ("" for neither).
    /// - Parameters:
    ///   - parts: the request path's segments, still percent-encoded, the verb removed (``split(_:)``).
    ///   - requestVerb: the request's custom verb.
    /// - Returns: field path → value, or nil when the template does not match.
    func match(_ parts: [Substring], verb requestVerb: Substring = "") -> [(fieldPath: [String], value: String)]? {
        match(parts, decoded: parts.map { PercentEncoding.decodeIfNeeded($0) }, verb: requestVerb)
    }

    /// ``match(_:verb:)`` with the parts already percent-decoded once (a route table tries many templates per request).
    /// Segment i covers request part i (`**`, only ever last, covers the rest), so a template that does not match is
    /// turned down without allocating.
    func match(_ parts: [Substring], decoded: [Substring], verb requestVerb: Substring) -> [(fieldPath: [String], value: String)]? {
        guard requestVerb == verb else { return nil }
        let fixed = endsWithRest ? segments.count - 1 : segments.count
        guard endsWithRest ? parts.count >= fixed : parts.count == fixed else { return nil }
        for i in 0..<fixed {
            switch segments[i] {
            case .literal(let literal):
                guard decoded[i] == literal else { return nil }
            case .single:
                guard !parts[i].isEmpty else { return nil }
            case .rest:
                return nil  // not reached: `**` is only last
            }
        }
        return variables.map { variable in
            let last = variable.range.upperBound == segments.count && endsWithRest ? parts.count : variable.range.upperBound
            let covered = parts[variable.range.lowerBound..<last]
            let raw = covered.count == 1 ? covered[covered.startIndex] : Substring(covered.joined(separator: "/"))
            return (variable.fieldPath, PercentEncoding.decode(raw, strict: true))
        }
    }

    /// How specific the template is, for choosing among matches: literals before variables, no `**` before `**`.
    var specificity: [Int] {
        segments.map {
            switch $0 {
            case .literal: 2
            case .single: 1
            case .rest: 0
            }
        }
    }
}

/// `application/x-www-form-urlencoded` and path percent-decoding.
enum PercentEncoding {
    /// What ``decode(_:plusIsSpace:strict:)`` returns in strict mode for escapes that are not UTF-8: a NUL, which no
    /// text a request carries may hold (``RequestMapping`` refuses it, naming the parameter or variable).
    static let notText = "\u{0}"

    /// Decodes `%XX` escapes (and, for query strings, `+` as a space); an invalid escape is kept as written.
    /// - Parameters:
    ///   - s: the encoded text.
    ///   - plusIsSpace: whether `+` means a space (query strings).
    ///   - strict: whether escapes that decode to bytes that are not UTF-8 give ``notText`` instead of repaired text
    ///     (a value: repaired, `%FF%FE` would reach a service as two U+FFFD and a search would match everything).
    /// - Returns: the decoded text.
    static func decode(_ s: Substring, plusIsSpace: Bool = false, strict: Bool = false) -> String {
        // Byte scans: `Substring.contains(String)` is Foundation's locale-aware search, costly on every request.
        guard s.utf8.contains(UInt8(ascii: "%")) || (plusIsSpace && s.utf8.contains(UInt8(ascii: "+"))) else { return String(s) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%"), it.count >= 2, let hi = hex(it[it.startIndex]), let lo = hex(it[it.startIndex + 1]) {
                bytes.append(hi << 4 | lo)
                it = it.dropFirst(2)
            } else if plusIsSpace, b == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(b)
            }
        }
        if strict { return String(validating: bytes, as: UTF8.self) ?? notText }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The decoded text, without a copy when there is nothing to decode.
    static func decodeIfNeeded(_ s: Substring) -> Substring {
        s.utf8.contains(UInt8(ascii: "%")) ? Substring(decode(s)) : s
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
