-- What a contacts MERGED moved, so that its UNMERGED can put it back exactly: one `merges` row per merged-away
-- contact (the loser), and one `merge_moves` row per thing the merge changed: an interaction whose contact_ids it
-- rewrote (with the array before and after), a scheduled send it re-pointed, a consent withdrawal it appended for the
-- winner. `ledger_sequence` is the winner's last consent ledger sequence when the merge was applied: withdrawals the
-- winner's ledger gains after it were stated while the two were one contact. Both tables are forgotten by the
-- UNMERGED that reverses the merge, and by an erasure of either contact.
CREATE TABLE communication.merges (
    tenant_id       text        NOT NULL,
    loser           uuid        NOT NULL,
    winner          uuid        NOT NULL,
    ledger_sequence bigint      NOT NULL,
    merged_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, loser)
);
CREATE INDEX merges_by_winner ON communication.merges (tenant_id, winner);

CREATE TABLE communication.merge_moves (
    tenant_id text NOT NULL,
    loser     uuid NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('interaction', 'send', 'consent')),
    -- The interaction, the send, or the consent entry the merge appended.
    row_id    uuid NOT NULL,
    -- Interactions only: contact_ids before and after the merge.
    before    uuid[],
    after     uuid[],
    PRIMARY KEY (tenant_id, loser, kind, row_id),
    FOREIGN KEY (tenant_id, loser) REFERENCES communication.merges (tenant_id, loser) ON DELETE CASCADE
);

ALTER TABLE communication.merges ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.merges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.merges
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE communication.merge_moves ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.merge_moves FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.merge_moves
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
