import SwitchboardProtos
import SwitchboardRPC

/// Builds the proto3 JSON of an RPC's request from an HTTP request: the body (whole or one field), the path
/// variables, the query parameters (typed by the request message's schema) and the headers that map to fields
/// (`Idempotency-Key` → `request_id`, `If-Match` → `etag`; PATCH without an `update_mask` gets one from the body's
/// fields). The result is decoded by the generated message, which names any field it refuses.
struct RequestMapping {
    /// What the client sent.
    struct Input {
        var route: Route
        var pathValues: [(fieldPath: [String], value: String)]
        var query: [(name: String, value: String)]
        var body: JSON?
        var idempotencyKey: String?
        var ifMatch: String?
        var ifNoneMatch: String? = nil
    }

    /// Bounds on what the query string may hold.
    var maxQueryParameters = 256

    /// Builds the request object.
    /// - Parameter input: the HTTP request's parts.
    /// - Returns: the request as a JSON object.
    /// - Throws: ``GatewayError`` (400) naming the parameter or field at fault.
    func requestJSON(_ input: Input) throws -> JSON {
        let binding = input.route.binding
        let inputName = input.route.method.input
        guard let message = SwitchboardHTTPSchema.messages[inputName] else {
            throw GatewayError(.internal, "no schema for \(inputName)")
        }
        var object: [String: JSON] = [:]
        switch binding.body {
        case "":
            break
        case "*":
            switch input.body {
            case nil: break
            case .object(let fields)?: object = fields
            default: throw GatewayError(.invalidArgument, "the request body must be a JSON object", field: "")
            }
        default:
            guard let field = message.field(named: binding.body) else { throw GatewayError(.internal, "body field \(binding.body) missing") }
            if let body = input.body { object[field.jsonName] = body }
        }
        var boundByPath: Set<String> = []
        for (fieldPath, value) in input.pathValues {
            let (jsonPath, field) = try resolve(fieldPath.map { Substring($0) }, in: inputName, what: "path variable")
            try set(&object, jsonPath, try scalar(value, field: field, name: fieldPath.joined(separator: ".")))
            // By the resolved JSON path: a query parameter in either spelling must not override a path variable.
            boundByPath.insert(jsonPath.joined(separator: "."))
        }
        if input.query.count > maxQueryParameters {
            throw GatewayError(.invalidArgument, "more than \(maxQueryParameters) query parameters", field: "")
        }
        var unknown: [String] = []
        var repeated: [String: [JSON]] = [:]
        var repeatedPaths: [String: [String]] = [:]
        var singles: Set<String> = []
        for (name, value) in input.query {
            if binding.body == "*" {
                unknown.append(name)
                continue
            }
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard let (jsonPath, field) = try? resolve(parts, in: inputName, what: "query parameter"),
                !boundByPath.contains(jsonPath.joined(separator: ".")),
                binding.body.isEmpty || jsonPath.first != message.field(named: binding.body)?.jsonName
            else {
                unknown.append(name)
                continue
            }
            let json = try scalar(value, field: field, name: name)
            let key = jsonPath.joined(separator: ".")
            if field.isRepeated {
                repeated[key, default: []].append(json)
                repeatedPaths[key] = jsonPath
            } else {
                // A field of one value given twice (in either spelling): which one was meant is a guess, so neither.
                guard singles.insert(key).inserted else {
                    throw GatewayError(
                        .invalidArgument, "query parameter \(name) is given more than once; it takes one value", field: name,
                        reason: "DUPLICATE_QUERY_PARAMETER")
                }
                try set(&object, jsonPath, json)
            }
        }
        if !unknown.isEmpty {
            let names = Array(Set(unknown)).sorted()
            throw GatewayError(
                .invalidArgument,
                binding.body == "*"
                    ? "query parameters are not accepted here (the body carries the whole request): \(names.joined(separator: ", "))"
                    : "unknown query parameter\(names.count == 1 ? "" : "s"): \(names.joined(separator: ", "))",
                field: names[0], reason: "UNKNOWN_QUERY_PARAMETER")
        }
        for (key, values) in repeated { try set(&object, repeatedPaths[key]!, .array(values)) }

        // A write whose RPC has no etag cannot be made conditional: going through as if it were would let a stale write
        // overwrite. (`Idempotency-Key` without a request id is ignored: the unary RPCs without one are reads or
        // idempotent writes, and a streamed upload is refused it in ``Gateway/streamedBodyOnly(_:query:_:)``.)
        if input.route.verb != "GET", input.ifMatch != nil, message.field(named: "etag")?.kind != .string {
            throw GatewayError(
                .invalidArgument, "\(input.route.verb) \(input.route.binding.path) cannot be made conditional: it takes no If-Match",
                field: "If-Match")
        }
        if let key = input.idempotencyKey, let field = message.field(named: "request_id"), field.kind == .string,
            object[field.jsonName] == nil
                && object[field.name] == nil
        {
            object[field.jsonName] = .string(key)
        }
        if input.route.verb != "GET", input.ifNoneMatch != nil {
            throw GatewayError(
                .invalidArgument, "If-None-Match is answered on GET only (a 304 when the ETag still matches); a write takes If-Match",
                field: "If-None-Match")
        }
        if let header = input.ifMatch, let tag = try Self.ifMatchTag(header), let field = message.field(named: "etag"), field.kind == .string,
            object[field.jsonName] == nil
                && object[field.name] == nil
        {
            object[field.jsonName] = .string(tag)
        }
        if input.route.verb == "PATCH", let maskField = message.field(named: "update_mask"),
            object[maskField.jsonName] == nil && object[maskField.name] == nil,
            binding.body != "*", let bodyField = message.field(named: binding.body), case .object(let fields)? = input.body
        {
            let paths = try Self.maskPaths(fields, type: bodyField.typeName)
            object[maskField.jsonName] = .string(paths.joined(separator: ","))
        }
        let request = JSON.object(object)
        try Self.refuseNUL(request)
        return request
    }

