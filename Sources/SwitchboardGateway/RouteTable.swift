import SwitchboardAccess
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime

/// One HTTP route: a binding of an RPC, its parsed template and the upstream service it goes to.
struct Route: Sendable {
    let method: HTTPMethodSchema
    let binding: HTTPBindingSchema
    let template: PathTemplate
    /// The upstream's short name (`contacts`, …), from the RPC's package `switchboard.<name>.v1`.
    let upstream: String
    /// The generated request and response types, found once when the table is built.
    let input: any ProtoJSONMessage.Type
    let output: any ProtoJSONMessage.Type
    /// The lowest role the RPC is open to (``AccessRules``), found once when the table is built; nil when the table
    /// does not list it (the service refuses it).
    let requiredRole: Role?

    var verb: String { binding.verb }
    var descriptor: MethodDescriptor { method.descriptor }
    /// The rate-limit class: reads, writes, or streams (long-lived server streams).
    var routeClass: RouteClass {
        if method.descriptor.kind == .serverStreaming || method.descriptor.kind == .bidirectionalStreaming { return .stream }
        return binding.verb == "GET" ? .read : .write
    }
}

/// Which bucket a request draws from.
public enum RouteClass: String, Sendable, CaseIterable {
    /// GET of unary RPCs.
    case read
    /// Every other unary or client-streaming RPC.
    case write
    /// Server-streaming RPCs (watches, exports, downloads).
    case stream
}

/// Every route of the generated HTTP schema whose service has an upstream, matched by verb and path.
struct RouteTable: Sendable {
    let routes: [Route]
    /// Indices of the routes whose first two segments are literals, by those two (`v1/contacts`), in table order; a
    /// request tries these, then ``others`` (which come after them in specificity order anyway).
    private let byPrefix: [String: [Int]]
    /// Indices of the other routes, in table order.
    private let others: [Int]
    /// Index of each RPC's first binding, by `service/method` (the contact-360 view calls RPCs by name).
    private let byMethod: [String: Int]

    /// What matching a request found.
    enum Match {
        case found(Route, [(fieldPath: [String], value: String)])
        /// The path matches routes, but none with this verb.
        case wrongVerb(allowed: [String])
        case none
    }

    /// The upstream short name for a service, e.g. `switchboard.contacts.v1.ContactsService` → `contacts`.
    static func upstream(ofService service: String) -> String? {
        let parts = service.split(separator: ".")
        guard parts.count == 4, parts[0] == "switchboard", parts[2] == "v1", parts[1] != "common" else { return nil }
        return String(parts[1])
    }

    /// A generated type the schema names is missing (a generator bug).
    struct MissingType: Error, CustomStringConvertible {
        var description: String
    }

    /// Builds the table.
    /// - Parameter upstreams: the services the gateway has addresses for; routes to others are left out.
    /// - Throws: when a template does not parse or a message type is not generated (generator bugs).
    init(upstreams: Set<String>) throws {
        var routes: [Route] = []
        for method in SwitchboardHTTPSchema.methods {
            guard let upstream = Self.upstream(ofService: method.descriptor.service), upstreams.contains(upstream) else { continue }
            guard let input = ProtoJSONRegistry.messageType(named: method.input), let output = ProtoJSONRegistry.messageType(named: method.output)
            else { throw MissingType(description: "no generated type for \(method.descriptor)") }
            for binding in method.bindings {
                routes.append(
                    Route(
                        method: method, binding: binding, template: try PathTemplate(binding.path), upstream: upstream, input: input,
                        output: output, requiredRole: AccessRules.byPath[method.descriptor.path]))
            }
        }
        // The most specific template first, so `/v1/contacts:search` is never taken for `/v1/contacts/{id}`.
        let sorted = routes.sorted { $1.template.specificity.lexicographicallyPrecedes($0.template.specificity) }
        self.routes = sorted
        var byPrefix: [String: [Int]] = [:]
        var others: [Int] = []
        var byMethod: [String: Int] = [:]
        for (index, route) in sorted.enumerated() {
            let name = route.descriptor.service + "/" + route.descriptor.method
            if route.binding == route.method.bindings.first, byMethod[name] == nil { byMethod[name] = index }
            if let key = Self.prefixKey(route.template) {
                byPrefix[key, default: []].append(index)
            } else {
                others.append(index)
            }
        }
        self.byPrefix = byPrefix
        self.others = others
        self.byMethod = byMethod
    }

    /// An RPC's route (its first binding) by service and method name; nil when its upstream is not configured.
    func route(service: String, method: String) -> Route? {
        byMethod[service + "/" + method].map { routes[$0] }
    }

    /// `first/second` when a template's first two segments are literals.
    private static func prefixKey(_ template: PathTemplate) -> String? {
        guard template.segments.count >= 2, case .literal(let first) = template.segments[0], case .literal(let second) = template.segments[1]
        else { return nil }
        return first + "/" + second
    }

    /// Finds the route for a request.
    /// - Parameters:
    ///   - verb: the HTTP method.
    ///   - path: the path without the query string.
    /// - Returns: the match.
    func match(verb: String, path: Substring) -> Match {
        let (parts, requestVerb) = PathTemplate.split(path)
        let decoded = parts.map { PercentEncoding.decodeIfNeeded($0) }
        var allowed: [String] = []
        let keyed = decoded.count >= 2 ? byPrefix[decoded[0] + "/" + decoded[1]] ?? [] : []
        for candidates in [keyed, others] {
            for index in candidates {
                guard let values = routes[index].template.match(parts, decoded: decoded, verb: requestVerb) else { continue }
                if routes[index].verb == verb { return .found(routes[index], values) }
                allowed.append(routes[index].verb)
            }
        }
        return allowed.isEmpty ? .none : .wrongVerb(allowed: Array(Set(allowed)).sorted())
    }
}
