-- Contacts, their unique email addresses, custom field definitions and idempotency keys.
-- Every table holds tenant data: tenant_id leads each key, and row-level security (forced, so the owning role is
-- subject to it too) admits only rows of the tenant set by the service per transaction (app.tenant_id).

CREATE TABLE contacts.contacts (
    tenant_id     text        NOT NULL,
    id            uuid        NOT NULL,
    given_name    text        NOT NULL DEFAULT '',
    family_name   text        NOT NULL DEFAULT '',
    middle_name   text        NOT NULL DEFAULT '',
    name_prefix   text        NOT NULL DEFAULT '',
    name_suffix   text        NOT NULL DEFAULT '',
    display_name  text        NOT NULL DEFAULT '',
    emails        jsonb       NOT NULL DEFAULT '[]',
    phones        jsonb       NOT NULL DEFAULT '[]',
    addresses     jsonb       NOT NULL DEFAULT '[]',
    contact_type  smallint    NOT NULL,
    status        smallint    NOT NULL,
    tags          text[]      NOT NULL DEFAULT '{}',
    owner_id      text        NOT NULL,
    custom_fields jsonb       NOT NULL DEFAULT '{}',
    version       bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL,
    created_by    text        NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_by    text        NOT NULL,
    deleted_at    timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contacts_by_created ON contacts.contacts (tenant_id, created_at, id);
CREATE INDEX contacts_by_updated ON contacts.contacts (tenant_id, updated_at, id);
CREATE INDEX contacts_by_family ON contacts.contacts (tenant_id, family_name, id);
CREATE INDEX contacts_by_owner ON contacts.contacts (tenant_id, owner_id);
CREATE INDEX contacts_by_tag ON contacts.contacts USING gin (tags);

-- One row per email address of a live contact: uniqueness per tenant, case-insensitively.
CREATE TABLE contacts.contact_emails (
    tenant_id  text NOT NULL,
    address    text NOT NULL,
    contact_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, address),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts.contacts (tenant_id, id)
);
CREATE INDEX contact_emails_by_contact ON contacts.contact_emails (tenant_id, contact_id);

CREATE TABLE contacts.field_definitions (
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

-- The first response of every mutating request, by its request id.
CREATE TABLE contacts.idempotency_keys (
    tenant_id  text        NOT NULL,
    request_id text        NOT NULL,
    method     text        NOT NULL,
    response   bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['contacts', 'contact_emails', 'field_definitions', 'idempotency_keys'] LOOP
        EXECUTE format('ALTER TABLE contacts.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE contacts.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON contacts.%I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END $$;