    /// Refuses text holding U+0000, in a value or a key: protoc-c carries strings as C strings, so the service would get
    /// the text cut at it (and PostgreSQL text cannot hold it). Percent-decoded query and path values that were not
    /// UTF-8 arrive here as ``PercentEncoding/notText`` and are refused the same way.
    /// - Parameters:
    ///   - json: the request, or one line of a streamed one.
    ///   - path: where `json` sits, for the message (`[2]` for a stream's third line).
    /// - Throws: ``GatewayError`` (400) naming the field.
    static func refuseNUL(_ json: JSON, path: String = "") throws {
        func refuse(_ at: String) -> GatewayError {
            let field = at.isEmpty ? "" : String(at.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : Character($0) }.prefix(128))
            return GatewayError(
                .invalidArgument, "\(field.isEmpty ? "the request" : field): text must be UTF-8 without NUL (U+0000)", field: field,
                reason: "INVALID_TEXT")
        }
        switch json {
        case .string(let text):
            if text.utf8.contains(0) { throw refuse(path) }
        case .array(let items):
            for (i, item) in items.enumerated() { try refuseNUL(item, path: "\(path)[\(i)]") }
        case .object(let fields):
            for (key, value) in fields {
                let inner = path.isEmpty ? key : "\(path).\(key)"
                if key.utf8.contains(0) { throw refuse(inner) }
                try refuseNUL(value, path: inner)
            }
        default:
            break
        }
    }

    /// The etag an `If-Match` header names: the entity tag as sent, less a weak `W/` prefix. Every service's `etag`
    /// field already holds a quoted entity tag (`"3"`), and the `ETag` header carries it verbatim, so a client sends
    /// back exactly what it got.
    static func entityTag(_ header: String) -> String {
        var tag = Substring(header).drop(while: { $0 == " " || $0 == "\t" })
        while let last = tag.last, last == " " || last == "\t" { tag = tag.dropLast() }
        if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
        return String(tag)
    }

    /// The entity tag an `If-Match` header holds, or nil for `*` (any current representation: the write goes through
    /// unconditionally, and a missing resource is the service's 404).
    /// - Throws: ``GatewayError`` (400) for a list of tags (the services compare one etag; "any of these" would need
    ///   the current one first) or text that is no entity tag (an unquoted `1` used to be compared, and answered 412).
    static func ifMatchTag(_ header: String) throws -> String? {
        let tag = entityTag(header)
        if tag == "*" { return nil }
        let tags = try entityTags(header)
        guard tags.count == 1 else {
            throw GatewayError(
                .invalidArgument, "If-Match names \(tags.count) entity tags; send the one ETag you read", field: "If-Match",
                reason: "INVALID_HEADER")
        }
        return tag
    }

    /// Whether an `If-None-Match` header matches the current `ETag`: `*`, or any listed tag equal to it by the weak
    /// comparison RFC 9110 §13.1.2 asks for (`W/` ignored on both sides).
    /// - Throws: ``GatewayError`` (400) for text that is no list of entity tags.
    static func noneMatch(_ header: String, current: String) throws -> Bool {
        if entityTag(header) == "*" { return true }
        let weakless = current.hasPrefix("W/") ? String(current.dropFirst(2)) : current
        return try entityTags(header, name: "If-None-Match").contains { ($0.hasPrefix("W/") ? String($0.dropFirst(2)) : $0) == weakless }
    }

    /// The entity tags of a comma-separated header (`"a", W/"b"`): each `W/`-optional and quoted, holding no quote.
    private static func entityTags(_ header: String, name: String = "If-Match") throws -> [String] {
        var tags: [String] = []
        var rest = Substring(header)
        while true {
            rest = rest.drop(while: { $0 == " " || $0 == "\t" || $0 == "," })
            if rest.isEmpty { break }
            let weak = rest.hasPrefix("W/")
            let quoted = weak ? rest.dropFirst(2) : rest
            guard quoted.first == "\"", let close = quoted.dropFirst().firstIndex(of: "\"") else {
                throw GatewayError(
                    .invalidArgument, "\(name) must be * or entity tags as the ETag header gives them (\"3\", quotes included)", field: name,
                    reason: "INVALID_HEADER")
            }
            tags.append((weak ? "W/" : "") + String(quoted[...close]))
            rest = quoted[quoted.index(after: close)...]
            guard rest.first.map({ $0 == "," || $0 == " " || $0 == "\t" }) ?? true else {
                throw GatewayError(.invalidArgument, "\(name): entity tags are separated by commas", field: name, reason: "INVALID_HEADER")
            }
        }
        guard !tags.isEmpty else {
            throw GatewayError(.invalidArgument, "\(name) is empty", field: name, reason: "INVALID_HEADER")
        }
        return tags
    }

    /// The `ETag` header for an `etag` field: verbatim when it is already an entity tag, quoted otherwise.
    static func etagHeader(_ field: String) -> String {
        field.hasPrefix("\"") || field.hasPrefix("W/\"") ? field : "\"" + field + "\""
    }

    /// The field mask of a PATCH body: every field it sets, descending into singular messages (not maps, lists or
    /// well-known types, which are replaced whole), as grpc-gateway derives it; and into `custom_fields`, whose keys
    /// every service names in a mask (`custom_fields.<key>`, a null value removing the key), so a body that sets one
    /// custom field leaves the others (grpc-gateway replaces the whole `Struct`, which deleted them).
    /// - Throws: ``GatewayError`` for a custom field key that a JSON field mask cannot name (an underscore before a
    ///   digit or another underscore, or at the end: the mask's lowerCamel form has no way to write it).
    static func maskPaths(_ fields: [String: JSON], type: String, prefix: String = "", depth: Int = 0) throws -> [String] {
        let schema = SwitchboardHTTPSchema.messages[type]
        var paths: [String] = []
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            let field = schema?.field(named: key)
            let name = field?.jsonName ?? key
            if let field, field.name == "custom_fields", field.typeName == "google.protobuf.Struct", !field.isRepeated,
                case .object(let inner) = value, !inner.isEmpty
            {
                for customKey in inner.keys.sorted() {
                    guard let camel = Self.maskCamelCase(customKey) else {
                        throw GatewayError(
                            .invalidArgument,
                            "\(prefix + name).\(customKey.prefix(64)) cannot be named in a JSON field mask (an underscore must precede a "
                                + "lower-case letter): send updateMask=\(prefix + name) with every custom field the \(name) keeps",
                            field: "\(prefix + name).\(customKey.prefix(64))")
                    }
                    paths.append(prefix + name + "." + camel)
                }
            } else if let field, field.kind == .message, !field.isRepeated, !WellKnown.isScalarLike(field.typeName),
                // Other Struct, Value and Any fields are replaced whole: their keys are data, not fields a mask can name.
                !field.typeName.hasPrefix("google.protobuf."), depth < 8,
                case .object(let inner) = value, !inner.isEmpty
            {
                paths += try maskPaths(inner, type: field.typeName, prefix: prefix + name + ".", depth: depth + 1)
            } else {
                paths.append(prefix + name)
            }
        }
        return paths
    }

    /// A snake_case key in the lowerCamel form a JSON field mask reads back to it, as the FieldMask's own proto3 JSON
    /// encoder writes it; nil when there is none (a character other than a lower-case letter after `_`, `_` last,
    /// upper case) or when the key would split the mask (`,`) or its path (`.`).
    static func maskCamelCase(_ key: String) -> String? {
        guard !key.isEmpty, !key.contains(","), !key.contains("."),
            case .string(let camel)? = try? Google_Protobuf_FieldMask(paths: [key]).protoJSON()
        else { return nil }
        return camel
    }

    /// Resolves a dotted field path (proto or JSON names) to JSON names and the last field.
    private func resolve(_ parts: [Substring], in messageName: String, what: String) throws -> ([String], HTTPFieldSchema) {
        var message = messageName
        var jsonPath: [String] = []
        for (i, part) in parts.enumerated() {
            guard let schema = SwitchboardHTTPSchema.messages[message], let field = schema.field(named: String(part)) else {
                throw GatewayError(.invalidArgument, "\(what) \(parts.joined(separator: ".")) names no field", field: parts.joined(separator: "."))
            }
            jsonPath.append(field.jsonName)
            if i == parts.count - 1 {
                // A leaf: a scalar, an enum, or a well-known type written as one JSON scalar.
                if field.kind == .message && !WellKnown.isScalarLike(field.typeName) || field.kind == .group
                    || SwitchboardHTTPSchema.messages[field.typeName]?.isMapEntry == true
                {
                    throw GatewayError(
                        .invalidArgument, "\(what) \(parts.joined(separator: ".")) is not a scalar field", field: parts.joined(separator: "."))
                }
                return (jsonPath, field)
            }
            guard field.kind == .message, !field.isRepeated, !WellKnown.isScalarLike(field.typeName) else {
                throw GatewayError(
                    .invalidArgument, "\(what) \(parts.joined(separator: ".")) passes through a non-message field",
                    field: parts.joined(separator: "."))
            }
            message = field.typeName
        }
        throw GatewayError(.invalidArgument, "empty \(what)", field: "")
    }

    /// A query or path value as the JSON the field's proto3 mapping reads.
    private func scalar(_ value: String, field: HTTPFieldSchema, name: String) throws -> JSON {
        func bad(_ expected: String) -> GatewayError {
            GatewayError(.invalidArgument, "\(name): \(expected), got \"\(value.prefix(64))\"", field: name)
        }
        let kind: HTTPFieldSchema.Kind
        if field.kind == .message {
            switch field.typeName {
            case "google.protobuf.BoolValue": kind = .bool
            case "google.protobuf.DoubleValue", "google.protobuf.FloatValue": kind = .double
            case "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value":
                kind = .int64
            default: return .string(value)  // Timestamp, Duration, FieldMask, StringValue, BytesValue: JSON strings
            }
        } else {
            kind = field.kind
        }
        switch kind {
        case .bool:
            switch value {
            case "true", "1": return .bool(true)
            case "false", "0": return .bool(false)
            default: throw bad("expected true or false")
            }
        case .int32, .int64, .uint32, .uint64, .sint32, .sint64, .fixed32, .fixed64, .sfixed32, .sfixed64:
            guard !value.isEmpty, value.count <= 24, value.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-") }) else {
                throw bad("expected an integer")
            }
            return .string(value)  // proto3 JSON reads integers from strings, with its own range checks
        case .double, .float:
            return .string(value)
        case .enumeration:
            if let number = Int32(value) { return .number(Double(number)) }
            return .string(value)
        default:
            return .string(value)
        }
    }

    private func set(_ object: inout [String: JSON], _ path: [String], _ value: JSON) throws {
        guard let first = path.first else { return }
        if path.count == 1 {
            object[first] = value
            return
        }
        var inner: [String: JSON]
        switch object[first] {
        case nil: inner = [:]
        case .object(let existing)?: inner = existing
        default:
            throw GatewayError(
                .invalidArgument, "\(path.joined(separator: ".")) conflicts with a value the body set", field: path.joined(separator: "."))
        }
        try set(&inner, Array(path.dropFirst()), value)
        object[first] = .object(inner)
    }
}

/// The well-known types whose proto3 JSON form is a single scalar.
enum WellKnown {
    static func isScalarLike(_ typeName: String) -> Bool {
        switch typeName {
        case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask", "google.protobuf.BoolValue",
            "google.protobuf.StringValue", "google.protobuf.BytesValue", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
            "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value":
            true
        default: false
        }
    }
}
