-- SearchContacts. Each contact keeps its words (lower-cased runs of letters or of digits from its names, e-mail
-- addresses, phone numbers, tags and string custom fields) as a tsvector, set by a trigger on every insert and update
-- (so a search finds a write as soon as it commits, whichever path wrote it) and indexed with GIN: a query's words,
-- each expanded to the terms it may mean, become one tsquery of the index. The expansion reads
-- contacts.search_terms, the tenant's distinct words, by prefix (its primary key, in byte order) and by trigram
-- similarity (pg_trgm, a trusted extension: a typo such as "smth" finds "smith"). Writers add their contacts' new words
-- to search_terms in their own transaction, in one sorted statement (no deadlock between concurrent writers).
-- Built in the migration's transaction: on a large table this blocks writes to contacts while it builds.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA contacts;

-- The words of a text, as a search compares them (a query is split by the same function): lower-cased runs of
-- letters and runs of digits, so "jsmith42@example.com" is jsmith, 42, example and com (a name and a number, not a
-- million distinct words that no one types).
CREATE FUNCTION contacts.search_words_of(body text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT left(w[1], 64)), '{}')
    FROM regexp_matches(lower(body), '([[:alpha:]]+|[[:digit:]]+)', 'g') AS w
$$;

CREATE FUNCTION contacts.contact_search_text(c contacts.contacts) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT concat_ws(' ', c.display_name, c.given_name, c.middle_name, c.family_name, c.name_prefix, c.name_suffix,
        (SELECT string_agg(e ->> 'address', ' ') FROM jsonb_array_elements(c.emails) AS e),
        (SELECT string_agg(concat_ws(' ', p ->> 'number', p ->> 'e164'), ' ') FROM jsonb_array_elements(c.phones) AS p),
        array_to_string(c.tags, ' '),
        (SELECT string_agg(v #>> '{}', ' ') FROM jsonb_each(c.custom_fields) AS f (k, v) WHERE jsonb_typeof(v) = 'string'))
$$;

-- The name's words in order (given, family, then middle, display, prefix, suffix), for ranking: a query's first word
-- matching the given name, its second the family name, counts most.
CREATE FUNCTION contacts.name_words_of(c contacts.contacts) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY(SELECT left(w[1], 64) FROM regexp_matches(lower(concat_ws(' ', c.given_name, c.family_name, c.middle_name,
        c.display_name, c.name_prefix, c.name_suffix)), '([[:alpha:]]+|[[:digit:]]+)', 'g') AS w)
$$;

ALTER TABLE contacts.contacts ADD COLUMN search_words tsvector NOT NULL DEFAULT ''::tsvector,
    ADD COLUMN search_names text[] NOT NULL DEFAULT '{}';

CREATE FUNCTION contacts.contacts_search_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_words := array_to_tsvector(contacts.search_words_of(contacts.contact_search_text(NEW)));
    NEW.search_names := contacts.name_words_of(NEW);
    RETURN NEW;
END $$;
CREATE TRIGGER contacts_search_words BEFORE INSERT OR UPDATE ON contacts.contacts
    FOR EACH ROW EXECUTE FUNCTION contacts.contacts_search_words();

-- The backfill reads and writes every tenant's rows: the owner is let past row-level security for it, as in 004.
ALTER TABLE contacts.contacts NO FORCE ROW LEVEL SECURITY;
UPDATE contacts.contacts SET search_words = array_to_tsvector(contacts.search_words_of(contacts.contact_search_text(contacts))),
    search_names = contacts.name_words_of(contacts);
CREATE INDEX contacts_search ON contacts.contacts USING gin (search_words) WHERE deleted_at IS NULL;

-- The tenant's words (never removed by writes: a word no contact has any more expands to nothing).
CREATE TABLE contacts.search_terms (
    tenant_id text NOT NULL,
    term      text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, term)
);
ALTER TABLE contacts.search_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts.search_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts.search_terms
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE contacts.search_terms NO FORCE ROW LEVEL SECURITY;
INSERT INTO contacts.search_terms (tenant_id, term)
    SELECT DISTINCT tenant_id, w FROM contacts.contacts, unnest(tsvector_to_array(search_words)) AS w ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
ALTER TABLE contacts.search_terms FORCE ROW LEVEL SECURITY;
ALTER TABLE contacts.contacts FORCE ROW LEVEL SECURITY;

-- pg_trgm may already be installed in another schema of this database: its operator class and operator are named
-- through the schema it is in, and the search calls these two inlinable functions. term_resembles is STABLE, as the
-- operator is (it reads pg_trgm.similarity_threshold): declared IMMUTABLE it would not be inlined, and the planner
-- could not use the trigram index for it.
DO $$
DECLARE s text := (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm');
BEGIN
    EXECUTE format('CREATE INDEX search_terms_trigram ON contacts.search_terms USING gin (term %s.gin_trgm_ops)', s);
    EXECUTE format(
        'CREATE FUNCTION contacts.term_resembles(term text, word text) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE '
        'AS $f$ SELECT term OPERATOR(%s.%%) word $f$', s);
    EXECUTE format(
        'CREATE FUNCTION contacts.term_similarity(term text, word text) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE '
        'AS $f$ SELECT %s.similarity(term, word)::float8 $f$', s);
END $$;
