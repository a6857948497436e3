import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CollaborationHandler {
    /// The `CreateNotification` RPC (see `collaboration.proto`).
    public func createNotification(
        request: Switchboard_Collaboration_V1_CreateNotificationRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Notification {
        guard let notification = request.notification else {
            throw CollaborationError.invalid("notification", "is required", reason: "REQUIRED")
        }
        let data = try M.notificationData(notification)
        let write = try Self.write(request, request.requestId, context, Methods.createNotification) { (r: NotificationRecord) in M.proto(r) }
        return try write.response(try await domain.notify(data, principal: try Self.principal(context), write: write.options))
    }

    /// The `ListNotifications` RPC (see `collaboration.proto`).
    public func listNotifications(
        request: Switchboard_Collaboration_V1_ListNotificationsRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_ListNotificationsResponse {
        let (records, next) = try await domain.notifications(
            unreadOnly: request.unreadOnly, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "",
            principal: try Self.principal(context))
        var response = Switchboard_Collaboration_V1_ListNotificationsResponse()
        response.notifications = records.map(M.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    /// The `SubscribeNotifications` RPC (see `collaboration.proto`).
    public func subscribeNotifications(
        request: Switchboard_Collaboration_V1_SubscribeNotificationsRequest, responses: RPCWriter<Switchboard_Collaboration_V1_Notification>,
        context: ServerContext
    ) async throws {
        try await domain.subscribe(afterID: request.afterId, principal: try Self.principal(context)) { record in
            try await responses.write(M.proto(record))
        }
    }

    /// The `MarkNotificationsRead` RPC (see `collaboration.proto`).
    public func markNotificationsRead(
        request: Switchboard_Collaboration_V1_NotificationIdsRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_NotificationIdsResponse {
        var response = Switchboard_Collaboration_V1_NotificationIdsResponse()
        response.updated = Int32(try await domain.mark(ids: request.ids, acknowledge: false, principal: try Self.principal(context)))
        return response
    }

    /// The `AcknowledgeNotifications` RPC (see `collaboration.proto`).
    public func acknowledgeNotifications(
        request: Switchboard_Collaboration_V1_NotificationIdsRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_NotificationIdsResponse {
        var response = Switchboard_Collaboration_V1_NotificationIdsResponse()
        response.updated = Int32(try await domain.mark(ids: request.ids, acknowledge: true, principal: try Self.principal(context)))
        return response
    }

    static func preferences(_ kinds: [NotificationKind]) -> Switchboard_Collaboration_V1_NotificationPreferences {
        var p = Switchboard_Collaboration_V1_NotificationPreferences()
        p.mutedKinds = kinds.map { .init(protoValue: Int32($0.rawValue)) }
        return p
    }

    /// The `GetNotificationPreferences` RPC (see `collaboration.proto`).
    public func getNotificationPreferences(
        request: Switchboard_Collaboration_V1_GetNotificationPreferencesRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_NotificationPreferences {
        Self.preferences(try await domain.mutedKinds(principal: try Self.principal(context)))
    }

    /// The `SetNotificationPreferences` RPC (see `collaboration.proto`).
    public func setNotificationPreferences(
        request: Switchboard_Collaboration_V1_SetNotificationPreferencesRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_NotificationPreferences {
        let muted = request.preferences?.mutedKinds ?? []
        // Repeats are harmless (deduplicated) but bounded: a list longer than a few times the kinds is refused unread.
        let limit = 4 * NotificationKind.allCases.count
        guard muted.count <= limit else {
            throw CollaborationError.invalid("preferences.muted_kinds", "at most \(limit) entries", reason: "TOO_MANY")
        }
        var kinds: [NotificationKind] = []
        for (i, kind) in muted.enumerated() {
            guard let k = M.kind(kind) else {
                throw CollaborationError.invalid("preferences.muted_kinds[\(i)]", "is not a notification kind")
            }
            kinds.append(k)
        }
        return Self.preferences(try await domain.setMutedKinds(kinds, principal: try Self.principal(context)))
    }
}
