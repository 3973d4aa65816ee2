#!/usr/bin/env bash
# The SHAPE=groups half of bench/reload-under-load.sh (see there): reloads of
# a CDN-shaped zone while queries are answered.
# usage: bench/reload-groups.sh [rate_qps]; EDGES HOSTS NGROUPS ZONES
# DB_RECORDS RELOADS BIN KEEP as described in bench/reload-under-load.sh;
# DB=path uses that database instead of synthesizing one; GROUP_SYNTAX=1
# writes the pools file with named edge groups (see bench/reload-shape.py).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-20000}
EDGES=${EDGES:-150} HOSTS=${HOSTS:-50000} NGROUPS=${NGROUPS:-2000} ZONES=${ZONES:-1}
DB_RECORDS=${DB_RECORDS:-150000} RELOADS=${RELOADS:-100}
BIN=${BIN:-target/release/geosteer}
SYNTH=target/release/examples/synth_db
[ -n "${DB:-}" ] || [ -x "$SYNTH" ] || cargo build --release --example synth_db
W=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null; wait 2>/dev/null; if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi; }
trap cleanup EXIT
PORT=$((21000 + RANDOM % 900)); HPORT=$((PORT + 1))

echo "== shape: $EDGES edges, $HOSTS hosts, $NGROUPS groups, $ZONES zone(s); DB $DB_RECORDS records; load: $(uptime | sed 's/.*load/load/')"
mkdir -p "$W/zones" "$W/geodb"
if [ -n "${DB:-}" ]; then cp "$DB" "$W/geodb/city.mmdb"; else "$SYNTH" "$W/geodb/city.mmdb" dense "$DB_RECORDS" 1 >/dev/null; fi
cp "$W/geodb/city.mmdb" "$W/city.copy"
NEAR=192.0.2.1 python3 bench/reload-shape.py "$W/zones" "$EDGES" "$HOSTS" "$NGROUPS" "$ZONES" 1
Z=cdn.example; [ "$ZONES" = 1 ] || Z=z0.example
ls -la "$W/zones" | awk 'NR>1 { s += $5 } END { printf "zone files: %.1f MB\n", s / 1e6 }'
cat > "$W/geosteer.yaml" <<C
listen: [127.0.0.1:$PORT]
zones: zones
geodb: geodb/city.mmdb
http: 127.0.0.1:$HPORT
workers: 1
C
python3 - "$HOSTS" "$ZONES" > "$W/queries.txt" <<'PY'
import random, sys
hosts, zones = int(sys.argv[1]), int(sys.argv[2])
per = (hosts + zones - 1) // zones
r = random.Random(7)
for _ in range(20000):
    h = r.randrange(hosts)
    z = "cdn.example" if zones == 1 else f"z{h // per}.example"
    print(f"h{h}.{z} A")
PY

T0=$(date +%s.%N)
RUST_LOG=${RUST_LOG:-info} "$BIN" serve -c "$W/geosteer.yaml" 2>"$W/server.log" &
PID=$!
# Thread count, sampled every 20 ms for the whole run: the most at once,
# and the most of each name at once (build helpers carry their parent's).
python3 - "$PID" "$W/threads.txt" <<'PY' &
import collections, os, sys, time
pid, out = sys.argv[1], sys.argv[2]
top, names = 0, collections.Counter()
while os.path.exists(f"/proc/{pid}"):
    now = collections.Counter()
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                now[open(f"/proc/{pid}/task/{t}/comm").read().strip()] += 1
            except OSError:
                pass
    except OSError:
        break
    top = max(top, sum(now.values()))
    for k, v in now.items():
        names[k] = max(names[k], v)
    with open(out + ".tmp", "w") as f:
        f.write(f"{top} at once; most of each name: " + ", ".join(f"{k} {v}" for k, v in sorted(names.items())) + "\n")
    os.replace(out + ".tmp", out)
    time.sleep(0.02)
