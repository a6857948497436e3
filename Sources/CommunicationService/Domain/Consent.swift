import FoundationEssentials
import SwitchboardServiceKit

/// A channel messages go out on (the values of `switchboard.communication.v1.Channel`).
public enum Channel: Int, Sendable, Hashable, CaseIterable {
    case email = 1, sms, call
}

/// Whether a ledger entry grants or withdraws consent.
public enum ConsentStatus: Int, Sendable, Hashable, CaseIterable {
    case granted = 1, withdrawn
}

/// The GDPR Art. 6(1) basis of a grant (the values of `switchboard.communication.v1.LegalBasis`).
public enum LegalBasis: Int, Sendable, Hashable, CaseIterable {
    case consent = 1, contract, legalObligation, vitalInterests, publicTask, legitimateInterests
}

/// One statement for the consent ledger, as a caller gives it.
public struct ConsentStatement: Sendable, Hashable {
    /// The contact.
    public var contactID: UUID
    /// The channel.
    public var channel: Channel
    /// The purpose key, or ``ConsentRules/allPurposes``.
    public var purpose: String
    /// Granted or withdrawn.
    public var status: ConsentStatus
    /// The basis of a grant; nil for a withdrawal without one.
    public var legalBasis: LegalBasis?
    /// Where the statement came from.
    public var source: String
    /// When the person made it; nil means now.
    public var statedAt: Date?

    /// Creates a statement.
    public init(
        contactID: UUID, channel: Channel, purpose: String, status: ConsentStatus, legalBasis: LegalBasis?, source: String,
        statedAt: Date? = nil
    ) {
        self.contactID = contactID
        self.channel = channel
        self.purpose = purpose
        self.status = status
        self.legalBasis = legalBasis
        self.source = source
        self.statedAt = statedAt
    }
}

/// A recorded ledger entry.
public struct ConsentRecord: Sendable, Hashable {
    /// Its id.
    public var id: UUID
    /// The ledger's order within the tenant.
    public var sequence: Int64
    /// What was stated.
    public var statement: ConsentStatement
    /// When the service recorded it.
    public var recordedAt: Date
    /// Who recorded it.
    public var recordedBy: String

    /// Creates a record.
    public init(id: UUID, sequence: Int64, statement: ConsentStatement, recordedAt: Date, recordedBy: String) {
        self.id = id
        self.sequence = sequence
        self.statement = statement
        self.recordedAt = recordedAt
        self.recordedBy = recordedBy
    }
}

/// The answer of a consent check: allowed or not, and why.
public struct ConsentDecision: Sendable, Hashable {
    /// Why.
    public enum Reason: Int, Sendable, Hashable {
        /// The latest applicable entry grants.
        case granted = 1
        /// The latest applicable entry withdraws.
        case withdrawn
        /// No applicable entry.
        case noConsent
    }

    /// Whether a message may go out.
    public var allowed: Bool { reason == .granted }
    /// Why.
    public var reason: Reason
    /// The deciding entry.
    public var decidedBy: ConsentRecord?

    /// Creates a decision.
    public init(reason: Reason, decidedBy: ConsentRecord?) {
        self.reason = reason
        self.decidedBy = decidedBy
    }

    /// The decision the latest applicable entry (for the purpose or for all purposes) makes; no entry means no.
    public static func from(latest: ConsentRecord?) -> ConsentDecision {
        guard let latest else { return ConsentDecision(reason: .noConsent, decidedBy: nil) }
        return ConsentDecision(reason: latest.statement.status == .granted ? .granted : .withdrawn, decidedBy: latest)
    }
}

/// Bounds and rules of consent statements, pure.
public enum ConsentRules {
    /// The purpose that stands for every purpose.
    public static let allPurposes = "all"
    /// Longest purpose key (characters, ASCII).
    public static let maxPurposeLength = 64
    /// Longest source (bytes).
    public static let maxSourceBytes = 256
    /// How far ahead of the service's clock stated_at may be (clock skew between the caller and the service).
    public static let maxSkewSeconds: TimeInterval = 300

