"""The malloc arena cap a run sets (`walkcover._malloc.cap_arenas`): set once, never over the
user's own ``MALLOC_ARENA_MAX``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

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
