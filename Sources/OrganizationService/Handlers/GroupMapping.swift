import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for groups.
enum GroupMapping {
    typealias Proto = Switchboard_Organization_V1_Group

    static func data(_ g: Proto) throws -> GroupData {
        var violations: [Violation] = []
        let parent = OrganizationMapping.optionalID(g.parentGroupId, field: "group.parent_group_id", violations: &violations)
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        return GroupData(name: g.name, description: g.description, parentGroupID: parent)
    }

    static func proto(_ record: GroupRecord) -> Proto {
        var g = Proto()
        g.id = record.id.lowercaseText
        g.name = record.data.name
        g.description = record.data.description
        g.parentGroupId = record.data.parentGroupID?.lowercaseText ?? ""
        g.audit = OrganizationMapping.audit(
            createdAt: record.createdAt, createdBy: record.createdBy, updatedAt: record.updatedAt, updatedBy: record.updatedBy,
            deletedAt: record.deletedAt)
        g.etag = record.etag
        return g
    }

    static func proto(_ results: [GroupMemberResult]) -> Switchboard_Organization_V1_BulkGroupMembersResponse {
        var response = Switchboard_Organization_V1_BulkGroupMembersResponse()
        response.results = results.map { result in
            var r = Switchboard_Organization_V1_GroupMemberResult()
            r.contactId = result.contactID
            r.outcome = Switchboard_Organization_V1_GroupMemberResult.Outcome(protoValue: Int32(result.outcome.rawValue))
            return r
        }
        return response
    }
}
