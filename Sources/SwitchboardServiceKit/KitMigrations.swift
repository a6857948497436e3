import SwitchboardPostgres

/// The tables the kit owns in every service's schema, as a migration set of their own (recorded in
/// `<schema>.kit_migrations`, apart from the service's `schema_migrations`): idempotency keys, the change feed's
/// outbox and sequences, and the cursors of the feeds the service consumes.
///
/// Applied after the service's own migrations, and written to find tables already in place: the contacts service's
/// first migrations (001–003) created the same idempotency and change-feed tables before the kit existed, and applied
/// migrations never change.
public enum KitMigrations {
    /// The migrations for a schema.
    /// - Parameter schema: the service's schema (a plain identifier, checked by the migration runner).
    /// - Returns: the migrations, oldest first.
    public static func all(schema: String) -> [Migration] {
        [
            Migration(version: 1, name: "runtime_tables", sql: runtimeTables),
            Migration(version: 2, name: "cross_tenant_feed", sql: crossTenantFeed),
            Migration(version: 3, name: "feed_cursors", sql: feedCursors),
            Migration(version: 4, name: "feed_dead_letters", sql: feedDeadLetters),
            Migration(version: 5, name: "feed_dead_letters_retention", sql: feedDeadLettersRetention),
            Migration(version: 6, name: "service_payloads", sql: servicePayloads),
            Migration(version: 7, name: "payloads_as_json", sql: payloadsAsJSON),
            Migration(version: 8, name: "idempotency_fingerprints", sql: idempotencyFingerprints),
            Migration(version: 9, name: "idempotency_erased", sql: idempotencyErased),
        ].map { Migration(version: $0.version, name: $0.name, sql: $0.sql.replacingSchema(with: schema)) }
    }

    /// Runs the service's migrations, then the kit's.
    /// - Returns: the versions applied now (the service's, then the kit's).
    @discardableResult
    public static func migrate(schema: String, service migrations: [Migration], pool: PostgresPool) async throws -> (service: [Int], kit: [Int]) {
        let service = try await MigrationRunner(schema: schema, migrations: migrations).migrate(pool)
        let kit = try await MigrationRunner(schema: schema, migrations: all(schema: schema), ledger: "kit_migrations").migrate(pool)
        return (service, kit)
    }

    // Every table holding tenant data has tenant_id and a forced row-level-security policy on app.tenant_id.
    // Retention pruning crosses tenants only in a transaction that sets app.retention_purge; a DELETE whose WHERE
    // reads columns must also pass the table's SELECT policies, hence a read policy beside each delete policy.
    private static let runtimeTables = """
        -- "already exists, skipping" notices are expected where a service made these tables itself.
        SET LOCAL client_min_messages = warning;
        CREATE TABLE IF NOT EXISTS {schema}.idempotency_keys (
            tenant_id  text        NOT NULL,
            request_id text        NOT NULL,
            method     text        NOT NULL,
            response   bytea,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, request_id)
        );
        CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON {schema}.idempotency_keys (created_at);

        CREATE TABLE IF NOT EXISTS {schema}.change_sequences (
            tenant_id     text   PRIMARY KEY,
            last_sequence bigint NOT NULL
        );

        CREATE TABLE IF NOT EXISTS {schema}.changes (
            tenant_id      text        NOT NULL,
            sequence       bigint      NOT NULL,
            resource_type  text        NOT NULL,
            resource_id    text        NOT NULL,
            kind           smallint    NOT NULL,
            changed_fields text[]      NOT NULL DEFAULT '{}',
            resource       jsonb       NOT NULL,
            actor_id       text        NOT NULL,
            commit_time    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, sequence)
        );
        CREATE INDEX IF NOT EXISTS changes_by_commit_time ON {schema}.changes (commit_time);

        DO $$
        DECLARE t text;
        BEGIN
            FOREACH t IN ARRAY ARRAY['idempotency_keys', 'change_sequences', 'changes'] LOOP
                EXECUTE format('ALTER TABLE {schema}.%I ENABLE ROW LEVEL SECURITY', t);
                EXECUTE format('ALTER TABLE {schema}.%I FORCE ROW LEVEL SECURITY', t);
                IF NOT EXISTS (SELECT FROM pg_policies WHERE schemaname = '{schema}' AND tablename = t AND policyname = 'tenant_isolation') THEN
                    EXECUTE format(
                        'CREATE POLICY tenant_isolation ON {schema}.%I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
                        'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
                END IF;
            END LOOP;
            FOREACH t IN ARRAY ARRAY['idempotency_keys', 'changes'] LOOP
                IF NOT EXISTS (SELECT FROM pg_policies WHERE schemaname = '{schema}' AND tablename = t AND policyname = 'retention_purge') THEN
                    EXECUTE format('CREATE POLICY retention_purge ON {schema}.%I FOR DELETE '
                                   'USING (current_setting(''app.retention_purge'', true) = ''on'')', t);
                END IF;
                IF NOT EXISTS (SELECT FROM pg_policies WHERE schemaname = '{schema}' AND tablename = t AND policyname = 'retention_purge_read') THEN
                    EXECUTE format('CREATE POLICY retention_purge_read ON {schema}.%I FOR SELECT '
                                   'USING (current_setting(''app.retention_purge'', true) = ''on'')', t);
                END IF;
            END LOOP;
        END $$;
        """

