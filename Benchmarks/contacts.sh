#!/usr/bin/env bash
# GetContact and CreateContact through the contacts service (h2load, gRPC over HTTP/2, JWT auth, RLS) side by side
# with pgbench running the same SQL on the same database with 1,000,000 contacts; plus the service's idle RSS.
#   Benchmarks/contacts.sh     (BENCH_SECONDS=10 per run, BENCH_ROUNDS=3 → A B C A B C ..., BENCH_OPS="get create")
# Two service processes run: "service" with the defaults (event loops: one per core less one — one here) and
# "service-2loops" with SWITCHBOARD_EVENT_LOOP_THREADS=2 (one per core, NIO's usual choice) for comparison. Both use
# 8 pooled connections and the default pipeline depth.
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
OPS="${BENCH_OPS:-get create}"
PORT=50071
WORK="$(mktemp -d)"
trap 'kill $SVC_PID $SVC1_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

swift build -c release --static-swift-stdlib --product contacts >&2
swift build -c release --static-swift-stdlib --product crmctl >&2
BIN="$(swift build -c release --show-bin-path)"
# The second process: by default the same binary with two event loops; BENCH_SECOND_BIN (e.g. the contacts binary of
# an earlier commit), BENCH_SECOND_LOOPS (0: the default) and BENCH_SECOND_NAME make it an A/B regression check;
# BENCH_SECOND_ENV adds settings to it (e.g. "SWITCHBOARD_DB_COALESCED_KEYS=1" measures reads without coalescing).
SECOND_BIN="${BENCH_SECOND_BIN:-$BIN/contacts}"
SECOND_LOOPS="${BENCH_SECOND_LOOPS:-2}"
SECOND="${BENCH_SECOND_NAME:-service-2loops}"
read -r -a SECOND_ENV <<<"${BENCH_SECOND_ENV:-}"
ADMIN="$(scripts/postgres.sh start)"
DB=switchboard_bench
psql "$ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 || psql "$ADMIN" -qc "CREATE DATABASE $DB"
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
psql "$DBADMIN" -q -v DBNAME=$DB -f services/contacts/provision.sql >/dev/null
SERVICE_URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=contacts_service"
SECRET=bench-secret-0123456789abcdef0123456789
SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN/contacts" migrate >/dev/null

# 1,000,000 contacts for tenant "bench" (loaded as the administrator: COPY and bulk INSERT sidestep RLS).
COUNT="$(psql "$DBADMIN" -qtAc "SELECT count(*) FROM contacts.contacts WHERE tenant_id = 'bench'")"
if [ "$COUNT" -lt 1000000 ]; then
    echo "loading 1,000,000 contacts..." >&2
    psql "$DBADMIN" -qc "
        INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, emails, contact_type, status, tags, owner_id,
            created_at, created_by, updated_at, updated_by)
        SELECT 'bench', gen_random_uuid(), 'Given' || g, 'Family' || g, jsonb_build_array(jsonb_build_object('address',
            'c' || g || '@example.com', 'label', '', 'primary', true)), 1, 1 + g % 4, ARRAY['t' || g % 100], 'owner' || g % 50,
            now() - (g || ' seconds')::interval, 'loader', now(), 'loader'
        FROM generate_series(1, 1000000 - $COUNT) g;
        ANALYZE contacts.contacts;"
fi
ID="$(psql "$DBADMIN" -qtAc "SELECT id FROM contacts.contacts WHERE tenant_id = 'bench' ORDER BY id LIMIT 1 OFFSET 500000")"

SWITCHBOARD_GRPC_PORT=$PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_DB_POOL_SIZE=8 \
    SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=warning "$BIN/contacts" >"$WORK/service.log" 2>&1 &
SVC_PID=$!
SWITCHBOARD_GRPC_PORT=$((PORT + 1)) SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_DB_POOL_SIZE=8 \
    SWITCHBOARD_EVENT_LOOP_THREADS=$SECOND_LOOPS SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=warning env "${SECOND_ENV[@]}" \
    "$SECOND_BIN" >"$WORK/second.log" 2>&1 &
