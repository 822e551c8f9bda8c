"""Cut areas (a province's cities, each with its halo) out of a large ``.osm.pbf``.

What a cut keeps is osmium's *smart* strategy (``osmium extract --strategy smart -S types=any``):
every node inside the area; every way with a node inside, with all its nodes; every relation with
a member node inside or a member way kept, and its parent relations; and those relations complete
(all their member nodes, and their member ways with all their nodes), so an area's parks and
buildings keep their shapes and a river or a site its every way: reading a cut gives exactly the
layers reading the whole source gives for the area (`walkcover.sources.pbf_osmium` builds a
relation's geometry of all its member ways, of any relation type).

`cut_areas` cuts many areas from one source in one streaming pass of osmium-tool (``osmium
extract --config``; Debian package ``osmium-tool``) and keeps each cut in the cache, keyed by the
source's content and the area: a second batch over the same file reads no province data at all.
Without the ``osmium`` program it warns once and cuts each area with `cut_pbf` (pyosmium: one read
of the source per area). Every cut is written under a temporary name and renamed into place.

Memory: libosmium keeps each area's object ids as bitmaps sized by the highest node id in the
source (about ``max_node_id / 8`` bytes per area: 1.6 GB for real OSM ids up to 1.3·10¹⁰, a few MB
for compact synthetic ids), so the areas are cut in as few passes as fit the memory available
(`areas_per_pass`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from walkcover._errors import OutputFolderError, SourceError
from walkcover._paths import inside

log = logging.getLogger(__name__)

#: Bump when what a cut holds changes, so old cuts in the cache are never reused.
#: 2: every relation complete (``types=any``), not only multipolygons.
CUT_SCHEMA = 2
#: The cache folder (under the cache root) holding the cuts.
CUTS_FOLDER = "cuts"
#: The osmium-tool program `cut_areas` runs.
OSMIUM = "osmium"
#: Bytes of libosmium id bitmaps per area per node id of the source (one bitmap of the id range;
#: measured: 0.64 GB per area on the Helsinki extract, whose node ids reach 6.4·10⁹).
BYTES_PER_AREA_PER_NODE_ID = 1 / 8
#: Bytes an ``osmium extract`` run needs beside the areas' bitmaps (measured: 0.9 GB).
BASE_BYTES = 1 << 30
#: No OSM node id is above this today (2025: about 1.3·10¹⁰); the highest id of a source is
#: looked up (``osmium fileinfo``) only when its areas might not fit in one pass with this bound.
NODE_ID_BOUND = 1 << 34
#: Seconds between two progress lines while osmium runs.
PROGRESS_EVERY_S = 5.0
#: `walkcover run` reads a source through a cut of its study area (`study_cut_ratio`) when the
#: box its header declares is at least this many times the area's box ...
CUT_BOX_RATIO = 4.0
#: ... and the file is at least this large: a smaller file is read whole in seconds (the M city's
#: 17 MB: 5 s of CPU), about what starting osmium and cutting it would cost.
CUT_MIN_BYTES = 32 << 20

_fallback_warned = False


def cut_pbf(
    source: Path, polygon_wgs84: shapely.Geometry, dest: Path, *, batch: int = 200_000
) -> Path:
    """Write the part of `source` inside `polygon_wgs84` to `dest` (atomically), with pyosmium.

    The same objects as ``osmium extract --strategy smart`` (module docstring); five reads of
    `source`, about 6.5 µs per source node. `cut_areas` uses it when osmium-tool is missing.

    Parameters
    ----------
    source
        The ``.osm.pbf`` file to cut.
    polygon_wgs84
        The area (EPSG:4326), a Polygon or MultiPolygon.
    dest
        Where the cut goes.
    batch
        Nodes tested against the polygon at a time.

    Raises
    ------
    SourceError
        `source` is missing or cannot be read as an ``.osm.pbf`` file.
    """
    import osmium

    from walkcover._atomic import atomic_path

    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise SourceError(f"{source} does not exist")
    area = shapely.from_wkb(shapely.to_wkb(polygon_wgs84))  # prepared on a copy
    shapely.prepare(area)
    inner = osmium.IdTracker()  # nodes inside, ways with a node inside
    keep = osmium.IdTracker()  # everything written
    ids: list[int] = []
    xs: list[float] = []
    ys: list[float] = []

    def flush() -> None:
        if ids:
            hit = shapely.contains_xy(area, np.asarray(xs), np.asarray(ys))
            for i in np.asarray(ids)[hit]:
                inner.add_node(int(i))
                keep.add_node(int(i))
            ids.clear()
            xs.clear()
            ys.clear()

    try:
        nodes: Iterable[Any] = osmium.FileProcessor(str(source), osmium.osm.NODE)
        for n in nodes:
            if n.location.valid():
                ids.append(n.id)
                xs.append(n.location.lon)
                ys.append(n.location.lat)
                if len(ids) >= batch:
                    flush()
        flush()
        ways: list[int] = []
        refs: list[int] = []
        way_objs: Iterable[Any] = osmium.FileProcessor(str(source), osmium.osm.WAY)
        for w in way_objs:
            if inner.contains_any_references(w):
                ways.append(w.id)
                refs.extend(n.ref for n in w.nodes)
        for i in ways:
            inner.add_way(i)
            keep.add_way(i)
        for i in refs:
            keep.add_node(i)
        kept: set[int] = set()
        parents: dict[int, list[int]] = {}
        extra_ways: set[int] = set()
        relations: Iterable[Any] = osmium.FileProcessor(str(source), osmium.osm.RELATION)
        for r in relations:
            for m in r.members:
                if m.type == "r":
                    parents.setdefault(m.ref, []).append(r.id)
            if inner.contains_any_references(r):
                kept.add(r.id)
                for m in r.members:  # complete, of any type (``types=any``)
                    if m.type == "w":
                        extra_ways.add(m.ref)
                    elif m.type == "n":
                        keep.add_node(m.ref)
        todo = list(kept)
        while todo:  # parent relations, recursively
            for p in parents.get(todo.pop(), []):
                if p not in kept:
                    kept.add(p)
                    todo.append(p)
        for i in kept:
            keep.add_relation(i)
        if extra_ways:
            wanted = osmium.filter.IdFilter(extra_ways)
            wanted.enable_for(osmium.osm.WAY)
            more: Iterable[Any] = osmium.FileProcessor(str(source), osmium.osm.WAY).with_filter(
                wanted
            )
            for w in more:
                keep.add_way(w.id)
                for n in w.nodes:
                    keep.add_node(n.ref)
        with atomic_path(dest) as tmp:
            _write_objects(osmium.FileProcessor(str(source)).with_filter(keep.id_filter()), tmp)
    except OSError as exc:  # the cut could not be written (a full or read-only folder)
        raise OutputFolderError(
            f"folder {str(dest.parent)!r}: writing the cut of {source.name} failed ({exc}); free "
            "some space there, or choose another cache folder with --cache-dir DIR"
        ) from exc
    except RuntimeError as exc:  # libosmium reports damaged files this way
        raise SourceError(f"{source} could not be read as an .osm.pbf file: {exc}") from exc
    return dest


def _write_objects(objects: Iterable[Any], dest: Path) -> None:
    """Write the OSM `objects` to `dest` as PBF (a new file: a staging name). A failed write
    raises `OSError` (`pbf_osmium.writer_failed`); a damaged source, libosmium's `RuntimeError`."""
    import osmium

    from walkcover.sources.pbf_osmium import writer_failed

    writer = osmium.SimpleWriter(osmium.io.File(str(dest), "pbf"), overwrite=True)
    for obj in objects:  # (a read error: the writer closes itself when let go)
        try:
            writer.add(obj)
        except RuntimeError as exc:
            raise writer_failed(writer, dest, exc) from exc
    try:
        writer.close()
    except RuntimeError as exc:
        raise writer_failed(writer, dest, exc) from exc


