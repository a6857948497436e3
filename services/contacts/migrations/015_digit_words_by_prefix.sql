-- A query word of digits now matches the contacts' words by prefix in the GIN index of search_words (a tsquery prefix,
-- '555':*), instead of by up to 32 of the tenant's words read from search_terms: those 32 were the first in order, so
-- "555" found the contacts of 32 phone numbers among thousands that begin with it. search_terms keeps words of letters
-- only (the typo and prefix candidates of letter words); nearly all its rows were numbers (3,600,001 of 3,600,395 in
-- the search benchmark), each one written by the contact that brought it, which was 17 % of an import's database time.

-- A candidate term as a tsquery: a term ending in '*' (a word of digits and the mark the search adds) is a prefix.
CREATE FUNCTION contacts.term_query(term text) RETURNS tsquery LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN right(term, 1) = '*' THEN (quote_literal(left(term, -1)) || ':*')::tsquery ELSE quote_literal(term)::tsquery END
$$;

-- The words of digits leave the terms (as the owner: a maintenance delete across tenants, as migration 006 filled
-- the table).
ALTER TABLE contacts.search_terms NO FORCE ROW LEVEL SECURITY;
DELETE FROM contacts.search_terms WHERE term !~ '^[[:alpha:]]';
ALTER TABLE contacts.search_terms FORCE ROW LEVEL SECURITY;
