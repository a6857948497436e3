import SwitchboardProtos

/// The OpenAPI 3.0 document of the gateway, built from the same generated HTTP schema the routes come from: a path
/// per binding, query parameters from the request message's fields, bodies and responses as the messages' proto3
/// JSON shapes, errors as `google.rpc.Status`.
enum OpenAPIDocument {
    static func make(routes: [Route], webhooks: [String] = []) -> JSON {
        var paths: [String: [String: JSON]] = [:]
        var referenced: Set<String> = ["google.rpc.Status"]
        var operationIDs: Set<String> = []
        for route in routes.sorted(by: { $0.binding.path < $1.binding.path }) {
            let method = route.method
            var parameters: [JSON] = []
            var pathFields: Set<String> = []
            for variable in route.template.variables {
                let name = variable.fieldPath.joined(separator: ".")
                pathFields.insert(name)
                parameters.append(
                    .object([
                        "name": .string(name), "in": .string("path"), "required": .bool(true), "schema": .object(["type": .string("string")]),
                    ]))
            }
            if route.binding.body != "*" {
                var excluded = pathFields
                if !route.binding.body.isEmpty { excluded.insert(route.binding.body) }
                for (name, schema) in queryParameters(method.input, prefix: "", excluded: excluded, depth: 0, referenced: &referenced) {
                    parameters.append(.object(["name": .string(name), "in": .string("query"), "required": .bool(false), "schema": schema]))
                }
            }
            if method.input.isEmpty == false, SwitchboardHTTPSchema.messages[method.input]?.field(named: "request_id") != nil {
                parameters.append(
                    .object([
                        "name": .string("Idempotency-Key"), "in": .string("header"), "required": .bool(false),
                        "description": .string("Sets request_id: a retried request with the same key returns the first answer."),
                        "schema": .object(["type": .string("string")]),
                    ]))
            }
            if method.input.isEmpty == false, SwitchboardHTTPSchema.messages[method.input]?.field(named: "etag") != nil, route.verb != "GET" {
                parameters.append(
                    .object([
                        "name": .string("If-Match"), "in": .string("header"), "required": .bool(false),
                        "description": .string("Sets etag: the write happens only if the resource's entity tag is this one (412 otherwise)."),
                        "schema": .object(["type": .string("string")]),
                    ]))
            }
            parameters.append(
                .object([
                    "name": .string("X-Request-Timeout"), "in": .string("header"), "required": .bool(false),
                    "description": .string("The request's budget (250ms, 5s, 1.5; grpc-timeout also works): past it, 504."),
                    "schema": .object(["type": .string("string")]),
                ]))
            var operation: [String: JSON] = [
                "operationId": .string(uniqueID(method.descriptor.method, route, &operationIDs)),
                "tags": .array([.string(method.descriptor.service)]),
                "summary": .string("\(method.descriptor.service)/\(method.descriptor.method)"),
                "parameters": .array(parameters),
            ]
            switch route.binding.body {
            case "": break
            case "*":
                referenced.insert(method.input)
                let contentType =
                    method.descriptor.kind == .clientStreaming || method.descriptor.kind == .bidirectionalStreaming
                    ? "application/x-ndjson" : "application/json"
                // proto3 fields are all optional: an empty body is the default message.
                operation["requestBody"] = .object([
                    "required": .bool(false),
                    "content": .object([contentType: .object(["schema": ref(method.input)])]),
                ])
            default:
                if let field = SwitchboardHTTPSchema.messages[method.input]?.field(named: route.binding.body) {
                    operation["requestBody"] = .object([
                        "required": .bool(false),
                        "content": .object(["application/json": .object(["schema": fieldSchema(field, referenced: &referenced, repeatedWrap: true)])]
                        ),
                    ])
                }
            }
            referenced.insert(method.output)
            let success: JSON
            // The headers every answer carries; a response with an etag field carries it as ETag too.
            var responseHeaders: [String: JSON] = [
                "X-Request-Id": .object([
                    "description": .string("The request's id (the one sent, or a new one)."), "schema": .object(["type": .string("string")]),
                ]),
                "traceparent": .object([
                    "description": .string("The request's span: the caller's trace id (or a new one) and the gateway's span id."),
                    "schema": .object(["type": .string("string")]),
                ]),
            ]
            if SwitchboardHTTPSchema.messages[method.output]?.field(named: "etag") != nil {
                responseHeaders["ETag"] = .object([
                    "description": .string("The resource's entity tag."), "schema": .object(["type": .string("string")]),
                ])
            }
            // A bidirectional stream (ImportContacts) answers as a server stream does: its body's lines are the requests.
            if method.descriptor.kind == .serverStreaming || method.descriptor.kind == .bidirectionalStreaming {
                success = .object([
                    "headers": .object(responseHeaders),
                    "description": .string(
                        "A stream: one {\"result\": message} line per message and {\"error\": status} on failure (NDJSON), or server-sent events with Accept: text/event-stream."
                    ),
                    "content": .object([
                        "application/x-ndjson": .object([
                            "schema": .object([
                                "type": .string("object"),
                                "properties": .object(["result": ref(method.output), "error": ref("google.rpc.Status")]),
                            ])
                        ]),
                        "text/event-stream": .object(["schema": .object(["type": .string("string")])]),
                    ]),
                ])
            } else {
                success = .object([
                    "description": .string("OK"), "headers": .object(responseHeaders),
                    "content": .object(["application/json": .object(["schema": ref(method.output)])]),
                ])
            }
            operation["responses"] = .object([
                "200": success,
                "default": .object([
                    "description": .string("An error: google.rpc.Status with the HTTP status gRPC's code maps to."),
                    "content": .object(["application/json": .object(["schema": ref("google.rpc.Status")])]),
                ]),
            ])
            paths[route.binding.path, default: [:]][route.verb.lowercased()] = .object(operation)
        }
        paths["/v1/contacts/{id}:overview"] = [
            "get": .object([
                "operationId": .string("GetContactOverview"), "tags": .array([.string("gateway")]),
                "summary": .string("The contact-360 view: the contact and what every service holds about the person."),
                "parameters": .array([
                    .object(["name": .string("id"), "in": .string("path"), "required": .bool(true), "schema": .object(["type": .string("string")])])
                ]),
                "responses": .object([
                    "200": .object([
                        "description": .string("The view; optional parts that failed are listed in partialFailures."),
                        "content": .object(["application/json": .object(["schema": .object(["type": .string("object")])])]),
                    ]),
                    "default": .object([
                        "description": .string("An error."),
                        "content": .object(["application/json": .object(["schema": ref("google.rpc.Status")])]),
                    ]),
                ]),
            ])
        ]
        if !webhooks.isEmpty {
            let stringSchema = JSON.object(["type": .string("string")])
            paths["/v1/webhooks/{provider}"] = [
                "post": .object([
                    "operationId": .string("ProviderWebhook"), "tags": .array([.string("gateway")]),
                    "summary": .string(
                        "A provider's delivery events, signed with HMAC-SHA256 of the body (X-Provider-Signature: sha256=<hex>), passed to the communication service; a replayed event changes nothing."
                    ),
                    // Providers sign the body; they hold no bearer token.
                    "security": .array([]),
                    "parameters": .array([
                        .object([
                            "name": .string("provider"), "in": .string("path"), "required": .bool(true),
                            "schema": .object(["type": .string("string"), "enum": .array(webhooks.sorted().map(JSON.string))]),
                        ]),
                        .object(["name": .string("X-Provider-Signature"), "in": .string("header"), "required": .bool(true), "schema": stringSchema]),
                    ]),
                    "requestBody": .object([
                        "required": .bool(true), "content": .object(["application/json": .object(["schema": .object(["type": .string("object")])])]),
                    ]),
                    "responses": .object([
                        "200": .object(["description": .string("Applied, or already applied.")]),
                        "default": .object([
                            "description": .string("An error: 401 for a bad signature."),
                            "content": .object(["application/json": .object(["schema": ref("google.rpc.Status")])]),
                        ]),
                    ]),
                ])
            ]
        }
        var schemas: [String: JSON] = [:]
        var pending = Array(referenced)
        while let name = pending.popLast() {
            guard schemas[name] == nil else { continue }
            var more: Set<String> = []
            schemas[name] = messageSchema(name, referenced: &more)
            pending += more.filter { schemas[$0] == nil }
        }
        return .object([
            "openapi": .string("3.0.3"),
            "info": .object([
                "title": .string("Switchboard API"), "version": .string("v1"),
                "description": .string("HTTP/JSON for every Switchboard RPC (proto3 JSON mapping). Authenticate with Authorization: Bearer <JWT>."),
            ]),
            "paths": .object(paths.mapValues { .object($0) }),
            "components": .object([
                "schemas": .object(schemas),
                "securitySchemes": .object([
                    "bearer": .object(["type": .string("http"), "scheme": .string("bearer"), "bearerFormat": .string("JWT")])
                ]),
            ]),
            "security": .array([.object(["bearer": .array([])])]),
        ])
    }

