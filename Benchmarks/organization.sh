#!/usr/bin/env bash
# The organization service (h2load: gRPC over HTTP/2, JWT auth, RLS) side by side with pgbench running the same SQL
# as the same role (organization_service, `app.tenant_id` set per transaction, row-level security) on the same data:
#   get   GetOrganization, -c 8, over 100,000 organizations of tenant "bench" and 100,000 of ten other tenants;
#   tree  StreamOrganizationTree of a root with 11,110 descendants (branching 10, 4 levels), whole streams one at a
#         time: time per full stream (the last response byte), p50/p99 over BENCH_TREE_RUNS streams per round;
#   list  ListOrganizationMembers(include_descendants) of that root, first page (default size, 50), over 100,000
#         memberships spread over the tree (their contacts in the projection organization.contacts), one call at a
#         time (latency) and 8 at once (throughput), BENCH_LIST_RUNS calls per run (rounded up to the clients);
# plus the service's RSS idle after start (target < 30 MB) and idle again after the load (and its peak).
#   Benchmarks/organization.sh   (BENCH_SECONDS=10 per timed run (get), BENCH_ROUNDS=3 → service, pgbench, ...
#                                 alternated, BENCH_OPS="get tree list", BENCH_TREE_RUNS=50 streams per run,
#                                 BENCH_LIST_RUNS=24 calls per run, BENCH_LIST_CLIENTS="1 8",
#                                 BENCH_SKIP_BUILD=1 uses the release binaries as they are, BENCH_SERVICE_ENV adds
#                                 settings to the service, e.g. "SWITCHBOARD_DB_PIPELINE_DEPTH=1")
# GetOrganization runs for BENCH_SECONDS (rate over that time, as contacts.sh); the tree and the list, whose calls
# take long enough that a cut-off at a deadline would bias the rate, run a fixed number of calls (rate over the wall
# time, for h2load and pgbench alike).
# pgbench sends what the service sends, statement by statement (Sources/OrganizationService/Store/*.swift): a read
# is `SELECT set_config($1, $2, true)` and the statement pipelined into one implicit transaction (\startpipeline),
# with bound parameters (-D variables), prepared; the tree is BEGIN ISOLATION LEVEL REPEATABLE READ + set_config
# (pipelined), the live check, DECLARE … CURSOR, FETCH 256 until a short batch, CLOSE, COMMIT (-M extended: the
# service does not prepare the cursor statements). "pgbench-get-tx" is contacts.sh's form for comparison:
# BEGIN / set_config / SELECT / COMMIT, four round trips. Not part of the test suite.
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
OPS="${BENCH_OPS:-get tree list}"
TREE_RUNS="${BENCH_TREE_RUNS:-50}"
LIST_RUNS="${BENCH_LIST_RUNS:-24}"
LIST_CLIENTS="${BENCH_LIST_CLIENTS:-1 8}"
PORT=50081
BRANCHING=10 # the tree: a root, BRANCHING children each, LEVELS levels below the root
LEVELS=4
ORGS=100000 # organizations of tenant "bench" (the tree's included), and as many again in other tenants
MEMBERSHIPS=100000
WORK="$(mktemp -d)"
SVC_PID=
trap 'if [ -n "$SVC_PID" ]; then kill $SVC_PID 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

for tool in h2load nghttp pgbench psql; do
    command -v $tool >/dev/null || { echo "$tool missing (apt-get install nghttp2-client postgresql-client)" >&2; exit 1; }
done
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    swift build -c release --static-swift-stdlib --product organization >&2
    swift build -c release --static-swift-stdlib --product crmctl >&2
fi
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
DB=switchboard_bench
psql "$ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 || psql "$ADMIN" -qc "CREATE DATABASE $DB"
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
psql "$DBADMIN" -q -v DBNAME=$DB -f services/organization/provision.sql >/dev/null
SERVICE_URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=organization_service"
SECRET=bench-secret-0123456789abcdef0123456789
SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN/organization" migrate >/dev/null

