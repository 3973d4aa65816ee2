#!/usr/bin/env bash
# bench/xfr.sh: a zone transfer out of geosteer vs out of Knot, same content.
#
#   The zone: HOSTS steered hosts (each with A, AAAA and an HTTPS template
#   over 12 edges) and STATIC static A records, the shape of a CDN's zone.
#   geosteer serves it from its zone and pools files; Knot serves the very
#   records geosteer transfers (its AXFR, saved as Knot's zone file), so
#   both send the same RRs.
#   Figure: server CPU (utime+stime from /proc, all threads) for the first
#   AXFR after start (geosteer builds the zone's image for it, and keeps it
#   while the zone is unchanged), then per AXFR averaged over ROUNDS more
#   transfers by kdig, and the wall time kdig saw.
#   CPU time is what the ratio is taken on: wall time moves with the load
#   of a shared machine, CPU time much less.
#   Placement: both servers in a cpuset cgroup holding CPU 1 when the cgroup
#   v1 hierarchy is writable (knotd pins its threads, which escapes taskset
#   but not a cpuset); otherwise unconfined, and the table says so.
#
# Usage: bench/xfr.sh                 (HOSTS=2000 STATIC=100000 ROUNDS=10)
#        GS_BIN=/path/to/geosteer      (default: target/release/geosteer)
#        P_BASE=24100                  (ports P_BASE and P_BASE+1)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GS_BIN=${GS_BIN:-$ROOT/target/release/geosteer}
HOSTS=${HOSTS:-2000}
STATIC=${STATIC:-100000}
ROUNDS=${ROUNDS:-10}
P_BASE=${P_BASE:-24100}
GS_PORT=$P_BASE
KNOT_PORT=$((P_BASE + 1))
OUT=$(mktemp -d /tmp/geosteer-xfr.XXXXXX)
log() { echo "xfr: $*" >&2; }

[ -x "$GS_BIN" ] || { log "no $GS_BIN: cargo build --release"; exit 1; }
for t in kdig knotd knotc; do
    command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { log "needs $t (apt-get install knot knot-dnsutils)"; exit 1; }
done
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

ON_CPU=()
CPUSET=/sys/fs/cgroup/cpuset
PLACEMENT="unconfined"
if [ -w "$CPUSET" ]; then
    mkdir -p "$CPUSET/gsxfr1"
    echo 1 >"$CPUSET/gsxfr1/cpuset.cpus"
    cat "$CPUSET/cpuset.mems" >"$CPUSET/gsxfr1/cpuset.mems"
    printf '#!/bin/sh\necho $$ >%s/gsxfr1/tasks && exec "$@"\n' "$CPUSET" >"$OUT/on_cpu"
    chmod +x "$OUT/on_cpu"
    ON_CPU=("$OUT/on_cpu")
    PLACEMENT="each server in a cpuset with CPU 1"
fi

# --- the zone -------------------------------------------------------------------
mkdir -p "$OUT/gs/zones" "$OUT/knot/zones" "$OUT/knot/db"
{
    printf '$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.53\n'
    for ((i = 0; i < STATIC; i++)); do
        printf 's%d A 198.51.%d.%d\n' "$i" $(((i / 250) % 250)) $((i % 250 + 1))
    done
} >"$OUT/gs/zones/xfr.example.zone"
{
    printf 'ttl: 30\nedges:\n'
    for ((e = 0; e < 12; e++)); do
        printf '  e%d: { addresses: [203.0.113.%d, "2001:db8:%x::1"], location: [%d, %d] }\n' \
            "$e" $((e + 1)) $((e + 1)) $((e * 13 - 70)) $((e * 29 - 170))
    done
    printf 'hosts:\n'
    for ((h = 0; h < HOSTS; h++)); do
        printf '  h%d:\n    answers: 2\n    https: { priority: 1, target: ".", alpn: [h2] }\n' "$h"
    done
} >"$OUT/gs/zones/xfr.example.pools.yaml"
cat >"$OUT/gs/geosteer.yaml" <<EOF
listen: [127.0.0.1:$GS_PORT]
zones: zones
workers: 1
watch: false
transfer:
  allow: [{ net: 127.0.0.0/8 }]
EOF

