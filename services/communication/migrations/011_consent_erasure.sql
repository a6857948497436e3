-- Erasure is the one exception to the consent ledger's append-only rule. An erased person is kept from ever being
-- messaged again by the suppression list (keyed hashes of their addresses), so their ledger entries prove nothing any
-- more and are personal data (a contact id, and a free-text source a recorder may have filled with more): they are
-- deleted in the erasure's transaction, and counted in its receipt. Only a transaction that declares itself an
-- erasure (`app.erasure`, set by the contacts feed's consumer and nothing else) may delete, only in its tenant: the
-- policy lets a delete see the tenant's rows, so any other delete reaches the trigger and fails loudly rather than
-- finding nothing. UPDATE and TRUNCATE stay refused for everyone.
CREATE OR REPLACE FUNCTION communication.consent_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('app.erasure', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'communication.consent_ledger is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
GRANT DELETE ON communication.consent_ledger TO CURRENT_USER;
CREATE POLICY erasure_delete ON communication.consent_ledger FOR DELETE
    USING (tenant_id = current_setting('app.tenant_id', true));
