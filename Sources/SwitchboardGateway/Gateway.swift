import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SwitchboardAccess
import SwitchboardHTTP2
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import Synchronization

/// One HTTP request as the server hands it over: head and the whole (bounded) body.
struct GatewayRequest: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    /// The client's connection: a long stream stops when it closes, since nobody reads it any more.
    var connection: ClientConnection
}

/// Where a response goes: the HTTP/1.1 server's writer, or a test's recorder.
protocol HTTPResponseWriter: Sendable {
    func head(_ status: HTTPResponseStatus, _ headers: HTTPHeaders) async throws
    func body(_ bytes: ByteBuffer) async throws
    func end() async throws
    /// A whole response at once.
    func respond(_ status: HTTPResponseStatus, _ headers: HTTPHeaders, _ body: ByteBuffer) async throws
}

/// The HTTP/JSON gateway: routes a request by the generated HTTP schema, checks the token and the tenant's rate,
/// turns the request into the RPC's message, calls the upstream service with the budget left, and writes the answer
/// as proto3 JSON (a stream as NDJSON or server-sent events; an error as `google.rpc.Status` JSON).
public final class Gateway: Sendable {
    let configuration: GatewayConfiguration
    let routes: RouteTable
    let channels: [String: GRPCChannel]
    let verifier: TokenVerifier
    let limiter: RateLimiter
    let logger: Logger
    let openAPIText: String
    private let openStreams = Atomic<Int>(0)
    private let tenantStreams = Mutex<[String: Int]>([:])
    /// Open streams' ways to end on shutdown, by a number each; `draining` once shutdown has begun.
    private let streamDrains = Mutex<(draining: Bool, next: Int, ends: [Int: @Sendable () -> Void])>((false, 0, [:]))
    private let mapping = RequestMapping()

    /// Creates the gateway.
    /// - Parameters:
    ///   - configuration: the gateway's settings.
    ///   - verifier: verifies bearer tokens at the edge.
    ///   - logger: the logger.
    /// - Throws: when the generated HTTP rules do not parse (a generator bug).
    public init(configuration: GatewayConfiguration, verifier: TokenVerifier, logger: Logger) throws {
        self.configuration = configuration
        self.routes = try RouteTable(upstreams: Set(configuration.upstreams.keys))
        var channels: [String: GRPCChannel] = [:]
        for (name, targets) in configuration.upstreams {
            var client = ClientConfiguration()
            // Requests run on their HTTP connection's loop (GatewayServer): their upstream calls take a connection of
            // that loop, one per loop and target.
            client.eventLoopAffinity = true
            if let interval = configuration.healthCheckInterval, let service = Self.grpcServices[name] {
                client.healthCheck = ClientHealthCheck(interval: interval) { transport in
                    await Self.serves(service, over: transport, within: min(interval, .seconds(1)))
                }
            }
            channels[name] = GRPCChannel(targets: targets, configuration: client)
        }
        self.channels = channels
        self.verifier = verifier
        self.limiter = RateLimiter(limits: configuration.rateLimits)
        self.logger = logger
        self.openAPIText = OpenAPIDocument.make(routes: routes.routes, webhooks: Array(configuration.webhooks.keys)).text
    }

    /// Each upstream's gRPC service, whose health its address reports (NOT_SERVING while the service's database is
    /// unreachable).
    static let grpcServices: [String: String] = [
        "contacts": Switchboard_Contacts_V1_ContactsService.serviceName,
        "organization": Switchboard_Organization_V1_OrganizationService.serviceName,
        "communication": Switchboard_Communication_V1_CommunicationService.serviceName,
        "collaboration": Switchboard_Collaboration_V1_CollaborationService.serviceName,
        "analytics": Switchboard_Analytics_V1_AnalyticsService.serviceName,
    ]

    /// What the server behind `transport` says of `service` within `timeout`: SERVING, another status (not serving),
    /// or nothing (an error, the deadline).
    static func serves(_ service: String, over transport: any ClientTransport, within timeout: Duration) async -> HealthProbeAnswer {
        var request = Grpc_Health_V1_HealthCheckRequest()
        request.service = service
        var options = CallOptions.defaults
        options.timeout = timeout
        guard let answer = try? await Grpc_Health_V1_Health_Client(client: RPCClient(transport: transport)).check(request, options: options) else {
            return .noAnswer
        }
        return answer.status == .serving ? .serving : .notServing
    }

    /// Closes the upstream connections.
    public func close() async {
        for channel in channels.values { await channel.close() }
    }

    // MARK: - Requests

