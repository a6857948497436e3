-- Facts ingested from the other services' change feeds (contacts, organizations, activities, lifecycle stages, the
-- timeline) and the tenants' configuration (scoring models, reports, dashboards, alerts). Every table holds tenant
-- data: tenant_id leads each key, and forced row-level security admits only the rows of the tenant set per
-- transaction (app.tenant_id); the feed consumers set it per event.

-- The contacts analytics has seen, as of their last change: what reports, completeness and the funnel read.
CREATE TABLE analytics.contacts (
    tenant_id     text        NOT NULL,
    id            uuid        NOT NULL,
    display_name  text        NOT NULL DEFAULT '',
    email         text        NOT NULL DEFAULT '',
    status        text        NOT NULL DEFAULT '',
    owner_id      text        NOT NULL DEFAULT '',
    tags          text[]      NOT NULL DEFAULT '{}',
    custom_fields jsonb       NOT NULL DEFAULT '{}',
    has_phone     boolean     NOT NULL DEFAULT false,
    has_address   boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contacts_by_creation ON analytics.contacts (tenant_id, created_at, id);

CREATE TABLE analytics.organizations (
    tenant_id  text        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id)
);

-- One row per source activity (an interaction, a note, a scheduled meeting), whoever it involves: metrics, scores
-- and statistics count these. Erasing a person takes them out of contact_ids; the activity stays as an anonymous
-- fact (kind, user, time), so statistics keep counting it.
CREATE TABLE analytics.activities (
    tenant_id        text        NOT NULL,
    resource_type    text        NOT NULL,
    resource_id      text        NOT NULL,
    kind             text        NOT NULL,
    is_interaction   boolean     NOT NULL,
    actor_id         text        NOT NULL,
    occurred_at      timestamptz NOT NULL,
    contact_ids      uuid[]      NOT NULL DEFAULT '{}',
    organization_ids uuid[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, resource_type, resource_id)
);
-- `@>` on uuid[] is marked LEAKPROOF by provision.sql, so these serve queries under row-level security.
CREATE INDEX activities_by_contact ON analytics.activities USING gin (contact_ids);
CREATE INDEX activities_by_organization ON analytics.activities USING gin (organization_ids);
CREATE INDEX activities_by_time ON analytics.activities (tenant_id, occurred_at);

-- Every lifecycle stage (contact status) a contact entered, in order.
CREATE TABLE analytics.stage_changes (
    tenant_id  text        NOT NULL,
    contact_id uuid        NOT NULL,
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    stage      text        NOT NULL,
    entered_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, id)
);

-- The timeline of contacts and organizations. kind and source hold the EntryKind and Source enum numbers. txid is
-- the writing transaction (as in the kit's change feed): WatchTimeline reads only rows of transactions older than its
-- snapshot's xmin, in (txid, id) order, so rows committed out of order by the four consumers are never skipped.
CREATE TABLE analytics.timeline (
    tenant_id       text        NOT NULL,
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    txid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    subject_type    smallint    NOT NULL,
    subject_id      uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    kind            smallint    NOT NULL,
    source          smallint    NOT NULL,
    resource_type   text        NOT NULL,
    resource_id     text        NOT NULL,
    actor_id        text        NOT NULL DEFAULT '',
    changed_fields  text[]      NOT NULL DEFAULT '{}',
    summary         text        NOT NULL DEFAULT '',
    activity_kind   text        NOT NULL DEFAULT '',
    status_from     text        NOT NULL DEFAULT '',
    status_to       text        NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX timeline_by_subject ON analytics.timeline (tenant_id, subject_type, subject_id, occurred_at DESC, id DESC);
CREATE INDEX timeline_by_transaction ON analytics.timeline (tenant_id, subject_type, subject_id, txid, id);

-- A tenant's engagement model; no row: the default (every kind weighs 1, half-life 30 days).
CREATE TABLE analytics.scoring_models (
    tenant_id      text             NOT NULL PRIMARY KEY,
    kinds          text[]           NOT NULL,
    weights        double precision[] NOT NULL,
    half_life_days double precision NOT NULL,
    version        bigint           NOT NULL,
    updated_at     timestamptz      NOT NULL,
    updated_by     text             NOT NULL
);

-- Report definitions and dashboards: the ReportDefinition's or Dashboard's proto3 JSON (what the service reads back).
CREATE TABLE analytics.reports (
    tenant_id  text        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL,
    definition jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX reports_by_creation ON analytics.reports (tenant_id, created_at, id);

CREATE TABLE analytics.dashboards (
    tenant_id  text        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL,
    definition jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX dashboards_by_creation ON analytics.dashboards (tenant_id, created_at, id);

CREATE TABLE analytics.alerts (
    tenant_id  text             NOT NULL,
    id         uuid             NOT NULL,
    name       text             NOT NULL,
    metric     smallint         NOT NULL,
    threshold  double precision NOT NULL,
    direction  smallint         NOT NULL,
    created_at timestamptz      NOT NULL,
    created_by text             NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Which contacts are past an alert's threshold, so an alert fires once per crossing, not on every activity.
CREATE TABLE analytics.alert_states (
    tenant_id  text NOT NULL,
    alert_id   uuid NOT NULL,
    contact_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, alert_id, contact_id),
    FOREIGN KEY (tenant_id, alert_id) REFERENCES analytics.alerts (tenant_id, id) ON DELETE CASCADE
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['contacts', 'organizations', 'activities', 'stage_changes', 'timeline', 'scoring_models', 'reports',
                             'dashboards', 'alerts', 'alert_states'] LOOP
        EXECUTE format('ALTER TABLE analytics.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE analytics.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON analytics.%I
            USING (tenant_id = current_setting('app.tenant_id', true))
            WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
    END LOOP;
END $$;
