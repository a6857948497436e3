-- Relationships between contacts, stored once with the sides as created: from contact_id, related_id is its `type`.
-- The key columns give the relationship's identity whichever side states it: (A, B, MANAGER) and (B, A, REPORT) are
-- one relationship, and a spouse relationship has no direction. The types and their inverses are RelationshipType's
-- numbers (RelationshipRules in Swift holds the same table): pairs 3/4, 7/8, 9/10, 12/13, 14/15; the rest are their
-- own inverses.
CREATE TABLE contacts.relationships (
    tenant_id  text        NOT NULL,
    id         uuid        NOT NULL,
    contact_id uuid        NOT NULL,
    related_id uuid        NOT NULL,
    type       smallint    NOT NULL,
    strength   smallint    NOT NULL DEFAULT 0,
    note       text        NOT NULL DEFAULT '',
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL,
    -- Set aside by a merge (contacts.merges.id): one the merge would have made a duplicate, or one between the two
    -- contacts merged. UnmergeContact brings it back.
    hidden_by  uuid,
    key_type   smallint GENERATED ALWAYS AS (CASE type WHEN 4 THEN 3 WHEN 8 THEN 7 WHEN 10 THEN 9 WHEN 13 THEN 12 WHEN 15 THEN 14
        ELSE type END) STORED,
    key_first  uuid GENERATED ALWAYS AS (CASE WHEN type IN (3, 7, 9, 12, 14) THEN contact_id WHEN type IN (4, 8, 10, 13, 15)
        THEN related_id ELSE LEAST(contact_id, related_id) END) STORED,
    key_second uuid GENERATED ALWAYS AS (CASE WHEN type IN (3, 7, 9, 12, 14) THEN related_id WHEN type IN (4, 8, 10, 13, 15)
        THEN contact_id ELSE GREATEST(contact_id, related_id) END) STORED,
    PRIMARY KEY (tenant_id, id),
    CHECK (contact_id <> related_id),
    CHECK (type BETWEEN 1 AND 17),
    CHECK (strength BETWEEN 0 AND 5)
);
CREATE UNIQUE INDEX relationships_key ON contacts.relationships (tenant_id, key_type, key_first, key_second) WHERE hidden_by IS NULL;
CREATE INDEX relationships_by_contact ON contacts.relationships (tenant_id, contact_id);
CREATE INDEX relationships_by_related ON contacts.relationships (tenant_id, related_id);
ALTER TABLE contacts.relationships ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts.relationships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts.relationships
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- What each merge did to the loser's relationships, so that UnmergeContact undoes exactly that: `side` names the column
-- moved from the loser to the winner ('contact' or 'related'), or is 'hidden' for one set aside. Erasure deletes the
-- rows with the relationships (the foreign key) and the merges.
CREATE TABLE contacts.relationship_moves (
    tenant_id       text NOT NULL,
    merge_id        uuid NOT NULL,
    relationship_id uuid NOT NULL,
    side            text NOT NULL CHECK (side IN ('contact', 'related', 'hidden')),
    PRIMARY KEY (tenant_id, merge_id, relationship_id),
    FOREIGN KEY (tenant_id, relationship_id) REFERENCES contacts.relationships (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX relationship_moves_by_relationship ON contacts.relationship_moves (tenant_id, relationship_id);
ALTER TABLE contacts.relationship_moves ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts.relationship_moves FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts.relationship_moves
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
