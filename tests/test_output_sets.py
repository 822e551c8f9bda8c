"""A failed, killed or concurrent run leaves the previous complete results or the new complete ones,
never a mix (issue 11, items 6–10)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from hostile import hostile_city
from walkcover._atomic import STAGING_PREFIX, staged_folder
from walkcover._lock import output_lock
from walkcover.cli import app

runner = CliRunner()
SRC = Path(__file__).resolve().parents[1] / "src"


def digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) with its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def columns(gpkg: Path) -> set[str]:
    return set(pyogrio.read_info(gpkg, layer="demand")["fields"])


@pytest.fixture
def city(tmp_path):
    cfg, _ = hostile_city(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["run", "--city", str(cfg), "--standard", "toilet", "--out", str(out), "--no-cache"]
    )
    assert res.exit_code == 0, res.output
    return cfg, out


def run_args(cfg: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--city", str(cfg), "--standard", "toilet,kindergarten", "--out", str(out),
            "--no-cache", "--overwrite", *extra]  # fmt: skip


def test_failure_in_a_map_keeps_that_districts_previous_set(city, monkeypatch):
    cfg, out = city
    d1, d2 = out / "handmade" / "d1", out / "handmade" / "d2"
    before_d1 = digest(d1)
    summary_before = pd.read_csv(out / "handmade" / "summary.csv")
    import walkcover.presentation.maps

    real = walkcover.presentation.maps.district_map

    def broken(result, district_id, **kw):
        if district_id == "d1":
            raise OSError(28, "No space left on device")
        return real(result, district_id, **kw)

    monkeypatch.setattr(walkcover.presentation.maps, "district_map", broken)
    res = runner.invoke(app, run_args(cfg, out))
    assert res.exit_code == 2
    line = " ".join(res.output.split())
    assert "district d1: writing map.html failed: the disk is full" in line
    assert f"its previous results in {d1} are kept" in line
    assert "Traceback" not in res.output
    # d1: exactly the previous set; d2: the new set (it measures kindergartens now)
    assert digest(d1) == before_d1
    assert "kindergarten_dist_m" not in columns(d1 / "coverage.gpkg")
    assert "kindergarten_dist_m" in columns(d2 / "coverage.gpkg")
    assert (d2 / "map.html").exists()
    summary = pd.read_csv(out / "handmade" / "summary.csv")
    assert set(summary.loc[summary.district == "d1", "standard"]) == {"toilet"}
    assert set(summary.loc[summary.district == "d2", "standard"]) == {"toilet", "kindergarten"}
    pd.testing.assert_frame_equal(
        summary[summary.district == "d1"].reset_index(drop=True),
        summary_before[summary_before.district == "d1"].reset_index(drop=True),
        check_dtype=False,  # an empty text column (capacity_unit) reads as numbers when alone
    )
    assert not [p for p in (out / "handmade").iterdir() if p.name.startswith(".")]


def test_bad_tiles_with_overwrite_is_refused_before_any_work(city):
    cfg, out = city
    before = digest(out)
    res = runner.invoke(app, run_args(cfg, out, "--tiles", "osmm"))
    assert res.exit_code == 2
    assert "--tiles 'osmm' is not a base map walkcover knows; choose osm" in " ".join(
        res.output.split()
    )
    assert digest(out) == before


def test_a_rerun_replaces_stale_reports_and_keeps_proposals(city):
    cfg, out = city
    d1 = out / "handmade" / "d1"
    (d1 / "report.pdf").write_bytes(b"%PDF old figures")
    (d1 / "proposed_sites.csv").write_text("rank\n1\n", encoding="utf-8")
    res = runner.invoke(app, run_args(cfg, out))
    assert res.exit_code == 0, res.output
    assert not (d1 / "report.pdf").exists()
    assert (d1 / "proposed_sites.csv").read_text(encoding="utf-8") == "rank\n1\n"
    assert f"removed {d1 / 'report.pdf'}" in " ".join(res.output.split())


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
        timeout=300,
    )


KILL_AFTER = """
    import os, signal, sys
    import walkcover.{module} as target
    real = target.{function}
    def then_kill(*args, **kwargs):
        {call}
        os.kill(os.getpid(), signal.SIGKILL)
    target.{function} = then_kill
    from walkcover.cli import entry
    sys.argv = ["walkcover", *sys.argv[1:]]
    entry()
