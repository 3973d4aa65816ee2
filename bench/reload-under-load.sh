#!/usr/bin/env bash
# Zero-loss reload measurement: dnsperf at a fixed rate against the release
# binary while 100 pools-file swaps (90 via POST /api/reload, 10 picked up
# by the file watcher) and 10 GeoIP DB swaps (write-then-rename) happen.
# Reports queries sent/lost, SERVFAIL, and write-to-answer switch latency.
#
# usage: bench/reload-under-load.sh [rate_qps] [seconds]
# KEEP=1 keeps the work dir (server.log, dnsperf.txt, *.ms); RUST_LOG=info
# logs every reload with its trigger.
#
# SHAPE=groups measures a CDN-shaped zone instead (bench/reload-shape.py:
# EDGES/HOSTS/NGROUPS, default 150/50,000/2,000, one line a host) over a dense
# synthetic City DB (DB_RECORDS, default 150,000), at RATE qps (default
# 20,000) of queries for random hosts:
#   - the first build (start to first answer) and its peak RSS;
#   - a pools edit written 0.2 s after a DB swap begins: write -> answered;
#   - a pools edit once the swap is done: write -> answered;
#   - the rate answered and the max latency during the DB swap's reload
#     against a run before it (dnsperf, same rate);
#   - RSS after the first reload and after RELOADS more (default 100; each
#     a pools edit and POST /api/reload, a DB swap every 10th).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/geosteer}
[ -x "$BIN" ] || cargo build --release --bin geosteer
command -v dnsperf >/dev/null || { echo "needs dnsperf" >&2; exit 1; }
if [ "${SHAPE:-}" = groups ]; then
    exec bench/reload-groups.sh "$@"
fi
RATE=${1:-10000}
SECS=${2:-20}

W=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi; }
trap cleanup EXIT
KEEP=${KEEP:-}
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

RUST_LOG=${RUST_LOG:-warn} "$BIN" serve -c "$W/geosteer.yaml" 2>"$W/server.log" &
PID=$!
for _ in $(seq 100); do dig +short +time=1 @127.0.0.1 -p "$PORT" www.cdn.example A >/dev/null 2>&1 && break; sleep 0.1; done

dnsperf -s 127.0.0.1 -p "$PORT" -d "$W/queries.txt" -l "$SECS" -Q "$RATE" -c 4 -q 200 -t 2 >"$W/dnsperf.txt" 2>&1 &
PERF=$!
sleep 1

# The swap loop runs in one Python process: it times each switch with a raw
# UDP poller (every 5 ms) instead of spawning dig, whose start-up alone
# costs tens of ms on a busy machine.
W="$W" PORT="$PORT" HPORT="$HPORT" SECS="$SECS" python3 - <<'PY'
import os, socket, struct, time, urllib.request
W, PORT, HPORT, SECS = os.environ["W"], int(os.environ["PORT"]), int(os.environ["HPORT"]), float(os.environ["SECS"])
def pools(addr):
    return f"""edges:
  near: {{ addresses: [{addr}], location: [51.5, -0.1] }}
  far:  {{ addresses: [198.51.100.99], location: [40.7, -74.0] }}
nets:
  127.0.0.0/8: [51.5, -0.1]
hosts:
  www: {{ edges: [near, far], ttl: 5 }}
  img: {{ answers: 2 }}
"""
Q = b"".join(bytes([len(l)]) + l.encode() for l in ["www", "cdn", "example"]) + b"\0" + struct.pack(">HH", 1, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.2)
qid = 0
def answer():
    global qid
    qid = (qid + 1) & 0xFFFF
    sock.sendto(struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + Q, ("127.0.0.1", PORT))
    while True:
        try:
            data = sock.recv(2048)
        except socket.timeout:
            return None
        if struct.unpack(">H", data[:2])[0] == qid:
            return socket.inet_ntoa(data[-4:]) if struct.unpack(">H", data[6:8])[0] else ""
def swap(path, data):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)
pace = (SECS - 2.5) / 100
db = open(f"{W}/geodb/city.mmdb", "rb").read()
lat = {"api": [], "watch": []}
for i in range(1, 101):
    t_iter = time.monotonic()
    addr = "192.0.2.2" if i % 2 else "192.0.2.1"
    if i % 10 == 5:
        swap(f"{W}/geodb/city.mmdb", db)  # new inode, same content
    t0 = time.monotonic()
    swap(f"{W}/zones/cdn.example.pools.yaml", pools(addr).encode())
    kind = "watch" if i % 10 == 0 else "api"
    if kind == "api":
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{HPORT}/api/reload", method="POST")).read()
    while answer() != addr:
        if time.monotonic() - t0 > 5:
            print(f"swap {i}: no switch within 5 s", flush=True)
            break
        time.sleep(0.005)
    lat[kind].append((time.monotonic() - t0) * 1000)
    time.sleep(max(0.0, pace - (time.monotonic() - t_iter)))
for kind, v in lat.items():
    v.sort()
    pct = lambda p: v[min(len(v) - 1, int(p * len(v)))]
    line = f"n={len(v)} min={v[0]:.0f} p50={pct(0.5):.0f} p95={pct(0.95):.0f} max={v[-1]:.0f} ms"
    open(f"{W}/{kind}.stat", "w").write(line + "\n")
    open(f"{W}/{kind}.ms", "w").write("\n".join(f"{x:.1f}" for x in v) + "\n")
PY
wait "$PERF" || true

M=$(curl -s "http://127.0.0.1:$HPORT/metrics")
metric() { echo "$M" | awk -v n="$1" '$1 == n { print $2 }'; }

echo "== dnsperf ($RATE qps target, $SECS s)"
grep -E "Queries sent|Queries completed|Queries lost|Response codes|Queries per second|Average Latency|Latency StdDev" "$W/dnsperf.txt"
echo "== reloads"
echo "geosteer_reloads_total $(metric geosteer_reloads_total)  geosteer_reload_failures_total $(metric geosteer_reload_failures_total)"
echo "switch latency (write -> new answer), API-triggered:     $(cat "$W/api.stat")"
echo "switch latency (write -> new answer), watcher-triggered: $(cat "$W/watch.stat")"
SERVFAIL=$(grep -o "SERVFAIL [0-9]*" "$W/dnsperf.txt" | awk '{ print $2 }'); SERVFAIL=${SERVFAIL:-0}
LOST=$(awk '/Queries lost/ { print $3 }' "$W/dnsperf.txt")
echo "== verdict: lost=$LOST servfail=$SERVFAIL failures=$(metric geosteer_reload_failures_total)"
[ "$LOST" = 0 ] && [ "$SERVFAIL" = 0 ]
