-- The change feed's outbox: one row per committed change, numbered per tenant. Written in the same transaction as
-- the change; read by WatchChanges. Tenant-isolated like every other table; retention pruning crosses tenants
-- only in a transaction that sets app.retention_purge.

CREATE TABLE contacts.change_sequences (
    tenant_id     text   PRIMARY KEY,
    last_sequence bigint NOT NULL
);

CREATE TABLE contacts.changes (
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
CREATE INDEX changes_by_commit_time ON contacts.changes (commit_time);

ALTER TABLE contacts.change_sequences ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts.change_sequences FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts.change_sequences
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE contacts.changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts.changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts.changes
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY retention_purge ON contacts.changes FOR DELETE
    USING (current_setting('app.retention_purge', true) = 'on');