def study_cut_ratio(source: str | Path, polygon_wgs84: shapely.Geometry) -> float | None:
    """How many times larger than the study area `source` is, when it is worth cutting the area
    out of it before reading it (`walkcover.sources.load_osm`); None to read it whole.

    Worth it when the bounding box the file's header declares is at least `CUT_BOX_RATIO` times
    the area's bounding box (in square degrees), the file holds at least `CUT_MIN_BYTES` and the
    osmium program (osmium-tool) is there to cut it in one C++ pass (pyosmium's cut reads the
    file five times, about 6.5 µs per node: slower than reading it whole, about 5 µs per node on
    the L city). A file whose header declares no box is read whole, as is a polygon without
    area.
    """
    from walkcover.sources.extent import header_box

    path = Path(source)
    try:
        if path.stat().st_size < CUT_MIN_BYTES:
            return None
    except OSError:
        return None
    box = header_box("pbf", path)
    x0, y0, x1, y1 = polygon_wgs84.bounds
    need = (x1 - x0) * (y1 - y0)
    if box is None or not need > 0:
        return None
    ratio = (box[2] - box[0]) * (box[3] - box[1]) / need
    if ratio < CUT_BOX_RATIO or shutil.which(OSMIUM) is None:
        return None
    return ratio


def cut_key(source_sha256: str, polygon_wgs84: shapely.Geometry) -> str:
    """The name of an area's cut in the cache: a digest of the source's content, the area (its
    WKB) and what a cut holds (`CUT_SCHEMA`). Never a name read from a config or a file."""
    import hashlib

    blob = json.dumps(
        {
            "schema": CUT_SCHEMA,
            "source": source_sha256,
            "area": shapely.to_wkb(polygon_wgs84, hex=True),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cut_areas(
    source: str | Path,
    areas: Mapping[str, shapely.Geometry],
    *,
    cache_dir: str | Path,
    progress: Callable[[str], None] | None = None,
    areas_per_pass: int | None = None,
) -> dict[str, Path]:
    """Each area's cut of `source`, from the cache; the missing ones cut in one streaming pass.

    Parameters
    ----------
    source
        The ``.osm.pbf`` file (a province's extract).
    areas
        Area (EPSG:4326 Polygon or MultiPolygon, halo included) by name; the names only label
        the areas in progress lines and the result, never a file.
    cache_dir
        The cache folder; the cuts go to ``CACHE/cuts/<key>.osm.pbf`` (`cut_key`).
    progress
        Called with a line of text: what is being cut, and how far the pass has got.
    areas_per_pass
        At most this many areas per osmium run (default: as many as fit in the memory available,
        see the module docstring).

    Returns
    -------
    dict
        The path of each area's cut, by name.

    Raises
    ------
    SourceError
        `source` is missing or cannot be cut.
    UnsafePathError
        A link would make a cut land outside `cache_dir`.
    """
    say = progress or (lambda _line: None)
    src = Path(source)
    if not src.is_file():
        raise SourceError(f"--source {str(src)!r} does not exist; pass an existing .osm.pbf file")
    from walkcover.sources.cache import source_sha256

    root = Path(cache_dir)
    folder = inside(root, root / CUTS_FOLDER, what="cuts folder")
    folder.mkdir(parents=True, exist_ok=True)
    inside(root, folder, what="cuts folder")  # again, now that it exists
    digest = source_sha256(src, cache_dir=root)
    paths = {
        name: inside(root, folder / f"{cut_key(digest, poly)}.osm.pbf", what="cut")
        for name, poly in areas.items()
    }
    missing = [name for name, p in paths.items() if not _usable(p)]
    for name in paths.keys() - set(missing):  # recently used: the cache's `prune` keeps them
        with contextlib.suppress(OSError, NotImplementedError):
            os.utime(paths[name], follow_symlinks=False)
    if len(missing) < len(paths):
        say(f"{len(paths) - len(missing)} of {len(paths)} cut(s) of {src.name} from the cache")
    if not missing:
        return paths
    if shutil.which(OSMIUM) is None:
        _warn_fallback()
        for k, name in enumerate(missing, 1):
            say(f"cutting {name} ({k} of {len(missing)}) out of {src.name} with pyosmium")
            cut_pbf(src, areas[name], paths[name])
        return paths
    per_pass = areas_per_pass or _areas_per_pass(src, len(missing), root, digest)
    groups = [missing[i : i + per_pass] for i in range(0, len(missing), per_pass)]
    for g, names in enumerate(groups, 1):
        shown = ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]} … {names[-1]}"
        what = f"{len(names)} area(s) ({shown}) out of {src.name}"
        if len(groups) > 1:
            what += f", pass {g} of {len(groups)}"
        _osmium_extract(
            src, [areas[n] for n in names], [paths[n] for n in names], folder, what, say
        )
    return paths


