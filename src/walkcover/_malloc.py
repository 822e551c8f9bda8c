"""glibc's malloc arenas, capped for a run so its threads reuse the memory each other frees.

glibc gives each new thread its own arena, up to eight per core. Memory one thread frees stays in its
arena, out of reach of the others, and is seldom returned to the system. A run's threads (its two
workers, the readers' and writers' pools) each allocate and free hundreds of megabytes in turn, so
on the L city the peak resident memory was about 300 MB higher than with two arenas, for the same
time (`docs/benchmarks.md`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

#: ``mallopt``'s parameter for the most arenas (glibc's ``malloc.h``).
_M_ARENA_MAX = -8

#: Arenas for a run: as many as threads that work at once (walkcover's pools run two).
RUN_ARENAS = 2

_done = False


def cap_arenas(n: int = RUN_ARENAS) -> bool:
    """Cap glibc's malloc arenas at `n` for the rest of the process (threads started later).

    Does nothing when the ``MALLOC_ARENA_MAX`` environment variable is set (glibc read it at start:
    the user's choice stands), on a C library other than glibc, or after the first call. Returns
    whether the cap was set now.
    """
    global _done
    if _done or "MALLOC_ARENA_MAX" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    _done = True
    try:
        libc = ctypes.CDLL(None)
        ok = bool(libc.mallopt(_M_ARENA_MAX, ctypes.c_int(n)))
    except (OSError, AttributeError):  # no mallopt to call: the defaults stay
        return False
    log.debug("malloc arenas capped at %d: %s", n, ok)
    return ok


def release_free_memory() -> None:
    """Give the memory freed so far back to the system, between a run's phases.

    Arrow's allocator (mimalloc or jemalloc, for pandas' string columns) keeps the pages it frees
    for its own reuse, out of reach of numpy's and GEOS's allocations, which come next; glibc keeps
    freed pages in each thread's arena, out of reach of the other threads'. On the L city a run
    held about 400 MB so after measuring (`docs/benchmarks.md`). ``malloc_trim`` is glibc's: on
    another C library only Arrow's pages are given back.
    """
    import pyarrow as pa  # (pandas' string columns need it: always installed)

    pa.default_memory_pool().release_unused()
    if platform.libc_ver()[0] == "glibc":
        with contextlib.suppress(OSError, AttributeError):  # no malloc_trim to call
            ctypes.CDLL(None).malloc_trim(0)
