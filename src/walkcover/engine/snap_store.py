"""Snaps kept in the cache: a run's snaps of homes, land cells, lattice corners and facilities,
filed under what they were made of, so that a run again over the same streets (a planner's rerun
after changing a threshold, a facility list or nothing) snaps nothing it has snapped before.

A snap is a function of the network's edges (their geometries, which of them people's doors open
onto), the items snapped (their coordinates, or their geometries to the last bit), the snap
options and the code that snaps. Each stored set of snaps is filed under a SHA-256 of all of
these (`snap_key`), so a set is only ever taken for the same snaps, and any change to the code
of the engine's snapping (``coverage.py``, ``network.py``, this module), to walkcover's version,
to the libraries that compute them (numpy, scipy, shapely, GEOS) or to the machine's kind files
new ones. On L a rerun's CPU falls from 72–79 s to 50–55 s, its snapping
replaced by half a second of reading.

Every file read back is checked (its arrays' names, shapes, types and ranges, and a SHA-256 of
their bytes written inside it) and snapped again, with a warning, when anything is wrong: a file
cut short by a crash, damaged on disk or edited by hand costs a snap and never crashes a run nor
sends it outside its arrays. (Like the parsed layers beside it, the store trusts what its own
checksum vouches for: whoever can rewrite the cache whole can rewrite the layers too.) Files are
written under a temporary name and renamed, inside the cache only; the least recently used go
once the store holds more than `STORE_MAX_BYTES` (`prune`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy
import shapely

from walkcover._atomic import TMP_PREFIX
from walkcover._errors import UnsafePathError
from walkcover._paths import inside, open_file
from walkcover._version import __version__

if TYPE_CHECKING:
    from walkcover.engine.coverage import Snaps
    from walkcover.engine.network import Network

log = logging.getLogger(__name__)

#: Bump when what a stored file holds changes meaning (its files are then never read again).
STORE_VERSION = 1
#: The folder of the cache the snaps are kept in.
STORE_FOLDER = "snaps"
#: Calls snapping fewer items than this are not stored: a file costs more than their snap.
STORE_MIN_ITEMS = 1_000
#: The store's size, beyond which the least recently used files go (`prune`): a city of L's
#: size keeps about 0.3 GB per network and set of districts.
STORE_MAX_BYTES = 4 * 2**30
#: A temporary file older than this was left by a run that died: `prune` removes it.
STALE_TMP_S = 3600.0
#: Edges hashed at a time for the network's digest (their WKB exists a chunk at a time).
DIGEST_CHUNK_EDGES = 131_072

_ARRAYS = ("item", "edge", "lo_m", "hi_m", "leg_m", "unsnapped")
_INTS = ("item", "edge", "unsnapped")
_SUFFIX = ".npz"
#: Held while a network's digest is made (`made_once`; one may be made of another).
_DIGEST_LOCK = threading.RLock()
#: The stores (and their caches) that could not be written, said once each (`warn_once`).
_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()


def code_digest(store: str, versions: Iterable[str], folder: Path, modules: Iterable[str]) -> bytes:
    """What a store's files depend on of the code that made them: the `store`'s name and
    version, walkcover's version, the `versions` of the libraries that compute them, the
    machine's kind (a cache shared by machines of another architecture may round differently)
    and the source of the `modules` in `folder`."""
    h = hashlib.sha256(f"walkcover {__version__} {store}".encode())
    h.update(" ".join((*versions, platform.machine(), sys.byteorder)).encode())
    for name in modules:
        try:
            h.update(name.encode() + (folder / name).read_bytes())
        except OSError:  # an installation without sources (a frozen build): the version decides
            h.update(name.encode())
    return h.digest()


@functools.cache
def _code_digest() -> bytes:
    """`code_digest` of the snaps: the modules that snap, and the libraries that compute them
    (GEOS's distances and nearest searches, numpy's and scipy's arithmetic)."""
    return code_digest(
        f"snap store {STORE_VERSION}",
        (
            f"numpy {np.__version__}",
            f"scipy {scipy.__version__}",
            f"shapely {shapely.__version__}",
            f"GEOS {shapely.geos_version_string}",
        ),
        Path(__file__).resolve().parent,
        ("coverage.py", "network.py", "snap_store.py"),
    )


def made_once(network: Network, name: str, make: Callable[[], bytes]) -> bytes:
    """`make()`, made once per network and kept on it as `name`: a digest two threads ask for at
    once is made once (the stores' digests of a network use it)."""
    cached: bytes | None = network.__dict__.get(name)
    if cached is not None:
        return cached
    with _DIGEST_LOCK:
        cached = network.__dict__.get(name)
        if cached is None:
            cached = make()
            network.__dict__[name] = cached
    return cached


def network_digest(network: Network) -> bytes:
    """SHA-256 of what a snap reads of `network`: every edge's geometry (to the last bit), their
    number and which of them are snappable. Made once per network (0.2 s on L, 0.5 s while
    the residents are read beside it). A network that knows what it was built from
    (``Network.recipe``: its layers, options and code) is named by that instead."""

    def make() -> bytes:
        if network.recipe is not None:
            return recipe_digest(network.recipe)
        geoms = network.edges.geometry.to_numpy()
        h = hashlib.sha256(np.int64(len(geoms)).tobytes())
        for s in range(0, len(geoms), DIGEST_CHUNK_EDGES):
            _hash_edges(h, geoms[s : s + DIGEST_CHUNK_EDGES])
        h.update(np.asarray(network.snappable, dtype=np.int64).tobytes())
        return h.digest()

    return made_once(network, "_snap_digest", make)


def recipe_digest(recipe: bytes) -> bytes:
    """`network_digest` of a network built from `recipe` (``Network.recipe``), without it."""
    return hashlib.sha256(b"network recipe " + recipe).digest()


def _hash_edges(h: hashlib._Hash, geoms: np.ndarray) -> None:
    """Add edge geometries to `h`: plain 2-D linestrings (what the readers make) by their
    vertices, each line's vertex count and a tag for the kind (a tenth of the time of their WKB),
    anything else by its WKB."""
    if len(geoms) and (shapely.get_type_id(geoms) == 1).all() and not shapely.has_z(geoms).any():
        xy, owner = shapely.get_coordinates(geoms, return_index=True)
        h.update(b"lines")
        h.update(np.bincount(owner, minlength=len(geoms)).astype(np.int64).tobytes())
        h.update(np.ascontiguousarray(xy).tobytes())
    else:
        h.update(b"wkb")
        hash_wkb(h, geoms)


def hash_wkb(h: hashlib._Hash, geoms: np.ndarray) -> None:
    """Add `geoms` to `h`: each one's WKB and its length (-1 for a missing geometry)."""
    wkb = shapely.to_wkb(geoms)
    size = np.fromiter((-1 if b is None else len(b) for b in wkb), dtype=np.int64, count=len(wkb))
    h.update(size.tobytes())
    h.update(b"".join(b for b in wkb if b is not None))


def hash_text(h: hashlib._Hash, column: pd.Series) -> None:
    """Add a column of text to `h`: each value's length in bytes (-1 for a missing one), then
    their UTF-8 bytes end to end. Arrow-backed text is read from its buffers (no Python string
    per value); anything else through its values."""
    values = column.array
    chunks = None
    if hasattr(values, "__arrow_array__"):
        arrow = pa.array(values)
        parts = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
        if all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in parts):
            chunks = parts
    if chunks is None:
        text = [
            "" if v is None or v is pd.NA or v != v else str(v) for v in column.to_numpy(object)
        ]
        missing = column.isna().to_numpy()
        size = np.fromiter((len(t.encode("utf-8", "surrogatepass")) for t in text), np.int64)
        h.update(np.where(missing, -1, size).astype(np.int64).tobytes())
        h.update("".join(text).encode("utf-8", "surrogatepass"))
        return
    # the lengths of every chunk, then their text: the same bytes however the column is chunked
    # (a column parsed a row group at a time, or read back whole), and as the values' own
    sizes: list[np.ndarray] = []
    blobs: list[memoryview] = []
    for c in chunks:
        kind = np.int64 if pa.types.is_large_string(c.type) else np.int32
        _, offsets_buf, data_buf = c.buffers()
        n = len(c)
        if n == 0:
            continue
        offsets = np.frombuffer(offsets_buf, dtype=kind)[c.offset : c.offset + n + 1]
        size = np.diff(offsets).astype(np.int64)
        if c.null_count:
            size[np.asarray(c.is_null())] = -1
        sizes.append(size)
        blobs.append(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])])
    h.update(np.concatenate(sizes).tobytes() if sizes else b"")
    for blob in blobs:
        h.update(blob)


