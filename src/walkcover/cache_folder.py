"""The cache folder as a whole: what it holds, keeping it to its limits, and clearing it.

A walkcover cache (``--cache-dir``, ``$WALKCOVER_CACHE`` or ``~/.cache/walkcover``) holds one
folder per kind of item (`KINDS`): the parsed OSM layers (``osm/``, `walkcover.sources.cache`),
the cuts of large source files (``cuts/``), the snaps (``snaps/``), the streets layers
(``layers/``), the measured standards (``standards/``), and what ``walkcover fetch`` downloaded
and cut (``downloads/``, ``extracts/``), beside the record of the sources' hashes
(``sources.json``). Each store keeps itself to its own limit as runs write it; this module lets a
planner see the cache (`contents`), prune it on demand (`prune`) and clear it (`clear`).

Nothing here follows a symbolic link or deletes outside the cache: a folder that does not look
like a walkcover cache (`check_cache_folder`: a home folder given as ``--cache-dir``) is refused
before anything is removed, only items named as walkcover names them are removed (anything else
is left alone and said), an OSM entry is renamed to a hidden name before it is removed (as
`walkcover.sources.cache.prune` does, so a crash leaves no damaged entry a run would read), and an
item used in the last `IN_USE_S` seconds (another run may be reading or writing it) is kept.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from walkcover._errors import UnsafePathError, WalkcoverError
from walkcover._paths import inside, read_file_bytes
from walkcover.sources.cache import (
    IN_USE_S,
    STAMPS_FILE,
    STORE_MAX_BYTES,
    entry_damage,
    remove_item,
)
from walkcover.sources.extract import CUTS_FOLDER

#: The kinds of item a cache holds, by the name of their folder, and what they are.
KINDS: dict[str, str] = {
    "osm": "OSM layers parsed from a source",
    CUTS_FOLDER: "areas cut out of large source files",
    "snaps": "homes and facilities snapped to the streets",
    "layers": "each district's streets layer",
    "standards": "measured standards",
    "downloads": "extracts downloaded by walkcover fetch",
    "extracts": "areas cut by walkcover fetch",
}
#: How walkcover names the items of each kind (anything else in their folders is not ours).
_ITEM_NAMES: dict[str, re.Pattern[str]] = {
    "osm": re.compile(r"[0-9a-f]{32}"),
    CUTS_FOLDER: re.compile(r"[0-9a-f]{16,64}\.(osm\.pbf|maxid\.json)"),
    "snaps": re.compile(r"[0-9a-f]{64}\.npz"),
    "layers": re.compile(r"[0-9a-f]{64}\.(gpkg|json)"),
    "standards": re.compile(r"[0-9a-f]{64}\.[a-z]+\.npz"),
    "downloads": re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}\.(pbf|pbf\.part)"),
    "extracts": re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}\.osm\.pbf"),
}
#: An OSM entry's ``meta.json`` larger than this is not read (it holds the area read as WKB in
#: hex: a city's boundary, some kilobytes to a few megabytes).
MAX_META_BYTES = 64 * 2**20
#: Units `parse_size` accepts (case folded), in bytes.
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 2**10,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 2**20,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 2**30,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 2**40,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([a-z]*)\s*", re.IGNORECASE)


class CacheFolderError(UnsafePathError):
    """A folder given as the cache that does not look like a walkcover cache: nothing is removed."""


class CacheOptionError(WalkcoverError, ValueError):
    """An option of the cache's management that is not valid (a size, a kind, a number of seconds)."""


@dataclass(frozen=True)
class KindSize:
    """What a cache holds of one kind."""

    #: Items of the kind walkcover made (OSM entries, files).
    items: int = 0
    #: Their size on disk, in bytes (a folder's files summed; links not followed).
    size_bytes: int = 0
    #: Hidden items: being written or removed by a run now, or left by a killed one.
    hidden: int = 0
    #: What is in the kind's folder that walkcover does not make (left alone), by name.
    foreign: tuple[str, ...] = ()
    #: The kind's folder is a symbolic link (never followed: nothing of it is counted).
    is_link: bool = False


@dataclass(frozen=True)
class OSMEntry:
    """One cached parse of an OSM source (an ``osm/`` entry)."""

    #: The entry's folder name (a digest of the source and the query).
    key: str
    #: What it was read from (a file path, or the Overpass URL), as written in the entry.
    source: str
    #: ``pbf``, ``xml`` or ``overpass``.
    source_kind: str
    #: Seconds since it was written (NaN when its record does not say).
    age_s: float
    #: Seconds since a run last used it.
    used_age_s: float
    #: Its files' size, in bytes.
    size_bytes: int
    #: What is wrong with it (None: nothing seen); a damaged entry is parsed again on use.
    damage: str | None = None