# The data, loaded as the administrator (bulk INSERT sidesteps RLS), again whenever it is not exactly as below:
# - tenant "bench": the tree (root "Bench Tree Root", heap-numbered: node n's children are n*B+1 … n*B+B) and flat
#   top-level organizations up to ORGS; ten other tenants "bench-other-N" with ORGS more; one domain each (reserved
#   in organization_domains as the service would);
# - MEMBERSHIPS contacts in the projection (1 in 100 deleted, hidden by the service) and one membership each at tree
#   node (g mod tree size), i.e. about 9 per node; 1 in 10 ended in 2023 (not current, filtered), the rest current.
TREE_NODES="$(python3 -c "print(sum($BRANCHING ** k for k in range($LEVELS + 1)))")"
STATE="$(psql "$DBADMIN" -qtAc "
    SELECT (SELECT count(*) FROM organization.organizations WHERE tenant_id = 'bench') || ' '
        || (SELECT count(*) FROM organization.organizations WHERE tenant_id LIKE 'bench-other-%') || ' '
        || (SELECT count(*) FROM organization.memberships WHERE tenant_id = 'bench') || ' '
        || (SELECT count(*) FROM organization.contacts WHERE tenant_id = 'bench') || ' '
        || (SELECT count(*) FROM organization.organizations WHERE tenant_id = 'bench' AND name_key LIKE 'bench tree %')")"
if [ "$STATE" != "$ORGS $ORGS $MEMBERSHIPS $MEMBERSHIPS $TREE_NODES" ]; then
    echo "loading $ORGS + $ORGS organizations, a tree of $TREE_NODES, $MEMBERSHIPS contacts and memberships (was: $STATE)..." >&2
    psql "$DBADMIN" -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
DELETE FROM organization.memberships WHERE tenant_id = 'bench';
DELETE FROM organization.contacts WHERE tenant_id = 'bench';
DELETE FROM organization.units WHERE tenant_id = 'bench' OR tenant_id LIKE 'bench-other-%';
DELETE FROM organization.organization_domains WHERE tenant_id = 'bench' OR tenant_id LIKE 'bench-other-%';
DELETE FROM organization.organizations WHERE tenant_id = 'bench' OR tenant_id LIKE 'bench-other-%';
CREATE TEMP TABLE tree ON COMMIT DROP AS
    WITH RECURSIVE t (n, depth) AS (
        SELECT 0, 0
        UNION ALL
        SELECT t.n * $BRANCHING + i, t.depth + 1 FROM t, generate_series(1, $BRANCHING) i WHERE t.depth < $LEVELS
    )
    SELECT n, depth, gen_random_uuid() AS id, CASE WHEN n = 0 THEN 'Bench Tree Root' ELSE 'Bench Tree ' || n END AS name FROM t;
CREATE UNIQUE INDEX ON tree (n);
CREATE TEMP TABLE orgs ON COMMIT DROP AS
    SELECT 'bench'::text AS tenant_id, t.id, t.name, 't' || t.n || '.bench.example' AS domain, p.id AS parent_id, t.n AS g
    FROM tree t LEFT JOIN tree p ON t.n > 0 AND p.n = (t.n - 1) / $BRANCHING
    UNION ALL
    SELECT 'bench', gen_random_uuid(), 'Company ' || g, 'c' || g || '.example', NULL, g
    FROM generate_series(1, $ORGS - $TREE_NODES) g
    UNION ALL
    SELECT 'bench-other-' || g % 10, gen_random_uuid(), 'Company ' || g, 'c' || g || '.example', NULL, g
    FROM generate_series(1, $ORGS) g;
INSERT INTO organization.organizations (tenant_id, id, name, name_key, domains, industry, size_band, revenue_currency,
    revenue_units, revenue_nanos, addresses, tags, owner_id, custom_fields, parent_id, created_at, created_by, updated_at,
    updated_by)
SELECT tenant_id, id, name, lower(name), ARRAY[domain], 'Industry ' || g % 20, 1 + g % 6, 'USD', 1000000 + g, 0,
    jsonb_build_array(jsonb_build_object('label', 'hq', 'lines', jsonb_build_array(g || ' Main Street'),
        'locality', 'Springfield', 'administrativeArea', 'IL', 'postalCode', '62701', 'regionCode', 'US')),
    ARRAY['bench', 't' || g % 100], 'owner' || g % 50, jsonb_build_object('tier', 'gold', 'score', g % 1000),
    parent_id, now() - (g || ' seconds')::interval, 'loader', now(), 'loader'
FROM orgs;
INSERT INTO organization.organization_domains (tenant_id, domain, organization_id) SELECT tenant_id, domain, id FROM orgs;
INSERT INTO organization.membership_roles (tenant_id, key, display_name) VALUES ('bench', 'member', 'Member')
    ON CONFLICT DO NOTHING;
