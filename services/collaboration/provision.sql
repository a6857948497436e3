-- Run once per database by an administrator (scripts/up.sh does it locally): the collaboration service's own role.
-- It may create its schema and owns what it creates, but it is no superuser and cannot bypass row-level security.
-- psql -v password=... -f services/collaboration/provision.sql
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'collaboration_service') THEN
        CREATE ROLE collaboration_service LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$;
ALTER ROLE collaboration_service NOSUPERUSER NOBYPASSRLS;
GRANT CREATE, CONNECT ON DATABASE :"DBNAME" TO collaboration_service;
