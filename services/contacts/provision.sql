-- Run once per database by an administrator (scripts/up.sh does it locally): the contacts service's own role.
-- It may create its schema and owns what it creates, but it is no superuser and cannot bypass row-level security.
-- psql -v password=... -f services/contacts/provision.sql
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'contacts_service') THEN
        CREATE ROLE contacts_service LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$;
ALTER ROLE contacts_service NOSUPERUSER NOBYPASSRLS;
GRANT CREATE, CONNECT ON DATABASE :"DBNAME" TO contacts_service;


-- Row-level security and indexes: PostgreSQL uses an index for an operator under a row-level security policy only when
-- the operator's function is LEAKPROOF (otherwise it could run on other tenants' rows before the policy filters them),
-- and these are not marked so by default: every query on them would scan the table. They only compare their
-- arguments and raise no error that depends on a row's value, so they are marked LEAKPROOF here (a superuser's act,
-- hence here and not in a migration; it applies to the whole database):
-- tsvector @@ tsquery (search), text[] @> text[] (tags), text[] && text[] (LookupContacts by phone) and pg_trgm's %
-- (search's typo candidates). pg_trgm (a trusted extension) is created here so that it exists to be marked; migration
-- 006 uses it wherever it is.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
ALTER FUNCTION pg_catalog.arraycontains(anyarray, anyarray) LEAKPROOF;
ALTER FUNCTION pg_catalog.arrayoverlap(anyarray, anyarray) LEAKPROOF;
-- array_remove is in the expression of the index on a contact's name words past the first two (migration 016); its one
-- error (a multidimensional array) cannot happen on search_names, which is always one-dimensional.
ALTER FUNCTION pg_catalog.array_remove(anycompatiblearray, anycompatible) LEAKPROOF;
DO $$
DECLARE s text := (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm');
BEGIN
    EXECUTE format('ALTER FUNCTION %s.similarity_op(text, text) LEAKPROOF', s);
END $$;
