#!/usr/bin/env bash
# Installs what building and testing Switchboard needs on a Debian machine; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libpq-dev postgresql
    nghttp2-client zlib1g-dev python3-venv curl openssl)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

command -v swift >/dev/null || { echo "swift (6.x) is not on PATH; install the Swift toolchain first" >&2; exit 1; }

# Python with grpcio, the stock client for the interop tests.
PY_PACKAGES=(grpcio==1.85.1 grpcio-tools==1.85.1 grpcio-health-checking==1.85.1 grpcio-reflection==1.85.1 protobuf h2 openapi-spec-validator)
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import grpc, grpc_tools, grpc_health, grpc_reflection, h2, openapi_spec_validator" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
