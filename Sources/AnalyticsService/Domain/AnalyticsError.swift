import SwitchboardServiceKit

/// What can go wrong in an analytics use case, each sent as a precise status (`AnalyticsError+RPC.swift`).
public enum AnalyticsError: Error, Sendable, Hashable {
    /// NOT_FOUND: no such resource in the caller's tenant.
    case notFound(kind: String, id: String)
    /// FAILED_PRECONDITION, e.g. a tenant at its limit of stored reports.
    case failedPrecondition(String)
    /// PERMISSION_DENIED, e.g. deleting another user's report without the manager role.
    case permissionDenied(String)
}