SVC1_PID=$!
sleep 3
RSS_KB="$(ps -o rss= -p $SVC_PID | tr -d ' ')"
TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant bench --user bench --roles user --ttl 86400)"

python3 - "$WORK" "$ID" <<'PY'
import struct, sys
work, cid = sys.argv[1], sys.argv[2]
def frame(msg): return b"\x00" + struct.pack(">I", len(msg)) + msg
def field(n, payload): return bytes([n << 3 | 2, len(payload)]) + payload
open(f"{work}/get.bin", "wb").write(frame(field(1, cid.encode())))
name = field(1, b"Bench") + field(2, b"Create")
open(f"{work}/create.bin", "wb").write(frame(field(1, field(2, name))))
PY

cat > "$WORK/get.sql" <<SQL
BEGIN;
SELECT set_config('app.tenant_id', 'bench', true);
SELECT id, given_name, family_name, middle_name, name_prefix, name_suffix, display_name, emails::text, phones::text,
    addresses::text, contact_type, status, tags, owner_id, custom_fields::text, version, created_at, created_by,
    updated_at, updated_by, deleted_at FROM contacts.contacts WHERE tenant_id = 'bench' AND id = '$ID';
COMMIT;
SQL
cat > "$WORK/create.sql" <<'SQL'
BEGIN;
SELECT set_config('app.tenant_id', 'bench', true);
SELECT definition FROM (SELECT key AS definition FROM contacts.field_definitions WHERE tenant_id = 'bench') d;
INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, contact_type, status, owner_id, created_at,
    created_by, updated_at, updated_by) VALUES ('bench', gen_random_uuid(), 'Bench', 'Create', 1, 1, 'bench', now(),
    'bench', now(), 'bench') RETURNING id \gset
INSERT INTO contacts.search_terms (tenant_id, term)
    SELECT DISTINCT 'bench', w FROM contacts.contacts, unnest(tsvector_to_array(search_words)) AS w
    WHERE tenant_id = 'bench' AND id = :id ORDER BY 2 ON CONFLICT DO NOTHING;
INSERT INTO contacts.change_sequences (tenant_id, last_sequence) VALUES ('bench', 1)
    ON CONFLICT (tenant_id) DO UPDATE SET last_sequence = contacts.change_sequences.last_sequence + 1 RETURNING last_sequence;
INSERT INTO contacts.changes (tenant_id, sequence, resource_type, resource_id, kind, resource, actor_id)
    SELECT 'bench', last_sequence, 'switchboard.contacts.v1.Contact', 'x', 1, '{}', 'bench'
    FROM contacts.change_sequences WHERE tenant_id = 'bench';
SELECT pg_notify('contacts_changes', 'bench');
COMMIT;
SQL

