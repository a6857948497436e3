-- What the contacts feed keeps here: the address directory (each contact's e-mail addresses and phone numbers,
-- normalised) and the suppression list of erased people (a salted HMAC per address kind and address, never the
-- address itself), so an erased person is never messaged again.
CREATE TABLE communication.contact_addresses (
    tenant_id  text     NOT NULL,
    -- 'email' or 'phone'.
    kind       text     NOT NULL CHECK (kind IN ('email', 'phone')),
    address    text     NOT NULL,
    contact_id uuid     NOT NULL,
    PRIMARY KEY (tenant_id, kind, address, contact_id)
);
CREATE INDEX contact_addresses_by_contact ON communication.contact_addresses (tenant_id, contact_id);

CREATE TABLE communication.suppressions (
    tenant_id    text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('email', 'phone')),
    -- hex HMAC-SHA256(SWITCHBOARD_COMMUNICATION_SUPPRESSION_SECRET_FILE's secret, kind || ':' || normalised address).
    address_hash text        NOT NULL,
    reason       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind, address_hash)
);

ALTER TABLE communication.contact_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.contact_addresses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.contact_addresses
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE communication.suppressions ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.suppressions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.suppressions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
