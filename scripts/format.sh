#!/usr/bin/env bash
# The code style (.swift-format, swift-format from the Swift toolchain) over every Swift file we write by hand
# (generated code is excluded: it follows its generator).
#   scripts/format.sh          rewrite files in place
#   scripts/format.sh --check  report violations and fail on any (the test command runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t FILES < <(git ls-files --cached --others --exclude-standard '*.swift' | grep -v '/Generated/' | grep -v '^Benchmarks/')
if [ "${1:-}" = "--check" ]; then
    swift format lint --strict --configuration .swift-format "${FILES[@]}"
else
    swift format format --in-place --configuration .swift-format "${FILES[@]}"
fi
