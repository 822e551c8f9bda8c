"""Write a run's files: per-district GeoPackages, atomically, and the city files as one set
(`walkcover.presentation.tables`)."""

from __future__ import annotations

import collections
import errno
import gc
import logging
import multiprocessing
import os
import pickle
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import pandas as pd

from walkcover._atomic import (
    FULL_DISK_BYTES,
    atomic_path,
    free_bytes,
    recover,
    staged_folder,
    write_atomic,
)
from walkcover._errors import OutputExistsError, RunIncompleteError, WalkcoverError
from walkcover._gc import collector_paused
from walkcover._malloc import release_free_memory
from walkcover._paths import check_safe_name, inside
from walkcover.assessment import Assessment
from walkcover.config.crs import frame_to_lonlat
from walkcover.config.study_area import City
from walkcover.measures.indicators import group_summary
from walkcover.presentation import layer_store
from walkcover.presentation.file_set import SetNotInPlaceError
from walkcover.presentation.geopackage import write_layers
from walkcover.presentation.layer_store import kept_streets
from walkcover.presentation.layers import demand_layer, facilities_layer
from walkcover.presentation.record import (
    RECORD_FILE,
    RunRecordError,
    load_record,
    read_city_table,
    read_district_run,
    record_data,
    write_record,
)
from walkcover.presentation.tables import (
    CITY_MANIFEST,
    CityTables,
    check_city_set,
    city_set,
    merged_rows,
    read_earlier_rows,
    recover_city_set,
    reseal_city_set,
    write_city_tables,
    write_csv,
)

__all__ = [
    "RunFiles",
    "atomic_path",
    "check_city_set",
    "check_outputs",
    "district_dir",
    "planned_outputs",
    "recover_city_set",
    "write_atomic",
    "write_csv",
    "write_proposed_sites",
    "write_report_sets",
    "write_run",
]

if TYPE_CHECKING:
    from walkcover.siting import Proposal

log = logging.getLogger(__name__)

# pyogrio silences geopandas' "GeoSeries.notna() previously returned False …" note while it infers
# a layer's geometry type, with warnings.catch_warnings, which is not thread-safe: with two
# districts written at a time, one thread's block ends and takes the other's filter with it, and
# the note escapes (an error under `-W error`). It is about geopandas' own API change, never about
# walkcover's data: ignored for good, as pyogrio means it to be.
warnings.filterwarnings("ignore", r"GeoSeries\.notna", UserWarning)

# Python 3.12 warns at every fork of a process with more than one thread. The run forks its writer
# once its own pools are done; threads it does not own (a notebook's, a test runner's) never run
# in the child, which runs only the writer and exits.
warnings.filterwarnings(
    "ignore", r".*use of fork\(\) may lead to deadlocks in the child", DeprecationWarning
)

#: Districts written at a time by `write_run` (threads: the heavy steps run outside the GIL).
WRITE_THREADS = min(2, os.cpu_count() or 1)

#: Files of a district folder that a new `run` carries over: proposals made by `walkcover site`
#: (they are also copied into the new ``coverage.gpkg``). Anything else of the previous run (its
#: map, its reports) describes the previous figures and is replaced or removed.
KEPT_BY_RUN = ("proposed_sites.csv",)


def district_dir(out: Path, city_id: str, slug: str) -> Path:
    """A district's output folder, ``out/<city>/<slug>``.

    The city id and the slug must be safe single names (they come from the city config, never
    from a file walkcover reads back), and the folder must resolve inside `out` after symbolic
    links: anything else is refused before a byte is written or deleted.

    Raises
    ------
    UnsafePathError
        A name that is not a plain folder name, or a folder that leads outside `out`.
    """
    check_safe_name(city_id, what="city id")
    check_safe_name(slug, what="district folder name")
    return inside(out, Path(out) / city_id / slug, what="district folder")


def planned_outputs(out: Path, city_id: str, slugs: list[str]) -> list[Path]:
    """Every file a run over `slugs` writes."""
    files = [district_dir(out, city_id, s) / "coverage.gpkg" for s in slugs]
    return [
        *files,
        Path(out) / city_id / "summary.csv",
        Path(out) / city_id / "district_indicators.csv",
    ]


