import Foundation
import NIOHTTP1
import SwitchboardProtos
import SwitchboardRPC
import Testing

@testable import SwitchboardGateway

/// The gateway's logic without I/O: templates, routing, request mapping, rate limits, status mapping, OpenAPI.
@Suite("Gateway logic")
struct GatewayUnitTests {
    @Test("path templates: literals, variables, dotted fields, ** and custom verbs")
    func templates() throws {
        func match(_ template: PathTemplate, _ path: String) -> [(fieldPath: [String], value: String)]? {
            let (parts, verb) = PathTemplate.split(Substring(path))
            return template.match(parts, verb: verb)
        }
        let get = try PathTemplate("/v1/contacts/{id}")
        #expect(match(get, "/v1/contacts/abc")?.first?.value == "abc")
        #expect(match(get, "/v1/contacts") == nil)
        #expect(match(get, "/v1/contacts/a/b") == nil)
        #expect(match(get, "/v1/contacts/a%2Fb")?.first?.value == "a/b")
        #expect(match(get, "/v1/contacts/abc:tree") == nil)
        #expect(match(get, "/v1/contacts/a%3Ab")?.first?.value == "a:b")
        let verb = try PathTemplate("/v1/contacts/{id}:undelete")
        #expect(verb.verb == "undelete")
        #expect(match(verb, "/v1/contacts/x:undelete")?.first?.value == "x")
        #expect(match(verb, "/v1/contacts/x") == nil)
        #expect(match(verb, "/v1/contacts/x:undeletex") == nil)
        let nested = try PathTemplate("/v1/contacts/{contact.id}")
        #expect(match(nested, "/v1/contacts/q")?.first?.fieldPath == ["contact", "id"])
        let rest = try PathTemplate("/v1/{name=files/**}")
        #expect(match(rest, "/v1/files/a/b")?.first?.value == "files/a/b")
        #expect(throws: PathTemplate.ParseError.self) { try PathTemplate("v1/x") }
        #expect(throws: PathTemplate.ParseError.self) { try PathTemplate("/v1/{id") }
    }

    @Test("a request path splits at every slash byte, and its verb after the last segment's last colon")
    func pathSplit() {
        func split(_ path: String) -> ([String], String) {
            let (parts, verb) = PathTemplate.split(Substring(path))
            return (parts.map(String.init), String(verb))
        }
        #expect(split("/v1/contacts/abc") == (["v1", "contacts", "abc"], ""))
        #expect(split("/v1/contacts/a:b:undelete") == (["v1", "contacts", "a:b"], "undelete"))
        #expect(split("/v1/a:b/c") == (["v1", "a:b", "c"], ""))
        #expect(split("/v1/contacts/") == (["v1", "contacts", ""], ""))
        #expect(split("/") == ([""], ""))
        #expect(split("") == ([""], ""))
        #expect(split("//x:") == (["", "x"], ""))
        #expect(split("é/x") == (["é", "x"], ""))
        // A combining mark after a slash forms one character with it; the path is still cut at the slash's byte.
        #expect(split("/v1/\u{301}é/😀:v\u{301}") == (["v1", "\u{301}é", "😀"], "v\u{301}"))
    }

