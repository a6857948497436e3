-- The interaction log. Every table holds tenant data: tenant_id leads each key and index, and row-level security
-- (forced, so the owning role is subject to it too) admits only rows of the tenant set per transaction
-- (app.tenant_id).

-- btree_gin gives GIN a tenant_id column (the text search index below). It is a trusted extension (PostgreSQL 13+),
-- so the service's own role, which has CREATE on the database, may install it; IF NOT EXISTS because it is installed
-- once per database and another service may have installed it already (the default operator classes are found by
-- type, whatever schema holds them).
CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA communication;

CREATE TABLE communication.interactions (
    tenant_id        text        NOT NULL,
    id               uuid        NOT NULL,
    kind             smallint    NOT NULL CHECK (kind BETWEEN 1 AND 5),
    direction        smallint    NOT NULL DEFAULT 0 CHECK (direction BETWEEN 0 AND 2),
    contact_ids      uuid[]      NOT NULL DEFAULT '{}',
    addresses        text[]      NOT NULL DEFAULT '{}',
    organization_id  uuid,
    thread_id        uuid,
    subject          text        NOT NULL DEFAULT '',
    body             text        NOT NULL DEFAULT '',
    occurred_at      timestamptz NOT NULL,
    duration_seconds integer     NOT NULL DEFAULT 0 CHECK (duration_seconds BETWEEN 0 AND 604800),
    outcome          text        NOT NULL DEFAULT '',
    follow_up_at     timestamptz,
    follow_up_done   boolean     NOT NULL DEFAULT false,
    -- 1 tenant, 2 private (owner and admins only).
    visibility       smallint    NOT NULL DEFAULT 1 CHECK (visibility IN (1, 2)),
    owner_id         text        NOT NULL,
    -- The words of subject and body for SearchInteractions ('simple': no language's stemming guesses).
    search           tsvector    GENERATED ALWAYS AS (to_tsvector('simple', subject || ' ' || body)) STORED,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    created_by       text        NOT NULL,
    updated_at       timestamptz NOT NULL,
    updated_by       text        NOT NULL,
    deleted_at       timestamptz,
    PRIMARY KEY (tenant_id, id)
);
-- One index per list filter, each leading with tenant_id and ending with the page order (occurred_at, id), so a
-- page is one forward index range scan however long the history is.
CREATE INDEX interactions_by_time ON communication.interactions (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX interactions_by_organization ON communication.interactions (tenant_id, organization_id, occurred_at DESC, id DESC)
    WHERE organization_id IS NOT NULL;
CREATE INDEX interactions_by_thread ON communication.interactions (tenant_id, thread_id, occurred_at DESC, id DESC)
    WHERE thread_id IS NOT NULL;
CREATE INDEX interactions_by_kind ON communication.interactions (tenant_id, kind, occurred_at DESC, id DESC);
CREATE INDEX interactions_by_owner ON communication.interactions (tenant_id, owner_id, occurred_at DESC, id DESC);
-- Open follow-ups of a user, earliest first.
CREATE INDEX interactions_follow_ups ON communication.interactions (tenant_id, owner_id, follow_up_at, id)
    WHERE follow_up_at IS NOT NULL AND NOT follow_up_done AND deleted_at IS NULL;
-- Text search within a tenant: GIN (tenant_id, search), through btree_gin.
CREATE INDEX interactions_search ON communication.interactions USING gin (tenant_id, search);

-- One row per (interaction, contact): a contact's history as an index range (an array column cannot be range-scanned
-- in occurred_at order). occurred_at is copied so the page order comes from this index alone.
CREATE TABLE communication.interaction_contacts (
    tenant_id      text        NOT NULL,
    contact_id     uuid        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    interaction_id uuid        NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, occurred_at, interaction_id),
    FOREIGN KEY (tenant_id, interaction_id) REFERENCES communication.interactions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX interaction_contacts_by_interaction ON communication.interaction_contacts (tenant_id, interaction_id);

ALTER TABLE communication.interactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.interactions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.interactions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE communication.interaction_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.interaction_contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.interaction_contacts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
