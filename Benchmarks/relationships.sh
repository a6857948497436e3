#!/usr/bin/env bash
# What relationships cost to read: ListRelationships of one contact and GetRelatedContacts walking 1, 2 and 3 hops, on a
# tenant of BENCH_CONTACTS contacts (default 100,000) with BENCH_DEGREE random relationships each (default 5: about 10
# neighbours a contact), beside GetContact of the same contact for scale. h2load, gRPC over HTTP/2 with a JWT, 8
# clients, rounds interleaved.
#   Benchmarks/relationships.sh   (BENCH_ROUNDS=3, BENCH_RUNS=2000 calls per run)
# Not part of the test suite. Results and how they were taken: BENCHMARKS.md, "Relationships".
set -Eeuo pipefail
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
source Benchmarks/grpc_calls.sh
ROUNDS="${BENCH_ROUNDS:-3}"
RUNS="${BENCH_RUNS:-2000}"
CONTACTS="${BENCH_CONTACTS:-100000}"
DEGREE="${BENCH_DEGREE:-5}"
PY="${SWITCHBOARD_PYTHON:-$PWD/.venv/bin/python}"
PORT=50089
WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
for tool in h2load nghttp psql; do
    command -v $tool >/dev/null || { echo "$tool missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done
[ -x "$PY" ] || { echo "no Python virtualenv at $PY (scripts/bootstrap.sh makes it)" >&2; exit 1; }
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo "relationships.sh: port $PORT is in use" >&2; exit 1; fi

for product in contacts crmctl; do swift build -c release --static-swift-stdlib --product $product >&2; done
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
SECRET=bench-secret-0123456789abcdef0123456789
export PGGSSENCMODE=disable SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=error
STUBS="$(SWITCHBOARD_PYTHON="$PY" Tests/Interop/gen_stubs.sh "$WORK/stubs")"
DB=sb_relationships_bench
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=contacts_service"
# The data is made once per size, degree and schema (a database left from another, or from fewer migrations, is made
# again).
WANT="$CONTACTS/$DEGREE/$(ls services/contacts/migrations | wc -l)"
HAVE="$(psql "$DBADMIN" -qtAc "SELECT obj_description('contacts.relationships'::regclass, 'pg_class')" 2>/dev/null || true)"
if [ "$HAVE" != "$WANT" ]; then
    echo "loading $CONTACTS contacts with $DEGREE relationships each" >&2
    psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
    psql "$DBADMIN" -q -v DBNAME=$DB -f services/contacts/provision.sql >/dev/null
    SWITCHBOARD_DATABASE_URL="$URL" "$BIN/contacts" migrate >/dev/null
    psql "$DBADMIN" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, contact_type, status, owner_id, created_at, created_by,
    updated_at, updated_by)
SELECT 'bench', gen_random_uuid(), 'Person', 'Number ' || g, 1, 1, 'bench', now(), 'bench', now(), 'bench'
FROM generate_series(1, $CONTACTS) g;
CREATE TEMP TABLE numbered AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM contacts.contacts WHERE tenant_id = 'bench';
CREATE INDEX ON numbered (n);
INSERT INTO contacts.relationships (tenant_id, id, contact_id, related_id, type, strength, created_by, updated_by)
SELECT 'bench', gen_random_uuid(), p.id, b.id, 1 + (random() * 16)::int, (random() * 5)::int, 'bench', 'bench'
-- The random partner drawn once per row in a subquery (volatile: not flattened), then an equi-join.
FROM (SELECT a.id, 1 + ((a.n + (random() * ($CONTACTS - 2))::int) % $CONTACTS) AS partner
      FROM numbered a CROSS JOIN generate_series(1, $DEGREE) k) p
JOIN numbered b ON b.n = p.partner
WHERE p.id <> b.id
ON CONFLICT (tenant_id, key_type, key_first, key_second) WHERE hidden_by IS NULL DO NOTHING;
ANALYZE contacts.contacts;
ANALYZE contacts.relationships;
COMMENT ON TABLE contacts.relationships IS '$WANT';
SQL
fi
ROWS="$(psql "$DBADMIN" -qtAc "SELECT count(*) FROM contacts.relationships")"
# The start: a contact with a typical number of relationships.
START="$(psql "$DBADMIN" -qtAc "
    SELECT c.id FROM contacts.contacts c
    WHERE c.tenant_id = 'bench' AND (SELECT count(*) FROM contacts.relationships r WHERE r.tenant_id = 'bench'
        AND (r.contact_id = c.id OR r.related_id = c.id)) = 2 * $DEGREE
    LIMIT 1")"
[ -n "$START" ] || { echo "no contact has exactly $((2 * DEGREE)) relationships: try another BENCH_DEGREE" >&2; exit 1; }
echo "$ROWS relationships; start $START" >&2

SWITCHBOARD_GRPC_PORT=$PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$URL" "$BIN/contacts" >"$WORK/contacts.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant bench --user bench --roles user --ttl 86400)"

SWITCHBOARD_INTEROP_STUBS="$STUBS" "$PY" - "$WORK" "$START" <<'PY'
import os, struct, sys
sys.path.insert(0, os.environ["SWITCHBOARD_INTEROP_STUBS"])
from sbproto.switchboard.contacts.v1 import contacts_pb2 as pb
work, start = sys.argv[1], sys.argv[2]
def frame(name, message):
    body = message.SerializeToString()
    open(f"{work}/{name}.bin", "wb").write(b"\x00" + struct.pack(">I", len(body)) + body)
frame("get", pb.GetContactRequest(id=start))
frame("list", pb.ListRelationshipsRequest(contact_id=start))
for hops, most in ((1, 100), (2, 100), (3, 500)):
    frame(f"walk{hops}", pb.GetRelatedContactsRequest(contact_id=start, max_hops=hops, max_results=most))
PY
declare -A METHODS=(
    [get]=GetContact [list]=ListRelationships [walk1]=GetRelatedContacts [walk2]=GetRelatedContacts [walk3]=GetRelatedContacts
)
for name in get list walk1 walk2 walk3; do
    out="$(nghttp -nv --data="$WORK/$name.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$PORT/switchboard.contacts.v1.ContactsService/${METHODS[$name]}" 2>&1)"
    echo "$out" | grep -q "grpc-status: 0" || { echo "$name failed:"; echo "$out" | tail -5; exit 1; } >&2
done

run() { # run <name>
    grpc_calls "$1" "http://127.0.0.1:$PORT/switchboard.contacts.v1.ContactsService/${METHODS[$1]}" "$WORK/$1.bin" 8 "$RUNS" "$TOKEN" "$WORK"
}
RESULTS="$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    for name in get list walk1 walk2 walk3; do run $name | tee -a "$RESULTS"; done
done
python3 Benchmarks/summary.py "$RESULTS" list:get walk1:get walk2:get walk3:get
