"""Load OSM layers from any source through an on-disk cache keyed by source content and query."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import shapely

from walkcover._atomic import write_atomic
from walkcover._errors import OutputFolderError, SourceError, UnsafePathError
from walkcover._paths import inside, read_file_bytes
from walkcover.config.tags import TAG_DTYPE, as_tag_texts
from walkcover.sources._layers import PROJECT_APART_ROWS, OSMLayers, OSMQuery

log = logging.getLogger(__name__)

#: Bump when the cached layers' columns or meaning change, so old entries are never reused.
#: 4: a bounding-box column, row groups and each entry's area, so a smaller area is cut from a
#: cached larger one. 5: PBF layers read by libosmium (`pbf_osmium`; the same layers, read anew
#: once so that no entry of the earlier reader is ever taken for one of this).
CACHE_SCHEMA = 5
#: Overpass data changes upstream without notice; downloads older than this are fetched again.
OVERPASS_MAX_AGE_S = 7 * 24 * 3600
#: A cached area serves a smaller one it covers up to this (degrees; about 1 cm). A district grown
#: by the study margin and the union of all districts grown by it differ by slivers of about
#: 1e-12 square degrees along their common outer edge: data there lies at the margin's far edge,
#: farther than any search limit by the snap distance, so it can serve no home of the district.
COVER_TOL_DEG = 1e-7
#: Rows per Parquet row group in an entry: a small area's read skips the groups whose boxes miss it.
ROW_GROUP_ROWS = 32_768
#: Where the file stamps (size, times, inode -> SHA-256) are kept, so an unchanged source is not
#: hashed again on every run (a province's 200 MB file: about a second).
STAMPS_FILE = "sources.json"
#: `STAMPS_FILE` larger than this is taken for damaged and started again (an entry per source file
#: hashed is about 200 bytes).
MAX_STAMPS_BYTES = 16 * 2**20

SourceKind = Literal["pbf", "xml", "overpass"]

#: The OSM layers and cuts a cache keeps (``osm/`` and ``cuts/`` together), beyond which the least
#: recently used go (`prune`): the L city's entry is 0.25 GB and its cut out of a province file
#: 0.1 GB; a whole province read once, a few GB. Every source file read (each month's
#: ``henan-latest.osm.pbf``) and every area asked of it adds its own.
STORE_MAX_BYTES = 8 * 2**30
#: An entry or cut used this recently is never removed, whatever the store's size: another run (a
#: batch's other tasks) may be reading it.
IN_USE_S = 3600.0

#: Each layer's geometries in a run's working CRS, beside the layer (same rows, same order), one
#: file per layer and CRS (``streets.working-<CRS digest>.parquet``): a run in that CRS reads them
#: as it measures them instead of projecting 2.2 million geometries again (L: 3 s of each run).
WORKING_PREFIX = ".working-"


def file_sha256(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file's content."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def source_sha256(path: Path, *, cache_dir: Path | None) -> str:
    """`file_sha256`, remembered in `cache_dir` against the file's size, modification and change
    times and inode: any edit, copy or re-download changes one of them and the file is hashed
    again. The change time cannot be set back by hand (``touch -d`` sets only the others)."""
    st = path.stat()
    stat = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    if cache_dir is None:
        return file_sha256(path)
    memo_path = Path(cache_dir) / STAMPS_FILE
    name = str(path.resolve())
    try:
        if memo_path.is_symlink():  # never read through a link: replaced below
            raise ValueError(f"{memo_path} is a symbolic link")
        # (read as a file of ours or not at all: a FIFO there must not stop the run for ever)
        memo = json.loads(read_file_bytes(memo_path, max_bytes=MAX_STAMPS_BYTES))
        if not isinstance(memo, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:  # the first source hashed with this cache
        memo = {}
    except (OSError, ValueError, RecursionError) as exc:
        # damaged (not JSON, nested deeper than any parser goes, a folder): hash again, rewrite it
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        log.warning("cache file %s is unreadable (%s); hashing the source again", memo_path, reason)
        memo = {}
    known = memo.get(name)
    if (
        isinstance(known, dict)
        and known.get("stat") == stat
        and isinstance(known.get("sha256"), str)
    ):
        return known["sha256"]
    digest = file_sha256(path)
    memo[name] = {"stat": stat, "sha256": digest}
    try:
        write_atomic(
            inside(cache_dir, memo_path, what="cache file"),
            lambda tmp: tmp.write_text(json.dumps(memo), encoding="utf-8"),
        )
    except OSError as exc:  # a read-only cache still serves; the file is hashed next time again
        log.warning("could not record the source's hash in %s (%s)", memo_path, exc)
    return digest


def _stamp(kind: SourceKind, source: str | None, cache_dir: Path | None) -> dict[str, str]:
    if kind == "overpass":
        import osmnx as ox

        return {"url": ox.settings.overpass_url}
    return {"sha256": source_sha256(_local_path(kind, source), cache_dir=cache_dir)}


def _digest(obj: object) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cache_family(kind: SourceKind, stamp: dict[str, str], query: OSMQuery) -> str:
    """What an entry was read from and for, but its area: entries of one family differ only in
    area, and one covering another's area holds all of its data."""
    fp = query.fingerprint()
    fp.pop("polygon")
    return _digest({"schema": CACHE_SCHEMA, "kind": kind, "source": stamp, "query": fp})


