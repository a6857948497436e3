import CommunicationService
import ContactsService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The erasure flow across two real services over HTTP/2: contacts erases and publishes ERASED, communication follows the
/// contacts feed, erases what it holds and publishes its receipt, and contacts follows communication's feed and marks
/// the erasure complete.
@Suite("Erasure across contacts and communication", .serialized)
final class ErasureFlowTests {
    let contacts: ServiceHarness
    let harness: CommunicationHarness
    let tokenFiles: [String]

    init() async throws {
        var files: [String] = []
        // Each follows the other's feed with its own service token.
        for service in ["communication", "contacts"] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(service)-feed-token-\(UUID())").path
            try (try await ServiceHarness.serviceToken(service)).write(toFile: file, atomically: true, encoding: .utf8)
            files.append(file)
        }
        tokenFiles = files
        // Each needs the other's address: contacts gets a port chosen now, communication starts first and follows it
        // (its consumer retries until contacts listens).
        let contactsPort = try #require(freePort())
        harness = try await CommunicationHarness.start(
            contactsFeed: CommunicationService.ContactsFeed(
                host: "127.0.0.1", port: contactsPort, token: .file(files[0]), suppressionSecret: ContactsFeedTests.suppressionSecret))
        contacts = try await ServiceHarness.start(
            ContactsService.description(
                limits: ContactsLimits(),
                receiptFeeds: ["communication": UpstreamFeed(host: "127.0.0.1", port: harness.service.port, tokenFile: files[1])]),
            environment: ["SWITCHBOARD_GRPC_PORT": String(contactsPort)])
    }
    deinit {
        let (h, c, files) = (harness, contacts, tokenFiles)
        Task {
            await h.stop()
            await c.stop()
            for file in files { try? FileManager.default.removeItem(atPath: file) }
        }
    }

    static let feedPatience = Duration.seconds(90)

    @Test("EraseContact ends COMPLETE once communication has erased the person and sent its receipt")
    func erasureCompletes() async throws {
        let t = tenant()
        let stub = Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: contacts.channel))
        let options = try await contacts.options(tenant: t, roles: [.admin])
        var contact = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = "Erin"
        contact.name = name
        var email = Switchboard_Contacts_V1_Email()
        email.address = "erin-\(t)@example.com"
        contact.emails = [email]
        var create = Switchboard_Contacts_V1_CreateContactRequest()
        create.contact = contact
        let erin = try await stub.createContact(create, options: options)

        // Communication learns her address from the feed, and holds an interaction and consent of hers.
        let client = try await harness.client(tenant: t)
        let known = try await eventually(timeout: Self.feedPatience) {
            try await harness.pool.query(
                settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM communication.contact_addresses WHERE tenant_id = $1", [.text(t)]
            ).first!.int("n") == 1
        }
        try #require(known, "communication never learned the address from the contacts feed")
        _ = try await client.recordConsent(contact: erin.id)

        var erase = Switchboard_Contacts_V1_EraseContactRequest()
        erase.contactId = erin.id
        let erasure = try await stub.eraseContact(erase, options: options)
        #expect(erasure.awaitedServices == ["communication"] && erasure.status == .pending)

        var get = Switchboard_Contacts_V1_GetErasureRequest()
        get.id = erasure.id
        let completed = try await eventually(timeout: Self.feedPatience) {
            try await stub.getErasure(get, options: options).status == .complete
        }
        let final = try await stub.getErasure(get, options: options)
        try #require(completed, "no receipt from communication: \(final)")
        let receipt = try #require(final.receipts.first)
        #expect(final.receipts.map(\.service) == ["communication"] && final.completeTime != nil)
        let body = try Switchboard_Communication_V1_ErasureReceipt(protoJSONText: try #require(receipt.receipt).protoJSONText())
        #expect(body.contactId == erin.id && body.erasureRequestId == erasure.id && body.consentEntriesDeleted == 1 && body.addressesSuppressed == 1)
        // Communication holds nothing of hers any more: no address, no consent.
        let left = try await harness.pool.query(
            settings: ["app.tenant_id": t],
            """
            SELECT (SELECT count(*) FROM communication.contact_addresses WHERE tenant_id = $1)
                 + (SELECT count(*) FROM communication.consent_ledger WHERE tenant_id = $1) AS n
            """, [.text(t)]
        ).first!.int("n")
        #expect(left == 0)
    }

    @Test("a merge in contacts moves the loser's address to the winner in communication's directory; an unmerge moves it back")
    func mergeFlows() async throws {
        let t = tenant()
        let stub = Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: contacts.channel))
        let options = try await contacts.options(tenant: t)
        func person(_ given: String) async throws -> Switchboard_Contacts_V1_Contact {
            var contact = Switchboard_Contacts_V1_Contact()
            var name = Switchboard_Contacts_V1_PersonName()
            name.given = given
            contact.name = name
            var email = Switchboard_Contacts_V1_Email()
            email.address = "\(given.lowercased())-\(t)@example.com"
            contact.emails = [email]
            var create = Switchboard_Contacts_V1_CreateContactRequest()
            create.contact = contact
            return try await stub.createContact(create, options: options)
        }
        let winner = try await person("Wanda"), loser = try await person("Lara")
        func holder(of address: String) async throws -> String? {
            try await harness.pool.query(
                settings: ["app.tenant_id": t],
                "SELECT contact_id::text AS id FROM communication.contact_addresses WHERE tenant_id = $1 AND address = $2",
                [.text(t), .text(address)]
            ).first?.string("id")
        }
        let address = loser.emails[0].address
        try #require(try await eventually(timeout: Self.feedPatience) { try await holder(of: address) == loser.id })

        var merge = Switchboard_Contacts_V1_MergeContactsRequest()
        merge.winnerId = winner.id
        merge.loserId = loser.id
        _ = try await stub.mergeContacts(merge, options: options)
        #expect(try await eventually(timeout: Self.feedPatience) { try await holder(of: address) == winner.id })

        var unmerge = Switchboard_Contacts_V1_UnmergeContactRequest()
        unmerge.id = loser.id
        _ = try await stub.unmergeContact(unmerge, options: options)
        #expect(try await eventually(timeout: Self.feedPatience) { try await holder(of: address) == loser.id })
    }
}
