-- SearchContacts finds people by the names of the organizations they belong to. The organization service owns
-- organizations and memberships; contacts follows its change feed into two projections (names of organizations, and
-- which contact belongs to which) and keeps, on each contact, the names of its current organizations
-- (organization_names), which the search trigger adds to the contact's words. A rename rewrites the words of the
-- organization's members in the consumer's transaction, so the next search after the feed is applied finds the new
-- name and not the old one.
CREATE TABLE contacts.organizations (
    tenant_id       text        NOT NULL,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    deleted         boolean     NOT NULL DEFAULT false,
    -- The organization feed's sequence of the event applied last: an older event changes nothing.
    last_sequence   bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, organization_id)
);

CREATE TABLE contacts.organization_memberships (
    tenant_id       text        NOT NULL,
    membership_id   uuid        NOT NULL,
    contact_id      uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    -- The membership's last day; NULL while it lasts. Deleted memberships are removed.
    end_date        date,
    last_sequence   bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, membership_id)
);
CREATE INDEX organization_memberships_by_contact ON contacts.organization_memberships (tenant_id, contact_id);
CREATE INDEX organization_memberships_by_organization ON contacts.organization_memberships (tenant_id, organization_id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['organizations', 'organization_memberships'] LOOP
        EXECUTE format('ALTER TABLE contacts.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE contacts.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON contacts.%I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END $$;

ALTER TABLE contacts.contacts ADD COLUMN organization_names text[] NOT NULL DEFAULT '{}';

CREATE OR REPLACE FUNCTION contacts.contact_search_text(c contacts.contacts) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT concat_ws(' ', c.display_name, c.given_name, c.middle_name, c.family_name, c.name_prefix, c.name_suffix,
        (SELECT string_agg(e ->> 'address', ' ') FROM jsonb_array_elements(c.emails) AS e),
        (SELECT string_agg(concat_ws(' ', p ->> 'number', p ->> 'e164'), ' ') FROM jsonb_array_elements(c.phones) AS p),
        array_to_string(c.tags, ' '),
        (SELECT string_agg(v #>> '{}', ' ') FROM jsonb_each(c.custom_fields) AS f (k, v) WHERE jsonb_typeof(v) = 'string'),
        array_to_string(c.organization_names, ' '))
$$;
