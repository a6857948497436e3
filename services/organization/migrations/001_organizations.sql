-- Organizations (a parent/child hierarchy by parent_id), their unique domains, and custom field definitions.
-- Every table holds tenant data: tenant_id leads each key, and row-level security (forced, so the owning role is
-- subject to it too) admits only rows of the tenant set by the service per transaction (app.tenant_id).

CREATE TABLE organization.organizations (
    tenant_id        text        NOT NULL,
    id               uuid        NOT NULL,
    name             text        NOT NULL,
    -- lower(name) in byte order: the list order and the name-prefix filter's index.
    name_key         text        COLLATE "C" NOT NULL,
    domains          text[]      NOT NULL DEFAULT '{}',
    industry         text        NOT NULL DEFAULT '',
    size_band        smallint    NOT NULL DEFAULT 0,
    revenue_currency text        NOT NULL DEFAULT '',
    revenue_units    bigint      NOT NULL DEFAULT 0,
    revenue_nanos    integer     NOT NULL DEFAULT 0,
    addresses        jsonb       NOT NULL DEFAULT '[]',
    tags             text[]      NOT NULL DEFAULT '{}',
    owner_id         text        NOT NULL,
    custom_fields    jsonb       NOT NULL DEFAULT '{}',
    parent_id        uuid,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    created_by       text        NOT NULL,
    updated_at       timestamptz NOT NULL,
    updated_by       text        NOT NULL,
    deleted_at       timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES organization.organizations (tenant_id, id),
    CHECK (parent_id IS DISTINCT FROM id)
);
-- Children of a node in name order: the tree walk (recursive CTE), ListOrganizations(parent_id) and the checks
-- before a delete.
CREATE INDEX organizations_by_parent ON organization.organizations (tenant_id, parent_id, name_key, id);
CREATE INDEX organizations_by_name ON organization.organizations (tenant_id, name_key, id);
CREATE INDEX organizations_by_tag ON organization.organizations USING gin (tags);
CREATE INDEX organizations_by_domain ON organization.organizations USING gin (domains);

-- One row per domain of a live organization: uniqueness per tenant.
CREATE TABLE organization.organization_domains (
    tenant_id       text NOT NULL,
    domain          text NOT NULL,
    organization_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, domain),
    FOREIGN KEY (tenant_id, organization_id) REFERENCES organization.organizations (tenant_id, id)
);
CREATE INDEX organization_domains_by_organization ON organization.organization_domains (tenant_id, organization_id);

CREATE TABLE organization.field_definitions (
    tenant_id      text        NOT NULL,
    key            text        NOT NULL,
    display_name   text        NOT NULL,
    field_type     smallint    NOT NULL,
    allowed_values text[]      NOT NULL DEFAULT '{}',
    required       boolean     NOT NULL DEFAULT false,
    retired_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['organizations', 'organization_domains', 'field_definitions'] LOOP
        EXECUTE format('ALTER TABLE organization.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE organization.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON organization.%I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END $$;
