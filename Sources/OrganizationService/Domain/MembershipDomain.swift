import FoundationEssentials
import SwitchboardServiceKit

/// The membership use cases: validation and rules here, persistence behind ``MembershipStore``.
public struct MembershipDomain: Sendable {
    let store: any MembershipStore
    /// Also reads organizations (a listing of members needs a live one).
    let organizations: OrganizationDomain

    /// Creates the domain.
    public init(store: any MembershipStore, organizations: OrganizationDomain) {
        self.store = store
        self.organizations = organizations
    }

    /// Defines a membership role.
    public func defineRole(_ role: MembershipRole, actor: Actor, write: WriteOptions<MembershipRole>) async throws -> WriteOutcome<MembershipRole> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var role = role
        role.retired = false
        role.displayName = role.displayName.trimmingSpaces
        try MembershipRules.validate(role)
        return try await store.defineRole(role, actor: actor, write: write)
    }

    /// The tenant's roles.
    public func roles(actor: Actor, includeRetired: Bool) async throws -> [MembershipRole] {
        try await store.membershipRoles(actor: actor, includeRetired: includeRetired)
    }

    /// Creates a membership of a contact known in the tenant (NOT_FOUND otherwise).
    public func create(_ data: MembershipData, actor: Actor, write: WriteOptions<MembershipRecord>) async throws -> WriteOutcome<MembershipRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        try MembershipRules.validate(&data, roles: try await store.membershipRoles(actor: actor, includeRetired: true))
        return try await store.insertMembership(data, actor: actor, write: write)
    }

    /// A visible membership.
    public func get(id: UUID, actor: Actor) async throws -> MembershipRecord {
        guard let record = try await store.fetchMembership(id: id, actor: actor) else {
            throw OrganizationError.notFound(kind: "membership", id: id.uuidString.lowercased())
        }
        return record
    }

    /// Updates the fields named by `paths`, if `etag` (when given) still matches.
    public func update(
        id: UUID, from source: MembershipData, paths: [String], etag: String, actor: Actor, write: WriteOptions<MembershipRecord>
    ) async throws -> WriteOutcome<MembershipRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await get(id: id, actor: actor)
        if !etag.isEmpty, etag != current.etag { throw OrganizationError.etagMismatch(current: current.etag) }
        var data = current.data
        let changed = try MembershipRules.apply(paths: paths, from: source, to: &data)
        try MembershipRules.validate(&data, roles: try await store.membershipRoles(actor: actor, includeRetired: true))
        return try await store.replaceMembership(
            id: id, expectedVersion: current.version, data: data, changedFields: changed, actor: actor, write: write)
    }

    /// Deletes a membership for good.
    public func delete(id: UUID, etag: String, actor: Actor, write: WriteOptions<MembershipRecord>) async throws -> WriteOutcome<MembershipRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await get(id: id, actor: actor)
        if !etag.isEmpty, etag != current.etag { throw OrganizationError.etagMismatch(current: current.etag) }
        return try await store.deleteMembership(id: id, expectedVersion: etag.isEmpty ? nil : current.version, actor: actor, write: write)
    }

    /// A page of memberships: an organization's members (the organization must be live) or a contact's memberships
    /// (the contact must be live in the projection).
    public func list(_ query: MembershipQuery, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([MembershipRecord], String) {
        var query = query
        var violations: [Violation] = []
        if let asOf = query.asOf, !CustomFieldRules.isValidDate(asOf) {
            violations.append(Violation("as_of", "must be a date as YYYY-MM-DD", reason: "INVALID_FORMAT"))
        }
        if let role = query.role, !CustomFieldRules.isValidKey(role) {
            violations.append(Violation("role", "is not a role key", reason: "INVALID_FORMAT"))
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        if let organization = query.organizationID { _ = try await organizations.get(id: organization, actor: actor) }
        query.limit = try OrganizationDomain.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint([
            "memberships", query.organizationID?.uuidString ?? "", "\(query.includeDescendants)", query.contactID?.uuidString ?? "",
            query.role ?? "", query.unitID?.uuidString ?? "", "\(query.includeEnded)", query.asOf ?? "",
        ])
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 1) {
            guard let id = UUID(uuidString: cursor[0]) else {
                throw OrganizationError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            query.afterID = id
        }
        // A contact's liveness is read with its page.
        guard let rows = try await store.listMemberships(query, actor: actor) else {
            throw OrganizationError.notFound(kind: "contact", id: (query.contactID?.uuidString ?? "").lowercased())
        }
        var next = ""
        if rows.more, let last = rows.records.last {
            next = PageToken(cursor: [last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (rows.records, next)
    }
}
