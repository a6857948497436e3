#!/usr/bin/env bash
# What the contact check costs a write: LogInteraction naming one live contact, through two communication services on
# one database, side by side: one asks the contacts service whether the contact is live (the kit's ContactReferences,
# SWITCHBOARD_COMMUNICATION_CONTACTS_ADDRESS set), the other takes the id as given (the address unset). h2load, gRPC over
# HTTP/2 with a JWT, one client and then 8 at once, rounds interleaved (check, no check, ...).
#   Benchmarks/contact-check.sh   (BENCH_ROUNDS=3, BENCH_RUNS=2000 calls per run)
# Not part of the test suite. Results and how they were taken: BENCHMARKS.md, "The communication service".
set -Eeuo pipefail
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
source Benchmarks/grpc_calls.sh
ROUNDS="${BENCH_ROUNDS:-3}"
RUNS="${BENCH_RUNS:-2000}"
PY="${SWITCHBOARD_PYTHON:-$PWD/.venv/bin/python}"
CONTACTS_PORT=50086 CHECK_PORT=50087 PLAIN_PORT=50088
WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
for tool in h2load nghttp psql; do
    command -v $tool >/dev/null || { echo "$tool missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done
[ -x "$PY" ] || { echo "no Python virtualenv at $PY (scripts/bootstrap.sh makes it)" >&2; exit 1; }
for port in $CONTACTS_PORT $CHECK_PORT $PLAIN_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "contact-check.sh: port $port is in use" >&2; exit 1; fi
done

for product in contacts communication crmctl; do swift build -c release --static-swift-stdlib --product $product >&2; done
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
SECRET=bench-secret-0123456789abcdef0123456789
export PGGSSENCMODE=disable SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=error
STUBS="$(SWITCHBOARD_PYTHON="$PY" Tests/Interop/gen_stubs.sh "$WORK/stubs")"
DB=sb_contact_check_bench
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
for name in contacts communication; do
    psql "$DBADMIN" -q -v DBNAME=$DB -f "services/$name/provision.sql" >/dev/null
    SWITCHBOARD_DATABASE_URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=${name}_service" "$BIN/$name" migrate >/dev/null
done
url() { echo "host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=$1_service"; }
SWITCHBOARD_GRPC_PORT=$CONTACTS_PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$(url contacts)" "$BIN/contacts" >"$WORK/contacts.log" 2>&1 &
PIDS+=($!)
SWITCHBOARD_GRPC_PORT=$CHECK_PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$(url communication)" \
    SWITCHBOARD_COMMUNICATION_CONTACTS_ADDRESS=127.0.0.1:$CONTACTS_PORT "$BIN/communication" >"$WORK/check.log" 2>&1 &
PIDS+=($!)
SWITCHBOARD_GRPC_PORT=$PLAIN_PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$(url communication)" "$BIN/communication" >"$WORK/plain.log" 2>&1 &
PIDS+=($!)
for port in $CONTACTS_PORT $CHECK_PORT $PLAIN_PORT; do
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant bench --user bench --roles user --ttl 86400)"
CONTACT="$(CRMCTL_TOKEN=$TOKEN CRMCTL_CONTACTS_ADDR=127.0.0.1:$CONTACTS_PORT "$BIN/crmctl" contacts create --given Ada --family Lovelace \
    --output json | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"

SWITCHBOARD_INTEROP_STUBS="$STUBS" "$PY" - "$WORK" "$CONTACT" <<'PY'
import os, struct, sys
sys.path.insert(0, os.environ["SWITCHBOARD_INTEROP_STUBS"])
from sbproto.switchboard.communication.v1 import communication_pb2 as pb
work, contact = sys.argv[1], sys.argv[2]
request = pb.LogInteractionRequest(interaction=pb.Interaction(kind=pb.INTERACTION_KIND_CALL, contact_ids=[contact], subject="bench"))
body = request.SerializeToString()
open(f"{work}/log.bin", "wb").write(b"\x00" + struct.pack(">I", len(body)) + body)
PY
METHOD=/switchboard.communication.v1.CommunicationService/LogInteraction
for port in $CHECK_PORT $PLAIN_PORT; do
    out="$(nghttp -nv --data="$WORK/log.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$port$METHOD" 2>&1)"
    echo "$out" | grep -q "grpc-status: 0" || { echo "port $port failed:"; echo "$out" | tail -5; exit 1; } >&2
done

run() { # run <name> <port> <clients>
    grpc_calls "$1" "http://127.0.0.1:$2$METHOD" "$WORK/log.bin" "$3" "$RUNS" "$TOKEN" "$WORK"
}
RESULTS="$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    for clients in 1 8; do
        run check-c$clients $CHECK_PORT $clients | tee -a "$RESULTS"
        run plain-c$clients $PLAIN_PORT $clients | tee -a "$RESULTS"
    done
done
python3 Benchmarks/summary.py "$RESULTS" check-c1:plain-c1 check-c8:plain-c8
