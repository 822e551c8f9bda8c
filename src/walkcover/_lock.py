"""One run at a time per output folder: an exclusive lock that says who holds it.

Two runs writing into one ``--out`` would each read, merge and rewrite ``summary.csv`` and lose the
other's rows. The lock is an operating-system file lock (``filelock``: ``flock`` on POSIX, ``LockFileEx``
on Windows), so it is released when its process ends, even by ``SIGKILL``; beside it a small text file
says which process holds it, for the message the second run prints.

A run killed by ``SIGKILL`` leaves both files behind. They are harmless: the next run takes the
operating-system lock of the file, which no process holds any more, without a word, rewrites the
holder's file and removes both when it ends. A lock file it cannot reuse (a symbolic link, which
walkcover never makes, or a file of another user that no process holds locked) is removed first.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from walkcover._atomic import recover
from walkcover._errors import OutputFolderError, OutputLockedError
from walkcover._paths import inside, open_file

LOCK_NAME = ".walkcover.lock"
#: Output folders this process holds the lock of (so nested holders in one process reenter).
_held: set[Path] = set()
OWNER_NAME = ".walkcover.lock.owner"


@contextmanager
def output_lock(out: Path, *, command: str) -> Iterator[list[str]]:
    """Hold the exclusive lock of output folder `out` for the block.

    Once held, what an interrupted earlier run left behind is repaired (see `walkcover._atomic.recover`)
    in `out` and in each city folder under it (never in a folder reached through a symbolic link);
    the block receives the list of repairs made.

    Raises
    ------
    OutputLockedError
        Another process holds the lock; the message says which (pid, host, user, command, since).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = out.resolve()
    if key in _held:  # this process holds it already (the CLI around a library call): reenter
        yield []
        return
    _clear_stale(out)
    lock = FileLock(out / LOCK_NAME, timeout=0)
    owner = out / OWNER_NAME
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputLockedError(
            f"--out {str(out)!r} is in use by another walkcover run ({_describe(owner)}); wait for "
            "it to finish or choose another --out folder"
        ) from None
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "user": _user(),
            "command": command,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        _write_owner(inside(out, owner, what="lock holder file"), info)
        _held.add(key)
        repairs = recover(out)
        for sub in sorted(out.iterdir()):
            # a linked folder is never entered: what it points at is no folder of this --out
            if sub.name.startswith(".") or sub.is_symlink() or not sub.is_dir():
                continue
            folder = inside(out, sub, what="city folder")
            repairs += [f"{sub.name}: {r}" for r in recover(folder)]
        yield repairs
    finally:
        _held.discard(key)
        with suppress(OSError):
            owner.unlink()
        with suppress(OSError):
            # removed while still held: filelock checks, after locking, that the file it locked is
            # still the one at this path, so a peer that opened it meanwhile tries again
            (out / LOCK_NAME).unlink()
        lock.release()


@contextmanager
def file_lock(path: Path, *, timeout_s: float) -> Iterator[None]:
    """Hold the operating-system lock of file `path` (``filelock``) for the block, against other
    processes; the lock file is removed once released, so that none is left in the user's folder.

    It is removed only when no process holds or takes its lock at that moment (`remove_free_lock`:
    removed while locked by this process, so a process that opened it meanwhile finds it gone and
    tries again on a new file, as filelock checks); a waiting process that takes it removes it in
    turn when it is done. Where that cannot be told (Windows, where filelock removes it itself; a
    file system without ``flock``), the file is left.

    What stands in its place that walkcover never makes is dealt with first: a symbolic link is
    removed itself (never followed; it could not be locked); a folder, FIFO or device is refused.

    Raises
    ------
    filelock.Timeout
        Another process held the lock for `timeout_s` seconds.
    OutputFolderError
        A folder, FIFO or device stands in the lock file's place; the message names it and the fix.
    """
    path = Path(path)
    _regular_or_gone(
        path,
        refusal=f"{str(path)!r} is not a lock file walkcover made (it is a folder, a FIFO or a "
        "device); remove it, then try again",
    )
    lock = FileLock(path, timeout=timeout_s)
    lock.acquire()  # (one that times out leaves the holder's file alone)
    try:
        yield
    finally:
        lock.release()
        remove_free_lock(Path(path))


def _regular_or_gone(path: Path, *, refusal: str) -> bool:
    """Whether `path` is a regular file, after removing a symbolic link in its place (itself,
    never followed; then there is none).

    Raises
    ------
    OutputFolderError
        With `refusal`, where something else stands in its place (a folder, a FIFO, a device).
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        path.unlink()
        return False
    if not stat.S_ISREG(st.st_mode):
        raise OutputFolderError(refusal)
    return True


def _clear_stale(out: Path) -> None:
    """Remove what a killed run left that the next one could not reuse: a lock or holder file
    that is a symbolic link (removed itself, never followed), or a lock file this user cannot open
    for writing that no process holds locked (another user's run, killed). A lock file of this
    user's is reused as it is (`FileLock` takes its lock, free since its holder is gone).

    Raises
    ------
    OutputFolderError
        Something that is not a file stands in the lock file's place (a folder).
    """
    for name in (LOCK_NAME, OWNER_NAME):
        path = out / name
        regular = _regular_or_gone(
            path,
            refusal=f"--out {str(out)!r}: {name} is not a file walkcover made (it is a folder or "
            "a device); remove it, or choose another --out folder",
        )
        if regular and name == LOCK_NAME and not os.access(path, os.W_OK):
            remove_free_lock(path)


def remove_free_lock(path: Path) -> None:
    """Remove lock file `path` if no process holds its operating-system lock: removed while this
    process holds it (through a descriptor of its own, opened read-only, never through a link nor
    waiting on a FIFO: `walkcover._paths.open_file`), so that a run opening it meanwhile finds its
    file gone and tries again (`FileLock` checks). Left alone where that cannot be told, and where
    it is no regular file."""
    if sys.platform == "win32":
        return
    import fcntl

    try:
        fd = open_file(path)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink()
    except OSError:  # held by a live run (its refusal names it), or not ours to remove
        pass
    finally:
        os.close(fd)


def _write_owner(owner: Path, info: dict[str, object]) -> None:
    """Write the holder's file anew (an earlier run's, or a link planted in its place, is
    removed first: the new file is created, never written through a link)."""
    owner.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(owner, flags, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(info, ensure_ascii=False))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _describe(owner: Path) -> str:
    try:
        if owner.is_symlink():
            return "holder unknown"
        info = json.loads(owner.read_text(encoding="utf-8"))
        text = (
            f"pid {info['pid']} on {info['host']}, user {info['user']}, "
            f"`walkcover {info['command']}` since {info['since']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
    if info["host"] == socket.gethostname() and not _alive(info["pid"]):
        text += "; that process has ended, so a process it started holds the lock: stop it"
    return text


def _alive(pid: object) -> bool:
    """Whether process `pid` of this machine is running (True when that cannot be told)."""
    if not isinstance(pid, int) or pid <= 0 or sys.platform == "win32":
        return True  # (on Windows os.kill would stop the process, not probe it)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True
