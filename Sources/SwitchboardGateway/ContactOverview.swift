import Foundation
import SwitchboardProtos
import SwitchboardRPC

/// `GET /v1/contacts/{id}:overview`, the contact-360 view: the contact (required) and, in parallel, what the other
/// services hold about the person (optional), then one batch call for the names of the organizations the person
/// belongs to. An optional part that fails or is late is listed in `partialFailures`; the answer never comes later
/// than the request's budget.
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
    }

    static func parts(contactID id: String, now: Date) -> [Part] {
        let page: JSON = .object(["pageSize": .number(10)])
        let subject: JSON = .object(["type": .string("SUBJECT_TYPE_CONTACT"), "id": .string(id)])
        // RFC 3339 as proto3 JSON writes a Timestamp: an ISO8601DateFormatter made per overview (ICU's formatter
        // set up every time) was 14% of the gateway's CPU under the overview benchmark.
        let nowText: JSON = (try? Google_Protobuf_Timestamp(date: now).protoJSON()) ?? .null
        return [
            Part(
                key: "contact", upstream: "contacts", service: "switchboard.contacts.v1.ContactsService", method: "GetContact",
                request: .object(["id": .string(id)]), required: true),
            Part(
                key: "memberships", upstream: "organization", service: "switchboard.organization.v1.OrganizationService",
                method: "ListContactMemberships", request: .object(["contactId": .string(id), "page": page]), required: false),
            Part(
                key: "groups", upstream: "organization", service: "switchboard.organization.v1.OrganizationService",
                method: "ListContactGroups", request: .object(["contactId": .string(id), "page": page]), required: false),
            Part(
                key: "recentInteractions", upstream: "communication", service: "switchboard.communication.v1.CommunicationService",
                method: "ListInteractions", request: .object(["contactId": .string(id), "page": page]), required: false),
            Part(
                key: "consents", upstream: "communication", service: "switchboard.communication.v1.CommunicationService",
                method: "ListConsentHistory", request: .object(["contactId": .string(id), "page": page]), required: false),
            Part(
                key: "notes", upstream: "collaboration", service: "switchboard.collaboration.v1.CollaborationService",
                method: "ListNotes", request: .object(["subject": subject, "page": page]), required: false),
            Part(
                key: "files", upstream: "collaboration", service: "switchboard.collaboration.v1.CollaborationService",
                method: "ListFiles", request: .object(["subject": subject, "page": page]), required: false),
            Part(
                key: "upcomingMeetings", upstream: "collaboration", service: "switchboard.collaboration.v1.CollaborationService",
                method: "ListMeetings", request: .object(["contactId": .string(id), "timeMin": nowText, "page": page]),
                required: false),
            Part(
                key: "metrics", upstream: "analytics", service: "switchboard.analytics.v1.AnalyticsService", method: "GetContactMetrics",
                request: .object(["contactId": .string(id)]), required: false),
            Part(
                key: "timeline", upstream: "analytics", service: "switchboard.analytics.v1.AnalyticsService", method: "GetTimeline",
                request: .object(["subjectType": .string("SUBJECT_TYPE_CONTACT"), "subjectId": .string(id), "page": page]), required: false),
        ]
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
        // The batch call for names needs a slice of the budget after the parallel calls.
        let namesReserve = min(budget / 5, .milliseconds(200))
        let optionalDeadline = min(end - namesReserve, start + gateway.configuration.overviewPartTimeout)
        // A service the gateway has no address for is left out of the view (a deployment without it), not a failure.
        let parts = Self.parts(contactID: contactID, now: Date()).filter { $0.required || gateway.channels[$0.upstream] != nil }
        var results: [String: JSON] = [:]
        var failures: [JSON] = []
        try await withThrowingTaskGroup(of: (Part, Result<JSON, RPCError>).self) { group in
            for part in parts {
                let deadline = part.required ? end : optionalDeadline
                group.addTask {
                    do {
                        return (part, .success(try await call(part, metadata: metadata, deadline: deadline)))
                    } catch {
                        return (part, .failure(Gateway.rpcError(error)))
                    }
                }
            }
            for try await (part, result) in group {
                switch result {
                case .success(let json): results[part.key] = json
                case .failure(let error) where part.required:
                    group.cancelAll()
                    throw error
                case .failure(let error):
                    failures.append(Self.failure(part, error))
                }
            }
        }
        var view: [String: JSON] = ["contact": results["contact"] ?? .null]
        func list(_ key: String, _ field: String) {
            if case .object(let fields)? = results[key] { view[key] = fields[field] ?? .array([]) }
        }
        list("memberships", "memberships")
        list("groups", "groups")
        list("recentInteractions", "interactions")
        list("consents", "records")
        list("notes", "notes")
        list("files", "files")
        list("upcomingMeetings", "meetings")
        list("timeline", "entries")
        if let metrics = results["metrics"] { view["metrics"] = metrics }
        // One batch call for the names of the person's organizations.
        if case .array(let memberships)? = view["memberships"] {
            var ids: [String] = []
            for case .object(let m) in memberships {
                if case .string(let id)? = m["organizationId"], !ids.contains(id) { ids.append(id) }
            }
            if !ids.isEmpty {
                let part = Part(
                    key: "organizations", upstream: "organization", service: "switchboard.organization.v1.OrganizationService",
                    method: "BatchGetOrganizations", request: .object(["ids": .array(ids.map(JSON.string))]), required: false)
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
                    failures.append(Self.failure(part, Gateway.rpcError(error)))
                }
            }
        }
        view["partialFailures"] = .array(failures)
        return .object(view)
    }

    private static func failure(_ part: Part, _ error: RPCError) -> JSON {
        .object([
            "part": .string(part.key), "service": .string(part.upstream), "method": .string(part.method),
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
