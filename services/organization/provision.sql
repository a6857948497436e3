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

-- Row-level security and indexes: PostgreSQL uses an index for an operator under a row-level security policy only when
-- the operator's function is LEAKPROOF (otherwise it could run on other tenants' rows before the policy filters them),
-- and these are not marked so by default: every query on them would scan the table. They only compare their
-- arguments and raise no error that depends on a row's value, so they are marked LEAKPROOF here (a superuser's act,
-- hence here and not in a migration; it applies to the whole database):
-- text[] @> text[] (tags, domains, roles).
ALTER FUNCTION pg_catalog.arraycontains(anyarray, anyarray) LEAKPROOF;
ALTER FUNCTION pg_catalog.arrayoverlap(anyarray, anyarray) LEAKPROOF;
