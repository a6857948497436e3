-- contacts.contact_emails reserves a live contact's addresses. Its foreign key to contacts.contacts checked every
-- reservation against a contact row and locked that row (FOR KEY SHARE, a heap write and a WAL record per row): 11 to
-- 21 µs a reservation copied into an empty table, where the insert alone is 9 µs; about 5 % of an import's PostgreSQL
-- CPU (7 of 154 s a million rows). It guarded nothing the service does not already guarantee: no contact row is ever deleted (DeleteContact
-- marks the row and releases its addresses), and every reservation is written in the transaction that writes its
-- contact. The contacts tests check that the reservations are exactly the live contacts'
-- addresses after every kind of write.
ALTER TABLE contacts.contact_emails DROP CONSTRAINT IF EXISTS contact_emails_tenant_id_contact_id_fkey;
