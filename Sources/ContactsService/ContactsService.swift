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

/// The contacts service as the kit runs it: defaults, settings, migrations, RPCs and the role each RPC needs.
public enum ContactsService: ServiceDefinition {
    /// `contacts`, gRPC 50061, admin 9461.
    public static let defaults = ServiceDefaults.contacts

    /// The settings of the contacts service beyond the shared ones.
    public static let settings: [EnvironmentSetting] = [
        .init(
            "SWITCHBOARD_CONTACTS_MAX_CONTACT_BYTES", default: String(ContactRules.defaultMaxContactBytes),
            help: "Largest contact in bytes (4096-1048576); a bigger one is refused with INVALID_ARGUMENT."),
        .init(
            "SWITCHBOARD_CONTACTS_PAGE_BYTES", default: String(1 << 20),
            help: "Bytes of contacts in one ListContacts page and of one WatchChanges replay batch (65536-3145728); the response limit is 4 MiB."),
        .init(
            "SWITCHBOARD_CONTACTS_BATCH_BYTES", default: String(3 << 20),
            help: "Bytes the contacts of one BatchCreateContacts may take together (65536-3145728); the response repeats them."),
        .init(
            "SWITCHBOARD_CONTACTS_SEARCH_TIMEOUT_MS", default: "2000",
            help: "Statement timeout of each SearchContacts query (100-30000); past it the call is RESOURCE_EXHAUSTED."),
        .init(
            "SWITCHBOARD_CONTACTS_SEARCH_RANKED_MATCHES", default: "2000",
            help:
                "Most matches a relevance-ordered search of several words ranks, best-matching words first (one word ranks every match; 100-100000)."),
        .init(
            "SWITCHBOARD_CONTACTS_SEARCH_FACET_MATCHES", default: "10000",
            help: "Most matches facets count; beyond it they are marked partial (100-1000000)."),
        .init(
            "SWITCHBOARD_CONTACTS_BULK_TAG_MAX", default: "10000",
            help: "Most contacts one BulkTagContacts changes, in one transaction (100-100000); more matches are FAILED_PRECONDITION."),
        .init(
            "SWITCHBOARD_CONTACTS_IMPORT_MAX_RECORD_BYTES", default: String(ImportLimits().maxRecordBytes),
            help: "Largest record an import reads: a CSV record, a vCard, a JSON line (1024-1048576); a larger one is an INVALID row."),
        .init(
            "SWITCHBOARD_CONTACTS_IMPORT_MAX_LINE_BYTES", default: String(ImportLimits().maxLineBytes),
            help: "Longest vCard content line (unfolded) or CSV header row an import reads (256-1048576)."),
        .init(
            "SWITCHBOARD_CONTACTS_IMPORT_MAX_FIELDS", default: String(ImportLimits().maxFields),
            help: "Most CSV columns, vCard properties or JSON values in one record (10-10000)."),
        .init(
            "SWITCHBOARD_CONTACTS_IMPORT_MAX_ROWS", default: String(ImportLimits().maxRows),
            help: "Most rows one ImportContacts call reads (1-10000000); past it the call ends with INVALID_ARGUMENT (rows before are written)."),
        .init(
            "SWITCHBOARD_CONTACTS_IMPORT_BATCH_ROWS", default: String(ImportLimits().batchRows),
            help: "Rows an import writes per transaction (1-5000)."),
        .init(
            "SWITCHBOARD_CONTACTS_ORGANIZATION_ADDRESS", default: nil,
            help:
                "host:port of the organization service, whose change feed puts the names of the organizations people belong to into search; unset: no feed is followed, and searches do not find people by organization."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_ORGANIZATION_TOKEN_FILE", default: nil,
            help:
                "A file holding a service token (role service, no tenant) for the organization feed, read again at every reconnection so it can be rotated; unset: the service signs its own five-minute tokens with SWITCHBOARD_JWT_HS256_SECRET, which is then required."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_IMPORT_RETENTION_DAYS", default: "30",
            help:
                "Days an import's ledger is kept from its start (1-3650): until then re-sending it resumes it (nothing written twice); after, it imports again. Pruned hourly."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_FACET_SEARCHES_AT_ONCE", default: "4",
            help:
                "SearchContacts calls with facets that run at once (1-200; while another tenant's waits, one tenant's at most half, rounded up); the others wait their turn, at most SWITCHBOARD_CONTACTS_SEARCH_TIMEOUT_MS, then are RESOURCE_EXHAUSTED. About the database's cores per replica: more at once only makes each slower."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_IMPORT_MAX_BYTES_WITHOUT_ROW", default: String(ImportLimits().maxBytesWithoutRow),
            help:
                "Most bytes an import reads without a row ending: blank lines, text outside vCards, one record (skipped vCard photos included) (65536-1073741824); past it the call ends with INVALID_ARGUMENT (rows before are written)."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_IMPORT_PREVIEW_BYTES", default: String(ImportLimits().maxPreviewBytes),
            help:
                "Most bytes (estimated) one dry-run import remembers of what its rows would write, to preview duplicates between rows exactly (65536-68719476736): about 192 bytes a row with one address and one number, more with duplicate_policy UPDATE; past it the call ends with RESOURCE_EXHAUSTED (rows before are previewed)."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_COMMUNICATION_ADDRESS", default: nil,
            help:
                "host:port of the communication service, whose change feed brings its erasure receipts; unset: erasures do not await its receipt."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_COLLABORATION_ADDRESS", default: nil,
            help:
                "host:port of the collaboration service, whose change feed brings its erasure receipts; unset: erasures do not await its receipt."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_ANALYTICS_ADDRESS", default: nil,
            help: "host:port of the analytics service, whose change feed brings its erasure receipts; unset: erasures do not await its receipt."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_RECEIPTS_TOKEN_FILE", default: nil,
            help:
                "A file holding a service token (role service, no tenant) for the communication, collaboration and analytics feeds, read again at every reconnection; unset: the service signs its own five-minute tokens with SWITCHBOARD_JWT_HS256_SECRET, which is then required."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_ERASURE_DEADLINE_HOURS", default: "24",
            help:
                "Hours an erasure's receipts have before it is OVERDUE (1-720). Receipts are awaited from organization (SWITCHBOARD_CONTACTS_ORGANIZATION_ADDRESS) and from each service whose address above is set."
        ),
        .init(
            "SWITCHBOARD_CONTACTS_MAX_RELATIONSHIPS", default: "1000",
            help:
                "Most relationships one contact may have (10-100000); CreateRelationship past it is FAILED_PRECONDITION. A merge may take the winner past it (nothing is dropped)."
        ),
    ]

