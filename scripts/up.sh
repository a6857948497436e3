#!/usr/bin/env bash
# Starts the Switchboard platform locally: a PostgreSQL cluster the project runs itself (scripts/postgres.sh), every
# service in services/index on its own role and schema, the HTTP/JSON gateway in front of them, and the RPC
# platform's interop server. Stop with
# scripts/down.sh. Ports: each service's defaults, or SWITCHBOARD_<NAME>_PORT / SWITCHBOARD_<NAME>_ADMIN_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
scripts/bootstrap.sh
for product in "${SERVICE_NAMES[@]}" gateway crmctl interop-server; do swift build -c release --static-swift-stdlib --product "$product" >&2; done
BIN="$(swift build -c release --show-bin-path)"
mkdir -p .data/run

# Database: the cluster, the platform database, and each service's role.
ADMIN_URL="$(scripts/postgres.sh start)"
psql "$ADMIN_URL" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'switchboard'" | grep -q 1 \
    || psql "$ADMIN_URL" -qc "CREATE DATABASE switchboard"
DB_ADMIN_URL="${ADMIN_URL/dbname=postgres/dbname=switchboard}"
for name in "${SERVICE_NAMES[@]}"; do
    psql "$DB_ADMIN_URL" -q -v DBNAME=switchboard -f "services/$name/provision.sql" >/dev/null
done

# The project's own cluster has no Kerberos: libpq need not try GSS encryption on every connection.
export PGGSSENCMODE=disable

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

grpc_port() { local v; v="$(service_var "$1")_PORT"; echo "${!v:-${SERVICE_GRPC_PORT[$1]}}"; }
admin_port() { local v; v="$(service_var "$1")_ADMIN_PORT"; echo "${!v:-${SERVICE_ADMIN_PORT[$1]}}"; }
# Where each service finds the feeds it follows and the services it calls (services/<name>/feeds: one "SETTING=service"
# line each); with no token file set, a service signs its own short-lived feed tokens with the development secret.
for name in "${SERVICE_NAMES[@]}"; do
    [ -f "services/$name/feeds" ] || continue
    while IFS='=' read -r setting source; do
        [[ -z "$setting" || "$setting" == \#* ]] && continue
        export "$setting=127.0.0.1:$(grpc_port "$source")"
    done < "services/$name/feeds"
done
for name in "${SERVICE_NAMES[@]}"; do
    SWITCHBOARD_GRPC_PORT="$(grpc_port "$name")" SWITCHBOARD_ADMIN_PORT="$(admin_port "$name")" \
        SWITCHBOARD_DATABASE_URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=switchboard user=${name}_service" \
        start "$name" "$BIN/$name"
done
start interop-server "$BIN/interop-server" --port "${SWITCHBOARD_INTEROP_PORT:-50051}"

# The gateway, in front of every service this list runs (a service not in it has no routes).
GATEWAY_PORT="${SWITCHBOARD_GATEWAY_PORT:-8080}"
GATEWAY_ADMIN_PORT="${SWITCHBOARD_GATEWAY_ADMIN_PORT:-9460}"
for upstream in contacts organization communication collaboration analytics; do
    target=""
    [[ -n "${SERVICE_GRPC_PORT[$upstream]:-}" ]] && target="127.0.0.1:$(grpc_port "$upstream")"
    export "SWITCHBOARD_GATEWAY_${upstream^^}_TARGETS=$target"
done
SWITCHBOARD_GRPC_PORT="$GATEWAY_PORT" SWITCHBOARD_ADMIN_PORT="$GATEWAY_ADMIN_PORT" start gateway "$BIN/gateway"

for name in "${SERVICE_NAMES[@]}"; do
    ready=0
    for _ in $(seq 1 60); do
        if curl -sf "http://127.0.0.1:$(admin_port "$name")/readyz" >/dev/null 2>&1; then ready=1; break; fi
        kill -0 "$(cat ".data/run/$name.pid")" 2>/dev/null || break
        sleep 0.5
    done
    [ "$ready" = 1 ] || { echo "$name did not become ready:" >&2; tail -20 ".data/run/$name.log" >&2; exit 1; }
done
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$GATEWAY_ADMIN_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
curl -sf "http://127.0.0.1:$GATEWAY_ADMIN_PORT/readyz" >/dev/null 2>&1 \
    || { echo "gateway did not become ready:" >&2; tail -20 .data/run/gateway.log >&2; exit 1; }

cat <<MSG
Switchboard is up.
$(for name in "${SERVICE_NAMES[@]}"; do
    printf '  %-15s gRPC 127.0.0.1:%s   admin http://127.0.0.1:%s/metrics /livez /readyz\n' "$name" "$(grpc_port "$name")" "$(admin_port "$name")"
done)
  gateway         HTTP/JSON http://127.0.0.1:$GATEWAY_PORT (OpenAPI: /v1/openapi.json)   admin http://127.0.0.1:$GATEWAY_ADMIN_PORT/metrics
  interop-server  gRPC 127.0.0.1:${SWITCHBOARD_INTEROP_PORT:-50051} (grpc.testing.TestService)
  PostgreSQL      $DB_ADMIN_URL
  logs            .data/run/*.log        stop: scripts/down.sh

Get a token and call contacts:
  export CRMCTL_TOKEN=\$($BIN/crmctl token --tenant demo --user me --roles admin)
  $BIN/crmctl contacts create --given Ada --family Lovelace --email ada@example.com
  $BIN/crmctl contacts list

Or through the gateway with curl:
  curl -s -H "Authorization: Bearer \$CRMCTL_TOKEN" -d '{"name":{"given":"Grace","family":"Hopper"}}' http://127.0.0.1:$GATEWAY_PORT/v1/contacts
  curl -s -H "Authorization: Bearer \$CRMCTL_TOKEN" http://127.0.0.1:$GATEWAY_PORT/v1/contacts/<id>:overview
MSG
