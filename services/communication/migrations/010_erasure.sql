-- Erasure reaches what the first version missed.
-- A send still in flight when its person is erased keeps its payload until its dispatcher records the outcome (the
-- provider call may be retried with the same bytes); erased_at marks it, and this trigger removes the address and the
-- text on the update that settles it, and cancels it instead of rescheduling it, whoever writes that update.
ALTER TABLE communication.sends ADD COLUMN erased_at timestamptz;

CREATE FUNCTION communication.sends_forget_erased() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.erased_at IS NOT NULL AND NEW.status <> 2 THEN
        IF NEW.status = 1 THEN
            NEW.status := 5;
            NEW.last_error := 'the person was erased';
        END IF;
        NEW.to_address := '';
        NEW.subject := '';
        NEW.body := '';
        NEW.payload := '\x'::bytea;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sends_forget_erased BEFORE UPDATE ON communication.sends
    FOR EACH ROW EXECUTE FUNCTION communication.sends_forget_erased();

-- Whether a free address of an interaction (as the user typed it) is one of a person's addresses: e-mail compared
-- lower-cased and trimmed, a phone number by its + and digits (the directory's normal forms, AddressRules).
CREATE FUNCTION communication.address_matches(address text, emails text[], phones text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(btrim(address)) = ANY(emails)
        OR (strpos(address, '@') = 0 AND regexp_replace(address, '[^0-9+]', '', 'g') <> ''
            AND regexp_replace(address, '[^0-9+]', '', 'g') = ANY(phones))
$$;
