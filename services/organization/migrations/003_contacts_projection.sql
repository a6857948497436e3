-- What the service knows of contacts, from the contacts service's feed (WatchAllChanges): enough to show member
-- names and to answer NOT_FOUND for a contact unknown in the tenant, without calling contacts on every request.

CREATE TABLE organization.contacts (
    tenant_id     text        NOT NULL,
    contact_id    uuid        NOT NULL,
    display_name  text        NOT NULL DEFAULT '',
    -- A deleted contact's memberships and group entries are hidden until it is undeleted.
    deleted       boolean     NOT NULL DEFAULT false,
    -- Set while the contact is merged into another (MERGED), cleared by UNMERGED.
    merged_into   uuid,
    -- The contacts feed's per-tenant sequence of the last event applied: an older one changes nothing.
    last_sequence bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, contact_id)
);

ALTER TABLE organization.contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE organization.contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organization.contacts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
