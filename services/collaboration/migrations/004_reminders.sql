-- Meeting reminders: one row per meeting and lead time, due at start minus the lead time, sent once by whichever
-- replica claims it (FOR UPDATE SKIP LOCKED) in the transaction that writes the notification.
ALTER TABLE collaboration.meetings ADD COLUMN reminder_minutes integer[] NOT NULL DEFAULT '{}';
ALTER TABLE collaboration.notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE collaboration.notifications ADD CONSTRAINT notifications_kind_check CHECK (kind BETWEEN 1 AND 5);

CREATE TABLE collaboration.meeting_reminders (
    tenant_id  text        NOT NULL,
    meeting_id uuid        NOT NULL,
    minutes    integer     NOT NULL CHECK (minutes BETWEEN 1 AND 40320),
    due_at     timestamptz NOT NULL,
    sent_at    timestamptz,
    PRIMARY KEY (tenant_id, meeting_id, minutes),
    FOREIGN KEY (tenant_id, meeting_id) REFERENCES collaboration.meetings (tenant_id, id) ON DELETE CASCADE
);
-- The worker's scan: unsent reminders by due time, across tenants.
CREATE INDEX meeting_reminders_due ON collaboration.meeting_reminders (due_at) WHERE sent_at IS NULL;

ALTER TABLE collaboration.meeting_reminders ENABLE ROW LEVEL SECURITY;
ALTER TABLE collaboration.meeting_reminders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON collaboration.meeting_reminders
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- The reminder worker finds due reminders of every tenant (and then works inside each reminder's own tenant).
CREATE POLICY reminder_worker ON collaboration.meeting_reminders
    USING (current_setting('app.reminder_worker', true) = 'on')
    WITH CHECK (current_setting('app.reminder_worker', true) = 'on');