def cache_key(kind: SourceKind, stamp: dict[str, str], query: OSMQuery) -> str:
    """The key under which a source's parsed layers are cached.

    A file source is keyed by the SHA-256 of its content (`source_sha256`), so an edited or
    re-downloaded file is parsed afresh; Overpass by its URL. The query (area, street classes,
    tags) is always part of it.
    """
    return _digest(
        {"family": cache_family(kind, stamp, query), "polygon": query.fingerprint()["polygon"]}
    )


def _local_path(kind: SourceKind, source: str | None) -> Path:
    if source is None:
        raise SourceError(f"a {kind} source needs a file: pass --source FILE")
    if kind == "pbf":
        from walkcover.sources.pbf import resolve_pbf

        path = resolve_pbf(source)
    else:
        path = Path(source)
    if not path.is_file():
        raise SourceError(
            f"--source {str(path)!r} does not exist; pass an existing .osm.pbf or .osm file"
        )
    return path


def load_osm(
    kind: SourceKind,
    source: str | None,
    query: OSMQuery,
    *,
    cache_dir: Path | None,
    refresh: bool = False,
    wider: OSMQuery | Callable[[], OSMQuery] | None = None,
    on_wider: Callable[[], None] | None = None,
    crs: Any = None,
    progress: Callable[[str], None] | None = None,
) -> OSMLayers:
    """Read `query` from a source, reusing the cached parse when the source and query are unchanged.

    A PBF file much larger than the area asked for (a province's for one city:
    `walkcover.sources.extract.study_cut_ratio`) is not read whole: the area is cut out of it
    first in one pass of osmium-tool (kept in the cache's ``cuts`` folder, keyed by the file's
    content and the area; with no cache, in a temporary folder), and only the cut is read. The
    layers are those the whole file gives (the cut keeps every object the area's read uses,
    complete).

    Parameters
    ----------
    kind
        ``pbf`` (pyrosm), ``xml`` (osmnx) or ``overpass`` (osmnx download).
    source
        File path for ``pbf``/``xml`` (``pyrosm:NAME`` for a pyrosm sample); ignored for Overpass.
    query
        Area, street classes and feature tags.
    cache_dir
        Cache folder; None disables caching.
    refresh
        Parse or download again even when a cached entry exists.
    wider
        A larger area to read and cache instead when `query` is not cached (the whole city, for
        one district): a PBF file is read whole either way, and the city's other districts are
        then cut from the cache without reading it again. Used for PBF files with a cache only,
        and only when it covers `query` and asks the same of the file. Or a function that makes it, called only
        then.
    on_wider
        Called just before `wider` is read (to tell the user why this read takes longer).
    crs
        The CRS to return the layers in (a run's working CRS); default EPSG:4326, as read. An
        entry written with a `crs` keeps the layers in it too, and a read in the same CRS takes
        them from there instead of projecting them again.
    progress
        Called with a line of text while a source is cut (what, how far); the lines are logged
        (INFO) either way.
    """
    if cache_dir is None:
        return _projected(_read(kind, source, query, cache_root=None, progress=progress), crs)
    cache_root = Path(cache_dir)
    root = inside(cache_root, cache_root / "osm", what="cache folder")
    stamp = _stamp(kind, source, cache_root)
    family, key = cache_family(kind, stamp, query), cache_key(kind, stamp, query)
    if not refresh:
        cached = _read_entry(root / key, kind=kind, crs=crs, cache_root=cache_root)
        cached_from_cover, covering = False, None
        if cached is None and kind == "pbf":
            # a larger area of the same file and query read before (the whole city, say): cut
            # this one from it. Only for PBF files, whose reader keeps exactly what `clip` keeps.
            covering = _covering_entry(root, family, query.polygon)
            if covering is not None:
                cached = _read_entry(
                    covering, kind=kind, within=query.polygon, crs=crs, cache_root=cache_root
                )
                cached_from_cover = True
        if cached is not None:
            log.info("using cached OSM layers %s", key)
            used = covering if cached_from_cover and covering is not None else root / key
            _touch(used / "meta.json")  # recently used: `prune` keeps it longest
            return _with_digest(cached, used, query, crs)
    if callable(wider) and kind == "pbf":
        wider = wider()
    if (
        isinstance(wider, OSMQuery)
        and kind == "pbf"
        and cache_family(kind, stamp, wider) == family
        and shapely.covers(wider.polygon.buffer(COVER_TOL_DEG, quad_segs=2), query.polygon)
    ):
        log.info(
            "reading the whole city's area once (the file is read whole either way); its other "
            "districts will be cut from the cache"
        )
        if on_wider is not None:
            on_wider()
        layers = _read(kind, source, wider, cache_root=cache_root, progress=progress)
        _write_entry(
            root,
            cache_key(kind, stamp, wider),
            layers,
            kind=kind,
            family=family,
            area=wider.polygon,
            cache_root=cache_root,
        )  # kept as read: the whole city's layers are projected when a run reads them whole
        _prune_quietly(cache_root, keep=root / cache_key(kind, stamp, wider))
        return _with_digest(
            _projected(clip(layers, query.polygon), crs),
            root / cache_key(kind, stamp, wider),
            query,
            crs,
        )
    layers = _read(kind, source, query, cache_root=cache_root, progress=progress)
    # projected while the entry is written, and kept in it too
    working = _write_entry(
        root,
        key,
        layers,
        kind=kind,
        family=family,
        area=query.polygon,
        crs=crs,
        cache_root=cache_root,
    )
    _prune_quietly(cache_root, keep=root / key)
    return _with_digest(working, root / key, query, crs)


