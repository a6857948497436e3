import ArgumentParser
import ContactsService
import FoundationEssentials
import Logging
import SwitchboardPostgres
import SwitchboardRuntime

/// The contacts service executable: `contacts` (or `contacts serve`) runs it, `contacts migrate` only migrates.
@main
struct ContactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts",
        abstract: "Switchboard contacts service (switchboard.contacts.v1.ContactsService over gRPC).",
        discussion: "Configured by environment variables:\n\n" + RuntimeConfiguration.helpText(extra: ContactsService.settings),
        subcommands: [Serve.self, Migrate.self],
        defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Migrate, then serve until SIGTERM (the default).")

        func run() async throws {
            let configuration = try loadConfiguration()
            let limits = try loadLimits()
            let registry = ServiceRunner.bootstrap(logLevel: configuration.logLevel, eventLoopThreads: configuration.eventLoopThreads)
            try await ServiceRunner.run(ContactsService.description(limits: limits), configuration: configuration, registry: registry)
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the contacts schema's migrations and exit.")

        func run() async throws {
            let configuration = try loadConfiguration()
            _ = ServiceRunner.bootstrap(logLevel: configuration.logLevel)
            let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: configuration.databaseURL, maxConnections: 1))
            defer { pool.close() }
            try await ServiceRunner.migrate(ContactsService.description, pool: pool, logger: Logger(label: "switchboard.contacts"))
        }
    }
}

/// Reads the environment, turning an invalid setting into a usage error that names the variable.
func loadConfiguration() throws -> RuntimeConfiguration {
    do {
        return try RuntimeConfiguration.load(service: "contacts")
    } catch let error as ConfigurationError {
        throw ValidationError("invalid configuration: \(error)")
    }
}

/// Reads the contacts service's own settings, naming an invalid one as a usage error.
func loadLimits() throws -> ContactsLimits {
    do {
        return try ContactsService.limits()
    } catch let error as ConfigurationError {
        throw ValidationError("invalid configuration: \(error)")
    }
}
