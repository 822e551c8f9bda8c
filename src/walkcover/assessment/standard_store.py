"""Measured standards kept in the cache: each standard's pass (its facilities, their snaps, every
node's and home's distance, the land figures, the homes' columns and notes) and each district's
part of its gaps and service areas, filed under what they were measured from, so that a rerun
measures only the standards whose inputs changed. The street contexts, the district indicators
and the homes on each denominator land, which depend on the study alone, are kept beside them.

A pass is a function of the study (the walk network, the OSM features, the homes and their
residents, the districts, the area read, the city's config and the standards file's shared
rules), of the standard itself, of a planner's imported facility list where the city takes one,
and of the code that measures. Each kept pass is filed under a SHA-256 of all of these
(`standard_key`; the study's part made once per run by `study_digest`): a planner who changes one
standard's radius, or imports one standard's facility list, has that standard measured again and
the others read back; a change to anything the study is made of, to the measuring code
(``assessment``, ``engine``, ``measures``, ``config``), to walkcover's version or to the libraries
that compute files every standard again. A district's part of a standard's layers is filed under
the pass's name, the district and where its service areas are measured (`layers_key`).

When the OSM layers are read from the cache, their entry names them (`layers_digest`), and the
walk network is named by what it is built from (`network_recipe`: those layers, its options and
the code) instead of by its 1.6 million edges: the study's digest is then made, and every kept
pass read and its tables decoded (`read_ahead`), while the network is built; each is checked
against the study once it is put together (`kept`).

Every file read back is checked, as the snap store checks its own (a SHA-256 of its contents
written inside it, then every array's type, shape and range against the study it is read for,
the facilities' standard); a file cut short, damaged or edited is measured again with a warning
and never crashes a run. Files are ``.npz`` without pickles (tables as Parquet), written under a
temporary name and renamed, inside the cache only; the least recently used go once the store
holds more than `STORE_MAX_BYTES`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj
import scipy
import shapely

from walkcover._errors import UnsafePathError
from walkcover.assessment.model import FACILITY_OUTPUT_COLUMNS, Note, StandardPass
from walkcover.assessment.study import MeasuredStandard, StudyState
from walkcover.config.standards import Standard, StandardSet, StreetContexts
from walkcover.config.study_area import City
from walkcover.engine import snap_store
from walkcover.engine.network import Network
from walkcover.engine.street_context import context_radii
from walkcover.measures.facility_files import imported_path
from walkcover.measures.gaps import GAP_COLUMNS, StandardLayers
from walkcover.measures.indicators import SUMMARY_COLUMNS
from walkcover.sources.cache import source_sha256

log = logging.getLogger(__name__)

#: Bump when what a kept file holds changes meaning (its files are then never read again).
STORE_VERSION = 1
#: The folder of the cache the measured standards are kept in.
STORE_FOLDER = "standards"
#: The store's size beyond which the least recently used files go: L's nine standards take about
#: 0.15 GB per study.
STORE_MAX_BYTES = 2 * 2**30
#: The packages whose code a pass runs: any change to them files every standard again.
MEASURING_PACKAGES = ("assessment", "engine", "measures", "config")

_SUFFIX = ".npz"
_T = TypeVar("_T")
_SNAP_ARRAYS = ("item", "edge", "lo_m", "hi_m", "leg_m", "unsnapped")
_FRAMES = ("facilities", "counted", "access", "columns")


class _DamageError(Exception):
    """What is wrong with a kept file."""


@functools.cache
def _code_digest() -> bytes:
    """`snap_store.code_digest` of a pass: every module of the measuring packages, and the
    libraries whose arithmetic, geometry and tables a pass uses."""
    root = Path(__file__).resolve().parent.parent
    modules = sorted(
        str(p.relative_to(root)) for pkg in MEASURING_PACKAGES for p in (root / pkg).glob("*.py")
    )
    return snap_store.code_digest(
        f"standard store {STORE_VERSION}",
        (
            f"numpy {np.__version__}",
            f"scipy {scipy.__version__}",
            f"shapely {shapely.__version__}",
            f"GEOS {shapely.geos_version_string}",
            f"pandas {pd.__version__}",
            f"geopandas {gpd.__version__}",
            f"pyarrow {pa.__version__}",
            f"pyproj {pyproj.__version__}",
            f"PROJ {pyproj.proj_version_str}",
        ),
        root,
        modules,
    )


def features_digest(features: gpd.GeoDataFrame) -> bytes:
    """SHA-256 of the OSM features a study reads (every row's geometry and tags): made while the
    walk network is built (0.6 s on L's 550,000 features)."""
    h = hashlib.sha256(b"features")
    snap_store.hash_frame(h, features)
    return h.digest()


def study_digest(
    *,
    network: bytes,
    features: bytes,
    streets: gpd.GeoDataFrame,
    demand: pd.DataFrame,
    d_proj: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    extent: shapely.Geometry,
    crs: pyproj.CRS,
    city: City,
    rules: StandardSet,
) -> bytes:
    """SHA-256 of everything a standard's pass reads of a study besides its own standard and
    facilities: the code, the `network` (its `network_digest`: edges' geometries, ends,
    lengths and tags, the nodes' OSM ids; or what it is built from), the `features` (their
    `features_digest`), the `streets` the safe route treats as barriers, the homes and their
    residents (`demand`), the districts, the study's extent, the city's config and the
    standards file's shared rules. Made from the parts of `StudyState`, so that a run can make
    it before the study is put together (`network_recipe`)."""
    h = hashlib.sha256(_code_digest())
    h.update(network)
    h.update(features)
    # the streets of the barrier classes, which the safe route reads (motorways and trunks that
    # are no part of the walk network)
    snap_store.hash_frame(h, streets)
    snap_store.hash_frame(h, demand)
    snap_store.hash_frame(h, d_proj)
    snap_store.hash_frame(h, districts)
    h.update(shapely.to_wkb(extent))
    h.update(crs.to_wkt().encode())
    h.update(city.id.encode())
    h.update(city.config.model_dump_json().encode())
    h.update(rules.model_dump_json(exclude={"standards"}).encode())
    return h.digest()


def network_recipe(layers: bytes, *, walk_highways: Sequence[str], min_island_m: float) -> bytes:
    """What a run's walk network is built from, when its OSM layers are named by where they
    were read (`layers_digest`): those layers (the streets, and the features its locked gates
    are found in), the street classes walked, the islands dropped and the measuring code
    (``Network.recipe``). The network is then named by it (`network_digest`,
    `snap_store.network_digest`) before it is built, and its 1.6 million edges are not hashed."""
    h = hashlib.sha256(_code_digest())
    h.update(b"walk network")
    h.update(layers)
    h.update(json.dumps([str(c) for c in walk_highways]).encode())
    h.update(float(min_island_m).hex().encode())
    return h.digest()


def recipe_digest(recipe: bytes) -> bytes:
    """`network_digest` of a network built from `recipe` (`network_recipe`), without it."""
    return hashlib.sha256(snap_store.recipe_digest(recipe)).digest()


def network_digest(network: Network) -> bytes:
    """SHA-256 of all a pass reads of `network`: its edges (geometries, `snap_store.
    network_digest`, and every other column: ends, lengths, tags), which are snappable and its
    nodes' OSM ids; for a network that knows what it was built from (``Network.recipe``), its
    `recipe_digest`. Made once per network (0.5 s on L, while the residents are read)."""

    def make() -> bytes:
        if network.recipe is not None:
            return recipe_digest(network.recipe)
        h = hashlib.sha256(snap_store.network_digest(network))
        edges = network.edges
        snap_store.hash_frame(h, pd.DataFrame(edges.drop(columns=edges.geometry.name)))
        h.update(np.ascontiguousarray(network.node_osm_ids).tobytes())
        return h.digest()

    return snap_store.made_once(network, "_pass_digest", make)


def standard_key(digest: bytes, std: Standard, *, limit_m: float, city: City) -> str:
    """The name `std`'s pass over a study (its `study_digest`) is filed under: the study, the
    standard, its search limit `limit_m` and, where `city` takes its facilities from a
    planner's imported list, that list's bytes (OSM's candidates are the study's features: in
    its digest)."""
    h = hashlib.sha256(digest)
    h.update(std.model_dump_json().encode())
    h.update(float(limit_m).hex().encode())
    source = city.config.facilities.get(std.id)
    if source is not None and source.source != "osm":
        try:
            with imported_path(city.id, std.id).open("rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
        except FileNotFoundError:
            h.update(b"nothing imported")
    return h.hexdigest()


def _root(study: StudyState) -> Path | None:
    """The cache a run keeps its passes in, or None."""
    root = study.network.store_dir
    return None if root is None or study.digest is None else Path(root)


def _file(root: Path, key: str, kind: str) -> Path:
    """The file `key` of `kind` (``pass``, ``layers``, ``figures``, ``contexts``, ``residents``)
    is filed at."""
    return Path(root) / STORE_FOLDER / f"{key}.{kind}{_SUFFIX}"


#: What `_load` reads of a kept file: its arrays, its manifest and what `decode` made of them.
Loaded = tuple[dict[str, np.ndarray], dict[str, Any], Any]
#: What `_load` and `_read` take a file's contents to be damaged by.
_DAMAGE = (
    _DamageError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    shapely.errors.GEOSException,
)


def _load(
    root: Path,
    key: str,
    kind: str,
    *,
    again: str,
    decode: Callable[[dict[str, np.ndarray], dict[str, Any]], Any] | None = None,
) -> Loaded | None:
    """The arrays and manifest filed as `key` of `kind`, once their SHA-256 and the name and
    version they are filed under are checked, with what `decode` makes of them (the work of
    reading that needs nothing of the study: its tables); None when nothing is filed, or the
    file is damaged (said, naming what is done `again`)."""
    path = _file(root, key, kind)
    try:
        arrays = snap_store.read_npz(Path(root), path, what="standard store folder")
    except FileNotFoundError:
        return None
    except Exception as exc:  # whatever a damaged or planted file raises
        log.warning("standard store: %s cannot be read (%s); %s again", path.name, exc, again)
        return None
    try:
        checksum = arrays.get("sha256")
        if (
            checksum is None
            or checksum.shape != (32,)
            or not np.array_equal(checksum, _checksum(arrays))
        ):
            raise _DamageError("its checksum does not match its contents")
        meta = json.loads(arrays["meta"].tobytes())
        if not isinstance(meta, dict) or (meta.get("version"), meta.get("key")) != (
            STORE_VERSION,
            key,
        ):
            raise _DamageError("it is filed under another name or version")
        decoded = None if decode is None else decode(arrays, meta)
    except _DAMAGE as exc:
        log.warning("standard store: %s is damaged (%s); %s again", path.name, exc, again)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: `prune` keeps it longest
    return arrays, meta, decoded


def _read(
    root: Path,
    key: str,
    kind: str,
    unpack: Callable[[dict[str, np.ndarray], dict[str, Any]], _T],
    *,
    again: str,
) -> _T | None:
    """What `unpack` makes of the arrays and manifest filed as `key` of `kind` (`_load`); None
    when nothing is filed, or the file is damaged (said, naming what is done `again`). `unpack`
    raises `_DamageError` (or a `KeyError`, `TypeError`, `ValueError` of what it reads) on
    anything else wrong."""
    loaded = _load(root, key, kind, again=again)
    return None if loaded is None else _unpack(root, key, kind, loaded[:2], unpack, again=again)


def _unpack(
    root: Path,
    key: str,
    kind: str,
    loaded: tuple[Any, ...],
    unpack: Callable[..., _T],
    *,
    again: str,
) -> _T | None:
    """``unpack(*loaded)``, or None when it finds the file `key` of `kind` damaged (said)."""
    try:
        return unpack(*loaded)
    except _DAMAGE as exc:
        name = _file(root, key, kind).name
        log.warning("standard store: %s is damaged (%s); %s again", name, exc, again)
        return None


def _read_study(
    study: StudyState,
    key: str,
    kind: str,
    unpack: Callable[[dict[str, np.ndarray], dict[str, Any]], _T],
) -> _T | None:
    """`_read` of a file of what a run measures (a pass, a district's layers, a figure), in the
    cache `study` keeps them in; None when it keeps none."""
    root = _root(study)
    return None if root is None else _read(root, key, kind, unpack, again="measuring")


def _write(
    root: Path, key: str, kind: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """File `arrays` with manifest `meta` (and the name, the version and a SHA-256 of them all)
    as `key` of `kind`; a failure loses the store, never the run (said once per cache)."""
    manifest = {"version": STORE_VERSION, "key": key, **meta}
    arrays = {**arrays, "meta": np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)}
    arrays["sha256"] = _checksum(arrays)
    path = _file(root, key, kind)
    try:
        snap_store.write_npz(Path(root), path, arrays, what="standard store folder")
    except (OSError, UnsafePathError) as exc:
        snap_store.warn_once(
            log,
            f"standards {root}",
            "standard store: could not keep %s (%s); the next run makes it again",
            path,
            exc,
        )


def read_ahead(root: Path, key: str, *, crs: pyproj.CRS) -> Loaded | None:
    """The pass filed under `key`, read and its tables decoded (in `crs`), but not yet checked
    against the study (`kept` does, with the study put together): a run reads its passes while
    it builds the walk network. None when none is filed (or the one filed is damaged: said)."""
    return _read_of_standard(root, key, "pass", crs=crs)


def kept(study: StudyState, std: Standard, key: str) -> MeasuredStandard | None:
    """`std`'s pass filed under `key` (`standard_key`), checked against `study`; None when none
    is filed (or the one filed is damaged: said, and measured again). Read now, unless the run
    read it ahead (``study.read_ahead``, `read_ahead`)."""
    return _kept_of_standard(study, std, key, "pass")


def _read_of_standard(root: Path, key: str, kind: str, *, crs: pyproj.CRS) -> Loaded | None:
    """The file `key` of a standard's `kind` (``pass``, ``layers``: `_OF_STANDARD`), read and
    its tables decoded in `crs`, not yet checked against the study."""
    decode, _ = _OF_STANDARD[kind]
    return _load(root, key, kind, again="measuring", decode=partial(decode, crs=crs))


def _kept_of_standard(study: StudyState, std: Standard, key: str, kind: str) -> Any:
    """What the file `key` of `std`'s `kind` (`_OF_STANDARD`) holds, checked against `study`
    (`_kept_file`: read ahead, or read now); None when none is filed or it is damaged."""
    decode, unpack = _OF_STANDARD[kind]
    return _kept_file(
        study,
        key,
        kind,
        partial(decode, crs=study.crs),
        lambda arrays, meta, decoded: unpack(arrays, meta, decoded, study, std),
    )


def _kept_file(
    study: StudyState,
    key: str,
    kind: str,
    decode: Callable[[dict[str, np.ndarray], dict[str, Any]], Any],
    unpack: Callable[[dict[str, np.ndarray], dict[str, Any], Any], _T],
) -> _T | None:
    """What `unpack` makes of the file `key` of `kind` (its arrays, manifest and what `decode`
    made of them), taken from those the run read ahead (``study.read_ahead``) or read now; None
    when the run keeps no store, none is filed, or the one filed is damaged (said)."""
    root = _root(study)
    if root is None:
        return None
    if key in study.read_ahead:
        loaded = study.read_ahead.pop(key)
    else:
        loaded = _load(root, key, kind, again="measuring", decode=decode)
    if loaded is None:
        return None
    return _unpack(root, key, kind, loaded, unpack, again="measuring")


def keep(study: StudyState, std: Standard, key: str, measured: MeasuredStandard) -> None:
    """File `measured` under `key`."""
    root = _root(study)
    if root is None:
        return
    try:
        arrays, meta = _packed(measured)
    except (pa.ArrowException, TypeError, ValueError) as exc:  # a column Parquet cannot hold
        log.debug("standard store: %s is not kept (%s)", std.id, exc)
        return
    _write(root, key, "pass", arrays, meta)


def prune(root: Path) -> int:
    """`snap_store.prune` of this store: its least recently used files past `STORE_MAX_BYTES`."""
    return snap_store.prune(
        root, folder=STORE_FOLDER, suffixes=(_SUFFIX,), max_bytes=STORE_MAX_BYTES
    )


def _frame_bytes(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, list[list[int]]]]:
    """`frame` as Parquet bytes, and for each column of objects the rows that hold NaN, those
    that hold None and those that hold ``pd.NA`` (Parquet reads all three back alike, and text
    columns as text), and, when its other values are all integers (which a column with
    missing values reads back as floats), the rows of those."""
    missing = {}
    for name in frame.columns:
        if frame[name].dtype == object:
            values = frame[name].to_numpy()
            nan = [i for i, v in enumerate(values) if isinstance(v, float) and math.isnan(v)]
            none = [i for i, v in enumerate(values) if v is None]
            na = [i for i, v in enumerate(values) if v is pd.NA]
            ints = [i for i, v in enumerate(values) if type(v) is int]
            held = len(values) - len(nan) - len(none) - len(na)
            if (nan or none or na) and any(abs(values[i]) > 2**53 for i in ints):
                # (read back as floats, which would not hold them: not kept)
                raise ValueError(f"column {name!r} holds integers beyond 2**53")
            missing[str(name)] = [nan, none, na, ints if ints and len(ints) == held else []]
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8), missing


def _frame(blob: np.ndarray, missing: dict[str, list[list[int]]], *, crs: Any) -> pd.DataFrame:
    """The frame `_frame_bytes` packed (a GeoDataFrame in `crs` when `crs` is given): its
    columns of objects objects again, with NaN, None and ``pd.NA`` where they were, and
    integers where they were."""
    buf = io.BytesIO(blob.tobytes())
    frame = (
        pd.read_parquet(buf)
        if crs is None
        else gpd.read_parquet(buf).set_crs(crs, allow_override=True)
    )
    for name, listed in missing.items():
        if name not in frame.columns or name == getattr(frame, "_geometry_column_name", None):
            raise _DamageError(f"missing values listed for {name!r}, which is not a column")
        if not isinstance(listed, list) or len(listed) != 4:
            raise _DamageError(f"the missing values of {name!r} are not listed as written")
        for rows in listed:
            if not isinstance(rows, list) or any(
                not isinstance(r, int) or not 0 <= r < len(frame) for r in rows
            ):
                raise _DamageError(f"missing values of {name!r} run outside the frame")
        nan, none, na, ints = listed
        values = frame[name].to_numpy(dtype=object, copy=True)
        if ints:
            whole = values[np.asarray(ints, dtype=np.int64)]
            if not all(isinstance(v, (int, float)) and float(v).is_integer() for v in whole):
                raise _DamageError(f"the integers of {name!r} are not whole numbers")
            values[np.asarray(ints, dtype=np.int64)] = [int(v) for v in whole]
        values[np.asarray(nan, dtype=np.int64)] = np.nan
        values[np.asarray(none, dtype=np.int64)] = None
        values[np.asarray(na, dtype=np.int64)] = pd.NA
        frame[name] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def _packed(m: MeasuredStandard) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    p = m.passed
    extension = [c for c, v in m.columns.items() if not isinstance(v, np.ndarray)]
    frames = {
        "facilities": m.facilities,
        "counted": p.counted,
        "access": gpd.GeoDataFrame(geometry=p.access),
        "columns": pd.DataFrame(m.columns),
    }
    arrays: dict[str, np.ndarray] = {}
    missing = {}
    for name, frame in frames.items():
        arrays[f"frame_{name}"], missing[name] = _frame_bytes(frame)
    meta = {
        "limit_m": float(p.limit_m).hex(),
        "n_items": int(p.snaps.n_items),
        "access_name": p.access.name,
        "columns": list(m.columns),
        "extension_columns": extension,
        "missing": missing,
        "notes": [[n.text, n.district, n.standard, n.kind] for n in m.notes],
        "areas": {d: {k: float(v).hex() for k, v in f.items()} for d, f in m.areas.items()},
        "edge_cover": m.edge_cover is not None,
    }
    arrays["node_dist"] = np.ascontiguousarray(p.node_dist, dtype=np.float64)
    arrays["nearest"] = np.ascontiguousarray(p.nearest, dtype=np.int64)
    if m.edge_cover is not None:
        arrays["edge_cover"] = np.ascontiguousarray(m.edge_cover, dtype=np.float64)
    for name in _SNAP_ARRAYS:
        want = np.float64 if name.endswith("_m") else np.int64
        arrays[f"snap_{name}"] = np.ascontiguousarray(getattr(p.snaps, name), dtype=want)
    return arrays, meta


def _checksum(arrays: dict[str, np.ndarray]) -> np.ndarray:
    h = hashlib.sha256()
    for name in sorted(a for a in arrays if a != "sha256"):
        a = arrays[name]
        h.update(repr((name, str(a.dtype), a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


def _pass_frames(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], *, crs: pyproj.CRS
) -> dict[str, pd.DataFrame]:
    """A kept pass's tables (`_FRAMES`), decoded: those with geometries in `crs`."""
    return {
        name: _frame(
            arrays[f"frame_{name}"], meta["missing"][name], crs=None if name == "columns" else crs
        )
        for name in _FRAMES
    }


def _unpacked(
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    study: StudyState,
    std: Standard,
) -> MeasuredStandard:
    """The pass `arrays` and `frames` (`_pass_frames`) hold, checked against `study`."""
    from walkcover.engine.coverage import Snaps

    n_homes, n_nodes = len(study.demand), study.network.n_nodes
    n_edges = len(study.network.edges)
    node_dist = _array(arrays, "node_dist", np.float64, n_nodes)
    # (each home's nearest facility, or none: an assessment built without them)
    nearest = _array(arrays, "nearest", np.int64, n_homes if len(arrays["nearest"]) else 0)
    snap_arrays = {
        name: arrays[f"snap_{name}"] for name in _SNAP_ARRAYS if f"snap_{name}" in arrays
    }
    n_items = int(meta["n_items"])
    fac, counted, access_frame, columns = (frames[n] for n in _FRAMES)
    if not set(FACILITY_OUTPUT_COLUMNS) <= set(fac.columns) or (
        len(fac) and not (fac["standard"] == std.id).all()
    ):
        raise _DamageError("its facilities are not facilities of this standard")
    if int(fac["counts"].sum()) != len(counted):
        raise _DamageError("it counts other facilities than it holds")
    access = access_frame.geometry.rename(meta["access_name"])
    if n_items != len(access):
        raise _DamageError(f"it snaps {n_items} access points for {len(access)}")
    owner = access.index.to_numpy()
    if len(owner) and (owner.min() < 0 or owner.max() >= len(counted)):
        raise _DamageError("its access points belong to facilities it does not hold")
    if len(nearest) and (nearest.min() < -1 or nearest.max() >= len(counted)):
        raise _DamageError("its homes' nearest facilities run outside those it holds")
    problem = snap_store.snaps_damage(snap_arrays, n_items=n_items, n_edges=n_edges)
    if problem:
        raise _DamageError(f"its snaps: {problem}")
    if list(columns.columns) != meta["columns"] or len(columns) != n_homes:
        raise _DamageError("its homes' columns are not one per home")
    edge_cover = _array(arrays, "edge_cover", np.float64, n_edges) if meta["edge_cover"] else None
    notes = [_note(n) for n in meta["notes"]]
    areas = {
        str(d): {str(k): float.fromhex(v) for k, v in f.items()} for d, f in meta["areas"].items()
    }
    limit_m = float.fromhex(meta["limit_m"])
    kept_columns = {
        c: (columns[c].array if c in meta["extension_columns"] else columns[c].to_numpy())
        for c in meta["columns"]
    }
    passed = StandardPass(
        counted,
        access,
        Snaps(n_items=n_items, **snap_arrays),
        node_dist,
        limit_m,
        nearest,
        edge_radii=(
            context_radii(std, study.context)
            if study.context is not None and std.context_thresholds_m
            else None
        ),
    )
    return MeasuredStandard(
        facilities=fac,
        passed=passed,
        edge_cover=edge_cover,
        areas=areas,
        columns=kept_columns,
        notes=notes,
    )


def _array(arrays: dict[str, np.ndarray], name: str, dtype: type, n: int) -> np.ndarray:
    a = arrays[name]
    if a.dtype != dtype or a.shape != (n,):
        raise _DamageError(
            f"{name} is a {a.dtype} array of shape {a.shape}, not {n} {np.dtype(dtype)}"
        )
    return a


def _note(fields: Any) -> Note:
    text, district, standard, kind = fields
    if not isinstance(text, str) or not isinstance(kind, str):
        raise _DamageError("a note is not text")
    for v in (district, standard):
        if v is not None and not isinstance(v, str):
            raise _DamageError("a note's district or standard is not text")
    return Note(text, district=district, standard=standard, kind=kind)


def layers_key(standard_key: str, district_id: str, extent: shapely.Geometry | None) -> str:
    """The name one district's part of a standard's layers (`gaps.StandardLayers`) is filed
    under: the standard's pass (`standard_key`, which covers the study and the code), the
    district and where its service areas are measured (`gaps.service_extent`, which the
    other standards' grounds may grow)."""
    h = hashlib.sha256(b"district layers")
    h.update(standard_key.encode())
    h.update(repr(str(district_id)).encode())
    h.update(b"none" if extent is None else shapely.to_wkb(extent))
    return h.hexdigest()


def kept_layers(study: StudyState, std: Standard, key: str) -> StandardLayers | None:
    """The part of `std`'s layers in a district filed under `key` (`layers_key`, which names the
    district), checked; None when none is filed (or the one filed is damaged: said, and
    measured again). Read now, unless the run read it ahead (`read_ahead_layers`)."""
    found: StandardLayers | None = _kept_of_standard(study, std, key, "layers")
    return found


def read_ahead_layers(root: Path, key: str, *, crs: pyproj.CRS) -> Loaded | None:
    """A district's part of a standard's layers filed under `key`, read and its gaps decoded
    (in `crs`), to be checked by `kept_layers`; None when none is filed (or it is damaged)."""
    return _read_of_standard(root, key, "layers", crs=crs)


def _layers_frame(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], *, crs: pyproj.CRS
) -> pd.DataFrame:
    """A kept part's gaps, decoded (in `crs`)."""
    return _frame(arrays["frame_gaps"], meta["missing"], crs=crs)


def keep_layers(study: StudyState, key: str, layers: StandardLayers) -> None:
    """File one district's part of a standard's layers under `key` (`layers_key`)."""
    root = _root(study)
    if root is None:
        return
    try:
        frame, missing = _frame_bytes(layers.gaps)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        log.debug("standard store: layers %s are not kept (%s)", key, exc)
        return
    row = layers.service_area
    meta = {
        "standard": row["standard"],
        "threshold_m": float(row["threshold_m"]).hex(),
        "area_m2": float(row["area_m2"]).hex(),
        "missing": missing,
    }
    arrays = {
        "frame_gaps": frame,
        "area_wkb": np.frombuffer(shapely.to_wkb(row["geometry"]), dtype=np.uint8),
    }
    _write(root, key, "layers", arrays, meta)


def _unpacked_layers(
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    gaps: pd.DataFrame,
    study: StudyState,
    std: Standard,
) -> StandardLayers:
    if meta["standard"] != std.id:
        raise _DamageError("it holds another standard's layers")
    area = shapely.from_wkb(arrays["area_wkb"].tobytes())
    threshold_m, area_m2 = float.fromhex(meta["threshold_m"]), float.fromhex(meta["area_m2"])
    if list(gaps.columns) != GAP_COLUMNS:
        raise _DamageError("its gaps have other columns")
    if len(gaps) and not (gaps["standard"] == std.id).all():
        raise _DamageError("its gaps are another standard's")
    if shapely.get_type_id(area) not in (3, 6) or threshold_m != std.threshold_m:
        raise _DamageError("its service area is not an area of this standard")
    if not math.isfinite(area_m2):
        raise _DamageError("its service area's size is not a number")
    row = {"standard": std.id, "threshold_m": threshold_m, "area_m2": area_m2, "geometry": area}
    return StandardLayers(gaps, row)


#: A standard's kinds of kept file: how each decodes its tables (in a CRS) and how it is checked
#: against the study and the standard (`_kept_of_standard`, `_read_of_standard`).
_OF_STANDARD: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "pass": (_pass_frames, _unpacked),
    "layers": (_layers_frame, _unpacked_layers),
}


def run_key(digest: bytes, keys: Sequence[str]) -> str:
    """The name the figures of a run over all its standards are filed under (`keep_run`): the
    study (its `study_digest`) and every standard's pass (`standard_key`), in the run's order."""
    h = hashlib.sha256(b"run figures")
    h.update(digest)
    h.update(json.dumps([str(k) for k in keys]).encode())
    return h.hexdigest()


#: What `kept_run` gives: the summary table, the notes the summary made (in order) and, per
#: district, where its service areas are measured (`gaps.service_extent`).
RunFigures = tuple[pd.DataFrame, list[Note], dict[str, shapely.Geometry | None]]


def keep_run(
    study: StudyState,
    key: str,
    *,
    summary: pd.DataFrame,
    notes: Sequence[Note],
    extents: dict[str, shapely.Geometry | None],
) -> None:
    """File the figures a run makes of all its standards at once under `key` (`run_key`): its
    `summary` table and the `notes` made with it, and its districts' service `extents` (which
    depend on every standard's reach: no one standard's pass can hold them). The extents are
    also filed as the study's last (`last_extents`)."""
    root = _root(study)
    if root is None:
        return
    arrays, meta = _extents_packed(extents)
    assert study.digest is not None
    _write(root, _last_extents_key(study.digest), "extents", arrays, meta)
    try:
        frame, missing = _frame_bytes(summary)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        log.debug("standard store: the run's figures are not kept (%s)", exc)
        return
    arrays["frame_summary"] = frame
    meta["missing"] = missing
    meta["notes"] = [[n.text, n.district, n.standard, n.kind] for n in notes]
    _write(root, key, "run", arrays, meta)


def _extents_packed(
    extents: dict[str, shapely.Geometry | None],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The districts' service `extents` as a kept file's arrays and manifest."""
    ids = [str(d) for d in extents]
    arrays = {}
    for i, d in enumerate(ids):
        if extents[d] is not None:
            arrays[f"extent_{i}"] = np.frombuffer(shapely.to_wkb(extents[d]), dtype=np.uint8)
    return arrays, {"districts": ids, "extents": [extents[d] is not None for d in ids]}


def _last_extents_key(digest: bytes) -> str:
    """The name a study's last measured service extents are filed under (`last_extents`)."""
    h = hashlib.sha256(b"last service extents")
    h.update(digest)
    return h.hexdigest()


def last_extents(root: Path, digest: bytes) -> dict[str, shapely.Geometry | None] | None:
    """Where the last run of the study named `digest` measured each district's service areas
    (`gaps.service_extent`), filed by `keep_run`: a run whose figures are not filed (one
    standard changed) reads the layers filed under them ahead, which it takes only where its
    own extents are the same (a layers part is named by its extent: `layers_key`). None when
    none are filed (or they are damaged: said)."""
    loaded = _load(
        root, _last_extents_key(digest), "extents", again="measuring", decode=_extents_decoded
    )
    return None if loaded is None else loaded[2]


def read_ahead_run(root: Path, key: str) -> Loaded | None:
    """The run's figures filed under `key` (`run_key`), read and decoded, to be checked by
    `kept_run`; None when none are filed (or they are damaged: said)."""
    return _load(root, key, "run", again="measuring", decode=_run_decoded)


def _run_decoded(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> RunFigures:
    summary = _frame(arrays["frame_summary"], meta["missing"], crs=None)
    notes = [_note(n) for n in meta["notes"]]
    return summary, notes, _extents_decoded(arrays, meta)


def _extents_decoded(
    arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> dict[str, shapely.Geometry | None]:
    ids, has = meta["districts"], meta["extents"]
    if not isinstance(ids, list) or not isinstance(has, list) or len(ids) != len(has):
        raise _DamageError("its extents are not one per district")
    extents: dict[str, shapely.Geometry | None] = {}
    for i, (d, there) in enumerate(zip(ids, has, strict=True)):
        if not isinstance(d, str) or not isinstance(there, bool):
            raise _DamageError("its districts are not named")
        g = shapely.from_wkb(arrays[f"extent_{i}"].tobytes()) if there else None
        if g is not None and (
            shapely.get_type_id(g) not in (3, 6) or g.is_empty or not shapely.is_valid(g)
        ):
            raise _DamageError(f"the extent of {d!r} is not an area")
        extents[d] = g
    return extents


def kept_run(study: StudyState, key: str, standards: Sequence[Standard]) -> RunFigures | None:
    """The run's figures filed under `key` (`run_key`), checked against `study` and its
    `standards`; None when none are filed (or they are damaged: said, and measured again)."""
    return _kept_file(
        study,
        key,
        "run",
        _run_decoded,
        lambda arrays, meta, figures: _checked_run(figures, study, standards),
    )


def _checked_run(
    figures: RunFigures, study: StudyState, standards: Sequence[Standard]
) -> RunFigures:
    summary, notes, extents = figures
    ids = [str(d) for d in study.districts["district_id"]]
    if list(extents) != ids:
        raise _DamageError("its extents are not of the study's districts")
    if list(summary.columns) != SUMMARY_COLUMNS:
        raise _DamageError("its summary has other columns")
    if len(summary) != len(ids) * len(standards):
        raise _DamageError("its summary is not one row per district and standard")
    if not set(map(str, summary["district_id"])) <= set(ids) or not set(
        map(str, summary["standard"])
    ) <= {s.id for s in standards}:
        raise _DamageError("its summary is not of the study's districts and standards")
    return summary, notes, extents


def figures_key(study: StudyState, what: str) -> str:
    """The name a figure of the whole study (not of one standard: the district indicators, the
    homes on each denominator land) is filed under: the study's digest and `what` it is."""
    assert study.digest is not None
    h = hashlib.sha256(b"study figures")
    h.update(study.digest)
    h.update(what.encode())
    return h.hexdigest()


def kept_figures(
    study: StudyState, what: str
) -> tuple[pd.DataFrame | None, dict[str, np.ndarray]] | None:
    """The figure `what` of `study` (a table by districts, or one boolean per home for each
    name) as filed by `keep_figures`, checked; None when none is filed (or the one filed is
    damaged: said, and measured again)."""
    if study.digest is None:
        return None
    return _read_study(
        study,
        figures_key(study, what),
        "figures",
        lambda arrays, meta: _unpacked_figures(arrays, meta, study),
    )


def keep_figures(
    study: StudyState,
    what: str,
    *,
    table: pd.DataFrame | None = None,
    homes: dict[str, np.ndarray] | None = None,
) -> None:
    """File figure `what` of `study`: a `table` by districts, or per name one boolean per home."""
    root = _root(study)
    if root is None:
        return
    arrays: dict[str, np.ndarray] = {}
    missing: dict[str, list[list[int]]] = {}
    try:
        if table is not None:
            arrays["frame_table"], missing = _frame_bytes(table)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        log.debug("standard store: %s is not kept (%s)", what, exc)
        return
    names = sorted(homes or {})
    for i, name in enumerate(names):
        arrays[f"homes_{i}"] = np.ascontiguousarray((homes or {})[name], dtype=bool)
    _write(root, figures_key(study, what), "figures", arrays, {"homes": names, "missing": missing})


def _unpacked_figures(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], study: StudyState
) -> tuple[pd.DataFrame | None, dict[str, np.ndarray]]:
    table = None
    if "frame_table" in arrays:
        table = _frame(arrays["frame_table"], meta["missing"], crs=None)
        ids = set(map(str, study.districts["district_id"]))
        if "district_id" not in table or not set(map(str, table["district_id"])) <= ids:
            raise _DamageError("its table is not of the study's districts")
    homes = {
        str(name): _array(arrays, f"homes_{i}", np.bool_, len(study.demand))
        for i, name in enumerate(meta["homes"])
    }
    return table, homes


def contexts_key(network: Network, features: bytes, rules: StreetContexts) -> str:
    """The name the street contexts of `network`'s edges (`street_context.classify_edges`) are
    filed under: the code, the edges (geometries, ``highway`` and ``footway`` tags), the
    features they are classified by (their `features_digest`) and the standards file's
    ``street_contexts``."""
    h = hashlib.sha256(_code_digest())
    h.update(b"street contexts")
    h.update(snap_store.network_digest(network))
    if network.recipe is None:  # (else its tags are in what it is built from)
        e = network.edges
        snap_store.hash_frame(h, pd.DataFrame({c: e[c] for c in ("highway", "footway") if c in e}))
    h.update(features)
    h.update(rules.model_dump_json().encode())
    return h.hexdigest()


def kept_contexts(network: Network, key: str) -> np.ndarray | None:
    """The street contexts filed under `key` (`contexts_key`), one per edge of `network`,
    checked; None when none are filed (or those filed are damaged: said, and classified again)."""
    if network.store_dir is None:
        return None

    def unpack(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> np.ndarray:
        names = meta["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _DamageError("its contexts' names are not text")
        codes = _array(arrays, "codes", np.uint8, len(network.edges))
        if len(codes) and int(codes.max()) >= len(names):
            raise _DamageError("its codes run past its names")
        return np.asarray(names, dtype=object)[codes]

    return _read(Path(network.store_dir), key, "contexts", unpack, again="classifying")


def keep_contexts(network: Network, key: str, context: np.ndarray) -> None:
    """File the street contexts of `network`'s edges under `key` (`contexts_key`)."""
    if network.store_dir is None:
        return
    names, codes = np.unique(np.asarray(context, dtype=object).astype(str), return_inverse=True)
    if len(names) > 255:
        return
    _write(
        Path(network.store_dir), key, "contexts", {"codes": codes.astype(np.uint8)},
        {"names": [str(n) for n in names]},
    )  # fmt: skip


#: What `population.homes_and_residents` gives: the homes, their demand models, the population
#: model, the buildings' completeness, the residential land and the notes.
Residents = tuple[gpd.GeoDataFrame, dict[str, str], str, pd.DataFrame, shapely.Geometry, list[Note]]


def residents_key(
    city: Any,
    features: bytes,
    d_proj: gpd.GeoDataFrame,
    rules: StandardSet,
    population_raster: str | Path | None,
    cache_dir: Path,
) -> str:
    """The name a study's homes and residents (`population.homes_and_residents`) are filed
    under: the code, the features (their `features_digest`), the districts, the city's config,
    the standards file's land rules, and the bytes of the totals file and the population raster
    the config or the run names."""
    h = hashlib.sha256(_code_digest())
    h.update(b"residents")
    h.update(features)
    snap_store.hash_frame(h, d_proj)
    h.update(city.id.encode())
    h.update(city.config.model_dump_json().encode())
    h.update(rules.land.model_dump_json().encode())
    pcfg = city.config.population
    files = [
        city.resolve(pcfg.totals.path) if pcfg.totals is not None else None,
        Path(population_raster)
        if population_raster
        else (city.resolve(pcfg.raster) if pcfg.raster else None),
    ]
    for path in files:
        if path is None:
            h.update(b"no file")
            continue
        try:
            h.update(source_sha256(Path(path), cache_dir=cache_dir).encode())
        except OSError:
            h.update(b"unreadable")  # (the estimate says what is wrong with it)
    return h.hexdigest()


def kept_residents(root: Path, key: str, d_proj: gpd.GeoDataFrame) -> Residents | None:
    """The homes and residents filed under `key` (`residents_key`), checked; None when none are
    filed (or those filed are damaged: said, and estimated again)."""

    def unpack(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Residents:
        demand = _frame(arrays["frame_demand"], meta["missing"]["demand"], crs=d_proj.crs)
        completeness = _frame(
            arrays["frame_completeness"], meta["missing"]["completeness"], crs=None
        )
        land = shapely.from_wkb(arrays["land_wkb"].tobytes())
        ids = set(map(str, d_proj["district_id"]))
        for frame in (demand, completeness):
            if "district_id" not in frame or not set(map(str, frame["district_id"])) <= ids:
                raise _DamageError("its homes are not of the study's districts")
        if "residents" not in demand:
            raise _DamageError("its homes have no residents")
        models = {str(k): str(v) for k, v in dict(meta["models"]).items()}
        notes = [_note(n) for n in meta["notes"]]
        pop_model = meta["population_model"]
        if not isinstance(pop_model, str):
            raise _DamageError("its population model is not text")
        return demand, models, pop_model, completeness, land, notes

    return _read(root, key, "residents", unpack, again="estimating")


def keep_residents(root: Path, key: str, residents: Residents) -> None:
    """File a study's homes and residents under `key` (`residents_key`)."""
    demand, models, pop_model, completeness, land, notes = residents
    arrays: dict[str, np.ndarray] = {}
    missing = {}
    try:
        arrays["frame_demand"], missing["demand"] = _frame_bytes(demand)
        arrays["frame_completeness"], missing["completeness"] = _frame_bytes(completeness)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        log.debug("standard store: residents are not kept (%s)", exc)
        return
    arrays["land_wkb"] = np.frombuffer(shapely.to_wkb(land), dtype=np.uint8)
    meta = {
        "missing": missing,
        "models": models,
        "population_model": pop_model,
        "notes": [[n.text, n.district, n.standard, n.kind] for n in notes],
    }
    _write(root, key, "residents", arrays, meta)


def layers_digest(osm: str, crs: Any) -> bytes:
    """What the features of OSM layers read from the cache are (their `OSMLayers.digest`,
    `osm`), in the run's `crs`: instead of `features_digest`, at no cost."""
    h = hashlib.sha256(b"features of cached layers")
    h.update(osm.encode())
    h.update(pyproj.CRS.from_user_input(crs).to_wkt().encode())
    return h.digest()
