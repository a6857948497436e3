import SwitchboardPostgres
import SwitchboardProtos

/// The page each list of a `GetContactSummary` answer holds (organization, communication, collaboration and analytics
/// each have that RPC: the first pages of a contact's lists in one call, which the gateway's contact-360 view makes
/// once per service instead of once per list).
public enum ContactSummaryPage {
    /// Entries per list when the request asks for none.
    public static let defaultSize: Int32 = 10
    /// Most entries per list: a summary is a first look; a list's own RPC pages further with the token it returns.
    public static let maxSize: Int32 = 50

    /// The first page's request for `asked` entries (0: ``defaultSize``).
    /// - Throws: ``InvalidRequest`` naming `field` when `asked` is negative or above ``maxSize``.
    public static func request(_ asked: Int32, field: String = "page_size") throws -> Switchboard_Common_V1_PageRequest {
        guard asked >= 0, asked <= maxSize else {
            throw InvalidRequest(field, "must be between 0 and \(maxSize) (0: \(defaultSize))", reason: "OUT_OF_RANGE")
        }
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = asked == 0 ? defaultSize : asked
        return page
    }

    /// Runs a summary's reads together: the lists it reads at once (each through its own RPC's code) go to the database
    /// as one pipeline in one transaction (``PostgresPool/gatheringCalls(_:)``), not a round trip, a transaction and a
    /// settings statement each.
    /// - Parameter body: the summary's reads.
    /// - Returns: what `body` returned.
    public static func readingTogether<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await PostgresPool.gatheringCalls(body)
    }
}
