#!/usr/bin/env bash
# Runs every test: generated-code drift check, unit, integration (HTTP/2 loopback, real PostgreSQL) and interop
# (grpcio) tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
scripts/bootstrap.sh

# Code style: swift-format with .swift-format (scripts/format.sh rewrites; here any violation fails the run).
scripts/format.sh --check

# Generated code must be exactly what `make generate` produces from Protos/.
GENERATED=(Sources/CSwitchboardProtos Sources/CProtocPlugin Sources/SwitchboardProtos/Generated Sources/*Service/Generated
    compose/docker-compose.yml)
scripts/generate.sh
if [ -n "$(git status --porcelain -- "${GENERATED[@]}")" ]; then
    echo "generated code is stale: run 'make generate' and commit the result" >&2
    git status --porcelain -- "${GENERATED[@]}" >&2
    exit 1
fi

# A real PostgreSQL for the data-layer tests, run by the project itself.
export SWITCHBOARD_PG_URL="$(scripts/postgres.sh start)"
# The contacts outage test stops and restarts a cluster of its own. It is created and started here, before every suite
# runs at once, and its port lies below the kernel's ephemeral range, where no outgoing connection or port-0 server of
# another test can take it while the test has the cluster down.
# (Where the range starts too low for that, at or below 1034, the port above the main cluster's, as before.)
SWITCHBOARD_PG_OUTAGE_PORT=$(($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range) - 10))
[ "$SWITCHBOARD_PG_OUTAGE_PORT" -gt 1024 ] || SWITCHBOARD_PG_OUTAGE_PORT=$((${SWITCHBOARD_PG_PORT:-54329} + 10))
export SWITCHBOARD_PG_OUTAGE_PORT
SWITCHBOARD_PG_PORT="$SWITCHBOARD_PG_OUTAGE_PORT" scripts/postgres.sh start >/dev/null
# The local cluster has no Kerberos: without this libpq tries GSS encryption on every TCP connection, and a connection
# still opening when a test process exits can crash in the Kerberos library's exit-time teardown.
export PGGSSENCMODE=disable

export SWITCHBOARD_PYTHON="$PWD/.venv/bin/python"
export SWITCHBOARD_INTEROP_STUBS="$(Tests/Interop/gen_stubs.sh "$PWD/.build/interop-stubs")"
swift build --product interop-server
export SWITCHBOARD_INTEROP_SERVER="$(swift build --show-bin-path)/interop-server"
swift build --product interop-client
export SWITCHBOARD_INTEROP_CLIENT="$(swift build --show-bin-path)/interop-client"
# The runtime has no database: crmctl and the gateway must not link libpq.
for tool in crmctl gateway; do
    swift build --product "$tool"
    if ldd "$(swift build --show-bin-path)/$tool" | grep -q libpq; then
        echo "$tool links libpq: something in SwitchboardRuntime or the gateway depends on the database layer" >&2
        exit 1
    fi
done
# Each service's executable, for the tests that run it as a process: SWITCHBOARD_<NAME>_BIN.
for name in "${SERVICE_NAMES[@]}"; do
    swift build --product "$name"
    export "$(service_var "$name")_BIN=$(swift build --show-bin-path)/$name"
done
# A short run of every fuzzer (Fuzz/; 20 s each) over the committed corpora.
scripts/fuzz.sh --seconds 20
# Every suite provisions databases of its own (sb_test_*, about 9 MB each, 350 of them a run): dropped before the run
# (an interrupted run's) and after it, so a run leaves none behind in the cluster.
drop_test_databases() {
    for db in $(psql "$SWITCHBOARD_PG_URL" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'sb\_test\_%'"); do
        psql "$SWITCHBOARD_PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    done
}
drop_test_databases
# CI keeps only the end of the output: the failures are repeated there, after the run.
set +e
swift test "$@" 2>&1 | tee .build/test-output.log
status=${PIPESTATUS[0]}
drop_test_databases
set -e
if [ "$status" -ne 0 ]; then
    echo "---- what failed (the whole output is in .build/test-output.log) ----"
    grep -aE 'recorded an issue|^✘|[Ff]atal error|Exited with|error: ' .build/test-output.log | grep -av ' info ' | tail -80
fi
exit "$status"
