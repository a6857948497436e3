#!/usr/bin/env bash
# The gateway's cost, measured side by side in one run (BENCHMARKS.md "Gateway"):
#   - GetContact as JSON through the gateway (h2load --h1, HTTP/1.1 keep-alive) vs the same RPC over gRPC directly
#     (h2load, HTTP/2), both at 8 concurrent clients, interleaved per round;
#   - the contact-360 overview (GET /v1/contacts/{id}:overview: upstream calls to all five services);
#   - the same three with one client (BENCH_SINGLE_CLIENT=1, the default): the latency a request takes when it does
#     not queue behind seven others on two cores, which at 8 clients is most of p50;
#   - the gateway's resident memory idle and after the load.
# Settings: BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_GATEWAY_LOOPS (the gateway's event loops; 0: its default),
# BENCH_SECOND_GATEWAY (another gateway binary, e.g. an earlier commit's: run beside the first on port 8090 and measured
# in every round too, gateway-b-json-get and gateway-b-overview, for an A/B of the gateway alone). Uses the project's PostgreSQL (scripts/postgres.sh) and a database of
# its own, switchboard_bench_gateway. Release builds, as users run them.
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
WORK="$(mktemp -d)"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

SERVICES=(contacts organization communication collaboration analytics)
for product in "${SERVICES[@]}" gateway crmctl; do swift build -c release --static-swift-stdlib --product "$product" >&2; done
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
DB=switchboard_bench_gateway
psql "$ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 || psql "$ADMIN" -qc "CREATE DATABASE $DB"
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
SECRET=bench-secret-0123456789abcdef0123456789
export PGGSSENCMODE=disable SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=warning
declare -A PORT=([contacts]=50081 [organization]=50082 [communication]=50083 [collaboration]=50084 [analytics]=50085)
# A port taken by another process (one left from an earlier run, say) would answer in a service's place.
for port in "${PORT[@]}" 8089 8090; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "gateway.sh: port $port is in use" >&2; exit 1; fi
done
for name in "${SERVICES[@]}"; do
    psql "$DBADMIN" -q -v DBNAME=$DB -f "services/$name/provision.sql" >/dev/null
    url="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=${name}_service"
    SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$url" "$BIN/$name" migrate >/dev/null
    extra=()
    [ "$name" != contacts ] && extra=("SWITCHBOARD_${name^^}_CONTACTS_ADDRESS=127.0.0.1:${PORT[contacts]}")
    if [ "$name" = analytics ]; then
        for source in organization communication collaboration; do
            extra+=("SWITCHBOARD_ANALYTICS_${source^^}_ADDRESS=127.0.0.1:${PORT[$source]}")
        done
    fi
    env SWITCHBOARD_GRPC_PORT="${PORT[$name]}" SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$url" SWITCHBOARD_DB_POOL_SIZE=8 \
        "${extra[@]}" "$BIN/$name" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
done
SWITCHBOARD_EVENT_LOOP_THREADS="${BENCH_GATEWAY_LOOPS:-0}" SWITCHBOARD_GRPC_PORT=8089 SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_GATEWAY_READ_RATE=0 \
    SWITCHBOARD_GATEWAY_CONTACTS_TARGETS=127.0.0.1:${PORT[contacts]} SWITCHBOARD_GATEWAY_ORGANIZATION_TARGETS=127.0.0.1:${PORT[organization]} \
    SWITCHBOARD_GATEWAY_COMMUNICATION_TARGETS=127.0.0.1:${PORT[communication]} \
    SWITCHBOARD_GATEWAY_COLLABORATION_TARGETS=127.0.0.1:${PORT[collaboration]} SWITCHBOARD_GATEWAY_ANALYTICS_TARGETS=127.0.0.1:${PORT[analytics]} \
    "$BIN/gateway" >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=($GATEWAY_PID)
