-- Which of a contact's addresses of a kind a campaign writes to: its primary one, then the others in the contact's
-- order (the directory's rank, from the contacts feed). Rows from before this migration rank 0, so until the contact
-- next changes they are taken in address order, as before.
ALTER TABLE communication.contact_addresses ADD COLUMN rank integer NOT NULL DEFAULT 0;
