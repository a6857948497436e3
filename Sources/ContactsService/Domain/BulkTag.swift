import FoundationEssentials
import SwitchboardServiceKit

/// What a bulk tag change did.
public struct BulkTagResult: Sendable, Hashable {
    /// Live contacts the filter matched.
    public var matched: Int
    /// Contacts whose tags changed.
    public var changed: Int
    /// Contacts left alone: the tags added would take them past ``ContactRules/maxTags``.
    public var skippedTooManyTags: Int

    /// Creates a result.
    public init(matched: Int, changed: Int, skippedTooManyTags: Int) {
        self.matched = matched
        self.changed = changed
        self.skippedTooManyTags = skippedTooManyTags
    }
}

/// Bulk tagging's rules.
public enum BulkTagRules {
    /// Most tags added, and most removed, in one call.
    public static let maxTagsPerCall = 20
    /// Most contacts one call changes (one transaction), by default (``ContactsLimits/bulkTagMaxContacts``).
    public static let maxContacts = 10_000

    /// The tags as contacts keep them (trimmed, lower-cased, without duplicates), or violations naming `field[i]`.
    public static func normalized(_ tags: [String], field: String) -> (tags: [String], violations: [Violation]) {
        if tags.count > maxTagsPerCall {
            return ([], [Violation(field, "at most \(maxTagsPerCall) tags", reason: "TOO_MANY")])
        }
        var result: [String] = []
        var violations: [Violation] = []
        for (i, tag) in tags.enumerated() {
            let t = tag.utf8.count <= ContactRules.tagLimit.bytes ? tag.trimmingSpaces.lowercased() : tag
            if t.isEmpty || !ContactRules.tagLimit.allows(t) || t.utf8.contains(0) {
                violations.append(
                    Violation("\(field)[\(i)]", "must be 1 to \(ContactRules.tagLimit.characters) characters, without NUL", reason: "INVALID"))
            } else if !result.contains(t) {
                result.append(t)
            }
        }
        return (result, violations)
    }
}

extension ContactsDomain {
    /// Adds and removes tags on every live contact `search` matches (its text and filters), in one transaction.
    /// - Throws: INVALID_ARGUMENT naming bad tags; FAILED_PRECONDITION when more than
    ///   ``ContactsLimits/bulkTagMaxContacts`` match.
    public func bulkTag(
        _ search: ContactSearch, add: [String], remove: [String], actor: Actor, write: WriteOptions<BulkTagResult>
    ) async throws -> WriteOutcome<BulkTagResult> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let added = BulkTagRules.normalized(add, field: "add_tags")
        let removed = BulkTagRules.normalized(remove, field: "remove_tags")
        var violations = SearchRules.violations(of: search).map { Violation("filter.\($0.field)", $0.description, reason: $0.reason) }
        violations += added.violations + removed.violations
        if added.tags.isEmpty, removed.tags.isEmpty, added.violations.isEmpty, removed.violations.isEmpty {
            violations.append(Violation("add_tags", "name tags to add or to remove", reason: "REQUIRED"))
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        var search = search
        search.timeoutMilliseconds = max(limits.searchTimeoutMilliseconds, 30_000)
        return try await store.bulkTag(search, add: added.tags, remove: removed.tags, limit: limits.bulkTagMaxContacts, actor: actor, write: write)
    }
}
