#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (address sanitizer + libFuzzer over the whole server) and runs each one.
#
#   scripts/fuzz.sh                      every target for 20 s (the short run scripts/test.sh does)
#   scripts/fuzz.sh --seconds 300        every target for 5 minutes
#   scripts/fuzz.sh --runs 10000000      every target for 10 million executions (the long run)
#   scripts/fuzz.sh --merge FuzzJSON     one target; afterwards merge what it found into Fuzz/Corpus/FuzzJSON
#
# Fuzz/Corpus/<target>/ is only read: new inputs go to a temporary directory that is deleted afterwards, so a run
# leaves the work tree unchanged unless --merge asks for the (minimised) additions. A crash fails the script; the
# crashing input is kept in Fuzz/Crashes/<target>/ for `Fuzz/.build/release/<target> <file>` to reproduce, and every
# input there is run again first on each run, so a fixed bug stays fixed.
# Environment: FUZZ_JOBS (parallel processes per target, default 1), FUZZ_ARGS (more libFuzzer options).
set -euo pipefail
# libFuzzer reports crashes itself; Swift's backtracer would run first and trip AddressSanitizer.
export SWIFT_BACKTRACE=enable=no
cd "$(dirname "$0")/.."

SECONDS_EACH=20
RUNS=""
MERGE=0
TARGETS=()
while (($#)); do
    case "$1" in
        --seconds) SECONDS_EACH="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --merge) MERGE=1; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
ALL=(FuzzJSON FuzzProtoJSON FuzzPageToken FuzzDeframer FuzzProtoDecode FuzzHTTP2Server)
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")

# The protobuf fuzzer's table of request messages follows the generated services.
python3 Fuzz/generate.py
if [ -n "$(git status --porcelain -- Fuzz/Sources/FuzzProtoDecode/Generated)" ]; then
    echo "Fuzz/Sources/FuzzProtoDecode/Generated is stale: run 'python3 Fuzz/generate.py' and commit the result" >&2
    exit 1
fi

# `--sanitize` instruments the C targets; Swift needs the one combined flag as well, because swiftc keeps only the
# last `-sanitize=` it is given and SwiftPM passes two (so Swift code would get no coverage counters at all).
# -enable-testing: the page-token fuzzer reaches the (internal) token codec through @testable import.
BUILD=(swift build --package-path Fuzz -c release --sanitize=fuzzer --sanitize=address
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing)
# SwiftPM does not notice a source file added to or moved in the main package (a path dependency here) and fails on
# a stale build plan ("missing inputs", "cannot find type"): dropping the plan makes it plan again. That is not free:
# SwiftPM then recompiles the fuzz package's modules (about 9 minutes on a 2-vCPU machine; CI's fresh clone pays it anyway).
rm -f Fuzz/.build/release.yaml Fuzz/.build/*/release/description.json
"${BUILD[@]}" >&2
BIN="$("${BUILD[@]}" --show-bin-path)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
failed=()
printf '%-16s %12s %10s %8s %8s %8s %s\n' target executions exec/s seconds cov ft result
for target in "${TARGETS[@]}"; do
    corpus="Fuzz/Corpus/$target"
    crashes="Fuzz/Crashes/$target"
    mkdir -p "$WORK/$target" "$WORK/$target-crash"
    options=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1
        "-artifact_prefix=$WORK/$target-crash/")
    [ "${FUZZ_JOBS:-1}" != 1 ] && options+=("-jobs=$FUZZ_JOBS" "-workers=$FUZZ_JOBS")
    if [ -n "$RUNS" ]; then options+=("-runs=$RUNS"); else options+=("-max_total_time=$SECONDS_EACH"); fi
    [ -f "Fuzz/Dictionaries/$target.dict" ] && options+=("-dict=$PWD/Fuzz/Dictionaries/$target.dict")
    log="$WORK/$target.log"
    start=$(date +%s)
    status=0
    inputs=("$PWD/$corpus")
    [ -d "$crashes" ] && inputs+=("$PWD/$crashes")
    (cd "$WORK" && "$BIN/$target" "${options[@]}" ${FUZZ_ARGS:-} "$WORK/$target" "${inputs[@]}") >"$log" 2>&1 \
        || status=$?
    elapsed=$(( $(date +%s) - start ))
    # With -jobs the numbers are in each job's log; add them up.
    logs=("$log"); ls "$WORK"/fuzz-*.log >/dev/null 2>&1 && logs=("$WORK"/fuzz-*.log)
    runs=$(cat "${logs[@]}" | awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}')
    # -fork mode prints no final stats: its last status line counts every child's executions.
    ((runs)) || runs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
    last=$(cat "${logs[@]}" | grep -E '^#[0-9]+.*cov: ' | tail -1 || true)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last"); ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    rate=$(( runs / (elapsed > 0 ? elapsed : 1) ))
    result=ok
    # slow-unit-* files are inputs that took longer than -report_slow_units (10 s) once, which a stopped or starved
    # process produces too; only a crash, a leak, an out-of-memory or a -timeout is a failure.
    # (find, not ls: under pipefail an ls that matches nothing would end the script.)
    slow=$(find "$WORK/$target-crash" -maxdepth 1 -name 'slow-unit-*' | wc -l)
    ((slow)) && echo "$target: $slow input(s) took over 10 s once (not failures; rerun them to check): kept in $WORK only" >&2
    rm -f "$WORK/$target-crash"/slow-unit-*
    if [ "$status" -ne 0 ] || ls "$WORK/$target-crash"/* >/dev/null 2>&1; then
        result="CRASH (exit $status)"
        failed+=("$target")
        mkdir -p "$crashes"
        cp "$WORK/$target-crash"/* "$crashes/" 2>/dev/null || true
        grep -E 'ERROR|SUMMARY|Fatal error|panic|==[0-9]+==' "${logs[@]}" | head -20 >&2 || true
        stamp=$(date +%Y%m%d-%H%M%S)
        cp "$log" "Fuzz/Crashes/$target-$stamp.log"
        echo "full log: Fuzz/Crashes/$target-$stamp.log" >&2
    fi
    rm -f "$WORK"/fuzz-*.log
    printf '%-16s %12s %10s %8s %8s %8s %s\n' "$target" "$runs" "$rate" "$elapsed" "${cov:-?}" "${ft:-?}" "$result"
    if ((MERGE)) && [ "$result" = ok ]; then
        "$BIN/$target" -merge=1 "$corpus" "$WORK/$target" >"$WORK/$target.merge.log" 2>&1
        echo "  merged: $(grep -Eo 'MERGE-OUTER: [0-9]+ new files' "$WORK/$target.merge.log" || echo '?')"
    fi
done
if ((${#failed[@]})); then
    echo "fuzzing found crashes in: ${failed[*]} (inputs in Fuzz/Crashes/)" >&2
    exit 1
fi
