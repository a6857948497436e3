#!/usr/bin/env bash
# Writes services/startup-order.txt: the functions each service executable runs from start to idle, and for its first
# authenticated call (the probe the benchmarks make), which the services' link (Package.swift, `serviceLinking`)
# places first in the executable's text (lld --symbol-ordering-file).
#
# Why: an idle service's resident set is mostly its own executable's text, and the kernel maps text in 64 KiB
# windows around each page a fault touches (fault-around), from the page cache. Start-up runs about 1 MiB of functions
# spread over 24 MiB of text, so before this ordering 12 MB of text were resident at idle; with the objects that
# hold those functions placed together, 8 MB (BENCHMARKS.md, "The analytics service", idle RSS).
#
#   scripts/startup-order.sh     (release build with --static-swift-stdlib first, unless SKIP_BUILD=1)
# Needs valgrind (callgrind), nghttp, psql and the project's PostgreSQL (scripts/postgres.sh). Run it after changes
# that move start-up work between modules (new services, new background services, a dependency update); names that
# no longer exist are ignored by the linker, so a stale list costs resident memory, never a failed build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
if [ -z "${SKIP_BUILD:-}" ]; then swift build -c release --static-swift-stdlib >&2; fi
BIN="$(swift build -c release --show-bin-path)"
for tool in valgrind callgrind_control nghttp psql objcopy; do
    command -v $tool >/dev/null || { echo "$tool missing (apt-get install valgrind nghttp2-client postgresql-client binutils)" >&2; exit 1; }
done
ADMIN="$(scripts/postgres.sh start)"
PGPORT_="${SWITCHBOARD_PG_PORT:-54329}"
SECRET=startup-order-secret-0123456789abcdef0123
WORK="$(mktemp -d)"
SVC_PID=
trap '[ -n "$SVC_PID" ] && kill -9 $SVC_PID 2>/dev/null; rm -rf "$WORK"' EXIT

TOKEN="$("$BIN/crmctl" token --secret "$SECRET" --tenant startup --user startup --roles admin --ttl 3600)"

for name in "${SERVICE_NAMES[@]}"; do
    db="sb_startup_$name"
    psql "$ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 || psql "$ADMIN" -qc "CREATE DATABASE $db"
    psql "${ADMIN/dbname=postgres/dbname=$db}" -q -v DBNAME="$db" -f "services/$name/provision.sql" >/dev/null
    url="host=127.0.0.1 port=$PGPORT_ dbname=$db user=${name}_service"
    SWITCHBOARD_DATABASE_URL="$url" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN/$name" migrate >/dev/null 2>&1
    # valgrind 3.19 cannot read the DWARF 5 the toolchain writes: a copy without debug information (symbols stay).
    objcopy --strip-debug "$BIN/$name" "$WORK/$name"
    read -r path body <<<"$(service_probe "$name")"
    python3 -c "import struct, sys; b = bytes.fromhex(sys.argv[1]); sys.stdout.buffer.write(b'\0' + struct.pack('>I', len(b)) + b)" \
        "$body" >"$WORK/$name.bin"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    env SWITCHBOARD_DATABASE_URL="$url" SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_GRPC_PORT="$port" SWITCHBOARD_ADMIN_PORT=0 \
        SWITCHBOARD_LOG_LEVEL=error valgrind --tool=callgrind --demangle=no --callgrind-out-file="$WORK/$name.callgrind" \
        "$WORK/$name" >"$WORK/$name.log" 2>&1 &
    SVC_PID=$!
    for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
    sleep 5 # idle, as the benchmarks measure it (3 s after start), under valgrind's slowdown
    nghttp -nv --data="$WORK/$name.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$port$path" 2>&1 | grep -Eq "grpc-status: (0|5)$" || { echo "$name did not answer its probe with OK or NOT_FOUND" >&2; exit 1; }
    sleep 3
    callgrind_control -d "$SVC_PID" >/dev/null 2>&1
    sleep 2
    kill -9 "$SVC_PID"; wait "$SVC_PID" 2>/dev/null || true; SVC_PID=
    ls "$WORK/$name.callgrind".* >/dev/null || { echo "no profile of $name:" >&2; tail "$WORK/$name.log" >&2; exit 1; }
    echo "$name profiled" >&2
done

# The functions each profile shows executed in the service's own executable (callgrind names an object once, as
# "ob=(n) path" or "cob=(n) path", then by "(n)"; functions likewise with fn= / cfn=). SwiftPM relinks nothing when
# only this list changes: delete the service executables (or touch their main.swift) to relink with it.
python3 - "$WORK" >services/startup-order.txt <<'PY'
import glob, os, re, sys
names = set()
for profile in glob.glob(os.path.join(sys.argv[1], "*.callgrind.*")):
    executable = os.path.join(sys.argv[1], os.path.basename(profile).split(".")[0])
    objects, functions, current = {}, {}, None
    for line in open(profile, errors="replace"):
        m = re.match(r"(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, key, name = m.groups()
        table = objects if kind.endswith("ob") else functions
        if name:
            table[key] = name
        if kind == "ob":
            current = objects[key]
        elif kind == "fn" and current == executable and not functions[key].startswith("0x"):
            names.add(re.sub(r"'\d+$", "", functions[key]))  # callgrind marks recursion levels: name'2
print("# Generated by scripts/startup-order.sh: DO NOT EDIT. The functions the services run from start to idle and")
print("# for a first call, placed first in their text by the link (lld --symbol-ordering-file). One mangled name a line.")
for name in sorted(names):
    print(name)
PY
echo "services/startup-order.txt: $(grep -vc '^#' services/startup-order.txt) functions" >&2
