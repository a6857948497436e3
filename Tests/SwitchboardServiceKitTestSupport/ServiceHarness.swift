import Foundation
import JWTKit
import Logging
import ServiceLifecycle
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardTestSupport

/// The administrator's connection string for tests (`SWITCHBOARD_PG_URL`, as `scripts/postgres.sh` prints it).
public let adminConninfo =
    ProcessInfo.processInfo.environment["SWITCHBOARD_PG_URL"]
    ?? "host=127.0.0.1 port=54329 user=postgres dbname=postgres"
/// The development HS256 secret every harness verifies tokens with.
public let testSecret = "test-secret-0123456789abcdef0123456789"

/// A service running in-process exactly as its executable assembles it (``ServiceAssembly``: migrations, the kit's
/// tables and feed, health following the database, token checks, interceptors), on a fresh database provisioned
/// with the service's own `services/<name>/provision.sql` and role, and a free loopback port.
public final class ServiceHarness: Sendable {
    /// The test database's name.
    public let database: String
    /// The connection string as the service's role.
    public let serviceConninfo: String
    /// The connection string as the administrator, on the test database.
    public let adminDatabaseConninfo: String
    /// The assembled service (its pool, server, health and monitor).
    public let assembly: ServiceAssembly
    /// The bound gRPC port.
    public let port: Int
    /// A channel to the service.
    public let channel: GRPCChannel
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// The service's pool.
    public var pool: PostgresPool { assembly.pool }

    /// Provisions a database and starts the service.
    /// - Parameters:
    ///   - description: the service.
    ///   - adminConninfo: the administrator's connection string.
    ///   - environment: runtime settings beyond the test defaults (port 0, no admin endpoint, the test secret).
    ///   - provisionSQL: the provisioning script (psql's `:"DBNAME"` is replaced); nil reads
    ///     `services/<name>/provision.sql`.
    public static func start(
        _ description: ServiceDescription, adminConninfo: String = adminConninfo, environment: [String: String] = [:],
        provisionSQL: String? = nil, poolSize: Int? = nil
    ) async throws -> ServiceHarness {
        let database = "sb_test_" + UUID().uuidString.prefix(8).lowercased()
        let provision = try
            (provisionSQL
            ?? String(
                contentsOf: repositoryRoot.appendingPathComponent("services/\(description.name)/provision.sql"), encoding: .utf8))
            .replacingOccurrences(of: ":\"DBNAME\"", with: database)
        let dbAdmin = adminConninfo.replacingOccurrences(of: "dbname=postgres", with: "dbname=\(database)")
        let admin = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: adminConninfo, maxConnections: 1))
        defer { admin.close() }
        // The script runs in the new database, as `psql -d <db> -f provision.sql` does: what it does inside a database
        // (an extension, functions marked LEAKPROOF) must land there, not in the administrator's `postgres`.
        let inDatabase = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: dbAdmin, maxConnections: 1))
        defer { inDatabase.close() }
        try await admin.withConnection { connection in
            try await connection.executeScript("CREATE DATABASE \(database)")
            // Roles are cluster-wide: suites provisioning at once would collide on their catalog rows. (The lock is taken
            // in `postgres`: advisory locks are per database.)
            try await connection.query("SELECT pg_advisory_lock(7424242)", prepared: false)
            do {
                try await inDatabase.withConnection { try await $0.executeScript(provision) }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(7424242)", prepared: false)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(7424242)", prepared: false)
        }
        let serviceConninfo = dbAdmin.replacingOccurrences(of: "user=postgres", with: "user=\(description.name)_service")

        let configuration = try RuntimeConfiguration.load(
            service: description.defaults,
            [
                "SWITCHBOARD_GRPC_PORT": "0", "SWITCHBOARD_ADMIN_PORT": "0", "SWITCHBOARD_JWT_HS256_SECRET": testSecret,
                "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "2",
            ].merging(environment) { $1 })
        let logger = Logger(label: "test.\(description.name)")
        var databaseConfiguration = DatabaseConfiguration(url: serviceConninfo)
        if let poolSize { databaseConfiguration.poolSize = poolSize }
        let assembly = try await ServiceAssembly.make(
            description, configuration: configuration, database: databaseConfiguration, registry: nil,
            healthInterval: .milliseconds(200), logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: assembly.services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        let port: Int
        do {
            port = try await assembly.server.listeningAddress().port ?? 0
        } catch {
            await group.triggerGracefulShutdown()
            _ = await task.result
            assembly.close()
            throw error
        }
        return ServiceHarness(
            database: database, serviceConninfo: serviceConninfo, adminDatabaseConninfo: dbAdmin, assembly: assembly, port: port,
            channel: GRPCChannel(host: "127.0.0.1", port: port), group: group, task: task)
    }

    private init(
        database: String, serviceConninfo: String, adminDatabaseConninfo: String, assembly: ServiceAssembly, port: Int,
        channel: GRPCChannel, group: ServiceGroup, task: Task<Void, any Error>
    ) {
        self.database = database
        self.serviceConninfo = serviceConninfo
        self.adminDatabaseConninfo = adminDatabaseConninfo
        self.assembly = assembly
        self.port = port
        self.channel = channel
        self.group = group
        self.task = task
    }

    /// Stops the service (graceful shutdown, as on SIGTERM) and closes the pool.
    public func stop() async {
        await channel.close()
        await group.triggerGracefulShutdown()
        _ = await task.result
        assembly.close()
    }

    /// Call options carrying a token for `user` of `tenant` with `roles` (or the token given), and a 30 s deadline (CI
    /// runs every suite at once on two cores).
    public func options(tenant: String, user: String = "user-1", roles: [Role] = [.user], token given: String? = nil) async throws -> CallOptions {
        let token: String
        if let given { token = given } else { token = try await Self.token(tenant: tenant, user: user, roles: roles) }
        var options = CallOptions(timeout: .seconds(30))
        options.metadata.addString("Bearer \(token)", forKey: "authorization")
        return options
    }

    /// A token signed with the test secret.
    public static func token(
        tenant: String, user: String = "user-1", roles: [Role], expires: Date = Date().addingTimeInterval(600), secret: String = testSecret
    ) async throws -> String {
        try await sign(SwitchboardClaims(userID: user, tenantID: tenant, roles: roles, expires: expires), secret: secret)
    }

    /// A service-identity token (the `service` role, no tenant) signed with the test secret.
    public static func serviceToken(_ service: String = "analytics", secret: String = testSecret) async throws -> String {
        try await sign(SwitchboardClaims.service(service, expires: Date().addingTimeInterval(600)), secret: secret)
    }

    private static func sign(_ claims: SwitchboardClaims, secret: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }
}
