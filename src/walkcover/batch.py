"""Many cities at once on Dask: one task per city of a region, on one machine or a cluster.

`run_batch` submits one task per city (`run_city`) to a ``dask.distributed`` cluster: a
`LocalCluster` with N worker processes, or an existing scheduler (a cluster started with
dask-jobqueue or on Kubernetes works unchanged; its workers need walkcover installed and the same
paths to the source file, the cache and the output folder). Before the tasks start, every city is
cut out of the source, with its halo (the largest search distance plus the snap distance,
`assessment.study_margin_m`), in one streaming pass (`sources.extract.cut_areas`: osmium-tool)
into the cache, keyed by the source's content and the area, so that borders are measured exactly
and a later batch over the same file reads no province data. Each task reads only its city's cut,
measures the city's districts (homes are counted only in their own city) and writes the same
outputs as ``walkcover run`` into ``OUT/<region>/<city>/``, then a completion record,
``batch.json``.

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
import shutil
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd

from walkcover._atomic import check_writable_folder, write_atomic
from walkcover._errors import ConfigError, OutputFolderError, SourceError, WalkcoverError
from walkcover._lock import output_lock
from walkcover._paths import inside
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

#: Where the Dask dashboard listens when asked for (``--dashboard``): this machine only, any free
#: port. The scheduler, the nannies and the workers listen on 127.0.0.1 too (`connect`).
DASHBOARD_ADDRESS = "127.0.0.1:0"


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
    cut: str | None = None,
) -> dict[str, Any]:
    """One task: measure the city from its cut (`cut`, made by `run_batch` for every city in one
    pass over `source`; without it, the task cuts `source` to the city plus its halo itself),
    write its outputs and record.

    Runs in a worker process; everything it needs is in its arguments (paths as text).

    Returns
    -------
    dict
        ``city_id, status`` (done or empty), ``reason`` and ``seconds``.
    """
    t0 = time.perf_counter()
    try:
        return _run_city(region_path, city_id, source, out, standard, maps, t0, cut)
    except WalkcoverError as exc:
        # bad data or a refused path: the same on every try, so reported at once, not retried
        # (anything else is raised, and the scheduler tries it again)
        return {
            "city_id": city_id,
            "status": STATUS_FAILED,
            "reason": _reason(exc),
            "seconds": time.perf_counter() - t0,
            "peak_mb": _peak_mb(),
            "source_unreadable": isinstance(exc, _SourceUnreadableError),
        }


class _SourceUnreadableError(SourceError):
    """The source file itself could not be read for a city's cut (truncated, damaged)."""


