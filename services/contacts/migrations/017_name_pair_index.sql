-- A query of two words, the usual "first last", ranks its best page from the contacts whose first two name words are
-- candidates of its two words (a pair scores the most a contact can: × 1.8 each), listed in id order by this index:
-- when those fill the page with scores above what any other contact can reach, the page needs no other match. Before,
-- every match was read and scored ("jon smth": 667 contacts through the GIN index, 2.2 ms for the scan alone).
CREATE INDEX contacts_name_pair ON contacts.contacts (tenant_id, (search_names[1]), (search_names[2]), id) WHERE deleted_at IS NULL;
