-- Message templates, one row per version (never updated: a change is a new version, so an interaction's
-- (template_id, template_version) always names the text it was rendered from).
CREATE TABLE communication.templates (
    tenant_id   text        NOT NULL,
    id          uuid        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    name        text        NOT NULL,
    -- lower(name) in byte order: the list order.
    name_key    text        COLLATE "C" NOT NULL,
    channel     smallint    NOT NULL CHECK (channel BETWEEN 1 AND 3),
    subject     text        NOT NULL DEFAULT '',
    body        text        NOT NULL,
    variables   text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL,
    PRIMARY KEY (tenant_id, id, version)
);
-- The latest version of each template, for lists in name order.
CREATE TABLE communication.template_heads (
    tenant_id  text    NOT NULL,
    id         uuid    NOT NULL,
    version    integer NOT NULL,
    name_key   text    COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text    NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, id, version) REFERENCES communication.templates (tenant_id, id, version)
);
CREATE INDEX template_heads_by_name ON communication.template_heads (tenant_id, name_key, id);

ALTER TABLE communication.templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.templates
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE communication.template_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.template_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.template_heads
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- The template version an interaction's message was rendered from.
ALTER TABLE communication.interactions ADD COLUMN template_id uuid, ADD COLUMN template_version integer,
    ADD CHECK ((template_id IS NULL) = (template_version IS NULL)),
    ADD FOREIGN KEY (tenant_id, template_id, template_version) REFERENCES communication.templates (tenant_id, id, version);
