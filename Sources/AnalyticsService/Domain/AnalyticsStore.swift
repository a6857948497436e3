import FoundationEssentials
import SwitchboardServiceKit

/// Where the timeline continues from for a live stream: the last (transaction, id) read.
public struct TimelinePosition: Sendable, Hashable {
    /// The writing transaction (xid8) and the row id.
    public var transaction: UInt64, id: Int64

    /// Creates a position.
    public init(transaction: UInt64, id: Int64) {
        self.transaction = transaction
        self.id = id
    }
}

/// What the domain needs from storage (`PostgresAnalyticsStore` implements it). Every read is the actor's tenant's.
public protocol AnalyticsStore: Sendable {
    /// A page of a subject's timeline, newest first.
    func timeline(_ query: TimelineQuery, actor: Actor) async throws -> [TimelineEntry]
    /// Where a live stream of the subject starts: a position below which every entry is visible now, and the positions
    /// of the entries above it that are visible now too (the stream skips them: they are not new). Positions, not ids:
    /// an entry a merge moves away and an unmerge brings back is written again with a new transaction, and is new then.
    func timelinePosition(_ subject: SubjectRef, actor: Actor) async throws -> (TimelinePosition, visible: Set<TimelinePosition>)
    /// Entries of the subject after `position`, oldest first, each with its position, and the new position.
    func timeline(
        _ subject: SubjectRef, after position: TimelinePosition, limit: Int, actor: Actor
    ) async throws -> (
        [(entry: TimelineEntry, position: TimelinePosition)], TimelinePosition
    )
    /// A contact's metrics (nil when analytics knows nothing of it).
    func metrics(contact: UUID, actor: Actor) async throws -> ContactMetrics
    /// Activities in a range grouped.
    func activityStats(
        start: Date, end: Date, grouping: StatsGrouping, kinds: [String], actor: Actor
    ) async throws -> [(
        key: String, count: Int64
    )]
    /// For each stage, live contacts (created in the range) whose furthest stage in `stages` is it.
    func furthestStages(_ stages: [String], start: Date?, end: Date?, actor: Actor) async throws -> [Int64]
    /// The top subjects by a metric.
    func top(
        _ kind: SubjectKind, metric: RankMetric, limit: Int, start: Date?, end: Date?, model: ScoringModelValue, asOf: Date, actor: Actor
    ) async throws -> [(id: UUID, value: Double)]
    /// Completeness of live contacts.
    func completeness(actor: Actor) async throws -> Completeness
    /// The tenant's model (the default when none is stored).
    func scoringModel(actor: Actor) async throws -> ScoringModelValue
    /// Replaces the tenant's model (version + 1).
    func setScoringModel(
        _ model: ScoringModelValue, actor: Actor, write: WriteOptions<ScoringModelValue>
    ) async throws -> WriteOutcome<
        ScoringModelValue
    >
    /// A contact's score components under a model, at a time.
    func scoreComponents(contact: UUID, model: ScoringModelValue, asOf: Date, actor: Actor) async throws -> [ScoreComponentValue]

    /// Stores a report definition, a dashboard (`kind` "report" or "dashboard").
    func createDefinition(
        _ kind: DefinitionKind, name: String, scheduleHours: Int, json: @escaping @Sendable (UUID, Created) throws -> String, actor: Actor,
        limit: Int, write: WriteOptions<StoredDefinition>
    ) async throws -> WriteOutcome<StoredDefinition>
    /// A stored definition, nil when there is none.
    func definition(_ kind: DefinitionKind, id: UUID, actor: Actor) async throws -> StoredDefinition?
    /// Stored definitions, oldest first, after a (time, id).
    func definitions(_ kind: DefinitionKind, after: (Date, UUID)?, limit: Int, actor: Actor) async throws -> [StoredDefinition]
    /// Deletes a stored definition; false when there was none.
    func deleteDefinition(
        _ kind: DefinitionKind, id: UUID, othersToo: Bool, actor: Actor, write: WriteOptions<Bool>
    ) async throws -> WriteOutcome<Bool>

    /// Up to `limit` rows of a report after the key `after` (nil: from the first), each with its key.
    func reportRows(
        _ spec: ReportSpec, after: String?, limit: Int, model: ScoringModelValue, asOf: Date, actor: Actor
    ) async throws -> [(
        key: String, values: [String]
    )]

    /// Stores an alert.
    func createAlert(_ alert: AlertValue, actor: Actor, limit: Int, write: WriteOptions<AlertValue>) async throws -> WriteOutcome<AlertValue>
    /// The tenant's alerts.
    func alerts(actor: Actor) async throws -> [AlertValue]
    /// Deletes an alert; false when there was none.
    func deleteAlert(id: UUID, actor: Actor, write: WriteOptions<Bool>) async throws -> WriteOutcome<Bool>

    /// Up to `limit` scheduled reports due now, of every tenant, oldest due first.
    func dueReports(limit: Int) async throws -> [(tenantID: String, id: UUID)]
    /// Claims a due report's run (moves its next run on by its schedule); nil when another replica claimed it first or it
    /// is no longer due.
    func claimRun(tenantID: String, id: UUID) async throws -> StoredDefinition?
    /// Publishes a finished run.
    func recordRun(_ run: ReportRunData, tenantID: String) async throws

    /// What analytics keeps of a contact's own record; nil when it has none.
    func contactSnapshot(_ contact: UUID, actor: Actor) async throws -> ContactState?

    /// Every timeline entry of a contact, oldest first, in pages.
    func exportTimeline(contact: UUID, actor: Actor, _ body: ([TimelineEntry]) async throws -> Void) async throws
}

/// Which stored definitions.
public enum DefinitionKind: String, Sendable, Hashable {
    /// Reports.
    case report = "reports"
    /// Dashboards.
    case dashboard = "dashboards"
}
