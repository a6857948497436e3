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
        .init(
            "SWITCHBOARD_COLLABORATION_SUBSCRIPTIONS", default: "10000",
            help: "SubscribeNotifications streams open at once in this process (1-100000; one tenant may hold half); more are RESOURCE_EXHAUSTED."
        ),
        .init(
            "SWITCHBOARD_COLLABORATION_SUBSCRIPTIONS_PER_USER", default: "16",
            help: "SubscribeNotifications streams one user may hold open at once in this process (1-1000); more are RESOURCE_EXHAUSTED."
        ),
        .init(
            "SWITCHBOARD_COLLABORATION_CONTACTS_ADDRESS", default: nil,
            help:
                "host:port of the contacts service, whose feed's MERGED and ERASED events re-point and erase what is about a person, and which is asked whether the contacts a write names are live (NOT_FOUND otherwise); unset: no feed is followed and contact ids are taken as given."
        ),
        .init(
            "SWITCHBOARD_COLLABORATION_CONTACTS_TOKEN_FILE", default: nil,
            help:
                "A file holding a service token (role service, no tenant) for the contacts feed, read again at every reconnection so it can be rotated; unset: the service signs its own five-minute tokens with SWITCHBOARD_JWT_HS256_SECRET, which is then required."
        ),
        .init(
            "SWITCHBOARD_COLLABORATION_COMMUNICATION_ADDRESS", default: nil,
            help:
                "host:port of the communication service, whose feed's interactions become follow-up and call notifications for their owners; unset: no feed is followed."
        ),
        .init(
            "SWITCHBOARD_COLLABORATION_COMMUNICATION_TOKEN_FILE", default: nil,
            help:
                "A file holding a service token (role service, no tenant) for the communication feed, read again at every reconnection; unset: the service signs its own five-minute tokens with SWITCHBOARD_JWT_HS256_SECRET, which is then required."
        ),
        .init(
            "SWITCHBOARD_COLLABORATION_ANALYTICS_ADDRESS", default: nil,
            help: "host:port of the analytics service, whose feed's AlertFired events notify the alerts' creators; unset: no feed is followed."),
        .init(
            "SWITCHBOARD_COLLABORATION_ANALYTICS_TOKEN_FILE", default: nil,
            help:
                "A file holding a service token (role service, no tenant) for the analytics feed, read again at every reconnection; unset: the service signs its own five-minute tokens with SWITCHBOARD_JWT_HS256_SECRET, which is then required."
        ),
        .init(
            "SWITCHBOARD_COLLABORATION_NOTIFY_MAX_AGE_HOURS", default: "72",
            help:
                "Age limit of notifications from the feeds (1-8760 hours): a follow-up due longer ago, a call that happened longer ago, or an alert that fired longer ago when it is reached notifies nobody (a replayed feed or a long outage does not flood inboxes)."
        ),
    ]

    /// The contacts feed's source (the name the first feed gave ``SourceFeed``).
    public typealias ContactsFeed = SourceFeed

    /// Where a followed feed comes from.
    public typealias SourceFeed = UpstreamFeed

    /// The contacts feed's source from ``settings``; nil when no address is set.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func contactsFeed(_ environment: [String: String]) throws -> SourceFeed? {
        try sourceFeed(address: settings[4], token: settings[5], environment)
    }

    /// The communication feed's source from ``settings``; nil when no address is set.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func communicationFeed(_ environment: [String: String]) throws -> SourceFeed? {
        try sourceFeed(address: settings[6], token: settings[7], environment)
    }

    /// The analytics feed's source from ``settings``; nil when no address is set.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func analyticsFeed(_ environment: [String: String]) throws -> SourceFeed? {
        try sourceFeed(address: settings[8], token: settings[9], environment)
    }

    /// A feed's source from its address and token file settings.
    private static func sourceFeed(
        address setting: EnvironmentSetting, token tokenSetting: EnvironmentSetting, _ environment: [String: String]
    ) throws
        -> SourceFeed?
    {
        try UpstreamFeed.from(address: setting, tokenFile: tokenSetting, service: defaults.name, environment: environment)
    }

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
        let subscriptions = try env.int(settings[2], in: 1...100_000)
        let subscriptionsPerUser = try env.int(settings[3], in: 1...1000)
        let notifyMaxAgeHours = try env.int(settings[10], in: 1...8760)
        let contacts = try contactsFeed(environment)
        return description(
            maxFileBytes: Int64(maxFileBytes), uploadStreams: uploadStreams, subscriptions: subscriptions,
            subscriptionsPerUser: subscriptionsPerUser, contactsFeed: contacts,
            communicationFeed: try communicationFeed(environment), analyticsFeed: try analyticsFeed(environment),
            notifyMaxAge: .seconds(notifyMaxAgeHours * 3600), contactsAddress: contacts.map { ($0.host, $0.port) })
    }

    /// The description with the default settings.
    public static var description: ServiceDescription { description() }

    /// The description.
    /// - Parameters:
    ///   - maxFileBytes: the largest file an upload may declare.
    ///   - uploadStreams: most uploads at once.
    ///   - contactsFeed: the contacts feed to follow; nil follows none.
    ///   - communicationFeed: the communication feed to follow (follow-ups and calls); nil follows none.
    ///   - analyticsFeed: analytics' feed to follow (alerts); nil follows none.
    ///   - notifyMaxAge: the age limit of notifications from the feeds.
    ///   - reminderInterval: the time between scans for due meeting reminders and follow-ups.
    ///   - subscriptions: most notification streams open at once.
    ///   - subscriptionsPerUser: most notification streams of one user at once.
    ///   - contactsAddress: the contacts service, asked whether the contacts a write names are live; nil: contact ids
    ///     are taken as given.
    public static func description(
        maxFileBytes: Int64 = FileRules.defaultMaxFileBytes, uploadStreams: Int = 4, subscriptions: Int = 10_000,
        subscriptionsPerUser: Int = 16, contactsFeed: SourceFeed? = nil, communicationFeed: SourceFeed? = nil, analyticsFeed: SourceFeed? = nil,
        notifyMaxAge: Duration = .seconds(72 * 3600), reminderInterval: Duration = .seconds(1),
        contactsAddress: (host: String, port: Int)? = nil
    ) -> ServiceDescription {
        typealias M = Switchboard_Collaboration_V1_CollaborationService.Method
        var description = ServiceDescription(
            defaults: defaults, migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Collaboration_V1_CollaborationService.serviceName],
            requiredRoles: AccessRules.collaboration,
            makeServices: { dependencies in
                let store = makeStore(dependencies)
                let notifier = dependencies.notifier
                let domain = CollaborationDomain(
                    store: store, maxFileBytes: maxFileBytes, uploadStreams: uploadStreams, subscriptions: subscriptions,
                    subscriptionsPerUser: subscriptionsPerUser, wakeups: { tenant in notifier.wakeups(tenantID: tenant) })
                // Made here, after the runtime sized the event loops the channel takes; it connects at its first call.
                let references = ContactReferences(
                    contacts: contactsAddress.map { GRPCChannel(host: $0.host, port: $0.port) }, idempotency: dependencies.idempotency,
                    pool: dependencies.pool)
                return [CollaborationHandler(domain: domain, changes: dependencies.changes, references: references)]
            })
        description.makeBackgroundServices = { dependencies in
            var services: [any Service] = [
                ReminderService(store: makeStore(dependencies), interval: reminderInterval, notifyMaxAge: notifyMaxAge, logger: dependencies.logger)
            ]
            if let contactsFeed { services.append(contactsConsumer(contactsFeed, dependencies: dependencies)) }
            if let communicationFeed {
                services.append(
                    communicationConsumer(communicationFeed, notifyMaxAge: notifyMaxAge, pool: dependencies.pool, logger: dependencies.logger))
            }
            if let analyticsFeed {
                services.append(analyticsConsumer(analyticsFeed, notifyMaxAge: notifyMaxAge, pool: dependencies.pool, logger: dependencies.logger))
            }
            return services
        }
        return description
    }

    static func makeStore(_ dependencies: ServiceDependencies) -> PostgresCollaborationStore { store(pool: dependencies.pool) }

    /// The store as the service builds it, with the change-event payloads made by the handlers' mapping (the contacts
    /// feed's tests apply events through it).
    /// - Parameter pool: the service's pool.
    public static func store(pool: PostgresPool) -> PostgresCollaborationStore {
        PostgresCollaborationStore(
            pool: pool, feed: ChangeFeed(schema: defaults.name), idempotency: Idempotency(schema: defaults.name),
            publish: .init(
                note: { try CollaborationMapping.published($0) },
                comment: { try CollaborationMapping.published($0, redacted: $1) },
                team: { try CollaborationMapping.proto($0).protoJSONText() },
                grant: { try CollaborationMapping.published($0) },
                file: { try CollaborationMapping.proto($0).protoJSONText() },
                meeting: { try CollaborationMapping.proto($0).protoJSONText() },
                receipt: { try CollaborationMapping.proto($0).protoJSONText() }))
    }

    /// Applies a batch of the contacts feed; an event that cannot be applied is set aside
    /// (``FeedConsumer/setAside(_:reason:feed:schema:logger:on:)``), never thrown (a thrown error would retry the batch
    /// for ever and stop the feed for every tenant).
    public static func applyContactsEvents(
        _ events: [Switchboard_Common_V1_ChangeEvent], store: PostgresCollaborationStore, logger: Logger, on connection: PostgresConnection
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
        try await store.applyContactChanges(changes, on: connection)
    }

    /// Applies a batch of the communication feed (Interaction events: follow-ups and calls); an event that cannot be
    /// applied is set aside, never thrown.
    /// - Parameters:
    ///   - events: the batch.
    ///   - store: the store.
    ///   - notifyMaxAge: how old a call may be and still notify.
    ///   - logger: where set-aside events are logged.
    ///   - connection: the consumer's transaction.
    public static func applyCommunicationEvents(
        _ events: [Switchboard_Common_V1_ChangeEvent], store: PostgresCollaborationStore, notifyMaxAge: Duration = .seconds(72 * 3600),
        logger: Logger, on connection: PostgresConnection
    ) async throws {
        var changes: [InteractionChange] = []
        for event in events {
            switch NotificationFeedMapping.interaction(event) {
            case .apply(let change): changes.append(change)
            case .ignore: continue
            case .reject(let reason):
                try await FeedConsumer.setAside(event, reason: reason, feed: "communication", schema: defaults.name, logger: logger, on: connection)
            }
        }
        try await store.applyInteractionChanges(changes, maxAge: notifyMaxAge, on: connection)
    }

    /// Applies a batch of analytics' feed (AlertFired events); an event that cannot be applied is set aside, never
    /// thrown.
    /// - Parameters:
    ///   - events: the batch.
    ///   - store: the store.
    ///   - notifyMaxAge: how old a firing may be and still notify.
    ///   - logger: where set-aside events are logged.
    ///   - connection: the consumer's transaction.
    public static func applyAnalyticsEvents(
        _ events: [Switchboard_Common_V1_ChangeEvent], store: PostgresCollaborationStore, notifyMaxAge: Duration = .seconds(72 * 3600),
        logger: Logger, on connection: PostgresConnection
    ) async throws {
        var notices: [AlertNotice] = []
        for event in events {
            switch NotificationFeedMapping.alert(event) {
            case .apply(let notice): notices.append(notice)
            case .ignore: continue
            case .reject(let reason):
                try await FeedConsumer.setAside(event, reason: reason, feed: "analytics", schema: defaults.name, logger: logger, on: connection)
            }
        }
        try await store.applyAlertNotices(notices, maxAge: notifyMaxAge, on: connection)
    }

    /// Follows the communication service's cross-tenant feed (Interaction events), on its own cursor (`communication`).
    /// - Parameters:
    ///   - source: the communication service.
    ///   - notifyMaxAge: how old a call may be and still notify.
    ///   - pool: the service's pool.
    ///   - logger: the logger.
    public static func communicationConsumer(_ source: SourceFeed, notifyMaxAge: Duration, pool: PostgresPool, logger: Logger) -> FeedConsumer {
        let feedStore = Self.store(pool: pool)
        let token = source.token
        return FeedConsumer(
            feed: "communication", schema: defaults.name,
            source: .init(
                transport: GRPCChannel(host: source.host, port: source.port), token: { try await token.token() },
                resourceTypes: [NotificationFeedMapping.interactionType]),
            pool: pool, logger: logger
        ) { events, connection in
            try await applyCommunicationEvents(events, store: feedStore, notifyMaxAge: notifyMaxAge, logger: logger, on: connection)
        }
    }

    /// Follows the analytics service's cross-tenant feed (AlertFired events), on its own cursor (`analytics`).
    /// - Parameters:
    ///   - source: the analytics service.
    ///   - notifyMaxAge: how old a firing may be and still notify.
    ///   - pool: the service's pool.
    ///   - logger: the logger.
    public static func analyticsConsumer(_ source: SourceFeed, notifyMaxAge: Duration, pool: PostgresPool, logger: Logger) -> FeedConsumer {
        let feedStore = Self.store(pool: pool)
        let token = source.token
        return FeedConsumer(
            feed: "analytics", schema: defaults.name,
            source: .init(
                transport: GRPCChannel(host: source.host, port: source.port), token: { try await token.token() },
                resourceTypes: [NotificationFeedMapping.alertFiredType]),
            pool: pool, logger: logger
        ) { events, connection in
            try await applyAnalyticsEvents(events, store: feedStore, notifyMaxAge: notifyMaxAge, logger: logger, on: connection)
        }
    }

    /// Follows the contacts service's cross-tenant feed.
    static func contactsConsumer(_ source: SourceFeed, dependencies: ServiceDependencies) -> FeedConsumer {
        let store = makeStore(dependencies)
        let token = source.token
        return FeedConsumer(
            feed: "contacts", schema: defaults.name,
            source: .init(
                transport: GRPCChannel(host: source.host, port: source.port), token: { try await token.token() },
                resourceTypes: [ContactsFeedMapping.contactType]),
            pool: dependencies.pool, logger: dependencies.logger
        ) { [logger = dependencies.logger] events, connection in
            try await applyContactsEvents(events, store: store, logger: logger, on: connection)
        }
    }
}
