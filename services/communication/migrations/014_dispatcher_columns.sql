-- The dispatcher's UPDATE policies (sends, campaigns, campaign_recipients) admit every row of every tenant once a
-- transaction sets app.dispatcher = on, and migration 009 keeps only tenant_id and a send's id fixed. This trigger
-- narrows such a transaction to the columns its writers really change; any other column change raises an error:
--   sends: the dispatcher's claim, outcome and lease (PostgresDispatchStore: status, attempts, lease_owner,
--     lease_until, next_attempt_at, last_error, provider_message_id, sent_at) and provider events' delivery_state
--     (PostgresProviderEventStore), with version, updated_at and updated_by;
--   campaign_recipients: the campaign runner's status, reason and send_id;
--   campaigns: the runner's status (completed), updated_at and updated_by.
-- Everything else (address, text, payload, contact, template, schedule, erasure mark, a campaign's name, template and
-- values…), and any column added later, stays as the request that wrote it left it. The check applies whenever
-- app.dispatcher is on, also where the same transaction sets app.tenant_id (the runner and provider events do).
-- It compares what the statement asked for: the trigger's name sorts before sends_forget_erased (migration 010;
-- BEFORE triggers fire in name order), whose own blanking of an erased send's address and text on settling is the
-- point of that trigger and must not be refused.
CREATE FUNCTION communication.dispatcher_columns_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    -- TG_ARGV: the columns a dispatcher transaction may change in this table.
    IF (to_jsonb(NEW) - TG_ARGV) IS DISTINCT FROM (to_jsonb(OLD) - TG_ARGV) THEN
        SELECT string_agg(n.key, ', ' ORDER BY n.key) INTO changed
        FROM jsonb_each(to_jsonb(NEW) - TG_ARGV) n JOIN jsonb_each(to_jsonb(OLD)) o USING (key)
        WHERE n.value IS DISTINCT FROM o.value;
        RAISE EXCEPTION 'a dispatcher transaction cannot change %.%', TG_TABLE_NAME, changed
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sends_dispatcher_columns BEFORE UPDATE ON communication.sends
    FOR EACH ROW WHEN (current_setting('app.dispatcher', true) = 'on')
    EXECUTE FUNCTION communication.dispatcher_columns_only(
        'status', 'attempts', 'lease_owner', 'lease_until', 'next_attempt_at', 'last_error', 'provider_message_id', 'sent_at',
        'delivery_state', 'version', 'updated_at', 'updated_by');
CREATE TRIGGER campaign_recipients_dispatcher_columns BEFORE UPDATE ON communication.campaign_recipients
    FOR EACH ROW WHEN (current_setting('app.dispatcher', true) = 'on')
    EXECUTE FUNCTION communication.dispatcher_columns_only('status', 'reason', 'send_id');
CREATE TRIGGER campaigns_dispatcher_columns BEFORE UPDATE ON communication.campaigns
    FOR EACH ROW WHEN (current_setting('app.dispatcher', true) = 'on')
    EXECUTE FUNCTION communication.dispatcher_columns_only('status', 'updated_at', 'updated_by');
