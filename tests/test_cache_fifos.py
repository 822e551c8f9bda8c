"""A FIFO (named pipe) planted in the cache where walkcover keeps a file: opened as a file, it
waits for a writer for ever, and a run (or ``walkcover cache info``) would never end, not even on
Ctrl-C while a worker thread waits. Each is taken for a damaged item: said, and made again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs: POSIX")

SRC = str(Path(__file__).resolve().parents[1] / "src")
#: Far longer than either command takes on the sample; a FIFO waited on never ends.
LIMIT_S = 240


def walkcover(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        return subprocess.run(
            [sys.executable, "-m", "walkcover", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=LIMIT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"walkcover {' '.join(args)} waited on a FIFO for {LIMIT_S} s")


def fifo_in_place_of(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.fixture
def cache(sample_results, sample_cache, tmp_path) -> Path:
    """A copy of the sample's cache (a run of every district and standard has filled it)."""
    folder = tmp_path / "cache"
    shutil.copytree(sample_cache, folder, symlinks=True)
    return folder


def test_a_run_never_waits_on_fifos_planted_in_the_cache(cache, tmp_path):
    planted = [cache / "sources.json"]
    for kind, pattern in (("standards", "*.npz"), ("layers", "*.json"), ("snaps", "*.npz")):
        planted += sorted((cache / kind).glob(pattern))
    assert len(planted) > 3
    for path in planted:
        fifo_in_place_of(path)
    res = walkcover(
        "run",
        "--city",
        "helsinki-sample",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(cache),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "helsinki-sample" / "summary.csv").is_file()
    assert (cache / "sources.json").is_file()  # written again in its place


def test_cache_info_never_waits_on_a_fifo_planted_as_an_entrys_meta_json(cache):
    # (the session's sample cache may hold other tests' entries too: any one will do)
    entry = min(p for p in (cache / "osm").iterdir() if not p.name.startswith("."))
    fifo_in_place_of(entry / "meta.json")
    res = walkcover("cache", "info", "--cache-dir", str(cache))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "damaged" in res.stdout and entry.name[:12] in res.stdout
