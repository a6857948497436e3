-- Units (departments, teams) inside an organization, nested by parent_unit_id within the same organization.

CREATE TABLE organization.units (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    parent_unit_id  uuid,
    name            text        NOT NULL,
    name_key        text        COLLATE "C" NOT NULL,
    kind            smallint    NOT NULL,
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL,
    created_by      text        NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text        NOT NULL,
    deleted_at      timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- (tenant, organization, id) is unique so a parent unit can be required to be of the same organization.
    UNIQUE (tenant_id, organization_id, id),
    FOREIGN KEY (tenant_id, organization_id) REFERENCES organization.organizations (tenant_id, id),
    FOREIGN KEY (tenant_id, organization_id, parent_unit_id) REFERENCES organization.units (tenant_id, organization_id, id),
    CHECK (parent_unit_id IS DISTINCT FROM id)
);
CREATE INDEX units_by_organization ON organization.units (tenant_id, organization_id, name_key, id);
CREATE INDEX units_by_parent ON organization.units (tenant_id, organization_id, parent_unit_id, name_key, id);

ALTER TABLE organization.units ENABLE ROW LEVEL SECURITY;
ALTER TABLE organization.units FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organization.units
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
