-- The consent ledger: one row per statement a contact made about a channel and a purpose. Append-only: history is
-- never rewritten. The database enforces it, not only the code: the service's role holds no UPDATE, DELETE or
-- TRUNCATE privilege on the table (revoked below from its owner, the role that runs migrations), and triggers refuse
-- those statements for anyone, the owner included (an owner could grant itself the privileges back; it cannot do
-- that to the triggers without a migration, which review sees).

CREATE TABLE communication.consent_ledger (
    tenant_id    text        NOT NULL,
    -- The ledger's order (an identity: strictly increasing, never reused).
    sequence     bigint      GENERATED ALWAYS AS IDENTITY,
    id           uuid        NOT NULL,
    contact_id   uuid        NOT NULL,
    channel      smallint    NOT NULL CHECK (channel BETWEEN 1 AND 3),
    purpose      text        NOT NULL CHECK (purpose ~ '^[a-z][a-z0-9_]{0,63}$'),
    -- 1 granted, 2 withdrawn.
    status       smallint    NOT NULL CHECK (status IN (1, 2)),
    legal_basis  smallint    NOT NULL DEFAULT 0 CHECK (legal_basis BETWEEN 0 AND 6),
    source       text        NOT NULL CHECK (source <> ''),
    stated_at    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (status = 2 OR legal_basis <> 0)
);
-- A contact's history in ledger order, and the latest entry per channel and purpose (CheckConsent): tenant first.
-- The decision reads the latest statement by when the person made it (stated_at), a withdrawal winning a tie, then
-- by recording order: a back-dated statement recorded later (paper forms imported) does not override a newer one.
CREATE UNIQUE INDEX consent_ledger_by_contact ON communication.consent_ledger (tenant_id, contact_id, channel, purpose, stated_at, status, sequence);
CREATE UNIQUE INDEX consent_ledger_history ON communication.consent_ledger (tenant_id, contact_id, sequence);

CREATE FUNCTION communication.consent_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'communication.consent_ledger is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER consent_ledger_no_update_or_delete BEFORE UPDATE OR DELETE ON communication.consent_ledger
    FOR EACH ROW EXECUTE FUNCTION communication.consent_ledger_append_only();
CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON communication.consent_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION communication.consent_ledger_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON communication.consent_ledger FROM CURRENT_USER;

ALTER TABLE communication.consent_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.consent_ledger FORCE ROW LEVEL SECURITY;
-- Reads and appends of the caller's tenant only (no UPDATE or DELETE policy: with forced RLS those find no rows even
-- if the privileges came back).
CREATE POLICY tenant_read ON communication.consent_ledger FOR SELECT
    USING (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_append ON communication.consent_ledger FOR INSERT
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