def _run_city(
    region_path: str,
    city_id: str,
    source: str,
    out: str,
    standard: str,
    maps: bool,
    t0: float,
    given_cut: str | None = None,
) -> dict[str, Any]:
    import walkcover as wc
    from walkcover.api import earlier_proposals
    from walkcover.presentation.outputs import write_run

    root = Path(out)
    region = load_region(region_path)  # refuses a city id that is not a plain name
    city = region_city(region, city_id)
    base = inside(root, root / region.id, what="region folder")
    work = inside(root, base / ".work", what="batch work folder")
    work.mkdir(parents=True, exist_ok=True)
    running = inside(root, work / f"{city_id}.running", what="task marker")
    cut_path = inside(root, work / f"{city_id}.osm.pbf", what="city cut")
    folder = inside(root, base / city.id, what="city folder")
    running.write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}),
        encoding="utf-8",
    )
    try:
        standards_file = city_standards(region, city_id)
        if given_cut is not None:  # cut by the batch (into the cache): read, never removed
            cut = Path(given_cut)
            if not cut.is_file():
                raise _SourceUnreadableError(
                    f"the city's cut {given_cut!r} is missing on this worker; give the workers "
                    "the same cache folder (--cache-dir on a shared file system)"
                )
        else:
            try:
                cut = _cut_with_halo(
                    region, city_id, city.districts, standard, Path(source), cut_path
                )
            except SourceError as exc:
                raise _SourceUnreadableError(str(exc)) from None
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
                _run_split(region, city_id, cut, root, base, standard, maps)
            else:
                res = wc.assess(
                    city, standard=standard, standards=standards_file, source=cut, cache=False
                )
                # sites a planner proposed here with `walkcover site` stay, redrawn on this run
                proposals = earlier_proposals(res.assessment, base, overwrite=True)
                write_run(res.assessment, base, overwrite=True, maps=maps, proposals=proposals)
        finally:
            if given_cut is None:
                cut_path.unlink(missing_ok=True)
        record = {
            "region": region.id,
            "city_id": city_id,
            "source": source_fingerprint(Path(source)),
            "standards": [s.id for s in _standards(region, city_id, standard)],
            "seconds": round(time.perf_counter() - t0, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_atomic(
            inside(root, folder / RECORD_NAME, what="city record"),
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
    out: str | None = None,
) -> str:
    """One district of a city too big for one task: cut it and its halo out of the city's cut,
    measure it alone and write its outputs under `part` (merged into the city by its city task).
    Everything it writes stays inside `out` (default: `part`)."""
    import walkcover as wc
    from walkcover.presentation.outputs import write_run

    region = load_region(region_path)
    city = region_city(region, city_id)
    standards_file = city_standards(region, city_id)
    mine = city.districts[city.districts["slug"] == slug]
    root = Path(out) if out is not None else Path(part)
    part_dir = inside(root, Path(part), what="district part folder")
    dest = inside(root, part_dir / f"{slug}.osm.pbf", what="district cut")
    dcut = _cut_with_halo(region, city_id, mine, standard, Path(city_cut), dest)
    try:
        res = wc.assess(
            city,
            district=slug,
            standard=standard,
            standards=standards_file,
            source=dcut,
            cache=False,
        )
        write_run(res.assessment, part_dir, overwrite=True, maps=maps)
    finally:
        dest.unlink(missing_ok=True)
    return slug


def _run_split(
    region: Region, city_id: str, cut: Path, root: Path, base: Path, standard: str, maps: bool
) -> None:
    """Measure a city one district per task (on the cluster when run by a worker, else here),
    then merge the districts' outputs into the city's folder."""
    from walkcover.presentation.region import merge_district_parts

    city = region_city(region, city_id)
    parts = inside(root, base / ".work" / f"{city.id}-parts", what="district parts folder")
    _remove_tree(parts, root)
    jobs = [
        (
            str(region.config_path),
            city_id,
            slug,
            str(cut),
            str(inside(root, parts / slug, what="district part folder")),
            standard,
            maps,
            str(root),
        )
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
    merge_district_parts(
        base,
        city,
        [parts / j[2] for j in jobs],
        maps=maps,
        standards=_standards(region, city_id, standard),
    )
    _remove_tree(parts, root)


def _remove_tree(path: Path, root: Path) -> None:
    """Remove folder `path` (inside `root`); a symbolic link in its place is removed itself, never
    followed."""
    if path.is_symlink():
        inside(root, path.parent, what="folder holding a link")
        path.unlink()
    elif path.exists():
        shutil.rmtree(inside(root, path, what="folder to remove"), ignore_errors=True)


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


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else all)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def worker_count(workers: int | None) -> tuple[int, str]:
    """How many worker processes a local cluster gets for `workers` (None: one per core), and a
    line to tell when that is fewer than asked: never more than the machine has cores (each
    worker runs one city at a time, single-threaded; more would only share the cores and split
    the memory Dask gives each worker).

    Raises
    ------
    WalkcoverError
        `workers` is not a whole number of at least 1.
    """
    cores = available_cores()
    if workers is None:
        return cores, ""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise WalkcoverError(
            f"--workers {workers!r}: give the number of worker processes, a whole number of at "
            f"least 1 (this machine has {cores} cores), or leave it out for one per core"
        )
    if workers > cores:
        return cores, (
            f"--workers {workers}: this machine has {cores} core(s); running {cores} worker "
            "process(es), one per core"
        )
    return workers, ""


def connect(
    *,
    workers: int | None,
    scheduler: str | None,
    timeout_s: float = 10.0,
    dashboard: bool = False,
    verbose: bool = False,
) -> Any:
    """A Dask client: to the scheduler at `scheduler`, or to a new `LocalCluster` of `workers`
    single-threaded worker processes (default: one per core; never more, see `worker_count`).

    The local cluster listens on 127.0.0.1 only: its scheduler, nannies and workers, and the
    dashboard, which runs only with `dashboard` (at a free port, `DASHBOARD_ADDRESS`). Its
    workers log errors only, unless `verbose`.

    Raises
    ------
    WalkcoverError
        When no scheduler answers at `scheduler` within `timeout_s`, or `workers` is below 1.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{timeout_s}s")
        except ValueError as exc:
            raise WalkcoverError(
                f"--scheduler {scheduler!r} is not a scheduler's address "
                f"({' '.join(str(exc).split())[:200]}); give one such as tcp://host:8786"
            ) from None
        except (OSError, TimeoutError) as exc:
            raise WalkcoverError(
                f"--scheduler {scheduler!r}: no Dask scheduler answered within {timeout_s:g} s "
                f"({' '.join(str(exc).split())[:200]}); start one (`dask scheduler`) or leave "
                "--scheduler out to run on this machine"
            ) from None
    n, _ = worker_count(workers)
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # the scheduler's HTTP server (health checks, and the dashboard when asked for) runs
        # either way: on 127.0.0.1 at a free port, never on every interface
        dashboard_address=DASHBOARD_ADDRESS,
        scheduler_kwargs={"dashboard": dashboard},
        worker_dashboard_address=None,
        # a worker's "Compute Failed" comes with a traceback; the batch reports each failed city
        # in one line itself
        silence_logs=logging.WARNING if verbose else logging.CRITICAL,
    )
    try:
        return Client(cluster)
    except BaseException:
        cluster.close()
        raise


@contextmanager
def dask_logs(*, verbose: bool) -> Iterator[None]:
    """Within the block, the ``distributed`` loggers of this process (scheduler, nannies, client)
    pass only warnings and errors, unless `verbose`: their INFO lines (a dozen per worker
    started or stopped) would bury the batch's own lines. Their levels are restored after."""
    import distributed  # noqa: F401  (it sets its loggers' levels when first imported)

    if verbose:
        yield
        return
    changed: list[tuple[logging.Logger, int]] = []
    for name in ["distributed", *list(logging.root.manager.loggerDict)]:
        if name != "distributed" and not name.startswith("distributed."):
            continue
        logger = logging.getLogger(name)
        if (name == "distributed" or logger.level) and logger.getEffectiveLevel() < logging.WARNING:
            changed.append((logger, logger.level))
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in reversed(changed):
            logger.setLevel(level)


def check_source(source: Path) -> Path:
    """`source`, once its first block reads as OSM data: an empty, damaged or foreign file is
    refused before any city is started (a file cut short later in its length fails each city's
    cut, and the batch says so, `run_batch`).

    Raises
    ------
    SourceError
        Naming ``--source``, the file, what is wrong and what to do.
    """
    src = Path(source)
    if not src.is_file() or not src.name.endswith(".osm.pbf"):
        raise SourceError(
            f"--source {str(src)!r} is not an existing .osm.pbf file; pass the province extract, "
            "e.g. henan-latest.osm.pbf from Geofabrik"
        )
    import osmium

    try:
        for _ in osmium.FileProcessor(str(src)):
            return src
    except Exception as exc:  # osmium raises RuntimeError, ValueError … for a damaged file
        raise SourceError(
            f"--source {str(src)!r} cannot be read as an .osm.pbf file "
            f"({' '.join(str(exc).split())[:200] or type(exc).__name__}); download it again "
            "(e.g. henan-latest.osm.pbf from Geofabrik) or pass another --source"
        ) from None
    raise SourceError(
        f"--source {str(src)!r} ({src.stat().st_size} bytes) holds no OSM data; pass the extract "
        "that covers the region's cities, e.g. henan-latest.osm.pbf from Geofabrik"
    )


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
    dashboard: bool = False,
    verbose: bool = False,
    scheduler_timeout_s: float = 10.0,
    cache_dir: str | Path | None = None,
    cache: bool = True,
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
        Worker processes of a local cluster (at most one per core), or the address of an
        existing scheduler.
    overwrite
        Measure cities again even when their complete outputs exist.
    maps
        Also write each district's and city's interactive map, as ``walkcover run`` does.
    retries
        How many times a task that failed unexpectedly is tried again before it is reported (a
        city whose data is refused is reported at once).
    progress
        Called with a line of text as cities start and finish.
    dashboard
        Run the local cluster's Dask dashboard, on 127.0.0.1 (its address is told by `progress`).
    verbose
        Let Dask's own INFO lines through (otherwise only its warnings and errors).
    scheduler_timeout_s
        How long to wait for `scheduler` to answer.
    cache_dir, cache
        Where the cities' cuts are kept (default ``~/.cache/walkcover``, `_paths.cache_dir`):
        every city is cut out of `source` in one streaming pass before the tasks start, and a
        later batch over the same file finds its cuts there and reads no province data. On a
        cluster the workers need the same folder (a shared file system). Without `cache`, the
        cuts go to ``OUT/<region>/.work/cuts`` and are removed once the batch ends.

    Raises
    ------
    SourceError
        `source` is empty, damaged or no .osm.pbf, or no city could be measured from it (every
        city's cut unreadable or without data); ``batch_status.csv`` says why for each city.
    WalkcoverError
        `scheduler` does not answer, `workers` is below 1, or a path would lead outside `out`.
        Nothing is written into `out` then.
    """
    say = progress or (lambda _line: None)
    reg = load_region(region)
    chosen = select_cities(reg, cities)
    src = check_source(Path(source))
    n_workers, capped = (None, "") if scheduler else worker_count(workers)
    root = Path(out)
    existed = root.exists()
    check_writable_folder(root, option="out (--out)")
    base = inside(root, root / reg.id, what="region folder")
    std_ids = _standard_ids(reg, chosen, standard)
    folders = {
        cid: inside(root, base / region_city(reg, cid).id, what="city folder") for cid in chosen
    }
    _check_region_folder(base, reg, overwrite=overwrite)  # before any cluster starts
    names = dict(zip(reg.cities["city_id"], reg.cities["name"]))
    outcomes: dict[str, CityOutcome] = {}
    todo = []
    for cid in chosen:
        if not overwrite and is_complete(folders[cid], source=src, standards=std_ids[cid]):
            outcomes[cid] = CityOutcome(cid, names[cid], STATUS_SKIPPED, "complete already")
        else:
            todo.append(cid)
    if outcomes:
        say(f"{len(outcomes)} cit(y/ies) complete from an earlier run, skipped")
    unreadable: set[str] = set()
    with dask_logs(verbose=verbose):
        client = None
        if todo:
            if capped:
                say(capped)
            try:
                client = connect(
                    workers=n_workers,
                    scheduler=scheduler,
                    timeout_s=scheduler_timeout_s,
                    dashboard=dashboard,
                    verbose=verbose,
                )
            except BaseException:
                if not existed:  # leave no trace of a batch that never started
                    with suppress(OSError):
                        root.rmdir()
                raise
        dashboard_link = _dashboard_link(client, local=scheduler is None, wanted=dashboard)
        try:
            with output_lock(base, command="batch"):
                _claim_region_folder(base, reg, overwrite=overwrite)
                if client is not None:
                    say(
                        f"Dask dashboard: {dashboard_link}"
                        if dashboard_link
                        else "Dask dashboard: off (pass --dashboard to watch the cluster at an "
                        "address of this machine, 127.0.0.1)"
                    )
                    cuts = _cut_all(
                        reg, todo, src, root, base, standard, cache_dir, cache, names, outcomes,
                        unreadable, say,
                    )  # fmt: skip
                    try:
                        _gather(
                            client, reg, [c for c in todo if c in cuts], cuts, src, root, standard,
                            maps, retries, names, outcomes, unreadable, len(chosen), say,
                        )  # fmt: skip
                    finally:
                        if not cache:
                            _remove_tree(base / ".work" / "cuts", root)
                ordered = [outcomes[c] for c in chosen]
                complete = [o.city_id for o in ordered if o.status in (STATUS_DONE, STATUS_SKIPPED)]
                summary, files = _write_region_files(base, reg, complete, ordered)
        finally:
            if client is not None:
                cluster = client.cluster
                client.close()
                if cluster is not None:
                    cluster.close()
    if (
        todo
        and not complete
        and all(outcomes[c].status == STATUS_EMPTY or c in unreadable for c in todo)
    ):
        why = "; ".join(sorted({o.reason for o in ordered if o.reason}))[:300]
        raise SourceError(
            f"--source {str(src)!r}: no city of region {reg.id!r} could be measured from it ({why}); "
            "pass a complete extract that covers the region's cities, e.g. henan-latest.osm.pbf "
            f"from Geofabrik (each city's outcome: {base / 'batch_status.csv'})"
        )
    return BatchResult(reg.id, base, ordered, summary, files, dashboard_link)


def _dashboard_link(client: Any, *, local: bool, wanted: bool) -> str:
    """The dashboard's address: the local cluster's when `wanted`, an existing scheduler's own."""
    if client is None or (local and not wanted):
        return ""
    try:
        return str(client.dashboard_link or "")
    except Exception:  # a scheduler without a dashboard
        return ""


def _cut_all(
    reg: Region,
    todo: list[str],
    src: Path,
    root: Path,
    base: Path,
    standard: str,
    cache_dir: str | Path | None,
    cache: bool,
    names: dict[str, str],
    outcomes: dict[str, CityOutcome],
    unreadable: set[str],
    say: Callable[[str], None],
) -> dict[str, Path]:
    """Every city of `todo` cut in one pass (`cut_cities`); when the source cannot be cut, each
    city is recorded as failed with the reason, and none is returned."""
    from walkcover._paths import cache_dir as default_cache_dir

    if cache:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        check_writable_folder(folder, option="cache_dir (--cache-dir)")
    else:
        folder = inside(root, base / ".work", what="batch work folder")
    try:
        return cut_cities(reg, todo, source=src, standard=standard, cache_dir=folder, progress=say)
    except SourceError as exc:
        for cid in todo:
            outcomes[cid] = CityOutcome(cid, names[cid], STATUS_FAILED, _reason(exc))
            unreadable.add(cid)
        say(f"no city could be cut out of {src.name}: {_reason(exc)}")
        return {}


def _gather(
    client: Any,
    reg: Region,
    todo: list[str],
    cuts: dict[str, Path],
    src: Path,
    root: Path,
    standard: str,
    maps: bool,
    retries: int,
    names: dict[str, str],
    outcomes: dict[str, CityOutcome],
    unreadable: set[str],
    n_chosen: int,
    say: Callable[[str], None],
) -> None:
    """Submit a task per city of `todo` and record each outcome as it comes."""
    from distributed import as_completed

    futures = {
        client.submit(
            run_city,
            str(reg.config_path),
            cid,
            str(src.resolve()),
            str(root.resolve()),
            standard,
            maps,
            str(cuts[cid].resolve()),
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
            if r.get("source_unreadable"):
                unreadable.add(cid)
        except Exception as exc:
            outcomes[cid] = CityOutcome(cid, names[cid], STATUS_FAILED, _reason(exc))
        counts = Counter(o.status for o in outcomes.values())
        o = outcomes[cid]
        say(
            f"[{', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}, "
            f"{n_chosen - len(outcomes)} running or queued; "
            f"{time.perf_counter() - t0:.0f} s] {cid} {o.name}: {o.status}"
            + (f" ({o.reason})" if o.reason else "")
        )


def _reason(exc: BaseException) -> str:
    """One line saying why a city failed."""
    text = " ".join(str(exc).split())[:300]
    return text if isinstance(exc, WalkcoverError) else f"{type(exc).__name__}: {text}"


def _write_region_files(
    base: Path, reg: Region, complete: list[str], ordered: list[CityOutcome]
) -> tuple[gpd.GeoDataFrame, list[Path]]:
    """The region's files as one set (`write_region`); with no complete city, only
    ``batch_status.csv``, which says why each city is missing."""
    from walkcover.presentation.outputs import failure_reason
    from walkcover.presentation.region import write_region

    try:
        return write_region(base, reg, {c: region_city(reg, c) for c in complete}, outcomes=ordered)
    except OSError as exc:
        if isinstance(exc, WalkcoverError):  # (says what became of the set itself)
            raise
        # the cities' results are in place; the region's previous files are kept whole
        raise OutputFolderError(
            f"the region's files in {str(base)!r} could not be written "
            f"({failure_reason(exc, where=base)}); the {len(complete)} complete cit(y/ies) are "
            "kept and the region's previous files stand as they were: run the same batch again "
            "to write them (complete cities are skipped)"
        ) from exc


def _standards(region: Region, city_id: str, standard: str) -> list[Standard]:
    """The standards a city is measured for: `standard` ('all' or ids) of its standards file."""
    from walkcover.config.standards import load_standards

    rules = load_standards(city_standards(region, city_id))
    return rules.select(standard if standard == "all" else standard.split(","))


def _standard_ids(region: Region, cities: list[str], standard: str) -> dict[str, list[str]]:
    """The standard ids each city is measured for (its standards file may differ)."""
    return {cid: [s.id for s in _standards(region, cid, standard)] for cid in cities}


def halo_area(region: Region, city_id: str, area: gpd.GeoDataFrame, standard: str) -> Any:
    """`area` (districts of the city, EPSG:4326) grown by its halo: the study margin of the city's
    standards, and a further HALO_EXTRA_M so that a way crossing the margin with no node inside it
    is in the cut whole, as a read of the whole source gives it (a shapely geometry, EPSG:4326)."""
    from walkcover.assessment import study_margin_m
    from walkcover.config.study_area import working_crs

    city = region_city(region, city_id)
    margin = study_margin_m(city, _standards(region, city_id, standard)) + HALO_EXTRA_M
    halo = gpd.GeoSeries([area.union_all()], crs=4326).to_crs(working_crs(city)).buffer(margin)
    return halo.to_crs(4326).iloc[0]


def _cut_with_halo(
    region: Region,
    city_id: str,
    area: gpd.GeoDataFrame,
    standard: str,
    source: Path,
    dest: Path,
) -> Path:
    """Cut `area` and its halo (`halo_area`) out of `source` into `dest` (pyosmium)."""
    from walkcover.sources.extract import cut_pbf

    return cut_pbf(source, halo_area(region, city_id, area, standard), dest)


def cut_cities(
    region: Region,
    cities: list[str],
    *,
    source: Path,
    standard: str,
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Each city's cut (its districts plus halo) of `source`, all cut in one streaming pass
    (`sources.extract.cut_areas`) into `cache_dir`, or found there from an earlier batch.

    Raises
    ------
    SourceError
        `source` could not be cut.
    """
    from walkcover.sources.extract import cut_areas

    areas = {
        cid: halo_area(region, cid, region_city(region, cid).districts, standard) for cid in cities
    }
    return cut_areas(source, areas, cache_dir=cache_dir, progress=progress)


def _check_region_folder(base: Path, region: Region, *, overwrite: bool) -> None:
    """Refuse a folder holding another region's results (or files not a batch's); writes nothing."""
    record = base / REGION_RECORD
    mine = {"region": region.id, "config": str(region.config_path.resolve())}
    if record.is_file():
        try:
            got = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            got = {}
        if not isinstance(got, dict):
            got = {}
        if got != mine and not overwrite:
            raise ConfigError(
                f"--out folder {str(base)!r} holds the results of region {got.get('region')!r} "
                f"({got.get('config')}), not {region.id!r} ({mine['config']}); choose another --out "
                "or pass --overwrite to replace them"
            )
    elif (
        not overwrite and base.is_dir() and any(not p.name.startswith(".") for p in base.iterdir())
    ):
        raise ConfigError(
            f"--out folder {str(base)!r} holds files that are not a walkcover batch's; choose "
            "another --out or pass --overwrite"
        )


def _claim_region_folder(base: Path, region: Region, *, overwrite: bool) -> None:
    """Refuse a folder holding another region's results; record this region's."""
    _check_region_folder(base, region, overwrite=overwrite)
    mine = {"region": region.id, "config": str(region.config_path.resolve())}
    write_atomic(
        inside(base, base / REGION_RECORD, what="region record"),
        lambda tmp: tmp.write_text(json.dumps(mine, ensure_ascii=False), encoding="utf-8"),
    )


__all__ = [
    "BatchResult",
    "CityOutcome",
    "check_source",
    "connect",
    "cut_cities",
    "dask_logs",
    "halo_area",
    "is_complete",
    "run_batch",
    "run_city",
    "worker_count",
]
