"""Python's cyclic garbage collector, paused while a run measures and writes.

Reference counting frees almost everything a run makes; the cyclic collector only looks for
reference cycles, and a run makes few (about 6,000 objects on the L city, freed after it). But each
of its full passes walks every container object alive, while holding the interpreter lock: a city's
features keep a dict of tags each, and its geometries sit in object arrays the collector walks cell
by cell. On the L city, 30 full passes took 4 s of a 50 s run, and the run took 45 s with the
collector paused, for 90 MB more at the peak (`docs/benchmarks.md`). A county with no data spends
about 0.1 s of its second in collections, half of them while importing.

`collector_paused` pauses it for a block and resumes it after the last block still running (two
threads may each run one); a collector the caller has turned off stays off.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_blocks = 0  # blocks running now
_resume = False  # whether the collector was on when the first of them started


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector paused (see the module's notes)."""
    global _blocks, _resume
    with _lock:
        if _blocks == 0:
            _resume = gc.isenabled()
            gc.disable()
        _blocks += 1
    try:
        yield
    finally:
        with _lock:
            _blocks -= 1
            if _blocks == 0 and _resume:
                gc.enable()


__all__ = ["collector_paused"]
