import FoundationEssentials
import SwitchboardServiceKit

/// How a related contact stands to a contact (the contract's `RelationshipType`, by the same numbers).
public enum RelationshipKind: Int, Sendable, Hashable, CaseIterable {
    case spouse = 1, partner, parent, child, sibling, relative, manager, report, assistant, executive, colleague, mentor, mentee,
        referrer, referral, friend, other

    /// How the contact stands to the related one: the same tie seen from the other side.
    public var inverse: RelationshipKind {
        switch self {
        case .parent: .child
        case .child: .parent
        case .manager: .report
        case .report: .manager
        case .assistant: .executive
        case .executive: .assistant
        case .mentor: .mentee
        case .mentee: .mentor
        case .referrer: .referral
        case .referral: .referrer
        default: self
        }
    }
}

/// A relationship as stored: from `contactID`, `relatedID` is its `kind`.
public struct RelationshipRecord: Sendable, Hashable {
    /// The id.
    public var id: UUID
    /// The side the relationship is stated from.
    public var contactID: UUID
    /// The other side: the contact's `kind`.
    public var relatedID: UUID
    /// The type, from `contactID`.
    public var kind: RelationshipKind
    /// 0 (not rated) to 5.
    public var strength: Int
    /// Free text.
    public var note: String
    /// Incremented by every change; the etag is derived from it.
    public var version: Int64
    /// When and by whom it was created and last changed.
    public var createdAt: Date
    /// Who created it.
    public var createdBy: String
    /// When it last changed.
    public var updatedAt: Date
    /// Who changed it last.
    public var updatedBy: String

    /// Creates a record.
    public init(
        id: UUID, contactID: UUID, relatedID: UUID, kind: RelationshipKind, strength: Int, note: String, version: Int64, createdAt: Date,
        createdBy: String, updatedAt: Date, updatedBy: String
    ) {
        self.id = id
        self.contactID = contactID
        self.relatedID = relatedID
        self.kind = kind
        self.strength = strength
        self.note = note
        self.version = version
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
    }

    /// The etag clients pass back for conditional updates.
    public var etag: String { "\"\(version)\"" }

    /// The same relationship seen from `viewer` (one of its sides): from the related side, the sides swap and the type
    /// is the inverse.
    public func seen(from viewer: UUID) -> RelationshipRecord {
        guard viewer == relatedID, viewer != contactID else { return self }
        var flipped = self
        flipped.contactID = relatedID
        flipped.relatedID = contactID
        flipped.kind = kind.inverse
        return flipped
    }

    /// The other side than `contact`.
    public func other(than contact: UUID) -> UUID { contact == contactID ? relatedID : contactID }
}

/// One relationship as a walk reads it: only what the walk needs, seen from its `near` side.
public struct RelationshipEdge: Sendable, Hashable {
    /// The relationship's id.
    public var id: UUID
    /// The side the walk came from.
    public var near: UUID
    /// The side it leads to.
    public var far: UUID
    /// The type, seen from `near`.
    public var kind: RelationshipKind
    /// 0 (not rated) to 5.
    public var strength: Int

    /// Creates an edge.
    public init(id: UUID, near: UUID, far: UUID, kind: RelationshipKind, strength: Int) {
        self.id = id
        self.near = near
        self.far = far
        self.kind = kind
        self.strength = strength
    }
}

/// A contact reached by walking relationships, with the path that reached it first.
public struct RelatedContactRecord: Sendable {
    /// The contact.
    public var contact: ContactRecord
    /// The relationships walked, each seen from the contact nearer the start.
    public var path: [RelationshipRecord]

    /// Creates a result.
    public init(contact: ContactRecord, path: [RelationshipRecord]) {
        self.contact = contact
        self.path = path
    }
}

/// Relationships' rules, pure (no I/O).
public enum RelationshipRules {
    /// The longest note.
    public static let noteLimit = TextLimit(characters: 1000, bytes: 4000)
    /// The strongest tie.
    public static let maxStrength = 5
    /// The farthest a walk goes.
    public static let maxHops = 3
    /// The most contacts a walk returns.
    public static let maxResults = 500
    /// The largest page of a list.
    public static let maxPageSize = 200

