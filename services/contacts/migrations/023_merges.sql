-- MergeContacts: the loser is soft-deleted and points at its winner; the log keeps what the merge gave the winner (in
-- the contacts table's own columns: a contact's values, only those added), so UnmergeContact can take back what is
-- still as the merge left it. Personal data: erasure deletes a contact's log rows with it.
ALTER TABLE contacts.contacts ADD COLUMN merged_into uuid;
CREATE INDEX contacts_merged_into ON contacts.contacts (tenant_id, merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE contacts.merges (
    tenant_id     text        NOT NULL,
    id            uuid        NOT NULL,
    winner_id     uuid        NOT NULL,
    loser_id      uuid        NOT NULL,
    given_name    text        NOT NULL DEFAULT '',
    family_name   text        NOT NULL DEFAULT '',
    middle_name   text        NOT NULL DEFAULT '',
    name_prefix   text        NOT NULL DEFAULT '',
    name_suffix   text        NOT NULL DEFAULT '',
    display_name  text        NOT NULL DEFAULT '',
    emails        jsonb       NOT NULL DEFAULT '[]',
    phones        jsonb       NOT NULL DEFAULT '[]',
    addresses     jsonb       NOT NULL DEFAULT '[]',
    tags          text[]      NOT NULL DEFAULT '{}',
    custom_fields jsonb       NOT NULL DEFAULT '{}',
    merged_at     timestamptz NOT NULL DEFAULT now(),
    merged_by     text        NOT NULL,
    unmerged_at   timestamptz,
    unmerged_by   text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX merges_by_loser ON contacts.merges (tenant_id, loser_id, merged_at DESC);
CREATE INDEX merges_by_winner ON contacts.merges (tenant_id, winner_id);

ALTER TABLE contacts.merges ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts.merges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts.merges
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
