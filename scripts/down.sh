#!/usr/bin/env bash
# Stops what scripts/up.sh started.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .data/run/interop-server.pid ]; then
    kill "$(cat .data/run/interop-server.pid)" 2>/dev/null || true
    rm -f .data/run/interop-server.pid
fi
echo "Switchboard is down."
