"""Write a province-size ``.osm.pbf`` made of real OSM data, for the one-pass cut benchmark
(`scripts/bench_batch.py --province`): the bundled Helsinki extract (about 24,000 nodes) repeated
as `scripts/make_city.py` does, a city of ``--size`` copies in each of the 18 cities of the bundled
``henan`` region (at the inner point of its smallest county, the urban districts), and ``--filler``
more copies outside Henan (south-west of it, beyond every city's halo), so that most nodes lie
outside any city's study area, as most of a province file is read for nothing by a city's cut.

    python scripts/make_province.py --out /tmp/province.osm.pbf           # about 10.5 M nodes
    python scripts/make_province.py --filler 20 --out /tmp/small.osm.pbf  # a quick one

Ids are compact (renumbered densely per copy), like make_city.py's: libosmium's id sets then stay
small; a real extract's ids reach 1.3·10¹⁰ (see docs/scaling.md for what that costs).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: (lon, lat) of the middle of the filler: Sichuan basin, 500 km south-west of Henan's border.
FILLER_AT = (106.5, 29.5)


def city_places() -> dict[str, tuple[float, float]]:
    """Each city of the ``henan`` region: a point inside its smallest county (lon, lat)."""
    import geopandas as gpd

    from walkcover.config.region import load_region, region_city

    region = load_region("henan")
    places = {}
    for cid in region.cities["city_id"]:
        d = region_city(region, cid).districts
        small = d.to_crs(d.estimate_utm_crs()).area.idxmin()
        p = gpd.GeoSeries([d.geometry[small]], crs=d.crs).to_crs(4326).iloc[0]
        pt = p.representative_point()
        places[cid] = (round(pt.x, 5), round(pt.y, 5))
    return places


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="S", choices=["S", "M"], help="each city's size")
    ap.add_argument("--filler", type=int, default=361, help="copies outside every city")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    places = list(city_places().values())
    side = max(1, math.isqrt(args.filler))
    # make_city.py writes every place's copies in one file: the filler is one more "city" of
    # side × side copies (so --filler is rounded down to a square)
    cmd = [sys.executable, str(ROOT / "scripts" / "make_city.py"), "--size", args.size,
           "--places", *[f"{lon},{lat}" for lon, lat in places], "--out", str(args.out),
           "--filler", f"{side}x{side}", "--filler-at", f"{FILLER_AT[0]},{FILLER_AT[1]}"]  # fmt: skip
    subprocess.run(cmd, check=True)
    print(
        f"18 cities of {args.size} and {side * side} filler copies in {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