def prune(
    cache_root: Path,
    *,
    keep: Path | None = None,
    max_bytes: int = STORE_MAX_BYTES,
    in_use_s: float = IN_USE_S,
) -> list[Path]:
    """Remove the least recently used OSM entries (``osm/``) and cuts (``cuts/``) of cache
    `cache_root` until they hold at most `max_bytes` together, and what killed runs left there
    half written (names starting with ``.``, older than `in_use_s`); the paths removed.

    An entry's last use is its ``meta.json``'s modification time and a cut's its own (both touched
    whenever a run uses them). `keep` (the entry just written) and whatever was used in the last
    `in_use_s` seconds stay, even past `max_bytes`. An entry is first renamed to a hidden name, so
    no run takes it for an entry while it is removed; nothing is followed through a link, and
    nothing outside the cache is touched.
    """
    cache_root = Path(cache_root)
    now = time.time()
    items: list[tuple[float, int, Path]] = []
    removed: list[Path] = []
    for sub in ("osm", "cuts"):
        folder = cache_root / sub
        if folder.is_symlink() or not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            try:
                st = path.lstat()
                if path.name.startswith("."):  # half written or half removed by a killed run
                    if now - st.st_mtime > in_use_s:
                        _remove_item(cache_root, path)
                        removed.append(path)
                    continue
                if path.is_symlink():
                    continue  # (`_read_entry` and `cut_areas` say so and replace it)
                if sub == "osm" and path.is_dir():
                    used = (path / "meta.json").lstat().st_mtime
                    size = sum(f.lstat().st_size for f in path.iterdir())
                elif sub == "cuts" and path.is_file() and path.name.endswith(".osm.pbf"):
                    used, size = st.st_mtime, st.st_size
                else:
                    continue
            except OSError:  # (gone meanwhile, or no meta.json: a damaged entry, replaced on use)
                continue
            items.append((used, size, path))
    total = sum(size for _, size, _ in items)
    for used, size, path in sorted(items, key=lambda item: item[0]):
        if total <= max_bytes:
            break
        if now - used < in_use_s or (keep is not None and path == keep):
            continue
        remove_item(cache_root, path)
        removed.append(path)
        total -= size
    return removed


def _prune_quietly(cache_root: Path, *, keep: Path) -> None:
    """`prune`, logged; a cache that cannot be pruned costs nothing but the space."""
    try:
        gone = prune(cache_root, keep=keep, max_bytes=STORE_MAX_BYTES)
    except OSError as exc:
        log.warning("could not remove old OSM layers from the cache %s (%s)", cache_root, exc)
        return
    if gone:
        log.info(
            "removed %d least recently used OSM entr(y/ies) and cut(s) from the cache (past %.0f GiB)",
            len(gone),
            STORE_MAX_BYTES / 2**30,
        )


