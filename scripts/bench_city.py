"""The whole pipeline on city-size inputs made of real OSM data (run by hand; issue: city scale).

For each size it writes the city with `scripts/make_city.py` (the Helsinki extract repeated over
central Zhengzhou), then runs `walkcover.assess` + `Results.save` for Zhengzhou in a fresh process,
cold (parse included, empty cache) and again from the cache, and for a county the city does not
reach (a district with no data), once after the city was read and once with nothing cached. Each
run records its steps' wall times and its peak memory; the table goes into docs/benchmarks.md
(section "City scale").

    python scripts/bench_city.py --sizes S M            # L takes long: see docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
HEAD = "## City scale (`scripts/bench_city.py`)"
EMPTY_COUNTY = "登封市"  # 60 km from the centre: the synthetic city never reaches it

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import walkcover as wc
steps = [("importing walkcover", time.perf_counter() - t0)]
last = [time.perf_counter(), "choosing districts and standards"]
def progress(label):
    now = time.perf_counter()
    steps.append((last[1], now - last[0]))
    last[:] = [now, label]
source, district, cache, out, maps = sys.argv[1:6]
res = wc.assess("zhengzhou", district=district, source=source, cache_dir=cache, progress=progress)
progress("writing outputs" + (" and maps" if maps == "1" else ""))
files = res.save(out, overwrite=True, maps=maps == "1")
progress("done")
print(json.dumps({
    "steps": steps, "wall_s": time.perf_counter() - t0,
    "cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime
    + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "homes": int(len(res.demand)), "edges": int(len(res.assessment.network.edges)),
    "nodes": int(res.assessment.network.n_nodes),
}))
"""


def machine_speed_s() -> float:
    """A fixed CPU loop (numpy sorts and a Python loop), best of three, in seconds: runs on this
    shared machine vary by ±10% over a day, and this says how fast it was at the time."""
    code = (
        "import time, numpy as np\n"
        "x = np.random.default_rng(0).random(5_000_000)\n"
        "t = time.perf_counter()\n"
        "for _ in range(5): np.sort(x)\n"
        "s = 0\n"
        "for i in range(3_000_000): s += i\n"
        "print(time.perf_counter() - t)"
    )
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return min(runs)


def _s(seconds: float) -> str:
    """Seconds as the table shows them: to the hundredth below 10 s (a county with no data is
    measured against 1 s), to the tenth above."""
    return f"{seconds:.2f}" if seconds < 10 else f"{seconds:.1f}"


def run(source: Path, district: str, cache: Path, out: Path, *, maps: bool) -> dict:
    cmd = [
        sys.executable,
        "-c",
        CHILD,
        str(source),
        district,
        str(cache),
        str(out),
        "1" if maps else "0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({district}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["S", "M"], choices=["S", "M", "L"])
    ap.add_argument("--maps", action="store_true", help="also write the maps")
    ap.add_argument("--out", type=Path, default=DOC)
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs from the cache repeated N times: the fastest's wall and CPU, every run's "
        "range and the highest peak are reported (runs here vary by 10-30%%)",
    )
    args = ap.parse_args()
    lines = [
        HEAD,
        "",
        f'Measured {time.strftime("%Y-%m-%d")} on this 2-core machine: `walkcover.assess("zhengzhou", '
        "district=…, source=city-X.osm.pbf)` then `.save(out)`"
        + (" with maps" if args.maps else " (GeoPackages and CSVs, no maps)")
        + ", each in a fresh process; wall seconds, CPU seconds (both cores) and peak resident "
        "memory (MB)"
        + (
            f"; runs from the cache: {args.repeat} each, the wall and CPU seconds of the fastest "
            "with the range of all in brackets, and the highest peak of all"
            if args.repeat > 1
            else ""
        )
        + ". The empty county "
        "runs after the whole city was read, so its layers are cut from the city's cache entry; "
        "with nothing cached, on a fresh copy of the file, it reads and caches the whole city "
        "(the file is scanned whole either way), so the next district is cut from that. "
        f"Machine speed at the start (`machine_speed_s`, lower is faster; 1.8–2.4 s seen): "
        f"{machine_speed_s():.2f} s.",
        "",
        "| city | run | districts | walk nodes | homes | wall s | CPU s | peak MB | slowest steps |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes:
            pbf = tmp / f"city-{size}.osm.pbf"
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_city.py"), "--size", size,
                            "--out", str(pbf)], check=True)  # fmt: skip
            cache = tmp / f"cache-{size}"
            # a copy under another name, for the empty county with nothing cached (pyrosm keeps
            # its own results of a file, so the first runs' reads must not serve it)
            fresh = tmp / f"fresh-{size}.osm.pbf"
            shutil.copyfile(pbf, fresh)
            for label, district, source, folder in (
                ("cold", "all", pbf, cache),
                ("cached", "all", pbf, cache),
                ("empty county", EMPTY_COUNTY, pbf, cache),
                ("empty county, nothing cached", EMPTY_COUNTY, fresh, tmp / f"fresh-cache-{size}"),
            ):
                times = args.repeat if label in ("cached", "empty county") else 1
                runs = [
                    run(source, district, folder, tmp / f"out-{size}", maps=args.maps)
                    for _ in range(times)
                ]
                r = min(runs, key=lambda x: x["wall_s"])
                top = sorted(r["steps"], key=lambda s: -s[1])[:3]
                slow = "; ".join(f"{name} {_s(sec)}" for name, sec in top)
                wall, cpu = _s(r["wall_s"]), _s(r["cpu_s"])
                if len(runs) > 1:  # every run's range: the fastest alone hides how runs vary
                    walls, cpus = [x["wall_s"] for x in runs], [x["cpu_s"] for x in runs]
                    wall += f" ({_s(min(walls))}–{_s(max(walls))})"
                    cpu += f" ({_s(min(cpus))}–{_s(max(cpus))})"
                peak = max(x["peak_mb"] for x in runs)
                lines.append(
                    f"| {size} | {label} | {district} | {r['nodes']:,} | {r['homes']:,} | "
                    f"{wall} | {cpu} | {peak:,.0f} | {slow} |"
                )
                print(lines[-1], flush=True)
    lines += ["", f"Machine speed at the end: {machine_speed_s():.2f} s.", ""]
    text = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Benchmarks\n"
    text = re.sub(rf"\n{re.escape(HEAD)}\n.*?(?=\n## |\Z)", "", text, flags=re.DOTALL).rstrip()
    args.out.write_text(text + "\n\n" + "\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
