/// Transaction isolation levels.
public enum IsolationLevel: String, Sendable {
    /// READ COMMITTED (PostgreSQL's default).
    case readCommitted = "READ COMMITTED"
    /// REPEATABLE READ.
    case repeatableRead = "REPEATABLE READ"
    /// SERIALIZABLE.
    case serializable = "SERIALIZABLE"
}

extension PostgresPool {
    /// Runs `body` in a transaction, committing when it returns and rolling back when it throws (unless its last
    /// statements already carried the COMMIT: ``PostgresConnection/pipelineCommitting(_:prepared:)``). A serialization
    /// failure (40001) or deadlock (40P01) rolls back and runs `body` again, up to `maxAttempts` times, after a
    /// short jittered pause.
    /// - Parameters:
    ///   - isolation: the isolation level.
    ///   - maxAttempts: attempts before the retryable error is rethrown.
    ///   - settings: transaction-local settings (`SET LOCAL` through `set_config(name, value, true)`), e.g.
    ///     `["app.tenant_id": tenant]` for row-level security; values are bound, never spliced.
    ///   - body: the work; it may run more than once, so it must not have effects outside the database.
    /// - Returns: what `body` returned.
    /// - Throws: ``PostgresError`` or what `body` threw.
    public func transaction<T: Sendable>(
        isolation: IsolationLevel = .readCommitted,
        maxAttempts: Int = 5,
        settings: [String: String] = [:],
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withConnection { connection in
                    try await connection.transaction(isolation: isolation, settings: settings, body)
                }
            } catch let error as PostgresError where error.isRetryableTransactionFailure && attempt < maxAttempts {
                try await Task.sleep(for: .milliseconds(Int64.random(in: 5...(20 * Int64(attempt)))))
            }
        }
    }
}

extension PostgresConnection {
    /// Runs `body` in one transaction on this connection, committing when it returns and rolling back when it throws,
    /// once: for work that must keep its connection between attempts (``PostgresPool/transaction(isolation:maxAttempts:settings:_:)``
    /// takes a connection per attempt and runs again on its own).
    /// - Parameters:
    ///   - isolation: the isolation level.
    ///   - settings: transaction-local settings, bound (as in the pool's `transaction`).
    ///   - body: the work.
    /// - Returns: what `body` returned.
    /// - Throws: ``PostgresError`` or what `body` threw.
    public func transaction<T: Sendable>(
        isolation: IsolationLevel = .readCommitted, settings: [String: String] = [:], _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            // Sent with the body's first statement (one round trip less per transaction).
            begin(isolation: isolation.rawValue, settings: settings.sorted { $0.key < $1.key })
            let result = try await body(self)
            try await end("COMMIT")
            return result
        } catch {
            // A retired connection forgets the transaction, with a BEGIN it never sent.
            if isHealthy { _ = try? await end("ROLLBACK") } else { forgetTransaction() }
            throw error
        }
    }
}

extension PostgresPool {
    /// Runs one statement with transaction-local settings in a single round trip: `set_config(name, value, true)` for
    /// the settings (one statement for all), then the statement, pipelined into one implicit transaction. For reads under row-level security,
    /// where BEGIN / set_config / query / COMMIT would cost four round trips. Inside ``gatheringCalls(_:)`` it shares
    /// its round trip and transaction with concurrent calls of the same settings.
    /// - Parameters:
    ///   - settings: e.g. `["app.tenant_id": tenant]`; values are bound.
    ///   - sql: the statement.
    ///   - binds: its parameters.
    /// - Returns: the statement's result.
    /// - Throws: ``PostgresError``.
    public func query(settings: [String: String], _ sql: String, _ binds: [PostgresValue] = []) async throws -> PostgresResult {
        try await pipeline(settings: settings, [(sql: sql, binds: binds)]).last!
    }

    /// Runs statements with transaction-local settings in a single round trip and one implicit transaction: if one
    /// fails, the ones before it roll back and the ones after it are skipped. For writes whose statements do not
    /// depend on each other's results, where BEGIN / set_config / each statement / COMMIT would cost a round trip
    /// each (and hold their row locks that much longer). Inside ``gatheringCalls(_:)`` it shares its round trip and
    /// transaction with concurrent calls of the same settings.
    /// - Parameters:
    ///   - settings: e.g. `["app.tenant_id": tenant]`; values are bound.
    ///   - statements: the statements, in order.
    /// - Returns: the statements' results (the settings' are left out).
    /// - Throws: ``PostgresError`` from the first statement that failed.
    @discardableResult
    public func pipeline(settings: [String: String], _ statements: [(sql: String, binds: [PostgresValue])]) async throws -> [PostgresResult] {
        if Self.gathersCalls { return try await coalescedPipeline(settings: settings, statements, reads: true) }
        return try await pipeline(sortedSettings: settings.sorted { $0.key < $1.key }, statements)
    }

    /// Set by ``gatheringCalls(_:)``.
    @TaskLocal static var gathersCalls = false

    /// Runs `body` with its single-shot calls (``query(settings:_:_:)``, ``pipeline(settings:_:)``, from this task and
    /// the child tasks it starts) gathered: calls made at once with the same settings run as one pipeline, in one
    /// transaction (``coalescedPipeline(settings:_:)``), instead of a round trip, a transaction and a settings
    /// statement each. For a handler that reads several independent things at once, such as the contact summaries
    /// (one round trip where their lists took one each: BENCHMARKS.md). Calls of other requests with the same settings
    /// may share the batch, up to ``PostgresPoolConfiguration/maxCoalescedWrites`` calls: a slow statement then delays
    /// its batch, and a failed one makes every call of the batch run again alone. A cancelled call returns at once, as
    /// a call alone does; the batch is cancelled once all of its calls were. Meant for reads: a write cancelled after
    /// its batch was sent has an unknown outcome, as a write alone has.
    /// - Parameter body: the work.
    /// - Returns: what `body` returned.
    public static func gatheringCalls<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        try await $gathersCalls.withValue(true) { try await body() }
    }

    /// ``pipeline(settings:_:)`` with the settings already in name order.
    func pipeline(
        sortedSettings settings: [(key: String, value: String)], _ statements: [(sql: String, binds: [PostgresValue])]
    )
        async throws -> [PostgresResult]
    {
        let prefix = PostgresConnection.settingsStatement(settings).map { [$0] } ?? []
        return Array(try await withSharedConnection { try await $0.pipeline(prefix + statements) }.dropFirst(prefix.count))
    }
}
