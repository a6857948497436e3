-- A campaign is COMPLETED only once every send it made has settled (before, it was as soon as every recipient was
-- queued, a second after it started, and then it could no longer be paused or cancelled though nothing had gone
-- out). The campaign runner asks this of every active campaign on each pass: a partial index keeps that to the
-- unsettled sends alone.
CREATE INDEX sends_unsettled_by_campaign ON communication.sends (tenant_id, campaign_id) WHERE campaign_id IS NOT NULL AND status IN (1, 2);
-- ListSends (the tenant's, a contact's or a campaign's, newest first) and ListCampaigns.
CREATE INDEX sends_by_time ON communication.sends (tenant_id, created_at DESC, id DESC);
CREATE INDEX sends_by_contact_time ON communication.sends (tenant_id, contact_id, created_at DESC, id DESC);
CREATE INDEX sends_by_campaign_time ON communication.sends (tenant_id, campaign_id, created_at DESC, id DESC) WHERE campaign_id IS NOT NULL;
CREATE INDEX campaigns_by_time ON communication.campaigns (tenant_id, created_at DESC, id DESC);

-- Campaigns completed early come back to ACTIVE while sends of theirs wait, so they can be paused or cancelled; the
-- runner completes them when those settle. Migrations run as the service's role, under row-level security: the
-- dispatcher's policies are the ones that cross tenants.
SELECT set_config('app.dispatcher', 'on', true);
UPDATE communication.campaigns k SET status = 1, updated_at = now(), updated_by = 'migration 016'
WHERE k.status = 4
  AND EXISTS (SELECT 1 FROM communication.sends s WHERE s.tenant_id = k.tenant_id AND s.campaign_id = k.id AND s.status IN (1, 2));
