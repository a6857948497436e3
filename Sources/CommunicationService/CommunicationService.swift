import Crypto
import FoundationEssentials
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SwitchboardAccess
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// The communication service as the kit runs it: defaults, settings, migrations, RPCs and the role each RPC needs,
/// and the dispatcher that sends through the provider when one is configured.
public enum CommunicationService: ServiceDefinition {
    /// `communication`, gRPC 50063, admin 9463.
    public static let defaults = ServiceDefaults.communication

    /// The settings of the communication service beyond the shared ones.
    public static let settings: [EnvironmentSetting] = [
        .init(
            "SWITCHBOARD_COMMUNICATION_PAGE_BYTES", default: String(1 << 20),
            help: "Bytes of one WatchChanges replay batch and of one ExportSubject read (65536-3145728); the response limit is 4 MiB."),
        .init(
            "SWITCHBOARD_COMMUNICATION_SEARCH_TIMEOUT_MS", default: "2000",
            help: "How long one SearchInteractions statement may run (100-30000 ms) before it is cancelled (RESOURCE_EXHAUSTED)."),
        .init(
            "SWITCHBOARD_COMMUNICATION_PROVIDER_URL", default: nil,
            help:
                "The provider's webhook (http:// or https://host[:port]/path) that sends are posted to; unset: sends are scheduled but no dispatcher runs."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_PROVIDER_SECRET_FILE", default: nil,
            help:
                "A file holding the secret shared with the provider (at least 32 bytes); each post carries X-Switchboard-Signature: sha256=<HMAC-SHA256 of the exact body>. Required with the URL."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_PROVIDER_TIMEOUT_MS", default: "10000",
            help: "The bound of one provider call, connect to last response byte (100-120000 ms); a timeout is retried."),
        .init(
            "SWITCHBOARD_COMMUNICATION_SEND_MAX_ATTEMPTS", default: "8",
            help: "Provider calls one send may take (1-100); after the last retryable failure it is FAILED with the reason."),
        .init(
            "SWITCHBOARD_COMMUNICATION_SEND_LEASE_SECONDS", default: "60",
            help:
                "How long a dispatcher's claim on a send lasts (1-3600 s); must exceed the provider timeout. A send whose dispatcher died is claimed again after it."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_DISPATCH_POLL_MS", default: "500",
            help: "How often an idle dispatcher looks for due sends (10-60000 ms)."),
        .init(
            "SWITCHBOARD_COMMUNICATION_EVENTS_ADDRESS", default: nil,
            help:
                "host:port of the webhook the provider posts delivery events to (signed like the sends, with the provider secret); unset: no events are received."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_CONTACTS_ADDRESS", default: nil,
            help:
                "host:port of the contacts service, whose change feed keeps the address directory, cancels a deleted contact's sends, re-points merged ones and suppresses erased people, and which is asked whether the contacts a write names are live (NOT_FOUND otherwise) and for saved-search audiences; unset: no feed is followed and contact ids are taken as given."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_CONTACTS_TOKEN_FILE", default: nil,
            help:
                "A file holding a service token for the contacts feed, read again at every reconnection; unset: the service signs its own with SWITCHBOARD_JWT_HS256_SECRET, which is then required."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_SUPPRESSION_SECRET_FILE", default: nil,
            help:
                "A file holding the secret (at least 32 bytes) of the suppression list's HMACs of erased people's addresses; required with the contacts feed, except in development (SWITCHBOARD_JWT_HS256_SECRET set), where one is derived from that secret. Changing it forgets every suppression."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_ORGANIZATION_ADDRESS", default: nil,
            help:
                "host:port of the organization service, whose groups campaigns take as audiences (ListGroupMembers with the caller's token); unset: a group audience is FAILED_PRECONDITION. Saved-search audiences use SWITCHBOARD_COMMUNICATION_CONTACTS_ADDRESS."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_MAX_CAMPAIGN_RECIPIENTS", default: String(CampaignRules.maxRecipients),
            help:
                "The most recipients of one campaign (1-100000), however named; a larger group or saved search is FAILED_PRECONDITION. A request lists at most 10000 contact ids whatever this says."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_PROVIDER_MAX_IDLE_CONNECTIONS", default: "16",
            help:
                "Connections to the provider kept open between posts (0-256; 0: one connection per post, Connection: close). The dispatcher posts up to 16 sends at once."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_PROVIDER_IDLE_TIMEOUT_MS", default: "4000",
            help:
                "How long an idle provider connection is kept (100-300000 ms); keep it below the provider's own keep-alive timeout (Node.js servers: 5 s)."
        ),
        .init(
            "SWITCHBOARD_COMMUNICATION_PROVIDER_CA_FILE", default: nil,
            help:
                "A PEM file of the certificates trusted as roots for an https:// provider URL (a private CA), instead of the system's; unset: the system's trust store. The provider's certificate chain and its host name are verified either way."
        ),
    ]