"""


@pytest.mark.parametrize(
    ("module", "function", "call", "leftover"),
    [
        # killed between the GeoPackage and the map
        ("presentation.outputs", "write_layers", "real(*args, **kwargs)", STAGING_PREFIX),
        # killed inside the GeoPackage write, after its first layer (-journal files and all)
        ("presentation.outputs", "write_layers", "args[1]['demand'].to_file(args[0].with_name('.walkcover-tmp-x.gpkg'), layer='demand')", STAGING_PREFIX),
        # killed between the two renames of the swap: the old set is aside, the new one not in place
        ("_atomic", "swap_in", "args[1].rename(args[1].with_name('.walkcover-old-' + args[1].name + '-k1ll3d'))", ".walkcover-old-"),
    ],
)  # fmt: skip
def test_a_kill_leaves_the_previous_set_or_a_repairable_state(
    city, module, function, call, leftover
):
    cfg, out = city
    d1 = out / "handmade" / "d1"
    before = digest(d1)
    code = KILL_AFTER.format(module=module, function=function, call=call)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *run_args(cfg, out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    left = [p.name for p in (out / "handmade").iterdir() if p.name.startswith(".")]
    assert any(n.startswith(leftover) for n in left), left
    if leftover == STAGING_PREFIX:
        assert digest(d1) == before  # untouched while the new set was being built
    # the next holder of the lock repairs: the previous complete set is back, leftovers gone
    with output_lock(out, command="test") as repairs:
        assert repairs
    assert digest(d1) == before
    assert not [p for p in (out / "handmade").iterdir() if p.name.startswith(".")]
    assert not list(out.glob(".walkcover.lock*"))


def test_a_second_run_into_the_same_folder_is_refused_and_says_who(city):
    cfg, out = city
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from walkcover._lock import output_lock
            with output_lock({str(out)!r}, command="run"):
                print("held", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(SRC)},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        before = digest(out)
        res = runner.invoke(app, run_args(cfg, out))
        assert res.exit_code == 2
        line = " ".join(res.output.split())
        assert f"is in use by another walkcover run (pid {holder.pid} on" in line
        assert "`walkcover run`" in line and "wait for it to finish or choose another --out" in line
        assert digest(out) == before
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    res = runner.invoke(app, run_args(cfg, out))
    assert res.exit_code == 0, res.output


def test_staged_folder_keeps_the_old_set_when_the_block_fails(tmp_path):
    final = tmp_path / "d"
    final.mkdir()
    (final / "a.txt").write_text("old a")
    (final / "b.txt").write_text("old b")
    with pytest.raises(RuntimeError), staged_folder(final, keep=["b.txt"]) as stage:
        assert (stage / "b.txt").read_text() == "old b"
        (stage / "a.txt").write_text("new a")
        raise RuntimeError("disk full")
    assert digest(final) == {"a.txt": hashlib.sha256(b"old a").hexdigest(),
                             "b.txt": hashlib.sha256(b"old b").hexdigest()}  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    with staged_folder(final, keep=["b.txt"]) as stage:
        (stage / "a.txt").write_text("new a")
    assert (final / "a.txt").read_text() == "new a" and (final / "b.txt").read_text() == "old b"
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A small tmpfs mounted at `path` for the block; skipped when this root may not mount one (a
    container without CAP_SYS_ADMIN), failed on any other error."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                         capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0 and "permission denied" in res.stderr.lower():
        pytest.skip(f"root here may not mount a tmpfs: {res.stderr.strip()}")
    assert res.returncode == 0, f"mount -t tmpfs failed although running as root: {res.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a small tmpfs needs root"
)


@needs_root
def test_disk_full_at_the_geopackage_is_one_line_and_keeps_the_previous_set(tmp_path):
    cfg, _ = hostile_city(tmp_path)
    with tmpfs(tmp_path / "disk", "size=4m") as disk:
        out = disk / "out"
        res = runner.invoke(app, ["run", "--city", str(cfg), "--standard", "toilet", "--out", str(out),
                                  "--no-cache", "--no-maps"])  # fmt: skip
        assert res.exit_code == 0, res.output
        before = digest(out)
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 48 * 1024))
        res = runner.invoke(app, run_args(cfg, out, "--no-maps"))
        assert res.exit_code == 2
        line = " ".join(res.output.split())
        assert "writing coverage.gpkg failed: the disk is full" in line, line
        assert "Traceback" not in res.output and "its previous results in" in line
        assert digest(out) == before


@needs_root
def test_read_only_out_is_refused_before_any_work(tmp_path):
    cfg, _ = hostile_city(tmp_path)
    with tmpfs(tmp_path / "ro", "size=1m,ro") as ro:
        res = runner.invoke(
            app, ["run", "--city", str(cfg), "--out", str(ro / "out"), "--no-cache"]
        )
        assert res.exit_code == 2
        line = " ".join(res.output.split())
        assert (
            f"--out '{ro / 'out'}' cannot be written (Read-only file system); pass a folder you can write to"
            in line
        )


def test_files_and_their_names_reach_the_disk_before_they_count(tmp_path, monkeypatch):
    """A file written atomically, and every file of a staged folder, is flushed (fsync) before the
    rename that makes it count, and the folder holding the new name after: a power cut leaves the
    previous set or the new one, never a name pointing at nothing."""
    import os

    from walkcover import _atomic

    synced: list[tuple[str, str]] = []
    real = os.fsync

    def record(fd: int) -> None:
        path = Path(f"/proc/self/fd/{fd}").readlink()
        synced.append((str(path), "dir" if path.is_dir() else "file"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    target = tmp_path / "one" / "table.csv"
    _atomic.write_atomic(target, lambda tmp: tmp.write_text("a,b\r\n", encoding="utf-8"))
    files = [p for p, kind in synced if kind == "file"]
    assert len(files) == 1 and _atomic.TMP_PREFIX in files[0]  # the data, under its temporary name
    assert synced[-1] == (str(target.parent), "dir")  # then the rename
    synced.clear()
    with _atomic.staged_folder(tmp_path / "district") as stage:
        (stage / "run.json").write_text("{}", encoding="utf-8")
        (stage / "maps").mkdir()
        (stage / "maps" / "toilet.png").write_bytes(b"png")
    names = sorted(Path(p).name for p, kind in synced if kind == "file")
    assert names == ["run.json", "toilet.png"]
    assert synced[-1] == (str(tmp_path), "dir")
    assert (tmp_path / "district" / "maps" / "toilet.png").read_bytes() == b"png"


def test_a_report_that_fails_leaves_the_city_index_as_it_was(city, monkeypatch):
    """`report` over every district, one failing: the city index (whose links lead to every
    district's report) is not made again, and says so; the failing district's folder is as it was.
    It used to be written with links to the missing report."""
    from walkcover.presentation import report

    cfg, out = city
    d1 = out / "handmade" / "d1"
    before = digest(d1)
    real = report.write_district_report

    def failing(run, stage):
        if run.slug == "d1":
            raise OSError(28, "No space left on device")
        return real(run, stage)

    monkeypatch.setattr(report, "write_district_report", failing)
    res = runner.invoke(app, ["report", "--city", str(cfg), "--out", str(out)])
    assert res.exit_code != 0
    text = " ".join(res.output.split())
    assert "district d1: writing report failed" in text
    assert "index.html failed: not made again while a district's report fails" in text
    assert not (out / "handmade" / "index.html").exists()
    assert digest(d1) == before
    assert (out / "handmade" / "d2" / "report.html").is_file()  # the others' reports are written


def test_a_city_page_that_fails_leaves_its_chart_as_it_was(city, monkeypatch):
    """The city page and its chart are one pair: a page that cannot be made leaves neither
    written (the chart used to be replaced before the page was made)."""
    from walkcover.presentation import report

    cfg, out = city
    base = out / "handmade"
    assert runner.invoke(app, ["report", "--city", str(cfg), "--out", str(out)]).exit_code == 0
    chart = (base / "coverage_by_district.png").read_bytes()
    (base / "coverage_by_district.png").write_bytes(b"the previous chart")
    (base / "index.html").write_text("the previous page", encoding="utf-8")

    def broken(*_args, **_kwargs):
        raise RuntimeError("the template broke")

    monkeypatch.setattr(report, "city_index_html", broken)
    res = runner.invoke(app, ["report", "--city", str(cfg), "--out", str(out), "--overwrite"])
    assert res.exit_code != 0
    assert "the template broke" in " ".join(res.output.split())
    assert (base / "coverage_by_district.png").read_bytes() == b"the previous chart"
    assert (base / "index.html").read_text(encoding="utf-8") == "the previous page"
    monkeypatch.undo()
    res = runner.invoke(app, ["report", "--city", str(cfg), "--out", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert (base / "coverage_by_district.png").read_bytes() == chart


def test_a_full_temporary_folder_is_named_not_the_out_folder(tmp_path, monkeypatch):
    """A write that fails for want of space while --out has room: the temporary folder (where a
    PDF's fonts go) is the one named, with TMPDIR as the way out."""
    import errno
    import tempfile

    from walkcover.presentation import outputs

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(outputs, "free_bytes", lambda where: 0 if Path(where) == tmp else 10**12)
    said = outputs.failure_reason(OSError(errno.ENOSPC, "No space left on device"), where=tmp_path)
    assert said.startswith(f"the temporary folder {str(tmp)!r} is full") and "TMPDIR" in said
    monkeypatch.setattr(outputs, "free_bytes", lambda where: 0)  # --out's disk full: as before
    said = outputs.failure_reason(OSError(errno.ENOSPC, "No space left on device"), where=tmp_path)
    assert said.startswith("the disk is full")


def test_a_districts_folder_is_as_readable_as_any_of_the_users(city):
    """A district folder swapped into place has the user's umask, as its files do (a staging folder
    made by `tempfile.mkdtemp` is the owner's alone: colleagues could not read the results)."""
    import stat

    _, out = city
    mask = os.umask(0)
    os.umask(mask)
    for folder in (out / "handmade" / "d1", out / "handmade" / "d2"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask, folder
