import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for erasures.
enum ErasureMapping {
    static func proto(_ r: ErasureRecord) -> Switchboard_Contacts_V1_Erasure {
        var p = Switchboard_Contacts_V1_Erasure()
        p.id = r.id.lowercaseText
        p.contactId = r.contactID.lowercaseText
        p.status = .init(protoValue: Int32(r.status.rawValue))
        p.requestTime = r.requestedAt
        p.requestedBy = r.requestedBy
        p.deadline = r.deadline
        p.completeTime = r.completedAt
        p.awaitedServices = r.awaited
        p.mergedContactIds = r.contactIDs.filter { $0 != r.contactID }.map(\.lowercaseText)
        p.receipts = r.receipts.map { receipt in
            var m = Switchboard_Contacts_V1_Erasure.Receipt()
            m.service = receipt.service
            m.contactId = receipt.contactID.lowercaseText
            m.receiveTime = receipt.receivedAt
            // Stored as the service published it (its proto3 JSON object); a payload that no longer parses shows empty.
            m.receipt = (try? Google_Protobuf_Struct(protoJSONText: receipt.receiptJSON)) ?? Google_Protobuf_Struct()
            return m
        }
        var local = Switchboard_Contacts_V1_Erasure.Local()
        local.emailsReleased = Int32(clamping: r.local.emailsReleased)
        local.changesRedacted = Int32(clamping: r.local.changesRedacted)
        local.storedResponsesRemoved = Int32(clamping: r.local.storedResponsesRemoved)
        local.importRowsDeleted = Int32(clamping: r.local.importRowsDeleted)
        local.membershipsDeleted = Int32(clamping: r.local.membershipsDeleted)
        local.deadLettersDeleted = Int32(clamping: r.local.deadLettersDeleted)
        local.mergesDeleted = Int32(clamping: r.local.mergesDeleted)
        local.contactsDeleted = Int32(clamping: r.local.contactsDeleted)
        local.relationshipsDeleted = Int32(clamping: r.local.relationshipsDeleted)
        p.local = local
        return p
    }
}

extension ContactsHandler {
    /// The `EraseContact` RPC (see `contacts.proto`).
    public func eraseContact(
        request: Switchboard_Contacts_V1_EraseContactRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_Erasure {
        let id = try Self.uuid(request.contactId, field: "contact_id")
        // Idempotent by its contact, not by request id: a retry returns the erasure as it is now, not a stored PENDING.
        let write = try IdempotentWrite(request: request, requestID: "", method: Methods.eraseContact, response: { ErasureMapping.proto($0) })
        return try write.response(try await erasures.erase(contactID: id, actor: try context.actor(), write: write.options))
    }

    /// The `GetErasure` RPC (see `contacts.proto`).
    public func getErasure(
        request: Switchboard_Contacts_V1_GetErasureRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_Erasure {
        let id = try Self.uuid(request.id, field: "id", what: "an erasure id")
        return ErasureMapping.proto(try await erasures.get(id: id, actor: try context.actor()))
    }

    /// The `ListErasures` RPC (see `contacts.proto`).
    public func listErasures(
        request: Switchboard_Contacts_V1_ListErasuresRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_ListErasuresResponse {
        var status: ErasureStatus?
        if request.status != .unspecified {
            status = ErasureStatus(rawValue: Int(request.status.protoValue))
            if status == nil { throw ContactsError.invalid([Violation("status", "is not an erasure status", reason: "INVALID")]) }
        }
        let (records, next) = try await erasures.list(
            status: status, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Contacts_V1_ListErasuresResponse()
        response.erasures = records.map(ErasureMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }
}
