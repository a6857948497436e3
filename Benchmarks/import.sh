#!/usr/bin/env bash
# ImportContacts of 1,000,000 generated CSV rows through `crmctl contacts import` (gRPC over HTTP/2, JWT auth, RLS;
# every row parsed, mapped, validated, written with its CREATED change event, search words and import ledger row),
# side by side with psql's \copy of the same file into a plain table (no indexes, no triggers, no RLS) in the same
# database. Rounds interleaved (import, copy, import, copy, …); each import goes to a fresh database, so every round
# starts from the same empty state.
#   Benchmarks/import.sh     (BENCH_ROWS=1000000, BENCH_ROUNDS=3, BENCH_BATCH_ROWS=1000)
# BENCH_SECOND_BIN (the contacts binary of an earlier commit) imports the same file into its own fresh database in each
# round too, named BENCH_SECOND_NAME (default import-before): an A/B on the same machine at the same hour.
# BENCH_SECOND_ENV adds settings to the second import's service (e.g. "SWITCHBOARD_CONTACTS_IMPORT_BATCH_ROWS=2000");
# without BENCH_SECOND_BIN it is the same binary.
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
ROWS="${BENCH_ROWS:-1000000}"
ROUNDS="${BENCH_ROUNDS:-3}"
BATCH_ROWS="${BENCH_BATCH_ROWS:-1000}"
read -r -a SECOND_ENV <<<"${BENCH_SECOND_ENV:-}"
PORT=50077
WORK="$(mktemp -d)"
SVC_PID=
trap '[ -n "$SVC_PID" ] && kill $SVC_PID 2>/dev/null; rm -rf "$WORK"' EXIT

swift build -c release --static-swift-stdlib --product contacts >&2
swift build -c release --static-swift-stdlib --product crmctl >&2
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
SECRET=bench-secret-0123456789abcdef0123456789

# The file: unique addresses, phone numbers, names from short lists, two tags, a status. About 100 bytes a row.
python3 Benchmarks/import_rows.py "$WORK/contacts.csv" "$ROWS"
BYTES=$(stat -c %s "$WORK/contacts.csv")
echo "file: $ROWS rows, $BYTES bytes" >&2

fresh_db() { # fresh_db <name>: an empty, provisioned, migrated database
    psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $1" >/dev/null
    psql "$ADMIN" -qc "CREATE DATABASE $1" >/dev/null
    psql "${ADMIN/dbname=postgres/dbname=$1}" -q -v DBNAME="$1" -f services/contacts/provision.sql >/dev/null
}
DB=switchboard_bench_import
SERVICE_URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=contacts_service"
TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant bench --user bench --roles user --ttl 86400)"

cpu_ticks() { # utime+stime of a process and its children, in clock ticks
    awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"
}
pg_ticks() { # utime+stime of every postgres process
    local total=0 pid
    for pid in $(pgrep -u postgres postgres); do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
    echo $total
}

