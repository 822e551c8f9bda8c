"""Atomic writes: a file, or a whole folder of outputs, appears complete or not at all.

A leaf module (standard library only), so that every writer can use it without loading the rest of
walkcover.

* `atomic_path` / `write_atomic`: one file, written under a temporary name beside it and renamed.
* `staged_folder`: a folder of outputs (a district's ``coverage.gpkg``, ``map.html``, reports …)
  built in a staging folder beside it and swapped in by two renames, so a reader sees the previous
  complete set or the new complete set, never a mix.
* `recover`: after a crash or a kill (``SIGKILL`` runs no clean-up), put back a folder whose swap was
  interrupted and remove what staging and temporary files were left behind. Call it only while
  holding the output folder's lock (`walkcover._lock`), when no other run can be writing there.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: Every temporary name walkcover makes starts with this, so `recover` knows what is its own.
TMP_PREFIX = ".walkcover-tmp-"
STAGING_PREFIX = ".walkcover-staging-"
OLD_PREFIX = ".walkcover-old-"


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final`, renamed onto it only if the block succeeds.

    The temporary file (and any ``-journal``/``-wal`` file a SQLite writer such as GDAL's GeoPackage
    driver leaves beside it) is removed when the block fails.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"{TMP_PREFIX}{final.stem}-", suffix=final.suffix, dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as GDAL want to create the file themselves
    try:
        yield tmp
        sync_file(tmp)  # the data on disk before the name points at it
        tmp.replace(final)
        sync_folder(final.parent)  # and the new name itself
    finally:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-journal", "-wal", "-shm"))):
            if leftover.exists():
                leftover.unlink()


def write_atomic(final: Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp)``, then move the finished file onto `final`."""
    with atomic_path(final) as tmp:
        writer(tmp)
    return Path(final)


def new_folder(parent: Path, prefix: str) -> Path:
    """A new, empty folder in `parent` named `prefix` and random letters, made with the user's
    umask like any folder of theirs (`tempfile.mkdtemp` makes it the owner's alone, mode 0700: a
    staging folder swapped into place left every district's results unreadable to colleagues)."""
    for _ in range(100):
        path = Path(parent) / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free name for a new folder {prefix}… in {parent}")