def remove_item(cache_root: Path, path: Path) -> None:
    """Remove item `path` of cache `cache_root` (an OSM entry, a cut, a stored file), so that a
    crash at any moment leaves no damaged item under a name a run reads.

    A folder (an OSM entry) is first renamed to a hidden name of its own (``.gone-…``: no run
    takes it for an entry meanwhile, and `prune` removes what a killed removal left of it), then
    removed; a file is unlinked in one step. A symbolic link is removed itself, never followed.

    Raises
    ------
    UnsafePathError
        `path` is not in a folder inside `cache_root` (a link on the way leads out of it).
    """
    inside(cache_root, path.parent, what="cache folder")
    if path.is_dir() and not path.is_symlink():
        hidden = path.with_name(f".gone-{path.name}-{secrets.token_hex(4)}")
        inside(cache_root, path, what="cache entry").rename(hidden)
        _remove_item(cache_root, hidden)
    else:
        _remove_item(cache_root, path)


def _remove_item(cache_root: Path, path: Path) -> None:
    """Remove file or folder `path` inside the cache (a link itself, never what it points at)."""
    inside(cache_root, path.parent, what="cache folder")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _touch(path: Path) -> None:
    """Mark a file of the cache as just used (not through a link; a read-only cache: nothing)."""
    with contextlib.suppress(OSError, NotImplementedError):
        os.utime(path, follow_symlinks=False)


def _with_digest(layers: OSMLayers, entry: Path | None, query: OSMQuery, crs: Any) -> OSMLayers:
    """`layers` read from (or written to) cache `entry`, with their `OSMLayers.digest`: a
    SHA-256 of the entry's name (the source's SHA-256 and the query it was read for), its
    Parquet files' names, sizes and modification times (an entry rewritten or edited since
    changes them), the area `query` cut from it and `crs`. Without an entry (one that could not
    be written), none."""
    import dataclasses

    import pyproj

    if entry is None or not entry.is_dir():
        return layers
    h = hashlib.sha256(b"osm layers")
    h.update(entry.name.encode())
    for path in sorted(entry.glob("*.parquet")):
        st = path.stat()
        h.update(f"{path.name} {st.st_size} {st.st_mtime_ns}".encode())
    h.update(query.polygon.normalize().wkb)
    h.update(pyproj.CRS.from_user_input(crs).to_wkt().encode() if crs is not None else b"as read")
    return dataclasses.replace(layers, digest=h.hexdigest())


def _projected(layers: OSMLayers, crs: Any) -> OSMLayers:
    """`layers` in `crs`; themselves when `crs` is None."""
    return layers if crs is None else layers.to_crs(crs)


def clip(layers: OSMLayers, polygon: shapely.Geometry) -> OSMLayers:
    """The part of `layers` a PBF read of `polygon` (EPSG:4326) gives, when `layers` were read for
    an area covering it: the street segments with an end inside, and the features with a vertex
    inside (a way or relation is read whole when one of its nodes is in the area; a node when it
    is). Rows keep their order.
    """
    streets, features = layers.streets, layers.features
    return OSMLayers(
        streets=streets[_vertex_inside(streets.geometry.to_numpy(), polygon)].reset_index(
            drop=True
        ),
        features=features[_vertex_inside(features.geometry.to_numpy(), polygon)].reset_index(
            drop=True
        ),
        source=layers.source,
        data_date=layers.data_date,
    )


def _vertex_inside(geoms: np.ndarray, polygon: shapely.Geometry) -> np.ndarray:
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    area = shapely.from_wkb(shapely.to_wkb(polygon))  # prepared on a copy
    shapely.prepare(area)
    hit = np.zeros(len(geoms), dtype=bool)
    hit[owner[shapely.contains_xy(area, coords[:, 0], coords[:, 1])]] = True
    return hit