def hash_frame(h: hashlib._Hash, frame: pd.DataFrame) -> None:
    """Add a whole frame to `h`: its length, index, and each column's name, type and values
    (geometries by their WKB, text by `hash_text`, numbers and booleans by their bytes, anything
    else by each value's type and repr). Two frames that hash alike hold the same values."""
    h.update(np.int64(len(frame)).tobytes())
    index = frame.index
    if isinstance(index, pd.RangeIndex):
        h.update(repr(("range", index.start, index.stop, index.step)).encode())
    else:
        h.update(b"index")
        _hash_column(h, pd.Series(index, copy=False))
    for name in frame.columns:
        h.update(repr(str(name)).encode())
        _hash_column(h, frame[name])


def _hash_column(h: hashlib._Hash, column: pd.Series) -> None:
    dtype = column.dtype
    if dtype == "geometry":
        h.update(b"geometry")
        hash_wkb(h, np.asarray(column.to_numpy(), dtype=object))
    elif isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        h.update(str(dtype).encode())
        h.update(np.ascontiguousarray(column.to_numpy()).tobytes())
    elif pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        # text alike whether held as objects or as Arrow (a layer parsed, or read back)
        h.update(b"text")
        hash_text(h, column)
    else:  # mixed objects, categories, nullable integers: each value's type and repr
        h.update(b"values")
        h.update(np.int64(len(column)).tobytes())
        for v in column.to_numpy(dtype=object):
            h.update(f"{type(v).__name__}:{v!r}".encode("utf-8", "surrogatepass") + b"\x00")


