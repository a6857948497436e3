import Foundation

/// Emits the HTTP schema the gateway routes by and builds its OpenAPI document from: every RPC with its bindings
/// from the rules file (a `google.api.Service` configuration's `http.rules`, in its JSON form), and every message's
/// fields. Bindings are checked here, at generation time: a rule naming an RPC, a path variable or a body field that
/// does not exist fails generation instead of failing a request.
struct HTTPSchemaGenerator {
    let files: [ProtoFile]
    let filesToGenerate: [String]

    private struct Rule {
        var selector: String
        var bindings: [(verb: String, path: String, body: String, responseBody: String)]
    }

    /// Reads the rules file and emits the schema.
    /// - Parameter rulesPath: the rules file, relative to protoc's working directory.
    /// - Returns: the generated file.
    /// - Throws: ``GeneratorError`` for an unreadable file or an invalid rule.
    func generate(rulesPath: String) throws -> GeneratedFile {
        guard let data = FileManager.default.contents(atPath: rulesPath) else {
            throw GeneratorError(description: "\(rulesPath): cannot read the HTTP rules file")
        }
        let rules = try parseRules(data, path: rulesPath)
        var messages: [String: ProtoMessageType] = [:]
        var enums: [String: ProtoEnumType] = [:]
        for file in files {
            func collect(_ m: ProtoMessageType) {
                messages[m.fullName] = m
                m.nestedMessages.forEach(collect)
                m.nestedEnums.forEach { enums[$0.fullName] = $0 }
            }
            file.messages.forEach(collect)
            file.enums.forEach { enums[$0.fullName] = $0 }
        }
        var byMethod: [String: Rule] = [:]
        for rule in rules {
            guard byMethod[rule.selector] == nil else { throw GeneratorError(description: "\(rulesPath): two rules for \(rule.selector)") }
            byMethod[rule.selector] = rule
        }

        // The schema is emitted as one JSON string decoded at first use: as Swift literals (hundreds of nested
        // initializers in dictionary literals) it cost the optimizer gigabytes of memory in release builds.
        var methods: [Any] = []
        var used: Set<String> = []
        var seenRoutes: [String: String] = [:]
        for name in filesToGenerate {
            guard let file = files.first(where: { $0.name == name }) else { continue }
            for service in file.services {
                let serviceName = String(service.fullName.dropFirst())
                for method in service.methods {
                    let selector = serviceName + "." + method.name
                    let kind =
                        switch (method.clientStreaming, method.serverStreaming) {
                        case (false, false): "unary"
                        case (true, false): "clientStreaming"
                        case (false, true): "serverStreaming"
                        case (true, true): "bidirectionalStreaming"
                        }
                    guard let input = messages[method.inputType] else { throw GeneratorError(description: "\(selector): unknown input") }
                    var bindings: [(verb: String, path: String, body: String, responseBody: String)]
                    let bound: Bool
                    if let rule = byMethod[selector] {
                        used.insert(selector)
                        bindings = rule.bindings
                        bound = true
                    } else {
                        bindings = [("POST", "/\(serviceName)/\(method.name)", "*", "")]
                        bound = false
                    }
                    for binding in bindings {
                        try check(binding, of: selector, input: input, messages: messages, streamsRequests: method.clientStreaming)
                        let route = binding.verb + " " + normalized(binding.path)
                        if let other = seenRoutes[route] {
                            throw GeneratorError(description: "\(rulesPath): \(selector) and \(other) both bind \(route)")
                        }
                        seenRoutes[route] = selector
                    }
                    methods.append(
                        [
                            "service": serviceName, "method": method.name, "kind": kind, "input": String(method.inputType.dropFirst()),
                            "output": String(method.outputType.dropFirst()), "bound": bound,
                            "bindings": bindings.map { ["verb": $0.verb, "path": $0.path, "body": $0.body, "responseBody": $0.responseBody] },
                        ] as [String: Any])
                }
            }
        }
        if let unused = Set(byMethod.keys).subtracting(used).sorted().first {
            throw GeneratorError(description: "\(rulesPath): the rule for \(unused) names no RPC")
        }
        var messageSchemas: [String: Any] = [:]
        for (name, m) in messages {
            messageSchemas[String(name.dropFirst())] =
                [
                    "mapEntry": m.isMapEntry,
                    "fields": m.fields.map { f -> [Any] in
                        let oneof = f.oneofIndex.flatMap { $0 < m.oneofNames.count && !f.isProto3Optional ? m.oneofNames[$0] : nil } ?? ""
                        return [f.name, f.jsonName, f.kind.rawValue, f.isRepeated, f.typeName.isEmpty ? "" : String(f.typeName.dropFirst()), oneof]
                    },
                ] as [String: Any]
        }
        var enumSchemas: [String: Any] = [:]
        for (name, e) in enums { enumSchemas[String(name.dropFirst())] = e.values.map { $0.name } }
        let document: [String: Any] = ["methods": methods, "messages": messageSchemas, "enums": enumSchemas]
        let encoded = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
        let text = String(decoding: encoded, as: UTF8.self)
        guard !text.contains("\"##") else { throw GeneratorError(description: "the schema text holds the raw-string delimiter") }

        var out = CodeWriter()
        out.line("// DO NOT EDIT.")
        out.line("// Generated by protoc-gen-switchboard from the protos and \(rulesPath). Regenerate with `make generate`.")
        out.line("")
        out.line("/// Every RPC with its HTTP bindings, and every message's fields: what the gateway routes by and builds OpenAPI from.")
        out.line("public enum SwitchboardHTTPSchema {")
        out.line("    private static let decoded = HTTPSchemaText.decode(text)")
        out.line("    /// Every RPC of every service, in file order.")
        out.line("    public static var methods: [HTTPMethodSchema] { decoded.methods }")
        out.line("    /// Every message's fields, by full name.")
        out.line("    public static var messages: [String: HTTPMessageSchema] { decoded.messages }")
        out.line("    /// Every enum's value names, by full name.")
        out.line("    public static var enums: [String: [String]] { decoded.enums }")
        out.line("    /// The schema as JSON.")
        out.line("    static let text = ##\"" + text + "\"##")
        out.line("}")
        return GeneratedFile(name: "SwitchboardHTTPSchema.pb.swift", content: out.text)
    }

