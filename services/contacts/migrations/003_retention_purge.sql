-- Retention pruning crosses tenants only in a transaction that sets app.retention_purge. A DELETE whose WHERE
-- reads columns must also pass the table's SELECT policies, so each pruned table needs a read policy for the purge
-- as well as a delete policy (without it, 002's purge of the change feed deleted nothing).
CREATE POLICY retention_purge_read ON contacts.changes FOR SELECT
    USING (current_setting('app.retention_purge', true) = 'on');

-- Idempotency keys are kept for SWITCHBOARD_IDEMPOTENCY_RETENTION_HOURS, then pruned hourly.
CREATE INDEX idempotency_keys_created_at ON contacts.idempotency_keys (created_at);
CREATE POLICY retention_purge ON contacts.idempotency_keys FOR DELETE
    USING (current_setting('app.retention_purge', true) = 'on');
CREATE POLICY retention_purge_read ON contacts.idempotency_keys FOR SELECT
    USING (current_setting('app.retention_purge', true) = 'on');
