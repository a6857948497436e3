-- LookupContacts by phone: the E.164 forms of a contact's phones (the `e164` of each element of `phones`), indexed so
-- that `jsonb_path_query_array(phones, '$[*].e164') ?| $numbers` is an index search. Emails are looked up through
-- contacts.contact_emails, which already holds every live contact's addresses, lower-cased, by (tenant_id, address).
-- Built in the migration's transaction: on a large table this blocks writes to contacts while it builds.
CREATE INDEX contacts_by_phone ON contacts.contacts USING gin ((jsonb_path_query_array(phones, '$[*].e164')));
