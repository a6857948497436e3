-- Campaigns: a template version to a list of contacts. A runner turns pending recipients into sends (claimed with
-- FOR UPDATE SKIP LOCKED, each recipient's send made in the transaction that marks it queued, and at most one send per
-- campaign and contact by a unique index), so a restart or a second replica sends no recipient twice and skips none.
CREATE TABLE communication.campaigns (
    tenant_id        text        NOT NULL,
    id               uuid        NOT NULL,
    name             text        NOT NULL,
    template_id      uuid        NOT NULL,
    template_version integer     NOT NULL,
    channel          smallint    NOT NULL CHECK (channel BETWEEN 1 AND 3),
    purpose          text        NOT NULL,
    template_values  jsonb       NOT NULL DEFAULT '{}',
    start_at         timestamptz NOT NULL,
    -- 1 active, 2 paused, 3 cancelled, 4 completed.
    status           smallint    NOT NULL DEFAULT 1 CHECK (status BETWEEN 1 AND 4),
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text        NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id, template_version) REFERENCES communication.templates (tenant_id, id, version)
);
CREATE TABLE communication.campaign_recipients (
    tenant_id   text     NOT NULL,
    campaign_id uuid     NOT NULL,
    contact_id  uuid     NOT NULL,
    -- 1 pending, 2 queued (a send exists), 3 skipped.
    status      smallint NOT NULL DEFAULT 1 CHECK (status BETWEEN 1 AND 3),
    reason      text     NOT NULL DEFAULT '',
    send_id     uuid,
    PRIMARY KEY (tenant_id, campaign_id, contact_id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES communication.campaigns (tenant_id, id)
);
CREATE INDEX campaign_recipients_pending ON communication.campaign_recipients (tenant_id, campaign_id) WHERE status = 1;

ALTER TABLE communication.sends ADD COLUMN campaign_id uuid;
CREATE UNIQUE INDEX sends_one_per_recipient ON communication.sends (tenant_id, campaign_id, contact_id) WHERE campaign_id IS NOT NULL;

ALTER TABLE communication.campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.campaigns
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY dispatcher_read ON communication.campaigns FOR SELECT USING (current_setting('app.dispatcher', true) = 'on');
CREATE POLICY dispatcher_update ON communication.campaigns FOR UPDATE
    USING (current_setting('app.dispatcher', true) = 'on') WITH CHECK (current_setting('app.dispatcher', true) = 'on');
ALTER TABLE communication.campaign_recipients ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.campaign_recipients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.campaign_recipients
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY dispatcher_read ON communication.campaign_recipients FOR SELECT USING (current_setting('app.dispatcher', true) = 'on');
CREATE POLICY dispatcher_update ON communication.campaign_recipients FOR UPDATE
    USING (current_setting('app.dispatcher', true) = 'on') WITH CHECK (current_setting('app.dispatcher', true) = 'on');
