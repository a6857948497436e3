import FoundationEssentials
import Logging
import ServiceLifecycle
import SwitchboardAccess
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// The organization service as the kit runs it: defaults, settings, migrations, RPCs and the role each RPC needs.
public enum OrganizationService: ServiceDefinition {
    /// `organization`, gRPC 50062, admin 9462.
    public static let defaults = ServiceDefaults.organization

    /// The settings of the organization service beyond the shared ones.
    public static let settings: [EnvironmentSetting] = [
        .init(
            "SWITCHBOARD_ORGANIZATION_PAGE_BYTES", default: String(1 << 20),
            help:
                "Bytes of organizations in one ListOrganizations page and of one WatchChanges replay batch (65536-3145728); the response limit is 4 MiB."
        ),
        .init(
            "SWITCHBOARD_ORGANIZATION_CONTACTS_ADDRESS", default: nil,
            help: "host:port of the contacts service, whose change feed keeps the projection of contacts; unset: no feed is followed."),
        .init(
            "SWITCHBOARD_ORGANIZATION_CONTACTS_TOKEN_FILE", default: nil,
            help:
                "A file holding a service token (role service, no tenant) for the contacts feed, read again at every reconnection so it can be rotated; unset: the service signs its own five-minute tokens with SWITCHBOARD_JWT_HS256_SECRET, which is then required."
        ),
        .init(
            "SWITCHBOARD_ORGANIZATION_TREE_STREAMS", default: "4",
            help:
                "StreamOrganizationTree calls served at once (1-64, below SWITCHBOARD_DB_POOL_SIZE; each holds a database connection while its client reads; one tenant may hold half, rounded up); more are RESOURCE_EXHAUSTED."
        ),
    ]

    /// Where the contacts feed comes from.
    public typealias ContactsFeed = UpstreamFeed

    /// The contacts feed's source from ``settings``; nil when no address is set.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func contactsFeed(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ContactsFeed? {
        try UpstreamFeed.from(address: settings[1], tokenFile: settings[2], service: defaults.name, environment: environment)
    }

    /// Bytes of one ListOrganizations page, from ``settings``.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func pageBytes(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int {
        try EnvironmentReader(environment).int(settings[0], in: (64 << 10)...(3 << 20))
    }

    /// The description with the settings the environment gives.
    public static func description(environment: [String: String]) throws -> ServiceDescription {
        let env = EnvironmentReader(environment)
        let treeStreams = try env.int(settings[3], in: 1...64)
        // Each tree stream holds a connection for as long as its client reads: the pool must keep some for every
        // other call.
        let poolSize = try env.int(DatabaseConfiguration.settings(for: defaults).first { $0.name == "SWITCHBOARD_DB_POOL_SIZE" }!, in: 1...200)
        guard treeStreams < poolSize else {
            throw ConfigurationError(
                variable: settings[3].name, problem: "must be below SWITCHBOARD_DB_POOL_SIZE (\(poolSize)): each tree stream holds a connection")
        }
        return description(pageBytes: try pageBytes(environment), contactsFeed: try contactsFeed(environment), treeStreams: treeStreams)
    }

    /// The description with the default settings.
    public static var description: ServiceDescription { description(pageBytes: 1 << 20) }

    /// The description.
    /// - Parameters:
    ///   - pageBytes: the byte budget of a list page and a change-feed replay batch.
    ///   - contactsFeed: where the contacts feed comes from; nil follows none.
    ///   - treeStreams: most StreamOrganizationTree calls at once.
    public static func description(pageBytes: Int, contactsFeed: ContactsFeed? = nil, treeStreams: Int = 4) -> ServiceDescription {
        typealias M = Switchboard_Organization_V1_OrganizationService.Method
        var description = ServiceDescription(
            defaults: defaults, migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Organization_V1_OrganizationService.serviceName],
            requiredRoles: AccessRules.organization,
            feedBatchBytes: pageBytes,
            makeServices: { dependencies in
                let store = PostgresOrganizationStore(
                    pool: dependencies.pool, feed: dependencies.changeFeed, idempotency: dependencies.idempotency,
                    publish: .init(
                        organization: { try OrganizationMapping.proto($0).protoJSONText() },
                        unit: { try OrganizationMapping.proto($0).protoJSONText() },
                        membership: { try MembershipMapping.proto($0).protoJSONText() },
                        group: { try GroupMapping.proto($0).protoJSONText() }))
                let organizations = OrganizationDomain(store: store, pageBytes: pageBytes, treeStreams: treeStreams)
                return [
                    OrganizationHandler(
                        domain: organizations, memberships: MembershipDomain(store: store, organizations: organizations),
                        groups: GroupDomain(store: store), subjects: store, changes: dependencies.changes)
                ]
            })
        if let contactsFeed {
            description.makeBackgroundServices = { dependencies in
                [contactsConsumer(contactsFeed, dependencies: dependencies)]
            }
        }
        return description
    }

    /// Applies a batch of the contacts feed: the events the projection follows, in order; an event it cannot apply is
    /// set aside (``FeedConsumer/setAside(_:reason:feed:schema:logger:on:)``) instead of failing the batch for ever.
    static func applyContactsEvents(
        _ events: [Switchboard_Common_V1_ChangeEvent], projection: PostgresContactProjection, logger: Logger, on connection: PostgresConnection
    ) async throws {
        var changes: [ContactChange] = []
        for event in events {
            switch ContactsFeedMapping.outcome(event) {
            case .apply(let change): changes.append(change)
            case .ignore: continue
            case .reject(let reason):
                try await FeedConsumer.setAside(event, reason: reason, feed: "contacts", schema: defaults.name, logger: logger, on: connection)
            }
        }
        try await projection.apply(changes, on: connection)
    }

    /// Follows the contacts service's cross-tenant feed into the projection of contacts.
    static func contactsConsumer(_ source: ContactsFeed, dependencies: ServiceDependencies) -> FeedConsumer {
        let projection = PostgresContactProjection(
            feed: dependencies.changeFeed, publishMembership: { try MembershipMapping.proto($0).protoJSONText() },
            publishGroup: { try GroupMapping.proto($0).protoJSONText() },
            publishReceipt: { try ContactsFeedMapping.proto($0).protoJSONText() })
        let token = source.token
        return FeedConsumer(
            feed: "contacts", schema: defaults.name,
            source: .init(
                transport: GRPCChannel(host: source.host, port: source.port),
                token: { try await token.token() },
                resourceTypes: [ContactsFeedMapping.contactType]),
            pool: dependencies.pool, logger: dependencies.logger
        ) { [logger = dependencies.logger] events, connection in
            try await applyContactsEvents(events, projection: projection, logger: logger, on: connection)
        }
    }
}
