#!/usr/bin/env bash
# Repeats every transport attack of issue 7 against one interop-server process and prints its resident memory
# before and after each batch: memory must stay flat (a few MiB) however often an attack is repeated.
#   Benchmarks/hostile.sh            (HOSTILE_REPEATS=1000 per attack; the two slow attacks run HOSTILE_SLOW_REPEATS=100)
# The server runs the release build (HOSTILE_CONFIGURATION=debug for the debug one) with its defaults.
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
REPEATS="${HOSTILE_REPEATS:-1000}"
SLOW_REPEATS="${HOSTILE_SLOW_REPEATS:-100}"
PORT=50081
scripts/bootstrap.sh >&2
CONFIGURATION="${HOSTILE_CONFIGURATION:-release}"
swift build -c "$CONFIGURATION" --product interop-server >&2
BIN="$(swift build -c "$CONFIGURATION" --show-bin-path)"
"$BIN/interop-server" --port $PORT 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
rss() { awk '/VmRSS/ {print $2}' /proc/$PID/status; }
echo "interop-server pid $PID, idle RSS $(rss) KiB"
printf '%-24s %8s %14s %14s %10s\n' attack repeats rss_before_kib rss_after_kib growth_mib
for attack in hpack_bomb unary_extra_message gzip_bomb_unary extreme_timeouts ping_ack_flood http1_request \
              long_reflection_symbol slow_reader gzip_bomb_stream; do
    n=$REPEATS
    case $attack in slow_reader|gzip_bomb_stream) n=$SLOW_REPEATS ;; esac
    out="$(.venv/bin/python Tests/Interop/hostile_probe.py --port $PORT --case $attack --pid $PID --repeat "$n" --hold 0.2)"
    echo "$out" | awk -v a=$attack -v n=$n '/^PASS/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%-24s %8s %14s %14s %10s\n", a, n, v["rss_before_kib"], v["rss_after_kib"], v["growth_mib"] }
        /^FAIL/ { print; exit 1 }'
done
echo "final RSS $(rss) KiB"
