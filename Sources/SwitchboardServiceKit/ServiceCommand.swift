import ArgumentParser
import FoundationEssentials
import Logging
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime

/// What a service module declares so the kit can run it: its defaults, its own settings and its description.
public protocol ServiceDefinition {
    /// Name and default ports (see `ServiceDefaults`).
    static var defaults: ServiceDefaults { get }
    /// The service's own settings beyond the shared and database ones (listed in `--help`).
    static var settings: [EnvironmentSetting] { get }
    /// The description, reading the service's own settings from `environment`.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    static func description(environment: [String: String]) throws -> ServiceDescription
}

/// A service executable's command line: `serve` (the default: migrate, then serve until SIGTERM), `migrate`
/// (apply migrations and exit) and `healthcheck` (exit 0 when the local service answers SERVING; for container
/// health checks, which cannot rely on a shell). A service's `main.swift` is `await ServiceCommand<MyService>.start()`.
public struct ServiceCommand<Definition: ServiceDefinition>: AsyncParsableCommand {
    /// The command's name, help and subcommands.
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: Definition.defaults.name,
            abstract: "Switchboard \(Definition.defaults.name) service.",
            discussion: "Configured by environment variables:\n\n"
                + RuntimeConfiguration.helpText(
                    service: Definition.defaults, extra: DatabaseConfiguration.settings(for: Definition.defaults) + Definition.settings),
            subcommands: [ServeCommand<Definition>.self, MigrateCommand<Definition>.self, HealthcheckCommand<Definition>.self],
            defaultSubcommand: ServeCommand<Definition>.self)
    }

    /// Creates the command (ArgumentParser does).
    public init() {}

    /// Parses the process's arguments and runs the chosen subcommand: what a service's `main.swift` calls.
    /// (From top-level code, `main()` resolves to ArgumentParser's synchronous entry point, which refuses async
    /// subcommands; this is its asynchronous one, spelled out.)
    public static func start() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// A service's whole configuration from the process environment: an invalid setting becomes a usage error that names
/// the variable.
struct LoadedConfiguration<Definition: ServiceDefinition> {
    let runtime: RuntimeConfiguration
    let database: DatabaseConfiguration
    let description: ServiceDescription

    init() throws {
        do {
            runtime = try RuntimeConfiguration.load(service: Definition.defaults)
            database = try DatabaseConfiguration.load(service: Definition.defaults)
            description = try Definition.description(environment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigurationError {
            throw ValidationError("invalid configuration: \(error)")
        }
    }
}

/// `<service> serve`.
public struct ServeCommand<Definition: ServiceDefinition>: AsyncParsableCommand {
    /// The subcommand's help.
    public static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "serve", abstract: "Migrate, then serve until SIGTERM (the default).")
    }

    /// Creates the command.
    public init() {}

    /// Runs the service.
    public func run() async throws {
        let loaded = try LoadedConfiguration<Definition>()
        let registry = ServiceRunner.bootstrap(logLevel: loaded.runtime.logLevel, eventLoopThreads: loaded.runtime.eventLoopThreads)
        try await ServiceRunner.run(loaded.description, configuration: loaded.runtime, database: loaded.database, registry: registry)
    }
}

/// `<service> migrate`.
public struct MigrateCommand<Definition: ServiceDefinition>: AsyncParsableCommand {
    /// The subcommand's help.
    public static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "migrate", abstract: "Apply the service's migrations (and the kit's) and exit.")
    }

    /// Creates the command.
    public init() {}

    /// Migrates.
    public func run() async throws {
        let loaded = try LoadedConfiguration<Definition>()
        _ = ServiceRunner.bootstrap(logLevel: loaded.runtime.logLevel)
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: loaded.database.url, maxConnections: 1))
        defer { pool.close() }
        try await ServiceRunner.migrate(loaded.description, pool: pool, logger: Logger(label: "switchboard.\(loaded.description.name)"))
    }
}

/// `<service> healthcheck`: asks the running service's gRPC health endpoint, as `grpc_health_probe` would.
public struct HealthcheckCommand<Definition: ServiceDefinition>: AsyncParsableCommand {
    /// The subcommand's help.
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "healthcheck",
            abstract: "Exit 0 if the service on SWITCHBOARD_GRPC_PORT answers grpc.health.v1 SERVING, 1 otherwise.")
    }

    /// Host to ask (the gRPC host unless it is a wildcard address).
    @Option(help: "Host to ask (default: SWITCHBOARD_GRPC_HOST, or 127.0.0.1 when that is 0.0.0.0 or ::).")
    public var host: String?

    /// Seconds to wait for the answer.
    @Option(help: "Seconds to wait for the answer.")
    public var timeout: Double = 2

    /// Creates the command.
    public init() {}

    /// Asks and exits.
    public func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let port: Int
        if let text = environment["SWITCHBOARD_GRPC_PORT"], !text.isEmpty {
            guard let value = Int(text), (1...65535).contains(value) else {
                throw ValidationError("SWITCHBOARD_GRPC_PORT must be a port number (1-65535), not \(text)")
            }
            port = value
        } else {
            port = Definition.defaults.grpcPort
        }
        let configuredHost = environment["SWITCHBOARD_GRPC_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        let target = host ?? (["0.0.0.0", "::", "[::]"].contains(configuredHost) ? "127.0.0.1" : configuredHost)
        guard timeout > 0, timeout <= 60 else { throw ValidationError("--timeout must be between 0 and 60 seconds") }
        let channel = GRPCChannel(host: target, port: port)
        let status: Grpc_Health_V1_HealthCheckResponse.ServingStatus
        do {
            let client = Grpc_Health_V1_Health_Client(client: RPCClient(transport: channel))
            status = try await client.check(Grpc_Health_V1_HealthCheckRequest(), options: CallOptions(timeout: .milliseconds(Int64(timeout * 1000))))
                .status
        } catch {
            await channel.close()
            print("\(Definition.defaults.name) at \(target):\(port): \(error)")
            throw ExitCode.failure
        }
        await channel.close()
        print("\(Definition.defaults.name) at \(target):\(port): \(status)")
        if status != .serving { throw ExitCode.failure }
    }
}
