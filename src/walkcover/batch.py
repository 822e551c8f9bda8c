"""Many cities at once on Dask: one task per city of a region, on one machine or a cluster.

`run_batch` submits one task per city (`run_city`) to a ``dask.distributed`` cluster: a
`LocalCluster` with N worker processes, or an existing scheduler (a cluster started with
dask-jobqueue or on Kubernetes works unchanged; its workers need walkcover installed and the same
paths to the source file and the output folder). Each task cuts the source to its city plus a halo
(the largest search distance plus the snap distance, `assessment.study_margin_m`), so that borders
are measured exactly; it reads only that cut, measures the city's districts (homes are counted
only in their own city) and writes the same outputs as ``walkcover run`` into
``OUT/<region>/<city>/``, then a completion record, ``batch.json``.

Tasks are idempotent: a rerun skips the cities whose record matches the source and the standards
(unless ``overwrite``), so a batch picks up after a crash. A task that fails is retried, then
reported with its reason; the others go on. A worker that dies mid-task is replaced and its task
run again by the scheduler. The region's files (`presentation.region`) come from every complete
city once all tasks are settled.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd

from walkcover._atomic import check_writable_folder, write_atomic
from walkcover._errors import ConfigError, SourceError, WalkcoverError
from walkcover._lock import output_lock
from walkcover.config.region import (
    Region,
    city_standards,
    load_region,
    region_city,
    select_cities,
)
from walkcover.config.standards import Standard

log = logging.getLogger(__name__)

#: The record a city's folder gets once its outputs are complete.
RECORD_NAME = "batch.json"
#: The record of the region folder: which region (and config) its results belong to.
REGION_RECORD = "region.json"

#: Beyond the study margin, how much more each city's cut takes (m).
HALO_EXTRA_M = 1000.0

STATUS_DONE = "done"
STATUS_SKIPPED = "skipped"  # complete from an earlier run
STATUS_EMPTY = "empty"  # no OSM data in the city's cut
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class CityOutcome:
    """What became of one city: its status, why (for empty and failed), and how long it took."""

    city_id: str
    name: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    #: Peak resident memory of the worker process that ran it, so far (MB).
    peak_mb: float = 0.0


@dataclass(frozen=True)
class BatchResult:
    """A batch run: each city's outcome, the region summary, the files written."""

    region: str
    folder: Path
    outcomes: list[CityOutcome]
    summary: gpd.GeoDataFrame
    files: list[Path]
    dashboard: str = ""

    def failed(self) -> list[CityOutcome]:
        return [o for o in self.outcomes if o.status == STATUS_FAILED]


