/// Where the placeholders of an HTML template stand, so a template is refused when it puts one where escaping cannot
/// make a value safe. Escaping (``TemplateRules/htmlEscaped(_:)``) keeps a value inside element text and inside a quoted
/// attribute value; it does not stop a value from being a `javascript:` link, an event handler's script, a style, or a
/// new attribute in an unquoted value or in the tag itself.
///
/// A small tokenizer of the template's literal text, not an HTML parser, so it is strict where browsers and this
/// tokenizer could read the same text differently: a template with placeholders may hold no comment or other `<!`
/// markup but a leading `<!DOCTYPE …>`, no `</` that does not start an end tag, and none of the elements whose
/// content browsers parse by other rules (`script`, `svg`, `math`, `iframe`, `noscript`, `xmp`, …). `style`, `title`
/// and `textarea` are read as browsers read them: to their end tag, whatever quotes they hold.
public enum HTMLPlaceholders {
    /// Attributes whose value is a URL: a placeholder may only follow a fixed start that sets the scheme and host
    /// (`https://example.com/…`), a `mailto:` or `tel:` scheme, or a path (`/orders/…`, `?id=…`, `#…`).
    static let urlAttributes: Set<String> = [
        "href", "src", "action", "formaction", "background", "cite", "poster", "srcset", "data", "codebase", "longdesc", "manifest",
        "usemap", "ping", "lowsrc", "dynsrc", "xlink:href", "icon",
    ]
    /// Attributes whose value is script, style, markup or a browser instruction: never a placeholder.
    static let activeAttributes: Set<String> = ["style", "srcdoc", "content", "http-equiv"]
    /// Elements a template with placeholders may not hold: their content is script, foreign markup (with its own
    /// parsing rules), or parsed differently depending on the browser.
    static let refusedElements: Set<String> = [
        "script", "svg", "math", "iframe", "noscript", "noembed", "noframes", "xmp", "plaintext", "object", "embed", "applet", "frame",
        "frameset", "template",
    ]
    /// Elements whose content is text up to their end tag (`<` and quotes inside do not start markup).
    static let textElements: Set<String> = ["style", "title", "textarea"]

    private enum State: Equatable {
        case text, tagName, inTag, attributeName, afterAttributeName, beforeValue, quoted(UInt8), unquoted, declaration, rawText
    }

