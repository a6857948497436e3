import FoundationEssentials
import SwitchboardServiceKit

/// One record the service holds about a person.
public enum SubjectRecord: Sendable, Hashable {
    case membership(MembershipRecord)
    case group(GroupRecord)
}

/// Reads everything held about one person, for GDPR access requests.
public protocol SubjectStore: Sendable {
    /// Every membership (ended, of deleted organizations, of a hidden contact: all of them) and every group entry of
    /// the contact, delivered in batches so memory stays bounded by one batch.
    func export(contact: UUID, batchSize: Int, actor: Actor, deliver: ([SubjectRecord]) async throws -> Void) async throws
}
