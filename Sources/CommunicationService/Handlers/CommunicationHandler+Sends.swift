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
        let write = try Self.sendWrite(request, request.requestId, Methods.sendMessage)
        return try write.response(try await sends.send(data, actor: try context.actor(), write: write.options))
    }

    /// The `GetSend` RPC (see `communication.proto`).
    public func getSend(
        request: Switchboard_Communication_V1_GetSendRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Send {
        SendMapping.proto(try await sends.get(id: try InteractionMapping.requiredID(request.id, field: "id"), actor: try context.actor()))
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
