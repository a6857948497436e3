#!/usr/bin/env bash
# The analytics service (release build) on generated data, as the service's role under row-level security:
#   timeline   GetTimeline of one contact with 100,000 entries among 1,000,000 of the tenant (10,000 contacts with 90
#              each): the first page (50, newest), and a page deep in its history (end_time 50,000 entries back: the
#              same (time, id) index bound a deep page token gives), one call at a time and 8 at once; p50/p99;
#   export     ExportReport of 100,000 contacts (columns contact_id, display_name, email, status, custom.tier,
#              interactions), whole streams one at a time: rows/s, and the service's peak RSS (flat memory: the report is
#              read 500 rows per round trip, sent in 64 KiB chunks);
#   ingest     the communication service's feed pre-filled with BENCH_INGEST_EVENTS Interaction events (CREATED, one
#              contact each) in its outbox, then analytics started on it: events/s until its cursor reaches the end
#              (the source is the debug or release `communication` binary, whichever BIN_COMMUNICATION names);
#   lag        then 1,000 events/s for BENCH_LAG_SECONDS (20) into that outbox: analytics_feed_lag_seconds p50/p99;
# plus the service's RSS idle after start (target < 30 MB).
#   Benchmarks/analytics.sh   (BENCH_ROUNDS=3, BENCH_RUNS=200 calls per timeline run, BENCH_EXPORT_RUNS=3,
#                              BENCH_INGEST_EVENTS=50000, BENCH_SKIP_BUILD=1 uses the release binaries as they are)
# Not part of the test suite. Needs h2load, nghttp, psql and the grpcio venv (scripts/bootstrap.sh) for the request
# bodies.
# Results and how they were taken: BENCHMARKS.md, "The analytics service".
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
ROUNDS="${BENCH_ROUNDS:-3}"
RUNS="${BENCH_RUNS:-200}"
EXPORT_RUNS="${BENCH_EXPORT_RUNS:-3}"
INGEST_EVENTS="${BENCH_INGEST_EVENTS:-50000}"
PY="${SWITCHBOARD_PYTHON:-$PWD/.venv/bin/python}"
PORT=50085
SOURCE_PORT=50083
WORK="$(mktemp -d)"
SVC_PID=
SRC_PID=
trap 'for p in $SVC_PID $SRC_PID; do kill $p 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

for tool in h2load nghttp psql; do
    command -v $tool >/dev/null || { echo "$tool missing (apt-get install nghttp2-client postgresql-client)" >&2; exit 1; }
done
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    swift build -c release --static-swift-stdlib --product analytics >&2
    swift build -c release --static-swift-stdlib --product communication >&2
    swift build -c release --static-swift-stdlib --product crmctl >&2
fi
BIN="$(swift build -c release --show-bin-path)"
BIN_COMMUNICATION="${BIN_COMMUNICATION:-$BIN/communication}"
ADMIN="$(scripts/postgres.sh start)"
PGPORT_="${SWITCHBOARD_PG_PORT:-54329}"
SECRET=bench-secret-0123456789abcdef0123456789
STUBS="$(SWITCHBOARD_PYTHON="$PY" Tests/Interop/gen_stubs.sh "$WORK/stubs")"

database() { # database <name> <service>: created and provisioned once; prints the service's URL
    psql "$ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1 || psql "$ADMIN" -qc "CREATE DATABASE $1"
    psql "${ADMIN/dbname=postgres/dbname=$1}" -q -v DBNAME="$1" -f "services/$2/provision.sql" >/dev/null
    echo "host=127.0.0.1 port=$PGPORT_ dbname=$1 user=$2_service"
}
DB=sb_analytics_bench
SERVICE_URL="$(database $DB analytics)"
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN/analytics" migrate >/dev/null

# The data, loaded as the administrator (bulk INSERT sidesteps RLS), again whenever it is not exactly as below.
HOT=11111111-1111-1111-1111-111111111111
if [ "$(psql "$DBADMIN" -qtAc "SELECT count(*) FROM analytics.timeline WHERE tenant_id = 'bench'")" != 1000000 ] ||
    [ "$(psql "$DBADMIN" -qtAc "SELECT count(*) FROM analytics.contacts WHERE tenant_id = 'bench'")" != 100000 ]; then
    echo "loading 1,000,000 timeline entries, 100,000 contacts and 100,000 activities…" >&2
    psql "$DBADMIN" -q -v ON_ERROR_STOP=1 <<SQL
