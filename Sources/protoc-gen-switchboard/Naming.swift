/// How proto names become Swift and protoc-c names.
enum Naming {
    static let swiftKeywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout",
        "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public", "rethrows",
        "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue", "default",
        "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw", "switch",
        "where", "while", "Any", "as", "false", "is", "nil", "self", "Self", "super", "throws", "true", "try",
        "Type", "Protocol", "some", "any", "await", "async",
    ]

    /// `foo_bar_baz` → `FooBarBaz`.
    static func upperCamel(_ s: String) -> String {
        var out = ""
        var upperNext = true
        for c in s {
            if c == "_" {
                upperNext = true
                continue
            }
            out.append(upperNext ? Character(c.uppercased()) : c)
            upperNext = c.isNumber
        }
        return out
    }

    /// `foo_bar_baz` → `fooBarBaz`; `FooBar` → `fooBar`.
    static func lowerCamel(_ s: String) -> String {
        let upper = upperCamel(s)
        guard !upper.isEmpty else { return upper }
        // Lower a leading run of capitals (`URLValue` → `urlValue`).
        var chars = Array(upper)
        var i = 0
        while i < chars.count, chars[i].isUppercase {
            if i > 0, i + 1 < chars.count, chars[i + 1].isLowercase { break }
            chars[i] = Character(chars[i].lowercased())
            i += 1
        }
        return String(chars)
    }

    static func escaped(_ name: String) -> String { swiftKeywords.contains(name) ? "`\(name)`" : name }

    /// `grpc.testing` → `Grpc_Testing_`.
    static func packagePrefix(_ package: String) -> String {
        package.isEmpty ? "" : package.split(separator: ".").map { upperCamel(String($0)) }.joined(separator: "_") + "_"
    }

    /// protoc-c's CamelToLower: an underscore before each capital that follows a non-capital.
    static func camelToLower(_ s: String) -> String {
        var out = ""
        var wasUpper = true
        for c in s {
            let isUpper = c.isASCII && c.isUppercase
            if isUpper {
                if !wasUpper { out.append("_") }
                out.append(Character(c.lowercased()))
            } else {
                out.append(c)
            }
            wasUpper = isUpper
        }
        return out
    }

    /// protoc-c's name for a message's `__init` function, e.g. `grpc__testing__simple_request__init`.
    static func cInitFunction(fullName: String) -> String {
        let trimmed = fullName.hasPrefix(".") ? String(fullName.dropFirst()) : fullName
        return trimmed.split(separator: ".").map { camelToLower(String($0)) }.joined(separator: "__") + "__init"
    }

    /// `SERVING_STATUS_SERVING` in enum `ServingStatus` → `serving`.
    static func enumCase(_ value: String, enumName: String) -> String {
        let prefix = camelToLower(enumName).uppercased() + "_"
        var name = value
        if name.hasPrefix(prefix), name.count > prefix.count {
            let rest = String(name.dropFirst(prefix.count))
            if let first = rest.first, !first.isNumber { name = rest }
        }
        let camel = lowerCamel(name.lowercased())
        return escaped(camel)
    }
}