@contextmanager
def staged_folder(final: Path, *, keep: Iterable[str] = ()) -> Iterator[Path]:
    """Build the new contents of folder `final` in a staging folder, then swap it in.

    Parameters
    ----------
    final
        The folder to replace (it need not exist yet).
    keep
        Names of files or folders in the current `final` to carry into the new set (hard-linked, or
        copied where the file system cannot link). Everything else in the old folder is replaced by what the block
        writes into the staging folder.

    Yields
    ------
    pathlib.Path
        The staging folder to write the complete new set into.

    Notes
    -----
    On success the old folder is renamed aside, the staging folder renamed onto `final`, and the old
    one removed. A crash between the two renames leaves the old set under a hidden name, which
    `recover` puts back. On failure the staging folder is removed and `final` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = new_folder(final.parent, f"{STAGING_PREFIX}{final.name}-")
    try:
        for name in keep:
            src = final / name
            if final.is_symlink() or src.is_symlink():
                continue  # never carried through a link: only what the folder itself holds
            if src.is_dir():
                # links inside are copied as links (never followed into what they point at)
                shutil.copytree(src, staging / name, symlinks=True, copy_function=_link_or_copy)
            elif src.is_file():
                _link_or_copy(src, staging / name)
        yield staging
        for f in staging.rglob("*"):
            if f.is_file() and not f.is_symlink():
                sync_file(f)
        sync_folder(staging)
        swap_in(staging, final)
        sync_folder(final.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def sync_file(path: Path) -> None:
    """Flush `path`'s data to the disk (``fsync``): after a power cut a file renamed into place
    holds what was written, never nothing. A file system that cannot is let be."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync_folder(path: Path) -> None:
    """Flush a folder's entries (the names a rename changed) to the disk, where the system can."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # Windows and some file systems cannot flush a folder
    finally:
        os.close(fd)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    # Every writer replaces files by rename, never in place, so a hard link shares nothing mutable.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def swap_in(staging: Path, final: Path) -> None:
    """Put folder `staging` in the place of `final` (two renames; see `staged_folder`)."""
    old = None
    if final.exists() or final.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f"{OLD_PREFIX}{final.name}-", dir=final.parent))
        old.rmdir()
        final.rename(old)  # a link in its place is renamed itself, never followed
    staging.rename(final)
    if old is not None:
        _remove(old)


def recover(folder: Path) -> list[str]:
    """Repair what an interrupted run left in `folder` (not recursively); return what was done.

    A folder renamed aside by an interrupted swap is put back when its place is empty, else removed;
    staging folders and temporary files are removed.

    Nothing is ever followed through a symbolic link (walkcover makes none): a `folder` that is a
    link is left alone, and an entry with one of walkcover's names that is a link is removed as a
    link (what it points at stays untouched), never put back in place.
    """
    folder = Path(folder)
    done: list[str] = []
    if folder.is_symlink() or not folder.is_dir():
        return done
    for p in sorted(folder.iterdir()):
        name = p.name
        if not name.startswith((OLD_PREFIX, STAGING_PREFIX, TMP_PREFIX)):
            continue
        if p.is_symlink():
            p.unlink(missing_ok=True)
            done.append(f"removed {name} (a symbolic link, which walkcover never makes)")
        elif name.startswith(OLD_PREFIX):
            base = name.removeprefix(OLD_PREFIX).rsplit("-", 1)[0]
            original = folder / base
            if (
                base not in ("", ".", "..")
                and os.sep not in base
                and not (original.exists() or original.is_symlink())
            ):
                p.rename(original)
                done.append(f"restored {original.name} (a run was interrupted while replacing it)")
            else:
                _remove(p)
                done.append(f"removed {name}")
        elif name.startswith(STAGING_PREFIX):
            _remove(p)
            done.append(f"removed {name} (unfinished output of an interrupted run)")
        else:
            _remove(p)
            done.append(f"removed {name} (unfinished file of an interrupted run)")
    return done


def _remove(path: Path) -> None:
    """Remove `path`: a link or a file itself, a folder with all it holds (links inside removed,
    never followed)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def check_writable_folder(
    path: Path, *, option: str, fix: str = "pass a folder you can write to"
) -> Path:
    """Make sure `path` is (or can become) a folder this process can write, before any work;
    the message of a folder that cannot be written ends with `fix`.

    Raises
    ------
    OutputFolderError
        `path` is a file, or the folder cannot be created or written (read-only, no permission,
        disk full); the message names `option`, the path and the reason.
    """
    from walkcover._errors import OutputFolderError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputFolderError(
            f"{option} {str(path)!r} is a file, not a folder; pass a folder (it is created if missing)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f"{TMP_PREFIX}probe-", dir=path)
        os.close(fd)
        Path(probe).unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputFolderError(
            f"{option} {str(path)!r} cannot be written ({reason}); {fix}"
        ) from None
    return path


def missing_folders(path: Path) -> list[Path]:
    """The folders ``path.mkdir(parents=True)`` would create, deepest first: what to take away
    again (`remove_empty_folders`) when a later check refuses the command."""
    missing = []
    path = Path(path).absolute()
    while not path.exists() and not path.is_symlink() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove `folders` (deepest first) that are still empty; one that holds anything stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


#: What SQLite says, through GDAL or Python's sqlite3, when a GeoPackage cannot be written, and the
#: error it stands for (`storage_errors`).
_STORAGE_FAILURES = (
    ("database or disk is full", errno.ENOSPC),
    ("disk i/o error", errno.EIO),
    ("readonly database", errno.EROFS),
    ("unable to open database file", errno.EACCES),
)


@contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Raise what SQLite says of a file `path` (a GeoPackage) that cannot be written (a full disk,
    a read-only folder: GDAL's `RuntimeError`s, sqlite3's `OperationalError`) as the `OSError` it
    is, so that callers tell a full disk from a bug (and a store that cannot be written costs the
    store, never the run)."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:
        text = str(exc).lower()
        codes = [code for what, code in _STORAGE_FAILURES if what in text]
        free = free_bytes(Path(path).parent)
        if not codes and free is not None and free < FULL_DISK_BYTES:
            codes = [errno.ENOSPC]  # GDAL names a table it could not make, not the full disk
        if codes:
            code = codes[0]
            raise OSError(code, f"{os.strerror(code)} ({str(exc)[:300]})", str(path)) from exc
        raise


#: Below this much free space, a failed write is put down to a full disk: GDAL's GeoPackage driver
#: does not always say so (it reports the SQLite table it could not create instead).
FULL_DISK_BYTES = 4 * 1024 * 1024


def free_bytes(where: Path) -> int | None:
    """The free space of the disk holding `where` (or its nearest existing parent); None when it
    cannot be told."""
    for folder in (Path(where), *Path(where).parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None
