#!/usr/bin/env python3
"""Writes a CDN-shaped zone for reload benchmarks: EDGES edges, HOSTS steered
hosts drawn from GROUPS distinct edge groups, one line a host in
<zone>.pools.yaml, as an operator writes it (issue 28's "many groups" row is
150 / 50,000 / 2,000).

usage: bench/reload-shape.py DIR [EDGES HOSTS GROUPS [ZONES [SEED]]]
  ZONES > 1 splits the hosts over that many zones (z0.example ...), each
  with its own pools file over the same edges and groups.
  NEAR=ADDR: the first host's (h0) nearest edge for 127.0.0.1 is e0 with
  address ADDR (default 192.0.2.1), so a benchmark can edit it and watch
  the answer change.
  GROUP_SYNTAX=1 names each group once (`groups:`) and writes a host as
  `hN: { edges: gK }` instead of repeating the group's edge list.
"""
import os
import random
import sys

out = sys.argv[1]
edges, hosts, groups = (int(x) for x in (sys.argv[2:5] or ["150", "50000", "2000"]))
zones = int(sys.argv[5]) if len(sys.argv) > 5 else 1
rng = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
near = os.environ.get("NEAR", "192.0.2.1")
named = os.environ.get("GROUP_SYNTAX") == "1"

os.makedirs(out, exist_ok=True)
edge_lines = []
for e in range(edges):
    lat, lon = rng.uniform(-60, 70), rng.uniform(-180, 180)
    addr = near if e == 0 else f"198.51.{100 + e // 250}.{e % 250 + 1}"
    if e == 0:
        lat, lon = 51.5, -0.1
    edge_lines.append(f"  e{e}: {{ addresses: [{addr}], location: [{lat:.2f}, {lon:.2f}] }}\n")

# Group 0 holds e0 and a far edge, so h0 (in group 0) answers e0 for a
# client placed in London. Other groups: 4 to 16 random edges, a few "all".
group_edges = [["e0", "e1"]]
while len(group_edges) < groups:
    if len(group_edges) % 97 == 0:
        g = [f"e{i}" for i in range(edges)]
    else:
        g = sorted(rng.sample(range(edges), rng.randint(4, min(16, edges))))
        g = [f"e{i}" for i in g]
    group_edges.append(g)

per_zone = (hosts + zones - 1) // zones
for z in range(zones):
    name = "cdn.example" if zones == 1 else f"z{z}.example"
    with open(f"{out}/{name}.zone", "w") as f:
        f.write("$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n")
    with open(f"{out}/{name}.pools.yaml", "w") as f:
        f.write("ttl: 30\nedges:\n")
        f.writelines(edge_lines)
        if named:
            f.write("groups:\n")
            f.writelines(f"  g{i}: [{', '.join(g)}]\n" for i, g in enumerate(group_edges))
        f.write("nets:\n  127.0.0.0/8: [51.5, -0.1]\nhosts:\n")
        for h in range(z * per_zone, min(hosts, (z + 1) * per_zone)):
            g = 0 if h == 0 else rng.randrange(groups)
            edges_of = f"g{g}" if named else f"[{', '.join(group_edges[g])}]"
            f.write(f"  h{h}: {{ edges: {edges_of} }}\n")
