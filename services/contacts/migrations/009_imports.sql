-- ImportContacts: each import by the id its client chose, and every row it wrote (created, updated or skipped as a
-- duplicate) with the contact, so that sending the same input again after an interruption writes nothing twice: a
-- batch reads the rows already written in its transaction, and the key (tenant_id, import_id, row_number) makes a batch
-- that races another for the same rows (two streams of one import) fail and run again, reading them as written. Invalid
-- rows are not kept: they wrote nothing, and are checked again.
CREATE TABLE contacts.imports (
    tenant_id   text        NOT NULL,
    import_id   text        NOT NULL,
    -- What the import's options were: resuming with other options (another mapping would number other rows) is refused.
    fingerprint text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, import_id)
);

CREATE TABLE contacts.import_rows (
    tenant_id  text     NOT NULL,
    import_id  text     NOT NULL,
    row_number bigint   NOT NULL,
    outcome    smallint NOT NULL,
    contact_id uuid     NOT NULL,
    PRIMARY KEY (tenant_id, import_id, row_number)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['imports', 'import_rows'] LOOP
        EXECUTE format('ALTER TABLE contacts.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE contacts.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON contacts.%I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END $$;
