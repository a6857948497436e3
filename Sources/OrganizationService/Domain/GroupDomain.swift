import FoundationEssentials
import SwitchboardServiceKit

/// The group use cases: validation and rules here, persistence behind ``GroupStore``.
public struct GroupDomain: Sendable {
    let store: any GroupStore

    /// Creates the domain.
    public init(store: any GroupStore) { self.store = store }

    /// Creates a group.
    public func create(_ data: GroupData, actor: Actor, write: WriteOptions<GroupRecord>) async throws -> WriteOutcome<GroupRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        try GroupRules.validate(&data)
        return try await store.insertGroup(data, actor: actor, write: write)
    }

    /// A live group (or a deleted one when asked).
    public func get(id: UUID, includeDeleted: Bool = false, actor: Actor) async throws -> GroupRecord {
        guard let record = try await store.fetchGroup(id: id, actor: actor), includeDeleted || record.deletedAt == nil else {
            throw OrganizationError.notFound(kind: "group", id: id.uuidString.lowercased())
        }
        return record
    }

    /// Updates a group's fields named by `paths`.
    public func update(
        id: UUID, from source: GroupData, paths: [String], etag: String, actor: Actor, write: WriteOptions<GroupRecord>
    ) async throws -> WriteOutcome<GroupRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await get(id: id, actor: actor)
        if !etag.isEmpty, etag != current.etag { throw OrganizationError.etagMismatch(current: current.etag) }
        var data = current.data
        let changed = try GroupRules.apply(paths: paths, from: source, to: &data)
        try GroupRules.validate(&data)
        if data.parentGroupID == id {
            throw OrganizationError.cycle(kind: "group", id: id.uuidString.lowercased(), parentID: id.uuidString.lowercased())
        }
        return try await store.replaceGroup(id: id, expectedVersion: current.version, data: data, changedFields: changed, actor: actor, write: write)
    }

    /// Soft-deletes or restores a group.
    public func setDeleted(
        id: UUID, deleted: Bool, etag: String, actor: Actor, write: WriteOptions<GroupRecord>
    ) async throws -> WriteOutcome<GroupRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await get(id: id, includeDeleted: true, actor: actor)
        if deleted, current.deletedAt != nil { throw OrganizationError.notFound(kind: "group", id: id.uuidString.lowercased()) }
        if !etag.isEmpty, etag != current.etag { throw OrganizationError.etagMismatch(current: current.etag) }
        return try await store.setGroupDeleted(
            id: id, deleted: deleted, expectedVersion: etag.isEmpty ? nil : current.version, actor: actor, write: write)
    }

    /// A page of groups.
    public func list(_ query: GroupQuery, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([GroupRecord], String) {
        var query = query
        query.limit = try OrganizationDomain.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint([
            "groups", query.parentGroupID?.uuidString ?? "", query.namePrefix ?? "", "\(query.includeDeleted)",
        ])
        query.after = try OrganizationDomain.resume(pageToken, fingerprint: fingerprint)
        let rows = try await store.listGroups(query, actor: actor)
        return (rows.records, Self.nameToken(rows, fingerprint: fingerprint))
    }

    static func nameToken(_ rows: Rows<GroupRecord>, fingerprint: UInt64) -> String {
        guard rows.more, let last = rows.records.last else { return "" }
        return PageToken(cursor: [last.data.name.lowercased(), last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
    }

    /// Adds (`adding`) or removes up to ``GroupRules/maxBulkContacts`` contacts.
    /// - Parameter contacts: the valid ids of the request (the handler reports the others as invalid).
    public func change(
        group: UUID, contacts: [UUID], adding: Bool, actor: Actor, write: WriteOptions<GroupBulkChange>
    ) async throws -> WriteOutcome<GroupBulkChange> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        _ = try await get(id: group, actor: actor)
        let unique = Array(Set(contacts))
        return adding
            ? try await store.addMembers(group: group, contacts: unique, actor: actor, write: write)
            : try await store.removeMembers(group: group, contacts: unique, actor: actor, write: write)
    }

    /// A page of a live group's members.
    public func members(group: UUID, includeSubgroups: Bool, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([GroupMember], String) {
        _ = try await get(id: group, actor: actor)
        let limit = try OrganizationDomain.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint(["group-members", group.uuidString, "\(includeSubgroups)"])
        var after: UUID?
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 1) {
            guard let id = UUID(uuidString: cursor[0]) else {
                throw OrganizationError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            after = id
        }
        let rows = try await store.listGroupMembers(group: group, includeSubgroups: includeSubgroups, after: after, limit: limit, actor: actor)
        var next = ""
        if rows.more, let last = rows.records.last {
            next = PageToken(cursor: [last.contactID.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (rows.records, next)
    }

    /// A page of the live groups a live contact was added to.
    public func groups(of contact: UUID, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([GroupRecord], String) {
        let limit = try OrganizationDomain.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint(["contact-groups", contact.uuidString])
        let after = try OrganizationDomain.resume(pageToken, fingerprint: fingerprint)
        // The contact's liveness is read with its page.
        guard let rows = try await store.contactGroups(contact: contact, after: after, limit: limit, actor: actor) else {
            throw OrganizationError.notFound(kind: "contact", id: contact.uuidString.lowercased())
        }
        return (rows.records, Self.nameToken(rows, fingerprint: fingerprint))
    }
}
