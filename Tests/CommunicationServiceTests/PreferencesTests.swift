import CommunicationService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

typealias PreferencesProto = Switchboard_Communication_V1_ContactPreferences

extension CommClient {
    func preferences(_ contact: String) async throws -> PreferencesProto {
        var request = Switchboard_Communication_V1_GetContactPreferencesRequest()
        request.contactId = contact
        return try await stub.getContactPreferences(request, options: options)
    }

    func setPreferences(
        _ contact: String, paths: [String] = [], etag: String = "", requestID: String = "", configure: (inout PreferencesProto) -> Void
    ) async throws -> PreferencesProto {
        var p = PreferencesProto()
        p.contactId = contact
        configure(&p)
        var request = Switchboard_Communication_V1_UpdateContactPreferencesRequest()
        request.preferences = p
        if !paths.isEmpty {
            var mask = Google_Protobuf_FieldMask()
            mask.paths = paths
            request.updateMask = mask
        }
        request.etag = etag
        request.requestId = requestID
        return try await stub.updateContactPreferences(request, options: options)
    }
}

func quiet(_ start: String, _ end: String) -> Switchboard_Communication_V1_QuietHours {
    var q = Switchboard_Communication_V1_QuietHours()
    q.start = start
    q.end = end
    return q
}

/// Contact preferences over HTTP/2 and PostgreSQL: the RPCs, do-not-contact and quiet hours on the send paths, and
/// what merges, unmerges and erasures do to them.
@Suite("Communication service: contact preferences", .serialized)
final class PreferencesTests {
    let provider: FakeProvider
    let harness: CommunicationHarness

    init() async throws { (provider, harness) = try await CommunicationHarness.startWithProvider() }
    deinit {
        let (h, p) = (harness, provider)
        Task {
            await h.stop()
            await p.stop()
        }
    }

    /// A contacts-feed event of kind `kind` for `contact` (no addresses), as the consumer would apply it.
    private func apply(_ t: String, _ contact: String, _ kind: Switchboard_Common_V1_ChangeKind, related: [String] = []) async throws {
        var e = Switchboard_Common_V1_ChangeEvent()
        e.tenantId = t
        e.resourceType = "switchboard.contacts.v1.Contact"
        e.resourceId = contact
        e.kind = kind
        e.relatedIds = related
        var c = Switchboard_Contacts_V1_Contact()
        c.id = contact
        e.resource = try Google_Protobuf_Struct(protoJSONText: try c.protoJSONText())
        try await harness.applyContacts([e])
    }

    @Test("defaults until written; masks, etags, request ids; every bad field named; published; other tenants see nothing")
    func getAndUpdate() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let contact = newID()
        let defaults = try await client.preferences(contact)
        #expect(defaults.contactId == contact && defaults.etag.isEmpty && defaults.audit == nil && !defaults.doNotContact)
        #expect(defaults.quietHours == nil && defaults.preferredChannel == .unspecified && defaults.language.isEmpty)

        let first = try await client.setPreferences(contact, requestID: "p-1") {
            $0.preferredChannel = .sms
            $0.language = "pt-BR"
            $0.timeZone = "America/Sao_Paulo"
            $0.quietHours = quiet("21:30", "07:00")
        }
        #expect(first.etag == "\"1\"" && first.preferredChannel == .sms && first.language == "pt-BR" && first.timeZone == "America/Sao_Paulo")
        #expect(first.quietHours?.start == "21:30" && first.quietHours?.end == "07:00" && first.audit?.updatedBy == "user-1")
        #expect(try await client.preferences(contact) == first)
        // A retry returns the first response and writes nothing twice; the id reused for another request is refused.
        let retried = try await client.setPreferences(contact, requestID: "p-1") {
            $0.preferredChannel = .sms
            $0.language = "pt-BR"
            $0.timeZone = "America/Sao_Paulo"
            $0.quietHours = quiet("21:30", "07:00")
        }
        #expect(retried == first)
        #expect(await code { _ = try await client.setPreferences(contact, requestID: "p-1") { $0.language = "en" } } == .invalidArgument)