METHOD_PATH=/switchboard.contacts.v1.ContactsService
H2=(-c 8 -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN")
# h2load counts gRPC errors as successes: check one call of each answers grpc-status 0.
for rpc in GetContact:get CreateContact:create; do
    out="$(nghttp -v --data="$WORK/${rpc#*:}.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$METHOD_PATH/${rpc%%:*}" 2>&1)"
    echo "$out" | grep -q "grpc-status: 0" || { echo "${rpc%%:*} failed:"; echo "$out" | tail -5; exit 1; } >&2
done

# Counters read around every run, so a regression in wake-ups or CPU shows up as a number: the machine's context
# switches and CPU time (user + system + irq, without `nice`: a niced background job does not count) per call, and
# the service process's own (all its threads).
sys_counters() { awk '/^ctxt/ {c = $2} /^cpu / {t = $2 + $4 + $7 + $8} END {print c, t}' /proc/stat; }
proc_counters() { # <pid>: context switches (every thread) and CPU ticks
    local cs
    cs="$(cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}')"
    echo "$cs $(awk '{print $14 + $15}' /proc/"$1"/stat)"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

run_h2() { # run_h2 <name> <rpc> <body> <pid> [port]
    rm -f "$WORK/log"
    local out before after pbefore pafter
    before="$(sys_counters)"
    pbefore="$(proc_counters "$4")"
    out="$(h2load -D "$SECONDS_PER_RUN" "${H2[@]}" --data="$WORK/$3.bin" --log-file="$WORK/log" "http://127.0.0.1:${5:-$PORT}$METHOD_PATH/$2")"
    after="$(sys_counters)"
    pafter="$(proc_counters "$4")"
    python3 - "$1" "$WORK/log" "$SECONDS_PER_RUN" "$out" "$before" "$after" "$pbefore" "$pafter" "$TICK_US" <<'PY'
import sys, re
name, log, secs, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
(c0, t0), (c1, t1), (pc0, pt0), (pc1, pt1) = (map(int, a.split()) for a in sys.argv[5:9])
tick = int(sys.argv[9])
ok = int(re.search(r"(\d+) succeeded", out).group(1))
d = sorted(int(l.split()[2]) for l in open(log) if l.strip())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0
n = max(ok, 1)
print(f"RESULT {name} tps={ok / secs:.0f} p50_ms={p(0.5):.3f} p99_ms={p(0.99):.3f} cs_per_call={(c1 - c0) / n:.2f}"
      f" cpu_us_per_call={(t1 - t0) * tick / n:.1f} service_cs_per_call={(pc1 - pc0) / n:.2f}"
      f" service_cpu_us_per_call={(pt1 - pt0) * tick / n:.1f}")
PY
}

run_pgbench() { # run_pgbench <name> <script>
    local before after
    rm -rf "$WORK/pglog" && mkdir "$WORK/pglog"
    before="$(sys_counters)"
    (cd "$WORK/pglog" && pgbench -n -c 8 -j 2 -T "$SECONDS_PER_RUN" -M prepared -l -f "$WORK/$2.sql" "$SERVICE_URL" >/dev/null 2>&1)
    after="$(sys_counters)"
    python3 - "$1" "$WORK/pglog" "$SECONDS_PER_RUN" "$before" "$after" "$TICK_US" <<'PY'
import sys, os
name, logs, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
(c0, t0), (c1, t1) = (map(int, a.split()) for a in sys.argv[4:6])
tick = int(sys.argv[6])
# pgbench -l: one line per transaction, its latency in microseconds third.
d = sorted(int(l.split()[2]) for f in os.listdir(logs) for l in open(os.path.join(logs, f)) if l.strip())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0
n = max(len(d), 1)
print(f"RESULT {name} tps={len(d) / secs:.0f} p50_ms={p(0.5):.3f} p99_ms={p(0.99):.3f} cs_per_call={(c1 - c0) / n:.2f}"
      f" cpu_us_per_call={(t1 - t0) * tick / n:.1f}")
PY
}

RESULTS="$WORK/results"
[[ " $OPS " == *" get "* ]] && for ((round = 1; round <= ROUNDS; round++)); do
    run_h2 service-get GetContact get $SVC_PID | tee -a "$RESULTS"
    run_pgbench pgbench-get get | tee -a "$RESULTS"
    run_h2 "$SECOND-get" GetContact get $SVC1_PID $((PORT + 1)) | tee -a "$RESULTS"
done
[[ " $OPS " == *" create "* ]] && for ((round = 1; round <= ROUNDS; round++)); do
    run_h2 service-create CreateContact create $SVC_PID | tee -a "$RESULTS"
    run_pgbench pgbench-create create | tee -a "$RESULTS"
    run_h2 "$SECOND-create" CreateContact create $SVC1_PID $((PORT + 1)) | tee -a "$RESULTS"
done
echo "RESULT idle-rss rss_mb=$((RSS_KB / 1024))" | tee -a "$RESULTS"
pairs=()
for op in get create; do pairs+=("service-$op:pgbench-$op" "$SECOND-$op:pgbench-$op"); done
python3 Benchmarks/summary.py "$RESULTS" "${pairs[@]}"
