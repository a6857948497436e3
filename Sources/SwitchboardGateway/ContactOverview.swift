import Foundation
import SwitchboardProtos
import SwitchboardRPC

/// `GET /v1/contacts/{id}:overview`, the contact-360 view: the contact (required) and, in parallel, one
/// `GetContactSummary` call to each other service (optional), which answers the first pages of that service's lists for
/// the person, the organization service's with the names of the person's organizations. An optional part that fails
/// or is late is listed in `partialFailures`, one entry per view key it fills; NOT_FOUND (a service that knows nothing
/// of the person) is empty lists instead. The answer never comes later than the request's budget. A service that has
/// no `GetContactSummary` yet (UNIMPLEMENTED: an older release) is asked through its list RPCs instead, with one batch
/// call for the organization names, as the view was built before.
struct ContactOverview {
    let gateway: Gateway

    /// One call of the view.
    struct Part: Sendable {
        var key: String
        var upstream: String
        var service: String
        var method: String
        var request: JSON
        var required: Bool
        /// The view's keys the answer fills: each is listed in `partialFailures` when the call fails.
        var fills: [String]
        /// Whether the service's list RPCs (``legacyParts(contactID:now:)`` of its upstream) fill the same keys when it
        /// does not have this one.
        var hasFallback = false
    }

    /// The view's keys each service's list RPCs fill (made once: the parts themselves only when a service needs them).
    private static let legacyKeys: [String: [String]] = Dictionary(
        grouping: legacyParts(contactID: "", now: Date(timeIntervalSince1970: 0)), by: \.upstream
    ).mapValues { $0.map(\.key) }

    /// Entries per list of the view.
    static let pageSize = 10

    /// A value of the view: JSON text written straight from an upstream's message (the summaries and the contact: their
    /// requests and answers passing through JSON values cost a fifth of the gateway's CPU per overview, BENCHMARKS.md), or
    /// a JSON value (the list RPCs of a service without `GetContactSummary`, and the failures).
    enum ViewValue: Equatable {
        case text(String)
        case json(JSON)

        /// The value as JSON text.
        var text: String {
            switch self {
            case .text(let text): return text
            case .json(let json): return json.text
            }
        }
    }

