import FoundationEssentials

/// The service a fact came from (the values of `switchboard.analytics.v1.Source`).
public enum FeedSource: Int16, Sendable, Hashable, CaseIterable {
    /// The contacts service.
    case contacts = 1
    /// The organization service.
    case organization = 2
    /// The communication service.
    case communication = 3
    /// The collaboration service.
    case collaboration = 4

    /// The feed's name: its cursor's key, its settings' infix and its metrics' label.
    public var name: String {
        switch self {
        case .contacts: return "contacts"
        case .organization: return "organization"
        case .communication: return "communication"
        case .collaboration: return "collaboration"
        }
    }
}

/// What a timeline entry records (the values of `switchboard.analytics.v1.EntryKind`).
public enum EntryKind: Int16, Sendable, Hashable, CaseIterable {
    /// Created.
    case created = 1
    /// Fields changed.
    case updated = 2
    /// Soft-deleted.
    case deleted = 3
    /// Restored.
    case restored = 4
    /// The lifecycle stage changed.
    case statusChanged = 5
    /// An interaction was logged.
    case interaction = 6
    /// A note was written.
    case note = 7
    /// A meeting was scheduled.
    case meeting = 8
    /// A membership began or ended.
    case membership = 9
    /// Another contact was merged into this one.
    case merged = 10
    /// A contact merged into this one was split off again (on both contacts' timelines).
    case unmerged = 11
}

/// What a timeline or ranking is about (the values of `switchboard.analytics.v1.SubjectType`).
public enum SubjectKind: Int16, Sendable, Hashable {
    /// A contact.
    case contact = 1
    /// An organization.
    case organization = 2
}

/// A contact or organization by id.
public struct SubjectRef: Sendable, Hashable {
    /// Its type.
    public var kind: SubjectKind
    /// Its id.
    public var id: UUID

    /// Creates a reference.
    public init(_ kind: SubjectKind, _ id: UUID) {
        self.kind = kind
        self.id = id
    }
}

/// The activity kinds metrics and scores count: interactions by their kind, notes, and scheduled meetings.
public enum ActivityKinds {
    /// Every kind, in display order.
    public static let all = ["email", "call", "sms", "meeting", "other", "note", "scheduled_meeting"]
    /// The kinds that are interactions (logged in communication).
    public static let interactions: Set<String> = ["email", "call", "sms", "meeting", "other"]
}

/// A contact's state as of a change in the contacts service.
public struct ContactState: Sendable, Hashable {
    /// The contact.
    public var id: UUID
    /// Its display name.
    public var displayName = ""
    /// Its primary (or first) e-mail address.
    public var email = ""
    /// Its lifecycle stage (LEAD, PROSPECT, CUSTOMER, INACTIVE).
    public var status = ""
    /// The owning user.
    public var ownerID = ""
    /// Its tags.
    public var tags: [String] = []
    /// Its custom fields as a JSON object.
    public var customFieldsJSON = "{}"
    /// Whether it has a phone number and a postal address.
    public var hasPhone = false, hasAddress = false
    /// When it was created (the change's time when absent).
    public var createdAt: Date?
    /// Whether it is soft-deleted.
    public var deleted = false

    /// Creates a state.
    public init(id: UUID) { self.id = id }
}

/// An activity (interaction, note, scheduled meeting) as of a change in its source.
public struct ActivityState: Sendable, Hashable {
    /// The source resource's message name and id.
    public var resourceType: String, resourceID: String
    /// One of ``ActivityKinds/all``.
    public var kind: String
    /// Who logged it.
    public var actorID: String
    /// When it happened.
    public var occurredAt: Date
    /// The contacts and organizations it involves.
    public var contactIDs: [UUID], organizationIDs: [UUID]
    /// The timeline entry kind it makes.
    public var entryKind: EntryKind
    /// A short description without personal data.
    public var summary: String

