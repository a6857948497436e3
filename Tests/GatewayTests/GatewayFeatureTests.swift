import Crypto
import Foundation
import NIOCore
import NIOPosix
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Synchronization
import Testing

/// Streams, rate limits, the contact overview, client streams and the OpenAPI document, through the gateway.
@Suite("Gateway features", .serialized)
struct GatewayFeatureTests {
    static func tenant() -> String { "gw-" + UUID().uuidString.prefix(8).lowercased() }

    @Test("a server stream arrives as NDJSON lines, or as server-sent events, and ends with an error line, never silently")
    func streams() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        for given in ["One", "Two"] {
            #expect(try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "\#(given)"}}"#, token: token).status == 200)
        }
        // A watch runs until its budget ends: the two changes, then DEADLINE_EXCEEDED as the last line. The budget leaves
        // room for the whole suite's load: at 1.5 s a full run once saw only the deadline line (the changes not yet read).
        let ndjson = try await gw.request("GET", "/v1/changes/contacts?fromSequence=0", token: token, headers: ["grpc-timeout": "4S"])
        #expect(ndjson.status == 200)
        #expect(ndjson.headers["content-type"] == "application/x-ndjson")
        let lines = ndjson.lines
        #expect(lines.count == 3, "\(ndjson.body)")
        #expect(lines.prefix(2).allSatisfy { ($0["result"] as? [String: Any])?["kind"] as? String == "CHANGE_KIND_CREATED" }, "\(ndjson.body)")
        #expect((lines.last?["error"] as? [String: Any])?["code"] as? Int == 4)

        let sse = try await gw.request(
            "GET", "/v1/changes/contacts?fromSequence=0", token: token, headers: ["grpc-timeout": "4S", "Accept": "text/event-stream"])
        #expect(sse.headers["content-type"] == "text/event-stream")
        #expect(sse.body.components(separatedBy: "data: ").count - 1 == 3, "\(sse.body)")
        #expect(sse.body.contains("event: error\ndata: {"))
        // Each change is an event whose id is its sequence; an EventSource reconnecting with Last-Event-ID resumes after
        // it, whatever the URL says.
        let ids = sse.body.split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
        #expect(ids.count == 2 && ids.allSatisfy { Int64($0) != nil }, "\(sse.body)")
        let resumed = try await gw.request(
            "GET", "/v1/changes/contacts?fromSequence=0", token: token,
            headers: ["grpc-timeout": "3S", "Accept": "text/event-stream", "Last-Event-ID": ids.first ?? ""])
        let resumedIDs = resumed.body.split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
        #expect(resumedIDs == Array(ids.dropFirst()), "\(resumed.body)")
        let badID = try await gw.request(
            "GET", "/v1/changes/contacts", token: token, headers: ["grpc-timeout": "3S", "Accept": "text/event-stream", "Last-Event-ID": "x"])
        #expect(badID.status == 400 && badID.body.contains("Last-Event-ID"), "\(badID.body)")