def check_outputs(paths: list[Path], *, overwrite: bool) -> None:
    """Refuse to start when outputs exist and `overwrite` is off, before any work is done."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        shown = ", ".join(str(p) for p in existing[:3]) + (" …" if len(existing) > 3 else "")
        raise OutputExistsError(
            f"--out already holds results ({shown}); pass --overwrite to replace them or choose "
            "another --out folder"
        )


#: The columns of a ``proposed_sites`` layer that are read back (`walkcover.siting.proposed_sites`).
PROPOSED_NUMBERS = ("residents_newly_covered", "cumulative_coverage_pct")


def read_proposed(
    out: Path, city_id: str, slug: str, *, damaged: Literal["raise", "drop"] = "raise"
) -> gpd.GeoDataFrame | None:
    """The ``proposed_sites`` layer an earlier ``walkcover site`` wrote for a district, if any.

    A ``coverage.gpkg`` that is not a GeoPackage walkcover wrote (a link, a folder, not SQLite,
    damaged tables, or a ``proposed_sites`` layer with a rank that is not a whole number, text
    where numbers belong, geometries that are not points) is, with `damaged` ``"raise"``, an error
    naming it and the fix; with ``"drop"`` (a run with ``--overwrite``, which replaces the file)
    one warning naming it, and its proposals are dropped.

    Raises
    ------
    RunRecordError
        The file is damaged and `damaged` is ``"raise"``.
    """
    gpkg = district_dir(out, city_id, slug) / "coverage.gpkg"
    if not gpkg.exists() and not gpkg.is_symlink():
        return None
    try:
        if gpkg.is_symlink() or not gpkg.is_file():
            raise ValueError("it is a link or a folder, not a file walkcover wrote")
        if not _has_table(gpkg, "proposed_sites"):
            return None
        return _checked_proposed(gpd.read_file(gpkg, layer="proposed_sites"))
    except Exception as exc:  # SQLite, GDAL and pyogrio raise several kinds for a damaged file
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        if damaged == "raise":
            raise RunRecordError(
                f"{gpkg} cannot be read as a GeoPackage walkcover wrote ({reason}): run "
                "`walkcover run --overwrite` for this district again"
            ) from None
        warnings.warn(
            f"{gpkg} cannot be read as a GeoPackage walkcover wrote ({reason}); it is replaced, "
            "and the sites proposed in it are dropped (run `walkcover site` again for them)",
            UserWarning,
            stacklevel=1,
        )
        return None


def _checked_proposed(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """`sites` as `walkcover.siting.proposed_sites` makes them (ranks whole numbers, figures
    numbers, standards text, one point each).

    Raises
    ------
    ValueError
        A column is missing or holds values of another kind.
    """
    lacking = [c for c in ("standard", "rank", *PROPOSED_NUMBERS) if c not in sites.columns]
    if lacking:
        raise ValueError(f"its proposed_sites layer lacks the column {lacking[0]}")
    if not all(isinstance(v, str) for v in sites["standard"].to_numpy(dtype=object)):
        raise ValueError("its proposed_sites layer holds a standard that is not text")
    rank = pd.to_numeric(sites["rank"], errors="coerce")
    if rank.isna().any() or not ((rank % 1 == 0) & (rank >= 1) & (rank < 2**31)).all():
        raise ValueError("its proposed_sites layer holds a rank that is not a whole number")
    sites = sites.copy()
    sites["rank"] = rank.astype("int64")
    for col in PROPOSED_NUMBERS:
        values = pd.to_numeric(sites[col], errors="coerce")
        if (values.isna() & sites[col].notna()).any():
            raise ValueError(f"its proposed_sites layer holds text in {col}, not numbers")
        sites[col] = values.astype("float64")
    geoms = sites.geometry
    if sites.crs is None or geoms.isna().any() or geoms.is_empty.any():
        raise ValueError("its proposed_sites layer holds a site with no location")
    if not (geoms.geom_type == "Point").all():
        raise ValueError("its proposed_sites layer holds a site that is not a point")
    return sites


def _has_table(gpkg: Path, name: str) -> bool:
    """Whether GeoPackage `gpkg` lists a layer `name` (its ``gpkg_contents`` table, read-only:
    a fifth of the time GDAL takes to open it and list its layers)."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"{gpkg.resolve().as_uri()}?mode=ro", uri=True)) as con:
        row = con.execute("SELECT 1 FROM gpkg_contents WHERE table_name = ?", (name,)).fetchone()
    return row is not None


