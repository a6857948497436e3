#!/usr/bin/env bash
# Stops what scripts/up.sh started: the gateway, every service in services/index and the interop server (SIGTERM: each drains
# its calls), then the local PostgreSQL cluster (data is kept), and the second cluster the test command starts for the
# contacts outage test, if it is running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
for name in gateway "${SERVICE_NAMES[@]}" interop-server; do
    pidfile=".data/run/$name.pid"
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$pidfile"
done
scripts/postgres.sh stop
# The outage test's cluster, on the port scripts/test.sh gives it (below the ephemeral range); a no-op without it.
outage=$(($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range) - 10))
[ "$outage" -gt 1024 ] || outage=$((${SWITCHBOARD_PG_PORT:-54329} + 10))
SWITCHBOARD_PG_PORT="$outage" scripts/postgres.sh stop
echo "Switchboard is down."