        // A stream that fails at once gets the error's own HTTP status (the head waits a second for it). On a host so
        // loaded that the upstream's answer takes longer, the head is out and the error ends the stream as a line:
        // either way the client reads the status code 3 and the field.
        let bad = try await gw.request("GET", "/v1/organizations/not-a-uuid:tree", token: token, headers: ["grpc-timeout": "3S"])
        if bad.status == 200 {
            #expect((bad.lines.last?["error"] as? [String: Any])?["code"] as? Int == 3, "\(bad.body)")
        } else {
            #expect(bad.status == 400, "\(bad.status) \(bad.body)")
            #expect(bad.json["code"] as? Int == 3)
        }
    }

    @Test("a connection idle between requests is closed; a quiet stream's connection is not")
    func idleConnections() async throws {
        let gw = try await GatewayHarness.start(idleTimeout: .milliseconds(500))
        defer { Task { await gw.stop() } }
        let idle = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: gw.port).get()
        let closed = try await eventually(timeout: .seconds(5)) { !idle.isActive }
        #expect(closed)
        // A watch with nothing to send for two seconds keeps its connection until its own deadline.
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let watch = try await gw.request("GET", "/v1/changes/contacts?fromSequence=0", token: token, headers: ["grpc-timeout": "2S"])
        #expect(watch.status == 200)
        #expect((watch.lines.last?["error"] as? [String: Any])?["code"] as? Int == 4, "\(watch.body)")
    }

    @Test("a file goes up as NDJSON request lines (client stream) and comes back as a stream")
    func clientStream() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let contact = try #require(
            try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "F"}}"#, token: token).json["id"] as? String)
        let content = Array("hello, gateway\n".utf8)
        let sha = sha256Hex(content)
        let metadata =
            #"{"metadata": {"file": {"name": "hello.txt", "contentType": "text/plain", "sizeBytes": "\#(content.count)", "sha256": "\#(sha)", "subjects": [{"type": "SUBJECT_TYPE_CONTACT", "id": "\#(contact)"}]}}}"#
        let chunk = #"{"chunk": "\#(Data(content).base64EncodedString())"}"#
        let upload = try await gw.request("POST", "/v1/files", body: metadata + "\n" + chunk + "\n", token: token)
        #expect(upload.status == 200, "\(upload.body)")
        let id = try #require(upload.json["id"] as? String, "\(upload.body)")
        let download = try await gw.request("GET", "/v1/files/\(id):download", token: token)
        #expect(download.status == 200)
        var bytes: [UInt8] = []
        for line in download.lines {
            if let result = line["result"] as? [String: Any], let chunk = result["data"] as? String, let data = Data(base64Encoded: chunk) {
                bytes += data
            }
        }
        #expect(bytes == content, "\(download.body)")
    }

    @Test("an import goes up as NDJSON lines (options, then chunks) and its row results stream back; the export streams chunks")
    func importAndExport() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let csv = Array("name.given,emails\nAda,ada@example.com\nBad,not-an-address\n".utf8)
        let options = #"{"options": {"format": "CONTACT_FILE_FORMAT_CSV", "importId": "gw-1"}}"#
        let chunks = [csv.prefix(20), csv.dropFirst(20)].map { #"{"chunk": "\#(Data($0).base64EncodedString())"}"# }
        let imported = try await gw.request("POST", "/v1/contacts:import", body: ([options] + chunks).joined(separator: "\n") + "\n", token: token)
        #expect(imported.status == 200, "\(imported.body)")
        #expect(imported.headers["content-type"] == "application/x-ndjson")
        let results = imported.lines.compactMap { $0["result"] as? [String: Any] }.flatMap { ($0["results"] as? [[String: Any]]) ?? [] }
        #expect(results.map { $0["outcome"] as? String } == ["IMPORT_OUTCOME_CREATED", "IMPORT_OUTCOME_INVALID"], "\(imported.body)")
        let exported = try await gw.request("POST", "/v1/contacts:export", body: #"{"format": "CONTACT_FILE_FORMAT_JSON_LINES"}"#, token: token)
        #expect(exported.status == 200, "\(exported.body)")
        var bytes = Data()
        for line in exported.lines {
            if let result = line["result"] as? [String: Any], let chunk = result["chunk"] as? String, let data = Data(base64Encoded: chunk) {
                bytes += data
            }
        }
        #expect(String(decoding: bytes, as: UTF8.self).contains("ada@example.com"), "\(exported.body)")
    }

    @Test("rate limits are per tenant: one tenant drawing its bucket empty gets 429 with Retry-After, another's requests among its own all pass")
    func rateLimits() async throws {
        let gw = try await GatewayHarness.start(environment: ["SWITCHBOARD_GATEWAY_READ_RATE": "1", "SWITCHBOARD_GATEWAY_READ_BURST": "3"])
        defer { Task { await gw.stop() } }
        let hammer = try await GatewayHarness.token(tenant: Self.tenant())
        let quiet = try await GatewayHarness.token(tenant: Self.tenant())
        // Twelve requests at once: far more than the burst of 3 plus what 1/s refills while they arrive, however slow
        // the machine (sent one after another under full-suite load, each took over a second and the bucket refilled).
        // The quiet tenant's three (its burst) go out among them: each is answered, none refused for the other's load.
        let all = try await withThrowingTaskGroup(of: (quiet: Bool, response: GatewayHarness.Response).self) { group in
            for i in 0..<15 {
                let isQuiet = i % 5 == 2
                group.addTask { (isQuiet, try await gw.request("GET", "/v1/contacts", token: isQuiet ? quiet : hammer)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(all.filter(\.quiet).map(\.response.status) == [200, 200, 200], "\(all.filter(\.quiet).map(\.response.body))")
        let responses = all.filter { !$0.quiet }.map(\.response)
        let statuses = responses.map(\.status)
        #expect(statuses.filter { $0 == 200 }.count >= 3, "\(statuses)")
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 429 }, "\(statuses)")
        let limited = try #require(responses.first { $0.status == 429 }, "\(statuses)")
        #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 >= 1)
        #expect(limited.json["code"] as? Int == 8)
    }

    @Test("the contact overview gathers every service's parts and the organization names in one request")
    func overview() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let contact = try #require(
            try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "Olga"}}"#, token: token).json["id"] as? String)
        let org = try #require(try await gw.request("POST", "/v1/organizations", body: #"{"name": "Acme"}"#, token: token).json["id"] as? String)
        // The organization service learns of the contact from the contacts feed.
        let membershipCreated = try await eventually {
            try await gw.request(
                "POST", "/v1/memberships", body: #"{"contactId": "\#(contact)", "organizationId": "\#(org)", "title": "CTO"}"#, token: token,
                headers: ["Idempotency-Key": "m-\(contact)"]
            ).status == 200
        }
        #expect(membershipCreated)
        let note = try await gw.request(
            "POST", "/v1/notes", body: #"{"subjects": [{"type": "SUBJECT_TYPE_CONTACT", "id": "\#(contact)"}], "body": "met at the fair"}"#,
            token: token)
        #expect(note.status == 200, "\(note.body)")
        let interaction = try await gw.request(
            "POST", "/v1/interactions",
            body: #"{"kind": "INTERACTION_KIND_CALL", "contactIds": ["\#(contact)"], "subject": "intro", "occurredAt": "2026-12-01T10:00:00Z"}"#,
            token: token)
        #expect(interaction.status == 200, "\(interaction.body)")

        let view = try await gw.request("GET", "/v1/contacts/\(contact):overview", token: token)
        #expect(view.status == 200, "\(view.body)")
        #expect((view.json["contact"] as? [String: Any])?["id"] as? String == contact)
        #expect((view.json["memberships"] as? [Any])?.count == 1)
        #expect((view.json["notes"] as? [Any])?.count == 1)
        #expect((view.json["recentInteractions"] as? [Any])?.count == 1, "\(view.body)")
        #expect((view.json["organizationNames"] as? [String: Any])?[org] as? String == "Acme")
        #expect((view.json["partialFailures"] as? [Any])?.isEmpty == true, "\(view.body)")
        #expect(view.json["metrics"] != nil, "\(view.body)")
        #expect(view.json["timeline"] is [Any], "\(view.body)")
        #expect(try await gw.request("GET", "/v1/contacts/\(UUID().uuidString.lowercased()):overview", token: token).status == 404)
    }

    @Test("an optional service that is down or silent is listed in partialFailures, and the answer comes inside the budget")
    func overviewPartialFailure() async throws {
        // A port that accepts connections and never answers: the collaboration calls can only time out.
        let silent = try await GatewayHarness.silentServer()
        defer { silent.close(promise: nil) }
        let gw = try await GatewayHarness.start(
            targets: ["communication": "127.0.0.1:1", "collaboration": "127.0.0.1:\(silent.localAddress!.port!)"],
            environment: ["SWITCHBOARD_GATEWAY_OVERVIEW_PART_TIMEOUT_SECONDS": "3"])
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let contact = try #require(
            try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "P"}}"#, token: token).json["id"] as? String)
        let start = ContinuousClock.now
        let view = try await gw.request("GET", "/v1/contacts/\(contact):overview", token: token, headers: ["X-Request-Timeout": "8s"])
        let elapsed = ContinuousClock.now - start
        #expect(view.status == 200, "\(view.body)")
        #expect((view.json["contact"] as? [String: Any])?["id"] as? String == contact)
        let failures = (view.json["partialFailures"] as? [[String: Any]]) ?? []
        let parts = Set(failures.compactMap { $0["part"] as? String })
        // The dead and the silent service's parts fail; the others may also run out of their part timeout when every
        // suite runs at once on two cores, so only what must fail is checked.
        #expect(Set(["recentInteractions", "consents", "notes", "files", "upcomingMeetings"]).isSubset(of: parts), "\(view.body)")
        #expect(failures.first { $0["part"] as? String == "notes" }?["code"] as? String == "DEADLINE_EXCEEDED")
        #expect(failures.first { $0["part"] as? String == "consents" }?["code"] as? String == "UNAVAILABLE")
        // The silent service's parts end at the part timeout (3 s), well inside the 8 s budget; a generous bound, since
        // the whole suite runs at once on two cores.
        #expect(elapsed < .seconds(8), "\(elapsed)")
    }

    /// Runs `body` against a gateway whose `upstreams` are `services` on a server of the test's (the others the
    /// harness's own), with a token, a contact made through the gateway, and its overview, which must be whole (200,
    /// no partial failure); then stops both.
    private func withOlderUpstreams(
        _ services: [any RPCService], for upstreams: [String],
        _ body: (_ gateway: GatewayHarness, _ token: String, _ contact: String, _ view: GatewayHarness.Response) async throws -> Void
    ) async throws {
        let server = try await startServer(services: services)
        let gw: GatewayHarness
        do {
            gw = try await GatewayHarness.start(targets: Dictionary(uniqueKeysWithValues: upstreams.map { ($0, "127.0.0.1:\(server.port)") }))
        } catch {
            await server.stop()
            throw error
        }
        do {
            let token = try await GatewayHarness.token(tenant: Self.tenant())
            let created = try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "Vera"}}"#, token: token)
            let contact = try #require(created.json["id"] as? String, "\(created.body)")
            let view = try await gw.request("GET", "/v1/contacts/\(contact):overview", token: token)
            #expect(view.status == 200, "\(view.body)")
            #expect((view.json["partialFailures"] as? [Any])?.isEmpty == true, "\(view.body)")
            try await body(gw, token, contact, view)
        } catch {
            await gw.stop()
            await server.stop()
            throw error
        }
        await gw.stop()
        await server.stop()
    }

    @Test("a service without GetContactSummary (an older release) is asked through its list RPCs; one that does not know the contact holds nothing")
    func overviewFallback() async throws {
        let older = OlderCollaboration()
        try await withOlderUpstreams([older, UnknownContactOrganization()], for: ["collaboration", "organization"]) { _, _, contact, view in
            // The notes come from the older service's ListNotes, asked for this contact.
            #expect((view.json["notes"] as? [[String: Any]])?.map { $0["body"] as? String } == ["a note of \(contact)"], "\(view.body)")
            #expect((view.json["files"] as? [Any])?.isEmpty == true, "\(view.body)")
            #expect((view.json["upcomingMeetings"] as? [Any])?.isEmpty == true, "\(view.body)")
            #expect(older.calls.withLock { $0.sorted() } == ["ListFiles", "ListMeetings", "ListNotes"])
            // An organization service that does not know the contact yet (NOT_FOUND) holds none of its memberships.
            #expect((view.json["memberships"] as? [Any])?.isEmpty == true, "\(view.body)")
            #expect((view.json["groups"] as? [Any])?.isEmpty == true, "\(view.body)")
            #expect(view.json["organizationNames"] == nil, "\(view.body)")
            // The other services answered through their summaries.
            #expect(view.json["timeline"] is [Any], "\(view.body)")
            #expect(view.json["recentInteractions"] is [Any], "\(view.body)")
        }
    }

    @Test(
        "an organization service without GetContactSummary: memberships through its list RPC, their organizations' names in one batch call, and a failed batch call listed"
    )
    func overviewOrganizationFallback() async throws {
        let older = OlderOrganization()
        try await withOlderUpstreams([older], for: ["organization"]) { gw, token, contact, view in
            let memberships = try #require(view.json["memberships"] as? [[String: Any]], "\(view.body)")
            #expect(memberships.map { $0["organizationId"] as? String } == ["org-a", "org-b", "org-a"])
            #expect(memberships.allSatisfy { $0["contactId"] as? String == contact })
            #expect((view.json["groups"] as? [Any])?.isEmpty == true, "\(view.body)")
            #expect(view.json["organizationNames"] as? [String: String] == ["org-a": "Acme", "org-b": "Globex"], "\(view.body)")
            // Each organization asked for once, in the memberships' order; the list RPCs asked for this contact.
            #expect(
                older.calls.withLock { $0 }.sorted() == [
                    "BatchGetOrganizations org-a,org-b", "ListContactGroups \(contact)", "ListContactMemberships \(contact)",
                ])

            // The batch call fails: the memberships stay, the names are listed as a partial failure.
            older.failBatch.withLock { $0 = true }
            let partial = try await gw.request("GET", "/v1/contacts/\(contact):overview", token: token)
            #expect(partial.status == 200, "\(partial.body)")
            #expect((partial.json["memberships"] as? [Any])?.count == 3, "\(partial.body)")
            #expect(partial.json["organizationNames"] == nil, "\(partial.body)")
            let failures = try #require(partial.json["partialFailures"] as? [[String: Any]], "\(partial.body)")
            #expect(failures.map { $0["part"] as? String } == ["organizations"], "\(partial.body)")
            #expect(failures.first?["method"] as? String == "BatchGetOrganizations" && failures.first?["code"] as? String == "UNAVAILABLE")
        }
    }

    @Test("the OpenAPI document lists every bound route and passes an OpenAPI validator")
    func openAPI() async throws {
        let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-secret-\(UUID())").path
        try String(repeating: "s", count: 40).write(toFile: secretFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secretFile) }
        let gw = try await GatewayHarness.start(environment: [
            "SWITCHBOARD_GATEWAY_WEBHOOKS": "mail=http://127.0.0.1:1/events", "SWITCHBOARD_GATEWAY_WEBHOOK_SECRET_FILE": secretFile,
        ])
        defer { Task { await gw.stop() } }
        let document = try await gw.request("GET", "/v1/openapi.json")
        #expect(document.status == 200)
        let paths = try #require(document.json["paths"] as? [String: Any])
        #expect(paths["/v1/contacts/{id}"] != nil)
        #expect(paths["/v1/contacts:search"] != nil)
        #expect(paths["/v1/contacts/{id}:overview"] != nil)
        // The configured provider webhooks, without bearer auth; request bodies optional (an empty one is the default
        // message, and the gateway accepts it).
        let webhook = (paths["/v1/webhooks/{provider}"] as? [String: Any])?["post"] as? [String: Any]
        #expect((webhook?["security"] as? [Any])?.isEmpty == true, "\(String(describing: webhook))")
        let create = (paths["/v1/contacts"] as? [String: Any])?["post"] as? [String: Any]
        #expect((create?["requestBody"] as? [String: Any])?["required"] as? Bool == false)
        guard let python = ProcessInfo.processInfo.environment["SWITCHBOARD_PYTHON"] else {
            Issue.record("SWITCHBOARD_PYTHON is not set: scripts/test.sh sets it to the venv with openapi-spec-validator")
            return
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString).json")
        try Data(document.body.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let output = try await GatewayHarness.run(
            python,
            ["-c", "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')", file.path])
        #expect(output.contains("valid"), "\(output)")
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

/// A collaboration service of a release before `GetContactSummary`: only the three lists the overview reads, each
/// recording that it was called (every other method, that one included, is UNIMPLEMENTED).
final class OlderCollaboration: RPCService {
    let calls = Mutex<[String]>([])

    func registerMethods(with router: inout RPCRouter) {
        typealias Method = Switchboard_Collaboration_V1_CollaborationService.Method
        router.registerUnary(Method.listNotes) { [self] (request: Switchboard_Collaboration_V1_ListNotesRequest, _) in
            calls.withLock { $0.append("ListNotes") }
            var note = Switchboard_Collaboration_V1_Note()
            note.id = UUID().uuidString.lowercased()
            note.body = "a note of \(request.subject?.id ?? "nobody")"
            var response = Switchboard_Collaboration_V1_ListNotesResponse()
            response.notes = [note]
            return response
        }
        router.registerUnary(Method.listFiles) { [self] (_: Switchboard_Collaboration_V1_ListFilesRequest, _) in
            calls.withLock { $0.append("ListFiles") }
            return Switchboard_Collaboration_V1_ListFilesResponse()
        }
        router.registerUnary(Method.listMeetings) { [self] (request: Switchboard_Collaboration_V1_ListMeetingsRequest, _) in
            // The view asks for the meetings still to come.
            guard request.timeMin != nil else { throw RPCError(code: .invalidArgument, message: "time_min is missing") }
            calls.withLock { $0.append("ListMeetings") }
            return Switchboard_Collaboration_V1_ListMeetingsResponse()
        }
    }
}

/// An organization service of a release before GetContactSummary: memberships in two organizations (one twice), no
/// groups, and the organizations' names by BatchGetOrganizations (which fails while `failBatch` is set).
final class OlderOrganization: RPCService {
    let calls = Mutex<[String]>([])
    let failBatch = Mutex(false)

    func registerMethods(with router: inout RPCRouter) {
        typealias Method = Switchboard_Organization_V1_OrganizationService.Method
        router.registerUnary(Method.listContactMemberships) { [self] (request: Switchboard_Organization_V1_ListContactMembershipsRequest, _) in
            calls.withLock { $0.append("ListContactMemberships \(request.contactId)") }
            var response = Switchboard_Organization_V1_ListContactMembershipsResponse()
            response.memberships = ["org-a", "org-b", "org-a"].enumerated().map { index, organization in
                var membership = Switchboard_Organization_V1_Membership()
                membership.id = "membership-\(index)"
                membership.contactId = request.contactId
                membership.organizationId = organization
                return membership
            }
            return response
        }
        router.registerUnary(Method.listContactGroups) { [self] (request: Switchboard_Organization_V1_ListContactGroupsRequest, _) in
            calls.withLock { $0.append("ListContactGroups \(request.contactId)") }
            return Switchboard_Organization_V1_ListContactGroupsResponse()
        }
        router.registerUnary(Method.batchGetOrganizations) { [self] (request: Switchboard_Organization_V1_BatchGetOrganizationsRequest, _) in
            if failBatch.withLock({ $0 }) { throw RPCError(code: .unavailable, message: "organizations are being moved") }
            calls.withLock { $0.append("BatchGetOrganizations \(request.ids.joined(separator: ","))") }
            var response = Switchboard_Organization_V1_BatchGetOrganizationsResponse()
            response.organizations = request.ids.map { id in
                var organization = Switchboard_Organization_V1_Organization()
                organization.id = id
                organization.name = ["org-a": "Acme", "org-b": "Globex"][id] ?? ""
                return organization
            }
            return response
        }
    }
}

/// An organization service whose copy of the contacts feed has not brought the contact yet: its summary is NOT_FOUND.
struct UnknownContactOrganization: RPCService {
    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(Switchboard_Organization_V1_OrganizationService.Method.getContactSummary) {
            (request: Switchboard_Organization_V1_GetContactSummaryRequest, _) -> Switchboard_Organization_V1_ContactSummary in
            throw RPCError(code: .notFound, message: "contact \(request.contactId) not found")
        }
    }
}