        // A mask writes only what it names.
        let second = try await client.setPreferences(contact, paths: ["do_not_contact"], etag: first.etag) {
            $0.doNotContact = true
            $0.language = "not written"
        }
        #expect(second.etag == "\"2\"" && second.doNotContact && second.language == "pt-BR" && second.quietHours == first.quietHours)
        // A stale etag is ABORTED and changes nothing; so is an etag for preferences never stored.
        #expect(await code { _ = try await client.setPreferences(contact, etag: first.etag) { $0.doNotContact = false } } == .aborted)
        #expect(await code { _ = try await client.setPreferences(newID(), etag: "\"1\"") { $0.doNotContact = true } } == .aborted)
        #expect(try await client.preferences(contact).doNotContact)

        // Bad input: every field named, nothing stored.
        func invalid(_ paths: [String] = [], _ configure: @escaping (inout PreferencesProto) -> Void) async -> Set<String> {
            let error = await rpcError { _ = try await client.setPreferences(contact, paths: paths, configure: configure) }
            #expect(error?.code == .invalidArgument)
            return fields(error)
        }
        #expect(await invalid { $0.language = "english!" } == ["preferences.language"])
        #expect(await invalid { $0.language = "toolongprimary" } == ["preferences.language"])
        #expect(await invalid { $0.timeZone = "Mars/Olympus_Mons" } == ["preferences.time_zone"])
        #expect(await invalid { $0.timeZone = "../../etc/passwd" } == ["preferences.time_zone"])
        #expect(await invalid { $0.quietHours = quiet("25:00", "7:00") } == ["preferences.quiet_hours.start", "preferences.quiet_hours.end"])
        #expect(await invalid { $0.quietHours = quiet("", "07:00") } == ["preferences.quiet_hours.start"])
        #expect(
            await invalid {
                $0.quietHours = quiet("08:00", "08:00")
                $0.timeZone = "UTC"
            } == ["preferences.quiet_hours"])
        // Quiet hours need a time zone, also when a mask clears the zone under stored hours.
        #expect(await invalid { $0.quietHours = quiet("22:00", "06:00") } == ["preferences.time_zone"])
        #expect(await invalid(["time_zone"]) { $0.timeZone = "" } == ["preferences.time_zone"])
        #expect(await invalid(["language", "email"]) { $0.language = "en" } == ["update_mask.paths[1]"])
        #expect(await invalid(Array(repeating: "language", count: 33)) { $0.language = "en" } == ["update_mask.paths"])
        #expect(await invalid { $0.contactId = "not-a-uuid" } == ["preferences.contact_id"])
        #expect(try await client.preferences(contact) == second)
        // Clearing the hours with their mask leaves the zone.
        let cleared = try await client.setPreferences(contact, paths: ["quiet_hours"]) { _ in }
        #expect(cleared.quietHours == nil && cleared.timeZone == "America/Sao_Paulo")

        // Published: CREATED, then UPDATED with the changed fields, as proto3 JSON of ContactPreferences.
        let changes = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                SELECT kind, changed_fields, resource::text AS resource FROM communication.changes
                WHERE tenant_id = $1 AND resource_type = 'switchboard.communication.v1.ContactPreferences' AND resource_id = $2 ORDER BY sequence
                """, [.text(t), .text(contact)]
            ).rows.map { (try $0.int("kind"), try $0.strings("changed_fields"), try $0.string("resource")) }
        }
        #expect(changes.map(\.0) == [1, 2, 2])
        #expect(changes.dropFirst().map(\.1) == [["do_not_contact"], ["quiet_hours"]])
        #expect(changes[1].2.contains("\"doNotContact\": true") || changes[1].2.contains("\"doNotContact\":true"), "\(changes[1].2)")

        // Another tenant neither sees nor changes them.
        let other = try await harness.client(tenant: tenant())
        #expect(try await other.preferences(contact).etag.isEmpty)
        _ = try await other.setPreferences(contact) { $0.language = "fr" }
        #expect(try await client.preferences(contact).language == "pt-BR")
        // Read-only callers may read, not write.
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(try await reader.preferences(contact).language == "pt-BR")
        #expect(await code { _ = try await reader.setPreferences(contact) { $0.language = "de" } } == .permissionDenied)
    }

    @Test("two first writes of one contact at once both land (the contact is locked, not only its row)")
    func concurrentFirstWrites() async throws {
        let client = try await harness.client(tenant: tenant())
        let contacts = (0..<12).map { _ in newID() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for contact in contacts {
                group.addTask { _ = try await client.setPreferences(contact, paths: ["do_not_contact"]) { $0.doNotContact = true } }
                group.addTask { _ = try await client.setPreferences(contact, paths: ["language"]) { $0.language = "it" } }
            }
            try await group.waitForAll()
        }
        for contact in contacts {
            let p = try await client.preferences(contact)
            #expect(p.doNotContact && p.language == "it" && p.etag == "\"2\"", "\(p)")
        }
    }

    @Test("unmerge field by field: what the merge wrote goes back, what was written since stays")
    func unmergeRules() {
        var before = PreferencesData()
        before.language = "en"
        var merged = before
        merged.doNotContact = true
        merged.timeZone = "Europe/Berlin"
        merged.quietHours = QuietHours(start: 1320, end: 420)
        var current = merged
        #expect(PreferencesRules.unmerged(before: before, merged: merged, current: current) == (before, false))
        current.language = "de"
        current.quietHours = QuietHours(start: 1380, end: 420)
        var expected = before
        expected.language = "de"
        expected.timeZone = "Europe/Berlin"
        expected.quietHours = QuietHours(start: 1380, end: 420)
        #expect(PreferencesRules.unmerged(before: before, merged: merged, current: current) == (expected, false))
        // Nothing stored before, all back: no row. A do_not_contact said meanwhile stays, and is said for the loser too.
        var plain = PreferencesData()
        plain.language = "fr"
        #expect(PreferencesRules.unmerged(before: nil, merged: plain, current: plain).winner == nil)
        var asked = plain
        asked.doNotContact = true
        let (winner, meanwhile) = PreferencesRules.unmerged(before: nil, merged: plain, current: asked)
        #expect(winner?.doNotContact == true && winner?.language == "" && meanwhile)
    }

    @Test("do_not_contact: SendMessage refused naming send.contact_id; a send scheduled before is REFUSED when due; campaigns skip")
    func doNotContact() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        // The dispatcher sends at send_at, so do_not_contact must be said before then; on a loaded machine the calls
        // between can take seconds (a full run once took more than the 2 s this test allowed, and the send went out), so
        // a try whose do_not_contact came too late is made again with another contact.
        var inTime: (contact: String, early: Switchboard_Communication_V1_Send)?
        for _ in 0..<3 {
            let contact = newID()
            _ = try await client.recordConsent(contact: contact)
            let early = try await client.send(contact: contact) { $0.sendAt = Date().addingTimeInterval(4) }
            _ = try await client.setPreferences(contact) { $0.doNotContact = true }
            if let due = early.sendAt, Date().addingTimeInterval(0.5) < due {
                inTime = (contact, early)
                break
            }
        }
        let (contact, early) = try #require(inTime, "do_not_contact was never said before the send was due")
        let error = await rpcError { _ = try await client.send(contact: contact) }
        #expect(error?.code == .failedPrecondition && error?.message.contains("send.contact_id") == true, "\(String(describing: error))")
        let settled = try await client.settled(early.id)
        #expect(settled.status == .refused && settled.lastError == "the contact asked not to be contacted", "\(settled)")
        #expect(!provider.requests.contains { $0.idempotencyKey == early.id })

        let template = try await client.createTemplate("News", subject: "Hi", body: "News for {{first}}")
        let other = newID()
        try await client.list(address: "other@example.com", for: other)
        try await client.list(address: "dnc@example.com", for: contact)
        _ = try await client.recordConsent(contact: other)
        let campaign = try await client.createCampaign(template: template.id, contacts: [contact, other])
        let last = try #require(try await client.watchProgress(campaign.id).last)
        #expect(last.status == .completed && last.sent == 1 && last.skipped == 1, "\(last)")
        let skipped = try await client.recipients(campaign.id).recipients.filter { $0.state == .skipped }
        #expect(skipped.map(\.contactId) == [contact] && skipped.first?.reason == "the contact asked not to be contacted")
    }

    @Test("quiet hours: a send due inside them waits as SCHEDULED (attempt not counted) until they end, then goes")
    func quietHours() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let contact = newID()
        _ = try await client.recordConsent(contact: contact)
        // A window around the current UTC time, in UTC.
        let minutes = Int(Date().timeIntervalSince1970 / 60) % 1440
        func hhmm(_ m: Int) -> String { String(format: "%02d:%02d", ((m + 1440) % 1440) / 60, ((m + 1440) % 1440) % 60) }
        _ = try await client.setPreferences(contact) {
            $0.timeZone = "UTC"
            $0.quietHours = quiet(hhmm(minutes - 60), hhmm(minutes + 60))
        }
        let send = try await client.send(contact: contact)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        var held = try await client.getSend(send.id)
        while !held.lastError.hasPrefix("held by"), clock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            held = try await client.getSend(send.id)
        }
        #expect(held.status == .scheduled && held.attempts == 0 && held.lastError.hasPrefix("held by the contact's quiet hours until "), "\(held)")
        #expect(held.lastError.hasSuffix(hhmm(minutes + 60) + ":00Z"), "\(held.lastError)")
        #expect(!provider.requests.contains { $0.idempotencyKey == send.id })
        // A send that asks to ignore the quiet hours (a password reset) goes out inside them; asking is a manager's.
        _ = try await client.recordConsent(contact: contact, purpose: "transactional")
        let byUser = await rpcError { _ = try await client.send(contact: contact, purpose: "transactional") { $0.ignoreQuietHours = true } }
        #expect(byUser?.code == .permissionDenied && byUser?.message.contains("send.ignore_quiet_hours") == true, "\(String(describing: byUser))")
        let manager = try await harness.client(tenant: t, roles: [.manager])
        let reset = try await manager.send(contact: contact, purpose: "transactional") { $0.ignoreQuietHours = true }
        #expect(reset.ignoreQuietHours)
        let delivered = try await client.settled(reset.id)
        #expect(delivered.status == .sent && delivered.attempts == 1 && delivered.ignoreQuietHours, "\(delivered)")
        #expect(try await client.getSend(send.id).status == .scheduled)
        // When the window has ended (moved here by hand), the send goes out.
        _ = try await client.setPreferences(contact, paths: ["quiet_hours"]) { _ in }
        _ = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                "UPDATE communication.sends SET next_attempt_at = now() WHERE tenant_id = $1 AND id = $2",
                [
                    .text(t), .uuid(try #require(UUID(uuidString: send.id))),
                ])
        }
        let sent = try await client.settled(send.id)
        #expect(sent.status == .sent && sent.attempts == 1 && sent.lastError.isEmpty, "\(sent)")
    }

    @Test("quiet_until: windows across midnight, outside a window, and a daylight-saving change inside one")
    func quietUntil() async throws {
        func until(_ zone: String, _ start: String, _ end: String, _ at: String) async throws -> String? {
            try await harness.pool.query(
                """
                SELECT to_char(communication.quiet_until($1, $2::time, $3::time, $4::timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS u
                """, [.text(zone), .text(start), .text(end), .text(at)]
            ).first?.optionalString("u")
        }
        #expect(try await until("Europe/Berlin", "21:00", "08:00", "2026-12-07 22:30+01") == "2026-12-08 07:00")
        #expect(try await until("Europe/Berlin", "21:00", "08:00", "2026-12-08 07:59+01") == "2026-12-08 07:00")
        #expect(try await until("Europe/Berlin", "21:00", "08:00", "2026-12-08 08:00+01") == nil)
        #expect(try await until("Europe/Berlin", "21:00", "08:00", "2026-12-07 12:00+01") == nil)
        #expect(try await until("Europe/Berlin", "12:00", "13:00", "2026-12-07 12:30+01") == "2026-12-07 12:00")
        #expect(try await until("Europe/Berlin", "12:00", "13:00", "2026-12-07 13:30+01") == nil)
        // New York springs forward at 02:00 on 2026-03-08: 03:00 that morning is EDT, 07:00 UTC (not 08:00).
        #expect(try await until("America/New_York", "01:00", "03:00", "2026-03-08 01:30-05") == "2026-03-08 07:00")
        // And falls back at 02:00 on 2026-11-01 (01:00–02:00 happens twice): 03:00 that morning is EST, 08:00 UTC; an
        // instant in the second 01:30 (EST) is inside the window too.
        #expect(try await until("America/New_York", "00:30", "03:00", "2026-11-01 01:30-04") == "2026-11-01 08:00")
        #expect(try await until("America/New_York", "00:30", "03:00", "2026-11-01 01:30-05") == "2026-11-01 08:00")
        #expect(try await until("America/New_York", "00:30", "03:00", "2026-11-01 03:00-05") == nil)
        #expect(try await until("", "01:00", "03:00", "2026-03-08 01:30-05") == nil)
    }

    @Test("MERGED combines the loser's preferences into the winner's (do_not_contact if either); UNMERGED restores; ERASED deletes")
    func mergeUnmergeErase() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (loser, winner) = (newID(), newID())
        _ = try await client.setPreferences(loser) {
            $0.doNotContact = true
            $0.language = "de"
            $0.timeZone = "Europe/Berlin"
            $0.quietHours = quiet("22:00", "07:00")
        }
        let own = try await client.setPreferences(winner) {
            $0.preferredChannel = .email
            $0.language = "en"
        }
        try await apply(t, loser, .merged, related: [winner])
        let merged = try await client.preferences(winner)
        #expect(merged.doNotContact && merged.language == "en" && merged.preferredChannel == .email, "\(merged)")
        #expect(merged.timeZone == "Europe/Berlin" && merged.quietHours == quiet("22:00", "07:00") && merged.audit?.updatedBy == "contacts-feed")
        #expect(try await client.preferences(loser).doNotContact)
        try await apply(t, loser, .unmerged, related: [winner])
        let restored = try await client.preferences(winner)
        #expect(!restored.doNotContact && restored.language == "en" && restored.timeZone.isEmpty && restored.quietHours == nil, "\(restored)")
        #expect(restored.preferredChannel == own.preferredChannel && restored.etag == "\"3\"")

        // A winner with nothing stored gets the loser's; the unmerge removes them again. A do_not_contact said while
        // merged (the row written since) stays, and the restored contact says it too.
        let (second, third) = (newID(), newID())
        _ = try await client.setPreferences(second) { $0.language = "fr" }
        try await apply(t, second, .merged, related: [third])
        #expect(try await client.preferences(third).language == "fr")
        try await apply(t, second, .unmerged, related: [third])
        #expect(try await client.preferences(third).etag.isEmpty)
        try await apply(t, second, .merged, related: [third])
        _ = try await client.setPreferences(third, paths: ["do_not_contact"]) { $0.doNotContact = true }
        try await apply(t, second, .unmerged, related: [third])
        #expect(try await client.preferences(third).doNotContact)
        let restoredSecond = try await client.preferences(second)
        #expect(restoredSecond.doNotContact && restoredSecond.language == "fr", "\(restoredSecond)")

        // Written after the merge: a field someone changed keeps its value; the ones still as the merge wrote them go back,
        // a do_not_contact that came from the loser included.
        let (asker, plain) = (newID(), newID())
        _ = try await client.setPreferences(asker) {
            $0.doNotContact = true
            $0.timeZone = "Asia/Tokyo"
            $0.quietHours = quiet("20:00", "09:00")
        }
        _ = try await client.setPreferences(plain) { $0.preferredChannel = .sms }
        try await apply(t, asker, .merged, related: [plain])
        #expect(try await client.preferences(plain).doNotContact)
        _ = try await client.setPreferences(plain, paths: ["language"]) { $0.language = "ja" }
        try await apply(t, asker, .unmerged, related: [plain])
        let unmerged = try await client.preferences(plain)
        #expect(!unmerged.doNotContact && unmerged.language == "ja" && unmerged.preferredChannel == .sms, "\(unmerged)")
        #expect(unmerged.timeZone.isEmpty && unmerged.quietHours == nil, "\(unmerged)")
        #expect(try await client.preferences(asker).doNotContact)

        try await apply(t, third, .erased, related: ["erasure-1"])
        #expect(try await client.preferences(third).etag.isEmpty)
        let receipt = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                SELECT resource::text AS r FROM communication.changes
                WHERE tenant_id = $1 AND resource_type = 'switchboard.communication.v1.ErasureReceipt' AND resource_id = $2
                """, [.text(t), .text(third)]
            ).first?.string("r")
        }
        #expect(receipt?.contains("\"preferencesDeleted\"") == true, "\(receipt ?? "")")
        // The preferences' change history no longer says what they were.
        let history = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                SELECT resource::text AS r FROM communication.changes
                WHERE tenant_id = $1 AND resource_type = 'switchboard.communication.v1.ContactPreferences' AND resource_id = $2
                """, [.text(t), .text(third)]
            ).rows.map { try $0.string("r") }
        }
        #expect(!history.isEmpty && history.allSatisfy { !$0.contains("doNotContact") && !$0.contains("fr") }, "\(history)")
    }
}
