/// Where the placeholders of an HTML template stand, so a template is refused when it puts one where escaping cannot
/// make a value safe. Escaping (``TemplateRules/htmlEscaped(_:)``) keeps a value inside element text and inside a quoted
/// attribute value; it does not stop a value from being a `javascript:` link, an event handler's script, a style, or a
/// new attribute in an unquoted value or in the tag itself.
///
/// A small tokenizer of the template's literal text (the HTML5 states that matter here, not a parser): it follows tags,
/// attribute names, quoted and unquoted values, comments, and the raw text of `script` and `style`.
public enum HTMLPlaceholders {
    /// Attributes whose value is a URL: a placeholder may only follow a fixed start that sets the scheme or the path
    /// (`https://…/{{x}}`, `/orders/{{x}}`, `?id={{x}}`), never begin the value.
    static let urlAttributes: Set<String> = [
        "href", "src", "action", "formaction", "background", "cite", "poster", "srcset", "data", "codebase", "longdesc", "manifest",
        "usemap", "ping", "lowsrc", "dynsrc", "xlink:href", "icon",
    ]

    private enum State: Equatable {
        case text, tagName, inTag, attributeName, afterAttributeName, beforeValue, quoted(UInt8), unquoted, comment, rawText
    }

    /// Why each placeholder of `body` (in order) cannot stand where it is; empty when every one is safe.
    public static func problems(in body: String) -> [String] {
        guard let pieces = try? TemplateScanner.scan(body) else { return [] }
        var state = State.text
        var tag: [UInt8] = [], closing = false, attribute: [UInt8] = [], valueStart: [UInt8] = [], rawEnd: [UInt8] = []
        var problems: [String] = []
        func lower(_ b: UInt8) -> UInt8 { (65...90).contains(b) ? b | 0x20 : b }
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0C || b == 0x0D }
        func isLetter(_ b: UInt8) -> Bool { (65...90).contains(b) || (97...122).contains(b) }
        func closeTag() {
            let name = String(decoding: tag, as: UTF8.self)
            if !closing, name == "script" || name == "style" {
                state = .rawText
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
                        if b == UInt8(ascii: "<") {
                            if bytes[i...].starts(with: Array("<!--".utf8)) {
                                state = .comment
                                i += 3
                            } else if i + 1 == bytes.count {
                                // "<" right before a placeholder: the value would be the tag's name ("<{{x}}>" with x = "script").
                                state = .tagName
                                tag = []
                                closing = false
                            } else if isLetter(bytes[i + 1]) || bytes[i + 1] == UInt8(ascii: "/") {
                                state = .tagName
                                tag = []
                                closing = bytes[i + 1] == UInt8(ascii: "/")
                                if closing { i += 1 }
                            }
                        }
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
                    case .comment:
                        if bytes[i...].starts(with: Array("-->".utf8)) {
                            state = .text
                            i += 2
                        }
                    case .rawText:
                        if b == UInt8(ascii: "<"), bytes[i...].prefix(rawEnd.count).map(lower).elementsEqual(rawEnd) {
                            state = .tagName
                            tag = []
                            closing = true
                            i += 1
                        }
                    }
                    i += 1
                }
            case .variable(let name):
                let placeholder = "{{\(name)}}"
                let attributeName = String(decoding: attribute, as: UTF8.self)
                switch state {
                case .text, .comment:
                    continue
                case .quoted:
                    if attributeName.hasPrefix("on") || attributeName == "style" {
                        problems.append("\(placeholder) is inside the \(attributeName) attribute, where a value would be script or style")
                    } else if urlAttributes.contains(attributeName),
                        !valueStart.contains(where: { [UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#")].contains($0) })
                    {
                        problems.append(
                            "\(placeholder) begins the URL of the \(attributeName) attribute, where a value could be a javascript: link; write the scheme or path before it"
                        )
                    } else {
                        // Later text of the same value follows a value, so it counts as fixed only if it was already.
                        continue
                    }
                case .rawText:
                    problems.append("\(placeholder) is inside a script or style element")
                default:
                    problems.append("\(placeholder) is inside a tag; in HTML a value may stand in text or in a quoted attribute value")
                }
            }
        }
        return problems
    }
}
