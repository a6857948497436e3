#!/usr/bin/env bash
# Writes compose/docker-compose.yml from services/index: PostgreSQL plus one container per service, each built from
# services/Containerfile with its SERVICE argument. Run by scripts/generate.sh (so the test command notices a stale
# file); never edit the output by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
upper() { echo "$1" | tr 'a-z-' 'A-Z_'; }
# The feeds a service follows and the services it calls (services/<name>/feeds: "SETTING=source-service" lines), as the
# source's compose address; for feeds the service signs its own service tokens with the HS256 secret (it retries until
# the source is up).
feeds() {
    [ -f "services/$1/feeds" ] || return 0
    echo "      # The services it calls (services/$1/feeds); feeds with service tokens it signs itself with the secret above."
    while IFS='=' read -r setting source; do
        [[ -z "$setting" || "$setting" == \#* ]] && continue
        printf '      %s: "%s:%s"\n' "$setting" "$source" "${SERVICE_GRPC_PORT[$source]}"
    done < "services/$1/feeds"
}
{
cat <<'HEAD'
# DO NOT EDIT: written by scripts/compose.sh from services/index (`make generate`).
# The Switchboard platform on a machine with a Docker engine: PostgreSQL and every service.
# Every secret must be supplied (exported, or in compose/.env); there are no defaults, so a published one can never
# be in use, and compose refuses to start while one is missing. For example:
#   export POSTGRES_PASSWORD="$(openssl rand -hex 24)" SWITCHBOARD_JWT_HS256_SECRET="$(openssl rand -hex 32)"
#   export CONTACTS_DB_PASSWORD="$(openssl rand -hex 24)"   # and one <SERVICE>_DB_PASSWORD per service below
#   docker compose -f compose/docker-compose.yml up --build
# Then: crmctl token --secret "$SWITCHBOARD_JWT_HS256_SECRET" ... and call a service on its published port.
version: "3.8"

services:
  postgres:
    image: postgres:15-bookworm
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (the database superuser password)}
      POSTGRES_DB: switchboard
HEAD
printf '      SWITCHBOARD_SERVICES: "%s"\n' "${SERVICE_NAMES[*]}"
for name in "${SERVICE_NAMES[@]}"; do
    printf '      %s_DB_PASSWORD: ${%s_DB_PASSWORD:?set %s_DB_PASSWORD (the %s_service role password)}\n' \
        "$(upper "$name")" "$(upper "$name")" "$(upper "$name")" "$name"
done
cat <<'MID'
    volumes:
      - pgdata:/var/lib/postgresql/data
      # Creates each service's role (no superuser, no BYPASSRLS) on first start.
      - ./provision.sh:/docker-entrypoint-initdb.d/10-services.sh:ro
MID
for name in "${SERVICE_NAMES[@]}"; do
    printf '      - ../services/%s/provision.sql:/provision/%s.sql:ro\n' "$name" "$name"
done
cat <<'PG'
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres", "-d", "switchboard"]
      interval: 2s
      retries: 30
PG
for name in "${SERVICE_NAMES[@]}"; do
    grpc=${SERVICE_GRPC_PORT[$name]} admin=${SERVICE_ADMIN_PORT[$name]} up=$(upper "$name") extra=$(feeds "$name") NL=$'\n'
    cat <<SERVICE

  $name:
    build:
      context: ..
      dockerfile: services/Containerfile
      args:
        SERVICE: $name
        GRPC_PORT: "$grpc"
        ADMIN_PORT: "$admin"
    depends_on:
      postgres:
        condition: service_healthy
    environment:
      SWITCHBOARD_GRPC_HOST: 0.0.0.0
      SWITCHBOARD_GRPC_PORT: "$grpc"
      # Inside the container, so the published port below reaches it; published on the host's loopback only.
      SWITCHBOARD_ADMIN_HOST: 0.0.0.0
      SWITCHBOARD_ADMIN_PORT: "$admin"
      SWITCHBOARD_DATABASE_URL: host=postgres port=5432 dbname=switchboard user=${name}_service password=\${${up}_DB_PASSWORD:?set ${up}_DB_PASSWORD (the ${name}_service role password)}
      # Development signing secret (32 bytes or more); in production set a public key or JWKS file instead (the
      # service refuses to start with both).
      SWITCHBOARD_JWT_HS256_SECRET: \${SWITCHBOARD_JWT_HS256_SECRET:?set SWITCHBOARD_JWT_HS256_SECRET (32 or more random bytes, e.g. openssl rand -hex 32)}${extra:+$NL$extra}
    ports:
      - "127.0.0.1:$grpc:$grpc"
      - "127.0.0.1:$admin:$admin"
    stop_grace_period: 30s
SERVICE
done
# The gateway: no database; one address per service it forwards to.
printf '\n  gateway:\n    build:\n      context: ..\n      dockerfile: services/Containerfile\n      args:\n        SERVICE: gateway\n'
printf '        GRPC_PORT: "8080"\n        ADMIN_PORT: "9460"\n    depends_on:\n'
for name in "${SERVICE_NAMES[@]}"; do printf '      - %s\n' "$name"; done
printf '    environment:\n      SWITCHBOARD_GRPC_HOST: 0.0.0.0\n      SWITCHBOARD_GRPC_PORT: "8080"\n'
printf '      SWITCHBOARD_ADMIN_HOST: 0.0.0.0\n      SWITCHBOARD_ADMIN_PORT: "9460"\n'
printf '      SWITCHBOARD_JWT_HS256_SECRET: ${SWITCHBOARD_JWT_HS256_SECRET:?set SWITCHBOARD_JWT_HS256_SECRET (32 or more random bytes, e.g. openssl rand -hex 32)}\n'
for upstream in contacts organization communication collaboration analytics; do
    if [[ -n "${SERVICE_GRPC_PORT[$upstream]:-}" ]]; then target="$upstream:${SERVICE_GRPC_PORT[$upstream]}"; else target=""; fi
    printf '      SWITCHBOARD_GATEWAY_%s_TARGETS: "%s"\n' "$(upper "$upstream")" "$target"
done
printf '    ports:\n      - "127.0.0.1:8080:8080"\n      - "127.0.0.1:9460:9460"\n    stop_grace_period: 30s\n'
cat <<'TAIL'

volumes:
  pgdata:
TAIL
} > compose/docker-compose.yml
