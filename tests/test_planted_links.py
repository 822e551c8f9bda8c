"""Links and damaged files planted in ``--out`` (or the cache) by a hostile user: recovery never
follows a link out of ``--out``, a planted staging folder is never put in place, and ``run
--overwrite`` repairs a damaged district folder. Every canary outside ``--out`` stays
byte-identical (each file hashed, each link's target recorded)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from hostile import plant_canary, tree_digest
from walkcover._atomic import recover
from walkcover.cli import app
from walkcover.presentation.record import RunRecordError

runner = CliRunner()
CITY = "handmade"


def plant_hidden(folder: Path) -> None:
    """walkcover's own temporary names, as an interrupted run would leave them."""
    (folder / ".walkcover-staging-theirs").mkdir(parents=True)
    (folder / ".walkcover-staging-theirs" / "half.gpkg").write_text("their staging")
    (folder / ".walkcover-tmp-theirs.csv").write_text("their tmp")
    (folder / ".walkcover-cityset-theirs").mkdir()
    (folder / ".walkcover-cityset-theirs" / "summary.csv").write_text("their unsealed set")
    (folder / ".walkcover-old-keep-1").mkdir()
    (folder / ".walkcover-old-keep-1" / "x").write_text("their old")


@pytest.fixture
def world(measured, tmp_path):
    """A fresh copy of the run's ``--out`` (``tmp/out``) beside a canary folder (``tmp/victim``)."""
    cfg, out = measured
    shutil.copytree(out, tmp_path / "out", symlinks=True)
    return cfg, tmp_path / "out", plant_canary(tmp_path / "victim")


def invoke(cfg: Path, out: Path, command: str = "report", *extra: str):
    args = [command, "--city", str(cfg), "--out", str(out), *extra]
    if command == "run":
        args += ["--no-cache", "--standard", "toilet"]
    return runner.invoke(app, args)


# --- 1. recovery never follows a linked folder ----------------------------------------------------


def test_recovery_does_not_enter_a_linked_folder_of_out(world):
    cfg, out, victim = world
    plant_hidden(victim)
    (out / "other").symlink_to(victim)
    before = tree_digest(victim)
    res = invoke(cfg, out)
    assert res.exit_code == 0, res.output
    assert tree_digest(victim) == before
    assert (out / "other").is_symlink()


def test_recovery_does_not_enter_a_linked_city_folder(world):
    cfg, out, victim = world
    shutil.copytree(out / CITY, victim / CITY)
    shutil.rmtree(out / CITY)
    plant_hidden(victim / CITY)
    (out / CITY).symlink_to(victim / CITY)
    before = tree_digest(victim)
    res = invoke(cfg, out)
    assert res.exit_code == 2
    assert "leads outside" in res.output
    assert tree_digest(victim) == before


def test_recover_removes_planted_links_as_links(tmp_path):
    folder, victim = tmp_path / "out", tmp_path / "victim"
    folder.mkdir()
    plant_hidden(victim)
    (victim / "keep.txt").write_text("theirs")
    (folder / ".walkcover-staging-x").symlink_to(victim / ".walkcover-staging-theirs")
    (folder / ".walkcover-old-keep-1").symlink_to(victim / ".walkcover-old-keep-1")
    (folder / ".walkcover-tmp-y").symlink_to(victim / "keep.txt")
    (folder / "linked").symlink_to(victim)
    before = tree_digest(victim)
    done = recover(folder)
    assert len(done) == 3 and all("symbolic link" in d for d in done)
    assert sorted(p.name for p in folder.iterdir()) == ["linked"]
    assert recover(folder / "linked") == []  # a linked folder is never repaired
    assert tree_digest(victim) == before


# --- 2. a planted staging folder of city files is never put in place -----------------------------