TRUNCATE analytics.timeline, analytics.contacts, analytics.activities;
INSERT INTO analytics.timeline (tenant_id, subject_type, subject_id, occurred_at, kind, source, resource_type, resource_id, actor_id)
SELECT 'bench', 1, ('00000000-0000-0000-0000-' || lpad(to_hex(g % 10000), 12, '0'))::uuid, now() - g * interval '1 second', 6, 3,
    'switchboard.communication.v1.Interaction', g::text, 'user-' || (g % 7) FROM generate_series(1, 900000) g;
INSERT INTO analytics.timeline (tenant_id, subject_type, subject_id, occurred_at, kind, source, resource_type, resource_id, actor_id)
SELECT 'bench', 1, '$HOT', now() - g * interval '1 second', 6, 3, 'switchboard.communication.v1.Interaction', 'h' || g, 'user-1'
FROM generate_series(1, 100000) g;
INSERT INTO analytics.contacts (tenant_id, id, display_name, email, status, owner_id, custom_fields, created_at)
SELECT 'bench', ('00000000-0000-0000-0000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Person ' || g, 'p' || g || '@example.com',
    (ARRAY['LEAD', 'PROSPECT', 'CUSTOMER'])[1 + g % 3], 'user-' || (g % 7), jsonb_build_object('tier', CASE WHEN g % 4 = 0 THEN 'gold' ELSE 'silver' END),
    now() - g * interval '1 minute' FROM generate_series(1, 100000) g;
INSERT INTO analytics.activities (tenant_id, resource_type, resource_id, kind, is_interaction, actor_id, occurred_at, contact_ids)
SELECT 'bench', 'switchboard.communication.v1.Interaction', 'a' || g, 'call', true, 'user-' || (g % 7), now() - g * interval '1 minute',
    ARRAY[('00000000-0000-0000-0000-' || lpad(to_hex(1 + g % 100000), 12, '0'))::uuid] FROM generate_series(1, 100000) g;
ANALYZE analytics.timeline; ANALYZE analytics.contacts; ANALYZE analytics.activities;
SQL
fi

TOKEN="$("$BIN/crmctl" token --secret "$SECRET" --tenant bench --user bench --roles admin --ttl 86400)"

# Request bodies: gRPC frames of the requests, encoded with the grpcio stubs.
SWITCHBOARD_INTEROP_STUBS="$STUBS" "$PY" - "$WORK" "$HOT" <<'PY'
import os, struct, sys, time
sys.path.insert(0, os.environ["SWITCHBOARD_INTEROP_STUBS"])
from google.protobuf import timestamp_pb2
from sbproto.switchboard.analytics.v1 import analytics_pb2 as pb
from sbproto.switchboard.common.v1 import types_pb2
work, hot = sys.argv[1], sys.argv[2]
frame = lambda m: (lambda b: b"\x00" + struct.pack(">I", len(b)) + b)(m.SerializeToString())
page = types_pb2.PageRequest(page_size=50)
first = pb.GetTimelineRequest(subject_type=pb.SUBJECT_TYPE_CONTACT, subject_id=hot, page=page)
deep = pb.GetTimelineRequest(subject_type=pb.SUBJECT_TYPE_CONTACT, subject_id=hot, page=page,
                             end_time=timestamp_pb2.Timestamp(seconds=int(time.time()) - 50000))
export = pb.ExportReportRequest(definition=pb.ReportDefinition(
    name="bench", columns=["contact_id", "display_name", "email", "status", "custom.tier", "interactions"]))
for name, message in [("first", first), ("deep", deep), ("export", export)]:
    open(f"{work}/{name}.bin", "wb").write(frame(message))
PY

start_service() { # start_service [extra env…]: the service on $PORT, waiting until it answers
    env SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_GRPC_PORT=$PORT SWITCHBOARD_ADMIN_PORT=0 \
        SWITCHBOARD_LOG_LEVEL=error "$@" "$BIN/analytics" >"$WORK/service.log" 2>&1 &
    SVC_PID=$!
    for _ in $(seq 100); do
        nghttp -n --data="$WORK/first.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
            "http://127.0.0.1:$PORT/switchboard.analytics.v1.AnalyticsService/GetTimeline" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the service did not start" >&2; cat "$WORK/service.log" >&2; exit 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }
hwm_kb() { awk '/^VmHWM/ {print $2}' /proc/"$1"/status; }

start_service
sleep 2
echo "RESULT idle_rss_kib=$(rss_kb $SVC_PID)"
METHOD_PATH=/switchboard.analytics.v1.AnalyticsService
for body in first:GetTimeline deep:GetTimeline export:ExportReport; do
    out="$(nghttp -nv --data="$WORK/${body%%:*}.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$METHOD_PATH/${body#*:}" 2>&1)"
    echo "$out" | grep -q "grpc-status: 0" || { echo "${body} failed:"; echo "$out" | grep -v "DATA frame" | tail -5; exit 1; } >&2
done

latency() { # latency <name> <rpc> <body> <clients> <calls>
    rm -f "$WORK/log"
    local start elapsed
    start="$(date +%s%N)"
    h2load -n "$5" -c "$4" -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
        --data="$WORK/$3.bin" --log-file="$WORK/log" "http://127.0.0.1:$PORT$METHOD_PATH/$2" >/dev/null
    elapsed="$(python3 -c "print(($(date +%s%N) - $start) / 1e9)")"
    python3 - "$1" "$WORK/log" "$elapsed" "$5" <<'PY'
import sys
name, log, secs, calls = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
d = sorted(int(l.split()[2]) for l in open(log) if l.strip())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0
print(f"RESULT {name} calls_per_s={calls / secs:.1f} p50_ms={p(0.5):.2f} p99_ms={p(0.99):.2f} n={len(d)}")
PY
}

for ((round = 1; round <= ROUNDS; round++)); do
    latency timeline-first-c1 GetTimeline first 1 "$RUNS"
    latency timeline-deep-c1 GetTimeline deep 1 "$RUNS"
    latency timeline-first-c8 GetTimeline first 8 "$RUNS"
done
for ((round = 1; round <= ROUNDS; round++)); do
    start="$(date +%s%N)"
    h2load -n "$EXPORT_RUNS" -c 1 -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
        --data="$WORK/export.bin" "http://127.0.0.1:$PORT$METHOD_PATH/ExportReport" >"$WORK/h2.out"
    secs="$(python3 -c "print(($(date +%s%N) - $start) / 1e9)")"
    bytes="$(sed -nE 's/.*traffic: .* \(([0-9]+)\) total.*/\1/p' "$WORK/h2.out")"
    python3 -c "print(f'RESULT export rows_per_s={100000 * $EXPORT_RUNS / $secs:.0f} seconds_per_export={$secs / $EXPORT_RUNS:.2f} bytes={$bytes}')"
    echo "RESULT export_peak_rss_kib=$(hwm_kb $SVC_PID) rss_after_kib=$(rss_kb $SVC_PID)"
done
kill $SVC_PID; wait $SVC_PID 2>/dev/null || true; SVC_PID=

# Ingestion: a communication database whose outbox holds INGEST_EVENTS Interaction events, served by the
# communication binary; analytics starts from an empty cursor and follows it.
SOURCE_DB=sb_analytics_bench_source
SOURCE_URL="$(database $SOURCE_DB communication)"
SOURCE_ADMIN="${ADMIN/dbname=postgres/dbname=$SOURCE_DB}"
SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$SOURCE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN_COMMUNICATION" migrate >/dev/null
if [ "$(psql "$SOURCE_ADMIN" -qtAc "SELECT count(*) FROM communication.changes")" != "$INGEST_EVENTS" ]; then
    psql "$SOURCE_ADMIN" -q -v ON_ERROR_STOP=1 <<SQL
TRUNCATE communication.changes, communication.change_sequences;
INSERT INTO communication.changes (tenant_id, sequence, resource_type, resource_id, kind, changed_fields, resource, actor_id, related_ids)
SELECT 'ingest', g, 'switchboard.communication.v1.Interaction', id::text, 1, '{}',
    jsonb_build_object('id', id::text, 'kind', 'INTERACTION_KIND_CALL', 'contactIds', jsonb_build_array(
        ('00000000-0000-0000-0000-' || lpad(to_hex(1 + g % 5000), 12, '0'))), 'occurredAt', to_char(now() - g * interval '1 second',
        'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'ownerId', 'user-1'), 'user-1', '{}'
FROM (SELECT g, gen_random_uuid() AS id FROM generate_series(1, $INGEST_EVENTS) g) s;
SQL
fi
env SWITCHBOARD_DATABASE_URL="$SOURCE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_GRPC_PORT=$SOURCE_PORT SWITCHBOARD_ADMIN_PORT=0 \
    SWITCHBOARD_LOG_LEVEL=error "$BIN_COMMUNICATION" >"$WORK/source.log" 2>&1 &
SRC_PID=$!
psql "$DBADMIN" -qc "DELETE FROM analytics.feed_cursors; DELETE FROM analytics.activities WHERE tenant_id = 'ingest'; DELETE FROM analytics.timeline WHERE tenant_id = 'ingest'"
sleep 1
start="$(date +%s%N)"
start_service SWITCHBOARD_ANALYTICS_COMMUNICATION_ADDRESS=127.0.0.1:$SOURCE_PORT
while [ "$(psql "$DBADMIN" -qtAc "SELECT count(*) FROM analytics.activities WHERE tenant_id = 'ingest'")" -lt "$INGEST_EVENTS" ]; do sleep 0.2; done
python3 -c "secs = ($(date +%s%N) - $start) / 1e9; print(f'RESULT ingest events={$INGEST_EVENTS} seconds={secs:.1f} events_per_s={$INGEST_EVENTS / secs:.0f}')"

# Lag under a steady load: BENCH_LAG_SECONDS (20) of 100 Interaction events every 100 ms (1,000/s, paced against the
# clock) committed into the
# source's outbox (each batch with the NOTIFY a service's own writes send), while analytics_feed_lag_seconds (the age of
# the newest change of the last batch applied) is read from analytics' admin endpoint every 100 ms.
LAG_SECONDS="${BENCH_LAG_SECONDS:-20}"
ADMIN_PORT=9495
kill $SVC_PID; wait $SVC_PID 2>/dev/null || true; SVC_PID=
start_service SWITCHBOARD_ANALYTICS_COMMUNICATION_ADDRESS=127.0.0.1:$SOURCE_PORT SWITCHBOARD_ADMIN_PORT=$ADMIN_PORT
{
    echo "SELECT set_config('bench.start', clock_timestamp()::text, false);"
    for ((i = 1; i <= LAG_SECONDS * 10; i++)); do
        cat <<SQL
INSERT INTO communication.changes (tenant_id, sequence, resource_type, resource_id, kind, changed_fields, resource, actor_id, related_ids)
SELECT 'ingest', m + g, 'switchboard.communication.v1.Interaction', id::text, 1, '{}',
    jsonb_build_object('id', id::text, 'kind', 'INTERACTION_KIND_CALL', 'contactIds', jsonb_build_array(
        ('00000000-0000-0000-0000-' || lpad(to_hex(1 + g % 5000), 12, '0'))), 'occurredAt', to_char(now(),
        'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'ownerId', 'user-1'), 'user-1', '{}'
FROM (SELECT g, gen_random_uuid() AS id FROM generate_series(1, 100) g) s,
    (SELECT coalesce(max(sequence), 0) AS m FROM communication.changes WHERE tenant_id = 'ingest') mx;
SELECT pg_notify('communication_changes', 'ingest');
SELECT pg_sleep(greatest(0, extract(epoch FROM current_setting('bench.start')::timestamptz + interval '$((i * 100)) milliseconds' - clock_timestamp())));
SQL
    done
} >"$WORK/steady.sql"
: >"$WORK/lag"
(while true; do
    curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | sed -nE 's/^analytics_feed_lag_seconds\{source="communication"\} ([0-9.e+-]+)$/\1/p' >>"$WORK/lag"
    sleep 0.1
done) &
SAMPLER_PID=$!
start="$(date +%s%N)"
psql "$SOURCE_ADMIN" -q -o /dev/null -f "$WORK/steady.sql"
secs="$(python3 -c "print(($(date +%s%N) - $start) / 1e9)")"
sleep 1
kill $SAMPLER_PID
python3 - "$WORK/lag" "$LAG_SECONDS" "$secs" <<'PY'
import sys
samples = sorted(float(x) for x in open(sys.argv[1]) if x.strip())
n, secs = len(samples), float(sys.argv[3])
p = lambda q: samples[min(n - 1, int(q * n))] * 1000 if n else float("nan")
rate = int(sys.argv[2]) * 1000 / secs
print(f"RESULT lag source_rate_per_s={rate:.0f} samples={n} p50_ms={p(0.5):.0f} p99_ms={p(0.99):.0f} max_ms={p(1.0):.0f}")
PY
