-- Follow-up and call notifications copy an interaction's subject into their title: free text that may name the
-- person. They keep the interaction's contacts, so that an erasure (the contacts feed's ERASED) of one of them finds
-- them, and the title they would have without the subject ("Missed call", "Follow up on your email"), which the erasure
-- puts in place of the title. Rows from before this migration have no contacts and are not found.
ALTER TABLE collaboration.follow_ups ADD COLUMN contact_ids uuid[] NOT NULL DEFAULT '{}';
ALTER TABLE collaboration.follow_ups ADD COLUMN redacted_title text NOT NULL DEFAULT '';
ALTER TABLE collaboration.notifications ADD COLUMN contact_ids uuid[] NOT NULL DEFAULT '{}';
ALTER TABLE collaboration.notifications ADD COLUMN redacted_title text NOT NULL DEFAULT '';

-- Notifications are otherwise never changed (no UPDATE policy) and read only by their audience and sender; the erasure
-- (a transaction that sets app.erasure, which only the contacts feed consumer does) reads and rewrites its tenant's.
CREATE POLICY erasure_read ON collaboration.notifications FOR SELECT USING (
    tenant_id = current_setting('app.tenant_id', true) AND current_setting('app.erasure', true) = 'on');
CREATE POLICY erasure ON collaboration.notifications FOR UPDATE
    USING (tenant_id = current_setting('app.tenant_id', true) AND current_setting('app.erasure', true) = 'on')
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true) AND current_setting('app.erasure', true) = 'on');
