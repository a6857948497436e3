import FoundationEssentials
import SwitchboardServiceKit

/// Where an erasure is (the values of `switchboard.contacts.v1.Erasure.Status`).
public enum ErasureStatus: Int, Sendable, Hashable {
    /// Receipts awaited, the deadline not passed.
    case pending = 1
    /// Every awaited service sent its receipt.
    case complete
    /// The deadline passed with receipts still awaited.
    case overdue
}

/// What the contacts service removed itself when it erased a person.
public struct ErasureLocal: Sendable, Hashable {
    /// Addresses released.
    public var emailsReleased = 0
    /// Stored change events reduced to their resource id.
    public var changesRedacted = 0
    /// Stored idempotent responses deleted.
    public var storedResponsesRemoved = 0
    /// Import ledger rows deleted.
    public var importRowsDeleted = 0
    /// Organization memberships (the search projection's) deleted.
    public var membershipsDeleted = 0
    /// Feed events set aside that named the person, deleted.
    public var deadLettersDeleted = 0
    /// Merge log entries of the person's records, deleted.
    public var mergesDeleted = 0
    /// Contact records deleted: the one erased and those merged into it.
    public var contactsDeleted = 0
    /// Relationships naming the person, deleted.
    public var relationshipsDeleted = 0

    /// No counts.
    public init() {}
}

/// Another service's receipt for an erasure.
public struct ErasureReceiptRecord: Sendable, Hashable {
    /// The service's name (`organization`, `communication`, …).
    public var service: String
    /// The record it is for (the erased contact, or one merged into it).
    public var contactID: UUID
    /// When it arrived.
    public var receivedAt: Date
    /// The receipt's proto3 JSON, as the service published it.
    public var receiptJSON: String

    /// Creates a receipt.
    public init(service: String, contactID: UUID, receivedAt: Date, receiptJSON: String) {
        self.service = service
        self.contactID = contactID
        self.receivedAt = receivedAt
        self.receiptJSON = receiptJSON
    }
}

/// A stored erasure.
public struct ErasureRecord: Sendable, Hashable {
    /// Its id (the erasure request id the other services' receipts name).
    public var id: UUID
    /// The person erased.
    public var contactID: UUID
    /// Every record erased: the contact, then those merged into it.
    public var contactIDs: [UUID]
    /// Where it is, as of when it was read.
    public var status: ErasureStatus
    /// When it was asked for.
    public var requestedAt: Date
    /// Who asked.
    public var requestedBy: String
    /// When every receipt should have arrived.
    public var deadline: Date
    /// When the last awaited receipt arrived.
    public var completedAt: Date?
    /// The services whose receipts are awaited, in name order.
    public var awaited: [String]
    /// The receipts received, in service name order.
    public var receipts: [ErasureReceiptRecord]
    /// What this service removed itself.
    public var local: ErasureLocal

    /// Creates a record.
    public init(
        id: UUID, contactID: UUID, contactIDs: [UUID], status: ErasureStatus, requestedAt: Date, requestedBy: String, deadline: Date,
        completedAt: Date?,
        awaited: [String], receipts: [ErasureReceiptRecord], local: ErasureLocal
    ) {
        self.id = id
        self.contactID = contactID
        self.contactIDs = contactIDs
        self.status = status
        self.requestedAt = requestedAt
        self.requestedBy = requestedBy
        self.deadline = deadline
        self.completedAt = completedAt
        self.awaited = awaited
        self.receipts = receipts
        self.local = local
    }
}

/// Persistence of erasures.
public protocol ErasureStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// Erases a contact in one transaction (`ContactsError.mergedAway` for one merged into another): its row and those
    /// of the contacts merged into it, their addresses, what names it in the change history, stored
    /// responses, import ledgers, the membership projection and set-aside feed events; records the erasure (awaiting
    /// `awaited`'s receipts until `deadlineHours` from now) and publishes ERASED. The person's earlier erasure when there
    /// is one; nil when the tenant never stored the contact.
    func erase(
        contactID: UUID, awaited: [String], deadlineHours: Int, actor: Actor, write: WriteOptions<ErasureRecord>
    ) async throws -> WriteOutcome<ErasureRecord>?
    /// An erasure by id.
    func erasure(id: UUID, actor: Actor) async throws -> ErasureRecord?
    /// Erasures newest first (requested, then id, descending) after `after`, at most `limit`, and the last one's
    /// cursor (requested_at in microseconds, id).
    func erasures(
        status: ErasureStatus?, after: (micros: Int64, id: UUID)?, limit: Int, actor: Actor
    ) async throws -> (records: [ErasureRecord], more: Bool, last: (micros: Int64, id: UUID)?)
}

/// The erasure use cases.
public struct ErasureDomain: Sendable {
    let store: any ErasureStore
    /// The services whose receipts a new erasure awaits (the feeds this service follows), in name order.
    let awaited: [String]
    /// Hours a new erasure's receipts have before it is overdue.
    let deadlineHours: Int
    /// Erasures a page holds by default, and at most.
    static let defaultPageSize = 50, maxPageSize = 200

    /// Creates the domain.
    /// - Parameters:
    ///   - store: the erasures.
    ///   - awaited: the services whose receipts a new erasure awaits.
    ///   - deadlineHours: hours until a new erasure is overdue.
    public init(store: any ErasureStore, awaited: [String], deadlineHours: Int) {
        self.store = store
        self.awaited = Array(Set(awaited)).sorted()
        self.deadlineHours = deadlineHours
    }

    /// Erases a person (or returns the person's earlier erasure).
    /// - Throws: ``ContactsError/notFound(_:)`` when the tenant never stored the contact.
    public func erase(contactID: UUID, actor: Actor, write: WriteOptions<ErasureRecord>) async throws -> WriteOutcome<ErasureRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        guard let outcome = try await store.erase(contactID: contactID, awaited: awaited, deadlineHours: deadlineHours, actor: actor, write: write)
        else { throw ContactsError.notFound(contactID.uuidString.lowercased()) }
        return outcome
    }

    /// An erasure by id.
    public func get(id: UUID, actor: Actor) async throws -> ErasureRecord {
        guard let record = try await store.erasure(id: id, actor: actor) else { throw ContactsError.erasureNotFound(id.uuidString.lowercased()) }
        return record
    }

    /// A page of erasures and the next page's token (empty on the last page).
    public func list(status: ErasureStatus?, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([ErasureRecord], String) {
        guard pageSize >= 0 else { throw ContactsError.invalid([Violation("page.page_size", "must not be negative", reason: "OUT_OF_RANGE")]) }
        let limit = pageSize == 0 ? Self.defaultPageSize : min(pageSize, Self.maxPageSize)
        let fingerprint = PageToken.fingerprint(["erasures", "\(status?.rawValue ?? 0)"])
        var after: (micros: Int64, id: UUID)?
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            guard let micros = Int64(cursor[0]), ContactCursor.validMicroseconds.contains(micros), let id = UUID(uuidString: cursor[1]) else {
                throw ContactsError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            after = (micros, id)
        }
        let page = try await store.erasures(status: status, after: after, limit: limit, actor: actor)
        var next = ""
        if page.more, let last = page.last {
            next = PageToken(cursor: [String(last.micros), last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (page.records, next)
    }
}
