"""One run at a time per output folder: an exclusive lock that says who holds it.

Two runs writing into one ``--out`` would each read, merge and rewrite ``summary.csv`` and lose the
other's rows. The lock is an operating-system file lock (``filelock``: ``flock`` on POSIX, ``LockFileEx``
on Windows), so it is released when its process ends, even by ``SIGKILL``; beside it a small text file
says which process holds it, for the message the second run prints.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from walkcover._atomic import recover
from walkcover._errors import OutputLockedError

LOCK_NAME = ".walkcover.lock"
#: Output folders this process holds the lock of (so nested holders in one process reenter).
_held: set[Path] = set()
OWNER_NAME = ".walkcover.lock.owner"


@contextmanager
def output_lock(out: Path, *, command: str) -> Iterator[list[str]]:
    """Hold the exclusive lock of output folder `out` for the block.

    Once held, what an interrupted earlier run left behind is repaired (see `walkcover._atomic.recover`)
    in `out` and in each city folder under it; the block receives the list of repairs made.

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
        owner.write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
        _held.add(key)
        repairs = recover(out)
        for sub in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
            repairs += [f"{sub.name}: {r}" for r in recover(sub)]
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


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _describe(owner: Path) -> str:
    try:
        info = json.loads(owner.read_text(encoding="utf-8"))
        return (
            f"pid {info['pid']} on {info['host']}, user {info['user']}, "
            f"`walkcover {info['command']}` since {info['since']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