def _covering_entry(root: Path, family: str, polygon: shapely.Geometry) -> Path | None:
    """The smallest cached area of `family` that covers `polygon` (up to `COVER_TOL_DEG`)."""
    best: tuple[float, Path] | None = None
    if not root.is_dir():
        return None
    for folder in sorted(root.iterdir()):
        if folder.name.startswith("."):  # an entry being written
            continue
        meta_path = folder / "meta.json"
        damage = entry_damage(folder)
        if damage is not None:
            log.warning("cache entry %s %s; it is not used", folder, damage)
            continue
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("family") != family:
                continue
            area = shapely.from_wkb(bytes.fromhex(meta["area_wkb"]))
        except Exception as exc:  # damaged: not a candidate
            log.warning("cache entry %s is unreadable (%s); it is not used", folder, exc)
            continue
        if not shapely.covers(area.buffer(COVER_TOL_DEG, quad_segs=2), polygon):
            continue
        if best is None or area.area < best[0]:
            best = (area.area, meta_path.parent)
    return None if best is None else best[1]


def _read(
    kind: SourceKind,
    source: str | None,
    query: OSMQuery,
    *,
    cache_root: Path | None,
    progress: Callable[[str], None] | None,
) -> OSMLayers:
    """`_read_source`; a PBF file much larger than the area through a cut of it (see `load_osm`)."""
    if kind == "pbf":
        from walkcover.sources.extract import study_cut_ratio

        path = _local_path(kind, source)
        ratio = study_cut_ratio(path, query.polygon)
        if ratio is not None:
            return _read_cut(path, query, ratio=ratio, cache_root=cache_root, progress=progress)
    return _read_source(kind, source, query)


def _read_cut(
    path: Path,
    query: OSMQuery,
    *,
    ratio: float,
    cache_root: Path | None,
    progress: Callable[[str], None] | None,
) -> OSMLayers:
    """The layers of `query` read from a cut of its area out of `path` (osmium-tool), cached in
    `cache_root`'s ``cuts`` folder, or with no cache in a temporary folder removed afterwards.
    They name `path` as their source, and the date of its data."""
    import dataclasses
    from contextlib import ExitStack

    from walkcover.sources.extract import cut_areas
    from walkcover.sources.pbf import pbf_data_date

    def say(line: str) -> None:
        log.info("%s", line)
        if progress is not None:
            progress(line)

    mb = path.stat().st_size / 1e6
    say(
        f"{path.name} ({mb:,.0f} MB) covers {ratio:,.0f} times the study area's extent: cutting "
        "the area out of it first" + ("" if cache_root is None else " (the cut is cached)")
    )
    with ExitStack() as stack:
        folder = cache_root
        if folder is None:  # --no-cache: nothing left behind
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="walkcover-")))
        name = "the study area"
        for attempt in (1, 2):
            cut = cut_areas(path, {name: query.polygon}, cache_dir=folder, progress=say)[name]
            try:
                layers = _read_source("pbf", str(cut), query)
                break
            except SourceError as exc:
                if attempt == 2:
                    raise
                # a cut damaged in the cache (truncated, overwritten): named, cut again
                log.warning("cut %s in the cache is unreadable (%s); cutting it again", cut, exc)
                inside(folder, cut, what="cut").unlink(missing_ok=True)
    return dataclasses.replace(layers, source=str(path), data_date=pbf_data_date(path))


def _read_source(kind: SourceKind, source: str | None, query: OSMQuery) -> OSMLayers:
    if kind == "pbf":
        from walkcover.sources.pbf import read_pbf

        return read_pbf(_local_path(kind, source), query)
    if kind == "xml":
        from walkcover.sources.osm_xml import read_osm_xml

        return read_osm_xml(_local_path(kind, source), query)
    from walkcover.sources.overpass import download_overpass

    return download_overpass(query)


def entry_damage(folder: Path) -> str | None:
    """What is wrong with cache entry `folder` as walkcover wrote it (None: nothing seen): a
    symbolic link (never followed: walkcover makes none), not a folder, no ``meta.json`` (an
    entry is renamed into place whole, with it)."""
    if folder.is_symlink():
        return "is a symbolic link"
    if not folder.is_dir():
        return "is not a folder"
    for item in folder.iterdir():
        if item.is_symlink():
            return f"holds a symbolic link ({item.name})"
    if not (folder / "meta.json").is_file():
        return "has no meta.json"
    return None


