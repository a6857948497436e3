import FoundationEssentials
import SwitchboardServiceKit

/// The organization use cases: validation and rules here, persistence behind ``OrganizationStore``.
public struct OrganizationDomain: Sendable {
    let store: any OrganizationStore
    /// Bytes of organizations in one ListOrganizations page (a page always holds at least one).
    let pageBytes: Int
    /// Bounds the tree streams running at once (each holds a pool connection while its client reads).
    let trees: StreamLimiter
    /// Largest page.
    public static let maxPageSize = 500
    /// Page size when the caller gives none.
    public static let defaultPageSize = 50
    /// Most ids of one BatchGetOrganizations.
    public static let maxBatchIDs = 100
    /// Nodes read from the database per step of the tree stream.
    public static let treeBatchSize = 256

    /// Creates the domain over a store.
    /// - Parameters:
    ///   - pageBytes: the byte budget of a ListOrganizations page.
    ///   - treeStreams: most tree streams at once.
    public init(store: any OrganizationStore, pageBytes: Int = 1 << 20, treeStreams: Int = 4) {
        self.store = store
        self.pageBytes = pageBytes
        self.trees = StreamLimiter(limit: treeStreams, what: "organization tree streams")
    }

    // MARK: Organizations

    /// Creates an organization.
    public func create(
        _ data: OrganizationData, actor: Actor, write: WriteOptions<OrganizationRecord>
    ) async throws -> WriteOutcome<OrganizationRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        if data.ownerID.isEmpty { data.ownerID = actor.userID }
        let definitions = try await store.fieldDefinitions(actor: actor, includeRetired: true)
        try OrganizationRules.validate(&data, definitions: definitions, requireAllRequiredFields: true)
        return try await store.insert(data, actor: actor, write: write)
    }

    /// A live organization (or a deleted one when asked).
    public func get(id: UUID, includeDeleted: Bool = false, actor: Actor) async throws -> OrganizationRecord {
        guard let record = try await store.fetch(id: id, actor: actor), includeDeleted || record.deletedAt == nil else {
            throw OrganizationError.notFound(kind: "organization", id: id.uuidString.lowercased())
        }
        return record
    }

    /// Live organizations by id, in the order asked, and the ids not found.
    public func batchGet(ids: [UUID], actor: Actor) async throws -> [UUID: OrganizationRecord] {
        Dictionary(try await store.fetch(ids: ids, actor: actor).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Updates the fields named by `paths`, if `etag` (when given) still matches.
    public func update(
        id: UUID, from source: OrganizationData, paths: [String], etag: String, actor: Actor, write: WriteOptions<OrganizationRecord>
    ) async throws -> WriteOutcome<OrganizationRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await get(id: id, actor: actor)
        if !etag.isEmpty, etag != current.etag { throw OrganizationError.etagMismatch(current: current.etag) }
        var data = current.data
        let changed = try OrganizationRules.apply(paths: paths, from: source, to: &data)
        let definitions = try await store.fieldDefinitions(actor: actor, includeRetired: true)
        try OrganizationRules.validate(&data, definitions: definitions, requireAllRequiredFields: false, storedFields: current.data.customFields)
        if data.ownerID.isEmpty {
            throw OrganizationError.invalid([Violation("organization.owner_id", "must not be empty", reason: "REQUIRED")])
        }
        if data.parentID == id {
            throw OrganizationError.cycle(kind: "organization", id: id.uuidString.lowercased(), parentID: id.uuidString.lowercased())
        }
        // Nothing changes (the fields as they were, once normalised): no new version, etag or UPDATED event.
        if data == current.data { return .fresh(current) }
        return try await store.replace(
            id: id, expectedVersion: current.version, data: data, changedFields: changed, actor: actor, write: write)
    }

    /// Soft-deletes (`deleted`) or restores an organization.
    public func setDeleted(
        id: UUID, deleted: Bool, etag: String, actor: Actor, write: WriteOptions<OrganizationRecord>
    ) async throws -> WriteOutcome<OrganizationRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await get(id: id, includeDeleted: true, actor: actor)
        if deleted, current.deletedAt != nil { throw OrganizationError.notFound(kind: "organization", id: id.uuidString.lowercased()) }
        if !etag.isEmpty, etag != current.etag { throw OrganizationError.etagMismatch(current: current.etag) }
        return try await store.setDeleted(
            id: id, deleted: deleted, expectedVersion: etag.isEmpty ? nil : current.version, actor: actor, write: write)
    }

    /// A page of organizations and the token for the next one. A page ends at `pageSize` organizations or before the
    /// one that would take the page's encoded size past the page budget (a first one always fits).
    public func list(
        _ query: OrganizationQuery, pageSize: Int, pageToken: String, actor: Actor, encodedSize: (OrganizationRecord) -> Int
    ) async throws -> ([OrganizationRecord], String) {
        var query = query
        query.limit = try Self.pageLimit(pageSize)
        query.maxBytes = pageBytes
        let fingerprint = PageToken.fingerprint([
            query.parentID?.uuidString ?? "", "\(query.topLevelOnly)", query.industry ?? "", "\(query.size?.rawValue ?? 0)", query.tag ?? "",
            query.namePrefix ?? "", query.domain ?? "", "\(query.includeDeleted)",
        ])
        query.after = try Self.resume(pageToken, fingerprint: fingerprint)
        let rows = try await store.list(query, actor: actor)
        var page: [OrganizationRecord] = []
        var bytes = 0
        for record in rows.records {
            let size = encodedSize(record)
            if !page.isEmpty, size > pageBytes - bytes { break }
            page.append(record)
            bytes += size
        }
        var next = ""
        if let last = page.last, rows.more || page.count < rows.records.count {
            next = PageToken(cursor: [last.data.name.lowercased(), last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (page, next)
    }

    // MARK: Hierarchy

    /// Streams the tree below a live organization, in batches.
    /// - Parameters:
    ///   - maxDepth: levels below the root, 0 for ``OrganizationRules/maxHierarchyDepth``.
    public func tree(root: UUID, maxDepth: Int, actor: Actor, deliver: ([TreeNode]) async throws -> Void) async throws {
        guard (0...OrganizationRules.maxHierarchyDepth).contains(maxDepth) else {
            throw OrganizationError.invalid([
                Violation("max_depth", "must be from 0 to \(OrganizationRules.maxHierarchyDepth)", reason: "OUT_OF_RANGE")
            ])
        }
        let depth = maxDepth == 0 ? OrganizationRules.maxHierarchyDepth : maxDepth
        let found = try await trees.run(tenant: actor.tenantID) {
            try await store.tree(root: root, maxDepth: depth, batchSize: Self.treeBatchSize, actor: actor, deliver: deliver)
        }
        guard found else { throw OrganizationError.notFound(kind: "organization", id: root.uuidString.lowercased()) }
    }

    /// The ancestors of a live organization, parent first.
    public func ancestors(of id: UUID, actor: Actor) async throws -> [OrganizationRecord] {
        _ = try await get(id: id, actor: actor)
        return try await store.ancestors(of: id, actor: actor)
    }

    // MARK: Field definitions

    /// Defines a custom field.
    public func define(
        _ definition: CustomFieldDefinition, actor: Actor, write: WriteOptions<CustomFieldDefinition>
    ) async throws -> WriteOutcome<CustomFieldDefinition> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var definition = definition
        definition.retired = false
        let violations = CustomFieldRules.violations(of: definition)
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        return try await store.define(definition, actor: actor, write: write)
    }

    /// Retires a custom field.
    public func retire(key: String, actor: Actor, write: WriteOptions<CustomFieldDefinition>) async throws -> WriteOutcome<CustomFieldDefinition> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        return try await store.retire(key: key, actor: actor, write: write)
    }

    /// The tenant's field definitions.
    public func fieldDefinitions(actor: Actor, includeRetired: Bool) async throws -> [CustomFieldDefinition] {
        try await store.fieldDefinitions(actor: actor, includeRetired: includeRetired)
    }

    // MARK: Units

    /// Creates a unit.
    public func createUnit(_ data: UnitData, actor: Actor, write: WriteOptions<UnitRecord>) async throws -> WriteOutcome<UnitRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        try OrganizationRules.validate(&data)
        return try await store.insertUnit(data, actor: actor, write: write)
    }

    /// A live unit (or a deleted one when asked).
    public func getUnit(id: UUID, includeDeleted: Bool = false, actor: Actor) async throws -> UnitRecord {
        guard let record = try await store.fetchUnit(id: id, actor: actor), includeDeleted || record.deletedAt == nil else {
            throw OrganizationError.notFound(kind: "unit", id: id.uuidString.lowercased())
        }
        return record
    }

    /// Updates a unit's fields named by `paths`.
    public func updateUnit(
        id: UUID, from source: UnitData, paths: [String], etag: String, actor: Actor, write: WriteOptions<UnitRecord>
    ) async throws -> WriteOutcome<UnitRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await getUnit(id: id, actor: actor)
        if !etag.isEmpty, etag != current.etag { throw OrganizationError.etagMismatch(current: current.etag) }
        var data = current.data
        let changed = try OrganizationRules.apply(paths: paths, from: source, to: &data)
        try OrganizationRules.validate(&data)
        if data.parentUnitID == id {
            throw OrganizationError.cycle(kind: "unit", id: id.uuidString.lowercased(), parentID: id.uuidString.lowercased())
        }
        return try await store.replaceUnit(
            id: id, expectedVersion: current.version, data: data, changedFields: changed, actor: actor, write: write)
    }

    /// Soft-deletes or restores a unit.
    public func setUnitDeleted(
        id: UUID, deleted: Bool, etag: String, actor: Actor, write: WriteOptions<UnitRecord>
    ) async throws -> WriteOutcome<UnitRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await getUnit(id: id, includeDeleted: true, actor: actor)
        if deleted, current.deletedAt != nil { throw OrganizationError.notFound(kind: "unit", id: id.uuidString.lowercased()) }
        if !etag.isEmpty, etag != current.etag { throw OrganizationError.etagMismatch(current: current.etag) }
        return try await store.setUnitDeleted(
            id: id, deleted: deleted, expectedVersion: etag.isEmpty ? nil : current.version, actor: actor, write: write)
    }

    /// A page of an organization's units.
    public func listUnits(_ query: UnitQuery, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([UnitRecord], String) {
        _ = try await get(id: query.organizationID, actor: actor)
        var query = query
        query.limit = try Self.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint([
            "units", query.organizationID.uuidString, query.parentUnitID?.uuidString ?? "", "\(query.includeDeleted)",
        ])
        query.after = try Self.resume(pageToken, fingerprint: fingerprint)
        let rows = try await store.listUnits(query, actor: actor)
        var next = ""
        if let last = rows.records.last, rows.more {
            next = PageToken(cursor: [last.data.name.lowercased(), last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (rows.records, next)
    }

    // MARK: Pages

    static func pageLimit(_ pageSize: Int) throws -> Int {
        guard pageSize >= 0 else { throw OrganizationError.invalid([Violation("page.page_size", "must not be negative")]) }
        return pageSize == 0 ? defaultPageSize : min(pageSize, maxPageSize)
    }

    /// The cursor of a page token (client input: tokens are not signed), checked before it reaches SQL.
    static func resume(_ token: String, fingerprint: UInt64) throws -> NameCursor? {
        guard let cursor = try PageToken.resume(token, fingerprint: fingerprint, parts: 2) else { return nil }
        guard let id = UUID(uuidString: cursor[1]), OrganizationRules.nameBound.allows(cursor[0]) else {
            throw OrganizationError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
        }
        return NameCursor(nameKey: cursor[0], id: id)
    }
}
