import CommunicationService
import Foundation
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport

typealias Interaction = Switchboard_Communication_V1_Interaction
typealias CommunicationStub = Switchboard_Communication_V1_CommunicationService_Client

/// The communication service in-process over real HTTP/2 on a fresh database, as the `communication_service` role,
/// assembled as the executable assembles it (the kit's ``ServiceHarness``).
final class CommunicationHarness: Sendable {
    let service: ServiceHarness
    var pool: PostgresPool { service.pool }
    var channel: GRPCChannel { service.channel }

    static func start(
        searchTimeoutMilliseconds: Int = 2000, maxSendAttempts: Int = 8, provider: CommunicationService.ProviderSettings? = nil,
        contactsFeed: CommunicationService.ContactsFeed? = nil, audiences: CommunicationService.AudienceSettings = .init()
    ) async throws -> CommunicationHarness {
        CommunicationHarness(
            service: try await ServiceHarness.start(
                CommunicationService.description(
                    pageBytes: 1 << 20, searchTimeoutMilliseconds: searchTimeoutMilliseconds, maxSendAttempts: maxSendAttempts, provider: provider,
                    contactsFeed: contactsFeed, audiences: audiences)))
    }

    /// Provider settings for tests: a fast dispatcher and short backoff against `provider`.
    static func providerSettings(_ provider: FakeProvider, timeout: Duration = .seconds(1)) -> CommunicationService.ProviderSettings {
        var dispatcher = Dispatcher.Configuration()
        dispatcher.pollInterval = .milliseconds(50)
        dispatcher.leaseSeconds = 3
        dispatcher.initialBackoff = 0.1
        dispatcher.maxBackoff = 0.5
        return CommunicationService.ProviderSettings(
            endpoint: WebhookEndpoint(url: provider.url)!, secret: Array(providerSecret.utf8), timeout: timeout, dispatcher: dispatcher)
    }

    /// A harness whose dispatcher posts to a fake provider, following a contacts feed at a closed port (its consumer
    /// retries in the background; the tests apply events with ``applyContacts(_:)``).
    static func startWithProvider() async throws -> (FakeProvider, CommunicationHarness) {
        let provider = try await FakeProvider.start()
        let feed = CommunicationService.ContactsFeed(
            host: "127.0.0.1", port: 1, token: .file("/nonexistent"), suppressionSecret: ContactsFeedTests.suppressionSecret)
        return (provider, try await start(provider: providerSettings(provider), contactsFeed: feed))
    }

    /// Applies contacts-feed events as the consumer does: one batch in one transaction.
    func applyContacts(_ events: [Switchboard_Common_V1_ChangeEvent]) async throws {
        _ = try await pool.transaction { c in
            try await CommunicationService.applyContactsEvents(
                events, store: PostgresContactsFeedStore(suppressionSecret: ContactsFeedTests.suppressionSecret), logger: .init(label: "feed"),
                on: c)
        }
    }

    private init(service: ServiceHarness) { self.service = service }

    func stop() async { await service.stop() }

    /// A typed client calling as `user` of `tenant` with `roles`.
    func client(tenant: String, user: String = "user-1", roles: [Role] = [.user], token: String? = nil) async throws -> CommClient {
        CommClient(
            stub: CommunicationStub(client: RPCClient(transport: channel)),
            options: try await service.options(tenant: tenant, user: user, roles: roles, token: token), tenant: tenant, pool: pool)
    }
}

/// The typed client plus the call options carrying the token.
struct CommClient: Sendable {
    let stub: CommunicationStub
    let options: CallOptions
    /// The tenant the token is for, and the service's database: for what the contacts feed would have written.
    var tenant = ""
    var pool: PostgresPool? = nil

    /// Lists `address` as the contact's in the address directory, as the contacts feed does for a contact's e-mails and
    /// phones (sends go only to a contact's own addresses).
    func list(address: String, kind: String = "email", for contact: String) async throws {
        guard let pool else { throw RPCError(code: .failedPrecondition, message: "a client without the service's database cannot list addresses") }
        _ = try await pool.transaction(settings: ["app.tenant_id": tenant]) { c in
            try await c.query(
                "INSERT INTO communication.contact_addresses (tenant_id, kind, address, contact_id) VALUES ($1, $2, $3, $4::uuid) ON CONFLICT DO NOTHING",
                [.text(tenant), .text(kind), .text(AddressRules.normalized(address, kind: kind)), .text(contact)])
        }
    }

