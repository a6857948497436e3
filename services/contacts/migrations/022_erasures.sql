-- EraseContact: one row per person erased, kept after the person is gone so that the erasure can be shown complete
-- (or overdue) and a second request for the same person returns the first. It holds the contact's id and no other
-- personal data. The receipts are the other services' ErasureReceipt payloads (counts, no personal data), collected
-- from their change feeds.
CREATE TABLE contacts.erasures (
    tenant_id    text        NOT NULL,
    id           uuid        NOT NULL,
    contact_id   uuid        NOT NULL,
    -- Every record erased: the contact, then those merged into it (each gets its ERASED and its receipts).
    contact_ids  uuid[]      NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    requested_by text        NOT NULL,
    deadline     timestamptz NOT NULL,
    -- The services whose receipts are awaited: those whose feeds the service followed when the erasure was made.
    awaited      text[]      NOT NULL,
    completed_at timestamptz,
    -- What this service removed itself (the counts of Erasure.Local, as its proto3 JSON).
    local        jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX erasures_one_per_contact ON contacts.erasures (tenant_id, contact_id);
CREATE INDEX erasures_by_time ON contacts.erasures (tenant_id, requested_at DESC, id DESC);

CREATE TABLE contacts.erasure_receipts (
    tenant_id   text        NOT NULL,
    erasure_id  uuid        NOT NULL,
    service     text        NOT NULL,
    -- The record the receipt is for (its event's resource_id).
    contact_id  uuid        NOT NULL,
    receipt     jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, erasure_id, service, contact_id),
    FOREIGN KEY (tenant_id, erasure_id) REFERENCES contacts.erasures (tenant_id, id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['erasures', 'erasure_receipts'] LOOP
        EXECUTE format('ALTER TABLE contacts.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE contacts.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON contacts.%I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END $$;