def write_district_files(
    assessment: Assessment,
    district_id: str,
    geom,
    stage: Path,
    *,
    proposal: Proposal | None,
    tiles: str | None = None,
) -> None:
    """Write one district's ``coverage.gpkg`` and ``run.json`` (the record reports are made from)
    into `stage`. With a `proposal`, its sites are a layer and homes get
    ``<standard>_after_dist_m``, ``_after_status`` and ``_after_band`` for every standard with sites,
    as `walkcover.siting.proposal` measured them."""
    after = proposal.after if proposal is not None else {}
    demand = demand_layer(assessment, district_id)
    for sid, walks in after.items():
        demand[f"{sid}_after_dist_m"] = walks["dist_m"].to_numpy()
        demand[f"{sid}_after_status"] = walks["status"].to_numpy()
        demand[f"{sid}_after_band"] = walks["band"].to_numpy()
    layers = {
        "demand": demand,
        "facilities": facilities_layer(assessment, geom),
        "gaps": assessment.gaps(district_id),
        "service_areas": assessment.service_areas(district_id),
        "streets": kept_streets(assessment, geom),  # from the cache, where the run has one
    }
    if proposal is not None:
        layers["proposed_sites"] = proposal.sites
    row = assessment.districts.set_index("district_id").loc[district_id]
    write_layers(
        stage / "coverage.gpkg",
        layers,
        project=stage / "coverage.qgz",
        title=f"{assessment.city.config.name} · {row['name']} ({district_id})",
        labels={
            s.id: f"{s.name} · {s.name_zh}" if s.name_zh else s.name for s in assessment.standards
        },
    )
    write_record(stage / RECORD_FILE, record_data(assessment, district_id, tiles=tiles))


def write_district_map(
    assessment: Assessment,
    district_id: str,
    stage: Path,
    *,
    proposal: Proposal | None,
    tiles: str | None = None,
) -> Path:
    """The district's ``map.html`` into `stage`, homes before and after any proposed sites."""
    from walkcover.presentation.maps import district_map
    from walkcover.presentation.web_map import save_map

    m = district_map(
        assessment,
        district_id,
        proposed=None if proposal is None else proposal.sites,
        after=None if proposal is None else proposal.after,
        tiles=tiles,
    )
    return save_map(m, stage / "map.html")


@dataclass
class RunFiles:
    """What `write_run` wrote, and what it could not write (district, step, reason)."""

    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str, BaseException]] = field(default_factory=list)


def write_run(
    assessment: Assessment,
    out: Path,
    *,
    overwrite: bool,
    bom: bool = True,
    maps: bool = True,
    tiles: str | None = None,
    proposals: Mapping[str, Proposal] | None = None,
) -> RunFiles:
    """Write a run's outputs: per district one complete set, then the city files.

    `proposals` (by district id: `walkcover.siting.proposal`, e.g. the sites an earlier
    ``walkcover site`` proposed, read with `read_proposed`) are written with their districts.

    Each district's folder (``coverage.gpkg``, ``map.html``, and an earlier ``site`` proposal) is
    built in a staging folder and swapped in whole (`walkcover._atomic.staged_folder`), so after a
    failure, a full disk or a kill it holds the previous complete set or the new one, never a mix.
    A district that fails keeps its previous set and its previous rows of ``summary.csv``; the other
    districts are still written. The city files (``summary.csv``, ``district_indicators.csv``,
    ``group_summary.csv``, their Parquet copies, ``summary.xlsx``, ``map.html``) are written
    afterwards as one set (`walkcover.presentation.tables.city_set`): the folder holds the
    previous complete set or the new one, and ``city_files.json`` lists it.

    Districts are written `WRITE_THREADS` at a time, largest first: on Linux, from
    `WRITE_PROCESS_EDGES` street edges, by this process and one writer forked from it (the files
    are byte for byte those threads write); else by threads.

    Raises
    ------
    OutputExistsError
        Outputs exist and `overwrite` is off (checked before anything is written).
    RunIncompleteError
        Some step failed; its ``files`` holds what was written, and the message names each district,
        step and reason.
    """
    # The collector is paused while tables and GeoPackages are written (`walkcover._gc`), but not
    # with maps: folium's element trees are reference cycles, each holding a map's data, that
    # only the collector frees.
    with nullcontext() if maps else collector_paused():
        return _write_run(
            assessment,
            out,
            overwrite=overwrite,
            bom=bom,
            maps=maps,
            tiles=tiles,
            proposals=proposals or {},
        )


@dataclass(frozen=True)
class _DistrictJobs:
    """The districts one run writes (largest first), and what each needs."""

    assessment: Assessment
    out: Path
    rows: list[pd.Series]
    geoms: list
    proposals: Mapping[str, Proposal]
    maps: bool
    tiles: str | None


#: A district's outcome: slug, the step reached, the failure (None when written), the names the new
#: folder holds and those the old one held.
_Outcome = tuple[str, str, "BaseException | None", set[str], set[str]]