    /// The relationship's identity whichever side states it (the `key_*` columns of migration 024 compute the same):
    /// the inverse pair's first member with its sides in that member's direction, or a symmetric type's sides in order.
    public static func key(contact: UUID, related: UUID, kind: RelationshipKind) -> (kind: RelationshipKind, first: UUID, second: UUID) {
        if kind.inverse == kind {
            return precedes(contact, related) ? (kind, contact, related) : (kind, related, contact)
        }
        return kind.rawValue < kind.inverse.rawValue ? (kind, contact, related) : (kind.inverse, related, contact)
    }

    /// The violations of a strength and a note, named under `prefix` (`relationship.`).
    public static func check(strength: Int, note: String, prefix: String) -> [Violation] {
        var violations: [Violation] = []
        if !(0...maxStrength).contains(strength) {
            violations.append(Violation("\(prefix)strength", "must be 0 (not rated) to \(maxStrength)", reason: "OUT_OF_RANGE"))
        }
        if !noteLimit.allows(note) { violations.append(Violation("\(prefix)note", noteLimit.description, reason: "TOO_LONG")) }
        return violations
    }

    /// Whether path `a` reaches a contact better than `b` (both as long): its weakest tie is stronger, or as strong and
    /// its relationship ids come first (so that a walk is the same every time).
    public static func prefers(_ a: [RelationshipEdge], over b: [RelationshipEdge]) -> Bool {
        let (weakestA, weakestB) = (weakest(a), weakest(b))
        if weakestA != weakestB { return weakestA > weakestB }
        return a.lazy.map(\.id).lexicographicallyPrecedes(b.lazy.map(\.id), by: precedes)
    }

    /// The strength of a path's weakest tie (0 for no ties).
    public static func weakest(_ path: [RelationshipEdge]) -> Int {
        path.isEmpty ? 0 : path.reduce(Int.max) { min($0, $1.strength) }
    }

    /// UUIDs in byte order: PostgreSQL's order of `uuid`, and their text's. Byte by byte, not by text: a walk compares
    /// thousands of ids, and formatting each as text cost most of a walk's time.
    public static func precedes(_ a: UUID, _ b: UUID) -> Bool {
        withUnsafeBytes(of: a.uuid) { x in withUnsafeBytes(of: b.uuid) { y in x.lexicographicallyPrecedes(y) } }
    }

    /// Orders the contacts a walk found: nearest first; at one distance, the path whose weakest tie is strongest (an
    /// unrated tie counts as 0), then by contact id.
    public static func ranked(_ found: [(id: UUID, path: [RelationshipEdge])]) -> [(id: UUID, path: [RelationshipEdge])] {
        found.map { (entry: $0, weakest: weakest($0.path)) }.sorted { a, b in
            if a.entry.path.count != b.entry.path.count { return a.entry.path.count < b.entry.path.count }
            if a.weakest != b.weakest { return a.weakest > b.weakest }
            return precedes(a.entry.id, b.entry.id)
        }.map(\.entry)
    }
}

