-- Run once per database by an administrator (scripts/up.sh does it locally): the organization service's own role.
-- It may create its schema and owns what it creates, but it is no superuser and cannot bypass row-level security.
-- psql -v password=... -f services/organization/provision.sql
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'organization_service') THEN
        CREATE ROLE organization_service LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$;
ALTER ROLE organization_service NOSUPERUSER NOBYPASSRLS;
GRANT CREATE, CONNECT ON DATABASE :"DBNAME" TO organization_service;