def _usable(path: Path) -> bool:
    """Whether a cut in the cache can be used: a file of its own (never a link walkcover did not
    make), written whole (only renamed into place once complete)."""
    return path.is_file() and not path.is_symlink() and path.stat().st_size > 0


def _warn_fallback() -> None:
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        log.warning(
            "the osmium program (osmium-tool) is not installed: cutting each city out of the "
            "source with pyosmium, one read of the whole file per city; install it (Debian: "
            "apt-get install osmium-tool) to cut every city in one pass"
        )


def _areas_per_pass(src: Path, n_areas: int, root: Path, digest: str) -> int:
    """How many areas one osmium run can cut in the memory available (at least one)."""
    import psutil

    budget = 0.6 * psutil.virtual_memory().available - BASE_BYTES
    if n_areas * NODE_ID_BOUND * BYTES_PER_AREA_PER_NODE_ID <= budget:
        return n_areas
    per_area = max_node_id(src, cache_dir=root, digest=digest) * BYTES_PER_AREA_PER_NODE_ID
    return max(1, min(n_areas, int(budget // max(per_area, 1.0))))


def max_node_id(source: Path, *, cache_dir: Path, digest: str) -> int:
    """The highest node id in `source` (``osmium fileinfo``: one read), remembered in the cache
    against the source's content."""
    root = Path(cache_dir)
    memo = inside(root, root / CUTS_FOLDER / f"{digest[:32]}.maxid.json", what="cut record")
    try:
        if not memo.is_symlink():
            got = json.loads(memo.read_text(encoding="utf-8"))
            if isinstance(got, dict) and isinstance(got.get("max_node_id"), int):
                return int(got["max_node_id"])
    except (OSError, ValueError):
        pass
    run = subprocess.run(
        [OSMIUM, "fileinfo", "--extended", "--get", "data.maxid.nodes", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        value = int(run.stdout.strip())
    except ValueError:
        raise SourceError(
            f"--source {str(source)!r} could not be read as an .osm.pbf file by osmium fileinfo "
            f"({' '.join(run.stderr.split())[:200]}); download it again or pass another --source"
        ) from None
    from walkcover._atomic import write_atomic

    write_atomic(
        memo,
        lambda tmp: tmp.write_text(json.dumps({"max_node_id": value}), encoding="utf-8"),
    )
    return value


def _rings(polygon: shapely.Geometry) -> list[list[list[list[float]]]]:
    """A Polygon or MultiPolygon as osmium's inline ``multipolygon`` (outer ring first)."""
    parts = shapely.get_parts(shapely.make_valid(polygon))
    out = []
    for part in parts:
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        rings = [part.exterior, *part.interiors]
        out.append([np.asarray(r.coords).tolist() for r in rings])
    if not out:
        raise SourceError(f"cannot cut an area that is not a polygon ({polygon.geom_type})")
    return out


def _osmium_extract(
    src: Path,
    polygons: list[shapely.Geometry],
    dests: list[Path],
    folder: Path,
    what: str,
    say: Callable[[str], None],
) -> None:
    """One ``osmium extract`` run writing each polygon's cut into a temporary folder inside
    `folder`, then renaming each into place."""
    work = Path(tempfile.mkdtemp(prefix=".walkcover-tmp-cuts-", dir=folder))
    try:
        config = {
            "directory": str(work),
            "extracts": [
                {
                    "output": f"area-{k}.osm.pbf",
                    "multipolygon": _rings(poly),
                    # the source's data date stays in each cut's header
                    "output_header": {"osmosis_replication_timestamp": None, "timestamp": None},
                }
                for k, poly in enumerate(polygons)
            ],
        }
        (work / "config.json").write_text(json.dumps(config), encoding="utf-8")
        cmd = [OSMIUM, "extract", "--config", str(work / "config.json"), "--strategy", "smart",
               "--option", "types=any", "--overwrite", "--no-progress", "--verbose",
               str(src)]  # fmt: skip
        _run_with_progress(cmd, src, f"cutting {what} with osmium", say)
        for k, dest in enumerate(dests):
            (work / f"area-{k}.osm.pbf").replace(inside(folder, dest, what="cut"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


_PASS = re.compile(r"(First|Second|Third) pass \(of (two|three)\)")
_WORDS = {"first": 1, "second": 2, "third": 3, "two": 2, "three": 3}


def _run_with_progress(cmd: list[str], src: Path, what: str, say: Callable[[str], None]) -> None:
    """Run osmium, telling every `PROGRESS_EVERY_S` which pass it is in and how far through the
    file (the read position of its file descriptor, where the system shows it)."""
    say(what)
    t0 = time.perf_counter()
    lines: list[str] = []
    where = ["pass 1"]
    with subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:  # its pipe is closed on leaving

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                m = _PASS.search(line)
                if m:
                    where[0] = f"pass {_WORDS[m[1].lower()]} of {_WORDS[m[2]]}"

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        size = max(src.stat().st_size, 1)
        while True:
            try:
                proc.wait(timeout=PROGRESS_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                pos = _read_position(proc.pid, src)
                share = f", {100 * pos / size:.0f}% of the file" if pos is not None else ""
                say(f"{what}: {where[0]}{share} ({time.perf_counter() - t0:.0f} s)")
        reader.join(timeout=5)
    if proc.returncode != 0:
        tail = " ".join(" ".join(lines[-5:]).split())[:300]
        raise SourceError(
            f"--source {str(src)!r} could not be read as an .osm.pbf file by osmium extract "
            f"({tail or proc.returncode}); download it again or pass another --source"
        )
    say(f"{what}: done in {time.perf_counter() - t0:.0f} s")


def _read_position(pid: int, src: Path) -> int | None:
    """How far process `pid` has read `src` (Linux's /proc), or None where unknown."""
    target = src.resolve()
    proc = Path("/proc") / str(pid)
    try:
        for fd in (proc / "fd").iterdir():
            if fd.readlink() == target:
                for line in (proc / "fdinfo" / fd.name).read_text(encoding="ascii").splitlines():
                    if line.startswith("pos:"):
                        return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


__all__ = ["cut_areas", "cut_key", "cut_pbf", "max_node_id", "study_cut_ratio"]