def snap_key(
    network: Network, kind: str, options: tuple[float | bool, ...], items: np.ndarray
) -> str:
    """The name the snaps of `items` (an ``(n, 2)`` float array of coordinates, or an array of
    geometries) on `network` with `options` are filed under."""
    h = hashlib.sha256(_code_digest())
    h.update(network_digest(network))
    h.update(kind.encode())
    h.update(repr(tuple(float(o).hex() for o in options)).encode())
    if items.dtype == object:
        h.update(np.int64(len(items)).tobytes())
        hash_wkb(h, items)
    else:
        xy = np.ascontiguousarray(items, dtype=np.float64)
        h.update(np.asarray(xy.shape, dtype=np.int64).tobytes())
        h.update(xy.tobytes())
    return h.hexdigest()


def stored(
    network: Network,
    kind: str,
    options: tuple[float | bool, ...],
    items: np.ndarray,
    make: Callable[[], Snaps],
) -> Snaps:
    """The snaps `make` makes of `items`, from the store when `network` has one
    (``Network.store_dir``) and they are filed there, else made and filed."""
    root = network.store_dir
    n = len(items)
    if root is None or n < STORE_MIN_ITEMS:
        return make()
    key = snap_key(network, kind, options, items)
    path = Path(root) / STORE_FOLDER / f"{key}{_SUFFIX}"
    found = _read(Path(root), path, n_items=n, n_edges=len(network.edges))
    if found is not None:
        return found
    snaps = _normalized(make())
    try:
        _write(Path(root), path, snaps)
    except (OSError, UnsafePathError) as exc:  # a full disk, a read-only cache or a planted
        # link loses the store, never the run; said once per cache (a run files dozens)
        warn_once(
            log,
            f"snaps {root}",
            "snap store: could not keep %s (%s); the next run snaps these again",
            path,
            exc,
        )
    return snaps