    func log(
        _ kind: Switchboard_Communication_V1_InteractionKind = .email, subject: String = "", requestID: String = "",
        configure: (inout Interaction) -> Void = { _ in }
    ) async throws -> Interaction {
        var interaction = Interaction()
        interaction.kind = kind
        interaction.subject = subject
        configure(&interaction)
        var request = Switchboard_Communication_V1_LogInteractionRequest()
        request.interaction = interaction
        request.requestId = requestID
        return try await stub.logInteraction(request, options: options)
    }

    func get(_ id: String, includeDeleted: Bool = false) async throws -> Interaction {
        var request = Switchboard_Communication_V1_GetInteractionRequest()
        request.id = id
        request.includeDeleted = includeDeleted
        return try await stub.getInteraction(request, options: options)
    }

    func update(
        _ id: String, paths: [String], etag: String = "", requestID: String = "", change: (inout Interaction) -> Void
    ) async throws -> Interaction {
        var interaction = Interaction()
        interaction.id = id
        change(&interaction)
        var request = Switchboard_Communication_V1_UpdateInteractionRequest()
        request.interaction = interaction
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        request.etag = etag
        request.requestId = requestID
        return try await stub.updateInteraction(request, options: options)
    }

    func delete(_ id: String, etag: String = "", requestID: String = "") async throws -> Interaction {
        var request = Switchboard_Communication_V1_DeleteInteractionRequest()
        request.id = id
        request.etag = etag
        request.requestId = requestID
        return try await stub.deleteInteraction(request, options: options)
    }

    func undelete(_ id: String) async throws -> Interaction {
        var request = Switchboard_Communication_V1_UndeleteInteractionRequest()
        request.id = id
        return try await stub.undeleteInteraction(request, options: options)
    }

    func list(
        pageSize: Int32 = 0, token: String = "", configure: (inout Switchboard_Communication_V1_ListInteractionsRequest) -> Void = { _ in }
    ) async throws -> Switchboard_Communication_V1_ListInteractionsResponse {
        var request = Switchboard_Communication_V1_ListInteractionsRequest()
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        configure(&request)
        return try await stub.listInteractions(request, options: options)
    }

    /// Every page of a list, following the tokens.
    func listAll(
        pageSize: Int32, configure: @escaping (inout Switchboard_Communication_V1_ListInteractionsRequest) -> Void = { _ in }
    ) async throws -> [Interaction] {
        var all: [Interaction] = []
        var token = ""
        repeat {
            let page = try await list(pageSize: pageSize, token: token, configure: configure)
            all += page.interactions
            token = page.page?.nextPageToken ?? ""
        } while !token.isEmpty
        return all
    }

    func search(_ query: String, pageSize: Int32 = 0, token: String = "") async throws -> Switchboard_Communication_V1_SearchInteractionsResponse {
        var request = Switchboard_Communication_V1_SearchInteractionsRequest()
        request.query = query
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await stub.searchInteractions(request, options: options)
    }

    func followUps(
        owner: String = "", dueBefore: Date? = nil, pageSize: Int32 = 0, token: String = ""
    ) async throws -> Switchboard_Communication_V1_ListFollowUpsDueResponse {
        var request = Switchboard_Communication_V1_ListFollowUpsDueRequest()
        request.ownerId = owner
        request.dueBefore = dueBefore
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await stub.listFollowUpsDue(request, options: options)
    }
}

func rpcError(_ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(code: .unknown, message: "\(error)")
    }
}

func fields(_ error: RPCError?) -> Set<String> { Set(error?.fieldViolations.map(\.field) ?? []) }

/// The secret the tests share with the fake provider.
let providerSecret = "provider-secret-0123456789abcdef0123456789"

func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

func newID() -> String { UUID().uuidString.lowercased() }
