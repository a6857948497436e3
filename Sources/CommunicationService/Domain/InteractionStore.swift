import FoundationEssentials
import SwitchboardServiceKit

/// Where the previous page ended (keyset pagination): the last row's sort time and id. The time is whole
/// microseconds since 1970 (the database's precision, computed by the database), never a `Date`: a Double round trip
/// could move the cursor by a microsecond and skip or repeat a row.
public struct TimeCursor: Sendable, Hashable {
    /// The last row's occurred_at (lists) or follow_up_at (follow-ups), in microseconds since 1970.
    public var micros: Int64
    /// The last row's id.
    public var id: UUID

    /// Creates a cursor.
    public init(micros: Int64, id: UUID) {
        self.micros = micros
        self.id = id
    }
}

/// The one relation a list follows: its index (each leads with tenant_id and ends with the page order).
public enum InteractionScope: Sendable, Hashable {
    /// All of the tenant's interactions.
    case all
    /// One contact's history.
    case contact(UUID)
    /// Interactions about one organization.
    case organization(UUID)
    /// One conversation.
    case thread(UUID)
}

/// Filters and page of ListInteractions.
public struct InteractionQuery: Sendable, Hashable {
    /// The relation followed.
    public var scope: InteractionScope = .all
    /// Only this kind.
    public var kind: InteractionKind?
    /// Only this owner's.
    public var ownerID: String?
    /// occurred_at at or after.
    public var occurredAfter: Date?
    /// occurred_at before.
    public var occurredBefore: Date?
    /// Deleted interactions too.
    public var includeDeleted = false
    /// Where the previous page ended.
    public var after: TimeCursor?
    /// Rows in the page.
    public var limit = InteractionRules.defaultPageSize

    /// No filters.
    public init() {}
}

/// Rows of a list, in order, and whether more follow.
public struct Rows<Record: Sendable>: Sendable {
    /// The rows.
    public var records: [Record]
    /// More rows follow the last.
    public var more: Bool

    /// Creates the rows.
    public init(records: [Record], more: Bool) {
        self.records = records
        self.more = more
    }
}

/// Persistence of interactions. Every call runs inside the viewer's tenant; implementations must not see other
/// tenants' rows (the PostgreSQL store relies on row-level security for that, not only on its WHERE clauses), and
/// lists leave out private interactions the viewer may not see.
public protocol InteractionStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// Stores a new interaction (occurred_at defaults to the database's now).
    func insert(_ data: InteractionData, actor: Actor, write: WriteOptions<InteractionRecord>) async throws -> WriteOutcome<InteractionRecord>
    /// An interaction by id, deleted or not, visible or not (the domain applies visibility).
    func fetch(id: UUID, actor: Actor) async throws -> InteractionRecord?
    /// Replaces an interaction's data if its version is still `expectedVersion` (`etagMismatch`).
    func replace(
        id: UUID, expectedVersion: Int64, data: InteractionData, changedFields: [String], actor: Actor,
        write: WriteOptions<InteractionRecord>
    ) async throws -> WriteOutcome<InteractionRecord>
    /// Soft-deletes or restores an interaction.
    func setDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<InteractionRecord>
    ) async throws -> WriteOutcome<InteractionRecord>
    /// A page of interactions, newest first.
    func list(_ query: InteractionQuery, viewer: Viewer) async throws -> Rows<InteractionRecord>
    /// A page of live interactions whose subject or body hold all `words`, newest first.
    func search(words: [String], after: TimeCursor?, limit: Int, viewer: Viewer) async throws -> Rows<InteractionRecord>
    /// A page of an owner's open follow-ups due at or before `dueBefore`, earliest first.
    func followUps(ownerID: String, dueBefore: Date, after: TimeCursor?, limit: Int, viewer: Viewer) async throws -> Rows<InteractionRecord>
}
