#!/usr/bin/env bash
# bench/dnstap.sh: what dnstap costs. CPU time of the server process
# (utime+stime from /proc/<pid>/stat) per answered query, with dnstap off,
# to a file at sample 0.1 and 1, to fstrm_capture on a socket, and the JSON
# query log at sample 1 for comparison. Server pinned to CPU 1, dnsperf to
# CPU 0, a fixed offered rate, one steered name with an ECS /24.
#
# Usage: cargo build --release && bench/dnstap.sh   (RATE=20000 SECS=8 ROUNDS=2)
# Needs dnsperf and fstrm_capture (Debian: dnsperf, fstrm-bin).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/geosteer
D=$(mktemp -d /tmp/geosteer-dnstap.XXXXXX)
RATE=${RATE:-20000} SECS=${SECS:-8} ROUNDS=${ROUNDS:-2} PORT=${PORT:-15400}
TCK=$(getconf CLK_TCK)
ECS=000118004d5808   # family 1, /24, scope 0, 77.88.8.0 (Moscow in the demo DB)
echo "www.cdn.example A" > "$D/q.txt"

run() {
  local name=$1 extra=$2
  cat > "$D/g.yaml" <<Y
listen: [127.0.0.1:$PORT]
zones: $ROOT/zones
geodb: $ROOT/geodb/demo-city.mmdb
workers: 1
watch: false
state_file: $D/state.json
$extra
Y
  taskset -c 1 "$BIN" serve --config "$D/g.yaml" 2>"$D/$name.log" & local pid=$!
  sleep 1.5
  dnsperf -s 127.0.0.1 -p "$PORT" -d "$D/q.txt" -E "8:$ECS" -n 100 >/dev/null 2>&1 || true
  local t0 t1 out n
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$PORT" -d "$D/q.txt" -E "8:$ECS" -c 8 -q 200 -l "$SECS" -Q "$RATE" 2>&1)
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  n=$(echo "$out" | awk '/Queries completed/{print $3}')
  awk -v a="$t0" -v b="$t1" -v n="$n" -v t="$TCK" -v name="$name" \
    'BEGIN{printf "| %-16s | %8d | %6.2f |\n", name, n, (b-a)/t/n*1e6}'
  kill -INT "$pid"; wait "$pid" || true
}

echo "| run              | answered | CPU µs/query |"
echo "|---|---|---|"
for _ in $(seq "$ROUNDS"); do
  run off ""
  run file_sample_0.1 "dnstap: { file: $D/tap.fstrm, sample: 0.1 }"
  run file "dnstap: { file: $D/tap.fstrm }"
  rm -f "$D/tap.sock"
  fstrm_capture -t protobuf:dnstap.Dnstap -u "$D/tap.sock" -w "$D/cap.fstrm" 2>/dev/null & cpid=$!
  sleep 0.5
  run socket "dnstap: { socket: $D/tap.sock }"
  kill -INT "$cpid"; wait "$cpid" || true
  run querylog_1 "query_log: { sample: 1, path: $D/q.log }"
done
rm -rf "$D"
