#!/bin/sh
# Runs once, when the postgres container initialises its data: each service's role (SWITCHBOARD_SERVICES lists them)
# and its password (<SERVICE>_DB_PASSWORD).
set -e
: "${SWITCHBOARD_SERVICES:?set SWITCHBOARD_SERVICES (the services to provision)}"
for service in $SWITCHBOARD_SERVICES; do
    variable="$(echo "$service" | tr 'a-z-' 'A-Z_')_DB_PASSWORD"
    password="$(printenv "$variable" || true)"
    [ -n "$password" ] || { echo "set $variable (the ${service}_service role password)" >&2; exit 1; }
    psql -v ON_ERROR_STOP=1 -U postgres -d switchboard -v DBNAME=switchboard -f "/provision/$service.sql"
    # The password goes in as a psql variable (:'pw' quotes it), never spliced into the SQL text.
    psql -v ON_ERROR_STOP=1 -U postgres -d switchboard -v pw="$password" -v role="${service}_service" <<'SQL'
ALTER ROLE :"role" PASSWORD :'pw';
SQL
done
