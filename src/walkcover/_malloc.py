"""glibc's malloc, tuned for a run: its threads reuse the memory each other frees, and large
blocks go back to the system when freed.

glibc gives each new thread its own arena, up to eight per core. Memory one thread frees stays in its
arena, out of reach of the others, and is seldom returned to the system. A run's threads (its two
workers, the readers' and writers' pools) each allocate and free hundreds of megabytes in turn, so
on the L city the peak resident memory was about 300 MB higher than with two arenas, for the same
time (`docs/benchmarks.md`).

glibc also raises its mmap threshold, from 128 KiB up to 32 MiB, each time a large block is freed:
after that, the arrays a run makes by the hundred (a district's cells, a standard's distances, a
few MB each) come from the heap, and freed between two blocks still in use they stay resident.
A fixed threshold keeps every block from `MMAP_THRESHOLD_BYTES` up in its own mapping, returned
to the system the moment it is freed: on the L city, 150-250 MB less at the peak, in the same time.
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

#: ``mallopt``'s parameter for the mmap threshold (glibc's ``malloc.h``).
_M_MMAP_THRESHOLD = -3

#: Arenas for a run: as many as threads that work at once (walkcover's pools run two).
RUN_ARENAS = 2

#: Blocks from this size up are mapped on their own, and unmapped when freed (`fix_mmap_threshold`).
MMAP_THRESHOLD_BYTES = 1 << 20

_done = False
_threshold_done = False


def _mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt``; False where there is none to call (another C library)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(param, ctypes.c_int(value)))
    except (OSError, AttributeError):  # no mallopt to call: the defaults stay
        return False


def tune_malloc() -> None:
    """What a run sets before its threads start: `cap_arenas` and `fix_mmap_threshold`."""
    cap_arenas()
    fix_mmap_threshold()


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
    ok = _mallopt(_M_ARENA_MAX, n)
    log.debug("malloc arenas capped at %d: %s", n, ok)
    return ok


def fix_mmap_threshold(n_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at `n_bytes` for the rest of the process: every block from that
    size up is mapped on its own and returned to the system when freed (glibc's own threshold
    rises to 32 MiB as the run frees large blocks, and the blocks under it then stay resident).

    Does nothing when the user set the threshold (``MALLOC_MMAP_THRESHOLD_``, or ``GLIBC_TUNABLES``
    naming ``mmap_threshold``: glibc read it at start), on a C library other than glibc, or after
    the first call. Returns whether the threshold was set now.
    """
    global _threshold_done
    users = "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in os.environ.get(
        "GLIBC_TUNABLES", ""
    )
    if _threshold_done or users or platform.libc_ver()[0] != "glibc":
        return False
    _threshold_done = True
    ok = _mallopt(_M_MMAP_THRESHOLD, n_bytes)
    log.debug("malloc's mmap threshold fixed at %d bytes: %s", n_bytes, ok)
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