CREATE TEMP TABLE people ON COMMIT DROP AS SELECT g, gen_random_uuid() AS id FROM generate_series(1, $MEMBERSHIPS) g;
INSERT INTO organization.contacts (tenant_id, contact_id, display_name, deleted, last_sequence)
SELECT 'bench', id, 'Member ' || g, g % 100 = 0, 1 FROM people;
INSERT INTO organization.memberships (tenant_id, id, contact_id, organization_id, title, roles, is_primary, start_date,
    end_date, created_at, created_by, updated_at, updated_by)
SELECT 'bench', gen_random_uuid(), p.id, t.id, 'Title ' || p.g % 30, ARRAY['member'], true,
    DATE '2020-01-01' + p.g % 1000, CASE WHEN p.g % 10 = 0 THEN DATE '2023-12-31' END, now(), 'loader', now(), 'loader'
FROM people p JOIN tree t ON t.n = p.g % $TREE_NODES;
COMMIT;
ANALYZE organization.organizations;
ANALYZE organization.organization_domains;
ANALYZE organization.contacts;
ANALYZE organization.memberships;
SQL
fi
ID="$(psql "$DBADMIN" -qtAc "SELECT id FROM organization.organizations WHERE tenant_id = 'bench' ORDER BY id LIMIT 1 OFFSET $((ORGS / 2))")"
ROOT="$(psql "$DBADMIN" -qtAc "SELECT id FROM organization.organizations WHERE tenant_id = 'bench' AND name = 'Bench Tree Root'")"

read -r -a SERVICE_ENV <<<"${BENCH_SERVICE_ENV:-}"
SWITCHBOARD_GRPC_PORT=$PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_DB_POOL_SIZE=8 \
    SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=warning env "${SERVICE_ENV[@]}" "$BIN/organization" \
    >"$WORK/service.log" 2>&1 &
SVC_PID=$!
sleep 3
kill -0 $SVC_PID 2>/dev/null || { echo "the service did not start:" >&2; cat "$WORK/service.log" >&2; exit 1; }
rss_mb() { awk -v k="$2" '$1 == k":" {printf "%.1f", $2 / 1024}' /proc/"$1"/status; }
RSS_START="$(rss_mb $SVC_PID VmRSS)"
TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant bench --user bench --roles user --ttl 86400)"

python3 - "$WORK" "$ID" "$ROOT" <<'PY'
import struct, sys
work, oid, root = sys.argv[1], sys.argv[2], sys.argv[3]
def frame(msg): return b"\x00" + struct.pack(">I", len(msg)) + msg
def field(n, payload): return bytes([n << 3 | 2, len(payload)]) + payload
open(f"{work}/get.bin", "wb").write(frame(field(1, oid.encode())))                      # GetOrganizationRequest{id}
open(f"{work}/tree.bin", "wb").write(frame(field(1, root.encode())))                    # StreamOrganizationTreeRequest{id}
open(f"{work}/list.bin", "wb").write(frame(field(2, root.encode()) + b"\x18\x01"))      # {organization_id, include_descendants}
PY

# The service's statements (Sources/OrganizationService/Store/PostgresOrganizationStore.swift: columns, byID.one,
# tree; +Memberships.swift: membershipColumns, visibleMemberships, listMemberships). Values are pgbench variables,
# sent as bound parameters like the service's.
COLUMNS="id, name, domains, industry, size_band, revenue_currency, revenue_units, revenue_nanos, addresses::text AS addresses, tags,
    owner_id, custom_fields::text AS custom_fields, parent_id, version, created_at, created_by, updated_at, updated_by, deleted_at"
QCOLUMNS="o.id, o.name, o.domains, o.industry, o.size_band, o.revenue_currency, o.revenue_units, o.revenue_nanos,
    o.addresses::text AS addresses, o.tags, o.owner_id, o.custom_fields::text AS custom_fields, o.parent_id, o.version,
    o.created_at, o.created_by, o.updated_at, o.updated_by, o.deleted_at"
