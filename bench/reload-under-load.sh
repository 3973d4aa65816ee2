#!/usr/bin/env bash
# Zero-loss reload measurement: dnsperf at a fixed rate against the release
# binary while 100 pools-file swaps (90 via POST /api/reload, 10 picked up
# by the file watcher) and 10 GeoIP DB swaps (write-then-rename) happen.
# Reports queries sent/lost, SERVFAIL, and write-to-answer switch latency.
#
# usage: bench/reload-under-load.sh [rate_qps] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-10000}
SECS=${2:-20}
BIN=${BIN:-target/release/geosteer}
[ -x "$BIN" ] || cargo build --release --bin geosteer
command -v dnsperf >/dev/null || { echo "needs dnsperf" >&2; exit 1; }

W=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
PORT=$((20000 + RANDOM % 20000)); HPORT=$((PORT + 1))

mkdir -p "$W/zones" "$W/geodb"
cp zones/cdn.example.zone "$W/zones/"
cp geodb/demo-city.mmdb "$W/geodb/city.mmdb"
pools() { # $1 = address of the nearest edge for 127.0.0.1
  cat <<P
edges:
  near: { addresses: [$1], location: [51.5, -0.1] }
  far:  { addresses: [198.51.100.99], location: [40.7, -74.0] }
nets:
  127.0.0.0/8: [51.5, -0.1]
hosts:
  www: { edges: [near, far], ttl: 5 }
  img: { answers: 2 }
P
}
pools 192.0.2.1 > "$W/zones/cdn.example.pools.yaml"
cat > "$W/geosteer.yaml" <<C
listen: [127.0.0.1:$PORT]
zones: zones
geodb: geodb/city.mmdb
http: 127.0.0.1:$HPORT
C
printf '%s\n' "www.cdn.example A" "img.cdn.example A" "static.cdn.example A" \
  "cdn.example SOA" "www.cdn.example AAAA" "nx.cdn.example A" > "$W/queries.txt"

RUST_LOG=warn "$BIN" serve -c "$W/geosteer.yaml" 2>"$W/server.log" &
PID=$!
for _ in $(seq 100); do dig +short +time=1 @127.0.0.1 -p "$PORT" www.cdn.example A >/dev/null 2>&1 && break; sleep 0.1; done

dnsperf -s 127.0.0.1 -p "$PORT" -d "$W/queries.txt" -l "$SECS" -Q "$RATE" -c 4 -q 200 -t 2 >"$W/dnsperf.txt" 2>&1 &
PERF=$!
sleep 1

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
: > "$W/api.ms"; : > "$W/watch.ms"
# 100 swaps spread over the run, leaving a second at each end.
PACE=$(awk -v s="$SECS" 'BEGIN { printf "%.3f", (s - 2.5) / 100 }')
for i in $(seq 1 100); do
  t_iter=$(now_ms)
  if (( i % 2 )); then addr=192.0.2.2; else addr=192.0.2.1; fi
  pools "$addr" > "$W/zones/.pools.tmp"
  if (( i % 10 == 5 )); then  # DB swap: new inode, same content
    cp "$W/geodb/city.mmdb" "$W/geodb/.city.tmp" && mv "$W/geodb/.city.tmp" "$W/geodb/city.mmdb"
  fi
  t0=$(now_ms)
  mv "$W/zones/.pools.tmp" "$W/zones/cdn.example.pools.yaml"
  if (( i % 10 == 0 )); then
    log="$W/watch.ms"          # leave it to the file watcher
  else
    log="$W/api.ms"
    curl -sf -X POST "http://127.0.0.1:$HPORT/api/reload" >/dev/null || echo "reload $i failed" >&2
  fi
  until [ "$(dig +short +time=1 @127.0.0.1 -p "$PORT" www.cdn.example A)" = "$addr" ]; do
    sleep 0.005
    (( $(now_ms) - t0 > 5000 )) && { echo "swap $i: no switch in 5 s" >&2; break; }
  done
  echo $(( $(now_ms) - t0 )) >> "$log"
  left=$(awk -v p="$PACE" -v e="$(( $(now_ms) - t_iter ))" 'BEGIN { d = p - e / 1000; if (d > 0) printf "%.3f", d; else print 0 }')
  sleep "$left"
done
wait "$PERF" || true

M=$(curl -s "http://127.0.0.1:$HPORT/metrics")
metric() { echo "$M" | awk -v n="$1" '$1 == n { print $2 }'; }
stat() { sort -n "$1" | awk '{ a[NR] = $1 } END { printf "n=%d min=%d p50=%d p95=%d max=%d ms", NR, a[1], a[int(NR*0.5)+ (NR%2)], a[int(NR*0.95+0.5)], a[NR] }'; }

echo "== dnsperf ($RATE qps target, $SECS s)"
grep -E "Queries sent|Queries completed|Queries lost|Response codes|Queries per second|Average Latency|Latency StdDev" "$W/dnsperf.txt"
echo "== reloads"
echo "geosteer_reloads_total $(metric geosteer_reloads_total)  geosteer_reload_failures_total $(metric geosteer_reload_failures_total)"
echo "switch latency, API-triggered:     $(stat "$W/api.ms")"
echo "switch latency, watcher-triggered: $(stat "$W/watch.ms")"
SERVFAIL=$(grep -o "SERVFAIL [0-9]*" "$W/dnsperf.txt" | awk '{ print $2 }'); SERVFAIL=${SERVFAIL:-0}
LOST=$(awk '/Queries lost/ { print $3 }' "$W/dnsperf.txt")
echo "== verdict: lost=$LOST servfail=$SERVFAIL failures=$(metric geosteer_reload_failures_total)"
[ "$LOST" = 0 ] && [ "$SERVFAIL" = 0 ]
