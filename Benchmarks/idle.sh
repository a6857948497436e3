#!/usr/bin/env bash
# The services' resident memory at rest (issue 13 and the other services' target: idle RSS < 30 MB), per start:
#   idle    VmRSS 3 s after start, nothing called (the start-up check only connects to the port);
#   probed  then its first call (scripts/services.sh, service_probe: an authenticated read, one database round trip)
#           and 2 s: VmRSS, as analytics.sh and communication.sh take their "idle" figure after their start-up probe;
# plus anonymous memory and threads. Release builds on their own migrated databases (sb_idle_<service>), started as the
# other benchmark scripts start them.
#   Benchmarks/idle.sh [service…]   (every service of services/index by default; BENCH_IDLE_STARTS=5,
#                                    BENCH_SKIP_BUILD=1 uses the release binaries as they are,
#                                    BENCH_COLD=1 drops each executable from the page cache before each start, as a
#                                    freshly deployed image reads it from disk,
#                                    BENCH_BEFORE_DIR=<dir> alternates, start by start, with the executables of the same
#                                    names in <dir>, e.g. copies from a build at another commit: a before/after on a
#                                    shared machine)
# How the executable came into the page cache moves the figures by 1-2 MB (a `cp` of the same file measured more than
# the linker's output): compare only figures taken the same way. Results: BENCHMARKS.md, "The analytics service".
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
source scripts/services.sh
STARTS="${BENCH_IDLE_STARTS:-5}"
SERVICES=("$@")
[ ${#SERVICES[@]} -gt 0 ] || SERVICES=("${SERVICE_NAMES[@]}")
for tool in nghttp psql; do
    command -v $tool >/dev/null || { echo "$tool missing (apt-get install nghttp2-client postgresql-client)" >&2; exit 1; }
done
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    for name in "${SERVICES[@]}" crmctl; do swift build -c release --static-swift-stdlib --product "$name" >&2; done
fi
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
PGPORT_="${SWITCHBOARD_PG_PORT:-54329}"
SECRET=bench-secret-0123456789abcdef0123456789
WORK="$(mktemp -d)"
SVC_PID=
trap '[ -n "$SVC_PID" ] && kill $SVC_PID 2>/dev/null; rm -rf "$WORK"' EXIT
TOKEN="$("$BIN/crmctl" token --secret "$SECRET" --tenant bench --user bench --roles admin --ttl 86400)"
status() { awk -v k="$2" '$1 == k ":" {print $2}' /proc/"$1"/status; }

measure() { # measure <service> <executable> <label>: one start
    local name=$1 exe=$2 label=$3 port out idle
    if [ -n "${BENCH_COLD:-}" ]; then
        python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$exe"
    fi
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    env SWITCHBOARD_DATABASE_URL="$URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_GRPC_PORT="$port" SWITCHBOARD_ADMIN_PORT=0 \
        SWITCHBOARD_LOG_LEVEL=error "$exe" >"$WORK/service.log" 2>&1 &
    SVC_PID=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
    sleep 3
    idle="$(status $SVC_PID VmRSS)"
    local anon threads
    anon="$(status $SVC_PID RssAnon)" threads="$(status $SVC_PID Threads)"
    out="$(nghttp -nv --data="$WORK/$name.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$port$PROBE_PATH" 2>&1)" || true
    # OK or NOT_FOUND (no row has the probe's id): the call passed authentication and reached the database.
    echo "$out" | grep -Eq "grpc-status: (0|5)$" || { echo "$name did not answer its probe with OK or NOT_FOUND:" >&2; echo "$out" | tail -5 >&2; exit 1; }
    sleep 2
    echo "RESULT $name $label idle_rss_kib=$idle probed_rss_kib=$(status $SVC_PID VmRSS) idle_anon_kib=$anon threads=$threads"
    kill $SVC_PID; wait $SVC_PID 2>/dev/null || true; SVC_PID=
}

for name in "${SERVICES[@]}"; do
    DB="sb_idle_$name"
    psql "$ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 || psql "$ADMIN" -qc "CREATE DATABASE $DB"
    psql "${ADMIN/dbname=postgres/dbname=$DB}" -q -v DBNAME="$DB" -f "services/$name/provision.sql" >/dev/null
    URL="host=127.0.0.1 port=$PGPORT_ dbname=$DB user=${name}_service"
    SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN/$name" migrate >/dev/null
    read -r PROBE_PATH body <<<"$(service_probe "$name")"
    python3 -c "import struct, sys; b = bytes.fromhex(sys.argv[1]); sys.stdout.buffer.write(b'\0' + struct.pack('>I', len(b)) + b)" \
        "$body" >"$WORK/$name.bin"
    for ((start = 1; start <= STARTS; start++)); do
        if [ -n "${BENCH_BEFORE_DIR:-}" ]; then measure "$name" "$BENCH_BEFORE_DIR/$name" before; fi
        measure "$name" "$BIN/$name" "$([ -n "${BENCH_BEFORE_DIR:-}" ] && echo after || echo start)"
    done
done | tee "$WORK/results"
python3 - "$WORK/results" <<'PY'
import collections, re, statistics, sys
runs = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    m = re.match(r"RESULT (\S+) (\S+) idle_rss_kib=(\d+) probed_rss_kib=(\d+)", line)
    if m:
        runs[(m.group(1), m.group(2))]["idle"].append(int(m.group(3)))
        runs[(m.group(1), m.group(2))]["probed"].append(int(m.group(4)))
for (name, label), figures in runs.items():
    text = ", ".join(f"{k} {statistics.median(v):,.0f} [{min(v):,}-{max(v):,}] KiB" for k, v in figures.items())
    print(f"RESULT summary {name} {label} ({len(figures['idle'])} starts): {text}")
PY