def _write_district(jobs: _DistrictJobs, k: int) -> _Outcome:
    """Write district `k` of `jobs` into a staging folder swapped in whole; never raises."""
    drow, geom, assessment = jobs.rows[k], jobs.geoms[k], jobs.assessment
    slug = drow["slug"]
    folder = district_dir(jobs.out, assessment.city.id, slug)
    previous = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    step = "coverage.gpkg"
    proposal = jobs.proposals.get(drow["district_id"])
    try:
        with staged_folder(folder, keep=KEPT_BY_RUN) as stage:
            write_district_files(
                assessment, drow["district_id"], geom, stage, proposal=proposal, tiles=jobs.tiles
            )
            # a district's layers are GEOS's and Python's small blocks by the hundred
            # thousand (a large district's streets: 300,000 multi-lines), freed but held
            # by the heap: given back before the next file, not piled up district by district
            # (on L, 150 MB after each large district)
            release_free_memory()
            if jobs.maps:
                step = "map.html"
                write_district_map(
                    assessment, drow["district_id"], stage, proposal=proposal, tiles=jobs.tiles
                )
                release_free_memory()
            new = {p.name for p in stage.iterdir()}
    except Exception as exc:
        log.debug("district %s: %s failed", slug, step, exc_info=True)
        return slug, step, exc, set(), previous
    return slug, step, None, new, previous


#: From this many street edges, the run's second writer is a child process, not a thread: building
#: a district's layers and map holds the interpreter lock most of the time (Arrow batches, WKB,
#: folium's HTML), so two threads wrote L's districts in 18-19 s where one took 22 s. The child is
#: forked, sharing the measured run copy-on-write, and writes beside the run's own thread. One
#: child, not two: each writer process copies the pages of the run it touches (about 300 MB on L),
#: and the run itself is one writer for free. A small run would spend more on the fork (a page
#: table) than it saves.
WRITE_PROCESS_EDGES = 100_000


def _write_districts(
    jobs: _DistrictJobs, *, also: Callable[[], None] | None = None
) -> list[_Outcome]:
    """Each district of `jobs` written (`_write_district`), `WRITE_THREADS` at a time: by this
    process and a forked one where the run is large and the system can fork, else by threads;
    in `jobs`' order. `also` is called once by this process: with a forked writer, as its first
    task, while the child takes the largest district (both then take the largest left, and
    finish together); else after the districts."""
    n = len(jobs.rows)
    if (
        WRITE_THREADS > 1
        and n > 1
        and len(jobs.assessment.network.edges) >= WRITE_PROCESS_EDGES
        and "fork" in multiprocessing.get_all_start_methods()
        and sys.platform == "linux"  # macOS's system libraries are not safe to fork
        and _room_to_fork()
    ):
        return _write_with_process(jobs, also=also)
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        outcomes = list(pool.map(lambda k: _write_district(jobs, k), range(n)))
    if also is not None:
        also()
    return outcomes


#: The share of the run's resident memory the forked writer may come to hold of its own (the pages
#: it copies and its own layers: 430-500 MB of L's 2.4 GB, measured), which must be available
#: before it is forked; else the districts are written by threads, in the run's own memory.
FORK_MEMORY_SHARE = 0.4


def _room_to_fork() -> bool:
    """Whether the memory a forked writer may need (`FORK_MEMORY_SHARE` of this process's resident
    memory) is available: to the system (``MemAvailable``) and within this process's control
    group's limit, if it has one (a container's ``/proc/meminfo`` shows the host's memory). False
    where it cannot be read."""
    try:
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
        resident_kib = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
        meminfo = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
        room_kib = next(int(x.split()[1]) for x in meminfo if x.startswith("MemAvailable:"))
    except (OSError, ValueError, StopIteration, IndexError):
        return False
    limited = _cgroup_room_kib(Path("/sys/fs/cgroup"))
    if limited is not None:
        room_kib = min(room_kib, limited)
    return room_kib >= FORK_MEMORY_SHARE * resident_kib


