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

typealias ConsentRecordProto = Switchboard_Communication_V1_ConsentRecord

extension CommClient {
    func recordConsent(
        contact: String, channel: Switchboard_Communication_V1_Channel = .email, purpose: String = "marketing",
        status: Switchboard_Communication_V1_ConsentStatus = .granted, basis: Switchboard_Communication_V1_LegalBasis = .consent,
        source: String = "web form", requestID: String = "", configure: (inout ConsentRecordProto) -> Void = { _ in }
    ) async throws -> ConsentRecordProto {
        var record = ConsentRecordProto()
        record.contactId = contact
        record.channel = channel
        record.purpose = purpose
        record.status = status
        record.legalBasis = basis
        record.source = source
        configure(&record)
        var request = Switchboard_Communication_V1_RecordConsentRequest()
        request.consent = record
        request.requestId = requestID
        return try await stub.recordConsent(request, options: options)
    }

    func checkConsent(
        contact: String, channel: Switchboard_Communication_V1_Channel = .email, purpose: String = "marketing"
    ) async throws -> Switchboard_Communication_V1_CheckConsentResponse {
        var request = Switchboard_Communication_V1_CheckConsentRequest()
        request.contactId = contact
        request.channel = channel
        request.purpose = purpose
        return try await stub.checkConsent(request, options: options)
    }

    func consentHistory(
        contact: String, channel: Switchboard_Communication_V1_Channel = .unspecified, purpose: String = "", pageSize: Int32 = 0,
        token: String = ""
    ) async throws -> Switchboard_Communication_V1_ListConsentHistoryResponse {
        var request = Switchboard_Communication_V1_ListConsentHistoryRequest()
        request.contactId = contact
        request.channel = channel
        request.purpose = purpose
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await stub.listConsentHistory(request, options: options)
    }
}

/// The consent ledger over HTTP/2 and PostgreSQL: append-only history, checks that say why, tenant isolation.
@Suite("Communication service: consent", .serialized)
final class ConsentTests {
    let harness: CommunicationHarness
    init() async throws { harness = try await CommunicationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("CheckConsent: no entry is not allowed; the latest entry for the purpose or for all purposes decides, per channel")
    func check() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = newID()
        var decision = try await client.checkConsent(contact: contact)
        #expect(!decision.allowed && decision.reason == .noConsent && decision.decidedBy == nil)

        let grant = try await client.recordConsent(contact: contact, source: "newsletter form") {
            $0.statedAt = Date(timeIntervalSince1970: 1_700_000_000)
        }
        #expect(grant.sequence > 0 && grant.recordedBy == "user-1" && grant.statedAt == Date(timeIntervalSince1970: 1_700_000_000))
        decision = try await client.checkConsent(contact: contact)
        #expect(decision.allowed && decision.reason == .granted && decision.decidedBy == grant)
        // Another channel and another purpose are separate.
        #expect(try await client.checkConsent(contact: contact, channel: .sms).reason == .noConsent)
        #expect(try await client.checkConsent(contact: contact, purpose: "surveys").reason == .noConsent)

        let optOut = try await client.recordConsent(
            contact: contact, purpose: "all", status: .withdrawn, basis: .unspecified, source: "unsubscribe link")
        decision = try await client.checkConsent(contact: contact)
        #expect(!decision.allowed && decision.reason == .withdrawn && decision.decidedBy?.id == optOut.id)
        #expect(try await client.checkConsent(contact: contact, purpose: "surveys").reason == .withdrawn)
        // A later grant for one purpose allows that purpose again; the others stay withdrawn.
        let regrant = try await client.recordConsent(contact: contact, source: "preference centre")
        #expect(try await client.checkConsent(contact: contact).decidedBy?.id == regrant.id)
        #expect(try await client.checkConsent(contact: contact, purpose: "surveys").reason == .withdrawn)
        // The opt-out was for e-mail only.
        #expect(try await client.checkConsent(contact: contact, channel: .sms).reason == .noConsent)

        // When the person said it decides, not when it was recorded: a back-dated withdrawal (a paper form entered
        // today) does not override the newer grant, a back-dated grant does not undo a newer withdrawal, and a
        // withdrawal wins a tie.
        let other = newID()
        let now = Date()
        let newer = try await client.recordConsent(contact: other) { $0.statedAt = now.addingTimeInterval(-60) }
        _ = try await client.recordConsent(contact: other, status: .withdrawn, basis: .unspecified) { $0.statedAt = now.addingTimeInterval(-86400) }
        #expect(try await client.checkConsent(contact: other).decidedBy?.id == newer.id)
        let withdrawal = try await client.recordConsent(contact: other, status: .withdrawn, basis: .unspecified) { $0.statedAt = now }
        _ = try await client.recordConsent(contact: other) { $0.statedAt = now.addingTimeInterval(-3600) }
        #expect(try await client.checkConsent(contact: other).decidedBy?.id == withdrawal.id)
        let tied = newID()
        let tie = Date(timeIntervalSince1970: (now.timeIntervalSince1970 - 10).rounded())
        let tiedWithdrawal = try await client.recordConsent(contact: tied, status: .withdrawn, basis: .unspecified) { $0.statedAt = tie }
        _ = try await client.recordConsent(contact: tied) { $0.statedAt = tie }
        #expect(try await client.checkConsent(contact: tied).decidedBy?.id == tiedWithdrawal.id)
        // A statement dated ahead (a client's clock a few minutes fast) counts from when it was recorded: it cannot
        // outrank the withdrawals the person makes after it, for ever.
        let ahead = newID()
        let early = try await client.recordConsent(contact: ahead) { $0.statedAt = Date().addingTimeInterval(240) }
        #expect(early.statedAt! <= Date().addingTimeInterval(1))
        let unsubscribe = try await client.recordConsent(contact: ahead, status: .withdrawn, basis: .unspecified)
        #expect(try await client.checkConsent(contact: ahead).decidedBy?.id == unsubscribe.id)
        #expect(try await client.checkConsent(contact: ahead).allowed == false)
    }

