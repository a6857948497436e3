import FoundationEssentials
import SwitchboardServiceKit

/// A daily window of local wall-clock times, as minutes after midnight: from `start` up to (not including) `end`,
/// across midnight when `end` is earlier than `start`.
public struct QuietHours: Sendable, Hashable {
    /// Minutes after midnight, 0 to 1439.
    public var start: Int
    /// Minutes after midnight, 0 to 1439; never `start`.
    public var end: Int

    /// Creates a window.
    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }
}

/// What a contact said about how and when to reach them (the values of
/// `switchboard.communication.v1.ContactPreferences`).
public struct PreferencesData: Sendable, Hashable {
    /// The channel they prefer; nil when none was stated.
    public var preferredChannel: Channel?
    /// A BCP 47 language tag, or "".
    public var language = ""
    /// An IANA time zone name, or "" (required while quiet hours are set).
    public var timeZone = ""
    /// When not to deliver messages, in `timeZone`.
    public var quietHours: QuietHours?
    /// They asked not to be contacted at all.
    public var doNotContact = false

    /// The defaults: nothing stated.
    public init() {}
}

/// A contact's stored preferences (or the defaults, version 0, when none are stored).
public struct PreferencesRecord: Sendable, Hashable {
    /// The contact.
    public var contactID: UUID
    /// What they said.
    public var data: PreferencesData
    /// The stored version; 0 while nothing is stored.
    public var version: Int64
    /// Audit stamps (nil while nothing is stored).
    public var createdAt: Date?
    /// Who first wrote them.
    public var createdBy = ""
    /// When they were last written.
    public var updatedAt: Date?
    /// Who last wrote them.
    public var updatedBy = ""

    /// Creates a record.
    public init(contactID: UUID, data: PreferencesData, version: Int64) {
        self.contactID = contactID
        self.data = data
        self.version = version
    }

    /// The etag: the version in quotes, or "" while nothing is stored.
    public var etag: String { version == 0 ? "" : "\"\(version)\"" }
}

/// Bounds and rules of preferences, pure.
public enum PreferencesRules {
    /// The paths an update mask may name.
    public static let fields = ["preferred_channel", "language", "time_zone", "quiet_hours", "do_not_contact"]
    /// Longest language tag (RFC 5646 suggests 35 characters as enough for any well-formed tag).
    public static let maxLanguageLength = 35
    /// Longest time zone name (the IANA database's longest is 32).
    public static let maxTimeZoneLength = 64

    /// Minutes after midnight of an "HH:MM" time (24-hour), or nil.
    public static func minutes(_ text: String) -> Int? {
        let b = Array(text.utf8)
        guard b.count == 5, b[2] == UInt8(ascii: ":"), b.indices.allSatisfy({ $0 == 2 || (48...57).contains(b[$0]) }) else { return nil }
        let hours = Int(b[0] - 48) * 10 + Int(b[1] - 48)
        let minutes = Int(b[3] - 48) * 10 + Int(b[4] - 48)
        guard hours < 24, minutes < 60 else { return nil }
        return hours * 60 + minutes
    }

    /// "HH:MM" of minutes after midnight.
    public static func text(minutes: Int) -> String {
        let (h, m) = (minutes / 60, minutes % 60)
        return (h < 10 ? "0" : "") + String(h) + ":" + (m < 10 ? "0" : "") + String(m)
    }

    /// Whether `tag` is shaped like a BCP 47 language tag: subtags of 1 to 8 ASCII letters or digits joined by
    /// hyphens, the first of 2 to 3 letters (or "i"/"x" for the grandfathered and private-use forms), at most 35
    /// characters. (Shape only: the registry is not consulted, so "xx" passes.)
    public static func isLanguageTag(_ tag: String) -> Bool {
        guard !tag.isEmpty, tag.utf8.count <= maxLanguageLength else { return false }
        let subtags = tag.utf8.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        for (i, subtag) in subtags.enumerated() {
            guard (1...8).contains(subtag.count) else { return false }
            let letters = subtag.allSatisfy { (65...90).contains($0) || (97...122).contains($0) }
            let alphanumeric = subtag.allSatisfy { (65...90).contains($0) || (97...122).contains($0) || (48...57).contains($0) }
            if i == 0 {
                let singleton = subtag.count == 1 && subtags.count > 1 && [UInt8(ascii: "x"), UInt8(ascii: "i")].contains(subtag.first! | 0x20)
                guard letters, (2...3).contains(subtag.count) || singleton else { return false }
            } else if !alphanumeric {
                return false
            }
        }
        return true
    }

    /// Whether `name` is shaped like an IANA time zone name ("Europe/Berlin", "America/Argentina/Buenos_Aires",
    /// "UTC", "Etc/GMT+5"). Whether the database knows it is the store's check.
    public static func isTimeZoneShape(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maxTimeZoneLength, name.utf8.first != UInt8(ascii: "/") else { return false }
        return name.utf8.allSatisfy {
            (65...90).contains($0) || (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "_")
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+")
        }
    }