def _cgroup_room_kib(root: Path) -> int | None:
    """KiB left under the memory limit of the control group mounted at `root` (cgroup v2's
    ``memory.max`` less ``memory.current``, or v1's ``memory/memory.limit_in_bytes`` less
    ``memory.usage_in_bytes``); None without a limit or where none can be read."""
    for limit, usage in (
        (root / "memory.max", root / "memory.current"),
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes"),
    ):
        try:
            text = limit.read_text(encoding="ascii").strip()
            if text == "max":
                return None
            limit_b, usage_b = int(text), int(usage.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        if limit_b >= 1 << 60:  # v1's "no limit" (a page-rounded 2⁶³ − 1)
            return None
        return max(0, limit_b - usage_b) // 1024
    return None


#: What the writer process inherits from the run that forks it (never pickled: the assessment is
#: gigabytes, shared by the fork until a page is written).
_FORKED: _DistrictJobs | None = None


def _forked_district(k: int) -> _Outcome:
    """`_write_district` in the writer process, its failure made fit to send back."""
    assert _FORKED is not None, "a writer process started without the run"
    slug, step, exc, new, previous = _write_district(_FORKED, k)
    return slug, step, None if exc is None else _sendable(exc), new, previous


def _started() -> bool:
    """A task that makes sure the writer process is running."""
    return True


def _stopped(jobs: _DistrictJobs, k: int, why: str) -> _Outcome:
    """The outcome of district `k` when the process writing it stopped before it finished."""
    return (
        jobs.rows[k]["slug"],
        "coverage.gpkg",
        WalkcoverError(
            f"the process writing this district stopped before it finished ({why}); its "
            "previous files are kept"
        ),
        set(),
        set(),
    )


def _sendable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling (to cross back to the run), else its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return WalkcoverError(f"{type(exc).__name__}: {exc}")
    return exc


def _write_with_process(
    jobs: _DistrictJobs, *, also: Callable[[], None] | None = None
) -> list[_Outcome]:
    """`_write_districts` by this process and a forked one, each taking the largest district
    left as it finishes one (on L the districts are written in 6.9 s, where the child taking
    the largest and this process the smallest took 7.7 s: with the streets layers kept in the
    cache, two large districts at once cost 43 MiB more at the peak, not 90). If the child dies
    (killed, out of memory), the district it was writing fails, naming why, and this process
    writes the rest."""
    global _FORKED
    from walkcover.presentation.layers import warm_edge_tables

    n = len(jobs.rows)
    outcomes: list[_Outcome | None] = [None] * n
    died: list[int] = []
    left = collections.deque(range(n))  # largest first
    lock = threading.Lock()

    def take() -> int | None:
        with lock:
            return left.popleft() if left else None

    # made once before the fork, shared by both writers (not made again in each); the edges'
    # tables only where some district's streets are not kept (0.45 s on L)
    layer_store.warm(jobs.assessment.network)
    if not all(layer_store.streets_kept(jobs.assessment, g) for g in jobs.geoms):
        warm_edge_tables(jobs.assessment.network)
    _FORKED = jobs
    # the run's objects frozen out of the collector's reach while both write: a full collection
    # in either process writes to every tracked object's header, copying each page of them
    gc.freeze()
    try:
        with ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("fork")
        ) as pool:
            # forked now, while this process runs no other thread of its own
            try:
                pool.submit(_started).result()
            except (OSError, BrokenProcessPool) as exc:  # no fork to be had (out of memory, …)
                log.warning("writing the districts on threads: no writer process (%s)", exc)
                forked = False
            else:
                forked = True
            if not forked:
                with ThreadPoolExecutor(max_workers=WRITE_THREADS) as threads:
                    by_threads = list(threads.map(lambda k: _write_district(jobs, k), range(n)))
                if also is not None:
                    also()
                return by_threads

            def by_child() -> None:
                while (k := take()) is not None:
                    try:
                        outcomes[k] = pool.submit(_forked_district, k).result()
                    except BrokenProcessPool as exc:
                        why = f"killed, or out of memory: {exc}"
                    except BaseException as exc:  # stopped there (SIGTERM, Ctrl-C)
                        why = f"stopped: {type(exc).__name__}"
                    else:
                        continue
                    outcomes[k] = _stopped(jobs, k, why)
                    died.append(k)
                    return  # this process writes the others

            child = threading.Thread(target=by_child, name="walkcover-writer")
            child.start()
            try:
                if also is not None:
                    also()  # while the child writes the largest district
                while (k := take()) is not None:
                    outcomes[k] = _write_district(jobs, k)
            finally:
                child.join()
    finally:
        gc.unfreeze()
        _FORKED = None
    if died:  # its staging folder (or a folder it was swapping) cleared, now no one writes
        city_dir = district_dir(
            jobs.out, jobs.assessment.city.id, jobs.rows[died[0]]["slug"]
        ).parent
        for done in recover(city_dir):
            log.warning("%s: %s", city_dir, done)
    # (every district is taken by one writer or the other; never a hole in the run's list)
    return [
        o if o is not None else _stopped(jobs, k, "never started") for k, o in enumerate(outcomes)
    ]


