-- Membership roles (tenant-defined, optionally limited per organization) and memberships of contacts at
-- organizations (and optionally one of their units).

CREATE TABLE organization.membership_roles (
    tenant_id            text        NOT NULL,
    key                  text        NOT NULL,
    display_name         text        NOT NULL,
    -- The most current memberships of one organization that may hold the role; 0 for no limit.
    max_per_organization integer     NOT NULL DEFAULT 0 CHECK (max_per_organization >= 0),
    retired_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE organization.memberships (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    contact_id      uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    unit_id         uuid,
    title           text        NOT NULL DEFAULT '',
    roles           text[]      NOT NULL DEFAULT '{}',
    is_primary      boolean     NOT NULL DEFAULT false,
    start_date      date,
    end_date        date,
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL,
    created_by      text        NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, organization_id) REFERENCES organization.organizations (tenant_id, id),
    FOREIGN KEY (tenant_id, organization_id, unit_id) REFERENCES organization.units (tenant_id, organization_id, id),
    CHECK (end_date IS NULL OR start_date IS NULL OR end_date >= start_date)
);
-- At most one primary membership per contact (a second primary demotes the first, under the contact's lock).
CREATE UNIQUE INDEX memberships_one_primary ON organization.memberships (tenant_id, contact_id) WHERE is_primary;
CREATE INDEX memberships_by_organization ON organization.memberships (tenant_id, organization_id, id);
CREATE INDEX memberships_by_contact ON organization.memberships (tenant_id, contact_id, id);
CREATE INDEX memberships_by_role ON organization.memberships USING gin (roles);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['membership_roles', 'memberships'] LOOP
        EXECUTE format('ALTER TABLE organization.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE organization.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON organization.%I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END $$;
