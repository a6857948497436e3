-- Run once per database by an administrator (scripts/up.sh does it locally): the analytics service's own role.
-- It may create its schema and owns what it creates, but it is no superuser and cannot bypass row-level security.
-- psql -v password=... -f services/analytics/provision.sql
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analytics_service') THEN
        CREATE ROLE analytics_service LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$;
ALTER ROLE analytics_service NOSUPERUSER NOBYPASSRLS;
GRANT CREATE, CONNECT ON DATABASE :"DBNAME" TO analytics_service;

-- Row-level security and indexes: PostgreSQL uses an index for an operator under a row-level security policy only when
-- the operator's function is LEAKPROOF (otherwise it could run on other tenants' rows before the policy filters them).
-- anyarray @> anyarray (activities of a contact or organization, on their GIN indexes) and anyarray && anyarray (a report
-- page's activities, one lookup for all its contacts) only compare their arguments and raise no error that depends on a
-- row's value, so they are marked LEAKPROOF here (a superuser's act, hence here and not in a migration; it applies to
-- the whole database, as contacts' provision.sql also does). Without the second, a report page scans every activity of
-- the tenant: re-run this file when upgrading.
ALTER FUNCTION pg_catalog.arraycontains(anyarray, anyarray) LEAKPROOF;
ALTER FUNCTION pg_catalog.arrayoverlap(anyarray, anyarray) LEAKPROOF;
