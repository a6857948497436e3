-- Contact groups, nested by parent_group_id, and their (static) members.

CREATE TABLE organization.groups (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    name            text        NOT NULL,
    name_key        text        COLLATE "C" NOT NULL,
    description     text        NOT NULL DEFAULT '',
    parent_group_id uuid,
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL,
    created_by      text        NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text        NOT NULL,
    deleted_at      timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_group_id) REFERENCES organization.groups (tenant_id, id),
    CHECK (parent_group_id IS DISTINCT FROM id)
);
CREATE INDEX groups_by_parent ON organization.groups (tenant_id, parent_group_id, name_key, id);
CREATE INDEX groups_by_name ON organization.groups (tenant_id, name_key, id);

CREATE TABLE organization.group_members (
    tenant_id  text        NOT NULL,
    group_id   uuid        NOT NULL,
    contact_id uuid        NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    added_by   text        NOT NULL,
    PRIMARY KEY (tenant_id, group_id, contact_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES organization.groups (tenant_id, id)
);
CREATE INDEX group_members_by_contact ON organization.group_members (tenant_id, contact_id, group_id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['groups', 'group_members'] LOOP
        EXECUTE format('ALTER TABLE organization.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE organization.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON organization.%I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END $$;