    func handle(_ request: GatewayRequest, _ writer: some HTTPResponseWriter) async {
        let head = request.head
        let requestID = head.headers.first(name: "x-request-id").flatMap { $0.utf8.count <= 128 ? $0 : nil } ?? UUID.randomText()
        // The request is a span of the caller's trace, or the first of a new one: the services' calls are its children
        // (they get it as their parent), and the client gets it back to find them.
        let trace = TraceContext(traceparent: head.headers.first(name: "traceparent").flatMap { $0.utf8.count <= 128 ? $0 : nil })
        let traceparent = trace.traceparent
        var common = HTTPHeaders([("x-request-id", requestID), ("traceparent", traceparent)])
        addCORS(head, to: &common)
        let conditional = head.headers.first(name: "if-match").map { RequestMapping.entityTag($0) != "*" } ?? false
        do {
            // Split and compared on UTF-8 bytes, as the route table splits paths: the request line is ASCII (the HTTP
            // parser refuses anything else), and walking it by grapheme clusters was about 1 % of the gateway's CPU per
            // request.
            let uri = Substring(head.uri)
            let pathEnd = uri.utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) ?? uri.endIndex
            let path = uri[..<pathEnd]
            let query = pathEnd < uri.endIndex && uri.utf8[pathEnd] == UInt8(ascii: "?") ? uri[uri.utf8.index(after: pathEnd)...] : ""
            let verb = head.method.rawValue
            if verb == "OPTIONS", head.headers.contains(name: "origin") {
                common.add(name: "access-control-allow-methods", value: "GET, POST, PUT, PATCH, DELETE, OPTIONS")
                common.add(
                    name: "access-control-allow-headers",
                    value: head.headers.first(name: "access-control-request-headers") ?? "authorization, content-type")
                common.add(name: "access-control-max-age", value: "600")
                common.add(name: "content-length", value: "0")
                try await writer.head(.noContent, common)
                try await writer.end()
                return
            }
            if path.utf8.elementsEqual("/v1/openapi.json".utf8) {
                guard verb == "GET" else {
                    var error = GatewayError(.unimplemented, "\(verb) is not allowed on /v1/openapi.json; allowed: GET")
                    error.headers = [("allow", "GET")]
                    error.httpStatus = 405
                    throw error
                }
                try await writeJSONText(openAPIText, status: .ok, headers: common, writer)
                return
            }
            if path.hasBytePrefix("/v1/webhooks/") {
                try await webhook(
                    name: PercentEncoding.decode(path.droppingBytes(first: "/v1/webhooks/".utf8.count)), request, headers: common, writer)
                return
            }
            if verb == "GET", path.hasBytePrefix("/v1/contacts/"), path.hasByteSuffix(":overview") {
                // The prefix ends in `/` and the suffix begins with `:`: they cannot overlap.
                let id = PercentEncoding.decode(path.droppingBytes(first: "/v1/contacts/".utf8.count, last: ":overview".utf8.count))
                guard !id.isEmpty, !id.contains("/") else { throw GatewayError(.notFound, "no route for GET \(path)") }
                guard query.isEmpty else {
                    let names = Self.parameterNames(query)
                    throw GatewayError(
                        .invalidArgument, "the overview takes no query parameters: \(names.joined(separator: ", "))", field: names.first ?? "",
                        reason: "UNKNOWN_QUERY_PARAMETER")
                }
                let identity = try await authenticate(head.headers)
                try authorize(identity, Switchboard_Contacts_V1_ContactsService.Method.getContact, needs: Self.overviewRole)
                try limit(identity, .read)
                let budget = try deadline(head.headers, streaming: false)
                let overview = try await ContactOverview(gateway: self).build(
                    contactID: id, metadata: forwardedMetadata(head.headers, requestID: requestID, traceparent: traceparent),
                    budget: budget ?? configuration.defaultTimeout)
                try await writeJSONText(overview, status: .ok, headers: common, writer)
                return
            }
            let (route, pathValues): (Route, [(fieldPath: [String], value: String)])
            switch routes.match(verb: verb, path: path) {
            case .found(let r, let values): (route, pathValues) = (r, values)
            case .wrongVerb(let allowed):
                var error = GatewayError(.unimplemented, "\(verb) is not allowed on \(path); allowed: \(allowed.joined(separator: ", "))")
                error.headers = [("allow", allowed.joined(separator: ", "))]
                error.httpStatus = 405
                throw error
            case .none: throw GatewayError(.notFound, "no route for \(verb) \(path)")
            }
            let identity = try await authenticate(head.headers)
            try authorize(identity, route.descriptor, needs: route.requiredRole)
            try limit(identity, route.routeClass)
            let budget = try deadline(head.headers, streaming: route.routeClass == .stream)

            var options = CallOptions(metadata: forwardedMetadata(head.headers, requestID: requestID, traceparent: traceparent), timeout: budget)
            options.compressRequests = false
            guard let channel = channels[route.upstream] else { throw GatewayError(.unavailable, "\(route.upstream) is not configured") }
            let client = RPCClient(transport: channel)
            let types = (input: route.input, output: route.output)
            switch route.descriptor.kind {
            case .unary:
                let json = try requestJSON(route, pathValues, query, request.body, head.headers)
                let response = try await Self.unaryText(types.input, types.output, json: json, client: client, route: route, options: options)
                var headers = common
                if let etag = response.etag, !etag.isEmpty {
                    headers.add(name: "etag", value: RequestMapping.etagHeader(etag))
                    // A read whose answer the client holds already: 304 without a body (RFC 9110 §13.1.2).
                    if verb == "GET", let tags = head.headers.first(name: "if-none-match"),
                        try RequestMapping.noneMatch(tags, current: RequestMapping.etagHeader(etag))
                    {
                        // No Content-Length: in a 304 it would have to be the 200's (RFC 9110 §8.6).
                        try await writer.respond(.notModified, headers, ByteBuffer())
                        return
                    }
                }
                try await writeJSONText(response.text, status: .ok, headers: headers, writer)
            case .serverStreaming:
                var json = try requestJSON(route, pathValues, query, request.body, head.headers)
                // An EventSource that reconnects sends the id of the last event it got: resume after it.
                if let lastEventID = head.headers.first(name: "last-event-id") {
                    json = try Self.resuming(json, lastEventID: lastEventID, route: route)
                }
                try await serverStream(
                    types, json: json, client: client, route: route, options: options, request: request, tenant: identity.tenantID, headers: common,
                    writer)
            case .clientStreaming:
                try Self.streamedBodyOnly(route, query: query, head.headers)
                let lines = try Self.ndjsonLines(request.body)
                let response = try await Self.clientStream(types.input, types.output, lines: lines, client: client, route: route, options: options)
                try await writeJSONText(response.text, status: .ok, headers: common, writer)
            case .bidirectionalStreaming:
                // Half duplex over HTTP/1.1: the body's NDJSON lines are the request stream (sent in full as the body
                // arrived), and the responses stream back as a server stream's do (ImportContacts: options and chunks
                // in, row results out).
                try Self.streamedBodyOnly(route, query: query, head.headers)
                let lines = try Self.ndjsonLines(request.body)
                try await serverStream(
                    types, json: .null, lines: lines, client: client, route: route, options: options, request: request, tenant: identity.tenantID,
                    headers: common, writer)
            }
        } catch {
            await writeError(error, headers: common, conditional: conditional, writer)
        }
    }

    private func requestJSON(
        _ route: Route, _ pathValues: [(fieldPath: [String], value: String)], _ query: Substring, _ body: ByteBuffer, _ headers: HTTPHeaders
    ) throws -> JSON {
        var parsedBody: JSON?
        if body.readableBytes > 0 {
            guard !route.binding.body.isEmpty else {
                throw GatewayError(.invalidArgument, "\(route.verb) \(route.binding.path) takes no body", field: "")
            }
            // Not repaired: text that is not UTF-8 would reach the service with U+FFFD in place of what was sent.
            guard let text = String(validating: body.readableBytesView, as: UTF8.self) else {
                throw GatewayError(.invalidArgument, "the body is not UTF-8 text", field: "")
            }
            do {
                parsedBody = try JSON.parse(text, rejectingDuplicateKeys: true)
            } catch {
                throw GatewayError(.invalidArgument, "the body is not valid JSON: \(error)", field: "")
            }
        }
        let queryItems = Self.queryItems(query)
        return try mapping.requestJSON(
            .init(
                route: route, pathValues: pathValues, query: queryItems, body: parsedBody, idempotencyKey: headers.first(name: "idempotency-key"),
                ifMatch: headers.first(name: "if-match"), ifNoneMatch: headers.first(name: "if-none-match")))
    }

    /// A role too weak for the RPC (`needed`, from the services' own table, ``AccessRules``) is a 403 here, without
    /// calling the service (which checks again). An RPC the table does not list, and a service identity, are the
    /// service's to judge.
    func authorize(_ identity: CallerIdentity, _ method: MethodDescriptor, needs needed: Role?) throws {
        guard !identity.isService, let needed, !identity.has(atLeast: needed) else { return }
        throw GatewayError(.permissionDenied, "\(method.path) needs the \(needed.rawValue) role or higher")
    }

    /// The role the overview needs: its one required part's (GetContact), found once.
    private static let overviewRole = AccessRules.byPath[Switchboard_Contacts_V1_ContactsService.Method.getContact.path]

    /// The caller, from `Authorization: Bearer …`, verified here so a bad token costs no upstream call.
    func authenticate(_ headers: HTTPHeaders) async throws -> CallerIdentity {
        guard let header = headers.first(name: "authorization") else {
            var error = GatewayError(.unauthenticated, "missing Authorization: Bearer <token>")
            error.headers = [("www-authenticate", "Bearer")]
            throw error
        }
        // On bytes: the scheme is ASCII, and the token is a few hundred bytes counted and lowered on every request.
        guard header.utf8.count > 7, header.utf8.prefix(7).lazy.map({ (65...90).contains($0) ? $0 | 0x20 : $0 }).elementsEqual("bearer ".utf8) else {
            var error = GatewayError(.unauthenticated, "the Authorization header must be Bearer <token>")
            error.headers = [("www-authenticate", "Bearer")]
            throw error
        }
        do {
            return try await verifier.verify(String(Substring(header.utf8.dropFirst(7))))
        } catch let error as RPCError {
            var gatewayError = GatewayError(.unauthenticated, error.message)
            gatewayError.headers = [("www-authenticate", "Bearer error=\"invalid_token\"")]
            throw gatewayError
        }
    }

    func limit(_ identity: CallerIdentity, _ routeClass: RouteClass) throws {
        let key = identity.isService ? "service:" + identity.userID : identity.tenantID
        if let wait = limiter.acquire(tenant: key, routeClass: routeClass) {
            let seconds = max(1, Int((Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18).rounded(.up)))
            var error = GatewayError(
                .resourceExhausted, "rate limit of tenant \(key) for \(routeClass.rawValue) requests reached; retry in \(seconds) s")
            error.headers = [("retry-after", "\(seconds)")]
            throw error
        }
    }

    /// The request's budget: `grpc-timeout` (gRPC's form) or `X-Request-Timeout` (`250ms`, `5s`, or seconds), at most
    /// the configured maximum; the default for unary calls, none for streams that ask for none.
    func deadline(_ headers: HTTPHeaders, streaming: Bool) throws -> Duration? {
        var asked: Duration?
        if let value = headers.first(name: "grpc-timeout") {
            guard let d = GRPCTimeout.parse(value) else {
                throw GatewayError(.invalidArgument, "grpc-timeout: not a gRPC timeout", field: "grpc-timeout")
            }
            asked = d
        } else if let value = headers.first(name: "x-request-timeout") {
            guard let d = Self.parseTimeout(value) else {
                throw GatewayError(.invalidArgument, "X-Request-Timeout: expected e.g. 250ms, 5s or 1.5", field: "X-Request-Timeout")
            }
            asked = d
        }
        if let asked { return min(asked, configuration.maxTimeout) }
        return streaming ? nil : configuration.defaultTimeout
    }

    static func parseTimeout(_ value: String) -> Duration? {
        let v = value.trimmingCharacters(in: .whitespaces).lowercased()
        let (number, scale): (Substring, Double) =
            v.hasSuffix("ms") ? (v.dropLast(2), 0.001) : v.hasSuffix("s") ? (v.dropLast(1), 1) : (Substring(v), 1)
        guard let n = Double(number), n.isFinite, n > 0, n * scale <= 86_400 else { return nil }
        return .milliseconds(Int64((n * scale * 1000).rounded(.up)))
    }

    /// A query string's parameters, split at `&` and the first `=`, decoded (`+` as a space); empty items skipped.
    static func queryItems(_ query: Substring) -> [(name: String, value: String)] {
        query.split(separator: "&").map { item in
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (
                PercentEncoding.decode(pair[0], plusIsSpace: true, strict: true),
                pair.count > 1 ? PercentEncoding.decode(pair[1], plusIsSpace: true, strict: true) : ""
            )
        }
    }

    /// The names of a query's parameters, each once, sorted: at most 16 (an error message names them).
    static func parameterNames(_ query: Substring) -> [String] {
        Array(Set(queryItems(query).map(\.name)).sorted().prefix(16))
    }

    /// A client or bidirectional stream's request is its NDJSON body alone: a query parameter, `Idempotency-Key` or
    /// `If-Match` would be ignored, so each is refused, named.
    static func streamedBodyOnly(_ route: Route, query: Substring, _ headers: HTTPHeaders) throws {
        if !query.isEmpty {
            let names = Self.parameterNames(query)
            throw GatewayError(
                .invalidArgument,
                "query parameters are not accepted here (the body's NDJSON lines are the request): \(names.joined(separator: ", "))",
                field: names.first ?? "", reason: "UNKNOWN_QUERY_PARAMETER")
        }
        for header in ["Idempotency-Key", "If-Match"] where headers.contains(name: header) {
            throw GatewayError(
                .invalidArgument, "\(route.verb) \(route.binding.path) takes no \(header): its body's lines are the request", field: header)
        }
    }

    /// What goes upstream with every call of a request: the caller's token, the request's id, and the request's span as
    /// the calls' parent (with the caller's `tracestate`).
    func forwardedMetadata(_ headers: HTTPHeaders, requestID: String, traceparent: String) -> Metadata {
        var metadata = Metadata()
        if let value = headers.first(name: "authorization") { metadata.addString(value, forKey: "authorization") }
        metadata.addString(traceparent, forKey: "traceparent")
        // W3C caps tracestate at 32 members of at most 256 characters; a longer one is dropped, not cut.
        if let value = headers.first(name: "tracestate"), value.utf8.count <= 512 { metadata.addString(value, forKey: "tracestate") }
        metadata.addString(requestID, forKey: "x-request-id")
        return metadata
    }

    private func addCORS(_ head: HTTPRequestHead, to headers: inout HTTPHeaders) {
        guard !configuration.corsOrigins.isEmpty, let origin = head.headers.first(name: "origin") else { return }
        if configuration.corsOrigins.contains("*") {
            headers.add(name: "access-control-allow-origin", value: "*")
        } else if configuration.corsOrigins.contains(origin) {
            headers.add(name: "access-control-allow-origin", value: origin)
            headers.add(name: "vary", value: "Origin")
        } else {
            return
        }
        headers.add(name: "access-control-expose-headers", value: "etag, retry-after, x-request-id, traceparent")
    }

    // MARK: - Provider webhooks

    /// `POST /v1/webhooks/{provider}`: the body's HMAC is checked here (401 without passing anything on), then the
    /// exact body and signature go to the provider's events endpoint (the communication service, which checks again
    /// and applies each event once by its id, so a replay is a no-op), and its answer comes back.
    private func webhook(name: String, _ request: GatewayRequest, headers: HTTPHeaders, _ writer: some HTTPResponseWriter) async throws {
        guard let endpoint = configuration.webhooks[name], let secret = configuration.webhookSecret else {
            throw GatewayError(.notFound, "no webhook provider named \(name)")
        }
        guard request.head.method == .POST else {
            var error = GatewayError(.unimplemented, "webhooks take POST")
            error.headers = [("allow", "POST")]
            error.httpStatus = 405
            throw error
        }
        let body = Array(buffer: request.body)
        guard let signature = request.head.headers.first(name: "x-provider-signature"), Self.signatureMatches(signature, body: body, secret: secret)
        else {
            throw GatewayError(.unauthenticated, "X-Provider-Signature does not match the body (sha256=<hex HMAC-SHA256 with the provider secret>)")
        }
        let limitKey = CallerIdentity(userID: "webhook:" + name, tenantID: "webhook:" + name, roles: [])
        try limit(limitKey, .write)
        // The request's budget, as every other route's: a provider waits no longer than it asked.
        let budget = (try deadline(request.head.headers, streaming: false) ?? configuration.defaultTimeout).components
        let response: WebhookResponse
        do {
            response = try await WebhookClient(endpoint: endpoint).post(
                body: body,
                headers: [("Content-Type", "application/json"), ("X-Provider-Signature", signature)]
                    + ["x-request-id", "traceparent"].compactMap { name in headers.first(name: name).map { (name, $0) } },
                timeout: .nanoseconds(budget.seconds * 1_000_000_000 + budget.attoseconds / 1_000_000_000))
        } catch {
            throw GatewayError(.unavailable, "the events endpoint of \(name) did not answer: \(error)")
        }
        let text = String(decoding: response.body.prefix(1024), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard (200..<300).contains(response.status) else {
            let code: StatusCode =
                switch response.status {
                case 400, 413: .invalidArgument
                case 401: .unauthenticated
                case 404: .notFound
                case 429: .resourceExhausted
                case 500..<600: .unavailable
                default: .internal
                }
            var error = GatewayError(code, text.isEmpty ? "the events endpoint answered \(response.status)" : text)
            error.httpStatus = response.status
            throw error
        }
        try await writeJSONText(JSON.object(["status": .string(text.isEmpty ? "accepted" : text)]).text, status: .ok, headers: headers, writer)
    }

    /// Whether `sha256=<hex>` is the HMAC-SHA256 of the body, compared in constant time.
    static func signatureMatches(_ header: String, body: [UInt8], secret: [UInt8]) -> Bool {
        guard header.hasPrefix("sha256=") else { return false }
        let expected = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
        let given = Array(header.dropFirst(7).lowercased().utf8), wanted = Array(expected.utf8)
        guard given.count == wanted.count else { return false }
        return zip(given, wanted).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: - Calls (the generic parameters open the registry's existential types)

    static func unary<Request: ProtoJSONMessage, Response: ProtoJSONMessage>(
        _: Request.Type, _: Response.Type, json: JSON, client: RPCClient, route: Route, options: CallOptions
    ) async throws -> JSON {
        let request = try decode(Request.self, json)
        let response: Response = try await client.unary(route.descriptor, request, options: options)
        return try response.protoJSON()
    }

    /// A unary call answered as JSON text, written directly from the message (no JSON value built), with the
    /// response's `etag` field when it has one; a route whose `response_body` names a field answers that field.
    static func unaryText<Request: ProtoJSONMessage, Response: ProtoJSONMessage>(
        _: Request.Type, _: Response.Type, json: JSON, client: RPCClient, route: Route, options: CallOptions
    ) async throws -> (text: String, etag: String?) {
        let request = try decode(Request.self, json)
        let response: Response = try await client.unary(route.descriptor, request, options: options)
        let etag = (response as? any ProtoETagged)?.etag
        guard route.binding.responseBody.isEmpty else { return (responseBody(try response.protoJSON(), route).text, etag) }
        return (try response.protoJSONText(), etag)
    }

    /// An NDJSON body's lines as request messages; a line that is not one is a 400 naming it (`[i].field`).
    static func requestMessages<Request: ProtoJSONMessage>(_: Request.Type, _ lines: [JSON]) throws -> [Request] {
        try lines.enumerated().map { i, line in
            do {
                return try Request(protoJSON: line)
            } catch let error as ProtoJSONError {
                let field = "[\(i)]" + (error.path.isEmpty ? "" : "." + error.path)
                throw GatewayError(.invalidArgument, "line \(i + 1): \(error.description)", field: field)
            }
        }
    }

    static func clientStream<Request: ProtoJSONMessage, Response: ProtoJSONMessage>(
        _: Request.Type, _: Response.Type, lines: [JSON], client: RPCClient, route: Route, options: CallOptions
    ) async throws -> JSON {
        let requests = try requestMessages(Request.self, lines)
        let response: ClientResponse<Response> = try await client.clientStreaming(route.descriptor, options: options) { call in
            for request in requests { try await call.send(request) }
        }
        return try response.message.protoJSON()
    }

    static func decode<Request: ProtoJSONMessage>(_: Request.Type, _ json: JSON) throws -> Request {
        do {
            return try Request(protoJSON: json)
        } catch let error as ProtoJSONError {
            throw GatewayError(.invalidArgument, error.description, field: error.path)
        }
    }

    static func responseBody(_ response: JSON, _ route: Route) -> JSON {
        guard !route.binding.responseBody.isEmpty, case .object(let fields) = response,
            let field = SwitchboardHTTPSchema.messages[route.method.output]?.field(named: route.binding.responseBody)
        else { return response }
        return fields[field.jsonName] ?? .null
    }

    static func ndjsonLines(_ body: ByteBuffer) throws -> [JSON] {
        var lines: [JSON] = []
        guard let text = String(validating: body.readableBytesView, as: UTF8.self) else {
            throw GatewayError(.invalidArgument, "the body is not UTF-8 text", field: "")
        }
        for (i, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            do {
                lines.append(try JSON.parse(trimmed, rejectingDuplicateKeys: true))
            } catch {
                throw GatewayError(.invalidArgument, "line \(i + 1) of the body is not JSON", field: "[\(i)]")
            }
            try RequestMapping.refuseNUL(lines[lines.count - 1], path: "[\(i)]")
        }
        return lines
    }

    // MARK: - Server streams

    private func serverStream(
        _ types: (input: any ProtoJSONMessage.Type, output: any ProtoJSONMessage.Type), json: JSON, lines: [JSON]? = nil,
        client: RPCClient, route: Route, options: CallOptions, request: GatewayRequest, tenant: String, headers: HTTPHeaders,
        _ writer: some HTTPResponseWriter
    ) async throws {
        let open = openStreams.wrappingAdd(1, ordering: .relaxed).newValue
        defer { openStreams.wrappingSubtract(1, ordering: .relaxed) }
        guard open <= configuration.maxStreams else {
            throw GatewayError(.resourceExhausted, "the gateway holds \(configuration.maxStreams) streams open; retry later")
        }
        // One tenant's watches must not take every stream the gateway holds: the stream-open rate bounds how fast they
        // come, this bounds how many stay.
        let perTenant = configuration.maxStreamsPerTenant
        let admitted = tenantStreams.withLock { counts in
            guard counts[tenant, default: 0] < perTenant else { return false }
            counts[tenant, default: 0] += 1
            return true
        }
        guard admitted else {
            var error = GatewayError(.resourceExhausted, "this tenant holds \(perTenant) streams open; close one or retry later")
            error.headers = [("retry-after", "1")]
            throw error
        }
        defer {
            tenantStreams.withLock { counts in
                let left = counts[tenant, default: 1] - 1
                counts[tenant] = left > 0 ? left : nil
            }
        }
        let sse = request.head.headers.first(name: "accept")?.contains("text/event-stream") ?? false
        let responder = StreamResponder(writer: writer, headers: headers, sse: sse)
        let shutdown = ShutdownFlag()
        // A stream takes a slot before it starts, so that one opened once shutdown has begun is refused before anything
        // of it is written (after, the head could already be on its way and a 503 would be a second response).
        guard
            let slot = streamDrains.withLock({ drains -> Int? in
                guard !drains.draining else { return nil }
                drains.next += 1
                return drains.next
            })
        else {
            throw GatewayError(.unavailable, Self.shuttingDown)
        }
        defer { _ = streamDrains.withLock { $0.ends.removeValue(forKey: slot) } }
        // A client that goes away cancels the upstream call (a quiet watch would otherwise notice only at its next write).
        let task = Task {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    if let lines {
                        try await Self.bidirectionalStreaming(types.input, types.output, lines: lines, client: client, route: route, options: options)
                        {
                            try await responder.send($0)
                        }
                    } else {
                        try await Self.serverStreaming(types.input, types.output, json: json, client: client, route: route, options: options) {
                            try await responder.send($0)
                        }
                    }
                    return true
                }
                group.addTask {
                    // The head goes out once a message arrives or a second passes (half the budget when that is
                    // shorter), so an error at once still gets its own HTTP status (a quarter second was too short for
                    // an upstream on a loaded host), and a quiet watch still gets its head before its deadline.
                    try await Task.sleep(for: min(.seconds(1), (options.timeout ?? .seconds(2)) / 2))
                    try await responder.sendHead()
                    return false
                }
                while let streamEnded = try await group.next() {
                    if streamEnded {
                        group.cancelAll()
                        break
                    }
                }
            }
        }
        request.connection.onClose { task.cancel() }
        defer { request.connection.onClose(nil) }
        // Past its slot (taken before the stream started), shutdown ends it: see ``drainStreams()``.
        let end: @Sendable () -> Void = {
            shutdown.set()
            task.cancel()
        }
        if streamDrains.withLock({ drains in
            if drains.draining { return true }
            drains.ends[slot] = end
            return false
        }) {
            end()
        }
        do {
            try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
        } catch {
            if shutdown.isSet {
                guard await responder.headSent else { throw GatewayError(.unavailable, Self.shuttingDown) }
                try? await responder.fail(RPCError(code: .unavailable, message: Self.shuttingDown))
                return
            }
            if task.isCancelled { return }
            if await responder.headSent {
                try? await responder.fail(Self.rpcError(error))
                return
            }
            throw error
        }
        try await responder.finish()
    }

    static let shuttingDown = "the gateway is shutting down; open the stream again"

    /// Shutdown's grace is nearly over (``GatewayServer``): every open server stream ends with an UNAVAILABLE error
    /// (line or event) instead of a cut connection, and a stream opened from now on is refused with 503.
    public func drainStreams() {
        let ends = streamDrains.withLock { drains in
            drains.draining = true
            return Array(drains.ends.values)
        }
        for end in ends { end() }
    }

    /// A stream's request resumed after an SSE client's `Last-Event-ID`: its `from_sequence` (the events after it)
    /// becomes that id, which wins over the one in the URL the client reconnects to.
    /// - Throws: ``GatewayError`` (400) for a stream without `from_sequence`, or an id that is not a sequence number.
    static func resuming(_ json: JSON, lastEventID: String, route: Route) throws -> JSON {
        let id = lastEventID.trimmingCharacters(in: .whitespaces)
        guard let field = SwitchboardHTTPSchema.messages[route.method.input]?.field(named: "from_sequence") else {
            throw GatewayError(
                .invalidArgument, "Last-Event-ID resumes a change feed; \(route.verb) \(route.binding.path) is none", field: "Last-Event-ID")
        }
        guard !id.isEmpty, id.utf8.count <= 19, id.utf8.allSatisfy({ (48...57).contains($0) }), Int64(id) != nil else {
            throw GatewayError(.invalidArgument, "Last-Event-ID must be an event's id (its sequence number)", field: "Last-Event-ID")
        }
        guard case .object(var fields) = json else { return json }
        fields[field.name] = nil
        fields[field.jsonName] = .string(id)
        return .object(fields)
    }

    static func serverStreaming<Request: ProtoJSONMessage, Response: ProtoJSONMessage>(
        _: Request.Type, _: Response.Type, json: JSON, client: RPCClient, route: Route, options: CallOptions,
        emit: @escaping @Sendable (JSON) async throws -> Void
    ) async throws {
        let request = try decode(Request.self, json)
        try await client.serverStreaming(route.descriptor, request, options: options) { (responses: RPCAsyncSequence<Response>) in
            for try await response in responses { try await emit(try response.protoJSON()) }
        }
    }

    /// A bidirectional stream from a whole body: every line sent (then the request stream closed) while the responses
    /// are read, so a long request stream never waits on unread responses.
    static func bidirectionalStreaming<Request: ProtoJSONMessage, Response: ProtoJSONMessage>(
        _: Request.Type, _: Response.Type, lines: [JSON], client: RPCClient, route: Route, options: CallOptions,
        emit: @escaping @Sendable (JSON) async throws -> Void
    ) async throws {
        let requests = try requestMessages(Request.self, lines)
        try await client.streaming(route.descriptor, options: options) { (call: ClientStreamingCall<Request, Response>) in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for request in requests { try await call.send(request) }
                    try await call.finishSending()
                }
                for try await response in call.responses { try await emit(try response.protoJSON()) }
                try await group.waitForAll()
            }
        }
    }

    // MARK: - Writing

    func writeJSONText(_ text: String, status: HTTPResponseStatus, headers: HTTPHeaders, _ writer: some HTTPResponseWriter) async throws {
        var headers = headers
        let buffer = ByteBuffer(string: text)
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: "\(buffer.readableBytes)")
        try await writer.respond(status, headers, buffer)
    }

    static func rpcError(_ error: any Error) -> RPCError {
        switch error {
        case let error as GatewayError: error.rpcError
        case let error as ProtoJSONError: error.rpcError
        default: RPCError.from(error)
        }
    }

    private func writeError(_ error: any Error, headers: HTTPHeaders, conditional: Bool, _ writer: some HTTPResponseWriter) async {
        let rpcError = Self.rpcError(error)
        var headers = headers
        if let error = error as? GatewayError { for (name, value) in error.headers { headers.add(name: name, value: value) } }
        if rpcError.code == .internal || rpcError.code == .unknown {
            logger.error("request failed", metadata: ["error": "\(error)"])
        }
        let status = HTTPResponseStatus(
            statusCode: (error as? GatewayError)?.httpStatus ?? HTTPErrorMapping.httpStatus(rpcError.code, conditional: conditional))
        try? await writeJSONText(HTTPErrorMapping.statusJSON(rpcError).text, status: status, headers: headers, writer)
    }
}