    /// The template with variable names replaced, so two templates that match the same paths compare equal.
    private func normalized(_ path: String) -> String {
        var out = "", depth = 0
        for c in path {
            if c == "{" {
                depth += 1
                out += "{}"
            } else if c == "}" {
                depth -= 1
            } else if depth == 0 {
                out.append(c)
            }
        }
        return out
    }

    private func check(
        _ binding: (verb: String, path: String, body: String, responseBody: String), of selector: String, input: ProtoMessageType,
        messages: [String: ProtoMessageType], streamsRequests: Bool
    ) throws {
        guard ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(binding.verb) else {
            throw GeneratorError(description: "\(selector): unsupported HTTP verb \(binding.verb)")
        }
        guard binding.path.hasPrefix("/") else { throw GeneratorError(description: "\(selector): path \(binding.path) must start with /") }
        // Every {variable} names a singular scalar field, through singular message fields for a dotted path.
        var rest = Substring(binding.path)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw GeneratorError(description: "\(selector): unclosed { in \(binding.path)")
            }
            let variable = rest[rest.index(after: open)..<close]
            let fieldPath = variable.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            var message = input
            let parts = fieldPath.split(separator: ".").map(String.init)
            for (i, part) in parts.enumerated() {
                guard let field = message.fields.first(where: { $0.name == part }), !field.isRepeated else {
                    throw GeneratorError(description: "\(selector): path variable \(fieldPath) names no singular field of \(input.fullName)")
                }
                if i < parts.count - 1 {
                    guard field.kind == .message, let next = messages[field.typeName] else {
                        throw GeneratorError(description: "\(selector): path variable \(fieldPath) passes through a non-message field")
                    }
                    message = next
                } else if field.kind == .message {
                    throw GeneratorError(description: "\(selector): path variable \(fieldPath) names a message field")
                }
            }
            rest = rest[rest.index(after: close)...]
        }
        if binding.verb == "GET" || binding.verb == "DELETE", !binding.body.isEmpty {
            throw GeneratorError(description: "\(selector): \(binding.verb) cannot have a body")
        }
        if streamsRequests, binding.body != "*" {
            throw GeneratorError(description: "\(selector): a client-streaming RPC takes body \"*\" (one JSON message a line)")
        }
        if !binding.body.isEmpty, binding.body != "*", !input.fields.contains(where: { $0.name == binding.body }) {
            throw GeneratorError(description: "\(selector): body \(binding.body) names no field of \(input.fullName)")
        }
    }

    private func parseRules(_ data: Data, path: String) throws -> [Rule] {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw GeneratorError(description: "\(path): not JSON: \(error)")
        }
        guard let service = root as? [String: Any], let http = service["http"] as? [String: Any],
            let rules = http["rules"] as? [[String: Any]]
        else {
            throw GeneratorError(description: "\(path): expected a google.api.Service with http.rules")
        }
        func binding(_ rule: [String: Any], selector: String) throws -> (String, String, String, String) {
            let verbs = ["get", "post", "put", "patch", "delete"].filter { rule[$0] != nil }
            guard verbs.count == 1, let template = rule[verbs[0]] as? String else {
                throw GeneratorError(description: "\(path): \(selector): a rule needs exactly one of get, post, put, patch, delete")
            }
            return (verbs[0].uppercased(), template, rule["body"] as? String ?? "", rule["response_body"] as? String ?? "")
        }
        return try rules.map { rule in
            guard let selector = rule["selector"] as? String else { throw GeneratorError(description: "\(path): a rule without a selector") }
            var bindings = [try binding(rule, selector: selector)]
            for extra in rule["additional_bindings"] as? [[String: Any]] ?? [] { bindings.append(try binding(extra, selector: selector)) }
            return Rule(selector: selector, bindings: bindings.map { (verb: $0.0, path: $0.1, body: $0.2, responseBody: $0.3) })
        }
    }
}
