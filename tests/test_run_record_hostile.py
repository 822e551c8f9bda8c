"""A run folder comes back edited: ``report`` treats ``run.json``, ``coverage.gpkg`` and the city
tables as untrusted input. Nothing they say makes walkcover write, delete or link anywhere but
inside ``--out``; every broken file ends in one line that names it and the fix."""

from __future__ import annotations

import json
import os
import shutil
import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hostile import plant_canary, tree_digest
from walkcover._errors import UnsafePathError
from walkcover._paths import check_safe_name, inside, relative_href
from walkcover.cli import app
from walkcover.presentation.record import MAX_RECORD_BYTES, RunRecordError, load_record

runner = CliRunner()


@pytest.fixture
def world(measured, tmp_path):
    """A fresh copy of the run's ``--out`` (``tmp/out``) beside a canary folder (``tmp/victim``)
    that nothing may touch."""
    cfg, out = measured
    shutil.copytree(out, tmp_path / "out", symlinks=True)
    return cfg, tmp_path / "out", plant_canary(tmp_path / "victim")


def report(cfg, out, *extra: str):
    return runner.invoke(app, ["report", "--city", str(cfg), "--out", str(out), *extra])


def record_path(out: Path, district: str = "d1") -> Path:
    return out / "handmade" / district / "run.json"


def edit_record(out: Path, change) -> None:
    path = record_path(out)
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    # a number too large for a float, as JSON text (json.dumps would write "Infinity")
    path.write_text(json.dumps(data).replace('"1e999"', "1e999"), encoding="utf-8")


def one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "this is a walkcover bug" not in text and "Traceback" not in res.output
    for n in needles:
        assert n in text, (n, res.output)


@pytest.mark.parametrize("slug", ["../../victim", "ABSOLUTE", "javascript:alert(document.domain)"])
def test_a_tampered_slug_names_no_folder_and_no_link(world, slug):
    """The record's slug is never a path: the reports go into the config's folder, the canary
    outside ``--out`` stays byte for byte, and the city index links only to ``d1/…``."""
    cfg, out, victim = world
    before = tree_digest(victim)
    value = str(victim) if slug == "ABSOLUTE" else slug
    edit_record(out, lambda d: d["district"].update(slug=value))
    res = report(cfg, out)
    assert res.exit_code == 0, res.output
    assert tree_digest(victim) == before
    assert (out / "handmade" / "d1" / "report.pdf").is_file()
    index = (out / "handmade" / "index.html").read_text(encoding="utf-8")
    assert "javascript:" not in index and "victim" not in index
    assert 'href="d1/report.html"' in index


def test_a_district_folder_that_links_outside_is_refused(world):
    """A district folder replaced by a symbolic link to another folder: refused before anything is
    written or deleted there, naming the folder."""
    cfg, out, victim = world
    d1 = out / "handmade" / "d1"
    for p in d1.iterdir():
        shutil.copy2(p, victim / p.name) if p.is_file() else None
    shutil.rmtree(d1)
    d1.symlink_to(victim, target_is_directory=True)
    before = tree_digest(victim)
    one_line_error(report(cfg, out, "--overwrite"), "leads outside", "d1")
    assert tree_digest(victim) == before
    # a run into the same --out refuses too, before measuring
    res = runner.invoke(
        app,
        ["run", "--city", str(cfg), "--out", str(out), "--no-cache", "--standard", "toilet",
         "--overwrite"],
    )  # fmt: skip
    one_line_error(res, "leads outside")
    assert tree_digest(victim) == before


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[1, 2, 3]", "JSON list, not the object"),
        ('"just text"', "JSON str, not the object"),
        ("null", "JSON NoneType, not the object"),
        ("[" * 100_000 + "]" * 100_000, "nests too deep"),
        ("{not json", "not valid JSON"),
        ('{"record_version": 1}', "does not hold a run record"),
        ('{"record_version": "1"}', "record_version '1'"),
        (b"\xff\xfe garbage", "cannot be read"),
    ],
    ids=["list", "string", "null", "deep", "garbage", "no-keys", "version-type", "not-utf8"],
)
def test_a_broken_record_is_one_line(world, content, needle):
    cfg, out, _ = world
    path = record_path(out)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    one_line_error(report(cfg, out), needle, "run.json", "walkcover run --overwrite")
    assert not (out / "handmade" / "d1" / "report.pdf").exists()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["district"].update(is_sample="yes"), "district.is_sample"),
        (lambda d: d["district"].update(name=["a", "list"]), "district.name"),
        (lambda d: d.update(standards="toilet"), "standards"),
        (lambda d: d["limits_m"].update(toilet=1e999), "Infinity is not a number JSON allows"),
        (lambda d: d["limits_m"].update(toilet="1e999"), "limits_m.toilet"),
        (lambda d: d["limits_m"].update(toilet=-5), "limits_m.toilet"),
        (lambda d: d["district"].update(name="x" * 100_000), "district.name"),
        (lambda d: d["standards"][0].update(threshold_m="far"), "run.json"),
        (lambda d: d.update(boundary_wkt="POLYGON ((0 0, 1"), "boundary_wkt"),
        (lambda d: d.update(boundary_wkt="POINT (0 0)"), "boundary_wkt is not a polygon"),
        (lambda d: d["district"].update(district_id="d2"), "records district 'd2'"),
        (lambda d: d["standards"][0].update(id="park"), "park_dist_m"),
        (lambda d: d["standards"][0].update(id="../../victim/PWNED"), "standards.0: id"),
    ],
    ids=["bool", "name-type", "standards-type", "infinity", "huge-number", "negative", "huge-name",
         "standard-field", "wkt", "wkt-point", "other-district", "unmeasured-standard",
         "standard-id-path"],
)  # fmt: skip
def test_a_record_with_wrong_fields_is_one_line(world, change, needle):
    cfg, out, _ = world
    edit_record(out, change)
    one_line_error(report(cfg, out), needle)
    assert not (out / "handmade" / "d1" / "report.pdf").exists()


