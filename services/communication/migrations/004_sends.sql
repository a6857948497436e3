-- Sends through the provider: a scheduled-job table with leases. A dispatcher claims due rows with
-- FOR UPDATE SKIP LOCKED (replicas never claim the same row), holds a lease while its provider call runs, and a row
-- whose lease expired (its dispatcher died) is claimed again with the same idempotency key and the same payload bytes.
CREATE TABLE communication.sends (
    tenant_id           text        NOT NULL,
    id                  uuid        NOT NULL,
    contact_id          uuid        NOT NULL,
    channel             smallint    NOT NULL CHECK (channel BETWEEN 1 AND 3),
    purpose             text        NOT NULL,
    to_address          text        NOT NULL,
    subject             text        NOT NULL DEFAULT '',
    body                text        NOT NULL,
    template_id         uuid,
    template_version    integer,
    -- The exact bytes posted to the provider, fixed when the send is made: every attempt signs the same bytes.
    payload             bytea       NOT NULL,
    send_at             timestamptz NOT NULL,
    -- 1 scheduled, 2 sending, 3 sent, 4 failed, 5 cancelled, 6 refused.
    status              smallint    NOT NULL DEFAULT 1 CHECK (status BETWEEN 1 AND 6),
    attempts            integer     NOT NULL DEFAULT 0,
    max_attempts        integer     NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    next_attempt_at     timestamptz NOT NULL,
    lease_owner         uuid,
    lease_until         timestamptz,
    last_error          text        NOT NULL DEFAULT '',
    provider_message_id text        NOT NULL DEFAULT '',
    sent_at             timestamptz,
    version             bigint      NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text        NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id, template_version) REFERENCES communication.templates (tenant_id, id, version)
);
-- The dispatcher's queue across tenants: rows that may be claimed, by due time.
CREATE INDEX sends_due ON communication.sends (next_attempt_at) WHERE status IN (1, 2);
-- A contact's pending sends (cancelled when the contact is deleted, once the contacts feed is followed).
CREATE INDEX sends_by_contact ON communication.sends (tenant_id, contact_id) WHERE status IN (1, 2);

ALTER TABLE communication.sends ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.sends FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.sends
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- The dispatcher works across tenants, and only reads and updates: no INSERT or DELETE policy admits it.
CREATE POLICY dispatcher_read ON communication.sends FOR SELECT
    USING (current_setting('app.dispatcher', true) = 'on');
CREATE POLICY dispatcher_update ON communication.sends FOR UPDATE
    USING (current_setting('app.dispatcher', true) = 'on')
    WITH CHECK (current_setting('app.dispatcher', true) = 'on');
