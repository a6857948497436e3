import FoundationEssentials
import SwitchboardServiceKit

/// The bounds and rules of interactions, pure (no I/O) so they are unit-tested directly. Every client-controlled
/// size, count and time has a bound here.
public enum InteractionRules {
    /// Most contacts and most free addresses on one interaction.
    public static let maxContacts = 100, maxAddresses = 100
    /// Longest free address (RFC 5321's path limit, bytes).
    public static let maxAddressBytes = 320
    /// Longest subject (RFC 5322's line limit, bytes).
    public static let maxSubjectBytes = 998
    /// Longest body (bytes).
    public static let maxBodyBytes = 64 * 1024
    /// Longest outcome (bytes).
    public static let maxOutcomeBytes = 256
    /// Longest owner id (bytes).
    public static let maxOwnerIDBytes = 256
    /// Longest call or meeting (a week, in seconds).
    public static let maxDurationSeconds: Int64 = 7 * 24 * 3600
    /// Earliest time an interaction or follow-up may carry (1900-01-01T00:00:00Z).
    public static let earliest = Date(timeIntervalSince1970: -2_208_988_800)
    /// How far ahead of now occurred_at may be (a year: scheduled meetings are logged ahead).
    public static let maxFutureSeconds: TimeInterval = 366 * 24 * 3600
    /// How far ahead of now a follow-up may be (ten years).
    public static let maxFollowUpFutureSeconds: TimeInterval = 10 * 366 * 24 * 3600
    /// Most update-mask paths.
    public static let maxUpdatePaths = 32
    /// Longest search query (bytes) and most words in it.
    public static let maxQueryBytes = 256, maxQueryWords = 16
    /// Page sizes: default and most, for lists and for searches.
    public static let defaultPageSize = 50, maxPageSize = 200
    /// Page sizes of searches.
    public static let defaultSearchPageSize = 20, maxSearchPageSize = 100

    /// The update paths callers may name.
    public static let updatablePaths: [String] = [
        "kind", "direction", "contact_ids", "addresses", "organization_id", "thread_id", "subject", "body", "occurred_at",
        "duration_seconds", "outcome", "follow_up_at", "follow_up_done", "visibility", "owner_id", "template_id", "template_version",
    ]

    /// Paths only the owner or an admin may change.
    public static let ownerOnlyPaths: Set<String> = ["visibility", "owner_id"]

    /// Whether text holds a NUL character, which PostgreSQL text cannot store.
    public static func hasNUL(_ text: String) -> Bool { text.utf8.contains(0) }

    /// Whether a message subject holds a line break or another control character (a tab aside): a subject is one
    /// header line, and a CR/LF in it could start another header (`Bcc:`) at a provider that writes it as given.
    public static func hasControl(_ text: String) -> Bool { text.utf8.contains { isControl($0) && $0 != 0x09 } }

    /// Whether a UTF-8 byte is an ASCII control character (C0 or DEL); no byte of a multi-byte character is one.
    public static func isControl(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }

