"""The malloc arena cap a run sets (`walkcover._malloc.cap_arenas`): set once, never over the
user's own ``MALLOC_ARENA_MAX``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

CALL_TWICE = "from walkcover._malloc import cap_arenas; print(cap_arenas(), cap_arenas())"


def _run(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CALL_TWICE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the cap is glibc's mallopt")
def test_the_cap_is_set_once():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True False"


def test_the_users_own_setting_stands():
    env = {**os.environ, "MALLOC_ARENA_MAX": "8"}
    assert _run(env) == "False False"


FREE_AND_RELEASE = """
import numpy as np, pandas as pd
from walkcover._malloc import release_free_memory
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6
# many small blocks (each under glibc's mmap threshold: they stay in the heap when freed)
# and an Arrow string column, then all freed
blocks = [np.ones(2000) for _ in range(40_000)]
strings = pd.Series([f"way/{i}" for i in range(2_000_000)], dtype="str")
keep = np.ones(10)  # allocated last: the heap's top stays in use
del blocks, strings
before = rss_mb()
release_free_memory()
print(round(before - rss_mb()))
"""


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or not Path("/proc/self/statm").exists(),
    reason="glibc's malloc_trim, resident memory from /proc",
)
def test_freed_memory_goes_back_to_the_system():
    """What a phase freed (about 640 MB of numpy blocks and an Arrow column here) leaves the
    process's resident memory when `release_free_memory` is called between phases."""
    out = subprocess.run(
        [sys.executable, "-c", FREE_AND_RELEASE], capture_output=True, text=True, check=True
    )
    assert int(out.stdout.strip()) > 300


THRESHOLD_TWICE = (
    "from walkcover._malloc import fix_mmap_threshold; "
    "print(fix_mmap_threshold(), fix_mmap_threshold())"
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the threshold is glibc's mallopt")
def test_the_mmap_threshold_is_set_once():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    env["GLIBC_TUNABLES"] = ""
    out = subprocess.run(
        [sys.executable, "-c", THRESHOLD_TWICE], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True False"


@pytest.mark.parametrize(
    "setting",
    [{"MALLOC_MMAP_THRESHOLD_": "65536"}, {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}],
)
def test_the_users_own_threshold_stands(setting):
    env = {**os.environ, **setting}
    out = subprocess.run(
        [sys.executable, "-c", THRESHOLD_TWICE], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False False"


FREED_BETWEEN_KEPT = """
import sys, numpy as np
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6
big = np.ones(4_000_000)
del big  # a large block freed: glibc's own threshold rises past the 2 MB blocks below
if sys.argv[1] == "fixed":
    from walkcover._malloc import fix_mmap_threshold
    assert fix_mmap_threshold()
blocks = [np.ones(250_000) for _ in range(300)]  # 2 MB each, 600 MB in all
before = rss_mb()
del blocks[::2]  # every other block: each freed one lies between two still in use
print(round(before - rss_mb()))
"""


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or not Path("/proc/self/statm").exists(),
    reason="glibc's mallopt, resident memory from /proc",
)
def test_with_the_threshold_fixed_freed_blocks_leave_at_once():
    """Blocks of a few MB freed between blocks still in use: resident until trimmed with glibc's
    own threshold (the test shows it can fail), returned when freed with the run's. (No
    ``MALLOC_*`` setting of this process goes to the child: any of them, e.g. the
    ``MALLOC_TRIM_THRESHOLD_`` Dask sets for its workers, stops glibc from raising its threshold.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["GLIBC_TUNABLES"] = ""

    def returned_mb(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", FREED_BETWEEN_KEPT, mode],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout.strip())

    assert returned_mb("glibc") < 50
    assert returned_mb("fixed") > 250
