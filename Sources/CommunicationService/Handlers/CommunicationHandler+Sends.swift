import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

extension CommunicationHandler {
    private static func sendWrite(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<SendRecord, Switchboard_Communication_V1_Send> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { SendMapping.proto($0) })
    }

    /// The `SendMessage` RPC (see `communication.proto`).
    public func sendMessage(
        request: Switchboard_Communication_V1_SendMessageRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Send {
        guard let send = request.send else { throw CommunicationError.invalid([Violation("send", "is required", reason: "REQUIRED")]) }
        let data = try SendMapping.data(send, values: request.templateValues)
        // A message that may reach a person in the middle of their night is a manager's decision (a system that sends
        // password resets uses a manager's token), not every user's.
        if data.ignoreQuietHours, try !context.caller().has(atLeast: .manager) {
            throw CommunicationError.forbidden("send.ignore_quiet_hours needs the manager role")
        }
        let write = try Self.sendWrite(request, request.requestId, Methods.sendMessage)
        let named = [ContactReference(field: "send.contact_id", id: data.contactID)]
        if let replay = try await references.check(named, for: write, context: context) { return replay }
        return try write.response(try await sends.send(data, actor: try context.actor(), write: write.options))
    }

    /// The `GetSend` RPC (see `communication.proto`).
    public func getSend(
        request: Switchboard_Communication_V1_GetSendRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Send {
        SendMapping.proto(try await sends.get(id: try InteractionMapping.requiredID(request.id, field: "id"), actor: try context.actor()))
    }

    /// The `ListSends` RPC (see `communication.proto`).
    public func listSends(
        request: Switchboard_Communication_V1_ListSendsRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ListSendsResponse {
        var violations: [Violation] = []
        var query = SendQuery()
        query.contactID = InteractionMapping.optionalID(request.contactId, field: "contact_id", violations: &violations)
        query.campaignID = InteractionMapping.optionalID(request.campaignId, field: "campaign_id", violations: &violations)
        if !request.contactId.isEmpty && !request.campaignId.isEmpty {
            for field in ["contact_id", "campaign_id"] {
                violations.append(Violation(field, "only one of contact_id and campaign_id may be set", reason: "MUTUALLY_EXCLUSIVE"))
            }
        }
        if request.status != .unspecified {
            query.status = SendStatus(rawValue: Int(request.status.protoValue))
            if query.status == nil { violations.append(Violation("status", "is not a send status", reason: "INVALID")) }
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        let (records, next) = try await sends.list(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Communication_V1_ListSendsResponse()
        response.sends = records.map(SendMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    /// The `CancelSend` RPC (see `communication.proto`).
    public func cancelSend(
        request: Switchboard_Communication_V1_CancelSendRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Send {
        let id = try InteractionMapping.requiredID(request.id, field: "id")
        let write = try Self.sendWrite(request, request.requestId, Methods.cancelSend)
        return try write.response(try await sends.cancel(id: id, actor: try context.actor(), write: write.options))
    }
}
