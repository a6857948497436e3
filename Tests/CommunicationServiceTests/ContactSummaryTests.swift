import CommunicationService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// GetContactSummary: a contact's first pages of ListInteractions and ListConsentHistory in one call, over HTTP/2 and
/// PostgreSQL.
@Suite("Communication service: contact summary", .serialized)
final class ContactSummaryTests {
    let harness: CommunicationHarness
    init() async throws { harness = try await CommunicationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private static func summary(
        _ client: CommClient, _ contact: String, pageSize: Int32 = 0
    ) async throws -> Switchboard_Communication_V1_ContactSummary {
        var request = Switchboard_Communication_V1_GetContactSummaryRequest()
        request.contactId = contact
        request.pageSize = pageSize
        return try await client.stub.getContactSummary(request, options: client.options)
    }

    /// The contact's interactions as ListInteractions answers them.
    private static func interactions(
        _ client: CommClient, _ contact: String, pageSize: Int32, token: String = ""
    ) async throws -> Switchboard_Communication_V1_ListInteractionsResponse {
        try await client.list(pageSize: pageSize, token: token) { $0.contactId = contact }
    }

    /// An interaction about `contacts` that happened `daysAgo` days ago.
    private static func log(_ client: CommClient, _ contacts: [String], daysAgo: Double, subject: String = "Call") async throws -> Interaction {
        try await client.log(.call, subject: subject) {
            $0.contactIds = contacts
            $0.occurredAt = Date().addingTimeInterval(-daysAgo * 86_400)
        }
    }

    @Test("the summary is ListInteractions' (newest first) and ListConsentHistory's (oldest first) first page of 10")
    func matchesLists() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (contact, other) = (newID(), newID())
        let older = try await Self.log(client, [contact], daysAgo: 2, subject: "Intro")
        let newer = try await Self.log(client, [other, contact], daysAgo: 1, subject: "Follow-up")
        _ = try await Self.log(client, [other], daysAgo: 0)
        let deleted = try await Self.log(client, [contact], daysAgo: 0)
        _ = try await client.delete(deleted.id)
        let grant = try await client.recordConsent(contact: contact)
        let withdrawal = try await client.recordConsent(contact: contact, channel: .sms, status: .withdrawn, basis: .unspecified)
        _ = try await client.recordConsent(contact: other)

        let summary = try await Self.summary(client, contact)
        #expect(summary.interactions == (try await Self.interactions(client, contact, pageSize: 10)))
        #expect(summary.consents == (try await client.consentHistory(contact: contact, pageSize: 10)))
        #expect(summary.interactions?.interactions.map(\.id) == [newer.id, older.id])
        #expect(summary.interactions?.interactions.map(\.subject) == ["Follow-up", "Intro"])
        #expect(summary.consents?.records == [grant, withdrawal])
        #expect(summary.interactions?.page?.nextPageToken == "" && summary.consents?.page?.nextPageToken == "")
        // A read-only caller gets the same answer.
        #expect(try await Self.summary(try await harness.client(tenant: t, roles: [.readOnly]), contact) == summary)
    }

    @Test("page_size bounds both lists and their tokens continue through the list RPCs; bad page_size or contact_id is INVALID_ARGUMENT")
    func pagingAndValidation() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = newID()
        let older = try await Self.log(client, [contact], daysAgo: 2)
        let newer = try await Self.log(client, [contact], daysAgo: 1)
        let first = try await client.recordConsent(contact: contact)
        let second = try await client.recordConsent(contact: contact, purpose: "surveys")

        let one = try await Self.summary(client, contact, pageSize: 1)
        #expect(one.interactions == (try await Self.interactions(client, contact, pageSize: 1)))
        #expect(one.consents == (try await client.consentHistory(contact: contact, pageSize: 1)))
        #expect(one.interactions?.interactions.map(\.id) == [newer.id])
        #expect(one.consents?.records.map(\.id) == [first.id])
        let interactionToken = one.interactions?.page?.nextPageToken ?? ""
        let consentToken = one.consents?.page?.nextPageToken ?? ""
        #expect(!interactionToken.isEmpty && !consentToken.isEmpty)
        #expect(try await Self.interactions(client, contact, pageSize: 1, token: interactionToken).interactions.map(\.id) == [older.id])
        #expect(try await client.consentHistory(contact: contact, pageSize: 1, token: consentToken).records.map(\.id) == [second.id])
        let fifty = try await Self.summary(client, contact, pageSize: 50)
        #expect(fifty.interactions?.interactions.count == 2 && fifty.consents?.records.count == 2)

        for size: Int32 in [51, -1, .max, .min] {
            let error = await rpcError { _ = try await Self.summary(client, contact, pageSize: size) }
            #expect(error?.code == .invalidArgument && fields(error) == ["page_size"], "page_size \(size): \(String(describing: error))")
        }
        // An empty contact_id would list every interaction of the tenant through ListInteractions: refused here.
        for id in ["", "nope", "12345678-1234-1234-1234-12345678901z"] {
            let error = await rpcError { _ = try await Self.summary(client, id) }
            #expect(error?.code == .invalidArgument && fields(error) == ["contact_id"], "contact_id \(id): \(String(describing: error))")
        }
    }

    @Test("another tenant's summary of the same contact holds none of the first tenant's interactions or consents, as its lists")
    func tenantIsolation() async throws {
        let a = try await harness.client(tenant: tenant())
        let b = try await harness.client(tenant: tenant(), user: "admin", roles: [.admin])
        let contact = newID()
        let theirs = try await Self.log(a, [contact], daysAgo: 1, subject: "tenant secret")
        _ = try await a.recordConsent(contact: contact)
        #expect(try await Self.summary(a, contact).interactions?.interactions.map(\.id) == [theirs.id])

        let empty = try await Self.summary(b, contact)
        #expect(empty.interactions == (try await Self.interactions(b, contact, pageSize: 10)))
        #expect(empty.consents == (try await b.consentHistory(contact: contact, pageSize: 10)))
        #expect(empty.interactions?.interactions.isEmpty == true && empty.consents?.records.isEmpty == true)
        // B's own entries about the same contact id are B's alone.
        let mine = try await Self.log(b, [contact], daysAgo: 0, subject: "B's")
        let consent = try await b.recordConsent(contact: contact, channel: .sms)
        let own = try await Self.summary(b, contact)
        #expect(own.interactions?.interactions.map(\.id) == [mine.id])
        #expect(own.consents?.records.map(\.id) == [consent.id])
        #expect(try await Self.summary(a, contact).interactions?.interactions.map(\.id) == [theirs.id])
    }
}
