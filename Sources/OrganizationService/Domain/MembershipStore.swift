import FoundationEssentials
import SwitchboardServiceKit

/// Persistence of membership roles and memberships. Every call runs inside the actor's tenant. A membership whose
/// contact is deleted or merged away (in the projection of contacts) is hidden from every read.
///
/// The store checks, inside the writing transaction, what a concurrent write could otherwise invalidate: that the
/// contact is live in the projection, the organization and unit exist, the roles' per-organization limits (under the
/// organization's membership lock) and the single primary membership of a contact (under the contact's lock, taken
/// first).
public protocol MembershipStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// The tenant's membership roles.
    func membershipRoles(actor: Actor, includeRetired: Bool) async throws -> [MembershipRole]
    /// Adds a role (`roleExists`, `tooManyRoles`).
    func defineRole(_ role: MembershipRole, actor: Actor, write: WriteOptions<MembershipRole>) async throws -> WriteOutcome<MembershipRole>
    /// Stores a membership; with `primary`, demotes the contact's other primary membership.
    func insertMembership(
        _ data: MembershipData, actor: Actor, write: WriteOptions<MembershipRecord>
    ) async throws
        -> WriteOutcome<MembershipRecord>
    /// A visible membership by id.
    func fetchMembership(id: UUID, actor: Actor) async throws -> MembershipRecord?
    /// Replaces a membership's data if its version is still `expectedVersion`.
    func replaceMembership(
        id: UUID, expectedVersion: Int64, data: MembershipData, changedFields: [String], actor: Actor, write: WriteOptions<MembershipRecord>
    ) async throws -> WriteOutcome<MembershipRecord>
    /// Deletes a membership for good.
    func deleteMembership(
        id: UUID, expectedVersion: Int64?, actor: Actor, write: WriteOptions<MembershipRecord>
    ) async throws
        -> WriteOutcome<MembershipRecord>
    /// Visible memberships in id order; nil when the query names a contact that is not known in the tenant, is deleted
    /// or was merged away (checked in the same round trip).
    func listMemberships(_ query: MembershipQuery, actor: Actor) async throws -> Rows<MembershipRecord>?
}
