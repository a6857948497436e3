import Foundation
import NIOCore
import SwitchboardRuntime
import SwitchboardServiceKitTestSupport
import Testing

/// Requests through the gateway to the real services, with `curl` as the client.
@Suite("Gateway routes", .serialized)
struct GatewayRouteTests {
    static func tenant() -> String { "gw-" + UUID().uuidString.prefix(8).lowercased() }

    @Test("create, read, conditional update, delete and undelete a contact as JSON")
    func contactLifecycle() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let body = #"{"name": {"given": "Ada", "family": "Lovelace"}, "emails": [{"address": "ada@example.com"}], "tags": ["vip"]}"#
        let created = try await gw.request("POST", "/v1/contacts", body: body, token: token, headers: ["Idempotency-Key": "create-1"])
        #expect(created.status == 200, "\(created.body)")
        #expect(created.headers["content-type"] == "application/json")
        #expect(created.headers["x-request-id"]?.isEmpty == false)
        let id = try #require(created.json["id"] as? String)
        let etag = try #require(created.json["etag"] as? String)
        #expect(created.headers["etag"] == etag)  // the services' etags are entity tags already ("1")
        #expect((created.json["name"] as? [String: Any])?["given"] as? String == "Ada")

        // The same Idempotency-Key is the same request: the first answer again, no second contact.
        let replay = try await gw.request("POST", "/v1/contacts", body: body, token: token, headers: ["Idempotency-Key": "create-1"])
        #expect(replay.json["id"] as? String == id)
        // The same key with another body is a client's mistake, not a retry: a 400 naming the key's field, no contact.
        let otherBody = #"{"name": {"given": "Bea", "family": "Lovelace"}}"#
        let reused = try await gw.request("POST", "/v1/contacts", body: otherBody, token: token, headers: ["Idempotency-Key": "create-1"])
        #expect(reused.status == 400, "\(reused.body)")
        #expect(reused.body.contains("request_id") && reused.body.contains("different"), "\(reused.body)")

        let read = try await gw.request("GET", "/v1/contacts/\(id)", token: token)
        #expect(read.status == 200)
        #expect(read.json["id"] as? String == id)

        // The request is a span: of the caller's trace when it sends one (its own span id, the caller's trace id), of a
        // new trace otherwise.
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736", callerSpan = "00f067aa0ba902b7"
        let traced = try await gw.request("GET", "/v1/contacts/\(id)", token: token, headers: ["traceparent": "00-\(traceID)-\(callerSpan)-01"])
        let span = try #require(traced.headers["traceparent"]).split(separator: "-").map(String.init)
        #expect(span.count == 4 && span[0] == "00" && span[1] == traceID && span[2].count == 16 && span[2] != callerSpan, "\(span)")
        let fresh = try #require(read.headers["traceparent"]).split(separator: "-").map(String.init)
        #expect(fresh.count == 4 && fresh[1].count == 32 && fresh[1] != traceID && fresh[2].count == 16, "\(fresh)")

