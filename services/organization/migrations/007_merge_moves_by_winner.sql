-- Erasing a person deletes what a merge logged about them as the winner too (`winner = $2`): without this index that
-- is a scan of the tenant's whole merge log inside the feed consumer's transaction.
CREATE INDEX merge_moves_by_winner ON organization.merge_moves (tenant_id, winner);