def _read_entry(
    folder: Path,
    *,
    kind: SourceKind,
    within: shapely.Geometry | None = None,
    crs: Any = None,
    cache_root: Path | None = None,
) -> OSMLayers | None:
    """An entry's layers in `crs` (default EPSG:4326); with `within`, only the part a read of it
    gives (`clip`). The whole entry is read in `crs` from its working files (`WORKING_PREFIX`)
    when it has them, and given them otherwise (inside `cache_root`, the cache folder).

    None when there is no such entry, or it is damaged (a warning names it; it is then parsed
    again and replaced)."""
    if not folder.is_symlink() and not folder.exists():
        return None
    damage = entry_damage(folder)
    if damage is not None:
        log.warning("cache entry %s %s (damaged); parsing the source again", folder, damage)
        return None
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("schema") != CACHE_SCHEMA:
            return None
        if kind == "overpass" and time.time() - meta["created"] > OVERPASS_MAX_AGE_S:
            return None
        projected = False
        if within is None and crs is not None and _has_working(folder, crs):
            try:
                streets = _read_working(folder, "streets", crs)
                features = _read_working(folder, "features", crs)
                projected = True
            except Exception as exc:  # the layers themselves are still good: projected again
                log.warning(
                    "cache entry %s: its working-CRS files are unreadable (%s)", folder, exc
                )
        if projected:
            pass
        elif within is None:
            streets = gpd.read_parquet(
                folder / "streets.parquet", columns=_columns(folder, "streets")
            )
            features = gpd.read_parquet(
                folder / "features.parquet", columns=_columns(folder, "features")
            )
        else:
            layers = clip(
                OSMLayers(
                    streets=_rows_near(folder / "streets.parquet", within.bounds),
                    features=_rows_near(folder / "features.parquet", within.bounds),
                    source=meta["source"],
                    data_date=_meta_date(meta),
                ),
                within,
            )
            streets, features = layers.streets, layers.features
        # the tags stay the text they are stored as (`walkcover.config.tags`): no dict per feature
        features = _text_tags(features)
        layers = OSMLayers(
            streets=streets, features=features, source=meta["source"], data_date=_meta_date(meta)
        )
        if projected or crs is None:
            return layers
        layers = _projected(layers, crs)
        if within is None:  # the next run in this CRS reads them as they are
            _add_working(folder, layers, cache_root=cache_root or folder.parent.parent)
        return layers
    except Exception as exc:  # a damaged entry is rebuilt, never trusted
        log.warning("cache entry %s is unreadable (%s); parsing the source again", folder, exc)
        return None


def _text_tags(features: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """`features` with its ``tags`` text in pandas' ``str`` (Arrow) dtype, as the readers give
    it (a Parquet string column is read so already; an empty layer's may come back otherwise)."""
    if features["tags"].dtype != TAG_DTYPE:
        features = features.copy()
        features["tags"] = as_tag_texts(features["tags"])
    return features


def _meta_date(meta: dict[str, Any]) -> str:
    """The OSM data date an entry was written with; "" for an entry written before entries kept
    it, or one whose date is not a timestamp (a hand-edited ``meta.json`` is not trusted)."""
    from walkcover.sources._layers import iso_timestamp

    return iso_timestamp(meta.get("data_date", ""))


def _working_file(name: str, crs: Any) -> str:
    """The file name of layer `name`'s geometries in `crs` (a digest of its WKT: the same CRS
    written the same way)."""
    import pyproj

    wkt = pyproj.CRS.from_user_input(crs).to_wkt()
    return f"{name}{WORKING_PREFIX}{hashlib.sha256(wkt.encode()).hexdigest()[:16]}.parquet"


def _has_working(folder: Path, crs: Any) -> bool:
    """Whether the entry keeps its layers in `crs` too."""
    return all((folder / _working_file(name, crs)).is_file() for name in ("streets", "features"))


def _write_working(folder: Path, working: OSMLayers) -> None:
    """Each layer's geometries (in its CRS) into the entry's working files, each written whole
    under a temporary name and then renamed: a reader finds a complete file or none."""
    _write_side_by_side(_working_writers(folder, working))


def _working_writers(
    folder: Path, working: OSMLayers | dict[str, gpd.GeoDataFrame]
) -> list[Callable[[], object]]:
    """`_write_working`'s files (both layers', or those of the layers named), as calls to make."""
    out: list[Callable[[], object]] = []
    frames = (
        working
        if isinstance(working, dict)
        else {"streets": working.streets, "features": working.features}
    )
    for name, frame in frames.items():
        geometry = gpd.GeoDataFrame(geometry=frame.geometry.to_numpy(), crs=frame.crs)
        out.append(
            partial(
                write_atomic,
                folder / _working_file(name, frame.crs),
                partial(_write_parquet, geometry),
            )
        )
    return out


def _write_side_by_side(writes: Sequence[Callable[[], object]]) -> None:
    """Make the calls `writes` (each writes its own file) on two threads: Arrow encodes and
    compresses a file without the interpreter lock, so a city's four cache files take about half
    the time. The first error is raised once every call has ended (no file is left being written
    when the entry's folder is removed)."""
    from concurrent.futures import ThreadPoolExecutor, wait

    if len(writes) < 2:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(write) for write in writes]
        wait(futures)
    for fut in futures:
        fut.result()


