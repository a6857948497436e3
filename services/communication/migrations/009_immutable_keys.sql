-- The dispatcher's and the campaign runner's policies admit UPDATE across tenants; this trigger keeps a row's tenant
-- and id fixed whatever an UPDATE says, so those policies can never move a row into another tenant.
CREATE FUNCTION communication.keep_tenant_and_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
        RAISE EXCEPTION '%.tenant_id cannot change', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER sends_keep_tenant BEFORE UPDATE ON communication.sends
    FOR EACH ROW EXECUTE FUNCTION communication.keep_tenant_and_id();
CREATE TRIGGER campaigns_keep_tenant BEFORE UPDATE ON communication.campaigns
    FOR EACH ROW EXECUTE FUNCTION communication.keep_tenant_and_id();
CREATE TRIGGER campaign_recipients_keep_tenant BEFORE UPDATE ON communication.campaign_recipients
    FOR EACH ROW EXECUTE FUNCTION communication.keep_tenant_and_id();
CREATE FUNCTION communication.keep_send_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'sends.id (the provider''s idempotency key) cannot change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER sends_keep_id BEFORE UPDATE ON communication.sends
    FOR EACH ROW EXECUTE FUNCTION communication.keep_send_id();
