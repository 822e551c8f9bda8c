"""`walkcover batch` on a synthetic region: speed-up with 2 Dask workers against 1, and the same
per-city figures as measuring each city alone (run by hand; issue: Henan on Dask).

The region file is the bundled ``henan``; the source is one ``.osm.pbf`` holding a city-size copy of
the real Helsinki extract (`scripts/make_city.py --places`) over each of four Henan cities (开封,
洛阳, 新乡, 许昌). Each batch runs as ``walkcover batch`` in a fresh process (cluster start-up,
cutting and writing included); the section "Batch on Dask" of docs/benchmarks.md gets the table.

    python scripts/bench_batch.py --size S

With ``--province`` it measures a province instead (section "Province batch" of
docs/benchmarks.md): `scripts/make_province.py` builds the file (or ``--source`` names one), then
the one-pass cut of all 18 cities alone, and ``walkcover batch --region henan --cities all
--workers 2`` cold (empty cache) and again from the cached cuts, each in a fresh process.

    python scripts/bench_batch.py --province --source /tmp/province.osm.pbf
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
PROVINCE_HEAD = "## Province batch, one-pass cut (`scripts/bench_batch.py --province`)"
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


def write_section(doc: Path, head: str, lines: list[str]) -> None:
    """Replace section `head` of `doc` with `lines` (appended when missing)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    text = re.sub(rf"\n{re.escape(head)}\n.*?(?=\n## |\Z)", "", text, flags=re.DOTALL).rstrip()
    doc.write_text(text + "\n\n" + "\n".join(lines), encoding="utf-8")


def province(source: Path | None, doc: Path) -> None:
    """The province row: cut alone, then the whole batch cold and from the cached cuts."""
    import os

    import osmium

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if source is None:
            source = tmp / "province.osm.pbf"
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_province.py"), "--out",
                            str(source)], check=True)  # fmt: skip
        nodes = sum(1 for _ in osmium.FileProcessor(str(source), osmium.osm.NODE))
        env = {**os.environ, "WALKCOVER_CACHE": str(tmp / "cache-cut")}
        code = ("import time; from pathlib import Path; from walkcover.batch import cut_cities; "
                "from walkcover.config.region import load_region; r = load_region('henan'); "
                "t = time.perf_counter(); cut_cities(r, list(r.cities['city_id']), "
                f"source=Path({str(source)!r}), standard='all', "
                f"cache_dir=Path({str(tmp / 'cache-cut')!r})); print(time.perf_counter() - t)")  # fmt: skip
        cut_s = float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, check=True, env=env).stdout.split()[-1])  # fmt: skip
        runs = []
        env = {**os.environ, "WALKCOVER_CACHE": str(tmp / "cache")}
        for label in ("cold: cut once, then measure", "again: cuts from the cache"):
            cmd = [sys.executable, "-m", "walkcover", "batch", "--region", "henan", "--source",
                   str(source), "--out", str(tmp / "out"), "--cities", "all", "--workers", "2",
                   "--overwrite"]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if proc.returncode != 0:
                raise SystemExit(f"batch failed: {proc.stderr[-3000:]}")
            runs.append((label, time.perf_counter() - t0))
            print(f"{label}: {runs[-1][1]:.0f} s", flush=True)
        size_mb = source.stat().st_size / 1e6
    lines = [
        PROVINCE_HEAD,
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on this 2-core machine: `scripts/make_province.py` "
        f"({nodes:,} nodes, {size_mb:.0f} MB; an S city in each of the 18 cities, the rest outside "
        "them), `walkcover batch --region henan --cities all --workers 2`, each in a fresh process.",
        "",
        "| what | wall s |",
        "|---|---:|",
        f"| cutting all 18 cities with their halos, one osmium pass | {cut_s:.1f} |",
        *[f"| batch, {label} | {wall:.0f} |" for label, wall in runs],
        "",
    ]
    print("\n".join(lines))
    write_section(doc, PROVINCE_HEAD, lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="S", choices=["S", "M"])
    ap.add_argument("--out", type=Path, default=DOC)
    ap.add_argument("--province", action="store_true", help="the province row instead")
    ap.add_argument("--source", type=Path, help="with --province: the province file to use")
    args = ap.parse_args()
    if args.province:
        province(args.source, args.out)
        return
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
    write_section(args.out, HEAD, lines)


if __name__ == "__main__":
    main()