    /// Where another service listens.
    public struct UpstreamAddress: Sendable, Hashable {
        /// Its host.
        public var host: String
        /// Its gRPC port.
        public var port: Int

        /// Creates an address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port` from a setting; nil when the setting is unset.
        /// - Throws: ``ConfigurationError`` naming the setting when it is not host:port.
        static func from(_ setting: EnvironmentSetting, _ env: EnvironmentReader) throws -> UpstreamAddress? {
            try env.address(setting).map { UpstreamAddress(host: $0.host, port: $0.port) }
        }
    }

    /// Where campaign audiences are read from, and how large one may be.
    public struct AudienceSettings: Sendable, Hashable {
        /// The organization service (groups); nil: group audiences are refused.
        public var organization: UpstreamAddress?
        /// The contacts service (saved searches, and the check that a write's contacts are live); nil: saved-search
        /// audiences are refused and contact ids are taken as given.
        public var contacts: UpstreamAddress?
        /// The most recipients of one campaign.
        public var maxRecipients: Int

        /// Creates audience settings.
        public init(organization: UpstreamAddress? = nil, contacts: UpstreamAddress? = nil, maxRecipients: Int = CampaignRules.maxRecipients) {
            self.organization = organization
            self.contacts = contacts
            self.maxRecipients = maxRecipients
        }
    }

