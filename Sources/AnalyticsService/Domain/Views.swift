import FoundationEssentials

/// One timeline entry as stored.
public struct TimelineEntry: Sendable, Hashable {
    /// Unique in the tenant, increasing with insertion.
    public var id: Int64
    /// The contact or organization.
    public var subject: SubjectRef
    /// What happened.
    public var kind: EntryKind
    /// Where.
    public var source: FeedSource
    /// The source resource.
    public var resourceType: String, resourceID: String
    /// Who.
    public var actorID: String
    /// When.
    public var time: Date
    /// Changed fields (updates).
    public var changedFields: [String] = []
    /// A short description.
    public var summary = ""
    /// The activity kind (activities).
    public var activityKind = ""
    /// The stages (status changes and creation).
    public var statusFrom = "", statusTo = ""

    /// Creates an entry.
    public init(
        id: Int64, subject: SubjectRef, kind: EntryKind, source: FeedSource, resourceType: String, resourceID: String, actorID: String, time: Date
    ) {
        self.id = id
        self.subject = subject
        self.kind = kind
        self.source = source
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.actorID = actorID
        self.time = time
    }
}

/// A timeline read: the subject, its filters, and where the previous page ended.
public struct TimelineQuery: Sendable, Hashable {
    /// The subject.
    public var subject: SubjectRef
    /// Only these kinds and sources (empty: all).
    public var kinds: [EntryKind] = [], sources: [FeedSource] = []
    /// Only this actor (empty: all).
    public var actorID = ""
    /// The time range (nil: unbounded).
    public var start: Date?, end: Date?
    /// At most this many.
    public var limit = 50
    /// After this (time, id), newest first.
    public var after: (time: Date, id: Int64)?

    /// Creates a query.
    public init(subject: SubjectRef) { self.subject = subject }

    public static func == (a: TimelineQuery, b: TimelineQuery) -> Bool {
        a.subject == b.subject && a.kinds == b.kinds && a.sources == b.sources && a.actorID == b.actorID && a.start == b.start
            && a.end == b.end && a.limit == b.limit && a.after?.time == b.after?.time && a.after?.id == b.after?.id
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(subject) }
}

/// A contact's metrics.
public struct ContactMetrics: Sendable, Hashable {
    /// The contact.
    public var contactID: UUID
    /// Activities by kind.
    public var counts: [(kind: String, count: Int64)] = []
    /// Interactions.
    public var interactions: Int64 = 0
    /// First and last interaction.
    public var firstContact: Date?, lastContact: Date?
    /// Interactions per 30 days since the first (span at least 30 days).
    public var perThirtyDays = 0.0
    /// The current stage.
    public var stage = ""
    /// Stages entered, oldest first.
    public var stageHistory: [(stage: String, time: Date)] = []

    /// Creates empty metrics.
    public init(contactID: UUID) { self.contactID = contactID }

    public static func == (a: ContactMetrics, b: ContactMetrics) -> Bool {
        a.contactID == b.contactID && a.interactions == b.interactions && a.counts.map(\.kind) == b.counts.map(\.kind)
            && a.counts.map(\.count) == b.counts.map(\.count) && a.firstContact == b.firstContact && a.lastContact == b.lastContact
            && a.stage == b.stage && a.stageHistory.map(\.stage) == b.stageHistory.map(\.stage)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(contactID) }
}

/// How activity statistics are grouped.
public enum StatsGrouping: Sendable, Hashable {
    /// By kind.
    case kind
    /// By user.
    case user
    /// By UTC day.
    case day
}

/// A funnel step.
public struct FunnelStepValue: Sendable, Hashable {
    /// The stage.
    public var stage: String
    /// Contacts that reached it or a later stage.
    public var reached: Int64
    /// reached over the previous step's.
    public var conversion: Double
}

/// What a ranking ranks by.
public enum RankMetric: Int, Sendable, Hashable {
    /// Activities in the range.
    case activities = 1
    /// The engagement score now.
    case engagementScore = 2
    /// Interactions in the range.
    case interactions = 3
}

/// Data completeness over live contacts.
public struct Completeness: Sendable, Hashable {
    /// Live contacts.
    public var contacts: Int64
    /// Filled counts per field, in order.
    public var fields: [(field: String, filled: Int64)]

    public static func == (a: Completeness, b: Completeness) -> Bool {
        a.contacts == b.contacts && a.fields.map(\.field) == b.fields.map(\.field) && a.fields.map(\.filled) == b.fields.map(\.filled)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(contacts) }
}

/// A tenant's scoring model.
public struct ScoringModelValue: Sendable, Hashable {
    /// Weight per activity kind (kinds left out weigh 0).
    public var weights: [String: Double]
    /// Half-life of an activity's weight, in days.
    public var halfLifeDays: Double
    /// 0 for the default, then one more per change.
    public var version: Int64 = 0
    /// When it last changed (nil for the default).
    public var updatedAt: Date?

    /// Every kind weighs 1, half-life 30 days.
    public static let `default` = ScoringModelValue(weights: Dictionary(uniqueKeysWithValues: ActivityKinds.all.map { ($0, 1.0) }), halfLifeDays: 30)

    /// Creates a model.
    public init(weights: [String: Double], halfLifeDays: Double, version: Int64 = 0, updatedAt: Date? = nil) {
        self.weights = weights
        self.halfLifeDays = halfLifeDays
        self.version = version
        self.updatedAt = updatedAt
    }
}

/// One kind's share of a score.
public struct ScoreComponentValue: Sendable, Hashable {
    /// The kind.
    public var kind: String
    /// Its activities.
    public var count: Int64
    /// Its weight.
    public var weight: Double
    /// Sum of 0.5 ^ (age / half-life).
    public var decayedCount: Double
    /// weight × decayedCount.
    public var contribution: Double { weight * decayedCount }
}

/// A contact's engagement score with its components.
public struct EngagementScoreValue: Sendable, Hashable {
    /// The contact.
    public var contactID: UUID
    /// The components, in ``ActivityKinds/all`` order.
    public var components: [ScoreComponentValue]
    /// The time ages were measured to.
    public var asOf: Date
    /// The model.
    public var model: ScoringModelValue
    /// The score.
    public var score: Double { components.reduce(0) { $0 + $1.contribution } }
}

/// A stored report, dashboard or alert's audit.
public struct Created: Sendable, Hashable {
    /// When and by whom.
    public var at: Date, by: String

    /// Creates the stamp.
    public init(at: Date, by: String) {
        self.at = at
        self.by = by
    }
}

/// An alert on a per-contact threshold.
public struct AlertValue: Sendable, Hashable {
    /// The alert.
    public var id: UUID
    /// Its name.
    public var name: String
    /// ENGAGEMENT_SCORE or INTERACTIONS.
    public var metric: RankMetric
    /// The threshold.
    public var threshold: Double
    /// true: fires at or above; false: below.
    public var above: Bool
    /// Who made it.
    public var created: Created

    /// Creates an alert.
    public init(id: UUID, name: String, metric: RankMetric, threshold: Double, above: Bool, created: Created) {
        self.id = id
        self.name = name
        self.metric = metric
        self.threshold = threshold
        self.above = above
        self.created = created
    }
}
