import ContactsService
import Foundation
import JWTKit
import Logging
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardTestSupport

let adminConninfo = ProcessInfo.processInfo.environment["SWITCHBOARD_PG_URL"]
    ?? "host=127.0.0.1 port=54329 user=postgres dbname=postgres"
let testSecret = "test-secret-0123456789abcdef0123456789"

/// A contacts server running in-process over real HTTP/2 against a fresh database, as the `contacts_service` role.
final class ContactsHarness: Sendable {
    let database: String
    let serviceConninfo: String
    let pool: PostgresPool
    let running: RunningServer
    let channel: GRPCChannel
    let health: HealthService
    let monitor: DatabaseHealthMonitor
    let notifierTask: Task<Void, any Error>

    static func start(adminConninfo: String = adminConninfo) async throws -> ContactsHarness {
        let database = "sb_test_" + UUID().uuidString.prefix(8).lowercased()
        let provision = try String(contentsOf: repositoryRoot.appendingPathComponent("services/contacts/provision.sql"), encoding: .utf8)
            .replacingOccurrences(of: ":\"DBNAME\"", with: database)
        let admin = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: adminConninfo, maxConnections: 1))
        try await admin.withConnection { connection in
            try await connection.executeScript("CREATE DATABASE \(database)")
            // The role is cluster-wide: suites provisioning at once would collide on its catalog row.
            try await connection.query("SELECT pg_advisory_lock(7424242)", prepared: false)
            do {
                try await connection.executeScript(provision)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(7424242)", prepared: false)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(7424242)", prepared: false)
        }
        admin.close()
        let dbAdmin = adminConninfo.replacingOccurrences(of: "dbname=postgres", with: "dbname=\(database)")

        let serviceConninfo = dbAdmin.replacingOccurrences(of: "user=postgres", with: "user=contacts_service")
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: serviceConninfo, maxConnections: 8))
        let description = ContactsService.description
        try await ServiceRunner.migrate(description, pool: pool, logger: Logger(label: "test"))
        let feed = ChangeFeed(schema: "contacts")
        let notifier = ChangeNotifier(conninfo: serviceConninfo, feed: feed)
        let notifierTask = Task { try await notifier.run() }
        var configuration = try RuntimeConfiguration.load(service: "contacts", ["SWITCHBOARD_JWT_HS256_SECRET": testSecret])
        configuration.databaseURL = serviceConninfo
        let dependencies = ServiceDependencies(pool: pool, changeFeed: feed, notifier: notifier, logger: Logger(label: "test"), configuration: configuration)
        let health = HealthService(services: description.grpcServices)
        let monitor = DatabaseHealthMonitor(pool: pool, health: health, services: description.grpcServices, interval: .milliseconds(200), logger: Logger(label: "test"))
        let verifier = try await TokenVerifier.make(from: configuration)
        let policy = AccessPolicy(required: description.requiredRoles, publicServices: ["grpc.health.v1.Health"])
        let running = try await startServer(
            services: description.makeServices(dependencies) + [health],
            interceptors: [CallContextInterceptor(), AuthInterceptor(verifier: verifier, policy: policy)])
        return ContactsHarness(
            database: database, serviceConninfo: serviceConninfo, pool: pool, running: running, channel: running.channel(),
            health: health, monitor: monitor, notifierTask: notifierTask)
    }

    private init(
        database: String, serviceConninfo: String, pool: PostgresPool, running: RunningServer, channel: GRPCChannel,
        health: HealthService, monitor: DatabaseHealthMonitor, notifierTask: Task<Void, any Error>
    ) {
        self.database = database
        self.serviceConninfo = serviceConninfo
        self.pool = pool
        self.running = running
        self.channel = channel
        self.health = health
        self.monitor = monitor
        self.notifierTask = notifierTask
    }

    func stop() async {
        notifierTask.cancel()
        await channel.close()
        await running.stop()
        pool.close()
    }

    /// A typed client calling as `user` of `tenant` with `roles`.
    func client(tenant: String, user: String = "user-1", roles: [Role] = [.user], token given: String? = nil) async throws -> Client {
        let token: String
        if let given { token = given } else { token = try await Self.token(tenant: tenant, user: user, roles: roles) }
        var options = CallOptions(timeout: .seconds(10))
        options.metadata.addString("Bearer \(token)", forKey: "authorization")
        return Client(stub: Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: channel)), options: options)
    }

    static func token(tenant: String, user: String = "user-1", roles: [Role], expires: Date = Date().addingTimeInterval(600), secret: String = testSecret) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(SwitchboardClaims(userID: user, tenantID: tenant, roles: roles, expires: expires))
    }
}

/// The typed client plus the call options carrying the token.
struct Client: Sendable {
    let stub: Switchboard_Contacts_V1_ContactsService_Client
    let options: CallOptions

    func create(given: String = "Ada", family: String = "Lovelace", emails: [String] = [], requestID: String = "",
                custom: [String: Google_Protobuf_Value] = [:], tags: [String] = []) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = given
        name.family = family
        contact.name = name
        contact.emails = emails.map { var e = Switchboard_Contacts_V1_Email(); e.address = $0; return e }
        contact.tags = tags
        if !custom.isEmpty {
            var s = Google_Protobuf_Struct()
            s.fields = custom
            contact.customFields = s
        }
        request.contact = contact
        request.requestId = requestID
        return try await stub.createContact(request, options: options)
    }

    func get(_ id: String, includeDeleted: Bool = false) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_GetContactRequest()
        request.id = id
        request.includeDeleted = includeDeleted
        return try await stub.getContact(request, options: options)
    }

    func list(pageSize: Int32 = 0, token: String = "", configure: (inout Switchboard_Contacts_V1_ListContactsRequest) -> Void = { _ in })
        async throws -> Switchboard_Contacts_V1_ListContactsResponse {
        var request = Switchboard_Contacts_V1_ListContactsRequest()
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        configure(&request)
        return try await stub.listContacts(request, options: options)
    }

    func update(_ id: String, paths: [String], etag: String = "", requestID: String = "",
                change: (inout Switchboard_Contacts_V1_Contact) -> Void) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_UpdateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        contact.id = id
        change(&contact)
        request.contact = contact
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        request.etag = etag
        request.requestId = requestID
        return try await stub.updateContact(request, options: options)
    }

    func delete(_ id: String, etag: String = "") async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_DeleteContactRequest()
        request.id = id
        request.etag = etag
        return try await stub.deleteContact(request, options: options)
    }

    func undelete(_ id: String) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_UndeleteContactRequest()
        request.id = id
        return try await stub.undeleteContact(request, options: options)
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

func string(_ s: String) -> Google_Protobuf_Value {
    var v = Google_Protobuf_Value()
    v.kind = .stringValue(s)
    return v
}

func number(_ n: Double) -> Google_Protobuf_Value {
    var v = Google_Protobuf_Value()
    v.kind = .numberValue(n)
    return v
}