@dataclass(frozen=True)
class CacheContents:
    """What `contents` found in a cache folder."""

    #: The cache folder.
    root: Path
    #: Whether the folder exists.
    exists: bool
    #: Each kind's items, in the order of `KINDS`.
    kinds: dict[str, KindSize]
    #: The OSM entries, most recently used first.
    osm_entries: list[OSMEntry]
    #: The size of ``sources.json`` and walkcover's temporary files at the top, in bytes.
    other_bytes: int = 0

    @property
    def size_bytes(self) -> int:
        """Everything walkcover keeps in the cache, in bytes."""
        return sum(k.size_bytes for k in self.kinds.values()) + self.other_bytes


@dataclass
class Removal:
    """What `clear` or `prune` did, by kind."""

    #: Items removed, by kind.
    removed: dict[str, int] = field(default_factory=dict)
    #: Bytes freed, by kind.
    freed_bytes: dict[str, int] = field(default_factory=dict)
    #: Items kept because a run used them in the last ``in_use_s`` seconds, by kind.
    in_use: dict[str, int] = field(default_factory=dict)
    #: What was left alone because walkcover does not make it (paths).
    left_alone: list[Path] = field(default_factory=list)

    def count(self, kind: str, size_bytes: int) -> None:
        self.removed[kind] = self.removed.get(kind, 0) + 1
        self.freed_bytes[kind] = self.freed_bytes.get(kind, 0) + size_bytes


def parse_size(text: str, *, option: str) -> int:
    """A size given as text (``8GiB``, ``500MB``, ``1.5G``, ``1000000``) in bytes.

    Units are decimal (``KB``, ``MB``, ``GB``, ``TB``; ``K``, ``M``, ``G``, ``T`` alike) or binary
    (``KiB``, ``MiB``, ``GiB``, ``TiB``), case ignored; a bare number is bytes.

    Raises
    ------
    CacheOptionError
        Text that is no such size; the message names `option`, the value and examples.
    """
    match = _SIZE.fullmatch(str(text))
    unit = match.group(2).casefold() if match else ""
    shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:37] + "…"
    if match is None or unit not in _UNITS:
        raise CacheOptionError(
            f"{option} {shown} is not a size: give a number of bytes or one with a unit, "
            "e.g. 8GiB, 500MB or 0"
        )
    size = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(size) or size > 2**62:
        raise CacheOptionError(f"{option} {shown} is too large: give at most a few TiB, e.g. 8GiB")
    return int(size)