# --- geosteer ---------------------------------------------------------------------
"${ON_CPU[@]}" "$GS_BIN" serve -c "$OUT/gs/geosteer.yaml" 2>"$OUT/gs/log" &
GS_PID=$!
PIDS+=("$GS_PID")
for _ in $(seq 600); do
    kdig @127.0.0.1 -p "$GS_PORT" +short +time=1 +tries=1 ns1.xfr.example A 2>/dev/null | grep -q 192.0.2.53 && break
    sleep 0.1
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# geosteer's first AXFR builds the zone's image: its CPU is the first column.
t0=$(ticks "$GS_PID")
kdig @127.0.0.1 -p "$GS_PORT" +tcp xfr.example AXFR +nocomments +noquestion +nostats \
    | grep -v '^;' | grep . >"$OUT/knot/zones/xfr.example.zone"
GS_FIRST=$((($(ticks "$GS_PID") - t0) * 1000 / HZ))
RECORDS=$(($(wc -l <"$OUT/knot/zones/xfr.example.zone") - 1))
# Knot's copy ends with one SOA only.
sed -i '$d' "$OUT/knot/zones/xfr.example.zone"

# --- Knot ---------------------------------------------------------------------------
cat >"$OUT/knot/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$KNOT_PORT
    rundir: $OUT/knot
    tcp-workers: 1
    udp-workers: 1
    background-workers: 1
database:
    storage: $OUT/knot/db
acl:
  - id: all
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: $OUT/knot/zones
    file: "%s.zone"
    journal-content: none
    zonefile-sync: -1
    acl: all
zone:
  - domain: xfr.example.
log:
  - target: $OUT/knot/log
    any: warning
EOF
"${ON_CPU[@]}" knotd -c "$OUT/knot/knot.conf" &
KNOT_PID=$!
PIDS+=("$KNOT_PID")
for _ in $(seq 600); do
    kdig @127.0.0.1 -p "$KNOT_PORT" +short +time=1 +tries=1 ns1.xfr.example A 2>/dev/null | grep -q 192.0.2.53 && break
    sleep 0.1
done

# --- measure ------------------------------------------------------------------------
# measure NAME PID PORT: "first_cpu_ms cpu_ms wall_ms records": one AXFR,
# then per AXFR over ROUNDS more.
measure() {
    local pid=$2 port=$3 t0 t1 w0 w1 n=0 first
    t0=$(ticks "$pid")
    kdig @127.0.0.1 -p "$port" +tcp xfr.example AXFR >/dev/null
    first=$((($(ticks "$pid") - t0) * 1000 / HZ))
    t0=$(ticks "$pid")
    w0=$(date +%s%N)
    for ((r = 0; r < ROUNDS; r++)); do
        n=$(kdig @127.0.0.1 -p "$port" +tcp xfr.example AXFR +nocomments +noquestion +nostats | grep -vc '^;')
    done
    w1=$(date +%s%N)
    t1=$(ticks "$pid")
    echo "$first $(((t1 - t0) * 1000 / HZ / ROUNDS)) $(((w1 - w0) / 1000000 / ROUNDS)) $n"
}
read -r _ GS_CPU GS_WALL GS_N < <(measure geosteer "$GS_PID" "$GS_PORT")
read -r KN_FIRST KN_CPU KN_WALL KN_N < <(measure knot "$KNOT_PID" "$KNOT_PORT")
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

echo "AXFR of xfr.example: $RECORDS RRs ($HOSTS steered hosts, $STATIC static A), $ROUNDS rounds; $PLACEMENT; load $LOAD"
echo
echo "| server | CPU ms, first AXFR | CPU ms / AXFR after | wall ms / AXFR (kdig) | RRs received |"
echo "|---|---|---|---|---|"
echo "| geosteer | $GS_FIRST | $GS_CPU | $GS_WALL | $GS_N |"
echo "| knotd | $KN_FIRST | $KN_CPU | $KN_WALL | $KN_N |"
if [ "$KN_CPU" -gt 0 ]; then
    echo
    echo "geosteer / Knot, CPU per AXFR: $(awk -v a="$GS_CPU" -v b="$KN_CPU" 'BEGIN { printf "%.2f", a / b }')"
fi