    /// Checks and normalises interaction data (trims addresses, deduplicates contacts and addresses).
    /// - Parameters:
    ///   - data: the data; normalised in place.
    ///   - now: the current time, for the bounds of future times.
    ///   - prefix: the request field holding the interaction.
    /// - Throws: ``CommunicationError/invalid(_:)`` naming every bad field.
    public static func validate(_ data: inout InteractionData, now: Date, prefix: String = "interaction") throws {
        var violations: [Violation] = []
        func text(_ value: String, _ field: String, max: Int) {
            if value.utf8.count > max {
                violations.append(Violation("\(prefix).\(field)", "must be at most \(max) bytes", reason: "TOO_LONG"))
            } else if hasNUL(value) {
                violations.append(Violation("\(prefix).\(field)", "must not contain NUL characters", reason: "INVALID_CHARACTER"))
            }
        }
        text(data.subject, "subject", max: maxSubjectBytes)
        text(data.body, "body", max: maxBodyBytes)
        text(data.outcome, "outcome", max: maxOutcomeBytes)
        text(data.ownerID, "owner_id", max: maxOwnerIDBytes)
        if data.contactIDs.count > maxContacts {
            violations.append(Violation("\(prefix).contact_ids", "at most \(maxContacts) contacts", reason: "TOO_MANY"))
        } else {
            var seen = Set<UUID>()
            data.contactIDs = data.contactIDs.filter { seen.insert($0).inserted }
        }
        if data.addresses.count > maxAddresses {
            violations.append(Violation("\(prefix).addresses", "at most \(maxAddresses) addresses", reason: "TOO_MANY"))
        } else {
            var seen = Set<String>()
            var kept: [String] = []
            for (i, raw) in data.addresses.enumerated() {
                let address = trimmed(raw)
                if address.isEmpty {
                    violations.append(Violation("\(prefix).addresses[\(i)]", "must not be empty", reason: "REQUIRED"))
                } else if address.utf8.count > maxAddressBytes {
                    violations.append(Violation("\(prefix).addresses[\(i)]", "must be at most \(maxAddressBytes) bytes", reason: "TOO_LONG"))
                } else if hasNUL(address) {
                    violations.append(Violation("\(prefix).addresses[\(i)]", "must not contain NUL characters", reason: "INVALID_CHARACTER"))
                } else if seen.insert(address.lowercased()).inserted {
                    kept.append(address)
                }
            }
            data.addresses = kept
        }
        if !(0...maxDurationSeconds).contains(data.durationSeconds) {
            violations.append(Violation("\(prefix).duration_seconds", "must be between 0 and \(maxDurationSeconds)", reason: "OUT_OF_RANGE"))
        }
        if let at = data.occurredAt, at < earliest || at > now.addingTimeInterval(maxFutureSeconds) {
            violations.append(
                Violation("\(prefix).occurred_at", "must be between 1900-01-01 and one year from now", reason: "OUT_OF_RANGE"))
        }
        if let at = data.followUpAt, at < earliest || at > now.addingTimeInterval(maxFollowUpFutureSeconds) {
            violations.append(
                Violation("\(prefix).follow_up_at", "must be between 1900-01-01 and ten years from now", reason: "OUT_OF_RANGE"))
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
    }

    /// Applies the paths of an update mask from `source` to `target`.
    /// - Returns: the paths applied, deduplicated.
    /// - Throws: ``CommunicationError/invalid(_:)`` naming `update_mask.paths[i]` for unknown paths.
    public static func apply(paths: [String], from source: InteractionData, to target: inout InteractionData) throws -> [String] {
        guard paths.count <= maxUpdatePaths else {
            throw CommunicationError.invalid([Violation("update_mask.paths", "at most \(maxUpdatePaths) paths", reason: "TOO_MANY")])
        }
        var violations: [Violation] = []
        if paths.isEmpty { violations.append(Violation("update_mask", "must name at least one field", reason: "REQUIRED")) }
        var applied: [String] = []
        for (i, path) in paths.enumerated() {
            switch path {
            case "kind": target.kind = source.kind
            case "direction": target.direction = source.direction
            case "contact_ids": target.contactIDs = source.contactIDs
            case "addresses": target.addresses = source.addresses
            case "organization_id": target.organizationID = source.organizationID
            case "thread_id": target.threadID = source.threadID
            case "subject": target.subject = source.subject
            case "body": target.body = source.body
            case "occurred_at": target.occurredAt = source.occurredAt
            case "duration_seconds": target.durationSeconds = source.durationSeconds
            case "outcome": target.outcome = source.outcome
            case "follow_up_at": target.followUpAt = source.followUpAt
            case "follow_up_done": target.followUpDone = source.followUpDone
            case "visibility": target.visibility = source.visibility
            case "owner_id": target.ownerID = source.ownerID
            // The reference is one value: naming either field replaces both.
            case "template_id", "template_version": target.template = source.template
            default:
                violations.append(
                    Violation("update_mask.paths[\(i)]", "\(CustomFieldRules.excerpt(path)) is not an updatable field", reason: "UNKNOWN_FIELD"))
                continue
            }
            if !applied.contains(path) { applied.append(path) }
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return applied
    }

    /// The words of a search query: split on white space, at least one, bounded in bytes and count.
    /// - Throws: ``CommunicationError/invalid(_:)`` naming `query`.
    public static func searchWords(_ query: String) throws -> [String] {
        guard query.utf8.count <= maxQueryBytes else {
            throw CommunicationError.invalid([Violation("query", "must be at most \(maxQueryBytes) bytes", reason: "TOO_LONG")])
        }
        guard !hasNUL(query) else {
            throw CommunicationError.invalid([Violation("query", "must not contain NUL characters", reason: "INVALID_CHARACTER")])
        }
        let words = query.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        guard !words.isEmpty else { throw CommunicationError.invalid([Violation("query", "is required", reason: "REQUIRED")]) }
        guard words.count <= maxQueryWords else {
            throw CommunicationError.invalid([Violation("query", "at most \(maxQueryWords) words", reason: "TOO_MANY")])
        }
        return words
    }

    /// A page size from a request: the default when 0, at most `max`.
    /// - Throws: ``CommunicationError/invalid(_:)`` naming `page.page_size` when negative.
    public static func pageLimit(_ pageSize: Int, default defaultSize: Int = defaultPageSize, max: Int = maxPageSize) throws -> Int {
        guard pageSize >= 0 else { throw CommunicationError.invalid([Violation("page.page_size", "must not be negative")]) }
        return pageSize == 0 ? defaultSize : min(pageSize, max)
    }

    static func trimmed(_ text: String) -> String {
        var scalars = Substring(text).unicodeScalars[...]
        while let first = scalars.first, first.properties.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.properties.isWhitespace { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}
