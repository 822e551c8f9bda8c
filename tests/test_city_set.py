"""The city-level files are one set: a failure or a kill at any file leaves the previous complete set
or the new complete one (after the next start's repair), and a reader can always tell (issue "One
set of figures")."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from walkcover._atomic import write_atomic
from walkcover.presentation.tables import (
    CITY_MANIFEST,
    SET_PREFIX,
    CitySetError,
    CityTables,
    check_city_set,
    recover_city_set,
    write_city_set,
)

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def tables(version: str) -> CityTables:
    n = 3
    summary = pd.DataFrame(
        {
            "district": [f"41020{i}" for i in range(n)],
            "district_id": [f"41020{i}" for i in range(n)],
            "district_name": [f"={version}{i}\r'x" for i in range(n)],
            "standard": ["toilet"] * n,
            "residents": np.arange(n, dtype=float) + (10 if version == "new" else 0),
        }
    )
    indicators = summary[["district", "district_id", "district_name"]].assign(value=1.0)
    groups = (
        pd.DataFrame({"group": ["g"], "standard": ["toilet"], "residents": [3.0]})
        if version == "old"
        else None  # the new set has no groups: the old group_summary.csv must go
    )
    return CityTables(summary, indicators, groups)


def pages(version: str):
    def write(stage: Path) -> None:
        page = f"<p>{version} map</p>"
        write_atomic(stage / "map.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))

    return write


def write_old(city: Path) -> None:
    write_city_set(city, tables("old"), pages=pages("old"))


def write_new(city: Path) -> None:
    write_city_set(city, tables("new"), pages=pages("new"))


def digest(folder: Path) -> dict[str, str]:
    """The city files (hidden ones aside) with their SHA-256."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


#: Counts the renames that put files in place (every file walkcover writes is renamed in place
#: once complete: each staged file, the seal, each move into the city folder, the manifest) and
#: dies like a SIGKILL (no clean-up) before rename number N + 1.
KILL_AT = """
    import os, sys
    sys.path.insert(0, {tests!r})
    real, calls = os.replace, [0]
    def counted(src, dst, *args, **kwargs):
        calls[0] += 1
        if calls[0] > {n}:
            os._exit(9)
        return real(src, dst, *args, **kwargs)
    os.replace = counted
    from test_city_set import write_new
    write_new({city!r})
    print(calls[0])
"""


def _start(city: Path, n: int) -> subprocess.Popen:
    code = textwrap.dedent(KILL_AT.format(tests=str(TESTS), n=n, city=str(city)))
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )


def test_a_kill_at_each_city_file_leaves_the_old_or_the_new_complete_set(tmp_path):
    ref_old, ref_new = tmp_path / "ref-old", tmp_path / "ref-new"
    write_old(ref_old)
    write_new(ref_new)
    old, new = digest(ref_old), digest(ref_new)
    assert old != new and "group_summary.csv" in old and "group_summary.csv" not in new
    # how many renames a whole write makes
    write_old(tmp_path / "count")
    proc = _start(tmp_path / "count", 10**6)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    total = int(out.split()[-1])
    # each file staged, the seal, then each file and the manifest moved in place
    assert total == 2 * len(new)
    sealed_at = total - len(new)
    procs = []
    for n in range(total):
        city = tmp_path / f"kill-{n}"
        write_old(city)
        procs.append((n, city, _start(city, n)))
    seen = {"old": 0, "new": 0, "mixed, refused": 0}
    for n, city, proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 9, (n, err)
        # a reader sees the old set, the new set, or is told the set is mixed
        try:
            check_city_set(city)
        except CitySetError as exc:
            assert str(city) in str(exc) and "\n" not in str(exc)
            seen["mixed, refused"] += 1
        else:
            assert digest(city) in (old, new), n
            seen["old" if digest(city) == old else "new"] += 1
        # the next start repairs: the old complete set, or the new one
        recover_city_set(city)
        check_city_set(city)
        assert digest(city) in (old, new), n
        assert not [p.name for p in city.iterdir() if p.name.startswith(".")], n
        if n < sealed_at:  # killed before the seal: the old set, untouched
            assert digest(city) == old, n
        else:  # sealed: completed
            assert digest(city) == new, n
    assert seen["old"] and seen["mixed, refused"], seen