    /// Whether `purpose` is a purpose key: a lower-case letter, then lower-case letters, digits and underscores.
    public static func isPurposeKey(_ purpose: String) -> Bool {
        let bytes = Array(purpose.utf8)
        guard let first = bytes.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), bytes.count <= maxPurposeLength else {
            return false
        }
        return bytes.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_")
        }
    }

    /// Checks a statement.
    /// - Throws: ``CommunicationError/invalid(_:)`` naming every bad field under `prefix`.
    public static func validate(_ statement: ConsentStatement, now: Date, prefix: String = "consent") throws {
        var violations: [Violation] = []
        if !isPurposeKey(statement.purpose) {
            violations.append(
                Violation(
                    "\(prefix).purpose", "must be lower-case letters, digits and underscores, starting with a letter, at most 64",
                    reason: statement.purpose.isEmpty ? "REQUIRED" : "INVALID_FORMAT"))
        }
        if statement.source.isEmpty || statement.source.allSatisfy(\.isWhitespace) {
            violations.append(Violation("\(prefix).source", "is required", reason: "REQUIRED"))
        } else if statement.source.utf8.count > maxSourceBytes {
            violations.append(Violation("\(prefix).source", "must be at most \(maxSourceBytes) bytes", reason: "TOO_LONG"))
        } else if InteractionRules.hasNUL(statement.source) {
            violations.append(Violation("\(prefix).source", "must not contain NUL characters", reason: "INVALID_CHARACTER"))
        }
        if statement.status == .granted, statement.legalBasis == nil {
            violations.append(Violation("\(prefix).legal_basis", "is required for a grant", reason: "REQUIRED"))
        }
        if let at = statement.statedAt, at < InteractionRules.earliest || at > now.addingTimeInterval(maxSkewSeconds) {
            violations.append(Violation("\(prefix).stated_at", "must be between 1900-01-01 and now", reason: "OUT_OF_RANGE"))
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
    }
}

/// Persistence of the consent ledger: appends and reads, never updates or deletes.
public protocol ConsentStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// Appends a statement (idempotent by the write's request id).
    func append(_ statement: ConsentStatement, actor: Actor, write: WriteOptions<ConsentRecord>) async throws -> WriteOutcome<ConsentRecord>
    /// A page of a contact's history in ledger order, after `afterSequence`.
    func history(
        contactID: UUID, channel: Channel?, purpose: String?, afterSequence: Int64?, limit: Int, actor: Actor
    ) async throws -> Rows<ConsentRecord>
    /// The latest entry for a contact, channel and purpose, counting entries for all purposes.
    func latest(contactID: UUID, channel: Channel, purpose: String, actor: Actor) async throws -> ConsentRecord?
}

/// The consent use cases.
public struct ConsentDomain: Sendable {
    let store: any ConsentStore
    let now: @Sendable () -> Date

    /// Creates the domain.
    /// - Parameters:
    ///   - store: the ledger.
    ///   - now: the clock bounding stated_at.
    public init(store: any ConsentStore, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.now = now
    }

    /// Records a statement.
    public func record(_ statement: ConsentStatement, actor: Actor, write: WriteOptions<ConsentRecord>) async throws -> WriteOutcome<ConsentRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        try ConsentRules.validate(statement, now: now())
        return try await store.append(statement, actor: actor, write: write)
    }

    /// A page of a contact's history, oldest first, and the next page's token.
    public func history(
        contactID: UUID, channel: Channel?, purpose: String?, pageSize: Int, pageToken: String, actor: Actor
    ) async throws -> ([ConsentRecord], String) {
        if let purpose, !ConsentRules.isPurposeKey(purpose) {
            throw CommunicationError.invalid([Violation("purpose", "is not a purpose key", reason: "INVALID_FORMAT")])
        }
        let limit = try InteractionRules.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint(["consent", contactID.uuidString, "\(channel?.rawValue ?? 0)", purpose ?? ""])
        var after: Int64?
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 1) {
            guard let sequence = Int64(cursor[0]), sequence >= 0 else {
                throw CommunicationError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            after = sequence
        }
        let rows = try await store.history(
            contactID: contactID, channel: channel, purpose: purpose, afterSequence: after, limit: limit, actor: actor)
        var next = ""
        if rows.more, let last = rows.records.last { next = PageToken(cursor: [String(last.sequence)], fingerprint: fingerprint).encoded }
        return (rows.records, next)
    }

    /// Whether a message for `purpose` may go to the contact on `channel`, and why.
    public func check(contactID: UUID, channel: Channel, purpose: String, actor: Actor) async throws -> ConsentDecision {
        guard ConsentRules.isPurposeKey(purpose), purpose != ConsentRules.allPurposes else {
            throw CommunicationError.invalid([
                Violation("purpose", "must be a purpose key (not \"all\")", reason: purpose.isEmpty ? "REQUIRED" : "INVALID_FORMAT")
            ])
        }
        return ConsentDecision.from(latest: try await store.latest(contactID: contactID, channel: channel, purpose: purpose, actor: actor))
    }
}