    /// The view as a JSON object's text, its keys sorted as ``JSON/text`` sorts them.
    static func render(_ view: [String: ViewValue]) -> String {
        var out = "{"
        for (i, pair) in view.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { out += "," }
            JSON.quote(pair.key, into: &out)
            out += ":"
            switch pair.value {
            case .text(let text): out += text
            case .json(let json): json.write(to: &out)
            }
        }
        return out + "}"
    }

    /// A list of messages as JSON text.
    private static func list<M: ProtoJSONMessage>(_ items: [M]?) throws -> ViewValue {
        var out = "["
        for (i, item) in (items ?? []).enumerated() {
            if i > 0 { out += "," }
            out += try item.protoJSONText()
        }
        return .text(out + "]")
    }

    /// The view's keys an organization summary fills: memberships, groups and, when there are memberships, the names of
    /// their organizations.
    static func view(_ summary: Switchboard_Organization_V1_ContactSummary) throws -> [String: ViewValue] {
        var view = ["memberships": try list(summary.memberships?.memberships), "groups": try list(summary.groups?.groups)]
        if !(summary.memberships?.memberships ?? []).isEmpty {
            var names: [String: JSON] = [:]
            // As the JSON path reads them: an organization without an id names nothing.
            for organization in summary.organizations where !organization.id.isEmpty { names[organization.id] = .string(organization.name) }
            view["organizationNames"] = .json(.object(names))
        }
        return view
    }

    /// The view's keys a communication summary fills.
    static func view(_ summary: Switchboard_Communication_V1_ContactSummary) throws -> [String: ViewValue] {
        [
            "recentInteractions": try list(summary.interactions?.interactions), "consents": try list(summary.consents?.records),
            "preferences": .text(try summary.preferences?.protoJSONText() ?? "{}"),
        ]
    }

    /// The view's keys a collaboration summary fills.
    static func view(_ summary: Switchboard_Collaboration_V1_ContactSummary) throws -> [String: ViewValue] {
        [
            "notes": try list(summary.notes?.notes), "files": try list(summary.files?.files),
            "upcomingMeetings": try list(summary.meetings?.meetings),
        ]
    }

    /// The view's keys an analytics summary fills.
    static func view(_ summary: Switchboard_Analytics_V1_ContactSummary) throws -> [String: ViewValue] {
        ["metrics": .text(try summary.metrics?.protoJSONText() ?? "{}"), "timeline": try list(summary.timeline?.entries)]
    }

    /// The view's calls: the contact and each service's summary, whose requests ``answer(_:contactID:now:metadata:deadline:)``
    /// builds as messages (`request` is only for the fallback's list RPCs).
    static let parts: [Part] = {
        func summary(_ key: String, _ upstream: String, _ service: String) -> Part {
            Part(
                key: key, upstream: upstream, service: service, method: "GetContactSummary", request: .null, required: false,
                fills: (legacyKeys[upstream] ?? []) + (upstream == "organization" ? ["organizations"] : []), hasFallback: true)
        }
        return [
            Part(
                key: "contact", upstream: "contacts", service: "switchboard.contacts.v1.ContactsService", method: "GetContact", request: .null,
                required: true, fills: ["contact"]),
            summary("organization", "organization", "switchboard.organization.v1.OrganizationService"),
            summary("communication", "communication", "switchboard.communication.v1.CommunicationService"),
            summary("collaboration", "collaboration", "switchboard.collaboration.v1.CollaborationService"),
            summary("analytics", "analytics", "switchboard.analytics.v1.AnalyticsService"),
        ]
    }()

    /// RFC 3339 as proto3 JSON writes a Timestamp: an ISO8601DateFormatter made per overview (ICU's formatter set up
    /// every time) was 14% of the gateway's CPU under the overview benchmark.
    private static func timestamp(_ date: Date) -> JSON {
        (try? Google_Protobuf_Timestamp(date: date).protoJSON()) ?? .null
    }

    /// The view's optional parts through each service's list RPCs (the fallback for a service without
    /// `GetContactSummary`).
    static func legacyParts(contactID id: String, now: Date) -> [Part] {
        let page: JSON = .object(["pageSize": .number(Double(pageSize))])
        let subject: JSON = .object(["type": .string("SUBJECT_TYPE_CONTACT"), "id": .string(id)])
        func part(_ key: String, _ upstream: String, _ service: String, _ method: String, _ request: [String: JSON]) -> Part {
            Part(key: key, upstream: upstream, service: service, method: method, request: .object(request), required: false, fills: [key])
        }
        let organization = "switchboard.organization.v1.OrganizationService"
        let communication = "switchboard.communication.v1.CommunicationService"
        let collaboration = "switchboard.collaboration.v1.CollaborationService"
        let analytics = "switchboard.analytics.v1.AnalyticsService"
        return [
            part("memberships", "organization", organization, "ListContactMemberships", ["contactId": .string(id), "page": page]),
            part("groups", "organization", organization, "ListContactGroups", ["contactId": .string(id), "page": page]),
            part("recentInteractions", "communication", communication, "ListInteractions", ["contactId": .string(id), "page": page]),
            part("consents", "communication", communication, "ListConsentHistory", ["contactId": .string(id), "page": page]),
            part("preferences", "communication", communication, "GetContactPreferences", ["contactId": .string(id)]),
            part("notes", "collaboration", collaboration, "ListNotes", ["subject": subject, "page": page]),
            part("files", "collaboration", collaboration, "ListFiles", ["subject": subject, "page": page]),
            part(
                "upcomingMeetings", "collaboration", collaboration, "ListMeetings",
                ["contactId": .string(id), "timeMin": timestamp(now), "page": page]),
            part("metrics", "analytics", analytics, "GetContactMetrics", ["contactId": .string(id)]),
            part(
                "timeline", "analytics", analytics, "GetTimeline",
                ["subjectType": .string("SUBJECT_TYPE_CONTACT"), "subjectId": .string(id), "page": page]),
        ]
    }

    /// Puts a list RPC's answer (the fallback for a service without `GetContactSummary`), as a JSON value, into the view,
    /// under the key the summaries fill (a test compares the two).
    static func apply(_ part: Part, _ response: JSON, to view: inout [String: ViewValue]) {
        guard case .object(let fields) = response else { return }
        if part.key == "metrics" || part.key == "preferences" {
            view[part.key] = .json(response)
            return
        }
        // A list response's entries; proto3 JSON leaves out an empty list.
        let field = ["recentInteractions": "interactions", "consents": "records", "upcomingMeetings": "meetings", "timeline": "entries"]
        view[part.key] = .json(fields[field[part.key] ?? part.key] ?? .array([]))
    }

    /// The view's keys a summary fills when its service knows nothing of the person (NOT_FOUND): its lists, empty.
    static func emptySummary(of upstream: String) throws -> [String: ViewValue] {
        switch upstream {
        case "organization": return try view(Switchboard_Organization_V1_ContactSummary())
        case "communication": return try view(Switchboard_Communication_V1_ContactSummary())
        case "collaboration": return try view(Switchboard_Collaboration_V1_ContactSummary())
        case "analytics": return try view(Switchboard_Analytics_V1_ContactSummary())
        default: return [:]
        }
    }

    /// Builds the view.
    /// - Parameters:
    ///   - contactID: the contact.
    ///   - metadata: the caller's token and trace headers, forwarded.
    ///   - budget: the request's whole budget.
    /// - Returns: the view as JSON text.
    /// - Throws: the contact call's error (a missing contact is 404), or DEADLINE_EXCEEDED.
    func build(contactID: String, metadata: Metadata, budget: Duration) async throws -> String {
        let start = ContinuousClock.now
        let end = start + budget
        // A fallback's batch call for names needs a slice of the budget after the parallel calls.
        let namesReserve = min(budget / 5, .milliseconds(200))
        let optionalDeadline = min(end - namesReserve, start + gateway.configuration.overviewPartTimeout)
        // A service the gateway has no address for is left out of the view (a deployment without it), not a failure.
        let now = Date()
        let parts = Self.parts.filter { $0.required || gateway.channels[$0.upstream] != nil }
        var view: [String: ViewValue] = [:]
        var failures: [JSON] = []
        try await withThrowingTaskGroup(of: (Part, Result<[String: ViewValue], RPCError>).self) { group in
            func start(_ part: Part) {
                let deadline = part.required ? end : optionalDeadline
                group.addTask {
                    do {
                        return (part, .success(try await answer(part, contactID: contactID, now: now, metadata: metadata, deadline: deadline)))
                    } catch {
                        return (part, .failure(Gateway.rpcError(error)))
                    }
                }
            }
            parts.forEach(start)
            for try await (part, result) in group {
                switch result {
                case .success(let values): view.merge(values) { $1 }
                case .failure(let error) where part.required:
                    group.cancelAll()
                    throw error
                case .failure(let error) where error.code == .unimplemented && part.hasFallback:
                    Self.legacyParts(contactID: contactID, now: now).filter { $0.upstream == part.upstream }.forEach(start)
                case .failure(let error) where error.code == .notFound:
                    // The service holds nothing about the person: organization answers NOT_FOUND for a contact its
                    // copy of the contacts feed has not brought yet (one created a moment ago), so its lists are empty.
                    if part.method == "GetContactSummary" {
                        view.merge(try Self.emptySummary(of: part.upstream)) { $1 }
                    } else {
                        Self.apply(part, .object([:]), to: &view)
                    }
                case .failure(let error):
                    failures += part.fills.map { Self.failure(key: $0, part, error) }
                }
            }
        }
        // A fallback's memberships come without their organizations: one batch call for the names.
        if view["organizationNames"] == nil, case .json(.array(let memberships))? = view["memberships"] {
            var ids: [String] = []
            for case .object(let m) in memberships {
                if case .string(let id)? = m["organizationId"], !ids.contains(id) { ids.append(id) }
            }
            if !ids.isEmpty {
                let part = Part(
                    key: "organizations", upstream: "organization", service: "switchboard.organization.v1.OrganizationService",
                    method: "BatchGetOrganizations", request: .object(["ids": .array(ids.map(JSON.string))]), required: false,
                    fills: ["organizationNames"])
                do {
                    let response = try await call(part, metadata: metadata, deadline: end)
                    var names: [String: JSON] = [:]
                    if case .object(let fields) = response, case .array(let organizations)? = fields["organizations"] {
                        for case .object(let o) in organizations {
                            if case .string(let id)? = o["id"] { names[id] = o["name"] ?? .string("") }
                        }
                    }
                    view["organizationNames"] = .json(.object(names))
                } catch {
                    failures.append(Self.failure(key: part.key, part, Gateway.rpcError(error)))
                }
            }
        }
        view["partialFailures"] = .json(.array(failures))
        return Self.render(view)
    }

    /// A `partialFailures` entry: the view's key `key` is missing because `part` failed.
    private static func failure(key: String, _ part: Part, _ error: RPCError) -> JSON {
        .object([
            "part": .string(key), "service": .string(part.upstream), "method": .string(part.method),
            "code": .string(Self.codeName(error.code)), "message": .string(error.message),
        ])
    }

    static func codeName(_ code: StatusCode) -> String {
        let names = [
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
            "UNAUTHENTICATED",
        ]
        return code.rawValue >= 0 && code.rawValue < names.count ? names[code.rawValue] : "UNKNOWN"
    }

    /// A part's answer as the view's keys: the contact and the summaries typed, written as JSON text straight from their
    /// messages; a list RPC of the fallback through its JSON value.
    private func answer(
        _ part: Part, contactID: String, now: Date, metadata: Metadata, deadline: ContinuousClock.Instant
    ) async throws -> [String: ViewValue] {
        let (client, route, options) = try prepare(part, metadata: metadata, deadline: deadline)
        let method = route.descriptor
        switch (part.upstream, part.method) {
        case ("contacts", "GetContact"):
            var request = Switchboard_Contacts_V1_GetContactRequest()
            request.id = contactID
            let contact: Switchboard_Contacts_V1_Contact = try await client.unary(method, request, options: options)
            return ["contact": .text(try contact.protoJSONText())]
        case ("organization", "GetContactSummary"):
            var request = Switchboard_Organization_V1_GetContactSummaryRequest()
            request.contactId = contactID
            request.pageSize = Int32(Self.pageSize)
            let summary: Switchboard_Organization_V1_ContactSummary = try await client.unary(method, request, options: options)
            return try Self.view(summary)
        case ("communication", "GetContactSummary"):
            var request = Switchboard_Communication_V1_GetContactSummaryRequest()
            request.contactId = contactID
            request.pageSize = Int32(Self.pageSize)
            let summary: Switchboard_Communication_V1_ContactSummary = try await client.unary(method, request, options: options)
            return try Self.view(summary)
        case ("collaboration", "GetContactSummary"):
            var request = Switchboard_Collaboration_V1_GetContactSummaryRequest()
            request.contactId = contactID
            request.pageSize = Int32(Self.pageSize)
            request.meetingsAfter = now
            let summary: Switchboard_Collaboration_V1_ContactSummary = try await client.unary(method, request, options: options)
            return try Self.view(summary)
        case ("analytics", "GetContactSummary"):
            var request = Switchboard_Analytics_V1_GetContactSummaryRequest()
            request.contactId = contactID
            request.pageSize = Int32(Self.pageSize)
            let summary: Switchboard_Analytics_V1_ContactSummary = try await client.unary(method, request, options: options)
            return try Self.view(summary)
        default:
            var view: [String: ViewValue] = [:]
            Self.apply(part, try await call(part, client: client, route: route, options: options), to: &view)
            return view
        }
    }

    /// The client, route and call options of a part, its timeout what is left of `deadline`.
    private func prepare(
        _ part: Part, metadata: Metadata, deadline: ContinuousClock.Instant
    ) throws -> (RPCClient, Route, CallOptions) {
        guard let channel = gateway.channels[part.upstream] else {
            throw RPCError(code: .unavailable, message: "\(part.upstream) is not configured")
        }
        // Looked up in the route table, built once (a search of every method and a template parse per call cost 5 %
        // of the gateway's CPU under the overview benchmark).
        guard let route = gateway.routes.route(service: part.service, method: part.method) else {
            throw RPCError(code: .internal, message: "no schema for \(part.service)/\(part.method)")
        }
        let remaining = deadline - .now
        guard remaining > .zero else { throw RPCError(code: .deadlineExceeded, message: "no time left in the request's budget") }
        return (RPCClient(transport: channel), route, CallOptions(metadata: metadata, timeout: remaining))
    }

    /// A call through the route's JSON mapping (the request built from `part.request`).
    private func call(_ part: Part, client: RPCClient, route: Route, options: CallOptions) async throws -> JSON {
        try await Gateway.unary(route.input, route.output, json: part.request, client: client, route: route, options: options)
    }

    /// The organization names of the fallback's batch call (`BatchGetOrganizations`).
    private func call(_ part: Part, metadata: Metadata, deadline: ContinuousClock.Instant) async throws -> JSON {
        let (client, route, options) = try prepare(part, metadata: metadata, deadline: deadline)
        return try await call(part, client: client, route: route, options: options)
    }
}