def size_text(size_bytes: float) -> str:
    """A size in bytes as people read it (``1.2 GiB``, ``350 KiB``, ``12 B``)."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size_bytes >= factor:
            return f"{size_bytes / factor:.1f} {unit}"
    return f"{int(size_bytes)} B"


def age_text(age_s: float) -> str:
    """A number of seconds as people read an age (``40 s``, ``12 min``, ``5 h``, ``3 d``; ``?``
    for NaN)."""
    if not math.isfinite(age_s):
        return "?"
    for unit, factor in (("d", 86400), ("h", 3600), ("min", 60)):
        if age_s >= factor:
            return f"{age_s / factor:.0f} {unit}"
    return f"{age_s:.0f} s"


def check_cache_folder(root: Path, *, what: str = "--cache-dir") -> None:
    """Refuse `root` unless it looks like a walkcover cache: a folder (or a link to one) that
    holds at least one of walkcover's kind folders or ``sources.json``, and nothing else but
    hidden names. An empty or missing folder passes (there is nothing to remove).

    Raises
    ------
    CacheFolderError
        `root` is not a folder, or holds what walkcover never puts in a cache (a home folder's
        ``Documents``); the message names `what` (where the folder was given), the folder, a few
        of those names and the fix.
    """
    root = Path(root)
    if not root.exists():
        return
    if not root.is_dir():
        raise CacheFolderError(
            f"{what} {str(root)!r} is a file, not a cache folder; pass the folder walkcover "
            "caches into (see `walkcover cache info`)"
        )
    names = sorted(p.name for p in root.iterdir())
    ours = set(KINDS) | {STAMPS_FILE}
    foreign = [n for n in names if n not in ours and not n.startswith(".")]
    if not names or (not foreign and any(n in ours for n in names)):
        return
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:5]) + (" …" if len(foreign) > 5 else "")
        why = f"it holds {shown}, which walkcover never puts in a cache"
    else:
        why = "it holds none of the folders walkcover keeps in a cache"
    raise CacheFolderError(
        f"{what} {str(root)!r} does not look like a walkcover cache ({why}); nothing was "
        f"removed: pass the cache folder itself (one holding {', '.join(sorted(KINDS))} or "
        f"{STAMPS_FILE}; see `walkcover cache info`)"
    )


def contents(root: Path) -> CacheContents:
    """What cache `root` holds: each kind's items and size, and its OSM entries (source, age).

    Nothing is followed through a symbolic link: a kind folder that is one is reported as such,
    an item that is one counts as not ours.
    """
    root = Path(root)
    if not root.is_dir():
        return CacheContents(root, False, {k: KindSize() for k in KINDS}, [])
    kinds: dict[str, KindSize] = {}
    entries: list[OSMEntry] = []
    now = time.time()
    for kind in KINDS:
        folder = root / kind
        if folder.is_symlink():
            kinds[kind] = KindSize(is_link=True)
            continue
        n = size = hidden = 0
        foreign: list[str] = []
        for path, st in _items(folder):
            if path.name.startswith("."):
                hidden += 1
                size += _size_bytes(path, st)
            elif not _is_ours(kind, path, st):
                foreign.append(path.name)
            else:
                n += 1
                got = _size_bytes(path, st)
                size += got
                if kind == "osm":
                    entries.append(_osm_entry(path, got, now=now))
        kinds[kind] = KindSize(n, size, hidden, tuple(foreign))
    other = 0
    for path, st in _items(root):
        if path.name == STAMPS_FILE or path.name.startswith("."):
            other += _size_bytes(path, st) if stat.S_ISREG(st.st_mode) else 0
    entries.sort(key=lambda e: (e.used_age_s, e.key))
    return CacheContents(root, True, kinds, entries, other)


def clear(
    root: Path,
    *,
    kinds: Iterable[str] | None = None,
    in_use_s: float = IN_USE_S,
) -> Removal:
    """Remove what cache `root` holds: every kind (and ``sources.json``), or only `kinds`.

    Parameters
    ----------
    root
        The cache folder; refused unless it looks like one (`check_cache_folder`).
    kinds
        Names of `KINDS` to clear; None clears them all.
    in_use_s
        Items used in the last this many seconds stay (another run may be reading them), and so
        do hidden ones younger than this (a run is writing them); 0 removes them too, which is
        safe only when no walkcover run is using the cache.

    Returns
    -------
    Removal
        What was removed, kept in use and left alone, by kind.

    Raises
    ------
    CacheOptionError
        A name in `kinds` that is no kind (the message lists them), or a negative `in_use_s`.
    CacheFolderError
        `root` does not look like a walkcover cache.
    """
    chosen = check_kinds(kinds)
    check_in_use_s(in_use_s)
    root = Path(root)
    check_cache_folder(root)
    done = Removal()
    if not root.is_dir():
        return done
    now = time.time()
    for kind in chosen:
        folder = root / kind
        if folder.is_symlink():  # never followed: the link itself goes (runs refuse it anyway)
            inside(root, folder.parent, what="cache folder")
            folder.unlink()
            done.count(kind, 0)
            continue
        for path, st in _items(folder):
            hidden = path.name.startswith(".")
            if not hidden and not _is_ours(kind, path, st):
                done.left_alone.append(path)
                continue
            if now - _used(kind, path, st) < in_use_s:  # (hidden: being written or removed)
                done.in_use[kind] = done.in_use.get(kind, 0) + 1
                continue
            size = _size_bytes(path, st)
            if _remove(root, path):
                done.count(kind, size)
    if kinds is None:  # everything: the record of the sources' hashes too
        for path, st in _items(root):
            if path.name != STAMPS_FILE or not stat.S_ISREG(st.st_mode):
                continue
            if now - st.st_mtime < in_use_s:
                done.in_use["sources"] = done.in_use.get("sources", 0) + 1
            elif _remove(root, path):
                done.count("sources", st.st_size)
    return done


def prune(root: Path, *, osm_max_bytes: int = STORE_MAX_BYTES) -> Removal:
    """Keep each store of cache `root` to its limit, as runs do, removing the least recently used
    first: the OSM layers and cuts together to `osm_max_bytes` (`walkcover.sources.cache.prune`;
    what a run used in the last `IN_USE_S` seconds stays), and the snaps, streets layers and
    measured standards each to their own limit (their ``STORE_MAX_BYTES``).

    Raises
    ------
    CacheOptionError
        A negative `osm_max_bytes`.
    CacheFolderError
        `root` does not look like a walkcover cache.
    """
    from walkcover.assessment import standard_store
    from walkcover.engine import snap_store
    from walkcover.presentation import layer_store
    from walkcover.sources import cache

    if osm_max_bytes < 0:
        raise CacheOptionError(
            f"--max-bytes {osm_max_bytes}: give a size of 0 bytes or more, e.g. 8GiB"
        )
    root = Path(root)
    check_cache_folder(root)
    done = Removal()
    if not root.is_dir():
        return done
    before = contents(root)
    cache.prune(root, max_bytes=osm_max_bytes)
    snap_store.prune(root)
    layer_store.prune(root)
    standard_store.prune(root)
    after = contents(root)
    for kind in KINDS:
        was, now = before.kinds[kind], after.kinds[kind]
        gone = (was.items + was.hidden) - (now.items + now.hidden)
        if gone > 0:
            done.removed[kind] = gone
            done.freed_bytes[kind] = max(0, was.size_bytes - now.size_bytes)
    return done


def check_kinds(kinds: Iterable[str] | None) -> list[str]:
    """The kinds named (all of `KINDS` for None), each checked.

    Raises
    ------
    CacheOptionError
        A name that is no kind; the message lists the kinds.
    """
    if kinds is None:
        return list(KINDS)
    chosen = []
    for name in kinds:
        if name not in KINDS:
            shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "…"
            raise CacheOptionError(
                f"--kind {shown} is no kind of cached item; choose from {', '.join(KINDS)}"
            )
        if name not in chosen:
            chosen.append(name)
    return chosen


def check_in_use_s(in_use_s: float) -> None:
    """Refuse a number of seconds `clear` cannot keep items used within.

    Raises
    ------
    CacheOptionError
        A negative or infinite number (NaN too); the message names ``--in-use-s`` and the default.
    """
    if not (in_use_s >= 0 and math.isfinite(in_use_s)):
        raise CacheOptionError(
            f"--in-use-s {in_use_s!r}: give a number of seconds of 0 or more (default {IN_USE_S:.0f})"
        )


def _items(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """The names in `folder` with their own ``lstat`` (nothing when it is no folder of its own)."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        try:
            yield path, path.lstat()
        except OSError:  # gone meanwhile
            continue


