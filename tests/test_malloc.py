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
