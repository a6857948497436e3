import SwitchboardServiceKit

/// What can go wrong in a collaboration use case, each sent as a precise status (`CollaborationError+RPC.swift`).
public enum CollaborationError: Error, Sendable, Hashable {
    /// INVALID_ARGUMENT naming each field.
    case invalid([Violation])
    /// NOT_FOUND: the resource does not exist in the caller's tenant, or the caller may not read it.
    case notFound(kind: String, id: String)
    /// ABORTED: the etag named is not the current one.
    case etagMismatch(current: String)
    /// PERMISSION_DENIED with the rule that refused.
    case forbidden(String)
    /// ALREADY_EXISTS, e.g. a team name taken.
    case alreadyExists(String)
    /// FAILED_PRECONDITION, e.g. a team that would outgrow its limit.
    case failedPrecondition(String)
    /// FAILED_PRECONDITION: attendee users have these other meetings at the time asked (ids).
    case meetingConflicts([String])

    /// INVALID_ARGUMENT for one field.
    static func invalid(_ field: String, _ description: String, reason: String = "INVALID") -> CollaborationError {
        .invalid([Violation(field, description, reason: reason)])
    }
}