def _is_ours(kind: str, path: Path, st: os.stat_result) -> bool:
    """Whether `path` is an item walkcover makes in `kind`'s folder: its kind of name, and a
    folder (an OSM entry) or a regular file (no link, no device)."""
    if not _ITEM_NAMES[kind].fullmatch(path.name):
        return False
    return stat.S_ISDIR(st.st_mode) if kind == "osm" else stat.S_ISREG(st.st_mode)


def _size_bytes(path: Path, st: os.stat_result) -> int:
    """A file's size, or the files' in a folder (not through links), in bytes."""
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    total = 0
    for base, dirs, files in os.walk(path, followlinks=False):
        for name in (*files, *dirs):
            try:
                got = (Path(base) / name).lstat()
            except OSError:
                continue
            if stat.S_ISREG(got.st_mode):
                total += got.st_size
    return total


def _used(kind: str, path: Path, st: os.stat_result) -> float:
    """When item `path` was last used or written (an OSM entry: its ``meta.json``, touched at each
    use, or the newest of its files while it has none; any other: its own time)."""
    if kind != "osm" or not stat.S_ISDIR(st.st_mode):
        return st.st_mtime
    newest = st.st_mtime
    try:
        for item in path.iterdir():
            newest = max(newest, item.lstat().st_mtime)
    except OSError:
        pass
    return newest


def _remove(root: Path, path: Path) -> bool:
    """`walkcover.sources.cache.remove_item`; False when it is gone meanwhile."""
    try:
        remove_item(root, path)
    except FileNotFoundError:
        return False
    return True


def _osm_entry(path: Path, size_bytes: int, *, now: float) -> OSMEntry:
    """What an OSM entry's ``meta.json`` says of it (read without following links)."""
    damage = entry_damage(path)
    meta_path = path / "meta.json"
    source, kind, age_s = "", "", math.nan
    used = path.lstat().st_mtime
    try:
        if meta_path.is_symlink():
            raise ValueError("meta.json is a symbolic link")
        used = meta_path.lstat().st_mtime
        # a file of walkcover's or nothing: a FIFO in its place must not stop `info` for ever
        meta = json.loads(read_file_bytes(meta_path, max_bytes=MAX_META_BYTES))
        if not isinstance(meta, dict):
            raise ValueError("meta.json is not a JSON object")
        source = str(meta.get("source", ""))[:500]
        kind = str(meta.get("kind", ""))[:20]
        created = meta.get("created")
        if isinstance(created, int | float) and math.isfinite(created):
            age_s = max(0.0, now - float(created))
    except (OSError, ValueError, RecursionError) as exc:
        damage = damage or f"meta.json is unreadable ({type(exc).__name__})"
    return OSMEntry(path.name, source, kind, age_s, max(0.0, now - used), size_bytes, damage)


__all__ = [
    "IN_USE_S",
    "KINDS",
    "STORE_MAX_BYTES",
    "CacheContents",
    "CacheFolderError",
    "CacheOptionError",
    "KindSize",
    "OSMEntry",
    "Removal",
    "age_text",
    "check_cache_folder",
    "check_in_use_s",
    "check_kinds",
    "clear",
    "contents",
    "parse_size",
    "prune",
    "size_text",
]
