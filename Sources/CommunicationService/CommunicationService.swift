import FoundationEssentials
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// The communication service as the kit runs it: defaults, settings, migrations, RPCs and the role each RPC needs.
public enum CommunicationService: ServiceDefinition {
    /// `communication`, gRPC 50063, admin 9463.
    public static let defaults = ServiceDefaults.communication

    /// The settings of the communication service beyond the shared ones.
    public static let settings: [EnvironmentSetting] = [
        .init(
            "SWITCHBOARD_COMMUNICATION_PAGE_BYTES", default: String(1 << 20),
            help: "Bytes of one WatchChanges replay batch (65536-3145728); the response limit is 4 MiB."),
        .init(
            "SWITCHBOARD_COMMUNICATION_SEARCH_TIMEOUT_MS", default: "2000",
            help: "How long one SearchInteractions statement may run (100-30000 ms) before it is cancelled (RESOURCE_EXHAUSTED)."),
    ]

    /// The description with the settings the environment gives.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func description(environment: [String: String]) throws -> ServiceDescription {
        let env = EnvironmentReader(environment)
        return description(
            pageBytes: try env.int(settings[0], in: (64 << 10)...(3 << 20)), searchTimeoutMilliseconds: try env.int(settings[1], in: 100...30_000))
    }

    /// The description with the default settings.
    public static var description: ServiceDescription { description(pageBytes: 1 << 20) }

    /// The description.
    /// - Parameters:
    ///   - pageBytes: the byte budget of a change-feed replay batch.
    ///   - searchTimeoutMilliseconds: the statement timeout of a search.
    public static func description(pageBytes: Int, searchTimeoutMilliseconds: Int = 2000) -> ServiceDescription {
        typealias M = Switchboard_Communication_V1_CommunicationService.Method
        return ServiceDescription(
            defaults: defaults, migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Communication_V1_CommunicationService.serviceName],
            requiredRoles: [
                M.logInteraction: .user, M.updateInteraction: .user, M.deleteInteraction: .user, M.undeleteInteraction: .user,
                M.getInteraction: .readOnly, M.listInteractions: .readOnly, M.searchInteractions: .readOnly, M.listFollowUpsDue: .readOnly,
                M.recordConsent: .user, M.listConsentHistory: .readOnly, M.checkConsent: .readOnly,
                M.createTemplate: .user, M.updateTemplate: .user, M.getTemplate: .readOnly, M.listTemplates: .readOnly,
                M.renderTemplate: .readOnly,
                M.watchChanges: .readOnly,
            ],
            feedBatchBytes: pageBytes,
            makeServices: { dependencies in
                let store = PostgresInteractionStore(
                    pool: dependencies.pool, feed: dependencies.changeFeed, idempotency: dependencies.idempotency,
                    searchTimeoutMilliseconds: searchTimeoutMilliseconds, publish: { try InteractionMapping.published($0) })
                let consent = PostgresConsentStore(
                    pool: dependencies.pool, feed: dependencies.changeFeed, idempotency: dependencies.idempotency,
                    publish: { try ConsentMapping.proto($0).protoJSONText() })
                let templates = PostgresTemplateStore(
                    pool: dependencies.pool, feed: dependencies.changeFeed, idempotency: dependencies.idempotency,
                    publish: { try TemplateMapping.proto($0).protoJSONText() })
                return [
                    CommunicationHandler(
                        interactions: InteractionDomain(store: store), consent: ConsentDomain(store: consent),
                        templates: TemplateDomain(store: templates), changes: dependencies.changes)
                ]
            })
    }
}
