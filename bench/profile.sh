#!/usr/bin/env bash
# bench/profile.sh: where geosteer's user-space instructions go, per query.
#
# Runs the release binary under callgrind on the demo config, sends N
# queries of one kind with dnsperf, and prints instructions per query plus
# callgrind_annotate's inclusive profile of the UDP worker thread.
#
#   bench/profile.sh static          static.cdn.example A, EDNS
#   bench/profile.sh geo             www.cdn.example A, EDNS, no ECS
#   bench/profile.sh ecs [SUBNET]    www.cdn.example A, ECS (default 8.8.8.0/24)
#   bench/profile.sh many            www.cdn.example A/AAAA, each query its own ECS
#                                    subnet (200,000, as bench/run.sh), dense synth DB
#   bench/profile.sh flood           random-subdomain flood (every name new, NXDOMAIN)
#   N=20000 TOP=40 bench/profile.sh ecs
#   GS=/path/to/geosteer bench/profile.sh static   (another build, e.g. while bisecting;
#                                    the zones and DB still come from this tree,
#                                    or the zone and pools file from ZONE_SRC=dir)
#   RRL=1000000 bench/profile.sh flood   (with `rrl: {rate: RRL}`; at that rate
#                                    nothing is limited, so RRL's own cost shows)
#   RTT_CSV=f.csv / RUM_STATE=rum.state bench/profile.sh ecs   (an RTT file, or RUM's
#                                    learned cells from a state file; WAIT_TRIES=3000
#                                    gives a 1M-row start-up under callgrind time)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KIND=${1:-ecs}
SUBNET=${2:-8.8.8.0/24}
N=${N:-20000}
TOP=${TOP:-45}
PORT=${PORT:-5390}
OUT=$(mktemp -d /tmp/geosteer-profile.XXXXXX)
GS=${GS:-$ROOT/target/release/geosteer}
[ -x "$GS" ] || (cd "$ROOT" && cargo build --release --quiet)

mkdir -p "$OUT/zones"
ZONE_SRC=${ZONE_SRC:-$ROOT/zones}
cp "$ZONE_SRC/cdn.example.zone" "$ZONE_SRC/cdn.example.pools.yaml" "$OUT/zones/"
cp "$ROOT/geodb/demo-city.mmdb" "$OUT/"
DB=demo-city.mmdb
if [ "$KIND" = many ] || [ "$KIND" = flood ]; then
    # The dense DB and the query file of bench/run.sh, built once per seed.
    CACHE=${CACHE:-/tmp/geosteer-profile-cache}
    mkdir -p "$CACHE"
    [ -x "$ROOT/target/release/examples/synth_db" ] || (cd "$ROOT" && cargo build --release --quiet --example synth_db)
    [ -s "$CACHE/dense.mmdb" ] || "$ROOT/target/release/examples/synth_db" "$CACHE/dense.mmdb" dense 150000 1 >/dev/null
    gcc -O2 -o "$CACHE/loadgen" "$ROOT/bench/loadgen.c"
    [ -s "$CACHE/many.bin" ] || "$CACHE/loadgen" gen --seed 1 --count 200000 --kind geo --v6 0.1 >"$CACHE/many.bin"
    [ -s "$CACHE/flood.bin" ] || "$CACHE/loadgen" gen --seed 1 --count 200000 --kind flood >"$CACHE/flood.bin"
    cp "$CACHE/dense.mmdb" "$OUT/"
    DB=dense.mmdb
fi
cat >"$OUT/g.yaml" <<EOF
listen: [127.0.0.1:$PORT]
zones: zones
geodb: $DB
http: 127.0.0.1:$((PORT + 1))
workers: 1
state_file: state.json
EOF
if [ -n "${RRL:-}" ]; then printf 'rrl:\n  rate: %s\n' "$RRL" >>"$OUT/g.yaml"; fi
# Learned rows against the same rows from rtt.csv (examples/rum_scale.rs
# --write DIR makes both): RTT_CSV=DIR/cdn.example.rtt.csv serves the zone
# with that RTT file; RUM_STATE=DIR/rum.state serves it with RUM on and that
# state file (min_samples 1). Loading 1M rows under callgrind takes minutes.
if [ -n "${RTT_CSV:-}" ]; then cp "$RTT_CSV" "$OUT/zones/cdn.example.rtt.csv"; fi
if [ -n "${RUM_STATE:-}" ]; then
    cp "$RUM_STATE" "$OUT/rum.state"
    printf 'rum:\n  listen: 127.0.0.1:%s\n  min_samples: 1\n  state_file: rum.state\n' $((PORT + 2)) >>"$OUT/g.yaml"
