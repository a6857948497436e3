#!/usr/bin/env bash
# Where an import's PostgreSQL time goes, two ways (BENCHMARKS.md, "Contacts import"):
#   Benchmarks/import-costs.sh statements [contacts binary ...]
#     imports BENCH_ROWS (default 100,000) generated rows (import.sh's rows) into a fresh database once per binary given
#     (default: this checkout's release build), with every statement of the service's role logged, and prints the summed
#     durations per statement (the contacts insert, the change events, the address reservations, the ledger, the
#     terms, commits) and phase (parse, bind, execute). Binaries alternate if given twice: an A/B of PostgreSQL's share.
#   Benchmarks/import-costs.sh indexes
#     after a `statements` run (it reads that database's contacts), inserts 100,000 of them in one statement into an
#     empty copy of contacts.contacts preloaded with the rest (up to 300,000 rows: BENCH_ROWS=400000 for the figures in
#     BENCHMARKS.md), once with no index and once with each index of the table alone, and prints what each index adds.
set -Eeuo pipefail
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
MODE="${1:-statements}"
shift || true
ROWS="${BENCH_ROWS:-100000}"
PORT=50078
DB=switchboard_bench_import_costs
ADMIN="$(scripts/postgres.sh start)"
DBURL="${ADMIN/dbname=postgres/dbname=$DB}"
# The server log scripts/postgres.sh writes.
LOG="${SWITCHBOARD_PG_DIR:-/tmp/switchboard-pg-$(id -u)-${SWITCHBOARD_PG_PORT:-54329}}/postgres.log"
WORK="$(mktemp -d)"
SVC_PID=
trap '[ -n "$SVC_PID" ] && kill $SVC_PID 2>/dev/null; rm -rf "$WORK"' EXIT

statements() {
    swift build -c release --static-swift-stdlib --product contacts >&2
    swift build -c release --static-swift-stdlib --product crmctl >&2
    local bin
    bin="$(swift build -c release --show-bin-path)"
    [ $# -gt 0 ] || set -- "$bin/contacts"
    [ -f "$LOG" ] || { echo "no server log at $LOG" >&2; exit 1; }
    python3 Benchmarks/import_rows.py "$WORK/contacts.csv" "$ROWS"
    local secret=bench-secret-0123456789abcdef0123456789 url="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=contacts_service"
    local token contacts first
    token="$("$bin/crmctl" token --secret $secret --tenant bench --user bench --roles user --ttl 86400)"
    for contacts in "$@"; do
        psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
        psql "$DBURL" -q -v DBNAME=$DB -f services/contacts/provision.sql >/dev/null
        SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$url" SWITCHBOARD_JWT_HS256_SECRET=$secret "$contacts" migrate >/dev/null
        psql "$DBURL" -qc "ALTER ROLE contacts_service IN DATABASE $DB SET log_min_duration_statement = 0"
        SWITCHBOARD_GRPC_PORT=$PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$url" SWITCHBOARD_DB_POOL_SIZE=8 \
            SWITCHBOARD_JWT_HS256_SECRET=$secret SWITCHBOARD_LOG_LEVEL=warning "$contacts" >"$WORK/service.log" 2>&1 &
        SVC_PID=$!
        sleep 2
        first=$(($(wc -l <"$LOG") + 1))
        "$bin/crmctl" contacts import "$WORK/contacts.csv" --server 127.0.0.1:$PORT --token "$token" >"$WORK/import.out" 2>&1
        kill $SVC_PID; wait $SVC_PID 2>/dev/null || true; SVC_PID=
        psql "$DBURL" -qc "ALTER ROLE contacts_service IN DATABASE $DB RESET log_min_duration_statement"
        echo "== $contacts: $(tail -1 "$WORK/import.out")"
        tail -n +"$first" "$LOG" | python3 -c '
import collections, re, sys
kinds = [("contacts insert", "INSERT INTO contacts.contacts"), ("change events", "WITH s AS ("), ("reservations", "contact_emails"),
         ("ledger", "import_rows"), ("terms", "search_terms"), ("commit", "COMMIT")]
total = collections.Counter()
for line in sys.stdin:
    m = re.search(r"duration: ([0-9.]+) ms  (parse|bind|execute) [^:]*: (.*)", line)
    if m:
        kind = next((k for k, p in kinds if p in m.group(3)), "other")
        total[(kind, m.group(2))] += float(m.group(1))
for kind in [k for k, _ in kinds] + ["other"]:
    parts = {p: total[(kind, p)] / 1000 for p in ("parse", "bind", "execute")}
    bind, execute = parts["bind"], parts["execute"]
    print(f"{kind:16s} {sum(parts.values()):7.2f} s  (bind {bind:.2f}, execute {execute:.2f})")
print("all             ", f"{sum(total.values()) / 1000:7.2f} s")
'
    done
}

indexes() {
    local n
    n=$(psql "$DBURL" -qtAc "SELECT count(*) FROM contacts.contacts")
    [ "$n" -ge 100000 ] || { echo "run '$0 statements' with BENCH_ROWS >= 100000 first ($n contacts in $DB)" >&2; exit 1; }
    psql "$DBURL" -qAtc "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'contacts.contacts'::regclass ORDER BY indexrelid" \
        | sed -E 's/CREATE (UNIQUE )?INDEX [a-z_]+ ON contacts.contacts/CREATE \1INDEX ON t/' >"$WORK/indexes"
    echo "" >>"$WORK/indexes"
    psql "$DBURL" -qc "DROP TABLE IF EXISTS public.bench_src; CREATE UNLOGGED TABLE public.bench_src AS SELECT * FROM contacts.contacts ORDER BY id LIMIT 100000"
    local def ms base=""
    while IFS= read -r def; do
        ms=$(psql "$DBURL" -q 2>&1 <<SQL | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | tail -1
DROP TABLE IF EXISTS public.t;
CREATE TABLE public.t (LIKE contacts.contacts INCLUDING DEFAULTS);
INSERT INTO public.t SELECT * FROM contacts.contacts ORDER BY id OFFSET 100000 LIMIT 300000;
${def:-SELECT 1};
CHECKPOINT;
\\timing on
INSERT INTO public.t SELECT * FROM public.bench_src;
SQL
        )
        if [ -z "$def" ]; then base=$ms; echo "no index: $ms ms"; else echo "$ms ms: ${def#CREATE }"; fi
    done < <(tail -1 "$WORK/indexes"; head -n -1 "$WORK/indexes")
    psql "$DBURL" -qc "DROP TABLE IF EXISTS public.t, public.bench_src"
    echo "(each index's cost is its time minus the first line's)"
}

case "$MODE" in
statements) statements "$@" ;;
indexes) indexes ;;
*) echo "usage: $0 statements [contacts binary ...] | indexes" >&2; exit 2 ;;
esac
