#!/usr/bin/env bash
# Regenerates every generated file from Protos/: protoc-c C output and the Swift types and stubs.
# The only way generated code changes; CI runs it and fails if the committed tree differs.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOS=Protos
# Every contract proto (the plugin's own protos are generated separately, into CProtocPlugin only).
mapfile -t FILES < <(cd "$PROTOS" && find . -name '*.proto' -not -path './plugin/*' | sed 's|^\./||' | LC_ALL=C sort)

emit_c() { # emit_c <proto root> <target dir> <files...>
    local root=$1 target=$2; shift 2
    local tmp; tmp=$(mktemp -d)
    (cd "$root" && protoc-c -I. --c_out="$tmp" "$@")
    rm -rf "$target/include" "$target/src"
    mkdir -p "$target/include" "$target/src"
    (cd "$tmp" && find . -name '*.pb-c.h' | while read -r h; do mkdir -p "$OLDPWD/$target/include/$(dirname "$h")"; cp "$h" "$OLDPWD/$target/include/$h"; done)
    (cd "$tmp" && find . -name '*.pb-c.c' | while read -r c; do mkdir -p "$OLDPWD/$target/src/$(dirname "$c")"; cp "$c" "$OLDPWD/$target/src/$c"; done)
    rm -rf "$tmp"
}

emit_c "$PROTOS/plugin" Sources/CProtocPlugin google/protobuf/descriptor.proto google/protobuf/compiler/plugin.proto
emit_c "$PROTOS" Sources/CSwitchboardProtos "${FILES[@]}"

swift build -c release --product protoc-gen-switchboard ${SWIFT_BUILD_FLAGS:-} >&2
PLUGIN="$(swift build -c release --show-bin-path)/protoc-gen-switchboard"

OUT=Sources/SwitchboardProtos/Generated
rm -rf "$OUT" && mkdir -p "$OUT"
(cd "$PROTOS" && protoc -I. --plugin=protoc-gen-switchboard="$PLUGIN" --switchboard_out="$OLDPWD/$OUT" "${FILES[@]}")

# Python stubs for the interop tests are generated at test time (grpcio-tools), not committed.
echo "generated: $(find Sources/CSwitchboardProtos Sources/CProtocPlugin $OUT -type f | wc -l) files" >&2