def warn_once(logger: logging.Logger, key: str, message: str, *args: object) -> None:
    """`message` as a warning the first time `key` (a store and its cache) says it in this
    process, then as a debug note: a cache that cannot be written is said once, not once per
    file."""
    with _WARNED_LOCK:
        first = key not in _WARNED
        _WARNED.add(key)
    (logger.warning if first else logger.debug)(message, *args)


def _normalized(snaps: Snaps) -> Snaps:
    """`snaps` with the array types a stored file holds (int64 positions, float64 metres): a run
    that snaps and one that reads the store hold the same arrays."""
    return _snaps(
        {
            name: np.asarray(getattr(snaps, name), dtype=np.int64 if name in _INTS else np.float64)
            for name in _ARRAYS
        },
        int(snaps.n_items),
    )


def _snaps(arrays: dict[str, np.ndarray], n_items: int) -> Snaps:
    from walkcover.engine.coverage import Snaps

    return Snaps(
        item=arrays["item"],
        edge=arrays["edge"],
        lo_m=arrays["lo_m"],
        hi_m=arrays["hi_m"],
        leg_m=arrays["leg_m"],
        unsnapped=arrays["unsnapped"],
        n_items=n_items,
    )


def _checksum(arrays: dict[str, np.ndarray], n_items: int) -> np.ndarray:
    h = hashlib.sha256(np.int64(n_items).tobytes())
    for name in _ARRAYS:
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


def _read(root: Path, path: Path, *, n_items: int, n_edges: int) -> Snaps | None:
    """The snaps filed at `path`, checked; None when there are none or they are damaged."""
    try:
        contents = read_npz(root, path, what="snap store folder")
        arrays = {name: contents[name] for name in _ARRAYS}
        count, checksum = contents["n_items"], contents["sha256"]
    except FileNotFoundError:
        return None
    except Exception as exc:  # whatever a damaged or planted file raises
        log.warning("snap store: %s cannot be read (%s); snapping again", path.name, exc)
        return None
    problem = _damage(arrays, count, checksum, n_items=n_items, n_edges=n_edges)
    if problem:
        log.warning("snap store: %s is damaged (%s); snapping again", path.name, problem)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: `prune` keeps it longest
    return _snaps(arrays, n_items)


