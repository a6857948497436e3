import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension OrganizationHandler {
    /// Records read from the database per step of ExportSubject.
    static let exportBatchSize = 256

    public func exportSubject(
        request: Switchboard_Organization_V1_ExportSubjectRequest, responses: RPCWriter<Switchboard_Organization_V1_SubjectRecord>,
        context: ServerContext
    ) async throws {
        let contact = try OrganizationMapping.requiredID(request.contactId, field: "contact_id")
        try await subjects.export(contact: contact, batchSize: Self.exportBatchSize, actor: try context.actor()) { records in
            for record in records {
                var message = Switchboard_Organization_V1_SubjectRecord()
                switch record {
                case .membership(let m): message.record = .membership(MembershipMapping.proto(m))
                case .group(let g): message.record = .group(GroupMapping.proto(g))
                }
                try await responses.write(message)
            }
        }
    }
}