if [ -n "${BENCH_SECOND_GATEWAY:-}" ]; then
    SWITCHBOARD_EVENT_LOOP_THREADS="${BENCH_GATEWAY_LOOPS:-0}" SWITCHBOARD_GRPC_PORT=8090 SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_GATEWAY_READ_RATE=0 \
        SWITCHBOARD_GATEWAY_CONTACTS_TARGETS=127.0.0.1:${PORT[contacts]} SWITCHBOARD_GATEWAY_ORGANIZATION_TARGETS=127.0.0.1:${PORT[organization]} \
        SWITCHBOARD_GATEWAY_COMMUNICATION_TARGETS=127.0.0.1:${PORT[communication]} \
        SWITCHBOARD_GATEWAY_COLLABORATION_TARGETS=127.0.0.1:${PORT[collaboration]} SWITCHBOARD_GATEWAY_ANALYTICS_TARGETS=127.0.0.1:${PORT[analytics]} \
        "$BENCH_SECOND_GATEWAY" >"$WORK/gateway-b.log" 2>&1 &
    PIDS+=($!)
fi
sleep 3
IDLE_RSS_KB="$(ps -o rss= -p $GATEWAY_PID | tr -d ' ')"
TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant bench --user bench --roles user --ttl 86400)"
AUTH="Authorization: Bearer $TOKEN"
G=http://127.0.0.1:8089

# One contact with a membership, two notes, three interactions: the overview's parts have something to carry. The
# services may still be migrating: the first write is retried for up to 30 s, then their logs are shown.
for _ in $(seq 1 150); do
    CREATED="$(curl -s -H "$AUTH" -d '{"name": {"given": "Bench", "family": "Contact"}, "emails": [{"address": "bench-'"$RANDOM$RANDOM"'@example.com"}]}' $G/v1/contacts || true)"
    ID="$(printf '%s' "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("id", ""))' 2>/dev/null || true)"
    [ -n "$ID" ] && break
    sleep 0.2