def read_npz(root: Path, path: Path, *, what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at `path` in store folder `what` of cache `root`: never
    read through a link planted in the store (``O_NOFOLLOW``), never waited on as a FIFO planted
    there (`walkcover._paths.open_file`), never unpickled, and closed
    whatever numpy's reader raises on a damaged file.

    Raises
    ------
    FileNotFoundError
        Nothing is filed at `path`.
    """
    inside(root, path.parent, what=what)
    with (
        os.fdopen(open_file(path), "rb") as fh,
        np.load(fh, allow_pickle=False) as z,
    ):
        return {name: z[name] for name in z.files}


def _damage(
    arrays: dict[str, np.ndarray],
    count: np.ndarray,
    checksum: np.ndarray,
    *,
    n_items: int,
    n_edges: int,
) -> str | None:
    """What is wrong with a stored file's arrays, or None."""
    if count.shape != () or count.dtype != np.int64 or int(count) != n_items:
        return f"it holds snaps of {count!r} items, not {n_items}"
    problem = snaps_damage(arrays, n_items=n_items, n_edges=n_edges)
    if problem:
        return problem
    if checksum.shape != (32,) or not np.array_equal(checksum, _checksum(arrays, n_items)):
        return "its checksum does not match its contents"
    return None


def snaps_damage(arrays: dict[str, np.ndarray], *, n_items: int, n_edges: int) -> str | None:
    """What is wrong with the arrays of snaps of `n_items` items on a network of `n_edges` edges
    read back from a file (`Snaps`' fields by name: their types, lengths and ranges), or None."""
    missing = [name for name in _ARRAYS if name not in arrays]
    if missing:
        return f"it lacks {', '.join(missing)}"
    for name in _ARRAYS:
        a = arrays[name]
        want = np.int64 if name in _INTS else np.float64
        if a.ndim != 1 or a.dtype != want:
            return f"{name} is a {a.dtype} array of shape {a.shape}, not a 1-D {np.dtype(want)}"
    rows = len(arrays["item"])
    if any(len(arrays[name]) != rows for name in ("edge", "lo_m", "hi_m", "leg_m")):
        return "its columns differ in length"
    if rows + len(arrays["unsnapped"]) < n_items:
        return "some items are neither snapped nor unsnapped"
    for name, top in (("item", n_items), ("unsnapped", n_items), ("edge", n_edges)):
        a = arrays[name]
        if len(a) and (a.min() < 0 or a.max() >= top):
            return f"{name} runs outside 0 … {top - 1}"
    for name in ("lo_m", "hi_m", "leg_m"):
        if not np.isfinite(arrays[name]).all():
            return f"{name} is not finite throughout"
    return None


def _write(root: Path, path: Path, snaps: Snaps) -> None:
    """File `snaps` at `path` (`write_npz`). Not synced to disk: a file cut short by a power cut
    fails its checksum and is made again."""
    arrays = {name: np.ascontiguousarray(getattr(snaps, name)) for name in _ARRAYS}
    contents: dict[str, np.ndarray] = {
        **arrays,
        "n_items": np.asarray(snaps.n_items, dtype=np.int64),
        "sha256": _checksum(arrays, snaps.n_items),
    }
    write_npz(root, path, contents, what="snap store folder")


def write_npz(root: Path, path: Path, arrays: dict[str, np.ndarray], *, what: str) -> None:
    """`arrays` filed at `path` as an ``.npz`` file, in store folder `what` of cache `root`:
    written under a temporary name in the same folder, then renamed (a reader sees the whole file
    or none), never pickled."""
    folder = inside(root, path.parent, what=what)
    folder.mkdir(parents=True, exist_ok=True)
    inside(root, folder, what=what)  # (made, or found, not a link out)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{folder.name}-", suffix=_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
        # (the name itself may be a link planted there: the rename replaces the link, never
        # what it points to)
        Path(tmp).replace(folder / path.name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prune(
    root: Path,
    *,
    folder: str = STORE_FOLDER,
    suffixes: tuple[str, ...] = (_SUFFIX,),
    max_bytes: int = STORE_MAX_BYTES,
) -> int:
    """Remove the least recently used stored files (those of `folder` of cache `root` whose
    names end in one of `suffixes`: by default the snaps) until they hold at most `max_bytes`,
    and temporary files runs left behind there; the number of files removed. A file another run
    is reading at that moment is made again by that run."""
    where = Path(root) / folder
    if not where.is_dir() or where.is_symlink():
        return 0
    now = time.time()
    files, removed = [], 0
    with os.scandir(where) as it:
        for entry in it:
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
            if entry.name.startswith(TMP_PREFIX):
                if now - st.st_mtime > STALE_TMP_S:
                    removed += _remove(root, Path(entry.path))
            elif entry.name.endswith(suffixes):
                files.append((st.st_mtime, st.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files, key=lambda f: f[0]):
        if total <= max_bytes:
            break
        removed += _remove(root, path)
        total -= size
    return removed


def _remove(root: Path, path: Path) -> int:
    try:
        inside(root, path, what="stored file").unlink()
    except FileNotFoundError:
        return 0
    return 1
