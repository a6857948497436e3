"""Summarises a benchmark's RESULT lines (contacts.sh, organization.sh): median [min-max] of every figure over the
rounds, and for each SERVICE:BASELINE pair the throughput ratio of the medians, the paired per-round ratios (rounds
are interleaved, so round i of one is paired with round i of the other) and the p50 latency ratio.

    python3 Benchmarks/summary.py RESULTS_FILE [SERVICE:BASELINE ...]
"""
import collections
import statistics
import sys

rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    rows[parts[1]].append(dict((k, float(v)) for k, v in (p.split("=") for p in parts[2:])))
print("\nSUMMARY (median [min-max] of every round)")
for name, rounds in rows.items():
    print(name, " ".join(
        f"{f}={statistics.median(r[f] for r in rounds):g}[{min(r[f] for r in rounds):g}-{max(r[f] for r in rounds):g}]"
        for f in rounds[0]))
for pair in sys.argv[2:]:
    service, baseline = pair.split(":")
    s, b = rows.get(service), rows.get(baseline)
    if not (s and b):
        continue
    paired = [x["tps"] / y["tps"] for x, y in zip(s, b)]
    med = statistics.median(r["tps"] for r in s) / statistics.median(r["tps"] for r in b)
    p50 = statistics.median(r["p50_ms"] for r in s) / statistics.median(r["p50_ms"] for r in b)
    print(f"ratio {service}/{baseline}: {med:.2f}x of medians; paired rounds " + " ".join(f"{x:.2f}" for x in paired)
          + f" (min {min(paired):.2f}, median {statistics.median(paired):.2f}); p50 latency {p50:.2f}x")
