#!/usr/bin/env bash
# Generates grpcio stubs from Protos/ for the interop tests (not committed: they are built fresh each run).
# Python's own `grpc` package would shadow protos under grpc/, so every file is moved under `sbproto/` and its
# imports rewritten; packages, services and wire format are unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${SWITCHBOARD_PYTHON:-$ROOT/.venv/bin/python}"
OUT="${1:-$ROOT/.build/interop-stubs}"
SRC="$OUT/src"
rm -rf "$OUT" && mkdir -p "$SRC/sbproto"
(cd "$ROOT/Protos" && find . -name '*.proto' -not -path './plugin/*' -not -path './google/protobuf/*' | while read -r f; do
    mkdir -p "$SRC/sbproto/$(dirname "$f")"
    sed -E 's#^import "((grpc|switchboard|google/rpc)/)#import "sbproto/\1#' "$f" > "$SRC/sbproto/$f"
done)
mapfile -t FILES < <(cd "$SRC" && find sbproto -name '*.proto' | sort)
(cd "$SRC" && "$PY" -m grpc_tools.protoc -I. --python_out="$OUT" --grpc_python_out="$OUT" "${FILES[@]}")
find "$OUT/sbproto" -type d -exec touch {}/__init__.py \;
echo "$OUT"