    @Test("the history lists every entry oldest first, filtered by channel and purpose, in pages; a retried record appends once")
    func history() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = newID()
        let first = try await client.recordConsent(contact: contact, requestID: "consent-1")
        #expect(try await client.recordConsent(contact: contact, requestID: "consent-1") == first)
        let second = try await client.recordConsent(contact: contact, channel: .sms, status: .withdrawn, basis: .unspecified)
        let third = try await client.recordConsent(contact: contact, purpose: "transactional", basis: .contract)
        _ = try await client.recordConsent(contact: newID())
        #expect(try await client.consentHistory(contact: contact).records.map(\.id) == [first.id, second.id, third.id])
        #expect(try await client.consentHistory(contact: contact, channel: .sms).records.map(\.id) == [second.id])
        #expect(try await client.consentHistory(contact: contact, purpose: "transactional").records.map(\.id) == [third.id])
        let page1 = try await client.consentHistory(contact: contact, pageSize: 2)
        #expect(page1.records.map(\.id) == [first.id, second.id])
        let page2 = try await client.consentHistory(contact: contact, pageSize: 2, token: page1.page?.nextPageToken ?? "")
        #expect(page2.records.map(\.id) == [third.id])
        #expect(page2.page?.nextPageToken == "")
        #expect(await code { _ = try await client.consentHistory(contact: newID(), token: page1.page?.nextPageToken ?? "") } == .invalidArgument)
    }

    @Test("invalid statements and checks are INVALID_ARGUMENT naming each field, and record nothing")
    func invalidInput() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = newID()
        let empty = await rpcError {
            _ = try await client.recordConsent(contact: "", channel: .unspecified, purpose: "", status: .unspecified, basis: .unspecified, source: "")
        }
        #expect(fields(empty) == ["consent.contact_id", "consent.channel", "consent.status"])
        let bad = await rpcError {
            _ = try await client.recordConsent(
                contact: contact, purpose: "Marketing!", basis: .unspecified, source: String(repeating: "s", count: 257)
            ) { $0.statedAt = Date().addingTimeInterval(3600) }
        }
        #expect(fields(bad) == ["consent.purpose", "consent.legal_basis", "consent.source", "consent.stated_at"])
        #expect(fields(await rpcError { _ = try await client.recordConsent(contact: "nope") }) == ["consent.contact_id"])
        #expect(fields(await rpcError { _ = try await client.recordConsent(contact: contact, channel: .unrecognized(9)) }) == ["consent.channel"])
        #expect(fields(await rpcError { _ = try await client.recordConsent(contact: contact, basis: .unrecognized(9)) }) == ["consent.legal_basis"])
        #expect(fields(await rpcError { _ = try await client.recordConsent(contact: contact, source: "   ") }) == ["consent.source"])
        let longPurpose = String(repeating: "p", count: 65)
        #expect(fields(await rpcError { _ = try await client.recordConsent(contact: contact, purpose: longPurpose) }) == ["consent.purpose"])
        #expect(try await client.consentHistory(contact: contact).records.isEmpty)

        #expect(fields(await rpcError { _ = try await client.checkConsent(contact: "", channel: .unspecified) }) == ["contact_id", "channel"])
        #expect(fields(await rpcError { _ = try await client.checkConsent(contact: contact, purpose: "all") }) == ["purpose"])
        #expect(fields(await rpcError { _ = try await client.checkConsent(contact: contact, purpose: "") }) == ["purpose"])
        #expect(fields(await rpcError { _ = try await client.consentHistory(contact: contact, purpose: "Bad") }) == ["purpose"])
        #expect(fields(await rpcError { _ = try await client.consentHistory(contact: "x") }) == ["contact_id"])
        #expect(fields(await rpcError { _ = try await client.consentHistory(contact: contact, pageSize: -1) }) == ["page.page_size"])
    }

    @Test("the ledger is append-only in the database: UPDATE, DELETE and TRUNCATE fail for the service's role and for a superuser")
    func appendOnly() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let grant = try await client.recordConsent(contact: newID())
        for statement in [
            "UPDATE communication.consent_ledger SET status = 2", "DELETE FROM communication.consent_ledger",
            "TRUNCATE communication.consent_ledger",
        ] {
            await #expect(throws: PostgresError.self, "\(statement)") {
                try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in _ = try await c.query(statement) }
            }
        }
        let admin = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: harness.service.adminDatabaseConninfo, maxConnections: 1))
        defer { admin.close() }
        for statement in ["UPDATE communication.consent_ledger SET status = 2", "DELETE FROM communication.consent_ledger"] {
            await #expect(throws: PostgresError.self, "superuser: \(statement)") {
                try await admin.transaction { c in _ = try await c.query(statement) }
            }
        }
        #expect(try await client.checkConsent(contact: grant.contactId).decidedBy == grant)
    }

    @Test("tenant B sees no history and no consent of tenant A's contacts; the auth matrix holds")
    func isolationAndAuth() async throws {
        let t = tenant()
        let a = try await harness.client(tenant: t)
        let b = try await harness.client(tenant: tenant())
        let contact = newID()
        _ = try await a.recordConsent(contact: contact)
        #expect(try await b.consentHistory(contact: contact).records.isEmpty)
        #expect(try await b.checkConsent(contact: contact).reason == .noConsent)
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(try await reader.checkConsent(contact: contact).allowed)
        #expect(try await reader.consentHistory(contact: contact).records.count == 1)
        #expect(await code { _ = try await reader.recordConsent(contact: contact) } == .permissionDenied)
        let anonymous = CommClient(stub: CommunicationStub(client: RPCClient(transport: harness.channel)), options: CallOptions())
        #expect(await code { _ = try await anonymous.checkConsent(contact: contact) } == .unauthenticated)
        let service = try await harness.client(tenant: "", token: try await ServiceHarness.serviceToken())
        #expect(await code { _ = try await service.checkConsent(contact: contact) } == .permissionDenied)
    }

    @Test("each entry is published as a ConsentRecord change naming the contact")
    func published() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = newID()
        let grant = try await client.recordConsent(contact: contact)
        let stub = client.stub, options = client.options
        let events = try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var seen: [Switchboard_Common_V1_ChangeEvent] = []
            for try await event in events {
                seen.append(event)
                break
            }
            return seen
        }
        #expect(events.first?.resourceType == "switchboard.communication.v1.ConsentRecord")
        #expect(events.first?.relatedIds == [contact])
        #expect(try ConsentRecordProto(protoJSONText: try #require(events.first?.resource).protoJSONText()) == grant)
    }
}
