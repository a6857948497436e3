import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CommunicationHandler {
    /// The `ExportSubject` RPC (see `communication.proto`).
    public func exportSubject(
        request: Switchboard_Communication_V1_ExportSubjectRequest, responses: RPCWriter<Switchboard_Communication_V1_SubjectRecord>,
        context: ServerContext
    ) async throws {
        let contact = try InteractionMapping.requiredID(request.contactId, field: "contact_id")
        try await subjects.export(contact: contact, actor: try context.actor()) { records in
            for record in records {
                var message = Switchboard_Communication_V1_SubjectRecord()
                switch record {
                case .interaction(let i): message.record = .interaction(InteractionMapping.proto(i))
                case .consent(let c): message.record = .consent(ConsentMapping.proto(c))
                case .send(let s): message.record = .send(SendMapping.proto(s))
                case .preferences(let p): message.record = .preferences(PreferencesMapping.proto(p))
                }
                try await responses.write(message)
            }
        }
    }
}
