#!/bin/sh
# Runs once, when the postgres container initialises its data: the contacts service's role and its password.
set -e
psql -v ON_ERROR_STOP=1 -U postgres -d switchboard -v DBNAME=switchboard -f /provision/contacts.sql
psql -v ON_ERROR_STOP=1 -U postgres -d switchboard -c "ALTER ROLE contacts_service PASSWORD '${CONTACTS_DB_PASSWORD:-contacts-dev}'"
