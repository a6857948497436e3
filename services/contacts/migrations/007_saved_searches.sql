-- Saved searches: a SearchContactsRequest (its query, filters, sort and facets; never its page) kept as protobuf bytes
-- under a name, private to its owner or shared with the tenant. SearchContacts runs one by id; another service can run
-- one as an audience.
CREATE TABLE contacts.saved_searches (
    tenant_id  text        NOT NULL,
    id         uuid        NOT NULL,
    owner_id   text        NOT NULL,
    name       text        NOT NULL,
    shared     boolean     NOT NULL,
    search     bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX saved_searches_by_owner ON contacts.saved_searches (tenant_id, owner_id);
ALTER TABLE contacts.saved_searches ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts.saved_searches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts.saved_searches
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