PGVARS=(-D setting=app.tenant_id -D tenant=bench -D id="$ID" -D root="$ROOT" -D maxdepth=64 -D limit=51)
GET_SQL="SELECT $COLUMNS FROM organization.organizations WHERE tenant_id = :tenant AND id = :id;"
cat > "$WORK/get.sql" <<SQL
\startpipeline
SELECT set_config(:setting, :tenant, true);
$GET_SQL
\endpipeline
SQL
cat > "$WORK/get-tx.sql" <<SQL
BEGIN;
SELECT set_config('app.tenant_id', 'bench', true);
SELECT $COLUMNS FROM organization.organizations WHERE tenant_id = 'bench' AND id = '$ID';
COMMIT;
SQL
TREE_SQL="WITH RECURSIVE t (id, depth, path, sort_path) AS (
    SELECT o.id, 0, ARRAY[o.id], ARRAY[o.name_key || chr(1) || o.id::text]
    FROM organization.organizations o WHERE o.tenant_id = :tenant AND o.id = :root
    UNION ALL
    SELECT c.id, t.depth + 1, t.path || c.id, t.sort_path || (c.name_key || chr(1) || c.id::text)
    FROM t JOIN organization.organizations c ON c.tenant_id = :tenant AND c.parent_id = t.id AND c.deleted_at IS NULL
    WHERE t.depth < :maxdepth
)
SELECT $QCOLUMNS,
    t.depth AS tree_depth, t.path AS tree_path
FROM t JOIN organization.organizations o ON o.tenant_id = :tenant AND o.id = t.id
ORDER BY t.sort_path;"
{
    cat <<SQL
\startpipeline
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT set_config(:setting, :tenant, true);
\endpipeline
SELECT 1 AS live FROM organization.organizations WHERE tenant_id = :tenant AND id = :root AND deleted_at IS NULL;
DECLARE org_tree NO SCROLL CURSOR FOR
$TREE_SQL
SQL
    # The service fetches 256 rows at a time until a batch comes back short.
    for ((i = 0; i <= TREE_NODES / 256; i++)); do echo "FETCH 256 FROM org_tree;"; done
    printf 'CLOSE org_tree;\nCOMMIT;\n'
} > "$WORK/tree.sql"
MCOLUMNS="m.id, m.contact_id, m.organization_id, m.unit_id, m.title, m.roles, m.is_primary, m.start_date::text AS start_date,
    m.end_date::text AS end_date, m.version, m.created_at, m.created_by, m.updated_at, m.updated_by"
# ListOrganizationMembers reads the organization first (the domain's get: the same statement as GetOrganization),
# then the page. as_of is unset: the service binds NULL ($4::date), here the literal NULL::date.
LIST_SQL="WITH RECURSIVE subtree (id, depth) AS (
    SELECT id, 0 FROM organization.organizations WHERE tenant_id = :tenant AND id = :root AND deleted_at IS NULL
    UNION ALL
    SELECT o.id, s.depth + 1 FROM subtree s
    JOIN organization.organizations o ON o.tenant_id = :tenant AND o.parent_id = s.id AND o.deleted_at IS NULL
    WHERE s.depth < :maxdepth
)
SELECT $MCOLUMNS, p.display_name AS contact_display_name FROM organization.memberships m JOIN organization.contacts p
    ON p.tenant_id = m.tenant_id AND p.contact_id = m.contact_id AND NOT p.deleted AND p.merged_into IS NULL
WHERE m.tenant_id = :tenant AND m.organization_id IN (SELECT id FROM subtree)
    AND (m.start_date IS NULL OR m.start_date <= coalesce(NULL::date, (now() AT TIME ZONE 'UTC')::date))
    AND (m.end_date IS NULL OR m.end_date >= coalesce(NULL::date, (now() AT TIME ZONE 'UTC')::date))
ORDER BY m.id LIMIT :limit;"
cat > "$WORK/list.sql" <<SQL
\startpipeline
SELECT set_config(:setting, :tenant, true);
SELECT $COLUMNS FROM organization.organizations WHERE tenant_id = :tenant AND id = :root;
\endpipeline
\startpipeline
SELECT set_config(:setting, :tenant, true);
$LIST_SQL
\endpipeline
SQL