extension ContactsDomain {
    /// Creates a relationship: from `contact`, `related` is its `kind`.
    /// - Throws: ``ContactsError`` (violations naming `relationship.*`, a contact not found, a duplicate, too many).
    public func createRelationship(
        contact: UUID, related: UUID, kind: RelationshipKind, strength: Int, note: String, actor: Actor, write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<RelationshipRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var violations = RelationshipRules.check(strength: strength, note: note, prefix: "relationship.")
        if contact == related {
            violations.insert(
                Violation("relationship.related_contact_id", "must be another contact than relationship.contact_id", reason: "INVALID"), at: 0)
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        return try await store.insertRelationship(
            contact: contact, related: related, kind: kind, strength: strength, note: note, maxPerContact: limits.maxRelationshipsPerContact,
            actor: actor, write: write)
    }

    /// A relationship by id, as stated.
    public func relationship(id: UUID, actor: Actor) async throws -> RelationshipRecord {
        guard let found = try await store.relationship(id: id, actor: actor) else { throw ContactsError.relationshipNotFound(id.lowercaseText) }
        return found
    }

    /// Changes a relationship's type, strength or note (those given), if `etag` (when given) still matches; an update
    /// that changes nothing answers the relationship as it is.
    public func updateRelationship(
        id: UUID, kind: RelationshipKind?, strength: Int?, note: String?, etag: String, actor: Actor, write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<RelationshipRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await relationship(id: id, actor: actor)
        if !etag.isEmpty, etag != current.etag { throw ContactsError.relationshipETagMismatch(current: current.etag) }
        var updated = current
        var changed: [String] = []
        if let kind, kind != current.kind {
            updated.kind = kind
            changed.append("type")
        }
        if let strength, strength != current.strength {
            updated.strength = strength
            changed.append("strength")
        }
        if let note, note != current.note {
            updated.note = note
            changed.append("note")
        }
        let violations = RelationshipRules.check(strength: updated.strength, note: updated.note, prefix: "relationship.")
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        if changed.isEmpty { return .fresh(current) }
        return try await store.updateRelationship(updated, expectedVersion: current.version, changedFields: changed, actor: actor, write: write)
    }

    /// Deletes a relationship, if `etag` (when given) still matches.
    public func deleteRelationship(
        id: UUID, etag: String, actor: Actor, write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<
        RelationshipRecord
    > {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var expected: Int64?
        if !etag.isEmpty {
            let current = try await relationship(id: id, actor: actor)
            guard etag == current.etag else { throw ContactsError.relationshipETagMismatch(current: current.etag) }
            expected = current.version
        }
        return try await store.deleteRelationship(id: id, expectedVersion: expected, actor: actor, write: write)
    }

    /// A live contact's relationships with live contacts, seen from it, newest first.
    public func relationships(
        of contact: UUID, kinds: [RelationshipKind], pageSize: Int, pageToken: String, actor: Actor
    ) async throws -> ([RelationshipRecord], String) {
        guard (0...RelationshipRules.maxPageSize).contains(pageSize) else {
            throw ContactsError.invalid([
                Violation("page.page_size", "must be 0 (50) to \(RelationshipRules.maxPageSize)", reason: "OUT_OF_RANGE")
            ])
        }
        let limit = pageSize == 0 ? 50 : pageSize
        let fingerprint = PageToken.fingerprint(["relationships", contact.lowercaseText] + kinds.map { String($0.rawValue) })
        var after: (Int64, UUID)?
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            guard let micros = Int64(cursor[0]), ContactCursor.validMicroseconds.contains(micros), let id = UUID(uuidString: cursor[1]) else {
                throw ContactsError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            after = (micros, id)
        }
        try await requireLive(contact, field: "contact_id", actor: actor)
        let rows = try await store.relationships(of: contact, kinds: kinds, after: after, limit: limit + 1, actor: actor)
        let page = Array(rows.prefix(limit))
        var next = ""
        if rows.count > limit, let last = page.last {
            next = PageToken(cursor: [String(ContactCursor.microseconds(last.createdAt)), last.id.lowercaseText], fingerprint: fingerprint).encoded
        }
        return (page, next)
    }

    /// The most relationships one step of a walk reads: a step that would read more walks these and says `truncated`.
    static let walkStepRows = 20_000

    /// The live contacts up to `maxHops` relationships from `start`, nearest first, each with its path (the strongest
    /// of the shortest, see ``RelationshipRules/ranked(_:)``), and whether more were in reach.
    public func relatedContacts(
        of start: UUID, maxHops: Int, kinds: [RelationshipKind], minStrength: Int, maxResults: Int, actor: Actor
    ) async throws -> (related: [RelatedContactRecord], truncated: Bool) {
        var violations: [Violation] = []
        if !(1...RelationshipRules.maxHops).contains(maxHops) {
            violations.append(Violation("max_hops", "must be 0 (1) to \(RelationshipRules.maxHops)", reason: "OUT_OF_RANGE"))
        }
        if !(0...RelationshipRules.maxStrength).contains(minStrength) {
            violations.append(Violation("min_strength", "must be 0 to \(RelationshipRules.maxStrength)", reason: "OUT_OF_RANGE"))
        }
        if !(1...RelationshipRules.maxResults).contains(maxResults) {
            violations.append(Violation("max_results", "must be 0 (100) to \(RelationshipRules.maxResults)", reason: "OUT_OF_RANGE"))
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        try await requireLive(start, field: "contact_id", actor: actor)
        var paths: [UUID: [RelationshipEdge]] = [start: []]
        var found: [(id: UUID, path: [RelationshipEdge])] = []
        var frontier = [start]
        var truncated = false
        for _ in 0..<maxHops where !frontier.isEmpty {
            let room = maxResults - found.count
            if room == 0 {
                // Full: is anything farther in reach at all? (Unless a level was cut already.)
                if !truncated {
                    truncated = try await !store.relationshipStep(
                        from: frontier, excluding: Array(paths.keys), kinds: kinds, minStrength: minStrength, limit: 1, actor: actor
                    ).isEmpty
                }
                break
            }
            let steps = try await store.relationshipStep(
                from: frontier, excluding: Array(paths.keys), kinds: kinds, minStrength: minStrength, limit: Self.walkStepRows + 1, actor: actor)
            if steps.count > Self.walkStepRows { truncated = true }
            var best: [UUID: [RelationshipEdge]] = [:]
            for edge in steps.prefix(Self.walkStepRows) {
                guard let before = paths[edge.near] else { continue }
                let path = before + [edge]
                if let current = best[edge.far], !RelationshipRules.prefers(path, over: current) { continue }
                best[edge.far] = path
            }
            let level = RelationshipRules.ranked(best.map { (id: $0.key, path: $0.value) })
            if level.count > room { truncated = true }
            for (id, path) in level.prefix(room) {
                paths[id] = path
                found.append((id, path))
            }
            frontier = level.prefix(room).map(\.id)
        }
        let contacts = Dictionary(
            try await store.fetch(ids: found.map(\.id), actor: actor).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        // The steps read only what ranks a path; the paths answered are read whole (notes, audit) once.
        let relationships = Dictionary(
            try await store.relationships(ids: Array(Set(found.flatMap { $0.path.map(\.id) })), actor: actor).map { ($0.id, $0) },
            uniquingKeysWith: { first, _ in first })
        // What changed since its step read it (a contact on the path deleted, a relationship deleted, moved by a merge,
        // or retyped or weakened past the filters) leaves the contact out: every path answered is one the walk may take.
        let related = found.compactMap { entry -> RelatedContactRecord? in
            guard let contact = contacts[entry.id] else { return nil }
            var path: [RelationshipRecord] = []
            for edge in entry.path {
                guard let record = relationships[edge.id], edge.near == start || contacts[edge.near] != nil,
                    Set([record.contactID, record.relatedID]) == Set([edge.near, edge.far])
                else { return nil }
                let seen = record.seen(from: edge.near)
                guard kinds.isEmpty || kinds.contains(seen.kind), seen.strength >= minStrength else { return nil }
                path.append(seen)
            }
            return RelatedContactRecord(contact: contact, path: path)
        }
        return (related, truncated)
    }

    /// Throws `contactNotFound` naming `field` unless `id` is a live contact of the tenant.
    func requireLive(_ id: UUID, field: String, actor: Actor) async throws {
        do {
            _ = try await get(id: id, includeDeleted: false, actor: actor)
        } catch ContactsError.notFound {
            throw ContactsError.contactNotFound(field: field, id: id.lowercaseText)
        }
    }
}