run_import() { # run_import [name] [contacts binary] [VAR=value ...]
    local name="${1:-import}" contacts="${2:-$BIN/contacts}"
    shift $(($# < 2 ? $# : 2))
    fresh_db $DB
    SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$contacts" migrate >/dev/null
    SWITCHBOARD_GRPC_PORT=$PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_DB_POOL_SIZE=8 \
        SWITCHBOARD_CONTACTS_IMPORT_BATCH_ROWS=$BATCH_ROWS SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=warning \
        env "$@" "$contacts" >"$WORK/service.log" 2>&1 &
    SVC_PID=$!
    sleep 2
    local svc0 pg0 start end svc1 pg1
    svc0=$(cpu_ticks $SVC_PID); pg0=$(pg_ticks)
    start=$(date +%s.%N)
    "$BIN/crmctl" contacts import "$WORK/contacts.csv" --server 127.0.0.1:$PORT --token "$TOKEN" --show-problems 5 >"$WORK/import.out" 2>"$WORK/import.err"
    end=$(date +%s.%N)
    svc1=$(cpu_ticks $SVC_PID); pg1=$(pg_ticks)
    kill $SVC_PID; wait $SVC_PID 2>/dev/null || true; SVC_PID=
    cat "$WORK/import.out" >&2
    local created
    created=$(psql "${ADMIN/dbname=postgres/dbname=$DB}" -qtAc "SELECT count(*) FROM contacts.contacts")
    [ "$created" -eq "$ROWS" ] || { echo "import stored $created contacts, expected $ROWS" >&2; tail -5 "$WORK/import.err" >&2; exit 1; }
    python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'RESULT {sys.argv[6]} seconds={s:.1f} rows_per_s={int(sys.argv[3])/s:.0f} service_cpu_s={int(sys.argv[4])/100:.1f} postgres_cpu_s={int(sys.argv[5])/100:.1f}')" \
        "$start" "$end" "$ROWS" $((svc1 - svc0)) $((pg1 - pg0)) "$name"
}

run_copy() {
    local url="${ADMIN/dbname=postgres/dbname=$DB}"
    psql "$url" -qc "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (given text, family text, emails text, phones text, tags text, status text)"
    local pg0 start end pg1
    pg0=$(pg_ticks)
    start=$(date +%s.%N)
    psql "$url" -qc "\\copy bench_copy FROM '$WORK/contacts.csv' WITH (FORMAT csv, HEADER true)"
    end=$(date +%s.%N)
    pg1=$(pg_ticks)
    python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'RESULT copy seconds={s:.2f} rows_per_s={int(sys.argv[3])/s:.0f} service_cpu_s=0 postgres_cpu_s={int(sys.argv[4])/100:.1f}')" \
        "$start" "$end" "$ROWS" $((pg1 - pg0))
}

# What the contacts table itself costs, whatever writes to it: the same rows INSERTed from bench_copy straight into
# contacts.contacts as the administrator (its search-words trigger and eight indexes; no RLS, no change events, no
# search terms, no address reservations, no ledger, no service).
run_floor() {
    local url="${ADMIN/dbname=postgres/dbname=$DB}"
    local pg0 start end pg1
    pg0=$(pg_ticks)
    start=$(date +%s.%N)
    psql "$url" -qc "INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, emails, phones, contact_type, status, tags,
            owner_id, custom_fields, created_at, created_by, updated_at, updated_by)
        SELECT 'floor', gen_random_uuid(), given, family, jsonb_build_array(jsonb_build_object('address', emails, 'label', '', 'primary', true)),
            jsonb_build_array(jsonb_build_object('number', phones, 'label', '', 'primary', true, 'e164', '+' || regexp_replace(phones, '[^0-9]', '', 'g'))),
            1, 1, string_to_array(replace(tags, ' ', ''), ';'), 'bench', '{}', now(), 'bench', now(), 'bench'
        FROM bench_copy"
    end=$(date +%s.%N)
    pg1=$(pg_ticks)
    python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'RESULT table-insert seconds={s:.1f} rows_per_s={int(sys.argv[3])/s:.0f} service_cpu_s=0 postgres_cpu_s={int(sys.argv[4])/100:.1f}')" \
        "$start" "$end" "$ROWS" $((pg1 - pg0))
}

RESULTS="$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    run_import | tee -a "$RESULTS"
    if [ -n "${BENCH_SECOND_BIN:-}" ] || [ ${#SECOND_ENV[@]} -gt 0 ]; then
        run_import "${BENCH_SECOND_NAME:-import-before}" "${BENCH_SECOND_BIN:-$BIN/contacts}" "${SECOND_ENV[@]}" | tee -a "$RESULTS"
    fi
    run_copy | tee -a "$RESULTS"
    run_floor | tee -a "$RESULTS"
done
python3 - "$RESULTS" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    rows[parts[1]].append({k: float(v) for k, v in (p.split("=") for p in parts[2:])})
print("\nSUMMARY (median [min-max] over the rounds)")
for name, rounds in rows.items():
    print(name, " ".join(f"{f}={statistics.median(r[f] for r in rounds):g}[{min(r[f] for r in rounds):g}-{max(r[f] for r in rounds):g}]" for f in rounds[0]))
imp, cp = rows["import"], rows["copy"]
paired = [i["seconds"] / c["seconds"] for i, c in zip(imp, cp)]
print(f"import/copy time: {statistics.median(r['seconds'] for r in imp) / statistics.median(r['seconds'] for r in cp):.1f}x of medians; paired "
      + " ".join(f"{p:.1f}" for p in paired))
PY
