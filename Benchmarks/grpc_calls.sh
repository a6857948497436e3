# Sourced by benchmark scripts (contact-check.sh, relationships.sh): one h2load run of a unary gRPC call with a fixed
# request, printed as a RESULT line for Benchmarks/summary.py: calls/s over the run's wall time, and p50 and p99 from
# h2load's per-request log. (h2load does not read grpc-status: a script checks each call once with nghttp first.)
#   grpc_calls <name> <url> <request file> <clients> <calls> <token> <work dir>
grpc_calls() {
    local name=$1 url=$2 request=$3 clients=$4 calls=$5 token=$6 work=$7 start elapsed
    rm -f "$work/h2log"
    start="$(date +%s%N)"
    h2load -n "$calls" -c "$clients" -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $token" \
        --data="$request" --log-file="$work/h2log" "$url" >/dev/null
    elapsed="$(python3 -c "print(($(date +%s%N) - $start) / 1e9)")"
    python3 - "$name" "$work/h2log" "$elapsed" "$calls" <<'PY'
import sys
name, log, secs, calls = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
d = sorted(int(l.split()[2]) for l in open(log) if l.strip())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0
print(f"RESULT {name} tps={calls / secs:.1f} p50_ms={p(0.5):.3f} p99_ms={p(0.99):.3f}")
PY
}