def test_a_failure_while_building_keeps_the_old_set(tmp_path):
    write_old(tmp_path)
    before = digest(tmp_path)

    def broken(stage: Path) -> None:
        (stage / "map.html").write_text("half", encoding="utf-8")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_city_set(tmp_path, tables("new"), pages=broken)
    assert digest(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    check_city_set(tmp_path)


def test_a_changed_missing_or_extra_city_file_is_named(tmp_path):
    write_new(tmp_path)
    check_city_set(tmp_path)
    (tmp_path / "group_summary.csv").write_text("group\nx\n", encoding="utf-8")
    with pytest.raises(CitySetError, match="group_summary.csv is not one of the city files"):
        check_city_set(tmp_path)
    (tmp_path / "group_summary.csv").unlink()
    (tmp_path / "summary.xlsx").unlink()
    with pytest.raises(CitySetError, match=r"summary\.xlsx is missing"):
        check_city_set(tmp_path)
    write_new(tmp_path)
    (tmp_path / "summary.csv").write_bytes(b"district\r\n=1+1\r\n")
    with pytest.raises(CitySetError, match=r"summary\.csv is not the file of this set"):
        check_city_set(tmp_path)
    (tmp_path / CITY_MANIFEST).write_text("[1]", encoding="utf-8")
    with pytest.raises(CitySetError, match="city_files.json is not a list of city files"):
        check_city_set(tmp_path)


def test_an_unsealed_staging_folder_is_removed_and_a_sealed_one_completed(tmp_path):
    write_old(tmp_path)
    before = digest(tmp_path)
    (tmp_path / f"{SET_PREFIX}abc").mkdir()
    (tmp_path / f"{SET_PREFIX}abc" / "summary.csv").write_text("half", encoding="utf-8")
    check_city_set(tmp_path)  # an unsealed set is not in place yet: the old one is whole
    assert recover_city_set(tmp_path)
    assert digest(tmp_path) == before and not list(tmp_path.glob(f"{SET_PREFIX}*"))


KILL_RUN = """
    import os, signal, sys
    import walkcover.presentation.file_set as target
    real = target._put_in_place
    def first_then_kill(city_dir, stage, kind):
        (stage / "summary.csv").replace(city_dir / "summary.csv")
        os.kill(os.getpid(), signal.SIGKILL)
    target._put_in_place = first_then_kill
    from walkcover.cli import entry
    sys.argv = ["walkcover", *sys.argv[1:]]
    entry()
"""


def test_a_run_killed_while_putting_the_city_files_in_place(tmp_path):
    """Through `walkcover run`: killed with only the new ``summary.csv`` in place, the folder is
    refused as mixed (naming the file); the next run's start completes the new set."""
    from typer.testing import CliRunner

    from hostile import hostile_city
    from walkcover._lock import output_lock
    from walkcover.cli import app

    cfg, _ = hostile_city(tmp_path)
    out = tmp_path / "out"
    city = out / "handmade"
    args = ["run", "--city", str(cfg), "--standard", "toilet", "--out", str(out), "--no-cache"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    check_city_set(city)
    more = [*args[:4], "toilet,kindergarten", *args[5:], "--overwrite"]
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILL_RUN), *more],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    with pytest.raises(CitySetError, match=r"summary\.csv is not the file of this set"):
        check_city_set(city)
    with output_lock(out, command="test"):
        assert recover_city_set(city)
    check_city_set(city)
    summary = pd.read_csv(city / "summary.csv", encoding="utf-8-sig")
    assert set(summary["standard"]) == {"toilet", "kindergarten"}
    import openpyxl

    sheet = openpyxl.load_workbook(city / "summary.xlsx")["summary"]
    header = [c.value for c in sheet[1]]
    standards = {row[header.index("standard")].value for row in sheet.iter_rows(min_row=2)}
    assert standards == {"toilet", "kindergarten"}
    assert not [p for p in city.iterdir() if p.name.startswith(".")]


def test_a_file_that_cannot_be_replaced_keeps_the_sealed_set_until_it_can(tmp_path, monkeypatch):
    """A file of the old set that cannot be replaced (an immutable file, a folder that cannot be
    written) stops the new set after its seal: the run says the new files are complete and will be
    completed, not that the previous ones are kept; the folder reads as mixed; a repair while the
    file still cannot be replaced keeps the sealed set (it used to remove it, leaving the folder
    mixed for good); once it can, the repair completes the new set."""
    from walkcover.presentation.file_set import SetNotInPlaceError

    ref = tmp_path / "ref"
    write_new(ref)
    city = tmp_path / "city"
    write_old(city)
    real = Path.replace
    stuck = {"on": True}

    def replace(self, target):
        if stuck["on"] and Path(target) == city / "summary.parquet":  # (not in the stage)
            raise PermissionError(1, "Operation not permitted", str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "replace", replace)
    with pytest.raises(SetNotInPlaceError, match="complete, but putting them in place failed"):
        write_new(city)
    with pytest.raises(CitySetError, match="a run was interrupted while replacing it"):
        check_city_set(city)
    (stage,) = city.glob(f"{SET_PREFIX}*")
    done = recover_city_set(city)
    assert len(done) == 1 and "could not complete the city files yet" in done[0]
    assert stage.is_dir() and (stage / CITY_MANIFEST).is_file()  # kept for the next try
    stuck["on"] = False
    assert recover_city_set(city) == [
        "completed the city files (a run was interrupted while replacing them)"
    ]
    check_city_set(city)
    assert digest(city) == digest(ref)