fi

ecs_hex() {
    local net=${1%/*} len=${1#*/} hex a b c d
    IFS=. read -r a b c d <<<"$net"
    hex=$(printf '%02x%02x%02x%02x' "$a" "$b" "$c" "$d")
    printf '0001%02x00%s' "$len" "${hex:0:$(((len + 7) / 8 * 2))}"
}
case $KIND in
static) echo 'static.cdn.example A' >"$OUT/q"; EXTRA=(-e) ;;
geo) echo 'www.cdn.example A' >"$OUT/q"; EXTRA=(-e) ;;
ecs) echo 'www.cdn.example A' >"$OUT/q"; EXTRA=(-E "8:$(ecs_hex "$SUBNET")") ;;
many | flood) ;;
*) echo "unknown kind $KIND" >&2; exit 2 ;;
esac

(cd "$OUT" && RUST_LOG=warn exec valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" \
    --dump-line=${LINES_:-no} --compress-strings=no "$GS" serve --config g.yaml) >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 "${WAIT_TRIES:-300}"); do
    dig +time=1 +tries=1 -p "$PORT" @127.0.0.1 static.cdn.example A 2>/dev/null | grep -q NOERROR && break
    sleep 0.2
done
sleep 1
if [ "$KIND" = many ] || [ "$KIND" = flood ]; then
    # loadgen at a rate callgrind keeps up with; the first 200 warm up.
    "$CACHE/loadgen" run --file "$CACHE/$KIND.bin" --port "$PORT" --rate 2000 --limit 200 >/dev/null 2>&1 || true
    callgrind_control -z "$PID" >/dev/null
    "$CACHE/loadgen" run --file "$CACHE/$KIND.bin" --port "$PORT" --rate 3000 --limit "$N" >"$OUT/lg.txt" 2>&1 || true
    echo "Queries completed: $(tr ' ' '\n' <"$OUT/lg.txt" | awk -F= '$1 == "answered" {print $2}')" >"$OUT/dnsperf.txt"
else
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/q" "${EXTRA[@]}" -n 200 >/dev/null 2>&1 || true
    callgrind_control -z "$PID" >/dev/null
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/q" "${EXTRA[@]}" -n "$N" -q 64 >"$OUT/dnsperf.txt" 2>&1 || true
fi
before=$(ls "$OUT" | grep -c '^cg\.' || true)
callgrind_control -d "$PID" >/dev/null
for _ in $(seq 1 100); do [ "$(ls "$OUT" | grep -c '^cg\.')" -gt "$before" ] && break; sleep 0.1; done
n=$(awk '/Queries completed:/ {print $3}' "$OUT/dnsperf.txt")
# Every thread's part of the newest dump; the worker is the busiest.
total=0
best="" best_ir=0
for f in "$OUT"/cg.*; do
    ir=$(awk '/^(totals|summary):/ {print $2; exit}' "$f")
    case $f in *.*-*) total=$((total + ${ir:-0})) ;; esac
    if [ "${ir:-0}" -gt "$best_ir" ]; then best=$f best_ir=$ir; fi
done
echo "queries: $n; worker thread: $best_ir Ir = $((best_ir / n)) instr/query; dump $best"
callgrind_annotate --inclusive=${INCL:-yes} ${ANNOTATE:+--auto=yes --show-percs=no} "$best" 2>/dev/null | { [ -n "${ANNOTATE:-}" ] && cat || sed -n "1,$((TOP + 25))p"; } |
    sed -e 's#/rustc/[0-9a-f]*/library/##' -e "s#$HOME/.cargo/registry/src/[^/]*/##"
