#!/usr/bin/env bash
# Runs the project's local PostgreSQL cluster (PostgreSQL refuses to run as root, so as the `postgres` user, with
# data, socket and log under /tmp where that user can reach them).
#   scripts/postgres.sh start   # initdb if needed, start, print the connection string
#   scripts/postgres.sh stop
#   scripts/postgres.sh url     # the connection string
# Settings: SWITCHBOARD_PG_PORT (default 54329), SWITCHBOARD_PG_DIR (default /tmp/switchboard-pg-<uid>-<port>),
# SWITCHBOARD_PG_START_SECONDS (how long start waits for the server to accept connections, default 180).
set -euo pipefail
PORT="${SWITCHBOARD_PG_PORT:-54329}"
BASE="${SWITCHBOARD_PG_DIR:-/tmp/switchboard-pg-$(id -u)-$PORT}"
DATA="$BASE/data"; SOCK="$BASE/sock"; LOG="$BASE/postgres.log"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$BIN/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() { echo "host=127.0.0.1 port=$PORT user=postgres dbname=postgres"; }

case "${1:-start}" in
start)
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system --home /var/lib/postgresql postgres; fi
    mkdir -p "$BASE" "$SOCK"
    # The directories only: the data directory is the server's own (a recursive chown while the cluster runs races with
    # databases being created and dropped, and failed on files that vanished under it).
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$BASE" "$SOCK"; fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    # max_connections: the test command runs every suite at once, each with services, pools and feed consumers of its
    # own (243 connections at the peak measured with every suite of 2026-12-04: 200 was no longer enough; on 2026-12-05,
    # with 574 tests, one run hit 300). Each idle slot costs the server a few hundred KiB of shared memory at most.
    if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        # -t: pg_ctl gives up after 60 s by default, and a machine running every test suite at once can need longer.
        # Its message goes to a file, not a pipe, which the server it starts could keep open.
        if ! as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t "${SWITCHBOARD_PG_START_SECONDS:-180}" \
            -o "-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 -c max_connections=500" start >"$BASE/pg_ctl.out" 2>&1; then
            cat "$BASE/pg_ctl.out" >&2
            tail -n 40 "$LOG" >&2
            exit 1
        fi
    fi
    url
    ;;
stop)
    if [ -f "$DATA/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    fi
    ;;
url) url ;;
*) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
