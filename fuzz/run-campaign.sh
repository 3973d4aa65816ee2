#!/usr/bin/env bash
# Runs fuzz targets for a fixed time each, two at a time (the machine is
# shared), and prints libFuzzer's final stats. New inputs go to work/<t>;
# crashes to artifacts/<t>/.
#   fuzz/run-campaign.sh 600 query zone   # then: pools mmdb
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}; shift
export RUSTC_BOOTSTRAP=1
for t in "$@"; do
    mkdir -p "work/$t" "artifacts/$t"
    nice -n 10 cargo fuzz run "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" > "/tmp/harden-fuzz-$t.log" 2>&1 &
done
wait
for t in "$@"; do
    echo "== $t"; grep -E "stat::number_of_executed_units|Done [0-9]+ runs|SUMMARY|panicked|crash-" "/tmp/harden-fuzz-$t.log" || true
done
