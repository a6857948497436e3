#!/usr/bin/env bash
# ExportContacts and field-sorted search pages at 1,000,000 contacts in one tenant (the database Benchmarks/search.sh
# loads: run that first), release builds:
#   - `crmctl contacts export` of the whole tenant as CSV: wall time, the service's and crmctl's peak RSS, beside a
#     plain `\copy` of the same rows' columns (the floor);
#   - SearchContacts pages sorted by a field at 8 clients (h2load, 100 contacts a page): no text by creation time, no
#     text by family name, a tag filter by creation time, the prefix "mar" by creation time and by family name
#     descending (rps, p50, p99);
#   - with BENCH_SECOND_BIN (another contacts binary, e.g. an earlier commit's), the same pages through both at one
#     client, and its export for BENCH_SECOND_SECONDS (default 60) at most: the rows it wrote in that time.
#   Benchmarks/export.sh     (BENCH_SECONDS=5 per page run)
set -Eeuo pipefail
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-5}"
SECOND_BIN="${BENCH_SECOND_BIN:-}"
SECOND_SECONDS="${BENCH_SECOND_SECONDS:-60}"
PORT=50077
SECOND_PORT=50078
WORK="$(mktemp -d)"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

swift build -c release --static-swift-stdlib --product contacts >&2
swift build -c release --static-swift-stdlib --product crmctl >&2
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
DB=switchboard_bench_search
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
have="$(psql "$DBADMIN" -qtAc "SELECT count(*) FROM contacts.contacts WHERE tenant_id = 'bench' AND deleted_at IS NULL" 2>/dev/null || echo 0)"
if [ "${have:-0}" -lt 1000000 ]; then
    echo "export.sh: the database $DB holds ${have:-no} contacts of tenant bench; Benchmarks/search.sh loads it" >&2
    exit 1
fi
SERVICE_URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=contacts_service"
SECRET=bench-secret-0123456789abcdef0123456789
SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN/contacts" migrate >/dev/null
start() { # start <binary> <port>: prints its pid
    SWITCHBOARD_GRPC_PORT=$2 SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_DB_POOL_SIZE=8 \
        SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=warning "$1" >"$WORK/service-$2.log" 2>&1 &
    echo $!
}
SVC_PID="$(start "$BIN/contacts" $PORT)"
PIDS+=("$SVC_PID")
if [ -n "$SECOND_BIN" ]; then
    SECOND_PID="$(start "$SECOND_BIN" $SECOND_PORT)"
    PIDS+=("$SECOND_PID")
fi
sleep 3
TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant bench --user bench --roles read-only --ttl 86400)"

echo "== export of 1,000,000 contacts as CSV"
/usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN/crmctl" contacts export --server 127.0.0.1:$PORT --token "$TOKEN" --timeout 3600 \
    --format csv >"$WORK/export.csv" 2>"$WORK/export.err"
read -r wall crmctl_kb <"$WORK/time"
rows=$(($(wc -l <"$WORK/export.csv") - 1))
service_kb="$(awk '/VmHWM/ {print $2}' /proc/$SVC_PID/status)"
echo "RESULT export rows=$rows seconds=$wall rows_per_s=$(python3 -c "print(round($rows / $wall))") crmctl_peak_rss_mb=$((crmctl_kb / 1024)) service_peak_rss_mb=$((service_kb / 1024)) bytes=$(stat -c %s "$WORK/export.csv")"
start_copy=$(date +%s.%N)
psql "$DBADMIN" -qc "\\copy (SELECT id, given_name, family_name, emails, phones, addresses, contact_type, status, tags, owner_id, custom_fields, created_at FROM contacts.contacts WHERE tenant_id = 'bench' AND deleted_at IS NULL ORDER BY created_at, id) TO '$WORK/copy.csv' CSV"
echo "RESULT copy seconds=$(python3 -c "import time; print(round(time.time() - $start_copy, 2))")"
if [ -n "$SECOND_BIN" ]; then
    timeout "$SECOND_SECONDS" "$BIN/crmctl" contacts export --server 127.0.0.1:$SECOND_PORT --token "$TOKEN" --timeout 3600 \
        --format csv >"$WORK/second.csv" 2>/dev/null || true
    second_rows=$(($(wc -l <"$WORK/second.csv") - 1))
    echo "RESULT second-export rows=$second_rows in ${SECOND_SECONDS}s rows_per_s=$((second_rows / SECOND_SECONDS))"
fi

PYTHONPATH=Benchmarks python3 - "$WORK" <<'PY'
import sys
from grpc_frames import field, frame, number, varint
work = sys.argv[1]
page = field(2, bytes([1 << 3]) + varint(100))  # PageRequest{page_size: 100}
sort = lambda by: number(12, by)  # SortBy: 2 create time, 4 family name
descending = number(13, 1)
open(f"{work}/all-created.bin", "wb").write(frame(page + sort(2)))
open(f"{work}/all-family.bin", "wb").write(frame(page + sort(4)))
open(f"{work}/tag-created.bin", "wb").write(frame(page + field(5, b"tag7") + sort(2)))
open(f"{work}/mar-created.bin", "wb").write(frame(field(1, b"mar") + page + sort(2)))
open(f"{work}/mar-family-desc.bin", "wb").write(frame(field(1, b"mar") + page + sort(4) + descending))
PY
METHOD=/switchboard.contacts.v1.ContactsService/SearchContacts
H2=(-m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN")
pages() { # pages <name> <port> <clients>
    for search in all-created all-family tag-created mar-created mar-family-desc; do
        # h2load counts gRPC errors as successes: one call first must answer grpc-status 0.
        nghttp -v --data="$WORK/$search.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
            "http://127.0.0.1:$2$METHOD" 2>&1 | grep -aq "grpc-status: 0" || { echo "export.sh: $search failed on port $2" >&2; exit 1; }
        rm -f "$WORK/log"
        out="$(h2load -D "$SECONDS_PER_RUN" -c "$3" "${H2[@]}" --data="$WORK/$search.bin" --log-file="$WORK/log" "http://127.0.0.1:$2$METHOD")"
        ok="$(echo "$out" | grep -oE "[0-9]+ succeeded" | cut -d' ' -f1)"
        python3 - "$1-$search" "$ok" "$SECONDS_PER_RUN" "$WORK/log" <<'PY'
import sys
name, ok, secs, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
d = sorted(int(l.split()[2]) for l in open(log) if l.strip())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000
print(f"RESULT {name} rps={ok / secs:.0f} p50_ms={p(.5):.2f} p99_ms={p(.99):.2f}")
PY
    done
}
echo "== pages of 100, sorted by a field, 8 clients"
pages service $PORT 8
if [ -n "$SECOND_BIN" ]; then
    # One client: at eight, a page of a second or more each would pass the search timeout and answer errors.
    echo "== the same pages, 1 client, the new binary then the second"
    pages service-1 $PORT 1
    pages "${BENCH_SECOND_NAME:-before}-1" $SECOND_PORT 1
fi
exit 0