    /// Checks an update mask.
    /// - Throws: INVALID_ARGUMENT naming `update_mask.paths` for too many paths, `update_mask.paths[i]` for an unknown one.
    public static func checkPaths(_ paths: [String]) throws {
        guard paths.count <= InteractionRules.maxUpdatePaths else {
            throw CommunicationError.invalid([
                Violation("update_mask.paths", "at most \(InteractionRules.maxUpdatePaths) paths", reason: "TOO_MANY")
            ])
        }
        let violations = paths.enumerated().filter { !fields.contains($0.element) }.prefix(InvalidRequest.maxReported).map {
            Violation(
                "update_mask.paths[\($0.offset)]",
                "\(CustomFieldRules.excerpt($0.element, maxBytes: 64)) is not one of \(fields.joined(separator: ", "))", reason: "UNKNOWN_FIELD")
        }
        if !violations.isEmpty { throw CommunicationError.invalid(Array(violations)) }
    }

    /// What an unmerge leaves the former winner: each field (the time zone and quiet hours as one) still as the merge
    /// wrote it goes back to what the winner had before the merge; a field written since keeps its new value. nil when
    /// the winner had nothing stored before and everything went back (its row goes). `doNotContactMeanwhile`: the
    /// winner was asked not to contact while the two were one contact (the merge had not set it), so the restored contact
    /// says so too, as with consent withdrawals.
    public static func unmerged(
        before: PreferencesData?, merged: PreferencesData, current: PreferencesData
    ) -> (winner: PreferencesData?, doNotContactMeanwhile: Bool) {
        let old = before ?? PreferencesData()
        var winner = current
        if current.preferredChannel == merged.preferredChannel { winner.preferredChannel = old.preferredChannel }
        if current.language == merged.language { winner.language = old.language }
        if current.timeZone == merged.timeZone, current.quietHours == merged.quietHours {
            winner.timeZone = old.timeZone
            winner.quietHours = old.quietHours
        }
        if current.doNotContact == merged.doNotContact { winner.doNotContact = old.doNotContact }
        let meanwhile = current.doNotContact && !merged.doNotContact
        return (before == nil && winner == PreferencesData() ? nil : winner, meanwhile)
    }

    /// `current` with the fields `paths` names taken from `source` (every field when `paths` is empty).
    public static func apply(_ source: PreferencesData, paths: [String], to current: PreferencesData) -> PreferencesData {
        var result = current
        let all = paths.isEmpty
        if all || paths.contains("preferred_channel") { result.preferredChannel = source.preferredChannel }
        if all || paths.contains("language") { result.language = source.language }
        if all || paths.contains("time_zone") { result.timeZone = source.timeZone }
        if all || paths.contains("quiet_hours") { result.quietHours = source.quietHours }
        if all || paths.contains("do_not_contact") { result.doNotContact = source.doNotContact }
        return result
    }

    /// Checks the preferences an update would store (the time zone's existence aside).
    /// - Throws: ``CommunicationError/invalid(_:)`` naming every bad field under `preferences.`.
    public static func validate(_ data: PreferencesData) throws {
        var violations: [Violation] = []
        if !data.language.isEmpty, !isLanguageTag(data.language) {
            violations.append(
                Violation(
                    "preferences.language", "must be a BCP 47 language tag such as \"en\" or \"pt-BR\" (at most \(maxLanguageLength) characters)",
                    reason: "INVALID_FORMAT"))
        }
        if !data.timeZone.isEmpty, !isTimeZoneShape(data.timeZone) {
            violations.append(
                Violation("preferences.time_zone", "must be an IANA time zone name such as \"Europe/Berlin\"", reason: "INVALID_FORMAT"))
        }
        if let quiet = data.quietHours {
            if quiet.start == quiet.end {
                violations.append(Violation("preferences.quiet_hours", "start and end must differ", reason: "INVALID"))
            }
            if data.timeZone.isEmpty {
                violations.append(Violation("preferences.time_zone", "is required while quiet_hours is set", reason: "REQUIRED"))
            }
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
    }
}

/// Persistence of preferences.
public protocol PreferencesStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// The stored preferences of a contact, or nil.
    func fetch(contactID: UUID, actor: Actor) async throws -> PreferencesRecord?
    /// Applies `paths` of `source` to the contact's stored preferences (the defaults if none) under a lock, checks the
    /// result (``PreferencesRules/validate(_:)`` and the time zone's existence) and stores it, if `etag` is empty or
    /// still the stored one (``CommunicationError/etagMismatch(current:)`` otherwise).
    func update(
        contactID: UUID, from source: PreferencesData, paths: [String], etag: String, actor: Actor, write: WriteOptions<PreferencesRecord>
    ) async throws -> WriteOutcome<PreferencesRecord>
}

/// The preferences use cases.
public struct PreferencesDomain: Sendable {
    let store: any PreferencesStore

    /// Creates the domain.
    public init(store: any PreferencesStore) { self.store = store }

    /// A contact's preferences: the stored ones, or the defaults (version 0).
    public func get(contactID: UUID, actor: Actor) async throws -> PreferencesRecord {
        try await store.fetch(contactID: contactID, actor: actor) ?? PreferencesRecord(contactID: contactID, data: PreferencesData(), version: 0)
    }

    /// Writes the fields `paths` names (all when empty).
    public func update(
        contactID: UUID, from source: PreferencesData, paths: [String], etag: String, actor: Actor, write: WriteOptions<PreferencesRecord>
    ) async throws -> WriteOutcome<PreferencesRecord> {
        try PreferencesRules.checkPaths(paths)
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        return try await store.update(contactID: contactID, from: source, paths: paths, etag: etag, actor: actor, write: write)
    }
}
