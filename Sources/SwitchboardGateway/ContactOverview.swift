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

    static func parts(contactID id: String, now: Date) -> [Part] {
        func summary(_ key: String, _ upstream: String, _ service: String, _ extra: [String: JSON] = [:]) -> Part {
            var request: [String: JSON] = ["contactId": .string(id), "pageSize": .number(Double(pageSize))]
            request.merge(extra) { $1 }
            return Part(
                key: key, upstream: upstream, service: service, method: "GetContactSummary", request: .object(request), required: false,
                fills: (legacyKeys[upstream] ?? []) + (upstream == "organization" ? ["organizations"] : []), hasFallback: true)
        }
        return [
            Part(
                key: "contact", upstream: "contacts", service: "switchboard.contacts.v1.ContactsService", method: "GetContact",
                request: .object(["id": .string(id)]), required: true, fills: ["contact"]),
            summary("organization", "organization", "switchboard.organization.v1.OrganizationService"),
            summary("communication", "communication", "switchboard.communication.v1.CommunicationService"),
            summary("collaboration", "collaboration", "switchboard.collaboration.v1.CollaborationService", ["meetingsAfter": timestamp(now)]),
            summary("analytics", "analytics", "switchboard.analytics.v1.AnalyticsService"),
        ]
    }

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

    /// Puts a part's answer into the view.
    static func apply(_ part: Part, _ response: JSON, to view: inout [String: JSON]) {
        guard case .object(let fields) = response else { return }
        /// A list response's entries (proto3 JSON leaves out an empty list, and an empty message).
        func entries(_ list: JSON?, _ field: String) -> JSON {
            if case .object(let inner)? = list { return inner[field] ?? .array([]) }
            return .array([])
        }
        switch part.key {
        case "contact", "metrics":
            view[part.key] = response
        case "organization":
            view["memberships"] = entries(fields["memberships"], "memberships")
            view["groups"] = entries(fields["groups"], "groups")
            var names: [String: JSON] = [:]
            if case .array(let organizations)? = fields["organizations"] {
                for case .object(let o) in organizations {
                    if case .string(let id)? = o["id"] { names[id] = o["name"] ?? .string("") }
                }
            }
            if case .array(let memberships)? = view["memberships"], !memberships.isEmpty { view["organizationNames"] = .object(names) }
        case "communication":
            view["recentInteractions"] = entries(fields["interactions"], "interactions")
            view["consents"] = entries(fields["consents"], "records")
        case "collaboration":
            view["notes"] = entries(fields["notes"], "notes")
            view["files"] = entries(fields["files"], "files")
            view["upcomingMeetings"] = entries(fields["meetings"], "meetings")
        case "analytics":
            view["metrics"] = fields["metrics"] ?? .object([:])
            view["timeline"] = entries(fields["timeline"], "entries")
        default:
            let field = ["recentInteractions": "interactions", "consents": "records", "upcomingMeetings": "meetings", "timeline": "entries"]
            view[part.key] = entries(response, field[part.key] ?? part.key)
        }
    }

    /// Builds the view.
    /// - Parameters:
    ///   - contactID: the contact.
    ///   - metadata: the caller's token and trace headers, forwarded.
    ///   - budget: the request's whole budget.
    /// - Returns: the view as JSON.
    /// - Throws: the contact call's error (a missing contact is 404), or DEADLINE_EXCEEDED.
    func build(contactID: String, metadata: Metadata, budget: Duration) async throws -> JSON {
        let start = ContinuousClock.now
        let end = start + budget
        // A fallback's batch call for names needs a slice of the budget after the parallel calls.
        let namesReserve = min(budget / 5, .milliseconds(200))
        let optionalDeadline = min(end - namesReserve, start + gateway.configuration.overviewPartTimeout)
        // A service the gateway has no address for is left out of the view (a deployment without it), not a failure.
        let now = Date()
        let parts = Self.parts(contactID: contactID, now: now).filter { $0.required || gateway.channels[$0.upstream] != nil }
        var view: [String: JSON] = [:]
        var failures: [JSON] = []
        try await withThrowingTaskGroup(of: (Part, Result<JSON, RPCError>).self) { group in
            func start(_ part: Part) {
                let deadline = part.required ? end : optionalDeadline
                group.addTask {
                    do {
                        return (part, .success(try await call(part, metadata: metadata, deadline: deadline)))
                    } catch {
                        return (part, .failure(Gateway.rpcError(error)))
                    }
                }
            }
            parts.forEach(start)
            for try await (part, result) in group {
                switch result {
                case .success(let json): Self.apply(part, json, to: &view)
                case .failure(let error) where part.required:
                    group.cancelAll()
                    throw error
                case .failure(let error) where error.code == .unimplemented && part.hasFallback:
                    Self.legacyParts(contactID: contactID, now: now).filter { $0.upstream == part.upstream }.forEach(start)
                case .failure(let error) where error.code == .notFound:
                    // The service holds nothing about the person: organization answers NOT_FOUND for a contact its
                    // copy of the contacts feed has not brought yet (one created a moment ago), so its lists are empty.
                    Self.apply(part, .object([:]), to: &view)
                case .failure(let error):
                    failures += part.fills.map { Self.failure(key: $0, part, error) }
                }
            }
        }
        // A fallback's memberships come without their organizations: one batch call for the names.
        if view["organizationNames"] == nil, case .array(let memberships)? = view["memberships"] {
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
                    view["organizationNames"] = .object(names)
                } catch {
                    failures.append(Self.failure(key: part.key, part, Gateway.rpcError(error)))
                }
            }
        }
        view["partialFailures"] = .array(failures)
        return .object(view)
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

    private func call(_ part: Part, metadata: Metadata, deadline: ContinuousClock.Instant) async throws -> JSON {
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
        let options = CallOptions(metadata: metadata, timeout: remaining)
        return try await Gateway.unary(
            route.input, route.output, json: part.request, client: RPCClient(transport: channel), route: route, options: options)
    }
}
