#!/usr/bin/env python3
"""Writes the seed corpus for the `query` fuzz target: well-formed queries
for every kind of name in the demo zone, with and without EDNS and ECS."""
import os, struct

def name(n):
    out = b""
    for l in n.rstrip(".").split("."):
        out += bytes([len(l)]) + l.encode()
    return out + b"\0"

def query(qid, qname, qtype, edns=None, ecs=None, flags=0x0100, qclass=1):
    ar = 1 if edns is not None else 0
    q = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, ar) + name(qname) + struct.pack(">HH", qtype, qclass)
    if edns is not None:
        opts = b""
        if ecs:
            addr, plen, fam = ecs
            raw = bytes(int(x) for x in addr.split(".")) if fam == 1 else bytes.fromhex(addr)
            raw = raw[: (plen + 7) // 8]
            body = struct.pack(">HBB", fam, plen, 0) + raw
            opts = struct.pack(">HH", 8, len(body)) + body
        q += b"\0" + struct.pack(">HHIH", 41, edns, 0, len(opts)) + opts
    return q

out = os.path.join(os.path.dirname(__file__), "corpus", "query")
os.makedirs(out, exist_ok=True)
seeds = [
    ("www.cdn.example", 1, None, None), ("www.cdn.example", 28, 1232, ("8.8.8.0", 24, 1)),
    ("img.cdn.example", 1, 4096, ("77.88.8.0", 24, 1)), ("video.cdn.example", 1, 1232, ("114.114.114.0", 24, 1)),
    ("video.cdn.example", 28, 1232, ("20014860000000000000000000000000", 32, 2)),
    ("cdn.example", 255, None, None), ("cdn.example", 255, 1232, None), ("cdn.example", 6, 512, None),
    ("cdn.example", 2, None, None), ("bigtxt.cdn.example", 16, None, None), ("bigtxt.cdn.example", 16, 4096, None),
    ("alias.cdn.example", 1, 1232, None), ("x.wild.cdn.example", 16, None, None),
    ("host.sub.cdn.example", 1, None, None), ("nope.cdn.example", 1, 1232, None),
    ("_sip._udp.cdn.example", 33, None, None), ("ptr.cdn.example", 12, None, None),
    ("cdn.example", 257, None, None), ("example.org", 1, None, None), ("cdn.example", 252, None, None),
    ("www.CDN.example", 1, 1232, ("0.0.0.0", 0, 1)),
]
for i, (n, t, e, c) in enumerate(seeds):
    with open(os.path.join(out, f"seed-{i:02}"), "wb") as f:
        f.write(query(0x1000 + i, n, t, e, c))
# Odd ones: opcode NOTIFY, class CH, truncated header, two OPTs.
with open(os.path.join(out, "notify"), "wb") as f:
    f.write(query(7, "cdn.example", 6, flags=0x2000))
with open(os.path.join(out, "chaos"), "wb") as f:
    f.write(query(8, "version.bind", 16, qclass=3))
with open(os.path.join(out, "short"), "wb") as f:
    f.write(b"\x12\x34\x01\x00\x00\x01")
q = query(9, "www.cdn.example", 1, 1232)
with open(os.path.join(out, "two-opt"), "wb") as f:
    f.write(q[:11] + b"\x02" + q[12:] + q[-11:])
