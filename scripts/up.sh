#!/usr/bin/env bash
# Starts the Switchboard platform locally: a PostgreSQL cluster the project runs itself (scripts/postgres.sh), the
# contacts service on its own role and schema, and the RPC platform's interop server. Stop with scripts/down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
for product in contacts crmctl interop-server; do swift build -c release --product "$product" >&2; done
BIN="$(swift build -c release --show-bin-path)"
mkdir -p .data/run

# Database: the cluster, the platform database, and each service's role.
ADMIN_URL="$(scripts/postgres.sh start)"
psql "$ADMIN_URL" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'switchboard'" | grep -q 1 \
    || psql "$ADMIN_URL" -qc "CREATE DATABASE switchboard"
DB_ADMIN_URL="${ADMIN_URL/dbname=postgres/dbname=switchboard}"
psql "$DB_ADMIN_URL" -q -v DBNAME=switchboard -f services/contacts/provision.sql >/dev/null

# A development signing secret, made once and kept in .data/ (never committed).
[ -s .data/dev-jwt-secret ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .data/dev-jwt-secret
export SWITCHBOARD_JWT_HS256_SECRET="$(cat .data/dev-jwt-secret)"

start() { # start <name> <command...>
    local name=$1; shift
    if [ -f ".data/run/$name.pid" ] && kill -0 "$(cat ".data/run/$name.pid")" 2>/dev/null; then
        echo "$name already running (pid $(cat ".data/run/$name.pid"))"
        return
    fi
    nohup "$@" > ".data/run/$name.log" 2>&1 &
    echo $! > ".data/run/$name.pid"
}

SWITCHBOARD_GRPC_PORT="${SWITCHBOARD_CONTACTS_PORT:-50061}" SWITCHBOARD_ADMIN_PORT="${SWITCHBOARD_CONTACTS_ADMIN_PORT:-9461}" \
    SWITCHBOARD_DATABASE_URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=switchboard user=contacts_service" \
    start contacts "$BIN/contacts"
start interop-server "$BIN/interop-server" --port "${SWITCHBOARD_INTEROP_PORT:-50051}"

for _ in $(seq 1 60); do
    curl -sf "http://127.0.0.1:${SWITCHBOARD_CONTACTS_ADMIN_PORT:-9461}/readyz" >/dev/null 2>&1 && break
    kill -0 "$(cat .data/run/contacts.pid)" 2>/dev/null || { tail -20 .data/run/contacts.log; exit 1; }
    sleep 0.5
done
curl -sf "http://127.0.0.1:${SWITCHBOARD_CONTACTS_ADMIN_PORT:-9461}/readyz" >/dev/null || { tail -20 .data/run/contacts.log; exit 1; }

cat <<MSG
Switchboard is up.
  contacts        switchboard.contacts.v1.ContactsService  127.0.0.1:${SWITCHBOARD_CONTACTS_PORT:-50061}
                  admin: http://127.0.0.1:${SWITCHBOARD_CONTACTS_ADMIN_PORT:-9461}/metrics  /livez  /readyz
  interop-server  grpc.testing.TestService                 127.0.0.1:${SWITCHBOARD_INTEROP_PORT:-50051}
  PostgreSQL      $DB_ADMIN_URL
  logs            .data/run/*.log        stop: scripts/down.sh

Get a token and call contacts:
  export CRMCTL_TOKEN=\$($BIN/crmctl token --tenant demo --user me --roles admin)
  $BIN/crmctl contacts create --given Ada --family Lovelace --email ada@example.com
  $BIN/crmctl contacts list
MSG
