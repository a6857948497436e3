import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

extension CommunicationHandler {
    /// The `RecordConsent` RPC (see `communication.proto`).
    public func recordConsent(
        request: Switchboard_Communication_V1_RecordConsentRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ConsentRecord {
        guard let consent = request.consent else { throw CommunicationError.invalid([Violation("consent", "is required", reason: "REQUIRED")]) }
        let statement = try ConsentMapping.statement(consent)
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.recordConsent, response: { (r: ConsentRecord) in ConsentMapping.proto(r) }
        )
        // A withdrawal is never refused: an unsubscribe that arrives with a contact's old (deleted, merged-away) id must
        // still hold should the contact come back.
        if statement.status == .granted {
            let named = [ContactReference(field: "consent.contact_id", id: statement.contactID)]
            if let replay = try await references.check(named, for: write, context: context) { return replay }
        }
        return try write.response(try await ledger.record(statement, actor: try context.actor(), write: write.options))
    }

    /// The `ListConsentHistory` RPC (see `communication.proto`).
    public func listConsentHistory(
        request: Switchboard_Communication_V1_ListConsentHistoryRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ListConsentHistoryResponse {
        let contact = try InteractionMapping.requiredID(request.contactId, field: "contact_id")
        var channel: Channel?
        if request.channel != .unspecified {
            guard let c = ConsentMapping.channel(request.channel) else {
                throw CommunicationError.invalid([Violation("channel", "is not a channel")])
            }
            channel = c
        }
        let (records, next) = try await ledger.history(
            contactID: contact, channel: channel, purpose: request.purpose.isEmpty ? nil : request.purpose,
            pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Communication_V1_ListConsentHistoryResponse()
        response.records = records.map(ConsentMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    /// The `CheckConsent` RPC (see `communication.proto`).
    public func checkConsent(
        request: Switchboard_Communication_V1_CheckConsentRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_CheckConsentResponse {
        var violations: [Violation] = []
        var contact: UUID?
        if request.contactId.isEmpty {
            violations.append(Violation("contact_id", "is required", reason: "REQUIRED"))
        } else {
            contact = InteractionMapping.optionalID(request.contactId, field: "contact_id", violations: &violations)
        }
        let channel = ConsentMapping.requiredChannel(request.channel, field: "channel", violations: &violations)
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return ConsentMapping.proto(
            try await ledger.check(contactID: contact!, channel: channel, purpose: request.purpose, actor: try context.actor()))
    }
}