    /// Where the organization feed comes from.
    public typealias OrganizationFeed = UpstreamFeed

    /// The organization feed's source from ``settings``; nil when no address is set.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func organizationFeed(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> OrganizationFeed? {
        try UpstreamFeed.from(address: settings[12], tokenFile: settings[13], service: defaults.name, environment: environment)
    }

    /// The feeds erasure receipts come from, by service name, from ``settings``: organization's (also followed for
    /// names in search) and those of communication, collaboration and analytics whose addresses are set.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func receiptFeeds(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: UpstreamFeed] {
        var feeds: [String: UpstreamFeed] = [:]
        for (service, index) in [("communication", 18), ("collaboration", 19), ("analytics", 20)] {
            feeds[service] = try UpstreamFeed.from(
                address: settings[index], tokenFile: settings[21], service: defaults.name, environment: environment)
        }
        return feeds
    }

    /// Reads ``settings``.
    /// - Parameter environment: the variables.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func limits(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ContactsLimits {
        let env = EnvironmentReader(environment)
        var limits = ContactsLimits()
        limits.maxContactBytes = try env.int(settings[0], in: 4096...(1 << 20))
        limits.pageBytes = try env.int(settings[1], in: (64 << 10)...(3 << 20))
        limits.maxBatchBytes = try env.int(settings[2], in: (64 << 10)...(3 << 20))
        limits.searchTimeoutMilliseconds = try env.int(settings[3], in: 100...30_000)
        limits.searchRankedMatches = try env.int(settings[4], in: 100...100_000)
        limits.searchFacetMatches = try env.int(settings[5], in: 100...1_000_000)
        limits.bulkTagMaxContacts = try env.int(settings[6], in: 100...100_000)
        limits.importLimits.maxRecordBytes = try env.int(settings[7], in: 1024...(1 << 20))
        limits.importLimits.maxLineBytes = try env.int(settings[8], in: 256...(1 << 20))
        limits.importLimits.maxFields = try env.int(settings[9], in: 10...10_000)
        limits.importLimits.maxRows = try env.int(settings[10], in: 1...10_000_000)
        limits.importLimits.batchRows = try env.int(settings[11], in: 1...5000)
        limits.importRetentionDays = try env.int(settings[14], in: 1...3650)
        limits.facetSearchesAtOnce = try env.int(settings[15], in: 1...200)
        limits.importLimits.maxBytesWithoutRow = try env.int(settings[16], in: (64 << 10)...(1 << 30))
        limits.importLimits.maxPreviewBytes = try env.int(settings[17], in: (64 << 10)...(1 << 36))
        limits.erasureDeadlineHours = try env.int(settings[22], in: 1...720)
        limits.maxRelationshipsPerContact = try env.int(settings[23], in: 10...100_000)
        return limits
    }

    /// The description with the limits the environment sets.
    public static func description(environment: [String: String]) throws -> ServiceDescription {
        description(
            limits: try limits(environment), organizationFeed: try organizationFeed(environment), receiptFeeds: try receiptFeeds(environment))
    }

    /// The description with the default limits.
    public static var description: ServiceDescription { description(limits: ContactsLimits()) }

    /// The description.
    /// - Parameters:
    ///   - limits: contact and page size bounds.
    ///   - organizationFeed: where the organization feed comes from; nil follows none.
    ///   - receiptFeeds: the other feeds erasure receipts come from, by service name (`communication`, `collaboration`,
    ///     `analytics`).
    public static func description(
        limits: ContactsLimits, organizationFeed: OrganizationFeed? = nil, receiptFeeds: [String: UpstreamFeed] = [:]
    ) -> ServiceDescription {
        // An erasure awaits a receipt from every service whose feed is followed.
        let awaited = (organizationFeed == nil ? [] : ["organization"]) + receiptFeeds.keys.sorted()
        typealias M = Switchboard_Contacts_V1_ContactsService.Method
        var description = ServiceDescription(
            defaults: defaults, migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Contacts_V1_ContactsService.serviceName],
            requiredRoles: AccessRules.contacts,
            feedBatchBytes: limits.pageBytes,
            makeServices: { dependencies in
                let store = PostgresContactStore(
                    pool: dependencies.pool, feed: dependencies.changeFeed, idempotency: dependencies.idempotency,
                    publish: { try ContactsMapping.proto($0).protoJSONText() },
                    publishRelationship: { try ContactsMapping.proto($0).protoJSONText() }, logger: dependencies.logger)
                let erasures = ErasureDomain(
                    store: PostgresErasureStore(
                        pool: dependencies.pool, feed: dependencies.changeFeed, idempotency: dependencies.idempotency,
                        publish: { try ContactsMapping.proto($0).protoJSONText() }),
                    awaited: awaited, deadlineHours: limits.erasureDeadlineHours)
                return [ContactsHandler(domain: ContactsDomain(store: store, limits: limits), erasures: erasures, changes: dependencies.changes)]
            })
        description.makeBackgroundServices = { dependencies in
            let maintenance = ContactsMaintenance(
                pool: dependencies.pool, importRetentionDays: limits.importRetentionDays, logger: dependencies.logger)
            return [maintenance] + (organizationFeed.map { [organizationConsumer($0, dependencies: dependencies)] } ?? [])
                + receiptFeeds.sorted { $0.key < $1.key }.map { receiptConsumer(service: $0.key, source: $0.value, dependencies: dependencies) }
        }
        return description
    }

    /// Applies a batch of the organization feed: the events the projections follow, in order; an event they cannot
    /// apply is set aside (``FeedConsumer/setAside(_:reason:feed:schema:logger:on:)``) instead of failing the batch for
    /// ever.
    static func applyOrganizationEvents(
        _ events: [Switchboard_Common_V1_ChangeEvent], names: PostgresOrganizationNames, logger: Logger, on connection: PostgresConnection
    ) async throws {
        var changes: [OrganizationChange] = []
        for event in events {
            if event.resourceType == ErasureReceipts.type(of: "organization") {
                // In feed order with the projections' changes: apply those before, then the receipt.
                try await names.apply(changes, on: connection)
                changes = []
                try await ErasureReceipts.apply(event, service: "organization", logger: logger, on: connection)
                continue
            }
            switch OrganizationFeedMapping.outcome(event) {
            case .apply(let change): changes.append(change)
            case .ignore: continue
            case .reject(let reason):
                try await FeedConsumer.setAside(event, reason: reason, feed: "organization", schema: defaults.name, logger: logger, on: connection)
            }
        }
        try await names.apply(changes, on: connection)
    }

    /// Follows the organization service's cross-tenant feed into the projections behind organization names in search.
    static func organizationConsumer(_ source: OrganizationFeed, dependencies: ServiceDependencies) -> FeedConsumer {
        let names = PostgresOrganizationNames()
        let token = source.token
        return FeedConsumer(
            feed: "organization", schema: defaults.name,
            source: .init(
                transport: GRPCChannel(host: source.host, port: source.port),
                token: { try await token.token() },
                resourceTypes: [
                    OrganizationFeedMapping.organizationType, OrganizationFeedMapping.membershipType, ErasureReceipts.type(of: "organization"),
                ]),
            pool: dependencies.pool, logger: dependencies.logger
        ) { [logger = dependencies.logger] events, connection in
            try await applyOrganizationEvents(events, names: names, logger: logger, on: connection)
        }
    }

    /// Applies one erasure receipt event of `service`'s feed on `connection`, as the feed consumers do (tests, tools).
    public static func applyReceipt(_ event: Switchboard_Common_V1_ChangeEvent, service: String, on connection: PostgresConnection) async throws {
        try await ErasureReceipts.apply(event, service: service, logger: Logger(label: "contacts.receipts"), on: connection)
    }

    /// Follows another service's cross-tenant feed for its erasure receipts only.
    static func receiptConsumer(service: String, source: UpstreamFeed, dependencies: ServiceDependencies) -> FeedConsumer {
        let token = source.token
        return FeedConsumer(
            feed: service, schema: defaults.name,
            source: .init(
                transport: GRPCChannel(host: source.host, port: source.port), token: { try await token.token() },
                resourceTypes: [ErasureReceipts.type(of: service)]),
            pool: dependencies.pool, logger: dependencies.logger
        ) { [logger = dependencies.logger] events, connection in
            for event in events where event.resourceType == ErasureReceipts.type(of: service) {
                try await ErasureReceipts.apply(event, service: service, logger: logger, on: connection)
            }
        }
    }
}

