#!/usr/bin/env bash
# Starts the Switchboard platform locally: today, the RPC platform's interop server (TestService, health,
# reflection). Later issues add the services and their PostgreSQL. Stop with scripts/down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
swift build -c release --product interop-server
mkdir -p .data/run
PORT="${SWITCHBOARD_INTEROP_PORT:-50051}"
if [ -f .data/run/interop-server.pid ] && kill -0 "$(cat .data/run/interop-server.pid)" 2>/dev/null; then
    echo "interop-server already running (pid $(cat .data/run/interop-server.pid))"
else
    nohup "$(swift build -c release --show-bin-path)/interop-server" --port "$PORT" > .data/run/interop-server.log 2>&1 &
    echo $! > .data/run/interop-server.pid
    sleep 1
    kill -0 "$(cat .data/run/interop-server.pid)" || { cat .data/run/interop-server.log; exit 1; }
fi
cat <<MSG
Switchboard is up.
  interop-server (grpc.testing.TestService, grpc.health.v1.Health, reflection v1/v1alpha): 127.0.0.1:$PORT
  logs: .data/run/interop-server.log        stop: scripts/down.sh
  try:  .venv/bin/python -c "import grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; print(g.HealthStub(grpc.insecure_channel('127.0.0.1:$PORT')).Check(h.HealthCheckRequest()))"
MSG