def _write_parquet(frame: gpd.GeoDataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False, row_group_size=ROW_GROUP_ROWS)


def _add_working(folder: Path, working: OSMLayers, *, cache_root: Path) -> None:
    """Give an entry read whole its working files in `working`'s CRS; a failure (a full disk, a
    read-only cache) costs only the speed-up."""
    try:
        _write_working(inside(cache_root, folder, what="cache entry"), working)
    except Exception as exc:
        log.info("cache entry %s: its working-CRS files could not be written (%s)", folder, exc)


def _read_working(folder: Path, name: str, crs: Any) -> gpd.GeoDataFrame:
    """A layer's columns with its geometries in `crs` (read from its working file), in the frame
    `gpd.read_parquet` makes of the layer itself.

    The frame takes `crs` itself (`_has_working` found it the same): the file's PROJJSON copy is
    equal but not "exactly the same" to pyproj, and would have the run project it once more."""
    import pyarrow.parquet as pq

    names = [c for c in _columns(folder, name) if c != "geometry"]
    frame = pq.read_table(folder / f"{name}.parquet", columns=names).to_pandas()
    path = folder / _working_file(name, crs)
    geometry = gpd.read_parquet(path).geometry
    if len(geometry) != len(frame):
        raise ValueError(f"{path.name} has {len(geometry)} rows, the layer {len(frame)}")
    return gpd.GeoDataFrame(frame, geometry=geometry.to_numpy(), crs=crs)


def _columns(folder: Path, name: str) -> list[str]:
    """The layer's columns without the bounding boxes, which only `_rows_near` reads."""
    import pyarrow.parquet as pq

    return [c for c in pq.read_schema(folder / f"{name}.parquet").names if c != "bbox"]