    @Test("routing prefers literals over variables and reports the verbs a path allows")
    func routing() throws {
        let table = try RouteTable(upstreams: ["contacts", "organization", "communication", "collaboration"])
        guard case .found(let search, _) = table.match(verb: "GET", path: "/v1/contacts:search") else {
            Issue.record("no route")
            return
        }
        #expect(search.descriptor.method == "SearchContacts")
        guard case .found(let get, let values) = table.match(verb: "GET", path: "/v1/contacts/abc") else {
            Issue.record("no route")
            return
        }
        #expect(get.descriptor.method == "GetContact")
        #expect(values.first?.value == "abc")
        guard case .found(let memberships, _) = table.match(verb: "GET", path: "/v1/contacts/abc/memberships") else {
            Issue.record("no route")
            return
        }
        #expect(memberships.descriptor.service == "switchboard.organization.v1.OrganizationService")
        guard case .wrongVerb(let allowed) = table.match(verb: "PUT", path: "/v1/contacts") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == ["GET", "POST"])
        guard case .none = table.match(verb: "GET", path: "/v2/contacts") else {
            Issue.record("expected no route")
            return
        }
        // A verb route is never taken for the plain resource route, whatever the schema's order.
        guard case .found(let tree, _) = table.match(verb: "GET", path: "/v1/organizations/x:tree") else {
            Issue.record("no route for :tree")
            return
        }
        #expect(tree.descriptor.method == "StreamOrganizationTree")
        // Every binding of every served RPC is reachable: a sample path of each (variables filled) reaches its own RPC.
        let all = try RouteTable(upstreams: ["contacts", "organization", "communication", "collaboration", "analytics"])
        for method in SwitchboardHTTPSchema.methods where RouteTable.upstream(ofService: method.descriptor.service) != nil {
            for binding in method.bindings {
                var sample = ""
                var depth = 0
                for c in binding.path {
                    if c == "{" {
                        depth += 1
                        if depth == 1 { sample += "x1" }
                    } else if c == "}" {
                        depth -= 1
                    } else if depth == 0 {
                        sample.append(c)
                    }
                }
                guard case .found(let route, _) = all.match(verb: binding.verb, path: Substring(sample)) else {
                    Issue.record("\(binding.verb) \(sample) reaches nothing")
                    continue
                }
                #expect(route.descriptor == method.descriptor, "\(binding.verb) \(sample) reached \(route.descriptor), not \(method.descriptor)")
            }
        }
        // Every route knows its role at the edge: an RPC the role tables leave out is one every service refuses.
        let unlisted = try RouteTable(upstreams: Set(GatewayConfiguration.services.map(\.name))).routes.filter { $0.requiredRole == nil }
        #expect(unlisted.isEmpty, "\(unlisted.map(\.descriptor.path))")
        // Without an upstream, a service's routes are left out.
        #expect(try RouteTable(upstreams: ["contacts"]).routes.allSatisfy { $0.upstream == "contacts" })
    }

    private func input(
        _ verb: String, _ path: String, query: [(String, String)] = [], body: JSON? = nil, headers: [String: String] = [:]
    ) throws
        -> RequestMapping.Input
    {
        let table = try RouteTable(upstreams: ["contacts", "organization", "communication", "collaboration"])
        guard case .found(let route, let values) = table.match(verb: verb, path: Substring(path)) else {
            throw RPCError(code: .notFound, message: path)
        }
        return .init(
            route: route, pathValues: values, query: query, body: body, idempotencyKey: headers["Idempotency-Key"], ifMatch: headers["If-Match"],
            ifNoneMatch: headers["If-None-Match"])
    }

    @Test("query parameters become typed JSON: nested, repeated, booleans, enums, either spelling")
    func queryMapping() throws {
        let json = try RequestMapping().requestJSON(
            try input(
                "GET", "/v1/contacts",
                query: [
                    ("page.page_size", "5"), ("statuses", "CONTACT_STATUS_CUSTOMER"), ("statuses", "CONTACT_STATUS_LEAD"), ("includeDeleted", "true"),
                ]))
        guard case .object(let o) = json else {
            Issue.record("not an object")
            return
        }
        #expect(o["page"] == .object(["pageSize": .string("5")]))
        #expect(o["statuses"] == .array([.string("CONTACT_STATUS_CUSTOMER"), .string("CONTACT_STATUS_LEAD")]))
        #expect(o["includeDeleted"] == .bool(true))
        let request = try Switchboard_Contacts_V1_ListContactsRequest(protoJSON: json)
        #expect(request.page?.pageSize == 5)
        #expect(request.includeDeleted)

        #expect(throws: GatewayError.self) { try RequestMapping().requestJSON(try input("GET", "/v1/contacts", query: [("nope", "1")])) }
        #expect(throws: GatewayError.self) { try RequestMapping().requestJSON(try input("GET", "/v1/contacts", query: [("includeDeleted", "yes")])) }
        #expect(throws: GatewayError.self) { try RequestMapping().requestJSON(try input("GET", "/v1/contacts", query: [("page", "1")])) }
        #expect(throws: GatewayError.self) {
            try RequestMapping().requestJSON(try input("GET", "/v1/contacts", query: Array(repeating: ("tag", "x"), count: 300)))
        }
        // The body carries the whole request of a body:"*" rule: query parameters are refused, not dropped.
        #expect(throws: GatewayError.self) {
            try RequestMapping().requestJSON(try input("POST", "/v1/contacts:batchCreate", query: [("allOrNothing", "true")], body: .object([:])))
        }
    }

    @Test("headers and PATCH: Idempotency-Key → request_id, If-Match → etag, the body's fields → update_mask")
    func headerMapping() throws {
        let json = try RequestMapping().requestJSON(
            try input(
                "PATCH", "/v1/contacts/c1", body: .object(["name": .object(["family": .string("B")]), "tags": .array([])]),
                headers: ["Idempotency-Key": "k1", "If-Match": "W/\"e7\""]))
        let request = try Switchboard_Contacts_V1_UpdateContactRequest(protoJSON: json)
        #expect(request.contact?.id == "c1")
        #expect(request.requestId == "k1")
        #expect(request.etag == "\"e7\"")
        #expect(request.updateMask?.paths == ["name.family", "tags"])
        // A write whose RPC has no etag refuses If-Match, which would promise a condition it cannot keep. Idempotency-Key
        // without a request id is let through: the unary RPCs without one are reads or idempotent writes.
        _ = try RequestMapping().requestJSON(try input("POST", "/v1/templates/t1:render", body: .object([:]), headers: ["Idempotency-Key": "k2"]))
        let preferences = try input("PUT", "/v1/notificationPreferences", body: .object([:]), headers: ["If-Match": "\"3\""])
        do {
            _ = try RequestMapping().requestJSON(preferences)
            Issue.record("If-Match on a route without an etag was accepted")
        } catch let error as GatewayError {
            #expect(error.rpcError.message.contains("cannot be made conditional: it takes no If-Match"), "\(error)")
        }
        // Without the headers both are fine, and a read ignores them (it is idempotent and unconditional already).
        _ = try RequestMapping().requestJSON(try input("POST", "/v1/templates/t1:render", body: .object([:])))
        _ = try RequestMapping().requestJSON(try input("GET", "/v1/contacts/c1", headers: ["Idempotency-Key": "k3", "If-Match": "\"1\""]))
        // A streamed request (the body's NDJSON lines) takes no query parameter and neither header: each refused, named.
        let importRoute = try input("POST", "/v1/contacts:import").route
        #expect(Gateway.parameterNames("dryRun=true&b%20c=1&dryRun=false&flag") == ["b c", "dryRun", "flag"])
        #expect(throws: GatewayError.self) { try Gateway.streamedBodyOnly(importRoute, query: "dryRun=true", HTTPHeaders()) }
        #expect(throws: GatewayError.self) { try Gateway.streamedBodyOnly(importRoute, query: "", HTTPHeaders([("Idempotency-Key", "k")])) }
        #expect(throws: GatewayError.self) { try Gateway.streamedBodyOnly(importRoute, query: "", HTTPHeaders([("If-Match", "\"1\"")])) }
        try Gateway.streamedBodyOnly(importRoute, query: "", HTTPHeaders())
        // Custom fields are masked key by key (a null removes its key), so the others stay; an empty object clears them
        // all; a key the JSON mask cannot spell is refused, named.
        let custom = try RequestMapping().requestJSON(
            try input("PATCH", "/v1/contacts/c1", body: .object(["customFields": .object(["tier_level": .string("gold"), "nick": .null])])))
        #expect(
            try Switchboard_Contacts_V1_UpdateContactRequest(protoJSON: custom).updateMask?.paths == [
                "custom_fields.nick", "custom_fields.tier_level",
            ])
        let cleared = try RequestMapping().requestJSON(try input("PATCH", "/v1/contacts/c1", body: .object(["customFields": .object([:])])))
        #expect(try Switchboard_Contacts_V1_UpdateContactRequest(protoJSON: cleared).updateMask?.paths == ["custom_fields"])
        do {
            _ = try RequestMapping().requestJSON(
                try input("PATCH", "/v1/contacts/c1", body: .object(["customFields": .object(["line_2": .string("x")])])))
            Issue.record("a key the mask cannot spell was accepted")
        } catch let error as GatewayError {
            #expect(error.rpcError.message.contains("customFields.line_2 cannot be named in a JSON field mask"), "\(error)")
        }
        #expect(RequestMapping.maskCamelCase("tier_level") == "tierLevel" && RequestMapping.maskCamelCase("x9") == "x9")
        #expect(
            [RequestMapping.maskCamelCase("line_2"), RequestMapping.maskCamelCase("a_"), RequestMapping.maskCamelCase("a__b")] == [nil, nil, nil])
        // A field of one value given twice, in either spelling, is refused; a repeated field takes every value.
        #expect(throws: GatewayError.self) {
            try RequestMapping().requestJSON(try input("GET", "/v1/contacts", query: [("ownerId", "a"), ("owner_id", "b")]))
        }
        #expect(throws: GatewayError.self) {
            try RequestMapping().requestJSON(try input("GET", "/v1/contacts", query: [("tag", "a"), ("tag", "a")]))
        }
        // A query parameter may not override a path variable, in either spelling.
        #expect(throws: GatewayError.self) {
            try RequestMapping().requestJSON(try input("GET", "/v1/contacts/a/memberships", query: [("contactId", "b")]))
        }
        #expect(throws: GatewayError.self) {
            try RequestMapping().requestJSON(try input("GET", "/v1/contacts/a/memberships", query: [("contact_id", "b")]))
        }
        // If-Match: one entity tag (W/ dropped), or * (unconditional); a list or an unquoted tag is a 400.
        #expect(try RequestMapping.ifMatchTag(" \"3\" ") == "\"3\"" && RequestMapping.ifMatchTag("W/\"3\"") == "\"3\"")
        #expect(try RequestMapping.ifMatchTag(" * ") == nil)
        for bad in ["1", "\"1\", \"2\"", "\"1", "", "\"1\"x", "W/1"] {
            #expect(throws: GatewayError.self, "\(bad)") { try RequestMapping.ifMatchTag(bad) }
        }
        // If-None-Match: *, or any tag of a list equal by weak comparison.
        #expect(try RequestMapping.noneMatch("*", current: "\"3\""))
        #expect(try RequestMapping.noneMatch("\"1\", W/\"3\"", current: "\"3\""))
        #expect(try !RequestMapping.noneMatch("\"1\", \"2\"", current: "\"3\""))
        #expect(throws: GatewayError.self) { try RequestMapping.noneMatch("3", current: "\"3\"") }
        #expect(throws: GatewayError.self) {
            try RequestMapping().requestJSON(
                try input("PATCH", "/v1/contacts/c1", body: .object(["tags": .array([])]), headers: ["If-None-Match": "*"]))
        }
        #expect(RequestMapping.entityTag(" \"abc\" ") == "\"abc\"")
        #expect(RequestMapping.etagHeader("\"3\"") == "\"3\"")
        #expect(RequestMapping.etagHeader("3") == "\"3\"")
    }

    @Test("rate limits: a burst, then refusals with the wait, refilled by time; tenants apart; memory bounded")
    func rateLimiter() {
        let limiter = RateLimiter(limits: [.read: .init(perSecond: 2, burst: 3)], maxBuckets: 10)
        let t0 = ContinuousClock.now
        #expect((0..<3).allSatisfy { _ in limiter.acquire(tenant: "a", routeClass: .read, now: t0) == nil })
        let wait = limiter.acquire(tenant: "a", routeClass: .read, now: t0)
        #expect(wait != nil && wait! <= .milliseconds(500))
        #expect(limiter.acquire(tenant: "b", routeClass: .read, now: t0) == nil)
        #expect(limiter.acquire(tenant: "a", routeClass: .write, now: t0) == nil)
        #expect(limiter.acquire(tenant: "a", routeClass: .read, now: t0 + .milliseconds(600)) == nil)
        for i in 0..<1000 { _ = limiter.acquire(tenant: "t\(i)", routeClass: .read, now: t0 + .seconds(10)) }
        #expect(limiter.bucketCount <= 10)
    }

    @Test("gRPC codes map to HTTP statuses as grpc-gateway maps them; ABORTED after If-Match is 412")
    func statusMapping() {
        #expect(HTTPErrorMapping.httpStatus(.notFound) == 404)
        #expect(HTTPErrorMapping.httpStatus(.alreadyExists) == 409)
        #expect(HTTPErrorMapping.httpStatus(.aborted) == 409)
        #expect(HTTPErrorMapping.httpStatus(.aborted, conditional: true) == 412)
        #expect(HTTPErrorMapping.httpStatus(.resourceExhausted) == 429)
        #expect(HTTPErrorMapping.httpStatus(.unavailable) == 503)
        #expect(HTTPErrorMapping.httpStatus(.deadlineExceeded) == 504)
        #expect(HTTPErrorMapping.httpStatus(.unauthenticated) == 401)
        #expect(HTTPErrorMapping.httpStatus(.permissionDenied) == 403)
        #expect(HTTPErrorMapping.httpStatus(.invalidArgument) == 400)
        #expect(HTTPErrorMapping.httpStatus(.internal) == 500)
        let json = HTTPErrorMapping.statusJSON(RPCError.invalidArgument(violations: [FieldViolation(field: "a.b", description: "bad")]))
        guard case .object(let o) = json, case .array(let details)? = o["details"], case .object(let detail)? = details.first else {
            Issue.record("no details in \(json.text)")
            return
        }
        #expect(o["code"] == .number(3))
        #expect(detail["@type"] == .string("type.googleapis.com/google.rpc.BadRequest"))
        #expect(Gateway.parseTimeout("250ms") == .milliseconds(250))
        #expect(Gateway.parseTimeout("2s") == .seconds(2))
        #expect(Gateway.parseTimeout("1.5") == .milliseconds(1500))
        #expect(Gateway.parseTimeout("-1") == nil)
        #expect(Gateway.parseTimeout("1e308") == nil)
    }

    @Test("the overview's summaries give the same view as the list RPCs of a service without them, full and empty")
    func overviewSummaryText() throws {
        let lists = Dictionary(uniqueKeysWithValues: ContactOverview.legacyParts(contactID: "c", now: Date()).map { ($0.key, $0) })
        /// The summary's keys, written from its messages, against what the fallback's list RPCs
        /// (``ContactOverview/apply(_:_:to:)``) make of the same lists' answers; the organization names, which the
        /// fallback reads with a call of its own, are checked apart.
        func same(_ typed: [String: ContactOverview.ViewValue], _ answers: [String: (any ProtoJSONMessage)?]) throws {
            var viaLists: [String: ContactOverview.ViewValue] = [:]
            for (key, answer) in answers {
                // A service answers an empty list as an empty message.
                ContactOverview.apply(try #require(lists[key]), try answer?.protoJSON() ?? .object([:]), to: &viaLists)
            }
            #expect(Set(typed.keys).subtracting(["organizationNames"]) == Set(viaLists.keys))
            // The same text, byte for byte: the writer promises the text of the JSON value.
            for (key, value) in viaLists { #expect(typed[key]?.text == value.text, "\(key)") }
        }
        var organization = Switchboard_Organization_V1_ContactSummary()
        try same(ContactOverview.view(organization), ["memberships": organization.memberships, "groups": organization.groups])
        var membership = Switchboard_Organization_V1_Membership()
        membership.id = "m1"
        membership.organizationId = "o1"
        var memberships = Switchboard_Organization_V1_ListContactMembershipsResponse()
        memberships.memberships = [membership, membership]
        organization.memberships = memberships
        var group = Switchboard_Organization_V1_Group()
        group.name = "Europe \"quoted\" ☺"
        var groups = Switchboard_Organization_V1_ListContactGroupsResponse()
        groups.groups = [group]
        organization.groups = groups
        var acme = Switchboard_Organization_V1_Organization()
        acme.id = "o1"
        acme.name = "Acme"
        organization.organizations = [acme]
        let organizationView = try ContactOverview.view(organization)
        try same(organizationView, ["memberships": organization.memberships, "groups": organization.groups])
        #expect(organizationView["organizationNames"] == .json(.object(["o1": .string("Acme")])))
        // A service that does not know the person: its lists empty, and no names.
        let unknown = try ContactOverview.emptySummary(of: "organization")
        #expect(unknown["memberships"] == .text("[]") && unknown["groups"] == .text("[]") && unknown["organizationNames"] == nil)

        var communication = Switchboard_Communication_V1_ContactSummary()
        try same(
            ContactOverview.view(communication),
            [
                "recentInteractions": communication.interactions, "consents": communication.consents,
                "preferences": communication.preferences,
            ])
        var interaction = Switchboard_Communication_V1_Interaction()
        interaction.id = "i1"
        var interactions = Switchboard_Communication_V1_ListInteractionsResponse()
        interactions.interactions = [interaction]
        communication.interactions = interactions
        var consent = Switchboard_Communication_V1_ConsentRecord()
        consent.id = "c1"
        var consents = Switchboard_Communication_V1_ListConsentHistoryResponse()
        consents.records = [consent]
        communication.consents = consents
        var preferences = Switchboard_Communication_V1_ContactPreferences()
        preferences.contactId = "c"
        preferences.doNotContact = true
        var quiet = Switchboard_Communication_V1_QuietHours()
        quiet.start = "21:00"
        quiet.end = "08:00"
        preferences.quietHours = quiet
        communication.preferences = preferences
        try same(
            ContactOverview.view(communication),
            [
                "recentInteractions": communication.interactions, "consents": communication.consents,
                "preferences": communication.preferences,
            ])

        var collaboration = Switchboard_Collaboration_V1_ContactSummary()
        try same(
            ContactOverview.view(collaboration),
            ["notes": collaboration.notes, "files": collaboration.files, "upcomingMeetings": collaboration.meetings])
        var note = Switchboard_Collaboration_V1_Note()
        note.body = "line one\nline two"
        var notes = Switchboard_Collaboration_V1_ListNotesResponse()
        notes.notes = [note]
        collaboration.notes = notes
        var meeting = Switchboard_Collaboration_V1_Meeting()
        meeting.title = "Kick-off"
        meeting.startTime = Date(timeIntervalSince1970: 1_790_000_000.5)
        var meetings = Switchboard_Collaboration_V1_ListMeetingsResponse()
        meetings.meetings = [meeting]
        collaboration.meetings = meetings
        collaboration.files = Switchboard_Collaboration_V1_ListFilesResponse()
        try same(
            ContactOverview.view(collaboration),
            ["notes": collaboration.notes, "files": collaboration.files, "upcomingMeetings": collaboration.meetings])

        var analytics = Switchboard_Analytics_V1_ContactSummary()
        try same(ContactOverview.view(analytics), ["metrics": analytics.metrics, "timeline": analytics.timeline])
        var metrics = Switchboard_Analytics_V1_ContactMetrics()
        metrics.contactId = "x"
        metrics.interactions = 3
        analytics.metrics = metrics
        var entry = Switchboard_Analytics_V1_TimelineEntry()
        entry.id = "e1"
        var timeline = Switchboard_Analytics_V1_GetTimelineResponse()
        timeline.entries = [entry, entry]
        analytics.timeline = timeline
        try same(ContactOverview.view(analytics), ["metrics": analytics.metrics, "timeline": analytics.timeline])
        // An empty metrics message is still a metrics object, as the JSON path gives it.
        analytics.metrics = Switchboard_Analytics_V1_ContactMetrics()
        try same(ContactOverview.view(analytics), ["metrics": analytics.metrics, "timeline": analytics.timeline])
    }

    @Test("the overview's text: keys sorted, text values spliced, JSON values written")
    func overviewRender() throws {
        let text = ContactOverview.render([
            "b": .text("[1,2]"), "a": .json(.object(["k": .string("v\"")])), "c": .json(.array([])),
        ])
        #expect(text == #"{"a":{"k":"v\""},"b":[1,2],"c":[]}"#)
        #expect(try JSON.parse(text) == .object(["a": .object(["k": .string("v\"")]), "b": .array([.number(1), .number(2)]), "c": .array([])]))
    }
}