    private static func uniqueID(_ base: String, _ route: Route, _ used: inout Set<String>) -> String {
        var id = base
        if used.contains(id) { id = route.upstream + "_" + base }
        var n = 2
        while used.contains(id) {
            id = route.upstream + "_" + base + "\(n)"
            n += 1
        }
        used.insert(id)
        return id
    }

    private static func ref(_ name: String) -> JSON {
        .object(["$ref": .string("#/components/schemas/" + name)])
    }

    /// Query parameters for a message's fields: scalars, enums, repeated scalars and scalar-like well-known types,
    /// descending into singular messages (dotted names), at most four levels.
    private static func queryParameters(
        _ message: String, prefix: String, excluded: Set<String>, depth: Int, referenced: inout Set<String>
    ) -> [(String, JSON)] {
        guard depth < 4, let schema = SwitchboardHTTPSchema.messages[message] else { return [] }
        var out: [(String, JSON)] = []
        for field in schema.fields {
            let name = prefix + field.name
            if excluded.contains(name) { continue }
            if field.kind == .message, !WellKnown.isScalarLike(field.typeName) {
                if !field.isRepeated {
                    out += queryParameters(field.typeName, prefix: name + ".", excluded: excluded, depth: depth + 1, referenced: &referenced)
                }
                continue
            }
            out.append((name, fieldSchema(field, referenced: &referenced, repeatedWrap: true)))
        }
        return out
    }