/// Set when shutdown ended a stream (``Gateway/drainStreams()``).
final class ShutdownFlag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}

/// Writes a server stream: the head once, then one NDJSON line (`{"result": …}`) or SSE event per message, and an
/// error as a last line (`{"error": status}`) or an `error` event, never a silent close.
///
/// The parts are written in the order they are asked for, whichever task asks: each write waits for the one before
/// it. An actor alone does not give that order (its method lets other calls in while it awaits the connection), nor
/// does NIO's async writer across tasks, nor survives a caller's cancellation: a head abandoned while a body was then
/// written reached NIO's HTTP/1 handler as a body without a head, which it traps on.
actor StreamResponder {
    let writer: any HTTPResponseWriter
    let headers: HTTPHeaders
    let sse: Bool
    /// Whether the head is written or queued to be: from then on, what is written follows it.
    private(set) var headSent = false
    /// The last write queued; the next one starts when it has finished, and not at all if it failed.
    private var lastWrite: Task<Void, any Error>?
    /// How many writes were queued (for tests).
    private(set) var queuedWrites = 0

    init(writer: any HTTPResponseWriter, headers: HTTPHeaders, sse: Bool) {
        self.writer = writer
        self.headers = headers
        self.sse = sse
    }

    /// Queues `write` after the writes queued before it (synchronously, so calls are written in the order they reach
    /// the actor), and waits for it. The write runs in its own task: a caller's cancellation does not leave it half
    /// done.
    private func ordered(_ write: @escaping @Sendable (any HTTPResponseWriter) async throws -> Void) async throws {
        let previous = lastWrite
        let writer = writer
        let next = Task {
            try await previous?.value
            try await write(writer)
        }
        lastWrite = next
        queuedWrites += 1
        try await next.value
    }

    func sendHead() async throws {
        guard !headSent else { return }
        headSent = true
        var headers = headers
        headers.add(name: "content-type", value: sse ? "text/event-stream" : "application/x-ndjson")
        headers.add(name: "cache-control", value: "no-cache")
        try await ordered { [headers] in try await $0.head(.ok, headers) }
    }

    func send(_ message: JSON) async throws {
        try await sendHead()
        // A change's sequence is its event id, so an EventSource that reconnects says where it stopped (Last-Event-ID).
        var id = ""
        if sse, case .object(let fields) = message, case .string(let sequence)? = fields["sequence"], !sequence.isEmpty,
            sequence.utf8.allSatisfy({ (48...57).contains($0) })
        {
            id = "id: \(sequence)\n"
        }
        let text = sse ? "\(id)data: \(message.text)\n\n" : JSON.object(["result": message]).text + "\n"
        try await ordered { try await $0.body(ByteBuffer(string: text)) }
    }

    func fail(_ error: RPCError) async throws {
        let status = HTTPErrorMapping.statusJSON(error)
        let text = sse ? "event: error\ndata: \(status.text)\n\n" : JSON.object(["error": status]).text + "\n"
        try await ordered {
            try await $0.body(ByteBuffer(string: text))
            try await $0.end()
        }
    }

    func finish() async throws {
        try await sendHead()
        try await ordered { try await $0.end() }
    }
}

extension Substring {
    /// Whether the UTF-8 bytes begin with `prefix`'s.
    fileprivate func hasBytePrefix(_ prefix: String) -> Bool { utf8.starts(with: prefix.utf8) }

    /// Whether the UTF-8 bytes end with `suffix`'s.
    fileprivate func hasByteSuffix(_ suffix: String) -> Bool {
        utf8.count >= suffix.utf8.count && utf8.suffix(suffix.utf8.count).elementsEqual(suffix.utf8)
    }

    /// Without the first and last bytes given (which the caller checked are there, and whole characters).
    fileprivate func droppingBytes(first: Int, last: Int = 0) -> Substring {
        let start = utf8.index(startIndex, offsetBy: first, limitedBy: endIndex) ?? endIndex
        let end = utf8.index(endIndex, offsetBy: -last, limitedBy: start) ?? start
        return self[start..<end]
    }
}