    /// Why the placeholders of `body` cannot stand where they are (or why the template's markup cannot be checked);
    /// empty when every placeholder is safe, and for a body without placeholders.
    public static func problems(in body: String) -> [String] {
        guard let pieces = try? TemplateScanner.scan(body), pieces.contains(where: { if case .variable = $0 { true } else { false } }) else {
            return []
        }
        var state = State.text
        var tag: [UInt8] = [], closing = false, attribute: [UInt8] = [], valueStart: [UInt8] = [], rawEnd: [UInt8] = []
        var rawTag = ""
        var problems: [String] = []
        var seenMarkup = false
        func lower(_ b: UInt8) -> UInt8 { (65...90).contains(b) ? b | 0x20 : b }
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0C || b == 0x0D }
        func isLetter(_ b: UInt8) -> Bool { (65...90).contains(b) || (97...122).contains(b) }
        func note(_ problem: String) { if !problems.contains(problem) { problems.append(problem) } }
        func closeTag() {
            let name = String(decoding: tag, as: UTF8.self)
            if refusedElements.contains(name) { note("the <\(name)> element is not allowed in an HTML template with placeholders") }
            if !closing, textElements.contains(name) {
                state = .rawText
                rawTag = name
                rawEnd = Array("</\(name)".utf8)
            } else {
                state = .text
            }
        }
        for piece in pieces {
            switch piece {
            case .literal(let literal):
                let bytes = Array(literal)
                var i = 0
                while i < bytes.count {
                    let b = bytes[i]
                    switch state {
                    case .text:
                        let leading = !seenMarkup
                        if !isSpace(b) { seenMarkup = true }
                        guard b == UInt8(ascii: "<") else { break }
                        if i + 1 == bytes.count {
                            // "<" right before a placeholder: the value would be the tag's name ("<{{x}}>" with x = "script").
                            state = .tagName
                            tag = []
                            closing = false
                        } else if bytes[i + 1] == UInt8(ascii: "!") {
                            let doctype = bytes[i...].prefix(9).map(lower).elementsEqual(Array("<!doctype".utf8))
                            if !doctype || !leading {
                                note("comments and other <! markup (but a leading <!DOCTYPE>) are not allowed in an HTML template with placeholders")
                            }
                            state = .declaration
                        } else if isLetter(bytes[i + 1]) {
                            state = .tagName
                            tag = []
                            closing = false
                        } else if bytes[i + 1] == UInt8(ascii: "/") {
                            if i + 2 < bytes.count, isLetter(bytes[i + 2]) {
                                state = .tagName
                                tag = []
                                closing = true
                                i += 1
                            } else {
                                note("\"</\" not followed by a tag name is not allowed in an HTML template with placeholders")
                            }
                        }
                    case .declaration:
                        if b == UInt8(ascii: ">") { state = .text }
                    case .tagName:
                        if isSpace(b) || b == UInt8(ascii: "/") {
                            state = .inTag
                        } else if b == UInt8(ascii: ">") {
                            closeTag()
                        } else {
                            tag.append(lower(b))
                        }
                    case .inTag:
                        if b == UInt8(ascii: ">") {
                            closeTag()
                        } else if !isSpace(b), b != UInt8(ascii: "/") {
                            state = .attributeName
                            attribute = [lower(b)]
                        }
                    case .attributeName:
                        if b == UInt8(ascii: "=") {
                            state = .beforeValue
                        } else if isSpace(b) {
                            state = .afterAttributeName
                        } else if b == UInt8(ascii: ">") {
                            closeTag()
                        } else if b == UInt8(ascii: "/") {
                            state = .inTag
                        } else {
                            attribute.append(lower(b))
                        }
                    case .afterAttributeName:
                        if b == UInt8(ascii: "=") {
                            state = .beforeValue
                        } else if b == UInt8(ascii: ">") {
                            closeTag()
                        } else if !isSpace(b), b != UInt8(ascii: "/") {
                            state = .attributeName
                            attribute = [lower(b)]
                        }
                    case .beforeValue:
                        if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                            state = .quoted(b)
                            valueStart = []
                        } else if b == UInt8(ascii: ">") {
                            closeTag()
                        } else if !isSpace(b) {
                            state = .unquoted
                        }
                    case .quoted(let quote):
                        if b == quote { state = .inTag } else { valueStart.append(b) }
                    case .unquoted:
                        if isSpace(b) { state = .inTag } else if b == UInt8(ascii: ">") { closeTag() }
                    case .rawText:
                        // The end tag is "</name" then a space, "/" or ">" ("</titlex" does not end a title).
                        if b == UInt8(ascii: "<"), bytes[i...].prefix(rawEnd.count).map(lower).elementsEqual(rawEnd) {
                            let after = i + rawEnd.count
                            if after == bytes.count || isSpace(bytes[after]) || bytes[after] == UInt8(ascii: "/")
                                || bytes[after] == UInt8(ascii: ">")
                            {
                                state = .tagName
                                tag = Array(rawTag.utf8)
                                closing = true
                                i = after - 1
                            }
                        }
                    }
                    i += 1
                }
            case .variable(let name):
                let placeholder = "{{\(name)}}"
                let attributeName = String(decoding: attribute, as: UTF8.self)
                switch state {
                case .text:
                    seenMarkup = true
                case .quoted:
                    if attributeName.hasPrefix("on") || activeAttributes.contains(attributeName) {
                        note("\(placeholder) is inside the \(attributeName) attribute, whose value is script, style, markup or an instruction")
                    } else if urlAttributes.contains(attributeName), !isFixedURLStart(valueStart) {
                        note(
                            "\(placeholder) in the \(attributeName) attribute must follow a fixed https://host/ (or http://host/), mailto:, tel:, "
                                + "a path (/…), ? or #: a value there could otherwise be a javascript: link or another host")
                    }
                case .rawText:
                    if rawTag == "style" { note("\(placeholder) is inside a style element") }
                default:
                    note("\(placeholder) is inside a tag or a declaration; in HTML a value may stand in text or in a quoted attribute value")
                }
            }
        }
        return problems
    }

    /// Whether the text of a URL attribute before a placeholder fixes where the URL goes.
    static func isFixedURLStart(_ start: [UInt8]) -> Bool {
        let text = String(decoding: start.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }, as: UTF8.self).lowercased()
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) {
            // The host is fixed only once a "/" ends it: "https://example.com{{x}}" could become another host.
            return text.dropFirst(scheme.count).contains("/") && !text.dropFirst(scheme.count).hasPrefix("/")
        }
        if text.hasPrefix("mailto:") || text.hasPrefix("tel:") || text.hasPrefix("?") || text.hasPrefix("#") { return true }
        // A path, not "//host" or "/\host" (which browsers read as another host).
        if text.hasPrefix("/"), let second = text.dropFirst().first { return second != "/" && second != "\\" }
        return false
    }
}