PY
SAMPLER=$!
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / t }' "/proc/$PID/stat"; }
until dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" "h0.$Z" A 2>/dev/null | grep -q .; do
    if ! kill -0 "$PID" 2>/dev/null || grep -q "zone not reloaded" "$W/server.log"; then
        grep -E "ERROR|error" "$W/server.log" | head -5; exit 1
    fi
    sleep 0.2
done
T1=$(date +%s.%N)
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$PID/status"; }
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$PID/status"; }
echo "first build: $(echo "$T1 - $T0" | bc) s to the first answer, $(cpu_s) s CPU; peak RSS $(( $(hwm) / 1024 )) MB, RSS $(( $(rss) / 1024 )) MB"
echo "threads so far: $(cat "$W/threads.txt" 2>/dev/null)"

perf() { # $1 = seconds, $2 = output
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$W/queries.txt" -l "$1" -Q "$RATE" -c 4 -q 500 -t 2 >"$2" 2>&1
}
summary() { # dnsperf output -> "qps=.. avg=.. max=.. lost=.."
    awk '/Queries per second/ { q = $4 } /Queries lost/ { l = $3 } /Average Latency/ { a = $4; m = $8; sub(/\)/, "", m) }
         END { printf "answered %.0f qps, latency avg %.2f ms max %.1f ms, lost %s\n", q, a * 1000, m * 1000, l }' "$1"
}
perf 5 "$W/before.txt"
echo "before the reload:      $(summary "$W/before.txt")"

# The reload: a DB swap (a new inode, same content), then 0.2 s later a
# pools edit of h0's nearest edge, then once the swap is done another one.
# dnsperf runs through all of it (PERF_SECS, long enough for the slowest).
PERF_SECS=${PERF_SECS:-30}
perf "$PERF_SECS" "$W/during.txt" &
PERF=$!
sleep 1
W="$W" PORT="$PORT" HPORT="$HPORT" EDGES="$EDGES" HOSTS="$HOSTS" NGROUPS="$NGROUPS" ZONES="$ZONES" Z="$Z" python3 - <<'PY'
import json, os, socket, struct, subprocess, time, urllib.request
W, PORT, HPORT, Z = os.environ["W"], int(os.environ["PORT"]), int(os.environ["HPORT"]), os.environ["Z"]
shape = [os.environ[k] for k in ("EDGES", "HOSTS", "NGROUPS", "ZONES")]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.2)
qname = b"".join(bytes([len(l)]) + l.encode() for l in ["h0"] + Z.split(".")) + b"\0"
qid = 0
def answer():
    global qid
    qid = (qid + 1) & 0xFFFF
    sock.sendto(struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1), ("127.0.0.1", PORT))
    while True:
        try:
            data = sock.recv(2048)
        except socket.timeout:
            return None
        if struct.unpack(">H", data[:2])[0] == qid:
            return socket.inet_ntoa(data[-4:]) if struct.unpack(">H", data[6:8])[0] else ""
def status():
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{HPORT}/api/status"))
def edit(addr):
    # The shape written aside (same seed: only e0's address differs).
    tmp = f"{W}/next"
    subprocess.run(["python3", "bench/reload-shape.py", tmp, *shape, "1"], env={**os.environ, "NEAR": addr}, check=True)
    # Only h0's zone changes: the others keep their files (and builds).
    os.rename(f"{tmp}/{Z}.pools.yaml", f"{W}/zones/{Z}.pools.yaml")
def timed(addr, limit=300):
    t0 = time.monotonic()
    edit(addr)
    t1 = time.monotonic()
    while answer() != addr:
        if time.monotonic() - t1 > limit:
            return None, t1 - t0
        time.sleep(0.005)
    return time.monotonic() - t1, t1 - t0
def swap_db():
    tmp = f"{W}/geodb/.next.mmdb"
    with open(f"{W}/city.copy", "rb") as src, open(tmp, "wb") as dst:
        dst.write(src.read())
    os.rename(tmp, f"{W}/geodb/city.mmdb")
