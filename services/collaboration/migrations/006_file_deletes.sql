-- Files are soft-deleted like everything else a user would expect to undo.
ALTER TABLE collaboration.files ADD COLUMN deleted_at timestamptz;
