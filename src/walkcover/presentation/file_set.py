"""Files of one folder replaced as one set: the city's tables and pages, the region's files.

A set is built in a staging folder inside its folder. Once every file is complete, a manifest (each
file's SHA-256 and size) is sealed into the staging folder: that is the commit point. The files are
then renamed into place, the previous set's files the new one lacks are removed, and the manifest
is renamed into place last.

* A failure or kill before the seal leaves the previous set whole (and a staging folder that
  `recover_set` removes).
* A kill after it, or a file that cannot be put in place (`SetNotInPlaceError`), leaves a folder
  that `check_set` reports as mixed until `recover_set` completes the new set (a sealed set that
  cannot be completed yet is kept for the next try; only a damaged one is removed).

What may be in a set, and what its manifest and staging folders are called, is its `SetKind`
(`walkcover.presentation.tables.CITY_SET`, `walkcover.presentation.region.REGION_SET`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walkcover._atomic import write_atomic
from walkcover._paths import inside
from walkcover.presentation.record import RunRecordError

__all__ = [
    "MANIFEST_FORMAT",
    "FileSet",
    "FileSetError",
    "SetKind",
    "check_set",
    "file_set",
    "recover_set",
    "reseal_set",
]

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
#: The largest manifest read back (a few hundred bytes per file).
_MANIFEST_MAX_BYTES = 1024 * 1024


class FileSetError(RunRecordError):
    """A folder does not hold one complete set of files (mixed, partial or damaged)."""


class SetNotInPlaceError(FileSetError):
    """A new set was complete and sealed, but a file of it could not be put in place (the folder
    or an old file cannot be replaced): the next `recover_set` completes it."""


@dataclass(frozen=True)
class SetKind:
    """What makes a set of files of one kind.

    Attributes
    ----------
    what
        The set's files in a message ("city files").
    names
        The only files a set may hold.
    manifest
        The manifest's name, written last.
    prefix
        The staging folders' prefix. Not `walkcover._atomic`'s staging prefix: `walkcover._atomic.
        recover` removes those, while a sealed set must be completed.
    fix
        What the user does about a mixed or damaged set.
    shared
        Files other commands also write into the folder (``walkcover report``'s ``index.html``):
        one that is no set's own is not a mix.
    """

    what: str
    names: tuple[str, ...]
    manifest: str
    prefix: str
    fix: str
    shared: tuple[str, ...] = ()


@dataclass
class FileSet:
    """A set of files being built: write them into `folder`; once the block ends they are in place
    in `base` (`written`), and files of the previous set the new one lacks are gone (`removed`)."""

    base: Path
    folder: Path
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


@contextmanager
def file_set(base: Path, kind: SetKind) -> Iterator[FileSet]:
    """Build a new set of `kind`'s files in a staging folder inside `base`, then put it in place.

    When the block ends, the manifest of what it wrote is sealed into the staging folder (the
    commit point); each file is renamed into place, files of the previous set that the new one
    lacks are removed, and the manifest is renamed into place last. If the block fails, the staging
    folder is removed and the previous set is untouched.
    """
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=kind.prefix, dir=base))
    built = FileSet(base, stage)
    try:
        yield built
        _seal(stage, kind)
        try:
            built.written, built.removed = _put_in_place(base, stage, kind)
        except OSError as exc:  # after the seal: the new set is kept, to be completed
            raise SetNotInPlaceError(
                f"{base}: the new {kind.what} are complete, but putting them in place failed "
                f"({exc}); the next walkcover command into this --out completes them once that "
                "file can be replaced"
            ) from exc
    finally:
        if stage.exists() and not (stage / kind.manifest).exists():
            shutil.rmtree(stage, ignore_errors=True)


def _digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"sha256": h.hexdigest(), "size": path.stat().st_size}


def _manifest_text(files: dict[str, dict[str, Any]]) -> str:
    listed = {n: files[n] for n in sorted(files)}
    set_id = hashlib.sha256(
        "".join(f"{n}\0{d['sha256']}\0" for n, d in listed.items()).encode()
    ).hexdigest()
    data = {"format": MANIFEST_FORMAT, "set_sha256": set_id, "files": listed}
    return json.dumps(data, indent=1, ensure_ascii=True) + "\n"


def _seal(stage: Path, kind: SetKind) -> None:
    names = sorted(p.name for p in stage.iterdir())
    strange = [n for n in names if n not in kind.names]
    if strange:  # a bug: writers write only the kind's names
        raise ValueError(f"not one of the {kind.what}: {strange[0]!r}")
    text = _manifest_text({n: _digest(stage / n) for n in names})
    write_atomic(stage / kind.manifest, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _read_manifest(path: Path, kind: SetKind) -> dict[str, dict[str, Any]]:
    """The files a manifest lists (name → sha256, size).

    Raises
    ------
    FileSetError
        Not a manifest walkcover wrote (too large, not JSON, not an object, a name that is not one
        of the kind's files, a digest or size of the wrong kind).
    """
    bad = FileSetError(f"{path} is not a list of {kind.what} walkcover wrote: {kind.fix}")
    if path.is_symlink() or not path.is_file() or path.stat().st_size > _MANIFEST_MAX_BYTES:
        raise bad
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise bad
    files = data.get("files")
    if not isinstance(files, dict):
        raise bad
    for name, entry in files.items():
        if (
            name not in kind.names
            or not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
            or not isinstance(entry.get("size"), int)
            or isinstance(entry.get("size"), bool)
        ):
            raise bad
    return files


def _previous_names(base: Path, kind: SetKind) -> list[str]:
    """The files of the set in place: as its manifest lists them, or (a folder written before
    manifests, or one whose manifest is damaged) every file of the kind but shared pages."""
    try:
        return list(_read_manifest(base / kind.manifest, kind))
    except FileSetError:
        return [n for n in kind.names if n not in kind.shared]


def _put_in_place(base: Path, stage: Path, kind: SetKind) -> tuple[list[Path], list[Path]]:
    """Move the sealed set in `stage` into `base`, manifest last (also to complete a set an
    interrupted run sealed: files already moved are skipped)."""
    new = _read_manifest(stage / kind.manifest, kind)
    old = _previous_names(base, kind)
    written = []
    for name in sorted(new):
        src = stage / name
        if src.is_symlink():  # never moved into place: what it points at is none of ours
            raise FileSetError(
                f"{src} is a symbolic link, not one of the {kind.what} walkcover wrote: {kind.fix}"
            )
        if src.exists():
            src.replace(base / name)  # a link standing there is replaced, never followed
        written.append(base / name)
    removed = []
    for name in old:
        if name not in new and (base / name).is_file():
            (base / name).unlink()
            removed.append(base / name)
    (stage / kind.manifest).replace(base / kind.manifest)
    shutil.rmtree(stage, ignore_errors=True)
    return written, removed


def recover_set(base: Path, kind: SetKind) -> list[str]:
    """Repair what an interrupted run left of `kind`'s files in `base`; return what was done.

    A set sealed before the run was killed is completed (its files moved into place, its manifest
    last); an unsealed one is removed (the previous set was never touched). Call it only while
    holding the output folder's lock (`walkcover._lock`), like `walkcover._atomic.recover`.

    Nothing is followed through a symbolic link: a `base` that is a link is left alone, a staging
    folder that is a link is removed as a link, and a sealed set is put in place only when it holds
    nothing but regular files its manifest lists, each of the size and SHA-256 listed
    (`_check_sealed`); any other is removed as damaged.
    """
    base = Path(base)
    done: list[str] = []
    if base.is_symlink() or not base.is_dir():
        return done
    stages = sorted(
        (p for p in base.iterdir() if p.name.startswith(kind.prefix)),
        key=lambda p: (p.lstat().st_mtime_ns, p.name),
    )
    for stage in stages:
        if stage.is_symlink():
            stage.unlink(missing_ok=True)
            done.append(f"removed {stage.name} (a symbolic link, which walkcover never makes)")
            continue
        manifest = stage / kind.manifest
        sealed = stage.is_dir() and not manifest.is_symlink() and manifest.is_file()
        if sealed:
            try:
                _check_sealed(base, stage, kind)
                _put_in_place(base, stage, kind)
            except FileSetError as exc:
                log.warning("could not complete the %s in %s: %s", kind.what, stage, exc)
                shutil.rmtree(stage, ignore_errors=True)
                done.append(f"removed {stage.name} (a damaged set of {kind.what})")
            except OSError as exc:  # a file that cannot be replaced yet: kept, tried again next
                log.warning("could not complete the %s in %s yet: %s", kind.what, stage, exc)
                done.append(
                    f"could not complete the {kind.what} yet ({exc}); the next walkcover command "
                    "tries again"
                )
            else:
                done.append(
                    f"completed the {kind.what} (a run was interrupted while replacing them)"
                )
        else:
            if stage.is_dir():
                shutil.rmtree(stage, ignore_errors=True)
            else:
                stage.unlink(missing_ok=True)
            done.append(f"removed {stage.name} (unfinished {kind.what} of an interrupted run)")
    return done


def _check_sealed(base: Path, stage: Path, kind: SetKind) -> None:
    """Make sure sealed set `stage` (a real folder in `base`) holds only regular files its
    manifest lists, each of the listed size and SHA-256 (files already moved into place by the
    interrupted run are absent), so that completing it moves nothing else into place.

    Raises
    ------
    FileSetError
        A link, a folder, a file the manifest does not list, or one that differs from its entry.
    """
    inside(base, stage, what=f"set of {kind.what}")
    files = _read_manifest(stage / kind.manifest, kind)
    for path in sorted(stage.iterdir()):
        if path.name == kind.manifest:
            continue
        if path.name not in files:
            raise FileSetError(f"{path} is not one of the files its manifest lists")
        if path.is_symlink() or not path.is_file():
            raise FileSetError(f"{path} is not a file walkcover wrote (a link or a folder)")
        want = files[path.name]
        if path.stat().st_size != want["size"] or _digest(path)["sha256"] != want["sha256"]:
            raise FileSetError(f"{path} is not the file its manifest lists")


def check_set(base: Path, kind: SetKind) -> None:
    """Make sure `base` holds one complete set of `kind`'s files: each file its manifest lists
    present with that size and SHA-256, and no other file of the kind beside them. A folder with no
    manifest and no sealed set waiting (written by a walkcover before manifests) passes: there is
    nothing to check it against.

    Raises
    ------
    FileSetError
        The set is mixed or partial (a run was killed while replacing it, or a file was changed,
        removed or added since); the message names the first such file and the fix.
    """
    base = Path(base)
    manifest = base / kind.manifest
    pending = [
        p for p in base.glob(f"{kind.prefix}*")
        if not p.is_symlink() and (p / kind.manifest).is_file()
    ] if base.is_dir() else []  # fmt: skip
    if not manifest.exists() and not manifest.is_symlink():
        if pending:
            present = [n for n in kind.names if (base / n).exists()]
            raise FileSetError(
                f"{base / (present[0] if present else kind.manifest)}: the {kind.what} are "
                "partly replaced (a run was interrupted); the next walkcover command into this "
                f"--out completes them, or {kind.fix}"
            )
        return
    files = _read_manifest(manifest, kind)
    for name in kind.names:
        path = base / name
        if name not in files:
            if name not in kind.shared and (path.exists() or path.is_symlink()):
                raise FileSetError(f"{path} is not one of the {kind.what} of this set: {kind.fix}")
            continue
        want = files[name]
        if path.is_symlink() or not path.is_file():
            raise FileSetError(f"{path} is missing from the set of {kind.what}: {kind.fix}")
        if path.stat().st_size != want["size"] or _digest(path)["sha256"] != want["sha256"]:
            why = "a run was interrupted while replacing it" if pending else "changed since"
            raise FileSetError(
                f"{path} is not the file of this set of {kind.what} ({why}): {kind.fix}"
            )


def reseal_set(base: Path, kind: SetKind, names: list[str]) -> None:
    """After a command replaced files `names` of the set in place by itself (``walkcover
    report``'s ``index.html``), write the manifest again with their new digests. Files the set does
    not list are left out of it."""
    base = Path(base)
    manifest = base / kind.manifest
    if not manifest.is_file():
        return
    files = dict(_read_manifest(manifest, kind))
    changed = [n for n in names if n in files and (base / n).is_file()]
    if not changed:
        return
    for n in changed:
        files[n] = _digest(base / n)
    text = _manifest_text(files)
    write_atomic(manifest, lambda tmp: tmp.write_text(text, encoding="utf-8"))