    /// Whether it counts as an interaction.
    public var isInteraction: Bool { ActivityKinds.interactions.contains(kind) && entryKind == .interaction }

    /// Creates a state.
    public init(
        resourceType: String, resourceID: String, kind: String, actorID: String, occurredAt: Date, contactIDs: [UUID], organizationIDs: [UUID],
        entryKind: EntryKind, summary: String
    ) {
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.kind = kind
        self.actorID = actorID
        self.occurredAt = occurredAt
        self.contactIDs = contactIDs
        self.organizationIDs = organizationIDs
        self.entryKind = entryKind
        self.summary = summary
    }
}

/// What one source change means to analytics.
public enum Fact: Sendable, Hashable {
    /// A contact was created, updated, deleted or restored (`kind`: created, updated, deleted or restored).
    case contact(ContactState, kind: EntryKind, changedFields: [String])
    /// `loser` was merged into `winner`.
    case contactMerged(loser: UUID, winner: UUID)
    /// `state.id` was split off again from `formerWinner`, into which it had been merged: the contact as restored.
    case contactUnmerged(ContactState, formerWinner: UUID)
    /// The person was erased (by erasure request `request`).
    case contactErased(UUID, request: String)
    /// An organization was created, updated, deleted or restored.
    case organization(id: UUID, name: String, createdAt: Date?, deleted: Bool, kind: EntryKind, changedFields: [String])
    /// A membership began (`ended` false) or ended.
    case membership(id: String, contact: UUID, organization: UUID, ended: Bool)
    /// An activity was created or changed (or restored).
    case activity(ActivityState)
    /// An activity was deleted in its source.
    case activityRemoved(resourceType: String, resourceID: String)
}

/// One change of a source feed, as analytics ingests it.
public struct IngestEvent: Sendable, Hashable {
    /// The tenant.
    public var tenantID: String
    /// The feed it came from.
    public var source: FeedSource
    /// The source resource's message name and id.
    public var resourceType: String, resourceID: String
    /// Who made the change.
    public var actorID: String
    /// When the change committed.
    public var time: Date
    /// What it means.
    public var fact: Fact

    /// Creates an event.
    public init(tenantID: String, source: FeedSource, resourceType: String, resourceID: String, actorID: String, time: Date, fact: Fact) {
        self.tenantID = tenantID
        self.source = source
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.actorID = actorID
        self.time = time
        self.fact = fact
    }
}

/// What an erasure removed, published as analytics' erasure receipt (no personal data).
public struct ErasureReceiptData: Sendable, Hashable {
    /// The person.
    public var contactID: UUID
    /// The erasure request, from the contacts feed's ERASED event.
    public var erasureRequestID: String
    /// Timeline entries deleted, activities the person was taken out of, stage changes deleted.
    public var timelineEntriesDeleted = 0, activitiesChanged = 0, stageChangesDeleted = 0
    /// Stored change events reduced to their resource id, stored responses deleted.
    public var changesRedacted = 0, storedResponsesRemoved = 0

    /// Creates an empty receipt.
    public init(contactID: UUID, erasureRequestID: String) {
        self.contactID = contactID
        self.erasureRequestID = erasureRequestID
    }
}

/// An alert crossing, published on analytics' feed.
public struct AlertFiring: Sendable, Hashable {
    /// The event's id, the alert and the contact.
    public var id: UUID, alertID: UUID, contactID: UUID
    /// The metric, its value and the threshold.
    public var metric: RankMetric, value: Double, threshold: Double
    /// When.
    public var time: Date
    /// Who created the alert (the collaboration service notifies them), and the alert's name.
    public var ownerID = "", alertName = ""
}

/// A lifecycle stage change, published on analytics' feed.
public struct LifecycleTransitionData: Sendable, Hashable {
    /// The event's id and the contact.
    public var id: UUID, contactID: UUID
    /// The stages.
    public var from: String, to: String
    /// When.
    public var time: Date
}
