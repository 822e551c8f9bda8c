"""Time the whole pipeline on a seeded synthetic district at city scale (run by hand).

A grid of streets (100 m blocks, every fifth street a primary road) with two six-storey buildings
per block, residential land, and facilities scattered with a fixed seed. Writes the timings to
docs/benchmarks.md (appends a section) and prints them.

    python scripts/bench_pipeline.py --blocks 120   # 12 km × 12 km, ~29,000 buildings
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from walkcover.assessment import assess_layers
from walkcover.config.standards import load_standards
from walkcover.config.study_area import load_city, resolve_districts
from walkcover.config.tags import tag_texts
from walkcover.presentation.outputs import write_run
from walkcover.sources import OSMLayers

LOCAL = "+proj=tmerc +lat_0=34.75 +lon_0=113.65 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"


def synthetic(n: int, *, seed: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    step = 100.0
    idx = np.arange((n + 1) * (n + 1)).reshape(n + 1, n + 1)
    xy = lambda i, j: (j * step, i * step)  # noqa: E731
    rows = []
    for i in range(n + 1):
        for j in range(n + 1):
            if j < n:
                rows.append(
                    (
                        idx[i, j],
                        idx[i, j + 1],
                        "primary" if i % 5 == 0 else "residential",
                        [xy(i, j), xy(i, j + 1)],
                    )
                )
            if i < n:
                rows.append(
                    (
                        idx[i, j],
                        idx[i + 1, j],
                        "primary" if j % 5 == 0 else "residential",
                        [xy(i, j), xy(i + 1, j)],
                    )
                )
    streets = gpd.GeoDataFrame(
        {"u": [r[0] for r in rows], "v": [r[1] for r in rows], "osm_id": [f"way/{k}" for k in range(len(rows))],
         "highway": [r[2] for r in rows], "access": None, "foot": None, "area": None, "tunnel": None, "indoor": None,
         "bridge": None, "footway": None},
        geometry=shapely.linestrings([r[3] for r in rows]), crs=LOCAL,
    ).to_crs(4326)  # fmt: skip
    feats = []
    bx, by = np.meshgrid(np.arange(n) * step, np.arange(n) * step)
    bx, by = bx.ravel(), by.ravel()
    for x, y in zip(bx, by):
        feats.append(({"landuse": "residential"}, shapely.box(x + 8, y + 8, x + 92, y + 92)))
        feats.append(
            (
                {"building": "apartments", "building:levels": "6"},
                shapely.box(x + 15, y + 15, x + 45, y + 35),
            )
        )
        feats.append(
            (
                {"building": "apartments", "building:levels": "6"},
                shapely.box(x + 55, y + 60, x + 85, y + 80),
            )
        )
    size = n * step

    def pts(count: int, tags: dict) -> None:
        for x, y in rng.uniform(0, size, (count, 2)):
            feats.append((dict(tags), shapely.Point(x, y)))

    pts(n * n // 70, {"amenity": "toilets"})
    pts(n * n // 90, {"amenity": "kindergarten"})
    pts(n * n // 25, {"highway": "bus_stop"})
    pts(n * n // 150, {"amenity": "clinic"})
    pts(n * n // 80, {"leisure": "fitness_station"})
    for x, y in rng.uniform(0, size - 100, (n * n // 100, 2)):
        feats.append(({"leisure": "park"}, shapely.box(x, y, x + 90, y + 90)))
    for k, (x, y) in enumerate(rng.uniform(0, size - 100, (n * n // 200, 2))):
        name = "实验小学" if k % 2 == 0 else "第一中学"
        feats.append(({"amenity": "school", "name": name}, shapely.box(x, y, x + 80, y + 60)))
    features = gpd.GeoDataFrame(
        {"osm_id": [f"way/{10_000_000 + k}" for k in range(len(feats))], "osm_type": "way",
         "name": [t.get("name") for t, _ in feats], "tags": tag_texts(t for t, _ in feats).array},
        geometry=[g for _, g in feats], crs=LOCAL,
    ).to_crs(4326)  # fmt: skip
    return streets, features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--blocks", type=int, default=120)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()
    n = args.blocks
    t0 = time.perf_counter()
    streets, features = synthetic(n, seed=11)
    t_build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inv = pyproj.Transformer.from_crs(LOCAL, 4326, always_xy=True)
        d = shapely.transform(
            shapely.box(0, 0, n * 100, n * 100),
            lambda xy: np.column_stack(inv.transform(xy[:, 0], xy[:, 1])),
        )
        (tmp / "d.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": "d1", "name": "合成区", "name_en": "Synthetic"},
             "geometry": shapely.geometry.mapping(d)}]}))  # fmt: skip
        (tmp / "c.yaml").write_text(
            f"id: synthetic\nname: 合成城\nname_en: Synthetic city\ncrs: '{LOCAL}'\n"
            "districts: {path: d.geojson, id_field: id, name_field: name, name_en_field: name_en, sample: true}\n"
            "source: {kind: pbf, path: none.osm.pbf}\n"
        )
        city = load_city(tmp / "c.yaml")
        rules = load_standards()
        layers = OSMLayers(streets=streets, features=features, source="synthetic")
        timings = {}
        t = time.perf_counter()
        result = assess_layers(
            city, resolve_districts(city, "all"), rules, rules.select("all"), layers
        )
        timings["assess (network, residents, 9 standards, land figures)"] = time.perf_counter() - t
        t = time.perf_counter()
        write_run(result, tmp / "out", overwrite=True, maps=False)
        timings["coverage.gpkg with gaps and service areas, CSVs"] = time.perf_counter() - t
        t = time.perf_counter()
        write_run(result, tmp / "out", overwrite=True, maps=True)
        timings["interactive maps (district + city)"] = (
            time.perf_counter() - t - timings["coverage.gpkg with gaps and service areas, CSVs"]
        )  # the second run writes the GeoPackage again, then the maps
        size = tmp / "out" / "synthetic" / "synthetic" / "map.html"
        size = next((tmp / "out" / "synthetic").rglob("d1*/map.html"), None) or size
        map_mb = size.stat().st_size / 1e6 if size.exists() else float("nan")
    lines = [
        "",
        f"## Whole pipeline at district scale (`python scripts/bench_pipeline.py --blocks {n}`)",
        "",
        f"Seeded synthetic district: {n} × {n} blocks of 100 m ({(n * 0.1) ** 2:.0f} km²), {len(streets):,} street "
        f"segments, {int((features['tags'].map(lambda t: 'building' in t)).sum()):,} buildings, "
        f"{len(features):,} features in all (built in {t_build:.1f} s). One run, {time.strftime('%Y-%m-%d')}.",
        "",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in timings.items()],
        f"| total | {sum(timings.values()):.1f} |",
        "",
        f"The district map file is {map_mb:.1f} MB.",
        "",
    ]
    print("\n".join(lines))
    with args.out.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


if __name__ == "__main__":
    main()
