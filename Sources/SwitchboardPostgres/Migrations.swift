import FoundationEssentials

/// One ordered SQL migration of a service's schema.
public struct Migration: Sendable, Hashable {
    /// Its number; migrations apply in ascending order.
    public var version: Int
    /// A name for people, e.g. `create_contacts`.
    public var name: String
    /// The SQL, possibly several statements.
    public var sql: String

    /// Creates a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// A checksum of the SQL (FNV-1a, 64 bits, hex): enough to notice that an applied file was edited.
    public var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }
}

/// Why migrating stopped.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    /// The message, naming the migration.
    public var description: String
}

/// Applies a service's migrations: under an advisory lock (so replicas starting together take turns), each in its
/// own transaction, recorded with a checksum in `<schema>.schema_migrations`. An applied migration whose SQL changed
/// stops everything with a message naming it.
public struct MigrationRunner: Sendable {
    /// The schema the service owns.
    public let schema: String
    /// Its migrations.
    public let migrations: [Migration]
    /// The table in the schema that records which migrations were applied.
    public let ledger: String

    /// Creates a runner.
    /// - Parameters:
    ///   - schema: the service's schema (an identifier this code controls).
    ///   - migrations: the migrations; versions must be unique.
    ///   - ledger: the table recording applied versions; a schema may hold several migration sets, each with its own.
    public init(schema: String, migrations: [Migration], ledger: String = "schema_migrations") {
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.ledger = ledger
    }

    /// Applies what is missing.
    /// - Parameter pool: the pool.
    /// - Returns: the versions applied now.
    /// - Throws: ``MigrationError`` for a changed or duplicate migration, ``PostgresError`` for SQL failures.
    @discardableResult
    public func migrate(_ pool: PostgresPool) async throws -> [Int] {
        guard Set(migrations.map(\.version)).count == migrations.count else {
            throw MigrationError(description: "\(schema): two migrations share a version number")
        }
        for name in [schema, ledger] where !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw MigrationError(description: "\(name) must be a plain identifier")
        }
        let table = "\(schema).\(ledger)"
        return try await pool.withConnection { connection in
            // A session-level advisory lock keyed by the schema: concurrent starters wait for each other.
            try await connection.query("SELECT pg_advisory_lock(hashtext($1))", [.text("switchboard.migrate.\(schema)")])
            do {
                // Quiet: "already exists, skipping" is the expected answer on every start but the first.
                try await connection.executeScript(
                    """
                    SET client_min_messages = warning;
                    CREATE SCHEMA IF NOT EXISTS \(schema);
                    CREATE TABLE IF NOT EXISTS \(table) (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    );
                    RESET client_min_messages;
                    """)
                let rows = try await connection.query("SELECT version, name, checksum FROM \(table)", prepared: false).rows
                var applied: [Int: (name: String, checksum: String)] = [:]
                for row in rows { applied[Int(try row.int("version"))] = (try row.string("name"), try row.string("checksum")) }
                var done: [Int] = []
                for migration in migrations {
                    if let existing = applied[migration.version] {
                        guard existing.checksum == migration.checksum else {
                            throw MigrationError(
                                description: """
                                    \(schema) migration \(migration.version) (\(migration.name)) was changed after it was applied \
                                    (checksum \(existing.checksum) in the database, \(migration.checksum) now). Applied migrations \
                                    must never change: restore the file and add a new migration instead.
                                    """)
                        }
                        continue
                    }
                    try await connection.executeScript("BEGIN")
                    do {
                        try await connection.executeScript(migration.sql)
                        try await connection.query(
                            "INSERT INTO \(table) (version, name, checksum) VALUES ($1, $2, $3)",
                            [.int(Int64(migration.version)), .text(migration.name), .text(migration.checksum)], prepared: false)
                        try await connection.executeScript("COMMIT")
                    } catch {
                        try? await connection.executeScript("ROLLBACK")
                        throw error
                    }
                    done.append(migration.version)
                }
                try await connection.query("SELECT pg_advisory_unlock(hashtext($1))", [.text("switchboard.migrate.\(schema)")])
                return done
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(hashtext($1))", [.text("switchboard.migrate.\(schema)")])
                throw error
            }
        }
    }
}
