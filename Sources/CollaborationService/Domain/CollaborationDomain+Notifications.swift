import FoundationEssentials
import SwitchboardRPC
import SwitchboardServiceKit

extension CollaborationDomain {
    /// Sends an announcement to users, a team or (managers and admins only) the whole tenant.
    public func notify(
        _ data: NotificationData, principal: Principal, write: WriteOptions<NotificationRecord>
    ) async throws
        -> WriteOutcome<NotificationRecord>
    {
        if let replay = try await replayed(write, principal) { return replay }
        var data = data
        if case .users(let users) = data.audience {
            var seen = Set<String>()
            data.audience = .users(users.filter { seen.insert($0).inserted })
        }
        let violations = NotificationRules.check(data)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        switch data.audience {
        case .tenant:
            guard principal.isManager else { throw CollaborationError.forbidden("only a manager or an admin may notify the whole tenant") }
        case .team(let team):
            _ = try await self.team(id: team, principal: principal)
        case .users: break
        }
        return try await store.insertNotification(data, principal: principal, write: write)
    }

    /// A page of the principal's notifications, newest first, and the next page's token.
    public func notifications(
        unreadOnly: Bool, pageSize: Int, pageToken: String, principal: Principal
    ) async throws
        -> ([NotificationRecord], String)
    {
        let limit = try CollaborationRules.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint(["notifications", String(unreadOnly)])
        var before: Int64?
        if let parts = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 1) {
            guard let id = Int64(parts[0]), id > 0 else {
                throw CollaborationError.invalid("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")
            }
            before = id
        }
        let rows = try await store.notifications(from: before, ascending: false, unreadOnly: unreadOnly, limit: limit, principal: principal)
        let next = rows.more ? rows.records.last.map { PageToken(cursor: [String($0.id)], fingerprint: fingerprint).encoded } ?? "" : ""
        return (rows.records, next)
    }

    /// Streams the principal's notifications after `afterID` in id order, then live ones, until the caller cancels.
    ///
    /// The wakeup subscription is made before the first read, so a notification committed between reading the backlog
    /// and waiting still wakes the loop; every read asks for ids after the last one delivered, and ids become visible in
    /// order (the store numbers them under a lock held to commit), so nothing is skipped or sent twice at the switch.
    public func subscribe(afterID: Int64, principal: Principal, deliver: (NotificationRecord) async throws -> Void) async throws {
        guard afterID >= 0 else { throw CollaborationError.invalid("after_id", "must not be negative") }
        let tenant = principal.actor.tenantID
        try await subscriptions.run(tenant: tenant) {
            try await userSubscriptions.run(tenant: "\(tenant)\u{1F}\(principal.userID)") {
                try await follow(afterID: afterID, principal: principal, deliver: deliver)
            }
        }
    }

    private func follow(afterID: Int64, principal: Principal, deliver: (NotificationRecord) async throws -> Void) async throws {
        var iterator = wakeups(principal.actor.tenantID).makeAsyncIterator()
        var cursor = afterID
        while !Task.isCancelled {
            let rows = try await store.notifications(
                from: cursor, ascending: true, unreadOnly: false, limit: NotificationRules.streamBatch, principal: principal)
            for record in rows.records {
                try await deliver(record)
                cursor = record.id
            }
            if rows.more { continue }
            guard await iterator.next() != nil else { break }
        }
        throw CancellationError()
    }

    /// Marks notifications read or acknowledged (acknowledging also reads).
    public func mark(ids: [Int64], acknowledge: Bool, principal: Principal) async throws -> Int {
        try await store.markNotifications(ids: try NotificationRules.checkIDs(ids), acknowledge: acknowledge, principal: principal)
    }

    /// The kinds the principal muted.
    public func mutedKinds(principal: Principal) async throws -> [NotificationKind] {
        try await store.mutedKinds(principal: principal)
    }

    /// Replaces the kinds the principal muted.
    public func setMutedKinds(_ kinds: [NotificationKind], principal: Principal) async throws -> [NotificationKind] {
        let kinds = Array(Set(kinds)).sorted { $0.rawValue < $1.rawValue }
        try await store.setMutedKinds(kinds, principal: principal)
        return kinds
    }
}
