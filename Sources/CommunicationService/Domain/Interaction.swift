import FoundationEssentials
import SwitchboardServiceKit

/// What an interaction is (the values of `switchboard.communication.v1.InteractionKind`).
public enum InteractionKind: Int, Sendable, Hashable, CaseIterable {
    case email = 1, call, sms, meeting, other
}

/// Which way an interaction went (the values of `switchboard.communication.v1.Direction`).
public enum Direction: Int, Sendable, Hashable, CaseIterable {
    case none = 0, inbound, outbound
}

/// Who may see an interaction (the values of `switchboard.communication.v1.Visibility`).
public enum Visibility: Int, Sendable, Hashable, CaseIterable {
    /// Everyone in the tenant with read access.
    case tenant = 1
    /// The owner and the tenant's admins only.
    case `private` = 2
}

/// Everything about an interaction that callers set.
public struct InteractionData: Sendable, Hashable {
    /// Email, call, SMS, meeting or other.
    public var kind: InteractionKind
    /// Inbound, outbound or neither.
    public var direction: Direction = .none
    /// Contacts taking part, deduplicated in the order given.
    public var contactIDs: [UUID] = []
    /// Free addresses taking part (emails, phone numbers) that are not contacts.
    public var addresses: [String] = []
    /// The organization the interaction is about.
    public var organizationID: UUID?
    /// The conversation it belongs to.
    public var threadID: UUID?
    /// A subject line.
    public var subject = ""
    /// The body or notes.
    public var body = ""
    /// When it happened; nil on create means now (the database's clock).
    public var occurredAt: Date?
    /// Seconds it lasted.
    public var durationSeconds: Int64 = 0
    /// How it ended, e.g. "left voicemail".
    public var outcome = ""
    /// When someone should follow up.
    public var followUpAt: Date?
    /// The follow-up happened.
    public var followUpDone = false
    /// Who may see it.
    public var visibility: Visibility = .tenant
    /// The owning user; empty on create means the caller.
    public var ownerID = ""
    /// The template version the message was rendered from.
    public var template: TemplateReference?

    /// Creates interaction data of a kind.
    public init(kind: InteractionKind) { self.kind = kind }
}

/// A template version an interaction names.
public struct TemplateReference: Sendable, Hashable {
    /// The template.
    public var id: UUID
    /// Its version, from 1.
    public var version: Int

    /// Creates a reference.
    public init(id: UUID, version: Int) {
        self.id = id
        self.version = version
    }
}

/// A stored interaction.
public struct InteractionRecord: Sendable, Hashable {
    /// Its id.
    public var id: UUID
    /// Its data (`occurredAt` always set).
    public var data: InteractionData
    /// Incremented by every change; the etag.
    public var version: Int64
    /// When it was logged.
    public var createdAt: Date
    /// Who logged it.
    public var createdBy: String
    /// When it last changed.
    public var updatedAt: Date
    /// Who changed it last.
    public var updatedBy: String
    /// When it was soft-deleted; nil while live.
    public var deletedAt: Date?
    /// For an interaction logged by a send: the furthest delivery state the provider reported.
    public var deliveryState: DeliveryState = .none
    /// The row's position in the list it was read for (microseconds since 1970 of occurred_at, or of follow_up_at
    /// in follow-up lists), computed by the database so page tokens are exact; 0 outside lists.
    public var sortMicros: Int64 = 0

    /// Creates a record.
    public init(
        id: UUID, data: InteractionData, version: Int64, createdAt: Date, createdBy: String, updatedAt: Date, updatedBy: String,
        deletedAt: Date?
    ) {
        self.id = id
        self.data = data
        self.version = version
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
        self.deletedAt = deletedAt
    }

    /// The etag clients pass back for conditional updates and deletes.
    public var etag: String { "\"\(version)\"" }
    /// When it happened.
    public var occurredAt: Date { data.occurredAt ?? createdAt }
}

/// What can go wrong in the communication domain; handlers map each case to a gRPC status.
public enum CommunicationError: Error, Sendable, Equatable {
    /// Bad input: INVALID_ARGUMENT naming each field.
    case invalid([Violation])
    /// No such resource in the caller's tenant, or one the caller may not see: NOT_FOUND.
    case notFound(kind: String, id: String)
    /// The resource changed since the caller read it: ABORTED.
    case etagMismatch(current: String)
    /// The caller may not make this change: PERMISSION_DENIED.
    case forbidden(String)
    /// Consent for the send's contact, channel and purpose is missing or withdrawn: FAILED_PRECONDITION saying which.
    case consentRefused(ConsentDecision.Reason)
    /// The campaign is not in a state the change applies to: FAILED_PRECONDITION with its status.
    case campaignState(CampaignStatus)
    /// The address belongs to an erased person (the suppression list): FAILED_PRECONDITION.
    case suppressed
    /// The contact asked not to be contacted (their preferences' do_not_contact).
    case doNotContact
    /// The send's address is not one of its contact's addresses of the channel's kind (`email` or `phone`) in the
    /// directory the contacts feed keeps, or the contact is deleted or unknown: FAILED_PRECONDITION naming
    /// `send.to_address`.
    case addressNotListed(kind: String)
    /// The send is past the point where it can be cancelled: FAILED_PRECONDITION with its status.
    case notCancellable(SendStatus)
    /// A search ran past the service's statement timeout (too broad a query): RESOURCE_EXHAUSTED, asking for more
    /// specific words.
    case searchTooExpensive
    /// A campaign's group or saved search cannot be used: it does not exist for the caller, is empty or too large, or
    /// the service holding it is not configured. FAILED_PRECONDITION naming the field (`type` is machine-readable:
    /// `AUDIENCE_NOT_FOUND`, `AUDIENCE_EMPTY`, `AUDIENCE_TOO_LARGE`, `AUDIENCE_UNUSABLE`, `NOT_CONFIGURED`).
    case audienceRefused(field: String, type: String, description: String)
    /// The organization or contacts service could not be reached or failed: UNAVAILABLE (nothing was made; retry).
    case upstreamUnavailable(String)
}

/// The caller as the interaction rules see it: who, and whether the tenant's admin role lets them see and change
/// everyone's private interactions.
public struct Viewer: Sendable, Hashable {
    /// The tenant and user.
    public var actor: Actor
    /// The caller holds the admin role.
    public var isAdmin: Bool

    /// Creates a viewer.
    public init(actor: Actor, isAdmin: Bool) {
        self.actor = actor
        self.isAdmin = isAdmin
    }

    /// Whether this viewer may see `record` at all.
    public func canSee(_ record: InteractionRecord) -> Bool {
        record.data.visibility == .tenant || isAdmin || record.data.ownerID == actor.userID
    }
}