    static func messageSchema(_ name: String, referenced: inout Set<String>) -> JSON {
        if let special = wellKnown(name) { return special }
        guard let message = SwitchboardHTTPSchema.messages[name] else { return .object(["type": .string("object")]) }
        var properties: [String: JSON] = [:]
        for field in message.fields { properties[field.jsonName] = fieldSchema(field, referenced: &referenced, repeatedWrap: true) }
        return .object(["type": .string("object"), "properties": .object(properties)])
    }

    private static func fieldSchema(_ field: HTTPFieldSchema, referenced: inout Set<String>, repeatedWrap: Bool) -> JSON {
        if field.kind == .message, let entry = SwitchboardHTTPSchema.messages[field.typeName], entry.isMapEntry, entry.fields.count == 2 {
            return .object([
                "type": .string("object"), "additionalProperties": fieldSchema(entry.fields[1], referenced: &referenced, repeatedWrap: true),
            ])
        }
        let single: JSON
        switch field.kind {
        case .int32, .sint32, .sfixed32: single = .object(["type": .string("integer"), "format": .string("int32")])
        case .uint32, .fixed32: single = .object(["type": .string("integer"), "format": .string("int64")])
        case .int64, .sint64, .sfixed64, .uint64, .fixed64: single = .object(["type": .string("string"), "format": .string("int64")])
        case .double: single = .object(["type": .string("number"), "format": .string("double")])
        case .float: single = .object(["type": .string("number"), "format": .string("float")])
        case .bool: single = .object(["type": .string("boolean")])
        case .string: single = .object(["type": .string("string")])
        case .bytes: single = .object(["type": .string("string"), "format": .string("byte")])
        case .enumeration:
            single = .object(["type": .string("string"), "enum": .array((SwitchboardHTTPSchema.enums[field.typeName] ?? []).map(JSON.string))])
        case .message, .group:
            referenced.insert(field.typeName)
            single = ref(field.typeName)
        }
        return field.isRepeated && repeatedWrap ? .object(["type": .string("array"), "items": single]) : single
    }

    private static func wellKnown(_ name: String) -> JSON? {
        func scalar(_ type: String, _ format: String? = nil) -> JSON {
            var o: [String: JSON] = ["type": .string(type)]
            if let format { o["format"] = .string(format) }
            return .object(o)
        }
        switch name {
        case "google.protobuf.Timestamp": return scalar("string", "date-time")
        case "google.protobuf.Duration": return .object(["type": .string("string"), "example": .string("1.5s")])
        case "google.protobuf.FieldMask": return .object(["type": .string("string"), "example": .string("name,emails")])
        case "google.protobuf.StringValue": return scalar("string")
        case "google.protobuf.BytesValue": return scalar("string", "byte")
        case "google.protobuf.BoolValue": return scalar("boolean")
        case "google.protobuf.DoubleValue", "google.protobuf.FloatValue": return scalar("number")
        case "google.protobuf.Int32Value", "google.protobuf.UInt32Value": return scalar("integer")
        case "google.protobuf.Int64Value", "google.protobuf.UInt64Value": return scalar("string", "int64")
        case "google.protobuf.Struct": return .object(["type": .string("object"), "additionalProperties": .bool(true)])
        case "google.protobuf.Value": return .object(["description": .string("Any JSON value.")])
        case "google.protobuf.ListValue": return .object(["type": .string("array"), "items": .object([:])])
        case "google.protobuf.Empty": return .object(["type": .string("object")])
        case "google.protobuf.Any":
            return .object([
                "type": .string("object"), "properties": .object(["@type": scalar("string")]), "additionalProperties": .bool(true),
            ])
        default: return nil
        }
    }
}
