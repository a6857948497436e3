#!/usr/bin/env bash
# Stops what scripts/up.sh started: the services, then the local PostgreSQL cluster (data is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
for pidfile in .data/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$pidfile"
done
scripts/postgres.sh stop
echo "Switchboard is down."