gen0 = status()["generation"]
t_swap = time.monotonic()
swap_db()
time.sleep(0.2)
took, wrote = timed("192.0.2.2")
print(f"pools edit 0.2 s into a DB swap: answered {took:.3f} s after the write (writing it took {wrote:.2f} s)" if took is not None else "pools edit during the DB swap: NOT answered")
# The swap is done when the log says so (the database stage) and a build follows.
def log():
    with open(f"{W}/server.log") as f:
        return f.read()
while log().count("database stage built") < 2 or status()["generation"] < gen0 + 2:
    time.sleep(0.05)
    if time.monotonic() - t_swap > 600:
        break
print(f"DB swap (open + every zone rebuilt against it): served {time.monotonic() - t_swap:.2f} s after the swap")
took, wrote = timed("192.0.2.1")
print(f"pools edit after the swap: answered {took:.3f} s after the write" if took is not None else "pools edit after the swap: NOT answered")
PY
wait "$PERF" || true
echo "during the DB swap:     $(summary "$W/during.txt")"
echo "threads up to here: $(cat "$W/threads.txt" 2>/dev/null)"
grep -E "database stage built|reloaded" "$W/server.log" | sed 's/^.*Z //' | tail -6

# CPU of a pools edit: the files-stage build thread's utime + stime across
# one edit of h0's nearest edge (the figure to compare on a busy machine,
# where the build's low priority makes its wall time the machine's).
build_cpu() {
    local t
    for t in /proc/"$PID"/task/*; do
        if [ "$(cat "$t/comm" 2>/dev/null)" = geosteer-build ]; then
            awk -v k="$(getconf CLK_TCK)" '{ print ($14 + $15) / k }' "$t/stat"
        fi
    done
}
for addr in 192.0.2.3 192.0.2.1 192.0.2.3; do
    g0=$(curl -s "http://127.0.0.1:$HPORT/api/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])')
    c0=$(build_cpu)
    NEAR=$addr python3 bench/reload-shape.py "$W/next" "$EDGES" "$HOSTS" "$NGROUPS" "$ZONES" 1
    mv "$W/next/$Z.pools.yaml" "$W/zones/$Z.pools.yaml"
    until [ "$(curl -s "http://127.0.0.1:$HPORT/api/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])')" -gt "$g0" ]; do sleep 0.2; done
    echo "a pools edit: files-stage build thread CPU $(echo "$(build_cpu) - $c0" | bc) s"
done

# RSS over many reloads: after the first, after RELOADS more.
reload_once() { curl -s -X POST "http://127.0.0.1:$HPORT/api/reload" >/dev/null; }
generation() { curl -s "http://127.0.0.1:$HPORT/api/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])'; }
settled() { # no build for 5 s (the watcher's own builds included), then the trim
    local g last=""
    while g=$(generation); [ "$g" != "$last" ]; do last=$g; sleep 5; done
    sleep 3
}
reload_once
settled
R1=$(rss)
for i in $(seq 1 "$RELOADS"); do
    printf '# reload %s\n' "$i" >> "$W/zones/$Z.pools.yaml"
    if [ $((i % 10)) = 0 ]; then cp "$W/city.copy" "$W/geodb/.n.mmdb"; mv "$W/geodb/.n.mmdb" "$W/geodb/city.mmdb"; fi
    reload_once
done
settled # idle workers drop their snapshot after 1 s; freed memory is trimmed
R2=$(rss)
echo "RSS after the first reload $((R1 / 1024)) MB, after $RELOADS more $((R2 / 1024)) MB: $(echo "scale=2; $R2 / $R1" | bc)x; peak $(( $(hwm) / 1024 )) MB"
echo "threads over the whole run: $(cat "$W/threads.txt" 2>/dev/null)"
echo "load: $(uptime | sed 's/.*load/load/')"
