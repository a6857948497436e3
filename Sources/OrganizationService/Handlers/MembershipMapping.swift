import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for memberships.
enum MembershipMapping {
    typealias Proto = Switchboard_Organization_V1_Membership

    /// Membership data from a request; `contact_id` and `organization_id` are read on create only.
    static func data(_ m: Proto, create: Bool) throws -> MembershipData {
        var violations: [Violation] = []
        let placeholder = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        var contact = placeholder, organization = placeholder
        if create {
            for (text, field) in [(m.contactId, "membership.contact_id"), (m.organizationId, "membership.organization_id")] {
                if text.isEmpty { violations.append(Violation(field, "is required", reason: "REQUIRED")) }
            }
            contact = OrganizationMapping.optionalID(m.contactId, field: "membership.contact_id", violations: &violations) ?? placeholder
            organization =
                OrganizationMapping.optionalID(m.organizationId, field: "membership.organization_id", violations: &violations) ?? placeholder
        }
        // On update the contact and organization never change (the domain keeps the stored ones).
        var data = MembershipData(contactID: contact, organizationID: organization)
        data.unitID = OrganizationMapping.optionalID(m.unitId, field: "membership.unit_id", violations: &violations)
        data.title = m.title
        data.roles = m.roles
        data.primary = m.primary
        data.startDate = m.startDate.isEmpty ? nil : m.startDate
        data.endDate = m.endDate.isEmpty ? nil : m.endDate
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        return data
    }

    static func proto(_ record: MembershipRecord) -> Proto {
        var m = Proto()
        m.id = record.id.lowercaseText
        m.contactId = record.data.contactID.lowercaseText
        m.organizationId = record.data.organizationID.lowercaseText
        m.unitId = record.data.unitID?.lowercaseText ?? ""
        m.title = record.data.title
        m.roles = record.data.roles
        m.primary = record.data.primary
        m.startDate = record.data.startDate ?? ""
        m.endDate = record.data.endDate ?? ""
        m.contactDisplayName = record.contactDisplayName
        m.audit = OrganizationMapping.audit(
            createdAt: record.createdAt, createdBy: record.createdBy, updatedAt: record.updatedAt, updatedBy: record.updatedBy, deletedAt: nil)
        m.etag = record.etag
        return m
    }

    static func proto(_ role: MembershipRole) -> Switchboard_Organization_V1_MembershipRole {
        var r = Switchboard_Organization_V1_MembershipRole()
        r.key = role.key
        r.displayName = role.displayName
        r.maxPerOrganization = Int32(clamping: role.maxPerOrganization)
        r.retired = role.retired
        return r
    }
}
