import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// The organization feed's events (`switchboard.common.v1.ChangeEvent` of `switchboard.organization.v1.Organization`
/// and `.Membership`) as changes of the projections behind organization names in search. Resources are proto3 JSON,
/// decoded with the organization service's messages (fields a newer organization adds are ignored).
enum OrganizationFeedMapping {
    static let organizationType = "switchboard.organization.v1.Organization"
    static let membershipType = "switchboard.organization.v1.Membership"

    /// What the projections do with an event.
    enum Outcome: Equatable {
        /// Applies the change.
        case apply(OrganizationChange)
        /// Not for the projections: another resource type, or a kind they do not follow.
        case ignore
        /// An event that cannot be applied (the reason says why): set aside, not retried for ever, so that one broken
        /// event does not stop the feed for every tenant.
        case reject(String)
    }

    /// What to do with an event.
    static func outcome(_ event: Switchboard_Common_V1_ChangeEvent) -> Outcome {
        guard event.resourceType == organizationType || event.resourceType == membershipType else { return .ignore }
        guard let id = UUID(text: event.resourceId) else { return .reject("resource_id is not a UUID") }
        guard !event.tenantId.isEmpty else { return .reject("tenant_id is empty") }
        func change(_ kind: OrganizationChange.Kind) -> Outcome {
            .apply(OrganizationChange(tenantID: event.tenantId, sequence: event.sequence, kind: kind))
        }
        switch (event.resourceType, event.kind) {
        case (organizationType, .created), (organizationType, .updated), (organizationType, .deleted), (organizationType, .undeleted):
            let organization: Switchboard_Organization_V1_Organization
            do {
                organization = try event.resource(as: Switchboard_Organization_V1_Organization.self)
            } catch {
                return .reject("the Organization payload does not decode: \(error)")
            }
            let deleted = event.kind == .deleted || (event.kind != .undeleted && organization.audit?.deleteTime != nil)
            return change(.organization(id: id, name: organization.name, deleted: deleted))
        case (membershipType, .deleted):
            return change(.membershipRemoved(id: id))
        case (membershipType, .created), (membershipType, .updated), (membershipType, .undeleted):
            let membership: Switchboard_Organization_V1_Membership
            do {
                membership = try event.resource(as: Switchboard_Organization_V1_Membership.self)
            } catch {
                return .reject("the Membership payload does not decode: \(error)")
            }
            guard let contact = UUID(text: membership.contactId) else { return .reject("the Membership's contact_id is not a UUID") }
            guard let organization = UUID(text: membership.organizationId) else {
                return .reject("the Membership's organization_id is not a UUID")
            }
            guard membership.endDate.isEmpty || Self.isDate(membership.endDate) else {
                return .reject("the Membership's end_date is not YYYY-MM-DD")
            }
            return change(.membership(id: id, contactID: contact, organizationID: organization, endDate: membership.endDate))
        default:
            return .ignore
        }
    }

    /// Whether `text` is a calendar date `YYYY-MM-DD` (years 1 to 9999): a date the database would refuse would fail
    /// the feed's whole batch.
    static func isDate(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var n = 0
            for i in range {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                n = n * 10 + Int(b[i] - 0x30)
            }
            return n
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), year >= 1, (1...12).contains(month) else {
            return false
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return (1...days).contains(day)
    }
}
