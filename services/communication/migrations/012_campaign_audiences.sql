-- Where a campaign's recipients came from: a list of contact ids (both columns null), an organization group (with or
-- without its subgroups) or a contacts saved search. Kept for people reading the campaign; the recipients themselves
-- are the snapshot taken when it was made (campaign_recipients), never expanded again.
ALTER TABLE communication.campaigns
    ADD COLUMN audience_group_id        uuid,
    ADD COLUMN audience_subgroups       boolean NOT NULL DEFAULT false,
    ADD COLUMN audience_saved_search_id uuid,
    ADD CONSTRAINT campaigns_one_audience CHECK (num_nonnulls(audience_group_id, audience_saved_search_id) <= 1),
    ADD CONSTRAINT campaigns_subgroups_of_group CHECK (NOT audience_subgroups OR audience_group_id IS NOT NULL);
