#!/usr/bin/env bash
# What one pools edit costs at the "many groups" shape (issue 28): the
# files-stage build thread's CPU (utime + stime from /proc/PID/task/TID/stat,
# the figure to compare on a busy machine, where the build's nice 10 makes
# its wall time the machine's) across three edits of one host's line and
# three of e0's address, and for the latter how long after the write h0's
# answer changed (150 ms of it the watcher's quiet time). The demo DB: an
# edit that moves no edge shares the ranks, so the database does not enter.
# usage: bench/edit-cost.sh; EDGES HOSTS NGROUPS as in bench/reload-groups.sh,
# BIN=path (default target/release/geosteer), KEEP=1 keeps the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGES=${EDGES:-150} HOSTS=${HOSTS:-50000} NGROUPS=${NGROUPS:-2000}
BIN=$(realpath "${BIN:-target/release/geosteer}")
W=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi; }
trap cleanup EXIT
PORT=$((21000 + RANDOM % 900)); HPORT=$((PORT + 1))
mkdir -p "$W/zones" "$W/geodb"
cp geodb/demo-city.mmdb "$W/geodb/city.mmdb"
NEAR=192.0.2.1 python3 bench/reload-shape.py "$W/zones" "$EDGES" "$HOSTS" "$NGROUPS" 1 1
P="$W/zones/cdn.example.pools.yaml"
cat > "$W/geosteer.yaml" <<C
listen: [127.0.0.1:$PORT]
zones: zones
geodb: geodb/city.mmdb
http: 127.0.0.1:$HPORT
workers: 1
C
(cd "$W" && exec "$BIN" serve -c geosteer.yaml 2>server.log) &
PID=$!
until dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" h0.cdn.example A 2>/dev/null | grep -q .; do
    kill -0 "$PID" 2>/dev/null || { tail -5 "$W/server.log"; exit 1; }
    sleep 0.3
done
echo "== $EDGES edges, $HOSTS hosts, $NGROUPS groups; $BIN; load: $(uptime | sed 's/.*load/load/')"
gen() { curl -s "http://127.0.0.1:$HPORT/api/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])'; }
TID=$(for t in /proc/"$PID"/task/*; do if [ "$(cat "$t/comm")" = geosteer-build ]; then basename "$t"; fi; done)
cpu() { awk -v k="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / k }' "/proc/$PID/task/$TID/stat"; }
# Replaces the file (written aside, renamed) with python's `t` edited by $1.
edit() {
    python3 - "$P" "$1" <<'PY'
import os, sys
p = sys.argv[1]
t = open(p).read()
t = eval(sys.argv[2])
open(p + ".tmp", "w").write(t)
os.rename(p + ".tmp", p)
PY
}
sleep 2
HOST=$((HOSTS / 2))
for kind in host host host edge edge edge; do
    g0=$(gen); c0=$(cpu); t0=$(date +%s.%N); after=""
    if [ "$kind" = host ]; then
        edit "t.replace('  h$HOST: { edges: [', '  h$HOST: { edges: [e0, ', 1)"
    else
        a=192.0.2.$((RANDOM % 200 + 2))
        edit "t.replace(t[t.index('  e0: { addresses: ['):t.index(']', t.index('  e0: { addresses: ['))], '  e0: { addresses: [$a', 1)"
        until [ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" h0.cdn.example A)" = "$a" ]; do sleep 0.01; done
        after=", answered $(echo "$(date +%s.%N) - $t0" | bc | sed 's/^\./0./') s after the write"
    fi
    until [ "$(gen)" -gt "$g0" ]; do sleep 0.05; done
    sleep 0.3 # the old snapshot freed after the swap
    echo "$kind edit: files-stage build thread CPU $(echo "$(cpu) - $c0" | bc | sed 's/^\./0./') s$after"
done
echo "load: $(uptime | sed 's/.*load/load/')"
