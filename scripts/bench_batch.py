"""`walkcover batch` on a synthetic region: speed-up with 2 Dask workers against 1, and the same
per-city figures as measuring each city alone (run by hand; issue: Henan on Dask).

The region file is the bundled ``henan``; the source is one ``.osm.pbf`` holding a city-size copy of
the real Helsinki extract (`scripts/make_city.py --places`) over each of four Henan cities (开封,
洛阳, 新乡, 许昌). Each batch runs as ``walkcover batch`` in a fresh process (cluster start-up,
cutting and writing included); the section "Batch on Dask" of docs/benchmarks.md gets the table.

    python scripts/bench_batch.py --size S
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
HEAD = "## Batch on Dask (`scripts/bench_batch.py`)"
#: adcode → urban centre (lon, lat) where the synthetic city is placed
CITIES = {
    "410200": (114.31, 34.80),  # 开封
    "410300": (112.45, 34.62),  # 洛阳
    "410700": (113.93, 35.30),  # 新乡
    "411000": (113.85, 34.04),  # 许昌
}


def batch(source: Path, out: Path, workers: int) -> tuple[float, pd.DataFrame]:
    cmd = [sys.executable, "-m", "walkcover", "batch", "--region", "henan", "--source", str(source),
           "--out", str(out), "--cities", ",".join(CITIES), "--workers", str(workers), "--no-maps",
           "--overwrite"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"batch failed: {proc.stderr[-3000:]}")
    return wall, pd.read_csv(out / "henan" / "batch_status.csv", dtype={"city": str})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="S", choices=["S", "M"])
    ap.add_argument("--out", type=Path, default=DOC)
    args = ap.parse_args()
    import walkcover as wc
    from walkcover.config.region import load_region, region_city

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pbf = tmp / "region.osm.pbf"
        places = [f"{lon},{lat}" for lon, lat in CITIES.values()]
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_city.py"), "--size", args.size,
                        "--places", *places, "--out", str(pbf)], check=True)  # fmt: skip
        runs = {}
        for workers in (1, 2):
            runs[workers] = batch(pbf, tmp / f"out{workers}", workers)
            print(f"{workers} worker(s): {runs[workers][0]:.1f} s", flush=True)
        speedup = runs[1][0] / runs[2][0]
        # the same figures as each city measured alone from the whole source
        region = load_region("henan")
        got = pd.read_csv(tmp / "out2" / "henan" / "region_summary.csv", dtype={"city": str})
        worst = 0.0
        t0 = time.perf_counter()
        for cid in CITIES:
            alone = wc.assess(region_city(region, cid), source=pbf, cache=False).summary
            mine = got[got["city"] == cid].reset_index(drop=True)
            for col in ("residents", "residents_covered_pct", "area_covered_pct"):
                a = mine[col].to_numpy(float)
                b = alone[col].to_numpy(float)
                both = ~(np.isnan(a) & np.isnan(b))
                worst = max(worst, float(np.nanmax(np.abs(a[both] - b[both]), initial=0.0)))
        sequential = time.perf_counter() - t0
        status = runs[2][1]
    lines = [
        HEAD,
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on this 2-core machine: four {args.size}-size cities "
        "(the Helsinki extract repeated over 开封, 洛阳, 新乡 and 许昌, one .osm.pbf), "
        "`walkcover batch --region henan --cities 410200,410300,410700,411000 --no-maps`, each "
        "batch in a fresh process, Dask cluster start-up and each city's cut included.",
        "",
        "| workers | wall s | speed-up |",
        "|---:|---:|---:|",
        f"| 1 | {runs[1][0]:.1f} | 1.00 |",
        f"| 2 | {runs[2][0]:.1f} | {speedup:.2f} |",
        "",
        f"Each city measured alone from the whole source (in one process, no cluster): "
        f"{sequential:.1f} s for the four; largest difference from the batch's figures "
        f"(residents, residents covered %, land covered %): {worst:.2g}.",
        "",
        "| city | seconds in its task | worker peak MB |",
        "|---|---:|---:|",
        *[
            f"| {r.city} {r.city_name} | {r.seconds:.1f} | {r.worker_peak_mb:,.0f} |"
            for r in status.itertuples()
        ],
        "",
    ]
    print("\n".join(lines))
    text = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Benchmarks\n"
    text = re.sub(rf"\n{re.escape(HEAD)}\n.*?(?=\n## |\Z)", "", text, flags=re.DOTALL).rstrip()
    args.out.write_text(text + "\n\n" + "\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
