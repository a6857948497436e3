-- Notifications from the communication and analytics feeds: follow-ups due (scheduled like meeting reminders), calls
-- and analytics alerts. Kinds 6 follow-up, 7 call, 8 alert.
ALTER TABLE collaboration.notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE collaboration.notifications ADD CONSTRAINT notifications_kind_check CHECK (kind BETWEEN 1 AND 8);

-- One row per interaction that has had a follow-up: the follow-up as the latest event applied describes it. It is
-- pending while due_at is set, not done, the interaction not deleted and sent_at empty; the reminder worker claims due
-- pending rows (FOR UPDATE SKIP LOCKED) and sends each once. last_sequence is the communication feed's per-tenant
-- sequence of the event applied last: an older or repeated event changes nothing.
CREATE TABLE collaboration.follow_ups (
    tenant_id       text        NOT NULL,
    interaction_id  uuid        NOT NULL,
    owner_id        text        NOT NULL,
    -- NULL: no follow-up (cleared, or unknown since the interaction became private).
    due_at          timestamptz,
    done            boolean     NOT NULL DEFAULT false,
    deleted         boolean     NOT NULL DEFAULT false,
    title           text        NOT NULL,
    body            text        NOT NULL DEFAULT '',
    last_sequence   bigint      NOT NULL,
    -- When the worker sent it (or dropped it: muted kind, or too late); reset when the time or the owner changes.
    sent_at         timestamptz,
    notification_id bigint,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, interaction_id)
);
-- The worker's scan: pending follow-ups by due time, across tenants.
CREATE INDEX follow_ups_due ON collaboration.follow_ups (due_at)
    WHERE sent_at IS NULL AND due_at IS NOT NULL AND NOT done AND NOT deleted;

-- Notifications made from feed events (calls, alerts), one per event: a redelivered event finds its key and makes
-- nothing. Rows older than the notification age limit are purged (an event that old notifies nobody anyway).
CREATE TABLE collaboration.feed_notifications (
    tenant_id  text        NOT NULL,
    feed       text        NOT NULL,
    event_key  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, feed, event_key)
);
CREATE INDEX feed_notifications_age ON collaboration.feed_notifications (created_at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['follow_ups', 'feed_notifications']
    LOOP
        EXECUTE format('ALTER TABLE collaboration.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE collaboration.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON collaboration.%I
            USING (tenant_id = current_setting('app.tenant_id', true))
            WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
        -- The reminder worker finds due follow-ups and purges old keys of every tenant.
        EXECUTE format($p$CREATE POLICY reminder_worker ON collaboration.%I
            USING (current_setting('app.reminder_worker', true) = 'on')
            WITH CHECK (current_setting('app.reminder_worker', true) = 'on')$p$, t);
    END LOOP;
END $$;

-- A service-made notification (follow-up, call, alert) is not created for a user who muted its kind, so its sender
-- reads that user's muted kinds (only reads, only in the tenant, only in a transaction that declares itself such a
-- sender: the feed consumers and the reminder worker).
CREATE POLICY notification_sender ON collaboration.notification_preferences FOR SELECT USING (
    tenant_id = current_setting('app.tenant_id', true) AND current_setting('app.notification_sender', true) = 'on');