/// Erasure receipts as the other services publish them: an ERASED change of `switchboard.<service>.v1.ErasureReceipt`
/// whose `related_ids[0]` is the erasure's id and whose resource is the receipt (counts, no personal data).
enum ErasureReceipts {
    /// The receipt's resource type in `service`'s feed.
    static func type(of service: String) -> String { "switchboard.\(service).v1.ErasureReceipt" }

    /// Records the receipt in its erasure, or sets the event aside when it cannot be one (another kind, no erasure id,
    /// an erasure this service never made).
    static func apply(_ event: Switchboard_Common_V1_ChangeEvent, service: String, logger: Logger, on c: PostgresConnection) async throws {
        func setAside(_ reason: String) async throws {
            try await FeedConsumer.setAside(event, reason: reason, feed: service, schema: ContactsService.defaults.name, logger: logger, on: c)
        }
        guard event.kind == .erased else { return try await setAside("an erasure receipt is an ERASED change") }
        guard !event.tenantId.isEmpty, let erasure = event.relatedIds.first.flatMap(UUID.init(text:)),
            let contact = UUID(text: event.resourceId)
        else {
            return try await setAside("an erasure receipt needs its tenant, the contact as resource_id and the erasure's id in related_ids[0]")
        }
        let json = try (event.resource ?? Google_Protobuf_Struct()).protoJSONText()
        guard
            try await PostgresErasureStore.recordReceipt(
                tenantID: event.tenantId, erasureID: erasure, service: service, contactID: contact, receiptJSON: json, on: c)
        else { return try await setAside("no erasure \(erasure.lowercaseText) in the tenant") }
    }
}