done
if [ -z "$ID" ]; then
    echo "could not create a contact through the gateway: $CREATED" >&2
    tail -n 20 "$WORK"/*.log >&2
    exit 1
fi
ORG="$(curl -sf -H "$AUTH" -d '{"name": "Bench Org"}' $G/v1/organizations | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
for _ in $(seq 1 50); do
    curl -sf -o /dev/null -H "$AUTH" -d "{\"contactId\": \"$ID\", \"organizationId\": \"$ORG\"}" $G/v1/memberships && break
    sleep 0.2
done
for i in 1 2; do
    curl -sf -o /dev/null -H "$AUTH" -d "{\"subjects\": [{\"type\": \"SUBJECT_TYPE_CONTACT\", \"id\": \"$ID\"}], \"body\": \"note $i\"}" $G/v1/notes
done
for i in 1 2 3; do
    curl -sf -o /dev/null -H "$AUTH" \
        -d "{\"kind\": \"INTERACTION_KIND_CALL\", \"contactIds\": [\"$ID\"], \"subject\": \"call $i\", \"occurredAt\": \"2026-12-0${i}T10:00:00Z\"}" $G/v1/interactions
done
# Analytics learns of these from the feeds: wait (up to 20 s) until the contact's timeline holds them all.
for _ in $(seq 1 100); do
    curl -sf -H "$AUTH" "$G/v1/contacts/$ID:overview" | python3 -c '
import json, sys
sys.exit(0 if len(json.load(sys.stdin).get("timeline", [])) >= 6 else 1)' && break
    sleep 0.2
done
curl -sf -H "$AUTH" "$G/v1/contacts/$ID:overview" | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert v["contact"]["id"] and len(v["memberships"]) == 1 and len(v["notes"]) == 2 and len(v["recentInteractions"]) == 3, v
assert not v.get("partialFailures"), v["partialFailures"]
print("overview ok: organization names", v.get("organizationNames"), "timeline entries", len(v.get("timeline", [])),
      "metrics", "metrics" in v, file=sys.stderr)'

python3 - "$WORK" "$ID" <<'PY'
import struct, sys
work, cid = sys.argv[1], sys.argv[2]
msg = bytes([1 << 3 | 2, len(cid)]) + cid.encode()
open(f"{work}/get.bin", "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
PY

CLIENTS=8
run() { # run <name> <h2load arguments...>: RESULT line with tps and latency percentiles from h2load's log
    local name=$1; shift
    rm -f "$WORK/log"
    local out
    out="$(h2load -D "$SECONDS_PER_RUN" -c "$CLIENTS" -m 1 -t 1 --log-file="$WORK/log" "$@")"
    python3 - "$name" "$WORK/log" "$SECONDS_PER_RUN" "$out" <<'PY'
import re, sys
name, log, secs, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
ok = int(re.search(r"(\d+) succeeded", out).group(1))
rows = [l.split() for l in open(log) if l.strip()]
bad = sum(1 for r in rows if r[1] not in ("200",))
d = sorted(int(r[2]) for r in rows)
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0
print(f"RESULT {name} tps={ok / secs:.0f} p50_ms={p(0.5):.3f} p99_ms={p(0.99):.3f} non200={bad}")
PY
}

RESULTS="$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    run direct-grpc-get -H 'content-type: application/grpc' -H 'te: trailers' -H "$AUTH" --data="$WORK/get.bin" \
        "http://127.0.0.1:${PORT[contacts]}/switchboard.contacts.v1.ContactsService/GetContact" | tee -a "$RESULTS"
    run gateway-json-get --h1 -H "$AUTH" "$G/v1/contacts/$ID" | tee -a "$RESULTS"
    if [ -n "${BENCH_SECOND_GATEWAY:-}" ]; then
        run gateway-b-json-get --h1 -H "$AUTH" "http://127.0.0.1:8090/v1/contacts/$ID" | tee -a "$RESULTS"
    fi
    run gateway-overview --h1 -H "$AUTH" "$G/v1/contacts/$ID:overview" | tee -a "$RESULTS"
    if [ -n "${BENCH_SECOND_GATEWAY:-}" ]; then
        run gateway-b-overview --h1 -H "$AUTH" "http://127.0.0.1:8090/v1/contacts/$ID:overview" | tee -a "$RESULTS"
    fi
    if [ "${BENCH_SINGLE_CLIENT:-1}" = 1 ]; then
        CLIENTS=1
        run direct-grpc-get-1c -H 'content-type: application/grpc' -H 'te: trailers' -H "$AUTH" --data="$WORK/get.bin" \
            "http://127.0.0.1:${PORT[contacts]}/switchboard.contacts.v1.ContactsService/GetContact" | tee -a "$RESULTS"
        run gateway-json-get-1c --h1 -H "$AUTH" "$G/v1/contacts/$ID" | tee -a "$RESULTS"
        run gateway-overview-1c --h1 -H "$AUTH" "$G/v1/contacts/$ID:overview" | tee -a "$RESULTS"
        CLIENTS=8
    fi
done
LOADED_RSS_KB="$(ps -o rss= -p $GATEWAY_PID | tr -d ' ')"
echo "RESULT gateway-rss idle_mb=$((IDLE_RSS_KB / 1024)) after_load_mb=$((LOADED_RSS_KB / 1024))" | tee -a "$RESULTS"
python3 Benchmarks/summary.py "$RESULTS" gateway-json-get:direct-grpc-get
[ -n "${BENCH_SECOND_GATEWAY:-}" ] && python3 Benchmarks/summary.py "$RESULTS" gateway-json-get:gateway-b-json-get gateway-b-json-get:direct-grpc-get \
    gateway-overview:gateway-b-overview
python3 - "$RESULTS" <<'PY'
import statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    rows[parts[1]].append(dict((k, float(v)) for k, v in (p.split("=") for p in parts[2:])))
g, d = rows["gateway-json-get"], rows["direct-grpc-get"]
added = statistics.median(r["p50_ms"] for r in g) - statistics.median(r["p50_ms"] for r in d)
print(f"added p50 by the gateway (median of rounds): {added:.3f} ms")
if rows["gateway-json-get-1c"] and rows["direct-grpc-get-1c"]:
    g1, d1 = rows["gateway-json-get-1c"], rows["direct-grpc-get-1c"]
    added = statistics.median(r["p50_ms"] for r in g1) - statistics.median(r["p50_ms"] for r in d1)
    print(f"added p50 by the gateway, one client (median of rounds): {added:.3f} ms")
PY