def _write_run(
    assessment: Assessment,
    out: Path,
    *,
    overwrite: bool,
    bom: bool,
    maps: bool,
    tiles: str | None,
    proposals: Mapping[str, Proposal],
) -> RunFiles:
    city_id = assessment.city.id
    slugs = list(assessment.districts["slug"])
    check_outputs(planned_outputs(out, city_id, slugs), overwrite=overwrite)
    city_dir = Path(out) / city_id
    recover_city_files(out, city_dir)
    files = RunFiles()
    done: list[str] = []

    release_free_memory()  # what measuring freed, before the writers' own allocations
    rows = [drow for _, drow in assessment.districts.iterrows()]
    geoms = [assessment.district_geometry(d) for d in assessment.districts["district_id"]]
    # the districts with most homes first: a large district started last would run on alone
    homes = assessment.demand["district_id"].value_counts()
    order = sorted(range(len(rows)), key=lambda i: -int(homes.get(rows[i]["district_id"], 0)))
    jobs = _DistrictJobs(
        assessment,
        Path(out),
        [rows[i] for i in order],
        [geoms[i] for i in order],
        proposals,
        maps,
        tiles,
    )
    # the city map is made by this process while the forked writer takes the largest district
    # (it depends on no district's files); rendered when this process had no district left, it
    # ran on alone for 0.3-0.4 s on L
    city_page: list[str] = []
    city_failed: list[BaseException] = []

    def render_city_map() -> None:
        if not maps:
            return
        from walkcover.presentation.city_map import city_map
        from walkcover.presentation.web_map import render_html

        try:
            city_page.append(render_html(city_map(assessment, tiles=tiles)))
        except Exception as exc:  # said with the city files' other failures
            city_failed.append(exc)

    done_by = dict(zip(order, _write_districts(jobs, also=render_city_map)))
    if assessment.network.store_dir is not None:
        # the least recently used streets layers, past the store's size
        layer_store.prune(Path(assessment.network.store_dir))
    results = [done_by[i] for i in range(len(rows))]
    for slug, step, exc, new, previous in results:
        if exc is not None:
            files.failures.append((slug, step, exc))
            continue
        folder = district_dir(out, city_id, slug)
        done.append(slug)
        files.written += [
            folder / n
            for n in ("coverage.gpkg", "coverage.qgz", RECORD_FILE, "map.html")
            if n in new
        ]
        files.removed += [folder / n for n in sorted(previous - new)]
    if done:
        step = "summary.csv"
        try:
            tables = _city_tables(assessment, city_dir, done)
            with city_set(city_dir) as built:
                write_city_tables(built.folder, tables, bom=bom)
                if maps:
                    from walkcover.presentation.web_map import save_page

                    step = "map.html"
                    if city_failed:
                        raise city_failed[0]
                    save_page(city_page[0], built.folder / "map.html")
                step = CITY_MANIFEST  # the set sealed and put in place
            files.written += built.written
            files.removed += built.removed
        except Exception as exc:
            log.debug("city files: %s failed", step, exc_info=True)
            files.failures.append(("(city)", step, exc))
    if files.failures:
        raise RunIncompleteError(files, _failure_text(out, city_id, files.failures))
    return files


def write_report_sets(
    city: City,
    districts: gpd.GeoDataFrame,
    out: Path,
    *,
    city_pages: bool = True,
    progress: Callable[[str], None] | None = None,
) -> RunFiles:
    """Reports from what ``walkcover run`` (and ``site``) wrote, measuring nothing again: per
    district ``report.html``, ``report.pdf`` and ``maps/`` as one set (staged and swapped in, the
    run's files carried over untouched), then, with `city_pages`, the city ``index.html`` and
    ``coverage_by_district.png`` (they compare every district: leave them out when `districts`
    holds only some).

    Every district's outputs are read before anything is written, so a district never run is
    refused with nothing changed.

    Raises
    ------
    RunRecordError
        A district (or the city's ``summary.csv``) has no complete run outputs in `out`.
    RunIncompleteError
        Some district or city page failed; the others are written.
    """
    from walkcover.presentation.report import REPORT_FILES, write_city_index, write_district_report

    city_dir = Path(out) / city.id
    recover_city_files(out, city_dir)
    summary = read_city_table(city_dir, "summary.csv")
    indicators = read_city_table(city_dir, "district_indicators.csv")
    check_city_set(city_dir)  # the tables read are of one complete set
    runs, missing = [], []
    for _, drow in districts.iterrows():
        # the folder and every link to it come from the city config: a record's own slug is
        # never a path (a tampered run.json must not make `report` write anywhere else)
        folder = district_dir(out, city.id, drow["slug"])
        try:
            runs.append(
                read_district_run(
                    folder,
                    district_id=str(drow["district_id"]),
                    slug=str(drow["slug"]),
                    boundary=gpd.GeoSeries([drow.geometry], crs=districts.crs),
                    summary=summary,
                    indicators=indicators,
                )
            )
        except RunRecordError as exc:
            missing.append((drow, exc))
    if missing:
        names = ", ".join(str(d["name"]) for d, _ in missing)
        raise RunRecordError(
            f"no complete `walkcover run` outputs in {city_dir} for {names} ({missing[0][1]}); "
            f"run `walkcover run --city {city.id} --district ... --out {out}` first, with the "
            "same --boundaries if the run had them"
        )
    files = RunFiles()
    step = progress or (lambda _line: None)
    names = districts.set_index("slug")["name"]
    for i, run in enumerate(runs, start=1):
        step(f"report: {names.get(run.slug, run.slug)} ({run.slug}) {i}/{len(runs)}")
        folder = district_dir(out, city.id, run.slug)
        keep = [p.name for p in folder.iterdir() if p.name not in REPORT_FILES]
        try:
            with staged_folder(folder, keep=keep) as stage:
                write_district_report(run, stage)
                new = sorted(p.name for p in stage.iterdir() if p.name in REPORT_FILES)
        except Exception as exc:
            log.debug("district %s: report failed", run.slug, exc_info=True)
            files.failures.append((run.slug, "report", exc))
            continue
        files.written += [folder / n for n in new]
    if city_pages and runs and files.failures:
        # its links would lead to reports that are not there: left as it was
        files.failures.append(
            (
                "(city)",
                "index.html",
                WalkcoverError("not made again while a district's report fails"),
            )
        )
    elif city_pages and runs:
        step("report: city page index.html")
        try:
            pages = write_city_index(city_dir, summary, runs)
            reseal_city_set(city_dir, [p.name for p in pages])  # a split city's index.html
            files.written += pages
        except Exception as exc:
            log.debug("city index failed", exc_info=True)
            files.failures.append(("(city)", "index.html", exc))
    if files.failures:
        raise RunIncompleteError(files, _failure_text(out, city.id, files.failures))
    return files


