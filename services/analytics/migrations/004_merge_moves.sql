-- What a MERGED moved, so that an UNMERGED can reverse it (the service map's flow 2: "every service re-points its
-- rows and logs what it moved; UNMERGED reverses the log"). One row per thing moved, keyed by the loser:
--   moved     one of the loser's own timeline entries (not an activity's) now on the winner (timeline_id);
--   activity  an activity whose contacts were re-pointed (resource_type, resource_id, before, after);
--   stage     a lifecycle stage the loser had entered, deleted by the merge (row_data: the stage_changes row);
--   alert     an alert firing for the loser, cleared by the merge (row_data: the alert_states row).
-- The loser's entries for activities of both contacts are deleted by the merge and not logged: an UNMERGED gives the
-- restored contact a copy of the winner's entry for each restored activity that names it again.
CREATE TABLE analytics.merge_moves (
    tenant_id     text    NOT NULL,
    loser         uuid    NOT NULL,
    winner        uuid    NOT NULL,
    id            bigint  GENERATED ALWAYS AS IDENTITY,
    kind          text    NOT NULL CHECK (kind IN ('moved', 'activity', 'stage', 'alert')),
    timeline_id   bigint,
    resource_type text,
    resource_id   text,
    before        uuid[],
    after         uuid[],
    row_data      jsonb,
    PRIMARY KEY (tenant_id, loser, id)
);
-- An erasure finds the moves that name the person as the winner.
CREATE INDEX merge_moves_by_winner ON analytics.merge_moves (tenant_id, winner);

ALTER TABLE analytics.merge_moves ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.merge_moves FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON analytics.merge_moves
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
