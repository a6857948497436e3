import FoundationEssentials
import Logging
import NIOCore
import ServiceLifecycle
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
            help: "Bytes of one WatchChanges replay batch (65536-3145728); the response limit is 4 MiB."),
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
    ]

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
        guard let secretPath = try env.file(settings[3]) else {
            throw ConfigurationError(variable: settings[3].name, problem: "must be set when \(settings[2].name) is")
        }
        guard let secretData = FileManager.default.contents(atPath: secretPath) else {
            throw ConfigurationError(variable: settings[3].name, problem: "file \(secretPath) could not be read")
        }
        // Trailing white space (a newline from an editor or `echo`) is not part of the secret.
        let secret = Array(InteractionRules.trimmed(String(decoding: secretData, as: UTF8.self)).utf8)
        guard secret.count >= 32 else { throw ConfigurationError(variable: settings[3].name, problem: "must hold at least 32 bytes") }
        let timeout = try env.int(settings[4], in: 100...120_000)
        var dispatcher = Dispatcher.Configuration()
        dispatcher.leaseSeconds = try env.int(settings[6], in: 1...3600)
        guard dispatcher.leaseSeconds * 1000 > timeout else {
            throw ConfigurationError(variable: settings[6].name, problem: "must exceed the provider timeout (\(timeout) ms)")
        }
        dispatcher.pollInterval = .milliseconds(try env.int(settings[7], in: 10...60_000))
        var provider = ProviderSettings(endpoint: endpoint, secret: secret, timeout: .milliseconds(timeout), dispatcher: dispatcher)
        if let address = env.string(settings[8]) {
            guard let colon = address.lastIndex(of: ":"), colon != address.startIndex, let port = Int(address[address.index(after: colon)...]),
                (0...65535).contains(port)
            else { throw ConfigurationError(variable: settings[8].name, problem: "must be host:port (got \"\(address)\")") }
            provider.eventsHost = String(address[..<colon])
            provider.eventsPort = port
        }
        return provider
    }

    /// The description with the settings the environment gives.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func description(environment: [String: String]) throws -> ServiceDescription {
        let env = EnvironmentReader(environment)
        return description(
            pageBytes: try env.int(settings[0], in: (64 << 10)...(3 << 20)), searchTimeoutMilliseconds: try env.int(settings[1], in: 100...30_000),
            maxSendAttempts: try env.int(settings[5], in: 1...100), provider: try providerSettings(environment))
    }

    /// The description with the default settings.
    public static var description: ServiceDescription { description(pageBytes: 1 << 20) }

    /// The description.
    /// - Parameters:
    ///   - pageBytes: the byte budget of a change-feed replay batch.
    ///   - searchTimeoutMilliseconds: the statement timeout of a search.
    ///   - maxSendAttempts: provider calls one send may take.
    ///   - provider: where the dispatcher posts; nil runs no dispatcher.
    public static func description(
        pageBytes: Int, searchTimeoutMilliseconds: Int = 2000, maxSendAttempts: Int = 8, provider: ProviderSettings? = nil
    ) -> ServiceDescription {
        typealias M = Switchboard_Communication_V1_CommunicationService.Method
        var description = ServiceDescription(
            defaults: defaults, migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Communication_V1_CommunicationService.serviceName],
            requiredRoles: [
                M.logInteraction: .user, M.updateInteraction: .user, M.deleteInteraction: .user, M.undeleteInteraction: .user,
                M.getInteraction: .readOnly, M.listInteractions: .readOnly, M.searchInteractions: .readOnly, M.listFollowUpsDue: .readOnly,
                M.recordConsent: .user, M.listConsentHistory: .readOnly, M.checkConsent: .readOnly,
                M.createTemplate: .user, M.updateTemplate: .user, M.getTemplate: .readOnly, M.listTemplates: .readOnly,
                M.renderTemplate: .readOnly,
                M.sendMessage: .user, M.getSend: .readOnly, M.cancelSend: .user,
                M.watchChanges: .readOnly,
            ],
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
                        pool: pool, feed: feed, idempotency: idempotency, publish: { try SendMapping.proto($0).protoJSONText() }),
                    consent: consent, templates: templates, maxAttempts: maxSendAttempts)
                return [
                    CommunicationHandler(
                        interactions: InteractionDomain(store: store), consent: consent, templates: templates, sends: sends,
                        changes: dependencies.changes)
                ]
            })
        if let provider {
            description.makeBackgroundServices = { dependencies in
                do {
                    let client = try WebhookClient(endpoint: provider.endpoint)
                    let adapter = ProviderAdapter(
                        client: client, secret: provider.secret,
                        timeout: .nanoseconds(
                            provider.timeout.components.seconds * 1_000_000_000 + provider.timeout.components.attoseconds / 1_000_000_000))
                    var services: [any Service] = [
                        Dispatcher(
                            store: PostgresDispatchStore(pool: dependencies.pool, owner: UUID()), provider: adapter,
                            configuration: provider.dispatcher, logger: dependencies.logger)
                    ]
                    if let host = provider.eventsHost {
                        services.append(
                            ProviderEventListener(
                                host: host, port: provider.eventsPort, secret: provider.secret,
                                store: PostgresProviderEventStore(pool: dependencies.pool), logger: dependencies.logger))
                    }
                    return services
                } catch {
                    // Only the TLS context can fail here; the service then runs without a dispatcher and says so.
                    dependencies.logger.error("the provider client could not be made; no dispatcher runs", metadata: ["error": "\(error)"])
                    return []
                }
            }
        }
        return description
    }
}
