-- HTML e-mail: a template's and a send's body format (1 text, 2 HTML). Values rendered into an HTML template's body
-- are escaped by the service; the provider is told the format in the payload it receives.
ALTER TABLE communication.templates ADD COLUMN body_format smallint NOT NULL DEFAULT 1 CHECK (body_format IN (1, 2));
ALTER TABLE communication.sends ADD COLUMN body_format smallint NOT NULL DEFAULT 1 CHECK (body_format IN (1, 2));
