#!/usr/bin/env bash
# Unary echo, Switchboard vs grpc-swift-2 2.4.3, side by side in one run on loopback, measured with h2load.
#   Benchmarks/run.sh            (BENCH_SECONDS=8 per run, BENCH_ROUNDS=3 → A B A B A B per configuration)
#   BENCH_PEER_BIN=/path/echo-server BENCH_PEER_NAME=before Benchmarks/run.sh
#                                compares against another server taking the same port argument instead, e.g. the
#                                echo-server built at an earlier commit (a regression check on a noisy machine)
# Prints one line per run and a summary with medians and ratios. Not part of the test suite.
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
ROUNDS="${BENCH_ROUNDS:-3}"
SB_PORT=50061
GS_PORT=50062
WORK="$(mktemp -d)"
trap 'kill $SB_PID $GS_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }
swift build -c release --static-swift-stdlib --product echo-server >&2
SB_BIN="$(swift build -c release --show-bin-path)/echo-server"
PEER_NAME="${BENCH_PEER_NAME:-grpc-swift-2}"
if [ -n "${BENCH_PEER_BIN:-}" ]; then
    GS_BIN="$BENCH_PEER_BIN"
else
    (cd Benchmarks/GRPCSwiftPeer && swift build -c release --scratch-path ../../.build-bench-peer >&2)
    GS_BIN="$(cd Benchmarks/GRPCSwiftPeer && swift build -c release --scratch-path ../../.build-bench-peer --show-bin-path)/grpc-swift-echo"
fi

# One gRPC-framed grpc.testing.SimpleRequest{payload{body: 64 bytes}}.
python3 - "$WORK/request.bin" <<'PY'
import struct, sys
body = b"x" * 64
payload = b"\x12" + bytes([len(body)]) + body
request = b"\x1a" + bytes([len(payload)]) + payload
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(request)) + request)
PY

"$SB_BIN" $SB_PORT & SB_PID=$!
"$GS_BIN" $GS_PORT & GS_PID=$!
sleep 2

URL_PATH=/grpc.testing.TestService/UnaryCall
H2ARGS=(--data="$WORK/request.bin" -H 'content-type: application/grpc' -H 'te: trailers')

# h2load counts a gRPC error in trailers as success: check each server answers grpc-status 0 with the echo.
for port in $SB_PORT $GS_PORT; do
    out="$(nghttp -v --data="$WORK/request.bin" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$port$URL_PATH" 2>&1)"
    echo "$out" | grep -q "grpc-status: 0" || { echo "port $port did not answer grpc-status 0:"; echo "$out"; exit 1; } >&2
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK="$(getconf CLK_TCK)"

run() { # run <name> <pid> <port> <c> <m>
    local name=$1 pid=$2 port=$3 c=$4 m=$5
    local before after out
    rm -f "$WORK/log"
    before=$(cpu_ticks "$pid")
    out="$(h2load -D "$SECONDS_PER_RUN" -c "$c" -m "$m" -t 1 "${H2ARGS[@]}" --log-file="$WORK/log" "http://127.0.0.1:$port$URL_PATH")"
    after=$(cpu_ticks "$pid")
    python3 - "$name" "$c" "$m" "$WORK/log" "$((after - before))" "$CLK_TCK" "$SECONDS_PER_RUN" <<PY
import sys, re
name, c, m, log, ticks, hz, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
out = """$out"""
ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
succeeded, failed, errored = (int(x) for x in ok.groups())
durations = sorted(int(line.split()[2]) for line in open(log) if line.strip())
p = lambda q: durations[min(len(durations) - 1, int(q * len(durations)))] / 1000.0
rps = succeeded / secs
cpu_us = ticks / hz * 1e6 / max(succeeded, 1)
print(f"RESULT {name} c={c} m={m} rps={rps:.0f} p50_ms={p(0.5):.3f} p99_ms={p(0.99):.3f} cpu_us_per_req={cpu_us:.1f} failed={failed + errored}")
PY
}

# Warm both servers up (not measured).
h2load -D 2 -c 8 -m 32 -t 1 "${H2ARGS[@]}" "http://127.0.0.1:$SB_PORT$URL_PATH" >/dev/null
h2load -D 2 -c 8 -m 32 -t 1 "${H2ARGS[@]}" "http://127.0.0.1:$GS_PORT$URL_PATH" >/dev/null

RESULTS="$WORK/results"
for config in "8 32" "1 1"; do
    set -- $config
    for ((round = 1; round <= ROUNDS; round++)); do
        run switchboard $SB_PID $SB_PORT "$1" "$2" | tee -a "$RESULTS"
        run "$PEER_NAME" $GS_PID $GS_PORT "$1" "$2" | tee -a "$RESULTS"
    done
done

python3 - "$RESULTS" "$PEER_NAME" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    fields = dict(p.split("=") for p in parts[2:])
    rows[(parts[1], f"{fields['c']}/{fields['m']}")].append({k: float(v) for k, v in fields.items() if k not in ("c", "m")})
print("\nSUMMARY (medians over rounds)")
print(f"{'server':<14}{'c/m':<8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'cpu µs/req':>12}")
med = {}
for (server, cm), runs in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    med[(server, cm)] = m
    print(f"{server:<14}{cm:<8}{m['rps']:>10.0f}{m['p50_ms']:>10.3f}{m['p99_ms']:>10.3f}{m['cpu_us_per_req']:>12.1f}")
for cm in sorted({k[1] for k in med}):
    a, b = med.get(("switchboard", cm)), med.get((sys.argv[2], cm))
    if a and b:
        print(f"ratio switchboard/{sys.argv[2]} at c/m={cm}: req/s {a['rps']/b['rps']:.2f}x, p99 {a['p99_ms']/b['p99_ms']:.2f}x, cpu/req {a['cpu_us_per_req']/b['cpu_us_per_req']:.2f}x")
PY