def _rows_near(path: Path, box: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """The rows whose bounding boxes meet `box`, in stored order.

    A row group whose box statistics miss `box` is skipped unread; of the others the box column
    is read first, and the rest only from the groups that hold a row near `box`. A district the
    data never reaches reads next to nothing.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = [c for c in pf.schema_arrow.names if c != "bbox"]
    x0, y0, x1, y1 = box
    parts = []
    for i in range(pf.num_row_groups):
        if not _group_may_meet(pf.metadata.row_group(i), box):
            continue
        bb = pf.read_row_group(i, columns=["bbox"]).column("bbox").combine_chunks()
        near = (
            (bb.field("xmin").to_numpy() <= x1)
            & (bb.field("xmax").to_numpy() >= x0)
            & (bb.field("ymin").to_numpy() <= y1)
            & (bb.field("ymax").to_numpy() >= y0)
        )
        if near.any():
            parts.append(pf.read_row_group(i, columns=names).filter(pa.array(near)))
    table = pa.concat_tables(parts) if parts else pf.schema_arrow.empty_table().select(names)
    frame = table.drop_columns(["geometry"]).to_pandas()
    geometry = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=4326)


def _group_may_meet(group: Any, box: tuple[float, float, float, float]) -> bool:
    """False when a row group's box statistics show that none of its rows meets `box`."""
    stats = {}
    for j in range(group.num_columns):
        col = group.column(j)
        if col.path_in_schema.startswith("bbox.") and col.is_stats_set:
            stats[col.path_in_schema.removeprefix("bbox.")] = col.statistics
    if len(stats) < 4 or not all(s.has_min_max for s in stats.values()):
        return True
    x0, y0, x1, y1 = box
    return not (
        stats["xmin"].min > x1
        or stats["xmax"].max < x0
        or stats["ymin"].min > y1
        or stats["ymax"].max < y0
    )


def _write_entry(
    root: Path,
    key: str,
    layers: OSMLayers,
    *,
    kind: SourceKind,
    family: str,
    area: shapely.Geometry,
    crs: Any = None,
    cache_root: Path | None = None,
) -> OSMLayers:
    """Write the entry into a temporary folder, then rename it into place in one step; return
    `layers` in `crs` (themselves without one).

    Each layer keeps its read order and a bounding-box column (GeoParquet 1.1), in row groups of
    `ROW_GROUP_ROWS`: a read of a smaller area (`_rows_near`) skips the groups that miss it. With
    `crs` (the run's), the layers are projected while they are written (`_projected_beside`) and
    their geometries in it go beside (`WORKING_PREFIX`).

    Everything is written and deleted inside `cache_root` (default: `root`'s parent); an entry
    that is a symbolic link is replaced by the entry, the link removed and never followed.

    Raises
    ------
    OutputFolderError
        The cache cannot be written (disk full, permission denied, read-only); the message names
        the cache folder, and ``--cache-dir`` and ``--no-cache`` as the ways out.
    UnsafePathError
        A link would make it write outside the cache folder.
    """
    cache_root = Path(cache_root) if cache_root is not None else root.parent
    try:
        inside(cache_root, root, what="cache folder")
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            # the tags as they are: their canonical text (`walkcover.config.tags.tag_text`)
            files: list[Callable[[], object]] = [
                partial(
                    frame.to_parquet,
                    tmp / f"{name}.parquet",
                    index=False,
                    write_covering_bbox=True,
                    row_group_size=ROW_GROUP_ROWS,
                )
                for name, frame in (
                    ("streets", layers.streets),
                    ("features", _text_tags(layers.features)),
                )
            ]
            working = _projected_beside(tmp, layers, crs, files)
            meta = {
                "schema": CACHE_SCHEMA,
                "kind": kind,
                "source": layers.source,
                "data_date": layers.data_date,
                "created": time.time(),
                "family": family,
                "area_wkb": shapely.to_wkb(area, hex=True),
            }
            (tmp / "meta.json").write_text(json.dumps(meta))
            final = root / key
            if final.is_symlink():  # planted or damaged: the link goes, whatever it points at stays
                log.warning("cache entry %s is a symbolic link; replaced by a new entry", final)
                final.unlink()
            elif final.is_dir():
                shutil.rmtree(inside(cache_root, final, what="cache entry"))
            elif final.exists():  # a file in the entry's place
                inside(cache_root, final, what="cache entry").unlink()
            tmp.replace(inside(cache_root, final, what="cache entry"))
        finally:
            if tmp.exists() and not tmp.is_symlink():
                shutil.rmtree(inside(cache_root, tmp, what="cache entry"), ignore_errors=True)
    except UnsafePathError:
        raise
    except OSError as exc:
        raise _cache_write_error(exc, cache_root) from None
    return working


def _projected_beside(
    folder: Path, layers: OSMLayers, crs: Any, writes: list[Callable[[], object]]
) -> OSMLayers:
    """`layers` in `crs` (themselves without one), their geometries in it written into entry
    `folder` beside `writes` (the layers as read): on a city, each layer's projection and files
    on two threads in one queue (the streets projected while their file as read is written, the
    features' meanwhile), not all projections before all files. Each working file waits for its
    layer's projection, queued before it, so no thread waits for one not yet started. The first
    error is raised once every call has ended."""
    from concurrent.futures import ThreadPoolExecutor, wait

    if crs is None or len(layers.streets) + len(layers.features) < PROJECT_APART_ROWS:
        working = _projected(layers, crs)  # (a small area: one thread, as read)
        if crs is not None:
            writes = [*writes, *_working_writers(folder, working)]
        _write_side_by_side(writes)
        return working

    def working_file(name: str, layer: Future[gpd.GeoDataFrame]) -> None:
        (write,) = _working_writers(folder, {name: layer.result()})
        write()

    with ThreadPoolExecutor(max_workers=2) as pool:
        streets = pool.submit(layers.streets.to_crs, crs)
        futures = [streets, pool.submit(writes[0])]
        features = pool.submit(layers.features.to_crs, crs)
        futures += [features, *(pool.submit(w) for w in writes[1:])]
        futures.append(pool.submit(working_file, "features", features))
        futures.append(pool.submit(working_file, "streets", streets))
        wait(futures)
    for fut in futures:
        fut.result()
    return OSMLayers(streets.result(), features.result(), layers.source, layers.data_date)


def _cache_write_error(exc: OSError, cache_root: Path) -> OutputFolderError:
    """One line: the cache folder, why it cannot be written, and what to do."""
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    lower = text.lower()
    if exc.errno == errno.ENOSPC or "no space left" in lower or "disk full" in lower:
        why, fix = f"the disk is full ({text})", "free some space, "
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) or isinstance(exc, PermissionError):
        why, fix = f"it cannot be written ({text})", ""
    else:
        why, fix = f"writing it failed ({text})", ""
    return OutputFolderError(
        f"cache folder {str(cache_root)!r}: {why}; {fix}choose another with --cache-dir DIR, "
        "or pass --no-cache to read the source without caching it"
    )