    /// The audience settings from the environment.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func audienceSettings(_ environment: [String: String]) throws -> AudienceSettings {
        let env = EnvironmentReader(environment)
        return AudienceSettings(
            organization: try UpstreamAddress.from(settings[12], env), contacts: try UpstreamAddress.from(settings[9], env),
            maxRecipients: try env.int(settings[13], in: CampaignRules.maxRecipientsRange))
    }

    /// Where the contacts feed comes from, and the secret of the suppression list it fills.
    public struct ContactsFeed: Sendable, Hashable {
        /// The contacts service's host.
        public var host: String
        /// Its gRPC port.
        public var port: Int
        /// Where the service token comes from.
        public var token: ServiceTokenSource
        /// The secret of the suppression hashes.
        public var suppressionSecret: [UInt8]

        /// Creates the source.
        public init(host: String, port: Int, token: ServiceTokenSource, suppressionSecret: [UInt8]) {
            self.host = host
            self.port = port
            self.token = token
            self.suppressionSecret = suppressionSecret
        }
    }

    /// A secret from a file named by `setting`: its contents without trailing white space, at least 32 bytes.
    static func secret(_ setting: EnvironmentSetting, _ env: EnvironmentReader) throws -> [UInt8]? {
        guard let path = try env.file(setting) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(variable: setting.name, problem: "file \(path) could not be read")
        }
        // Trailing white space (a newline from an editor or `echo`) is not part of the secret.
        let secret = Array(InteractionRules.trimmed(String(decoding: data, as: UTF8.self)).utf8)
        guard secret.count >= 32 else { throw ConfigurationError(variable: setting.name, problem: "must hold at least 32 bytes") }
        return secret
    }

    /// The contacts feed's source from the environment; nil when no address is set.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func contactsFeed(_ environment: [String: String]) throws -> ContactsFeed? {
        let env = EnvironmentReader(environment)
        guard let address = try env.address(settings[9]) else { return nil }
        let token = try ServiceTokenSource.required(by: settings[9], tokenFile: settings[10], service: defaults.name, environment: environment)
        var suppression = try secret(settings[11], env)
        if suppression == nil, let development = environment["SWITCHBOARD_JWT_HS256_SECRET"], !development.isEmpty {
            // Development only (the kit refuses the HS256 secret beside production keys): scripts/up.sh and compose
            // start the service with the feed and no secret file. The derived key is not the token secret itself.
            suppression = Array(
                HMAC<SHA256>.authenticationCode(
                    for: Array("switchboard communication suppression list".utf8), using: SymmetricKey(data: Array(development.utf8))))
        }
        guard let secret = suppression else {
            throw ConfigurationError(variable: settings[11].name, problem: "must be set when \(settings[9].name) is")
        }
        return ContactsFeed(host: address.host, port: address.port, token: token, suppressionSecret: secret)
    }

    /// How the dispatcher reaches the provider.
    public struct ProviderSettings: Sendable, Hashable {
        /// The webhook.
        public var endpoint: WebhookEndpoint
        /// The shared secret.
        public var secret: [UInt8]
        /// One call's bound.
        public var timeout: Duration
        /// The dispatcher's tuning.
        public var dispatcher: Dispatcher.Configuration
        /// Where the events webhook listens; nil: none.
        public var eventsHost: String?
        /// Its port.
        public var eventsPort = 0
        /// How connections to the provider are kept between posts.
        public var keepAlive = WebhookKeepAlive(maxIdleConnections: 16, idleTimeout: .milliseconds(4000))
        /// The certificates trusted as roots for an https endpoint instead of the system's; nil: the system's.
        public var trustRoots: [NIOSSLCertificate]?

        /// Creates provider settings.
        public init(endpoint: WebhookEndpoint, secret: [UInt8], timeout: Duration = .seconds(10), dispatcher: Dispatcher.Configuration = .init()) {
            self.endpoint = endpoint
            self.secret = secret
            self.timeout = timeout
            self.dispatcher = dispatcher
        }
    }

    /// The provider's settings from the environment; nil when no URL is set.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func providerSettings(_ environment: [String: String]) throws -> ProviderSettings? {
        let env = EnvironmentReader(environment)
        guard let url = env.string(settings[2]) else { return nil }
        guard let endpoint = WebhookEndpoint(url: url) else {
            throw ConfigurationError(variable: settings[2].name, problem: "must be an http:// or https:// URL with a host")
        }
        guard let secret = try secret(settings[3], env) else {
            throw ConfigurationError(variable: settings[3].name, problem: "must be set when \(settings[2].name) is")
        }
        let timeout = try env.int(settings[4], in: 100...120_000)
        var dispatcher = Dispatcher.Configuration()
        dispatcher.leaseSeconds = try env.int(settings[6], in: 1...3600)
        guard dispatcher.leaseSeconds * 1000 > timeout else {
            throw ConfigurationError(variable: settings[6].name, problem: "must exceed the provider timeout (\(timeout) ms)")
        }
        dispatcher.pollInterval = .milliseconds(try env.int(settings[7], in: 10...60_000))
        var provider = ProviderSettings(endpoint: endpoint, secret: secret, timeout: .milliseconds(timeout), dispatcher: dispatcher)
        provider.keepAlive = WebhookKeepAlive(
            maxIdleConnections: try env.int(settings[14], in: 0...256),
            idleTimeout: .milliseconds(Int64(try env.int(settings[15], in: 100...300_000))))
        if let address = try env.address(settings[8], allowingPortZero: true) {
            provider.eventsHost = address.host
            provider.eventsPort = address.port
        }
        if let path = env.string(settings[16]) {
            guard endpoint.tls else {
                throw ConfigurationError(variable: settings[16].name, problem: "is set, but \(settings[2].name) is not an https:// URL")
            }
            provider.trustRoots = try certificates(settings[16], path: path)
        }
        return provider
    }

    /// The certificates of the PEM file at `path`, named by `setting`: at least one, or an error naming the setting.
    static func certificates(_ setting: EnvironmentSetting, path: String) throws -> [NIOSSLCertificate] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(variable: setting.name, problem: "file \(path) does not exist or is not readable")
        }
        // Read here, at start-up, so that a bad file stops the service with its name rather than failing every send.
        // NIOSSL throws when the file holds no certificate, and when one of them cannot be read.
        guard let certificates = try? NIOSSLCertificate.fromPEMBytes(Array(data)), !certificates.isEmpty else {
            throw ConfigurationError(variable: setting.name, problem: "file \(path) holds no PEM certificate, or one that cannot be read")
        }
        return certificates
    }

    /// The description with the settings the environment gives.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func description(environment: [String: String]) throws -> ServiceDescription {
        let env = EnvironmentReader(environment)
        return description(
            pageBytes: try env.int(settings[0], in: (64 << 10)...(3 << 20)), searchTimeoutMilliseconds: try env.int(settings[1], in: 100...30_000),
            maxSendAttempts: try env.int(settings[5], in: 1...100), provider: try providerSettings(environment),
            contactsFeed: try contactsFeed(environment), audiences: try audienceSettings(environment))
    }

    /// The change-event payloads of an interaction: for tenant readers (private ones as a stub), and for the cross-tenant
    /// feed (the whole of a private one; nil for the others, whose two payloads are the same).
    public static let publishInteraction: @Sendable (InteractionRecord) throws -> (tenant: String, service: String?) = {
        try InteractionMapping.published($0)
    }
    /// A send's published form in change events: the proto3 JSON of `switchboard.communication.v1.Send`.
    public static let publishSend: @Sendable (SendRecord) throws -> String = { try SendMapping.proto($0).protoJSONText() }

    /// The description with the default settings.
    public static var description: ServiceDescription { description(pageBytes: 1 << 20) }

    /// The description.
    /// - Parameters:
    ///   - pageBytes: the byte budget of a change-feed replay batch.
    ///   - searchTimeoutMilliseconds: the statement timeout of a search.
    ///   - maxSendAttempts: provider calls one send may take.
    ///   - provider: where the dispatcher posts; nil runs no dispatcher.
    ///   - contactsFeed: the contacts feed to follow; nil follows none (and keeps no suppression list).
    ///   - audiences: where group and saved-search audiences are read from, and the most recipients of a campaign.
    public static func description(
        pageBytes: Int, searchTimeoutMilliseconds: Int = 2000, maxSendAttempts: Int = 8, provider: ProviderSettings? = nil,
        contactsFeed: ContactsFeed? = nil, audiences: AudienceSettings = AudienceSettings()
    ) -> ServiceDescription {
        let suppressionSecret = contactsFeed?.suppressionSecret
        typealias M = Switchboard_Communication_V1_CommunicationService.Method
        var description = ServiceDescription(
            defaults: defaults, migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Communication_V1_CommunicationService.serviceName],
            requiredRoles: AccessRules.communication,
            feedBatchBytes: pageBytes,
            makeServices: { dependencies in
                let (pool, feed, idempotency) = (dependencies.pool, dependencies.changeFeed, dependencies.idempotency)
                let store = PostgresInteractionStore(
                    pool: pool, feed: feed, idempotency: idempotency, searchTimeoutMilliseconds: searchTimeoutMilliseconds,
                    publish: { try InteractionMapping.published($0) })
                let consent = ConsentDomain(
                    store: PostgresConsentStore(
                        pool: pool, feed: feed, idempotency: idempotency, publish: { try ConsentMapping.proto($0).protoJSONText() }))
                let templates = TemplateDomain(
                    store: PostgresTemplateStore(
                        pool: pool, feed: feed, idempotency: idempotency, publish: { try TemplateMapping.proto($0).protoJSONText() }))
                let sends = SendDomain(
                    store: PostgresSendStore(
                        pool: pool, feed: feed, idempotency: idempotency, publish: publishSend),
                    consent: consent, templates: templates, maxAttempts: maxSendAttempts, suppressionSecret: suppressionSecret,
                    payload: ProviderWire.payload)
                // Made here, after the runtime sized the event loops the channels take; they connect at their first call
                // and live as long as the process.
                let contactsChannel = audiences.contacts.map { GRPCChannel(host: $0.host, port: $0.port) }
                let audienceSource = UpstreamAudienceSource(
                    organization: audiences.organization.map { GRPCChannel(host: $0.host, port: $0.port) }, contacts: contactsChannel)
                return [
                    CommunicationHandler(
                        interactions: InteractionDomain(store: store), consent: consent, templates: templates, sends: sends,
                        subjects: PostgresSubjectStore(pool: pool, batchBytes: pageBytes),
                        campaigns: CampaignDomain(
                            store: PostgresCampaignStore(pool: pool, idempotency: idempotency), templates: templates, audiences: audienceSource,
                            maxRecipients: audiences.maxRecipients),
                        preferences: PreferencesDomain(
                            store: PostgresPreferencesStore(pool: pool, feed: feed, idempotency: idempotency, publish: PreferencesMapping.json)),
                        changes: dependencies.changes,
                        references: ContactReferences(contacts: contactsChannel, idempotency: idempotency, pool: pool))
                ]
            })
        description.makeBackgroundServices = { dependencies in
            var services: [any Service] = [
                CampaignRunner(
                    pool: dependencies.pool, suppressionSecret: suppressionSecret, maxAttempts: maxSendAttempts, logger: dependencies.logger)
            ]
            if let contactsFeed { services.append(contactsConsumer(contactsFeed, dependencies: dependencies)) }
            if let provider {
                do {
                    let client = try WebhookClient(endpoint: provider.endpoint, keepAlive: provider.keepAlive, trustRoots: provider.trustRoots)
                    let adapter = ProviderAdapter(
                        client: client, secret: provider.secret,
                        timeout: .nanoseconds(
                            provider.timeout.components.seconds * 1_000_000_000 + provider.timeout.components.attoseconds / 1_000_000_000))
                    services.append(
                        Dispatcher(
                            store: PostgresDispatchStore(pool: dependencies.pool, owner: UUID(), suppressionSecret: suppressionSecret),
                            provider: adapter, configuration: provider.dispatcher, logger: dependencies.logger))
                    if let host = provider.eventsHost {
                        services.append(
                            ProviderEventListener(
                                host: host, port: provider.eventsPort, secret: provider.secret,
                                store: PostgresProviderEventStore(pool: dependencies.pool), logger: dependencies.logger))
                    }
                } catch {
                    // Only the TLS context can fail here; the service then runs without a dispatcher and says so. (Made
                    // here, not while reading settings: the client takes the event loop group, whose size the runtime
                    // sets first.)
                    dependencies.logger.error("the provider client could not be made; no dispatcher runs", metadata: ["error": "\(error)"])
                }
            }
            return services
        }
        return description
    }

    /// Applies a batch of the contacts feed; an event that cannot be applied is set aside, never thrown (a thrown
    /// error would retry the batch for ever and stop the feed for every tenant).
    public static func applyContactsEvents(
        _ events: [Switchboard_Common_V1_ChangeEvent], store: PostgresContactsFeedStore, logger: Logger, on connection: PostgresConnection
    ) async throws {
        var changes: [ContactEvent] = []
        for event in events {
            switch ContactsFeedMapping.outcome(event) {
            case .apply(let change): changes.append(change)
            case .ignore: continue
            case .reject(let reason):
                try await FeedConsumer.setAside(event, reason: reason, feed: "contacts", schema: defaults.name, logger: logger, on: connection)
            }
        }
        try await store.apply(changes, on: connection)
    }

    /// Follows the contacts service's cross-tenant feed.
    static func contactsConsumer(_ source: ContactsFeed, dependencies: ServiceDependencies) -> FeedConsumer {
        let store = PostgresContactsFeedStore(suppressionSecret: source.suppressionSecret, logger: dependencies.logger)
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
