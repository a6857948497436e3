import FoundationEssentials
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// The collaboration service as the kit runs it: defaults, settings, migrations, RPCs and the role each RPC needs.
public enum CollaborationService: ServiceDefinition {
    /// `collaboration`, gRPC 50064, admin 9464.
    public static let defaults = ServiceDefaults.collaboration

    /// The settings of the collaboration service beyond the shared ones.
    public static let settings: [EnvironmentSetting] = [
        .init(
            "SWITCHBOARD_COLLABORATION_MAX_FILE_BYTES", default: String(FileRules.defaultMaxFileBytes),
            help: "Largest file UploadFile accepts (1-10737418240 bytes); a larger declared size is INVALID_ARGUMENT, and nothing is stored."),
        .init(
            "SWITCHBOARD_COLLABORATION_UPLOAD_STREAMS", default: "4",
            help:
                "UploadFile calls served at once (1-64, below SWITCHBOARD_DB_POOL_SIZE; each holds a database transaction while its client sends; one tenant may hold half, rounded up); more are RESOURCE_EXHAUSTED."
        ),
    ]

    /// The description with the settings the environment gives.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func description(environment: [String: String]) throws -> ServiceDescription {
        let env = EnvironmentReader(environment)
        let maxFileBytes = try env.int(settings[0], in: 1...(10 << 30))
        let uploadStreams = try env.int(settings[1], in: 1...64)
        let poolSize = try env.int(DatabaseConfiguration.settings(for: defaults).first { $0.name == "SWITCHBOARD_DB_POOL_SIZE" }!, in: 1...200)
        guard uploadStreams < poolSize else {
            throw ConfigurationError(
                variable: settings[1].name, problem: "must be below SWITCHBOARD_DB_POOL_SIZE (\(poolSize)): each upload holds a connection")
        }
        return description(maxFileBytes: Int64(maxFileBytes), uploadStreams: uploadStreams)
    }

    /// The description with the default settings.
    public static var description: ServiceDescription { description() }

    /// The description.
    /// - Parameters:
    ///   - maxFileBytes: the largest file an upload may declare.
    ///   - uploadStreams: most uploads at once.
    public static func description(maxFileBytes: Int64 = FileRules.defaultMaxFileBytes, uploadStreams: Int = 4) -> ServiceDescription {
        typealias M = Switchboard_Collaboration_V1_CollaborationService.Method
        return ServiceDescription(
            defaults: defaults, migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Collaboration_V1_CollaborationService.serviceName],
            requiredRoles: [
                M.createNote: .user, M.getNote: .readOnly, M.updateNote: .user, M.deleteNote: .user, M.undeleteNote: .user,
                M.listNotes: .readOnly,
                M.createComment: .user, M.updateComment: .user, M.deleteComment: .user, M.listComments: .readOnly,
                M.createTeam: .manager, M.getTeam: .readOnly, M.listTeams: .readOnly, M.addTeamMembers: .manager,
                M.removeTeamMembers: .manager,
                M.shareNote: .user, M.revokeGrant: .user, M.listGrants: .readOnly,
                M.createNotification: .user, M.listNotifications: .readOnly, M.subscribeNotifications: .readOnly,
                M.markNotificationsRead: .readOnly, M.acknowledgeNotifications: .readOnly, M.getNotificationPreferences: .readOnly,
                M.setNotificationPreferences: .readOnly,
                M.uploadFile: .user, M.downloadFile: .readOnly, M.getFile: .readOnly, M.listFiles: .readOnly,
                M.createMeeting: .user, M.getMeeting: .readOnly, M.updateMeeting: .user, M.deleteMeeting: .user,
                M.listMeetings: .readOnly, M.findFreeSlots: .readOnly,
                M.watchChanges: .readOnly, M.exportSubject: .admin,
            ],
            makeServices: { dependencies in
                let store = PostgresCollaborationStore(
                    pool: dependencies.pool, feed: dependencies.changeFeed, idempotency: dependencies.idempotency,
                    publish: .init(
                        note: { try CollaborationMapping.published($0) },
                        comment: { try CollaborationMapping.published($0, redacted: $1) },
                        team: { try CollaborationMapping.proto($0).protoJSONText() },
                        grant: { try CollaborationMapping.proto($0).protoJSONText() },
                        file: { try CollaborationMapping.proto($0).protoJSONText() },
                        meeting: { try CollaborationMapping.proto($0).protoJSONText() }))
                let notifier = dependencies.notifier
                let domain = CollaborationDomain(
                    store: store, maxFileBytes: maxFileBytes, uploadStreams: uploadStreams,
                    wakeups: { tenant in notifier.wakeups(tenantID: tenant) })
                return [CollaborationHandler(domain: domain, changes: dependencies.changes)]
            })
    }
}
