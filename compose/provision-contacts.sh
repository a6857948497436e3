#!/bin/sh
# Runs once, when the postgres container initialises its data: the contacts service's role and its password.
set -e
: "${CONTACTS_DB_PASSWORD:?set CONTACTS_DB_PASSWORD (the contacts_service role password)}"
psql -v ON_ERROR_STOP=1 -U postgres -d switchboard -v DBNAME=switchboard -f /provision/contacts.sql
# The password goes in as a psql variable (:'pw' quotes it), never spliced into the SQL text.
psql -v ON_ERROR_STOP=1 -U postgres -d switchboard -v pw="$CONTACTS_DB_PASSWORD" <<'SQL'
ALTER ROLE contacts_service PASSWORD :'pw';
SQL
