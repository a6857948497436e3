-- The provider's delivery events, received on the service's events webhook. Idempotent by the provider's event id
-- (a redelivered event changes nothing); a send's delivery_state only ever rises (ranks: see DeliveryState).
ALTER TABLE communication.sends ADD COLUMN delivery_state smallint NOT NULL DEFAULT 0;
-- Events name the send by its id (the idempotency key the provider was given), without the tenant.
CREATE UNIQUE INDEX sends_by_id ON communication.sends (id);

CREATE TABLE communication.provider_events (
    tenant_id   text        NOT NULL,
    event_id    text        NOT NULL,
    send_id     uuid        NOT NULL,
    state       smallint    NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id),
    FOREIGN KEY (tenant_id, send_id) REFERENCES communication.sends (tenant_id, id)
);
ALTER TABLE communication.provider_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.provider_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.provider_events
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