def source_fingerprint(source: Path) -> dict[str, Any]:
    """What identifies a source file's version: path, size and modification time."""
    st = source.stat()
    return {"path": str(source.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def city_folder(out: Path, region: Region, city_id: str) -> Path:
    """``OUT/<region>/<city id>``: where a city's outputs go (its config id names it)."""
    return out / region.id / region_city(region, city_id).id


def is_complete(folder: Path, *, source: Path, standards: list[str]) -> bool:
    """Whether `folder` holds a city's complete outputs from `source` for `standards`."""
    record = folder / RECORD_NAME
    if not record.is_file():
        return False
    try:
        got = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return got.get("source") == source_fingerprint(source) and got.get("standards") == standards


def run_city(
    region_path: str,
    city_id: str,
    source: str,
    out: str,
    standard: str = "all",
    maps: bool = True,
) -> dict[str, Any]:
    """One task: cut `source` to the city plus its halo, measure it, write its outputs and record.

    Runs in a worker process; everything it needs is in its arguments (paths as text).

    Returns
    -------
    dict
        ``city_id, status`` (done or empty), ``reason`` and ``seconds``.
    """
    import walkcover as wc
    from walkcover.presentation.outputs import write_run

    t0 = time.perf_counter()
    region = load_region(region_path)
    city = region_city(region, city_id)
    base = Path(out) / region.id
    work = base / ".work"
    work.mkdir(parents=True, exist_ok=True)
    running = work / f"{city_id}.running"
    running.write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}),
        encoding="utf-8",
    )
    try:
        standards_file = city_standards(region, city_id)
        cut = _cut_with_halo(
            region, city_id, city.districts, standard, Path(source), work / f"{city_id}.osm.pbf"
        )
        try:
            if _empty(cut):
                return {
                    "city_id": city_id,
                    "status": STATUS_EMPTY,
                    "reason": "no OSM ways in the city and its halo",
                    "seconds": time.perf_counter() - t0,
                    "peak_mb": _peak_mb(),
                }
            size_mb = cut.stat().st_size / 1e6
            if size_mb > region.config.split_above_mb and len(city.districts) > 1:
                _run_split(region, city_id, cut, base, standard, maps)
            else:
                res = wc.assess(
                    city, standard=standard, standards=standards_file, source=cut, cache=False
                )
                write_run(res.assessment, base, overwrite=True, maps=maps)
        finally:
            cut.unlink(missing_ok=True)
        folder = base / city.id
        record = {
            "region": region.id,
            "city_id": city_id,
            "source": source_fingerprint(Path(source)),
            "standards": [s.id for s in _standards(region, city_id, standard)],
            "seconds": round(time.perf_counter() - t0, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_atomic(
            folder / RECORD_NAME,
            lambda tmp: tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8"),
        )
        return {
            "city_id": city_id,
            "status": STATUS_DONE,
            "reason": "",
            "seconds": time.perf_counter() - t0,
            "peak_mb": _peak_mb(),
        }
    finally:
        running.unlink(missing_ok=True)


def run_district(
    region_path: str,
    city_id: str,
    slug: str,
    city_cut: str,
    part: str,
    standard: str = "all",
    maps: bool = True,
) -> str:
    """One district of a city too big for one task: cut it and its halo out of the city's cut,
    measure it alone and write its outputs under `part` (merged into the city by its city task)."""
    import walkcover as wc
    from walkcover.presentation.outputs import write_run

    region = load_region(region_path)
    city = region_city(region, city_id)
    standards_file = city_standards(region, city_id)
    mine = city.districts[city.districts["slug"] == slug]
    dcut = _cut_with_halo(
        region, city_id, mine, standard, Path(city_cut), Path(part) / f"{slug}.osm.pbf"
    )
    try:
        res = wc.assess(
            city,
            district=slug,
            standard=standard,
            standards=standards_file,
            source=dcut,
            cache=False,
        )
        write_run(res.assessment, Path(part), overwrite=True, maps=maps)
    finally:
        dcut.unlink(missing_ok=True)
    return slug


def _run_split(
    region: Region, city_id: str, cut: Path, base: Path, standard: str, maps: bool
) -> None:
    """Measure a city one district per task (on the cluster when run by a worker, else here),
    then merge the districts' outputs into the city's folder."""
    import shutil

    from walkcover.presentation.outputs import merge_district_parts

    city = region_city(region, city_id)
    parts = base / ".work" / f"{city.id}-parts"
    shutil.rmtree(parts, ignore_errors=True)
    jobs = [
        (str(region.config_path), city_id, slug, str(cut), str(parts / slug), standard, maps)
        for slug in city.districts["slug"]
    ]
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except (ImportError, ValueError):
        for job in jobs:
            run_district(*job)
    else:
        with worker_client() as client:  # this task steps aside while its districts run
            futures = [
                client.submit(run_district, *job, key=f"walkcover-{city.id}-{job[2]}", pure=False)
                for job in jobs
            ]
            client.gather(futures)
    merge_district_parts(base, city, [parts / j[2] for j in jobs], maps=maps)
    shutil.rmtree(parts, ignore_errors=True)


def _peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux and macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _empty(pbf: Path) -> bool:
    """Whether an .osm.pbf holds no way at all."""
    import osmium

    for _ in osmium.FileProcessor(str(pbf), osmium.osm.WAY):
        return False
    return True


def connect(*, workers: int | None, scheduler: str | None, timeout_s: float = 10.0):
    """A Dask client: to the scheduler at `scheduler`, or to a new `LocalCluster` of `workers`
    single-threaded worker processes (default: one per core).

    Raises
    ------
    WalkcoverError
        When no scheduler answers at `scheduler` within `timeout_s`.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise WalkcoverError(
                f"--scheduler {scheduler!r}: no Dask scheduler answered within {timeout_s:g} s "
                f"({' '.join(str(exc).split())[:200]}); start one (`dask scheduler`) or leave "
                "--scheduler out to run on this machine"
            ) from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    return Client(cluster)


def run_batch(
    region: str | Path,
    *,
    source: str | Path,
    out: str | Path,
    cities: str | list[str] = "all",
    standard: str = "all",
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    maps: bool = True,
    retries: int = 2,
    progress: Callable[[str], None] | None = None,
) -> BatchResult:
    """Measure every city of `region` (or those `cities` names) on Dask, then write the region's
    files (`presentation.region.write_region`).

    Parameters
    ----------
    region
        A bundled region (``henan``) or a region YAML file.
    source
        An ``.osm.pbf`` covering the cities (e.g. Geofabrik's ``henan-latest.osm.pbf``).
    out
        Output folder; the region's results go to ``OUT/<region>/``.
    cities
        ``all``, or city ids or names separated by commas.
    standard
        ``all`` or standard ids separated by commas.
    workers, scheduler
        Worker processes of a local cluster, or the address of an existing scheduler.
    overwrite
        Measure cities again even when their complete outputs exist.
    maps
        Also write each district's and city's interactive map, as ``walkcover run`` does.
    retries
        How many times a failed task is tried again before it is reported.
    progress
        Called with a line of text as cities start and finish.
    """
    from distributed import as_completed

    from walkcover.presentation.outputs import write_region

    say = progress or (lambda _line: None)
    reg = load_region(region)
    chosen = select_cities(reg, cities)
    src = Path(source)
    if not src.is_file() or not src.name.endswith(".osm.pbf"):
        raise SourceError(
            f"--source {str(src)!r} is not an existing .osm.pbf file; pass the province extract, "
            "e.g. henan-latest.osm.pbf from Geofabrik"
        )
    base = check_writable_folder(Path(out), option="out (--out)") / reg.id
    std_ids = _standard_ids(reg, chosen, standard)
    with output_lock(base, command="batch"):
        _claim_region_folder(base, reg, overwrite=overwrite)
        names = dict(zip(reg.cities["city_id"], reg.cities["name"]))
        outcomes: dict[str, CityOutcome] = {}
        todo = []
        for cid in chosen:
            folder = base / region_city(reg, cid).id
            if not overwrite and is_complete(folder, source=src, standards=std_ids[cid]):
                outcomes[cid] = CityOutcome(cid, names[cid], STATUS_SKIPPED, "complete already")
            else:
                todo.append(cid)
        if outcomes:
            say(f"{len(outcomes)} cit(y/ies) complete from an earlier run, skipped")
        client = connect(workers=workers, scheduler=scheduler) if todo else None
        dashboard = client.dashboard_link if client is not None else ""
        try:
            if client is not None:
                say(f"Dask dashboard: {dashboard}")
                futures = {
                    client.submit(
                        run_city,
                        str(reg.config_path),
                        cid,
                        str(src.resolve()),
                        str(Path(out).resolve()),
                        standard,
                        maps,
                        key=f"walkcover-{reg.id}-{cid}",
                        retries=retries,
                        pure=False,
                    ): cid
                    for cid in todo
                }
                t0 = time.perf_counter()
                for fut in as_completed(futures):
                    cid = futures[fut]
                    try:
                        r = fut.result()
                        outcomes[cid] = CityOutcome(
                            cid, names[cid], r["status"], r["reason"], r["seconds"], r["peak_mb"]
                        )
                    except Exception as exc:
                        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                        outcomes[cid] = CityOutcome(cid, names[cid], STATUS_FAILED, reason)
                    counts = Counter(o.status for o in outcomes.values())
                    o = outcomes[cid]
                    say(
                        f"[{', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}, "
                        f"{len(chosen) - len(outcomes)} running or queued; "
                        f"{time.perf_counter() - t0:.0f} s] {cid} {o.name}: {o.status}"
                        + (f" ({o.reason})" if o.reason else "")
                    )
        finally:
            if client is not None:
                cluster = client.cluster
                client.close()
                if cluster is not None:
                    cluster.close()
        ordered = [outcomes[c] for c in chosen]
        complete = [o.city_id for o in ordered if o.status in (STATUS_DONE, STATUS_SKIPPED)]
        summary, files = write_region(
            base, reg, {c: region_city(reg, c) for c in complete}, outcomes=ordered
        )
    return BatchResult(reg.id, base, ordered, summary, files, dashboard)


def _standards(region: Region, city_id: str, standard: str) -> list[Standard]:
    """The standards a city is measured for: `standard` ('all' or ids) of its standards file."""
    from walkcover.config.standards import load_standards

    rules = load_standards(city_standards(region, city_id))
    return rules.select(standard if standard == "all" else standard.split(","))


def _standard_ids(region: Region, cities: list[str], standard: str) -> dict[str, list[str]]:
    """The standard ids each city is measured for (its standards file may differ)."""
    return {cid: [s.id for s in _standards(region, cid, standard)] for cid in cities}


def _cut_with_halo(
    region: Region,
    city_id: str,
    area: gpd.GeoDataFrame,
    standard: str,
    source: Path,
    dest: Path,
) -> Path:
    """Cut `area` (districts of the city, EPSG:4326) and its halo out of `source` into `dest`: the
    study margin of the city's standards, and a further HALO_EXTRA_M so that a way crossing the
    margin with no node inside it is in the cut whole, as a read of the whole source gives it."""
    from walkcover.assessment import study_margin_m
    from walkcover.config.study_area import working_crs
    from walkcover.sources.extract import cut_pbf

    city = region_city(region, city_id)
    margin = study_margin_m(city, _standards(region, city_id, standard)) + HALO_EXTRA_M
    halo = gpd.GeoSeries([area.union_all()], crs=4326).to_crs(working_crs(city)).buffer(margin)
    return cut_pbf(source, halo.to_crs(4326).iloc[0], dest)


def _claim_region_folder(base: Path, region: Region, *, overwrite: bool) -> None:
    """Refuse a folder holding another region's results; record this region's."""
    record = base / REGION_RECORD
    mine = {"region": region.id, "config": str(region.config_path.resolve())}
    if record.is_file():
        try:
            got = json.loads(record.read_text(encoding="utf-8"))
        except ValueError:
            got = {}
        if got != mine and not overwrite:
            raise ConfigError(
                f"--out folder {str(base)!r} holds the results of region {got.get('region')!r} "
                f"({got.get('config')}), not {region.id!r} ({mine['config']}); choose another --out "
                "or pass --overwrite to replace them"
            )
    elif not overwrite and any(not p.name.startswith(".") for p in base.iterdir()):
        raise ConfigError(
            f"--out folder {str(base)!r} holds files that are not a walkcover batch's; choose "
            "another --out or pass --overwrite"
        )
    write_atomic(
        record, lambda tmp: tmp.write_text(json.dumps(mine, ensure_ascii=False), encoding="utf-8")
    )


__all__ = [
    "BatchResult",
    "CityOutcome",
    "connect",
    "is_complete",
    "run_batch",
    "run_city",
]