def recover_city_files(out: Path, city_dir: Path) -> None:
    """Repair a set of city files an interrupted run left half in place (completed if it was
    sealed, else removed: `walkcover.presentation.tables.recover_city_set`), saying what was done.

    Raises
    ------
    UnsafePathError
        `city_dir` leads outside `out` (a link planted in its place): nothing is repaired there.
    """
    city_dir = inside(out, city_dir, what="city folder")
    for done in recover_city_set(city_dir):
        log.warning("%s: %s", city_dir, done)


def _city_tables(assessment: Assessment, city_dir: Path, done: list[str]) -> CityTables:
    """The city tables of a run in memory: this run's rows of the `done` districts after the rows
    of other districts from the files of an earlier run, and the groups' figures from them."""
    tables = {}
    for name, table in (
        ("summary.csv", assessment.summary),
        ("district_indicators.csv", assessment.district_rows),
    ):
        mine = table[table["district"].isin(done)]
        tables[name] = merged_rows(mine, read_earlier_rows(city_dir / name, like=mine), done)
    groups = assessment.city.config.groups
    summary = tables["summary.csv"]
    return CityTables(
        summary=summary,
        indicators=tables["district_indicators.csv"],
        groups=group_summary(summary, groups) if groups else None,
    )


def failure_reason(exc: BaseException, *, where: Path | None = None) -> str:
    """One line saying why writing (into folder `where`) failed, naming a full disk as such."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    free = free_bytes(where) if where is not None else None
    full = (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or any(
        s in text.lower() for s in ("no space left", "disk is full", "disk full")
    )
    if full and (free is None or free >= FULL_DISK_BYTES):
        # not this folder's disk: the temporary folder's (fonts of a PDF, a library's own files)?
        import tempfile

        tmp = Path(tempfile.gettempdir())
        tmp_free = free_bytes(tmp)
        if tmp_free is not None and tmp_free < FULL_DISK_BYTES:
            return (
                f"the temporary folder {str(tmp)!r} is full ({text[:200]}, {tmp_free / 1024:.0f} "
                "kB left); free some space there, or point TMPDIR at a folder with room"
            )
    if full or (free is not None and free < FULL_DISK_BYTES):
        left = "" if free is None else f", {free / 1024:.0f} kB left"
        return f"the disk is full ({text[:200]}{left}); free some space and run again"
    if isinstance(exc, PermissionError):
        return f"permission denied ({text}); choose an --out folder you can write to"
    if isinstance(exc, WalkcoverError):
        return text
    return f"{type(exc).__name__}: {text} (run with -v for the traceback)"


def _failure_text(out: Path, city_id: str, failures: list[tuple[str, str, BaseException]]) -> str:
    parts = []
    for slug, step, exc in failures:
        where = "city files" if slug == "(city)" else f"district {slug}"
        folder = Path(out) / city_id if slug == "(city)" else district_dir(out, city_id, slug)
        if isinstance(exc, SetNotInPlaceError):  # (it says what became of the new set)
            parts.append(f"{where}: {exc}")
            continue
        kept = (
            "its previous results are kept"
            if slug == "(city)"
            else f"its previous results in {district_dir(out, city_id, slug)} are kept"
        )
        parts.append(f"{where}: writing {step} failed: {failure_reason(exc, where=folder)}; {kept}")
    return "; ".join(parts)


def recorded_standards(out: Path, city_id: str, slugs: list[str]) -> list[str]:
    """The standards an earlier ``run`` measured in these districts (from their ``run.json``).

    Raises
    ------
    RunRecordError
        A district's ``run.json`` is not a run record (not a JSON object, a key missing, damaged);
        the message names the file and the fix (``walkcover run --overwrite``).
    """
    ids: list[str] = []
    for slug in slugs:
        rec = district_dir(out, city_id, slug) / RECORD_FILE
        if rec.exists() or rec.is_symlink():
            standards = load_record(rec).standards
            ids += [s["id"] for s in standards if s["id"] not in ids]
    return ids


def merged_proposed_sites(
    assessment: Assessment,
    district: pd.Series,
    sites: gpd.GeoDataFrame,
    out: Path,
    *,
    overwrite: bool,
) -> gpd.GeoDataFrame:
    """The district's proposed sites once `sites` (one standard's) join those an earlier
    ``walkcover site`` wrote for other standards; that standard's earlier sites are replaced only
    with `overwrite`.

    Raises
    ------
    WalkcoverError
        The district's earlier run measured a standard `assessment` did not (its files would lose
        it).
    OutputExistsError
        Sites of that standard are there and `overwrite` is off.
    RunRecordError
        The district's ``coverage.gpkg`` or ``run.json`` is damaged.
    """
    city_id, slug = assessment.city.id, district["slug"]
    folder = district_dir(out, city_id, slug)
    standard = str(sites["standard"].iloc[0]) if len(sites) else ""
    measured = {s.id for s in assessment.standards}
    lost = [s for s in recorded_standards(out, city_id, [slug]) if s not in measured]
    if lost:
        raise WalkcoverError(
            f"{folder} holds a run of {', '.join(lost)} too, which this assessment did not measure; "
            "assess every standard of that run (standard='all') so its files stay whole"
        )
    old = read_proposed(out, city_id, slug)
    if old is not None and len(old):
        if (old["standard"] == standard).any() and not overwrite:
            raise OutputExistsError(
                f"{folder / 'coverage.gpkg'} already holds proposed sites for {standard}; pass "
                "--overwrite (overwrite=True in Python) to replace them"
            )
        sites = pd.concat(
            [old[old["standard"] != standard].to_crs(sites.crs), sites], ignore_index=True
        )
    return gpd.GeoDataFrame(sites, geometry="geometry", crs=sites.crs)


def write_proposed_sites(
    assessment: Assessment,
    district: pd.Series,
    proposal: Proposal,
    out: Path,
    *,
    tiles: str | None = None,
) -> list[Path]:
    """Write a district's outputs again with its `proposal` (`merged_proposed_sites`, measured by
    `walkcover.siting.proposal`).

    The district's set is written again as one (staged and swapped in): ``coverage.gpkg`` with the
    ``proposed_sites`` layer and each home's walk after them, ``run.json``, ``proposed_sites.csv``
    and, unless the run was made without maps, ``map.html`` with the sites and the homes before and
    after. `assessment` must hold every standard the district's earlier ``run`` measured, so that
    nothing of it is lost.
    """
    city_id, slug, did = assessment.city.id, district["slug"], district["district_id"]
    folder = district_dir(out, city_id, slug)
    gpkg, csv = folder / "coverage.gpkg", folder / "proposed_sites.csv"
    proposed = proposal.sites
    table = pd.DataFrame(proposed.drop(columns="geometry"))
    pts = frame_to_lonlat(proposed.geometry)
    table["lon"], table["lat"] = pts.x.round(7), pts.y.round(7)
    maps = not folder.is_dir() or (folder / "map.html").exists()  # as the run chose
    if tiles is None and ((folder / RECORD_FILE).exists() or (folder / RECORD_FILE).is_symlink()):
        tiles = load_record(folder / RECORD_FILE).tiles  # RunRecordError names file and fix
    mine = {gpkg.name, "coverage.qgz", csv.name, RECORD_FILE, "map.html"}
    keep = [p.name for p in folder.iterdir() if p.name not in mine] if folder.is_dir() else []
    geom = assessment.district_geometry(did)
    with staged_folder(folder, keep=keep) as stage:
        write_district_files(assessment, did, geom, stage, proposal=proposal, tiles=tiles)
        write_csv(stage / csv.name, table)
        if maps:
            write_district_map(assessment, did, stage, proposal=proposal, tiles=tiles)
    return [
        gpkg,
        folder / "coverage.qgz",
        folder / RECORD_FILE,
        csv,
        *([folder / "map.html"] if maps else []),
    ]