        // PATCH derives the mask from the body: only the family name changes; a stale If-Match is 412.
        let stale = try await gw.request(
            "PATCH", "/v1/contacts/\(id)", body: #"{"name": {"family": "Byron"}}"#, token: token, headers: ["If-Match": "\"stale\""])
        #expect(stale.status == 412, "\(stale.body)")
        #expect(stale.json["code"] as? Int == 10)
        let patched = try await gw.request(
            "PATCH", "/v1/contacts/\(id)", body: #"{"name": {"family": "Byron"}}"#, token: token, headers: ["If-Match": created.headers["etag"] ?? ""]
        )
        #expect(patched.status == 200, "\(patched.body)")
        // If-None-Match on a read: 304 with the ETag while it matches, the contact once it changed.
        let current = try #require(patched.headers["etag"])
        let unchanged = try await gw.request("GET", "/v1/contacts/\(id)", token: token, headers: ["If-None-Match": "\"0\", \(current)"])
        #expect(unchanged.status == 304 && unchanged.body.isEmpty && unchanged.headers["etag"] == current, "\(unchanged.status) \(unchanged.body)")
        #expect(unchanged.headers["content-length"] == nil && unchanged.headers["transfer-encoding"] == nil, "\(unchanged.headers)")
        let changed = try await gw.request("GET", "/v1/contacts/\(id)", token: token, headers: ["If-None-Match": created.headers["etag"] ?? ""])
        #expect(changed.status == 200 && changed.json["id"] as? String == id, "\(changed.body)")
        // If-Match: * is unconditional; a list of tags or a bare number is a 400, not a 412 that says the contact changed.
        let any = try await gw.request("PATCH", "/v1/contacts/\(id)", body: #"{"tags": ["vip", "any"]}"#, token: token, headers: ["If-Match": "*"])
        #expect(any.status == 200, "\(any.body)")
        for header in ["\"1\", \(any.headers["etag"] ?? "")", "1"] {
            let refused = try await gw.request("PATCH", "/v1/contacts/\(id)", body: #"{"tags": ["x"]}"#, token: token, headers: ["If-Match": header])
            #expect(refused.status == 400 && refused.body.contains("If-Match"), "\(header): \(refused.body)")
        }
        let name = patched.json["name"] as? [String: Any]
        #expect(name?["given"] as? String == "Ada")
        #expect(name?["family"] as? String == "Byron")
        #expect((patched.json["emails"] as? [Any])?.count == 1)

        let deleted = try await gw.request("DELETE", "/v1/contacts/\(id)", token: token)
        #expect(deleted.status == 200, "\(deleted.body)")
        let gone = try await gw.request("GET", "/v1/contacts/\(id)", token: token)
        #expect(gone.status == 404)
        #expect(gone.json["code"] as? Int == 5)
        #expect((gone.json["message"] as? String)?.isEmpty == false)
        let withDeleted = try await gw.request("GET", "/v1/contacts/\(id)?includeDeleted=true", token: token)
        #expect(withDeleted.status == 200)
        let undeleted = try await gw.request("POST", "/v1/contacts/\(id):undelete", body: "{}", token: token)
        #expect(undeleted.status == 200, "\(undeleted.body)")
        #expect(try await gw.request("GET", "/v1/contacts/\(id)", token: token).status == 200)
    }

    @Test("relationships through the gateway: created under a contact, listed from the other side, walked, patched and deleted")
    func relationships() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        var ids: [String] = []
        for given in ["Ann", "Bob"] {
            let created = try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "\#(given)", "family": "Gw"}}"#, token: token)
            ids.append(try #require(created.json["id"] as? String))
        }
        let (ann, bob) = (ids[0], ids[1])
        let body = #"{"relatedContactId": "\#(bob)", "type": "RELATIONSHIP_TYPE_MANAGER", "strength": 4}"#
        let related = try await gw.request("POST", "/v1/contacts/\(ann)/relationships", body: body, token: token)
        #expect(related.status == 200, "\(related.body)")
        #expect(related.json["contactId"] as? String == ann && related.json["type"] as? String == "RELATIONSHIP_TYPE_MANAGER")
        let id = try #require(related.json["id"] as? String)
        // The same tie stated from the other side: 409 with the JSON status.
        let inverse = #"{"relatedContactId": "\#(ann)", "type": "RELATIONSHIP_TYPE_REPORT"}"#
        let again = try await gw.request("POST", "/v1/contacts/\(bob)/relationships", body: inverse, token: token)
        #expect(again.status == 409 && (again.json["message"] as? String)?.contains(id) == true, "\(again.body)")
        let listed = try await gw.request("GET", "/v1/contacts/\(bob)/relationships?types=RELATIONSHIP_TYPE_REPORT", token: token)
        let list = try #require(listed.json["relationships"] as? [[String: Any]])
        #expect(listed.status == 200 && list.count == 1 && list.first?["relatedContactId"] as? String == ann, "\(listed.body)")
        let walked = try await gw.request("GET", "/v1/contacts/\(ann):related?maxHops=2", token: token)
        let found = try #require(walked.json["related"] as? [[String: Any]])
        #expect(found.count == 1 && (found.first?["contact"] as? [String: Any])?["id"] as? String == bob, "\(walked.body)")
        let patched = try await gw.request("PATCH", "/v1/relationships/\(id)", body: #"{"note": "since 2024"}"#, token: token)
        #expect(patched.status == 200 && patched.json["note"] as? String == "since 2024" && patched.json["strength"] as? Int == 4, "\(patched.body)")
        #expect(try await gw.request("DELETE", "/v1/relationships/\(id)", token: token).status == 200)
        #expect(try await gw.request("DELETE", "/v1/relationships/\(id)", token: token).status == 404)
        let stranger = #"{"relatedContactId": "\#(UUID().uuidString.lowercased())", "type": "RELATIONSHIP_TYPE_FRIEND"}"#
        let missing = try await gw.request("POST", "/v1/contacts/\(ann)/relationships", body: stranger, token: token)
        #expect(missing.status == 404 && missing.body.contains("relationship.related_contact_id"), "\(missing.body)")
    }

    @Test("PATCH without a mask changes only the custom fields the body names; a retired field's value blocks no update")
    func customFieldsByKey() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let tenant = Self.tenant()
        let admin = try await GatewayHarness.token(tenant: tenant, roles: [.admin])
        let token = try await GatewayHarness.token(tenant: tenant)
        for key in ["tier", "nick", "legacy"] {
            let defined = try await gw.request(
                "POST", "/v1/contactFields", body: #"{"key": "\#(key)", "displayName": "\#(key)", "type": "FIELD_TYPE_STRING"}"#, token: admin)
            #expect(defined.status == 200, "\(defined.body)")
        }
        let created = try await gw.request(
            "POST", "/v1/contacts", body: #"{"name": {"given": "Kit"}, "customFields": {"tier": "gold", "nick": "jo", "legacy": "old"}}"#,
            token: token)
        let id = try #require(created.json["id"] as? String, "\(created.body)")
        func fields(_ response: GatewayHarness.Response) -> [String: String] {
            ((response.json["customFields"] as? [String: Any]) ?? [:]).compactMapValues { $0 as? String }
        }
        let one = try await gw.request("PATCH", "/v1/contacts/\(id)", body: #"{"customFields": {"nick": "jj"}}"#, token: token)
        #expect(fields(one) == ["tier": "gold", "nick": "jj", "legacy": "old"], "\(one.body)")
        let removed = try await gw.request("PATCH", "/v1/contacts/\(id)", body: #"{"customFields": {"nick": null}}"#, token: token)
        #expect(fields(removed) == ["tier": "gold", "legacy": "old"], "\(removed.body)")
        #expect((removed.json["customFields"] as? [String: Any])?.keys.contains("nick") == false, "\(removed.body)")

        #expect(try await gw.request("POST", "/v1/contactFields/legacy:retire", body: "{}", token: admin).status == 200)
        let renamed = try await gw.request("PATCH", "/v1/contacts/\(id)", body: #"{"name": {"middle": "X"}}"#, token: token)
        #expect(renamed.status == 200, "\(renamed.body)")
        #expect(fields(renamed) == ["tier": "gold", "legacy": "old"], "\(renamed.body)")
        let refused = try await gw.request("PATCH", "/v1/contacts/\(id)", body: #"{"customFields": {"legacy": "new"}}"#, token: token)
        #expect(refused.status == 400 && refused.body.contains("contact.custom_fields.legacy"), "\(refused.body)")
        let unspellable = try await gw.request("PATCH", "/v1/contacts/\(id)", body: #"{"customFields": {"line_2": "x"}}"#, token: token)
        #expect(unspellable.status == 400 && unspellable.body.contains("customFields.line_2"), "\(unspellable.body)")
        #expect(fields(try await gw.request("GET", "/v1/contacts/\(id)", token: token)) == ["tier": "gold", "legacy": "old"])
    }

    @Test("text that is not UTF-8 or holds NUL is a 400 naming where, in the body, a stream's line, a query or a path; nothing is stored")
    func textThatIsNotText() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        func refused(_ response: GatewayHarness.Response, _ field: String, _ what: String) {
            #expect(response.status == 400, "\(what): \(response.body)")
            #expect(response.json["code"] as? Int == 3, "\(what): \(response.body)")
            #expect(response.body.contains(field), "\(what) should name \(field): \(response.body)")
        }
        // NUL escaped in JSON, in a value and in a key; bytes that are not UTF-8 in the body.
        refused(
            try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "Eve"}, "tags": ["a\u0000b"]}"#, token: token), "tags[0]",
            "NUL in a tag")
        refused(
            try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "\u0000hidden"}}"#, token: token), "name.given",
            "NUL first in a name")
        let bad = Array(#"{"name": {"given": "Bad"#.utf8) + [0xFF, 0xFE] + Array(#"UTF"}}"#.utf8)
        refused(try await gw.request("POST", "/v1/contacts", bytes: bad, token: token), "not UTF-8", "a body that is not UTF-8")
        // Percent-escapes that decode to bytes that are not UTF-8, or to NUL, in a query or a path.
        refused(try await gw.request("GET", "/v1/contacts:search?query=%FF%FE", token: token), "query", "a query value not UTF-8")
        refused(try await gw.request("GET", "/v1/contacts?page.pageToken=%00x", token: token), "page.pageToken", "NUL in a query value")
        refused(try await gw.request("GET", "/v1/contacts/%FF", token: token), "id", "a path variable not UTF-8")
        // A streamed request's line (NDJSON) is checked as its own request is.
        refused(
            try await gw.request("POST", "/v1/contacts:import", body: #"{"options": {"importId": "a\u0000"}}"# + "\n", token: token),
            "[0]", "NUL in a stream's line")
        // Nothing was stored; text with every kind of character that is text still goes through.
        #expect((try await gw.request("GET", "/v1/contacts", token: token).json["contacts"] as? [Any] ?? []).isEmpty)
        let fine = try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "Zoë \ud83d\ude00 日本"}}"#, token: token)
        #expect(fine.status == 200 && (fine.json["name"] as? [String: Any])?["given"] as? String == "Zoë 😀 日本", "\(fine.body)")
    }

    @Test("query parameters are typed by the request message; unknown ones are a 400 naming them")
    func queryParameters() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        for given in ["Ann", "Bob", "Cid"] {
            let r = try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "\#(given)"}, "tags": ["t-\#(given)"]}"#, token: token)
            #expect(r.status == 200)
        }
        let page = try await gw.request("GET", "/v1/contacts?page.pageSize=2", token: token)
        #expect(page.status == 200, "\(page.body)")
        #expect((page.json["contacts"] as? [Any])?.count == 2)
        let token2 = try #require((page.json["page"] as? [String: Any])?["nextPageToken"] as? String)
        let encoded = token2.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let next = try await gw.request("GET", "/v1/contacts?page.page_size=2&page.pageToken=\(encoded)", token: token)
        #expect((next.json["contacts"] as? [Any])?.count == 1, "\(next.body)")
        let tagged = try await gw.request("GET", "/v1/contacts?tag=t-Bob", token: token)
        #expect((tagged.json["contacts"] as? [Any])?.count == 1, "\(tagged.body)")

        let unknown = try await gw.request("GET", "/v1/contacts?pageSize=2&colour=red", token: token)
        #expect(unknown.status == 400)
        #expect((unknown.json["message"] as? String)?.contains("colour") == true, "\(unknown.body)")
        #expect((unknown.json["message"] as? String)?.contains("pageSize") == true)
        let details = unknown.json["details"] as? [[String: Any]]
        #expect(details?.first?["@type"] as? String == "type.googleapis.com/google.rpc.BadRequest")
        let badBool = try await gw.request("GET", "/v1/contacts?includeDeleted=maybe", token: token)
        #expect(badBool.status == 400)
        #expect((badBool.json["message"] as? String)?.contains("includeDeleted") == true)
        let badInt = try await gw.request("GET", "/v1/contacts?page.pageSize=ten", token: token)
        #expect(badInt.status == 400)
        let badEnum = try await gw.request("GET", "/v1/contacts?statuses=NOPE", token: token)
        #expect(badEnum.status == 400, "\(badEnum.body)")
        let pathField = try await gw.request("GET", "/v1/contacts/abc?id=def", token: token)
        #expect(pathField.status == 400)
    }

    @Test("errors are google.rpc.Status JSON with the mapped HTTP status, the gateway's own included")
    func errors() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let noRoute = try await gw.request("GET", "/v1/nothing/here", token: token)
        #expect(noRoute.status == 404)
        #expect(noRoute.json["code"] as? Int == 5)
        let wrongVerb = try await gw.request("PUT", "/v1/contacts", body: "{}", token: token)
        #expect(wrongVerb.status == 405)
        #expect(wrongVerb.headers["allow"]?.contains("POST") == true)
        let notJSON = try await gw.request("POST", "/v1/contacts", body: "{nope", token: token)
        #expect(notJSON.status == 400)
        #expect(notJSON.json["code"] as? Int == 3)
        let unknownField = try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "A"}, "colour": 1}"#, token: token)
        #expect(unknownField.status == 400)
        #expect((unknownField.json["message"] as? String)?.contains("colour") == true, "\(unknownField.body)")
        // The service's own validation comes back with its field violations.
        let invalid = try await gw.request("POST", "/v1/contacts", body: #"{"emails": [{"address": "not-an-email"}]}"#, token: token)
        #expect(invalid.status == 400, "\(invalid.body)")
        let violations = (invalid.json["details"] as? [[String: Any]])?.first?["fieldViolations"] as? [[String: Any]]
        #expect(violations?.isEmpty == false, "\(invalid.body)")
        let tooLarge = try await gw.request("POST", "/v1/contacts", body: String(repeating: " ", count: 9 << 20), token: token)
        #expect(tooLarge.status == 413)
        let late = try await gw.request("GET", "/v1/contacts?page.pageSize=5", token: token, headers: ["X-Request-Timeout": "1ms"])
        #expect(late.status == 504 || late.status == 200)  // 1 ms may still suffice on a fast path; never anything else
        let badTimeout = try await gw.request("GET", "/v1/contacts", token: token, headers: ["X-Request-Timeout": "soon"])
        #expect(badTimeout.status == 400)
    }

    @Test("tokens and roles are checked at the edge: none or a bad one is 401, a role too weak 403, without a call")
    func authMatrix() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        let tenant = Self.tenant()
        let none = try await gw.request("GET", "/v1/contacts")
        #expect(none.status == 401)
        #expect(none.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(none.json["code"] as? Int == 16)
        let garbage = try await gw.request("GET", "/v1/contacts", token: "not.a.token")
        #expect(garbage.status == 401)
        let basic = try await gw.request("GET", "/v1/contacts", headers: ["Authorization": "Basic YTpi"])
        #expect(basic.status == 401)
        let expired = try await ServiceHarnessTokens.expired(tenant: tenant)
        #expect(try await gw.request("GET", "/v1/contacts", token: expired).status == 401)
        let reader = try await GatewayHarness.token(tenant: tenant, roles: [.readOnly])
        let read = try await gw.request("GET", "/v1/contacts", token: reader)
        #expect(read.status == 200, "\(read.status) \(read.body)")
        let write = try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "R"}}"#, token: reader)
        #expect(write.status == 403, "\(write.body)")
        #expect(write.json["code"] as? Int == 7)
        #expect((write.json["message"] as? String)?.contains("needs the user role") == true, "\(write.body)")

        // The role is checked at the edge too: with every service silent (they accept and never answer), a role too
        // weak is still a 403 at once, where a call would have waited out its budget (504).
        let silent = try await GatewayHarness.silentServer()
        defer { silent.close(promise: nil) }
        let address = "127.0.0.1:\(silent.localAddress!.port!)"
        let edge = try await GatewayHarness.start(
            targets: ["contacts": address, "organization": address, "collaboration": address, "analytics": address],
            environment: ["SWITCHBOARD_GATEWAY_HEALTH_CHECK_SECONDS": "0"])
        defer { Task { await edge.stop() } }
        let headers = ["X-Request-Timeout": "5s"]
        let admin = try await GatewayHarness.token(tenant: tenant, roles: [.admin])
        for (verb, path, body, token) in [
            ("POST", "/v1/contacts", #"{"name": {"given": "R"}}"#, reader), ("POST", "/v1/organizations", #"{"name": "O"}"#, reader),
            ("POST", "/v1/notes", #"{"body": "n"}"#, reader), ("GET", "/v1/contacts", nil, try await GatewayHarness.token(tenant: tenant, roles: [])),
        ] as [(String, String, String?, String)] {
            let refused = try await edge.request(verb, path, body: body, token: token, headers: headers)
            #expect(refused.status == 403, "\(verb) \(path): \(refused.status) \(refused.body)")
        }
        // A strong enough role goes on to the (silent) service: the budget ends it.
        #expect(try await edge.request("GET", "/v1/contacts", token: admin, headers: ["X-Request-Timeout": "300ms"]).status == 504)
        // Another tenant's contact is not found, through the gateway as directly.
        let owner = try await GatewayHarness.token(tenant: tenant)
        let id = try #require(try await gw.request("POST", "/v1/contacts", body: #"{"name": {"given": "T"}}"#, token: owner).json["id"] as? String)
        let other = try await GatewayHarness.token(tenant: Self.tenant())
        #expect(try await gw.request("GET", "/v1/contacts/\(id)", token: other).status == 404)
    }

    @Test("CORS: a preflight from an allowed origin is answered; other origins get no CORS headers")
    func cors() async throws {
        let gw = try await GatewayHarness.start(environment: ["SWITCHBOARD_GATEWAY_CORS_ORIGINS": "https://app.example.com"])
        defer { Task { await gw.stop() } }
        let preflight = try await gw.request(
            "OPTIONS", "/v1/contacts", headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"])
        #expect(preflight.status == 204)
        #expect(preflight.headers["access-control-allow-origin"] == "https://app.example.com")
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let other = try await gw.request("GET", "/v1/contacts", token: token, headers: ["Origin": "https://evil.example.com"])
        #expect(other.status == 200)
        #expect(other.headers["access-control-allow-origin"] == nil)
    }
}

enum ServiceHarnessTokens {
    static func expired(tenant: String) async throws -> String {
        try await SwitchboardServiceKitTestSupport.ServiceHarness.token(tenant: tenant, roles: [.user], expires: Date().addingTimeInterval(-60))
    }
}
