-- The contacts service's hourly maintenance (ContactsMaintenance). Import ledgers older than
-- SWITCHBOARD_CONTACTS_IMPORT_RETENTION_DAYS are pruned across tenants in a transaction that sets
-- app.retention_purge, as the kit's retention prunes the change feed: a DELETE whose WHERE reads columns must pass the
-- table's SELECT policies too, so each pruned table has a read policy for the purge as well as a delete policy.
CREATE INDEX imports_created_at ON contacts.imports (created_at);
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['imports', 'import_rows'] LOOP
        EXECUTE format('CREATE POLICY retention_purge ON contacts.%I FOR DELETE '
                       'USING (current_setting(''app.retention_purge'', true) = ''on'')', t);
        EXECUTE format('CREATE POLICY retention_purge_read ON contacts.%I FOR SELECT '
                       'USING (current_setting(''app.retention_purge'', true) = ''on'')', t);
    END LOOP;
END $$;

-- A membership that ends by its date, with no event after it, leaves its contact's organization names when the
-- maintenance next runs after that date. end_applied: the contact's names were written knowing the membership had
-- ended (set by the consumer when it writes an ended membership, and by the sweep); the sweep finds the others by
-- this index, across tenants, under the same read policy.
ALTER TABLE contacts.organization_memberships ADD COLUMN end_applied boolean NOT NULL DEFAULT false;
CREATE INDEX organization_memberships_ending ON contacts.organization_memberships (end_date)
    WHERE end_date IS NOT NULL AND NOT end_applied;
CREATE POLICY retention_purge_read ON contacts.organization_memberships FOR SELECT
    USING (current_setting('app.retention_purge', true) = 'on');
