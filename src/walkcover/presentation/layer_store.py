"""Layers kept in the cache: a district's ``streets`` layer, written once into a GeoPackage of its
own and copied into the district's ``coverage.gpkg`` by every run after, filed under what it is
made of.

A district's streets layer is the walkable ways in its box (`layers.streets_box`), one line per
OSM way, with its class: a function of the network's edges (their geometries, ids and classes),
the box and the code that writes it, and nothing a standard measures. It is the largest layer of a
city's GeoPackages (on L two thirds of jinshui's 101 MB) and about 40 % of their writing, and a
planner's rerun after changing a threshold, a facility list or nothing writes it again as it was.
With a cache, the first run writes each district's streets into ``<cache>/layers/<key>.gpkg``
(`streets_key`: a SHA-256 of all it depends on) and the file of the run starts as a copy of it;
a run after copies it (a tenth of a second for jinshui) and adds the other layers. A change to
any street, to the box (a new search limit) or to the writing code files a new one.

Every kept file is copied through a check: its size and a SHA-256 of its bytes, written in a
manifest beside it (``<key>.json``, which also says what the layer holds: its columns, geometry
type and bounds). A file cut short, damaged or edited by hand is written again, with a warning,
and never crashes a run; kept files are read without following links and written under a
temporary name and renamed, inside the cache only. (Like the snaps and parsed layers beside
them, a kept file is trusted when the checksum its own manifest holds vouches for it.) A cache
that cannot be written costs the store, never the run: the layer is then written as without a
cache. The least recently used files go once the store passes `STORE_MAX_BYTES` (`prune`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from walkcover._atomic import TMP_PREFIX
from walkcover._errors import UnsafePathError
from walkcover._paths import inside, open_file
from walkcover.engine import snap_store
from walkcover.presentation.geopackage import Kept, Layer, Written, write_layer
from walkcover.presentation.layers import streets_box, streets_layer

if TYPE_CHECKING:
    from walkcover.assessment import Assessment
    from walkcover.engine.network import Network

log = logging.getLogger(__name__)

#: Bump when what a kept file holds changes meaning (its files are then never read again).
STORE_VERSION = 1
#: The folder of the cache the layers are kept in.
STORE_FOLDER = "layers"
#: The store's size, beyond which the least recently used files go (`prune`): L's twelve
#: districts keep about 0.25 GB per network and set of search limits.
STORE_MAX_BYTES = 2 * 2**30
#: Bytes copied (and hashed) at a time.
COPY_CHUNK_BYTES = 4 * 2**20

_GPKG = ".gpkg"
_MANIFEST = ".json"
#: A manifest is a few hundred bytes: anything much larger is not one of ours.
_MANIFEST_MAX_BYTES = 65_536
_GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "Unknown"}
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A column's or a standard's name as walkcover writes them (and nothing a style could misread).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: Packed streets are a few megabytes at most (jinshui's, on L: 0.9 MB): a larger file is not ours.
_PACKED_MAX_BYTES = 256 * 2**20


@functools.cache
def _code_digest() -> bytes:
    """`snap_store.code_digest` of the kept layers: the modules that make, pack, project and
    write them, and the libraries that write their bytes (GDAL and its SQLite, pyogrio,
    pyarrow, shapely's WKB, numpy, pandas) and project them (pyproj, PROJ)."""
    import pyarrow as pa
    import pyogrio
    import shapely

    return snap_store.code_digest(
        f"layer store {STORE_VERSION}",
        (
            f"GDAL {pyogrio.__gdal_version_string__}",
            f"pyogrio {pyogrio.__version__}",
            f"pyarrow {pa.__version__}",
            f"shapely {shapely.__version__}",
            f"GEOS {shapely.geos_version_string}",
            f"numpy {np.__version__}",
            f"pandas {pd.__version__}",
            f"pyproj {pyproj.__version__}",
            f"PROJ {pyproj.proj_version_str}",
        ),
        Path(__file__).resolve().parent,
        # (the packed geometries are taken to longitude and latitude by `config.crs`)
        (
            "layers.py",
            "geopackage.py",
            "layer_store.py",
            "maps.py",
            "web_map.py",
            "../config/crs.py",
        ),
    )


def _tags_digest(network: Network) -> bytes:
    """SHA-256 of the edges' ``osm_id`` and ``highway`` (what the streets layer shows besides
    the geometries `snap_store.network_digest` hashes), made once per network (0.02 s on L)."""

    def make() -> bytes:
        e = network.edges
        h = hashlib.sha256(np.int64(len(e)).tobytes())
        for col in ("osm_id", "highway"):
            h.update(col.encode())
            if col in e:
                snap_store.hash_text(h, e[col])
            else:
                h.update(b"absent")
        return h.digest()

    return snap_store.made_once(network, "_tags_digest", make)


def warm(network: Network) -> None:
    """Make the network's digests now (before a writer process is forked: made once, shared)."""
    if network.store_dir is not None:
        snap_store.network_digest(network)
        _tags_digest(network)


def streets_key(network: Network, box: tuple[float, float, float, float]) -> str:
    """The name the ``streets`` layer of `network`'s ways in `box` is kept under."""
    h = hashlib.sha256(_code_digest())
    h.update(snap_store.network_digest(network))
    h.update(_tags_digest(network))
    crs = network.edges.crs
    h.update(crs.to_wkt().encode() if crs is not None else b"no crs")
    h.update(repr(tuple(float(v).hex() for v in box)).encode())
    return h.hexdigest()


def packed_streets(
    network: Network,
    box: tuple[float, float, float, float],
    options: tuple[float, ...],
    make: Callable[[], dict[str, Any] | None],
) -> dict[str, Any] | None:
    """The district map's street lines in `box` packed for its script (what ``make()`` makes:
    `web_map.pack_geometry`'s dict, or None for no streets), kept in the cache when `network` has
    one, under the box, the drawing `options` (numbers) and everything the streets layer's key
    holds. Read back, a kept dict is checked to be one `pack_geometry` makes of lines (its counts
    and vertices base64 text, its origin and step finite numbers); it reaches the page through
    `walkcover._escape.js_value` like one just made."""
    if network.store_dir is None:
        return make()
    h = hashlib.sha256(bytes.fromhex(streets_key(network, box)))
    h.update(b"packed streets")
    h.update(repr(tuple(float(o).hex() for o in options)).encode())
    return _packed(Path(network.store_dir), h.hexdigest(), ("line",), "streets", make)


def packed_homes(
    network: Network,
    geoms: np.ndarray,
    crs: Any,
    options: tuple[float, ...],
    make: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """A district map's homes packed for its script (what ``make()`` makes of `geoms`:
    `web_map.pack_geometry`'s dict of their footprints), kept in the cache beside the streets
    when `network` has one, under the footprints themselves (their WKB), their `crs`, the
    drawing `options` (numbers) and the writing code: a rerun after changing a standard draws
    the same homes (on L, a third of a second of drawing a large district). Checked as
    `packed_streets`' are, as polygons (or points)."""
    if network.store_dir is None:
        return make()
    h = hashlib.sha256(_code_digest())
    h.update(b"packed homes")
    h.update(pyproj.CRS.from_user_input(crs).to_wkt().encode())
    h.update(repr(tuple(float(o).hex() for o in options)).encode())
    items = np.asarray(geoms, dtype=object)
    h.update(np.int64(len(items)).tobytes())
    snap_store.hash_wkb(h, items)
    found = _packed(Path(network.store_dir), h.hexdigest(), ("polygon", "point"), "homes", make)
    assert found is not None  # (`make` makes a dict)
    return found


def _packed(
    root: Path,
    key: str,
    kinds: tuple[str, ...],
    what: str,
    make: Callable[[], dict[str, Any] | None],
) -> dict[str, Any] | None:
    """``make()``, kept under `key` in the store at `root` and read back from there (checked
    to be `pack_geometry`'s dict of one of `kinds`, or None): `what` it draws names it."""
    path = root / STORE_FOLDER / f"{key}{_MANIFEST}"
    found = _read_packed(root, path, kinds, what)
    if found is not None:
        return found["packed"]
    packed = make()
    try:
        _keep_json(root, path, {"version": STORE_VERSION, "packed": packed})
    except (OSError, UnsafePathError) as exc:
        snap_store.warn_once(
            log,
            f"layers {root}",
            "layer store: could not keep %s (%s); the next run draws it again",
            path,
            exc,
        )
    return packed


_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
#: The text of `pack_geometry`'s dict per kind: every kind's vertices, and the counts of lines'
#: and polygons' parts, rings and vertices.
_PACKED_TEXT = {
    "point": ("xy",),
    "line": ("xy", "verts", "rings", "parts"),
    "polygon": ("xy", "verts", "rings", "parts"),
}


def _read_packed(
    root: Path, path: Path, kinds: tuple[str, ...], what: str
) -> dict[str, Any] | None:
    """The kept packed geometries at `path` (one of `kinds`), checked; None when there are none
    or they are damaged (said, naming `what` is drawn again)."""
    try:
        inside(root, path.parent, what="layer store folder")
        with os.fdopen(open_file(path), "rb") as fh:
            raw = fh.read(_PACKED_MAX_BYTES + 1)
        if len(raw) > _PACKED_MAX_BYTES:
            raise ValueError(f"it holds more than {_PACKED_MAX_BYTES} bytes")
        facts = json.loads(raw)
    except FileNotFoundError:
        return None
    except Exception as exc:  # whatever a damaged or planted file raises
        log.warning(
            "layer store: %s cannot be read (%s); drawing its %s again", path.name, exc, what
        )
        return None
    problem = _packed_damage(facts, kinds)
    if problem:
        log.warning(
            "layer store: %s is damaged (%s); drawing its %s again", path.name, problem, what
        )
        return None
    with contextlib.suppress(OSError):
        os.utime(path, follow_symlinks=False)
    return facts


def _packed_damage(facts: Any, kinds: tuple[str, ...] = ("line",)) -> str | None:
    """What is wrong with kept packed geometries of one of `kinds`, or None."""
    if not isinstance(facts, dict) or set(facts) != {"version", "packed"}:
        return "it is not a file of packed geometries"
    if facts["version"] != STORE_VERSION:
        return f"it is of version {facts['version']!r}"
    packed = facts["packed"]
    if packed is None:
        return None if kinds == ("line",) else "it holds nothing"
    kind = packed.get("kind") if isinstance(packed, dict) else None
    if kind not in kinds:
        return f"its geometries are of kind {kind!r}, not {' or '.join(kinds)}"
    text = _PACKED_TEXT[kind]
    if set(packed) != {"kind", "origin", "step", *text}:
        return f"its geometries are not packed {kind}s"
    numbers = [*packed["origin"], packed["step"]] if isinstance(packed["origin"], list) else []
    if len(numbers) != 3 or not all(isinstance(v, float) and math.isfinite(v) for v in numbers):
        return "its origin and step are not finite numbers"
    for name in text:
        if not isinstance(packed[name], str) or not _BASE64.fullmatch(packed[name]):
            return f"its {name} are not base64 text"
    return None


def _keep_json(root: Path, path: Path, facts: dict[str, Any]) -> None:
    """Write `facts` as JSON at `path`, under a temporary name in the store, then renamed."""
    folder = inside(root, path.parent, what="layer store folder")
    folder.mkdir(parents=True, exist_ok=True)
    inside(root, folder, what="layer store folder")  # (made, or found, not a link out)
    fd, side = tempfile.mkstemp(prefix=f"{TMP_PREFIX}layer-", suffix=_MANIFEST, dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(facts, fh, allow_nan=False)
        Path(side).replace(folder / path.name)
    except BaseException:
        Path(side).unlink(missing_ok=True)
        raise


def streets_kept(assessment: Assessment, district_geom) -> bool:
    """Whether the district's ``streets`` layer is kept in the cache (its file and manifest are
    there: they are checked when copied)."""
    network = assessment.network
    if network.store_dir is None:
        return False
    key = streets_key(network, streets_box(assessment, district_geom))
    folder = Path(network.store_dir) / STORE_FOLDER
    return (folder / f"{key}{_GPKG}").is_file() and (folder / f"{key}{_MANIFEST}").is_file()


def kept_streets(assessment: Assessment, district_geom) -> Kept:
    """The district's ``streets`` layer (`layers.streets_layer`) as `geopackage.write_layers`
    takes it: the first layer of the file, kept in the cache when the run's network has one
    (``Network.store_dir``). With a cache or without, the file starts as that layer alone, so
    that both write the same bytes."""
    network = assessment.network

    def make() -> Iterator[gpd.GeoDataFrame]:
        return streets_layer(assessment, district_geom)

    if network.store_dir is None:
        return Kept(lambda tmp: write_layer(tmp, "streets", make(), first=True))
    key = streets_key(network, streets_box(assessment, district_geom))
    return kept(Path(network.store_dir), key, "streets", make, crs=network.edges.crs)


def kept(root: Path, key: str, name: str, make: Callable[[], Layer], *, crs: Any) -> Kept:
    """Layer `name`, which ``make()`` makes (a frame or its parts, in `crs`), kept in cache
    `root` under `key`: a `geopackage.Kept` whose file starts as a checked copy of the kept
    GeoPackage, written first if need be."""
    return Kept(functools.partial(_start, Path(root), key, name, make, crs))


def _start(
    root: Path, key: str, name: str, make: Callable[[], Layer], crs: Any, tmp: Path
) -> Written:
    """Make GeoPackage `tmp` holding layer `name` alone, as a copy of its kept file (written
    first if there is none, or a damaged one); what it holds."""
    folder = root / STORE_FOLDER
    gpkg, manifest = folder / f"{key}{_GPKG}", folder / f"{key}{_MANIFEST}"
    for attempt in ("kept", "made"):
        facts = _read_manifest(root, manifest, name)
        if facts is not None:
            problem = _copy_checked(root, gpkg, tmp, facts)
            if problem is None:
                for path in (gpkg, manifest):  # recently used: `prune` keeps it longest
                    with contextlib.suppress(OSError):
                        os.utime(path, follow_symlinks=False)
                return _written(facts, crs)
            _discard(tmp)
            log.warning("layer store: %s %s; writing it again", gpkg.name, problem)
        if attempt == "made":
            break
        try:
            _keep(root, gpkg, manifest, name, make)
        except (OSError, UnsafePathError) as exc:  # a full disk, a read-only cache or a planted
            # link loses the store, never the run; said once per cache
            snap_store.warn_once(
                log,
                f"layers {root}",
                "layer store: could not keep %s (%s); the next run writes it again",
                gpkg,
                exc,
            )
            break
    return write_layer(tmp, name, make(), first=True)


def _written(facts: dict[str, Any], crs: Any) -> Written:
    bounds = facts["bounds"]
    return Written(
        tuple(facts["columns"]),
        tuple(facts["standards"]),
        facts["geometry_type"],
        None if bounds is None else (bounds[0], bounds[1], bounds[2], bounds[3]),
        crs,
    )


def _read_manifest(root: Path, path: Path, name: str) -> dict[str, Any] | None:
    """The manifest at `path`, checked; None when there is none or it is not one of ours."""
    try:
        inside(root, path.parent, what="layer store folder")
        with os.fdopen(open_file(path), "rb") as fh:
            raw = fh.read(_MANIFEST_MAX_BYTES + 1)
        facts = json.loads(raw) if len(raw) <= _MANIFEST_MAX_BYTES else None
    except FileNotFoundError:
        return None
    except Exception as exc:  # whatever a damaged or planted file raises
        log.warning("layer store: %s cannot be read (%s); writing its layer again", path.name, exc)
        return None
    problem = _manifest_damage(facts, name)
    if problem:
        log.warning("layer store: %s is damaged (%s); writing its layer again", path.name, problem)
        return None
    return facts


def _manifest_damage(facts: Any, name: str) -> str | None:
    """What is wrong with a manifest's contents, or None."""
    keys = {
        "version",
        "layer",
        "bytes",
        "sha256",
        "columns",
        "standards",
        "geometry_type",
        "bounds",
    }
    if not isinstance(facts, dict) or set(facts) != keys:
        return "it is not a manifest of a kept layer"
    if facts["version"] != STORE_VERSION or facts["layer"] != name:
        return f"it is of layer {facts['layer']!r}, version {facts['version']!r}"
    size, digest = facts["bytes"], facts["sha256"]
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return f"its size {size!r} is not a positive whole number"
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        return "its checksum is not a SHA-256"
    for field in ("columns", "standards"):
        value = facts[field]
        if not isinstance(value, list) or not all(
            isinstance(v, str) and _NAME.fullmatch(v) for v in value
        ):
            return f"its {field} are not a list of names"
    if facts["geometry_type"] not in _GEOMETRY_TYPES:
        return f"its geometry type {facts['geometry_type']!r} is not one walkcover writes"
    bounds = facts["bounds"]
    if bounds is not None and not (
        isinstance(bounds, list)
        and len(bounds) == 4
        and all(isinstance(v, float) and math.isfinite(v) for v in bounds)
    ):
        return "its bounds are not four finite numbers"
    return None


def _copy_checked(root: Path, src: Path, tmp: Path, facts: dict[str, Any]) -> str | None:
    """Copy kept file `src` to `tmp` (a new file), hashing it on the way; what is wrong with it,
    or None."""
    try:
        inside(root, src.parent, what="layer store folder")
        fd = open_file(src)
    except FileNotFoundError:
        return "is missing"
    except (OSError, UnsafePathError) as exc:
        return f"cannot be read ({exc})"
    h = hashlib.sha256()
    copied = 0
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            return "is not a file"
        if st.st_size != facts["bytes"]:
            return f"holds {st.st_size} bytes, not {facts['bytes']}"
        try:
            with tmp.open("xb") as out:
                while chunk := fh.read(COPY_CHUNK_BYTES):
                    h.update(chunk)
                    out.write(chunk)
                    copied += len(chunk)
        except OSError as exc:  # a disk error in either file: written instead (or failing there)
            return f"cannot be copied ({exc})"
    if copied != facts["bytes"] or h.hexdigest() != facts["sha256"]:
        return "does not match its checksum"
    return None


def _keep(root: Path, gpkg: Path, manifest: Path, name: str, make: Callable[[], Layer]) -> None:
    """Write layer `name` into the kept file `gpkg` and its `manifest`: each under a temporary
    name in the store, then renamed (the file first: a manifest never names a file not yet
    there). Not synced to disk: a file cut short by a power cut fails its checksum and is
    written again."""
    folder = inside(root, gpkg.parent, what="layer store folder")
    folder.mkdir(parents=True, exist_ok=True)
    inside(root, folder, what="layer store folder")  # (made, or found, not a link out)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}layer-", suffix=_GPKG, dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # GDAL makes the file itself
    try:
        written = write_layer(tmp, name, make(), first=True)
        h = hashlib.sha256()
        with tmp.open("rb") as fh:
            while chunk := fh.read(COPY_CHUNK_BYTES):
                h.update(chunk)
        facts = {
            "version": STORE_VERSION,
            "layer": name,
            "bytes": tmp.stat().st_size,
            "sha256": h.hexdigest(),
            "columns": list(written.columns),
            "standards": list(written.standards),
            "geometry_type": written.geometry_type,
            "bounds": None if written.bounds is None else [float(v) for v in written.bounds],
        }
        # (a name planted as a link is replaced by the rename, never followed)
        tmp.replace(folder / gpkg.name)
        _keep_json(root, manifest, facts)
    finally:
        _discard(tmp)


def _discard(path: Path) -> None:
    """Remove `path` and what SQLite leaves beside a file GDAL was writing."""
    for leftover in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
        leftover.unlink(missing_ok=True)


def prune(root: Path, *, max_bytes: int = STORE_MAX_BYTES) -> int:
    """Remove the least recently used kept layers until the store holds at most `max_bytes`
    (`snap_store.prune`); the number of files removed."""
    return snap_store.prune(
        root, folder=STORE_FOLDER, suffixes=(_GPKG, _MANIFEST), max_bytes=max_bytes
    )
