-- What a contacts MERGED moved, so that its UNMERGED can put it back: one row per note, file, comment or meeting the
-- merge re-pointed from the loser to the winner, with the note's or file's subjects (types and ids) or the meeting's
-- contact ids before and after the merge (a comment needs none: it had one subject, the loser). Forgotten by the
-- UNMERGED that reverses the merge, and by an erasure of anyone it names.
CREATE TABLE collaboration.merge_moves (
    tenant_id    text       NOT NULL,
    loser        uuid       NOT NULL,
    winner       uuid       NOT NULL,
    kind         text       NOT NULL CHECK (kind IN ('note', 'file', 'comment', 'meeting')),
    row_id       uuid       NOT NULL,
    before_types smallint[],
    before_ids   uuid[],
    after_types  smallint[],
    after_ids    uuid[],
    PRIMARY KEY (tenant_id, loser, kind, row_id)
);

ALTER TABLE collaboration.merge_moves ENABLE ROW LEVEL SECURITY;
ALTER TABLE collaboration.merge_moves FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON collaboration.merge_moves
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
