#!/usr/bin/env bash
# bench/rum-decide-callgrind.sh: instructions per `steer::decide` with 1M
# learned cells against the same rows from rtt.csv (benches/rum.rs), under
# callgrind, which counts the same on a loaded machine as on a quiet one.
# Prints each case's instructions per decision and the learned/file ratios.
#
#   bench/rum-decide-callgrind.sh          (N=20 passes over each case's 4096 clients)
#   N=5 bench/rum-decide-callgrind.sh
# The set-up (the 1.2M-network database, a 1M-row RTT file, a 1M-cell table)
# runs uninstrumented (the bench turns instrumentation on after it), a few
# minutes under valgrind; the database is reused from an earlier
# `cargo bench --bench rum` (GEOSTEER_BENCH_REUSE=1) when present.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-20}
OUT=$(mktemp -d /tmp/geosteer-rum-cg.XXXXXX)
cd "$ROOT"
BIN=$(cargo bench --bench rum --no-run --message-format=json 2>/dev/null |
    python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="rum" and m.get("executable"): print(m["executable"])' | tail -1)
[ -x "$BIN" ] || { echo "no bench binary" >&2; exit 1; }
GEOSTEER_BENCH_REUSE=${GEOSTEER_BENCH_REUSE:-1} GEOSTEER_BENCH_CALLGRIND=$N \
    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \
    --toggle-collect='*callgrind_window*' --dump-after=rum::callgrind_window \
    --callgrind-out-file="$OUT/cg.%p" "$BIN" --bench 2>"$OUT/log"
grep '^callgrind case' "$OUT/log" | sed 's/^callgrind case \([^:]*\): \([0-9]*\).*/\1 \2/' >"$OUT/cases"
# One dump per case, in order (cg.PID.1, .2, ...; the final one at exit is empty).
for i in $(seq 1 "$(wc -l <"$OUT/cases")"); do
    grep -h '^totals:\|^summary:' "$OUT"/cg.*."$i" | head -1 | cut -d' ' -f2
done >"$OUT/ir"
paste -d' ' "$OUT/cases" "$OUT/ir" | awk '
    { per[$1] = $3 / $2; order[n++] = $1; printf "%-36s %8.0f instructions/decide\n", $1, per[$1] }
    END {
        split("ecs_plain ecs_steered ecs_plain:_miss", pairs, " ")
        for (i in pairs) {
            split(pairs[i], p, ":"); f = p[1] "_rtt_file_1m" p[2]; l = p[1] "_learned_1m" p[2]
            if ((f in per) && (l in per)) printf "learned/file %-24s %.3f\n", p[1] p[2], per[l] / per[f]
        }
    }'
echo "raw dumps: $OUT"
