-- What a contacts MERGED event moved (memberships and group entries of the loser, re-pointed to the winner or removed
-- as duplicates), so that UNMERGED can put each back.

CREATE TABLE organization.merge_moves (
    tenant_id   text    NOT NULL,
    loser       uuid    NOT NULL,
    winner      uuid    NOT NULL,
    -- 'membership' (row_id: the membership) or 'group_member' (row_id: the group).
    kind        text    NOT NULL CHECK (kind IN ('membership', 'group_member')),
    row_id      uuid    NOT NULL,
    -- 'repointed' (now the winner's) or 'removed' (the winner had the same one; snapshot holds the row).
    action      text    NOT NULL CHECK (action IN ('repointed', 'removed')),
    was_primary boolean NOT NULL DEFAULT false,
    snapshot    jsonb,
    PRIMARY KEY (tenant_id, loser, kind, row_id)
);

ALTER TABLE organization.merge_moves ENABLE ROW LEVEL SECURITY;
ALTER TABLE organization.merge_moves FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organization.merge_moves
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