def test_a_two_gigabyte_record_is_refused_at_once(tmp_path):
    """Refused by its size, before a byte of it is read: within a second and 200 MB (the file is
    sparse: a JSON string two gigabytes long)."""
    path = tmp_path / "run.json"
    with path.open("wb") as f:
        f.write(b'{"record_version": 1, "district": {"name": "')
        f.truncate(2 * 1024**3)
    assert path.stat().st_size > MAX_RECORD_BYTES
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(RunRecordError, match="more than a run record can be"):
        load_record(path)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 1 and peak < 200 * 1024**2


@pytest.mark.parametrize("damage", ["garbage-gpkg", "linked-gpkg", "garbage-csv", "empty-csv",
                                    "csv-without-columns", "linked-record"])  # fmt: skip
def test_damaged_or_linked_run_files_are_one_line(world, damage):
    cfg, out, victim = world
    d1 = out / "handmade" / "d1"
    if damage == "garbage-gpkg":
        (d1 / "coverage.gpkg").write_bytes(os.urandom(4096))
        needle = "cannot be read as a GeoPackage"
    elif damage == "linked-gpkg":
        shutil.move(d1 / "coverage.gpkg", victim / "coverage.gpkg")
        (d1 / "coverage.gpkg").symlink_to(victim / "coverage.gpkg")
        needle = "coverage.gpkg is a symbolic link"
    elif damage == "linked-record":
        shutil.move(d1 / "run.json", victim / "run.json")
        (d1 / "run.json").symlink_to(victim / "run.json")
        needle = "run.json is a symbolic link"
    elif damage == "garbage-csv":
        (out / "handmade" / "summary.csv").write_bytes(b'a,"b\n\x00\x01"",,\n' * 3)
        needle = "summary.csv"
    elif damage == "empty-csv":
        (out / "handmade" / "summary.csv").write_bytes(b"")
        needle = "summary.csv cannot be read as a CSV table"
    else:
        (out / "handmade" / "summary.csv").write_text("x,y\n1,2\n", encoding="utf-8")
        needle = "summary.csv lacks the columns district, district_id, standard"
    before = tree_digest(victim)
    one_line_error(report(cfg, out), needle)
    assert tree_digest(victim) == before


def test_the_record_names_no_folder_of_the_machine(measured):
    """``run.json`` travels: its methods name the source file, not where it lay."""
    _, out = measured
    text = record_path(out).read_text(encoding="utf-8")
    methods = " ".join(json.loads(text)["methods"])
    assert "handmade.osm" in methods
    assert str(out.parent) not in methods and "/" not in methods.split("OpenStreetMap,")[1][:80]


def test_links_and_names_follow_one_rule(tmp_path):
    assert relative_href("410102-zhongyuan", "report.html") == "410102-zhongyuan/report.html"
    for bad in ["../x", "javascript:alert(1)", "/etc", "a/b", "..", ".hidden", "", "x\ny"]:
        with pytest.raises(UnsafePathError):
            relative_href(bad, "map.html")
    for bad in ["../victim", "a.b", "", "-x", "x" * 101, 410100, None]:
        with pytest.raises(UnsafePathError, match="city id"):
            check_safe_name(bad, what="city id")
    assert check_safe_name("410100", what="city id") == "410100"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError, match="leads outside"):
        inside(tmp_path / "out", tmp_path / "out" / "link" / "x", what="file")
    assert inside(tmp_path / "out", tmp_path / "out" / "a" / "b", what="file")
