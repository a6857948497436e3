-- A query of one word ranks its matches exactly, page after page, without reading every match: the best scores come
-- from the name's words (× 1.8 for the first, × 1.5 elsewhere in the name), and these indexes list the contacts that
-- hold a word there in id order, so a page of the best is an index range that stops at the page's size. Before, such a
-- query read a sample of 2,000 matches through the GIN index of search_words, which builds a bitmap of every contact
-- holding the word first ("marc": 30,000 contacts, 12 ms) and ranked only that sample.
--
-- The first name word, the second, and the rest less those two (a display name usually repeats the given and family
-- names: the rest is then empty, and this partial GIN index stays small). The expressions are the search's own, word
-- for word (PostgresContactStore+Search).
CREATE INDEX contacts_name_first ON contacts.contacts (tenant_id, (search_names[1]), id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_name_second ON contacts.contacts (tenant_id, (search_names[2]), id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_name_rest ON contacts.contacts
    USING gin ((array_remove(array_remove(search_names[3:], search_names[1]), search_names[2])))
    WHERE deleted_at IS NULL AND cardinality(search_names) > 2;
