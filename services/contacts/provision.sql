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

-- Search (migration 006) reads two operators through indexes: tsvector @@ tsquery (GIN over contacts' words) and
-- pg_trgm's % (GIN over the tenant's words). Under row-level security the planner uses an index for an operator only
-- when its function is LEAKPROOF (it could otherwise run on other tenants' rows before the policy filters them), and
-- neither is marked so: every search would scan the tables. Both only compare their arguments and raise no error that
-- depends on a row's value, so they are marked LEAKPROOF here. That takes a superuser, which is why it is here and not
-- in a migration; it applies to the whole database. pg_trgm (a trusted extension) is created here too, so that it
-- exists to be marked; the migration uses it wherever it is.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
DO $$
DECLARE s text := (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm');
BEGIN
    EXECUTE format('ALTER FUNCTION %s.similarity_op(text, text) LEAKPROOF', s);
END $$;
