#!/usr/bin/env python3
"""Builds assets/world-110m.json, the status page's world map, from Natural
Earth 1:110m country shapes.

Source: the `world-atlas` npm package, version 2 (countries-110m.json,
TopoJSON of Natural Earth's public-domain Admin 0 countries, 1:110m), and
Debian's `iso-codes` (/usr/share/iso-codes/json/iso_3166-1.json) to turn the
ISO 3166-1 numeric ids into alpha-2 codes. Run once; the output is committed:

    npm pack world-atlas@2 && tar xzf world-atlas-2.*.tgz
    python3 assets/world-110m.py package/countries-110m.json \
        /usr/share/iso-codes/json/iso_3166-1.json > assets/world-110m.json

Output: {"countries": [{"cc", "name", "lat", "lon", "d"}]}, sorted by code.
`d` is an SVG path in an equirectangular projection on a 360 x 180 canvas
(x = lon + 180, y = 90 - lat), rounded to 0.1 degree. `lat`/`lon` is the
area-weighted centroid of the country's largest polygon: the point the
server steers as "this country's clients".
"""
import json
import sys

# Shapes Natural Earth draws without an ISO numeric id.
NO_ID = {"Kosovo": "XK", "N. Cyprus": "CY", "Somaliland": "SO"}


def decode_arcs(topo):
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring(arcs, idxs):
    pts = []
    for i in idxs:
        a = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        pts.extend(a if not pts else a[1:])
    return pts


def area_centroid(pts):
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        f = x0 * y1 - x1 * y0
        a += f
        cx += (x0 + x1) * f
        cy += (y0 + y1) * f
    if a == 0:
        return 0.0, pts[0]
    return abs(a) / 2, (cx / (3 * a), cy / (3 * a))


def unwrap(pts):
    """A ring that crosses the antimeridian (Russia, Fiji) jumps between
    +180 and -180 twice; shift its western part east by 360 so it is
    continuous. The path then draws it twice, once shifted back, and the
    canvas clips both copies."""
    xs = [p[0] for p in pts]
    jumps = sum(1 for a, b in zip(xs, xs[1:]) if abs(a - b) > 180)
    if jumps < 2:
        return pts, False
    return [(x + 360 if x < 0 else x, y) for x, y in pts], True


def path(pts):
    out = []
    last = None
    for lon, lat in pts:
        p = (round(lon + 180, 1), round(90 - lat, 1))
        if p == last:
            continue
        out.append("%g %g" % p)
        last = p
    return "M" + "L".join(out) + "Z"


def main():
    topo = json.load(open(sys.argv[1]))
    iso = {c["numeric"]: c["alpha_2"] for c in json.load(open(sys.argv[2]))["3166-1"]}
    arcs = decode_arcs(topo)
    shapes = {}
    for g in topo["objects"]["countries"]["geometries"]:
        name = g["properties"]["name"]
        cc = iso.get(g.get("id")) or NO_ID.get(name)
        if cc is None:
            sys.exit("no ISO code for %r (id %r)" % (name, g.get("id")))
        polys = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
        entry = shapes.setdefault(cc, {"cc": cc, "name": name, "d": [], "best": (0.0, None)})
        for poly in polys:
            rings = [unwrap(ring(arcs, r)) for r in poly]
            area, (x, y) = area_centroid(rings[0][0])
            if area > entry["best"][0]:
                entry["best"] = (area, (x - 360 if x > 180 else x, y))
            for r, wrapped in rings:
                entry["d"].append(path(r))
                if wrapped:
                    entry["d"].append(path([(x - 360, y) for x, y in r]))
            if g.get("id") is not None:
                entry["name"] = name
    out = []
    for cc in sorted(shapes):
        s = shapes[cc]
        lon, lat = s["best"][1]
        out.append({"cc": cc, "name": s["name"], "lat": round(lat, 2), "lon": round(lon, 2), "d": "".join(s["d"])})
    json.dump({"source": "Natural Earth 1:110m Admin 0 countries (public domain), via world-atlas 2.0.2",
               "countries": out}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


main()