    // The cross-tenant feed's position: the writing transaction's id (xid8) and a global row number. A reader takes
    // only rows of transactions older than its snapshot's xmin, all of which have ended, so no row can later appear
    // before a position already passed, however transactions commit. Rows already stored take this migration's
    // transaction id, which is older than any later write's.
    private static let crossTenantFeed = """
        ALTER TABLE {schema}.changes ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
        ALTER TABLE {schema}.changes ADD COLUMN position bigint GENERATED ALWAYS AS IDENTITY;
        ALTER TABLE {schema}.changes ADD COLUMN related_ids text[] NOT NULL DEFAULT '{}';
        CREATE INDEX changes_by_position ON {schema}.changes (txid, position);
        -- Only a transaction that sets app.feed_reader (done for callers with the service role) reads across tenants.
        CREATE POLICY feed_reader ON {schema}.changes FOR SELECT
            USING (current_setting('app.feed_reader', true) = 'on');
        """

    // Where each feed this service consumes stands, written in the same transaction as the batch's effects. A
    // consumer follows every tenant, so the table is the service's own bookkeeping, not tenant data.
    private static let feedCursors = """
        CREATE TABLE {schema}.feed_cursors (
            feed       text        PRIMARY KEY,
            cursor     text        NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """

    // Events of a consumed feed that the consumer could not apply (a payload that does not decode, a merge into
    // itself), set aside so that one bad event does not stop the feed for every tenant. They hold tenant data (the
    // event), so they are tenant rows like any other; the consumer sets each event's tenant before writing one.
    private static let feedDeadLetters = """
        CREATE TABLE {schema}.feed_dead_letters (
            tenant_id     text        NOT NULL,
            feed          text        NOT NULL,
            sequence      bigint      NOT NULL,
            resource_type text        NOT NULL,
            resource_id   text        NOT NULL,
            reason        text        NOT NULL,
            event         bytea       NOT NULL,
            recorded_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, feed, sequence)
        );
        CREATE INDEX feed_dead_letters_by_resource ON {schema}.feed_dead_letters (tenant_id, resource_id);
        ALTER TABLE {schema}.feed_dead_letters ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {schema}.feed_dead_letters FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON {schema}.feed_dead_letters
            USING (tenant_id = current_setting('app.tenant_id', true))
            WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
        """

    // Set-aside events are kept for an operator to inspect, but not for ever (they hold the event's payload): retention
    // pruning reaches them across tenants the same way it reaches the change feed.
    static let feedDeadLettersRetention = """
        CREATE POLICY retention_purge ON {schema}.feed_dead_letters FOR DELETE
            USING (current_setting('app.retention_purge', true) = 'on');
        CREATE POLICY retention_purge_read ON {schema}.feed_dead_letters FOR SELECT
            USING (current_setting('app.retention_purge', true) = 'on');
        CREATE INDEX feed_dead_letters_by_time ON {schema}.feed_dead_letters (recorded_at);
        """

    // The payload the cross-tenant feed carries instead of `resource` when a change's full form is not for every
    // tenant reader (ChangeRecord.serviceResourceJSON); NULL: the same as `resource`. Read only by callers with the
    // service role (the feed_reader policy); erasure clears it with `resource`.
    static let servicePayloads = """
        ALTER TABLE {schema}.changes ADD COLUMN service_resource jsonb;
        """

    // A change's payload is kept as the JSON text its service wrote (`json`: checked to be JSON, not parsed into jsonb's
    // binary form). Nothing reads inside a stored payload but erasure's text search; every reader takes its text. Parsing
    // each payload into jsonb was the largest single cost of binding an import's change events (5 % of the machine's CPU
    // during a million-row import). The rewrite keeps each stored payload's text as jsonb wrote it.
    static let payloadsAsJSON = """
        ALTER TABLE {schema}.changes ALTER COLUMN resource TYPE json USING resource::json,
            ALTER COLUMN service_resource TYPE json USING service_resource::json;
        """

    // The SHA-256 of the first request's canonical proto3 JSON, so a request id reused for a different request is
    // refused instead of answered with the first request's response. Keys claimed before this have none and replay as
    // they did.
    static let idempotencyFingerprints = """
        ALTER TABLE {schema}.idempotency_keys ADD COLUMN IF NOT EXISTS fingerprint bytea;
        """

    // A key whose response an erasure removed stays, marked, so that a retry is refused rather than run again: running
    // it again would bring the person back and write twice what else it wrote. Keys deleted by erasures before this
    // ran again, as they did.
    static let idempotencyErased = """
        ALTER TABLE {schema}.idempotency_keys ADD COLUMN IF NOT EXISTS erased boolean NOT NULL DEFAULT false;
        """
}

extension String {
    fileprivate func replacingSchema(with schema: String) -> String {
        split(separator: "{schema}", omittingEmptySubsequences: false).joined(separator: schema)
    }
}