# Checks before measuring. h2load counts gRPC errors as successes: one call of each must answer grpc-status 0.
METHOD_PATH=/switchboard.organization.v1.OrganizationService
for rpc in GetOrganization:get StreamOrganizationTree:tree ListOrganizationMembers:list; do
    out="$(nghttp -nv --data="$WORK/${rpc#*:}.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$METHOD_PATH/${rpc%%:*}" 2>&1)"
    echo "$out" | grep -q "grpc-status: 0" || { echo "${rpc%%:*} failed:"; echo "$out" | grep -v "DATA frame" | tail -5; exit 1; } >&2
done
# The stream holds the whole tree, and the SQL sees what the service sees: the same rows under RLS as the service's
# role (a missing tenant setting would see none).
STREAMED="$(CRMCTL_TOKEN=$TOKEN "$BIN/crmctl" orgs tree --server 127.0.0.1:$PORT --output json --timeout 120 "$ROOT" | grep -c .)"
[ "$STREAMED" -eq "$TREE_NODES" ] || { echo "the tree streamed $STREAMED nodes, not $TREE_NODES" >&2; exit 1; }
check_rows() { # <script> <statement> <expected rows>: runs the statement's results through psql as the service role
    local got
    got="$(psql "$SERVICE_URL" -qtA -v ON_ERROR_STOP=1 \
        -c "SELECT set_config('app.tenant_id', 'bench', false)" -c "$2" | tail -n +2 | grep -c . || true)"
    [ "$got" -eq "$3" ] || { echo "$1: $got rows, not $3" >&2; exit 1; }
}
subst() { sed -e "s/:setting/'app.tenant_id'/g; s/:tenant/'bench'/g; s/:id\b/'$ID'/g; s/:root\b/'$ROOT'/g; s/:maxdepth/64/g; s/:limit/51/g" ; }
check_rows get "$(subst <<<"$GET_SQL")" 1
check_rows list "$(subst <<<"$LIST_SQL")" 51
check_rows tree "$(subst <<<"$TREE_SQL")" "$TREE_NODES"
# …and pgbench's pipelines really carry the tenant setting to the statement after it (no row: division by zero).
printf '%s\n' '\startpipeline' "SELECT set_config(:setting, :tenant, true);" \
    "SELECT 1 / count(*) FROM organization.organizations WHERE tenant_id = :tenant AND id = :id;" '\endpipeline' \
    > "$WORK/pipeline-check.sql"
pgbench -n -c 1 -t 1 -M prepared "${PGVARS[@]}" -f "$WORK/pipeline-check.sql" "$SERVICE_URL" >/dev/null 2>&1 ||
    { echo "pgbench's pipeline does not see the tenant's rows" >&2; exit 1; }

# Counters read around every run, as contacts.sh: the machine's context switches and CPU time (user + system + irq,
# without `nice`) per call, and the service process's own (all its threads).
sys_counters() { awk '/^ctxt/ {c = $2} /^cpu / {t = $2 + $4 + $7 + $8} END {print c, t}' /proc/stat; }
proc_counters() { # <pid>: context switches (every thread) and CPU ticks
    local cs
    cs="$(cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}')"
    echo "$cs $(awk '{print $14 + $15}' /proc/"$1"/stat)"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
now_ns() { date +%s%N; }

# report <name> <latency log (one per line, µs in the 3rd column)…> -- <calls> <elapsed s> <sys before> <sys after>
#        [<svc before> <svc after>]
report() {
    python3 - "$TICK_US" "$@" <<'PY'
import sys
args = sys.argv[1:]
tick, name = int(args[0]), args[1]
sep = args.index("--")
logs, rest = args[2:sep], args[sep + 1:]
calls, secs = int(rest[0]), float(rest[1])
counters = [list(map(int, a.split())) for a in rest[2:]]
d = sorted(int(l.split()[2]) for f in logs for l in open(f) if l.strip())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0 if d else 0.0
n = max(calls, 1)
(c0, t0), (c1, t1) = counters[0], counters[1]
line = (f"RESULT {name} tps={calls / secs:.1f} p50_ms={p(0.5):.3f} p99_ms={p(0.99):.3f} n={calls}"
        f" cs_per_call={(c1 - c0) / n:.2f} cpu_us_per_call={(t1 - t0) * tick / n:.1f}")
if len(counters) == 4:
    (pc0, pt0), (pc1, pt1) = counters[2], counters[3]
    line += f" service_cs_per_call={(pc1 - pc0) / n:.2f} service_cpu_us_per_call={(pt1 - pt0) * tick / n:.1f}"
print(line)
PY
}

run_h2() { # run_h2 <name> <rpc> <body> <clients> <-D seconds | -n count>
    rm -f "$WORK/log"
    local out before after pbefore pafter start elapsed ok
    before="$(sys_counters)"
    pbefore="$(proc_counters $SVC_PID)"
    start="$(now_ns)"
    out="$(h2load "$5" "$6" -c "$4" -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
        -H "authorization: Bearer $TOKEN" --data="$WORK/$3.bin" --log-file="$WORK/log" "http://127.0.0.1:$PORT$METHOD_PATH/$2")"
    elapsed="$(python3 -c "print(($(now_ns) - $start) / 1e9)")"
    after="$(sys_counters)"
    pafter="$(proc_counters $SVC_PID)"
    ok="$(echo "$out" | sed -nE 's/.* ([0-9]+) succeeded.*/\1/p')"
    # A timed run's rate is over its duration, as contacts.sh; a counted one's over its wall time.
    [ "$5" = -D ] && elapsed=$6
    report "$1" "$WORK/log" -- "$ok" "$elapsed" "$before" "$after" "$pbefore" "$pafter"
}

run_pgbench() { # run_pgbench <name> <script> <mode> <clients> <-T seconds | -t count per client>
    local before after start elapsed
    rm -rf "$WORK/pglog" && mkdir "$WORK/pglog"
    before="$(sys_counters)"
    start="$(now_ns)"
    (cd "$WORK/pglog" && pgbench -n -c "$4" -j "$(($4 < 2 ? 1 : 2))" "$5" "$6" -M "$3" -l "${PGVARS[@]}" \
        -f "$WORK/$2.sql" "$SERVICE_URL" >"$WORK/pgbench.out" 2>&1) || { cat "$WORK/pgbench.out" >&2; exit 1; }
    elapsed="$(python3 -c "print(($(now_ns) - $start) / 1e9)")"
    after="$(sys_counters)"
    [ "$5" = -T ] && elapsed=$6
    # pgbench -l: one line per transaction, its latency in microseconds third.
    report "$1" "$WORK"/pglog/* -- "$(cat "$WORK"/pglog/* | grep -c .)" "$elapsed" "$before" "$after"
}

RESULTS="$WORK/results"
[[ " $OPS " == *" get "* ]] && for ((round = 1; round <= ROUNDS; round++)); do
    run_h2 service-get GetOrganization get 8 -D "$SECONDS_PER_RUN" | tee -a "$RESULTS"
    run_pgbench pgbench-get get prepared 8 -T "$SECONDS_PER_RUN" | tee -a "$RESULTS"
    run_pgbench pgbench-get-tx get-tx prepared 8 -T "$SECONDS_PER_RUN" | tee -a "$RESULTS"
done
[[ " $OPS " == *" tree "* ]] && for ((round = 1; round <= ROUNDS; round++)); do
    run_h2 service-tree StreamOrganizationTree tree 1 -n "$TREE_RUNS" | tee -a "$RESULTS"
    run_pgbench pgbench-tree tree extended 1 -t "$TREE_RUNS" | tee -a "$RESULTS"
done
[[ " $OPS " == *" list "* ]] && for ((round = 1; round <= ROUNDS; round++)); do
    for c in $LIST_CLIENTS; do
        per_client=$(((LIST_RUNS + c - 1) / c))
        run_h2 "service-list-c$c" ListOrganizationMembers list "$c" -n $((per_client * c)) | tee -a "$RESULTS"
        run_pgbench "pgbench-list-c$c" list prepared "$c" -t "$per_client" | tee -a "$RESULTS"
    done
done
sleep 3
echo "RESULT idle-rss rss_start_mb=$RSS_START rss_after_load_mb=$(rss_mb $SVC_PID VmRSS) rss_peak_mb=$(rss_mb $SVC_PID VmHWM)" \
    | tee -a "$RESULTS"
pairs=(service-get:pgbench-get service-get:pgbench-get-tx service-tree:pgbench-tree)
for c in $LIST_CLIENTS; do pairs+=("service-list-c$c:pgbench-list-c$c"); done
python3 Benchmarks/summary.py "$RESULTS" "${pairs[@]}"
python3 - "$RESULTS" "$TREE_NODES" <<'PY'
import statistics, sys
p50 = [float(line.split("p50_ms=")[1].split()[0]) for line in open(sys.argv[1]) if line.split()[1] == "service-tree"]
if p50:
    print(f"tree: {sys.argv[2]} nodes per stream, {int(sys.argv[2]) / (statistics.median(p50) / 1000):.0f} nodes/s at the median stream")
PY
