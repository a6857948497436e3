-- Each row an import wrote keeps a digest of the record it was read from (ImportContacts computes it from the record's
-- values), so that a row sent again under the same import id is known to be the same row: a different input (another
-- file, or the rest of a file sent on its own and so numbered from 1 again) is refused instead of its rows being taken
-- for ones already written and skipped. NULL for rows written before: those are not compared.
ALTER TABLE contacts.import_rows ADD COLUMN record_digest bigint;
