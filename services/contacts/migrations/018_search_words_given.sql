-- An insert may bring a contact's search words and name words with it: the service computes them as word_list does
-- (the same glibc classification in the database's own locale, checked against this database before it is trusted),
-- and an import of a million contacts then spends no regular-expression work per row here. An insert that does not
-- give them (their defaults, '' and '{}') gets them computed as before, as does every update. A contact whose text
-- truly has no word is given nothing and computed, which gives nothing again. Phone numbers are always computed.
CREATE OR REPLACE FUNCTION contacts.contacts_search_words() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e164 text;
BEGIN
    IF TG_OP = 'UPDATE' OR NEW.search_words = ''::tsvector THEN
        NEW.search_words := array_to_tsvector(contacts.word_list(concat_ws(' ', NEW.display_name, NEW.given_name,
            NEW.middle_name, NEW.family_name, NEW.name_prefix, NEW.name_suffix,
            contacts.json_words_text(jsonb_build_array(jsonb_path_query_array(NEW.emails, '$[*].address'),
                jsonb_path_query_array(NEW.phones, '$[*].number'), jsonb_path_query_array(NEW.phones, '$[*].e164'),
                jsonb_path_query_array(NEW.custom_fields, 'strict $.* ? (@.type() == "string")'))),
            array_to_string(NEW.tags, ' '), array_to_string(NEW.organization_names, ' '))));
    END IF;
    IF TG_OP = 'UPDATE' OR NEW.search_names = '{}' THEN
        NEW.search_names := contacts.word_list(concat_ws(' ', NEW.given_name, NEW.family_name, NEW.middle_name,
            NEW.display_name, NEW.name_prefix, NEW.name_suffix));
    END IF;
    IF jsonb_array_length(NEW.phones) > 1 THEN
        NEW.phone_numbers := ARRAY(
            SELECT DISTINCT p ->> 'e164' FROM jsonb_array_elements(NEW.phones) AS p WHERE coalesce(p ->> 'e164', '') <> '');
    ELSE
        e164 := NEW.phones -> 0 ->> 'e164';
        NEW.phone_numbers := CASE WHEN e164 <> '' THEN ARRAY[e164] ELSE '{}'::text[] END;
    END IF;
    RETURN NEW;
END $$;