def _sealed_copy(city: Path, into: Path) -> None:
    """A valid sealed set of one file (``summary.csv``) in folder `into`."""
    into.mkdir(parents=True)
    shutil.copy(city / "summary.csv", into / "summary.csv")
    manifest = json.loads((city / "city_files.json").read_text(encoding="utf-8"))
    manifest["files"] = {"summary.csv": manifest["files"]["summary.csv"]}
    (into / "city_files.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_linked_sealed_city_set_is_removed_as_a_link(world):
    cfg, out, victim = world
    city = out / CITY
    _sealed_copy(city, victim / "sealed")
    (city / ".walkcover-cityset-evil").symlink_to(victim / "sealed")
    before, ours = tree_digest(victim), tree_digest(city)
    res = invoke(cfg, out)
    assert res.exit_code == 0, res.output
    assert tree_digest(victim) == before
    assert not (city / ".walkcover-cityset-evil").is_symlink()
    for name in ("summary.csv", "district_indicators.csv", "summary.xlsx", "city_files.json"):
        assert name in ours and tree_digest(city).get(name) == ours[name]


def test_a_sealed_city_set_holding_links_is_not_put_in_place(world):
    cfg, out, victim = world
    city = out / CITY
    _sealed_copy(city, victim / "sealed")
    stage = city / ".walkcover-cityset-evil"
    stage.mkdir()
    shutil.copy(victim / "sealed" / "city_files.json", stage / "city_files.json")
    (stage / "summary.csv").symlink_to(victim / "sealed" / "summary.csv")
    before, ours = tree_digest(victim), tree_digest(city)
    res = invoke(cfg, out)
    assert res.exit_code == 0, res.output
    assert tree_digest(victim) == before
    assert not stage.exists() and not stage.is_symlink()
    assert not (city / "summary.csv").is_symlink()
    assert tree_digest(city)["summary.csv"] == ours["summary.csv"]


# --- 3. a planted .walkcover-old-* link is never restored ----------------------------------------


def test_a_linked_old_district_is_not_restored(world):
    cfg, out, victim = world
    shutil.rmtree(out / CITY / "d1")
    (out / CITY / ".walkcover-old-d1-x").symlink_to(victim / "d1")
    before = tree_digest(victim)
    res = invoke(cfg, out)
    assert res.exit_code == 2
    assert "restored d1" not in res.output
    assert not (out / CITY / "d1").exists() and not (out / CITY / "d1").is_symlink()
    assert not (out / CITY / ".walkcover-old-d1-x").is_symlink()
    assert tree_digest(victim) == before


def test_a_linked_old_city_is_not_restored(world):
    cfg, out, victim = world
    shutil.copytree(out / CITY, victim / "hm")
    shutil.rmtree(out / CITY)
    (out / f".walkcover-old-{CITY}-x").symlink_to(victim / "hm")
    before = tree_digest(victim)
    res = invoke(cfg, out)
    assert res.exit_code == 2
    assert f"restored {CITY}" not in res.output
    assert not (out / CITY).exists() and not (out / CITY).is_symlink()
    assert tree_digest(victim) == before


# --- 4. run --overwrite replaces a damaged GeoPackage --------------------------------------------


def _garbage(gpkg: Path) -> None:
    gpkg.write_bytes(os.urandom(4096))


def _folder(gpkg: Path) -> None:
    gpkg.unlink()
    (gpkg / "inner").mkdir(parents=True)


def _bad_rank(gpkg: Path) -> None:
    demand = gpd.read_file(gpkg, layer="demand")
    sites = gpd.GeoDataFrame(
        {
            "standard": ["toilet"],
            "rank": ["x"],
            "residents_newly_covered": [1.0],
            "cumulative_coverage_pct": [50.0],
        },
        geometry=[shapely.Point(demand.geometry.iloc[0].representative_point())],
        crs=demand.crs,
    )
    sites.to_file(gpkg, layer="proposed_sites", driver="GPKG", mode="a")


@pytest.mark.parametrize("damage", [_garbage, _folder, _bad_rank], ids=["bytes", "folder", "rank"])
def test_run_overwrite_replaces_a_damaged_geopackage(world, damage):
    cfg, out, victim = world
    gpkg = out / CITY / "d1" / "coverage.gpkg"
    damage(gpkg)
    before = tree_digest(victim)
    res = invoke(cfg, out, "run", "--overwrite")
    assert res.exit_code == 0, res.output
    # one warning naming the file (the test console wraps it; a terminal shows one line)
    text = "".join(res.output.split())
    assert text.count("warning:") == 1
    assert text.count(f"warning:{gpkg}cannotberead") == 1
    assert gpkg.is_file()
    layers = {n for n, _ in pyogrio.list_layers(gpkg)}
    assert "demand" in layers and "proposed_sites" not in layers
    assert tree_digest(victim) == before


def test_site_on_a_damaged_geopackage_names_the_file_and_the_fix(world):
    from walkcover.presentation.outputs import read_proposed

    _, out, _ = world
    gpkg = out / CITY / "d1" / "coverage.gpkg"
    _garbage(gpkg)
    with pytest.raises(RunRecordError) as err:
        read_proposed(out, CITY, "d1")  # what `walkcover site` reads first
    text = str(err.value)
    assert str(gpkg) in text and "walkcover run --overwrite" in text and "\n" not in text


# --- 5. a damaged stamp file of the cache is rewritten -------------------------------------------


def test_a_deeply_nested_stamp_file_is_rehashed_and_rewritten(tmp_path, caplog):
    from walkcover.sources import cache as cache_mod

    src = tmp_path / "city.osm"
    src.write_bytes(b"<osm></osm>")
    stamps = tmp_path / "cache" / cache_mod.STAMPS_FILE
    stamps.parent.mkdir()
    stamps.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="walkcover.sources.cache"):
        digest = cache_mod.source_sha256(src, cache_dir=tmp_path / "cache")
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
    assert any(cache_mod.STAMPS_FILE in r.getMessage() for r in caplog.records)
    memo = json.loads(stamps.read_text(encoding="utf-8"))
    assert memo[str(src.resolve())]["sha256"] == digest
