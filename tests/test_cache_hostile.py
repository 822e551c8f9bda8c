"""The parse cache against what walkcover did not write: entries that are links or damaged, a
cache folder that is a link out of it, a full disk and a cache it may not write."""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from conftest import write_city
from walkcover._errors import OutputFolderError, UnsafePathError
from walkcover.config.standards import load_standards, selector_keys
from walkcover.config.study_area import DEFAULT_WALK_HIGHWAYS
from walkcover.sources import OSMQuery, load_osm
from walkcover.sources import cache as cache_mod

DATA = Path(__file__).parent / "data"
AREA = box(113.649, 34.749, 113.655, 34.752)
LOGGER = "walkcover.sources.cache"


def query() -> OSMQuery:
    return OSMQuery(
        AREA, DEFAULT_WALK_HIGHWAYS, selector_keys([load_standards().standards["toilet"]])
    )


def source(tmp_path: Path) -> str:
    src = tmp_path / "city.osm"
    src.write_bytes((DATA / "tiny.osm").read_bytes())
    return str(src)


def only_entry(cache: Path) -> Path:
    entries = [p for p in (cache / "osm").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1, entries
    return entries[0]


def counting_reads(monkeypatch) -> list:
    calls: list = []
    real = cache_mod._read_source
    monkeypatch.setattr(cache_mod, "_read_source", lambda *a: calls.append(a) or real(*a))
    return calls


def test_an_entry_that_is_a_link_is_not_read_through_and_only_the_link_is_replaced(
    tmp_path, monkeypatch, caplog
):
    src, cache = source(tmp_path), tmp_path / "cache"
    first = load_osm("xml", src, query(), cache_dir=cache)
    entry = only_entry(cache)
    outside = tmp_path / "outside" / entry.name
    outside.parent.mkdir()
    shutil.move(str(entry), str(outside))  # a complete, valid entry, now outside the cache
    entry.symlink_to(outside, target_is_directory=True)
    kept = sorted(p.name for p in outside.iterdir())
    calls = counting_reads(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        again = load_osm("xml", src, query(), cache_dir=cache)
    assert len(calls) == 1  # parsed again, not served through the link
    assert len(again.streets) == len(first.streets)
    warned = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any(entry.name in m and "symbolic link" in m for m in warned), warned
    assert entry.is_dir() and not entry.is_symlink()  # a real entry in its place
    assert sorted(p.name for p in outside.iterdir()) == kept  # what the link pointed at stays


def test_a_link_to_garbage_outside_is_replaced_without_touching_its_target(
    tmp_path, monkeypatch, caplog
):
    """Before: the damaged entry was re-read, then `rmtree` refused the link (OSError)."""
    src, cache = source(tmp_path), tmp_path / "cache"
    load_osm("xml", src, query(), cache_dir=cache)
    entry = only_entry(cache)
    shutil.rmtree(entry)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "meta.json").write_text("{not json", encoding="utf-8")
    (victim / "precious.txt").write_text("keep me", encoding="utf-8")
    entry.symlink_to(victim, target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        layers = load_osm("xml", src, query(), cache_dir=cache)
    assert len(layers.streets) > 0
    assert entry.is_dir() and not entry.is_symlink()
    assert sorted(p.name for p in victim.iterdir()) == ["meta.json", "precious.txt"]
    assert (victim / "precious.txt").read_text(encoding="utf-8") == "keep me"


def test_an_entry_holding_a_link_is_damaged(tmp_path, monkeypatch, caplog):
    src, cache = source(tmp_path), tmp_path / "cache"
    load_osm("xml", src, query(), cache_dir=cache)
    entry = only_entry(cache)
    elsewhere = tmp_path / "elsewhere.parquet"
    shutil.move(str(entry / "streets.parquet"), str(elsewhere))
    (entry / "streets.parquet").symlink_to(elsewhere)
    calls = counting_reads(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        load_osm("xml", src, query(), cache_dir=cache)
    assert len(calls) == 1
    assert any(
        entry.name in r.getMessage() and "streets.parquet" in r.getMessage() for r in caplog.records
    )
    assert not (entry / "streets.parquet").is_symlink() and elsewhere.is_file()


def test_a_damaged_entry_is_named_in_a_warning_when_it_is_read_again(tmp_path, monkeypatch, caplog):
    """An entry without its meta.json was re-read silently before."""
    src, cache = source(tmp_path), tmp_path / "cache"
    load_osm("xml", src, query(), cache_dir=cache)
    entry = only_entry(cache)
    (entry / "meta.json").unlink()
    calls = counting_reads(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        load_osm("xml", src, query(), cache_dir=cache)
    assert len(calls) == 1
    warned = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert any(str(entry) in r.getMessage() and "meta.json" in r.getMessage() for r in warned)
    assert (entry / "meta.json").is_file()  # rebuilt


def test_a_cache_folder_that_leads_out_of_the_cache_is_refused(tmp_path):
    src, cache = source(tmp_path), tmp_path / "cache"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache.mkdir()
    (cache / "osm").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="leads outside"):
        load_osm("xml", src, query(), cache_dir=cache)
    assert list(elsewhere.iterdir()) == []


def test_a_full_disk_names_the_cache_folder_and_the_way_out(tmp_path, monkeypatch):
    src, cache = source(tmp_path), tmp_path / "cache"

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", full)
    with pytest.raises(OutputFolderError) as err:
        load_osm("xml", src, query(), cache_dir=cache)
    text = str(err.value)
    assert text.startswith(f"cache folder {str(cache)!r}: the disk is full")
    assert "--cache-dir" in text and "--no-cache" in text and "\n" not in text
    assert [p.name for p in (cache / "osm").iterdir()] == []  # no half-written entry left


def test_a_cache_it_may_not_write_names_the_cache_folder_and_the_way_out(tmp_path, monkeypatch):
    src, cache = source(tmp_path), tmp_path / "cache"

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(cache / "osm"))

    monkeypatch.setattr(cache_mod.tempfile, "mkdtemp", denied)
    with pytest.raises(OutputFolderError) as err:
        load_osm("xml", src, query(), cache_dir=cache)
    text = str(err.value)
    assert text.startswith(f"cache folder {str(cache)!r}: it cannot be written (")
    assert "Permission denied" in text and "--cache-dir" in text and "--no-cache" in text


def test_the_cli_prints_the_cache_error_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from walkcover.cli import app

    nodes = {1: (0, 0), 2: (400, 0)}
    ways = [(100, [1, 2], {"highway": "residential"})]
    cfg, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-50, -150, 450, 150))

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", full)
    cache = tmp_path / "cache"
    args = ["run", "--city", str(cfg), "--source", str(osm), "--out", str(tmp_path / "out"),
            "--standard", "toilet", "--no-maps", "--cache-dir", str(cache)]  # fmt: skip
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the disk is full" in errors[0] and str(cache) in errors[0]
    assert "--no-cache" in errors[0] and "Traceback" not in res.output


def test_layers_read_from_the_cache_say_what_they_are(tmp_path):
    """`OSMLayers.digest` names the cache entry the layers come from, the area and the CRS: the
    same for the read that wrote the entry and every read of it after, another for another area
    or CRS, another once the entry's files are written again (edited by hand, say), none without
    a cache. What a run keeps of them (`walkcover.assessment.standard_store`) is named by it."""
    import os

    src, cache = source(tmp_path), tmp_path / "cache"
    first = load_osm("xml", src, query(), cache_dir=cache, crs=32649)
    again = load_osm("xml", src, query(), cache_dir=cache, crs=32649)
    assert len(first.digest) == 64 and first.digest == again.digest
    assert load_osm("xml", src, query(), cache_dir=cache).digest not in ("", first.digest)
    assert load_osm("xml", src, query(), cache_dir=None, crs=32649).digest == ""
    features = only_entry(cache) / "features.parquet"
    st = features.stat()
    os.utime(features, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert load_osm("xml", src, query(), cache_dir=cache, crs=32649).digest != first.digest
    smaller = OSMQuery(
        box(113.650, 34.750, 113.654, 34.751), DEFAULT_WALK_HIGHWAYS, query().feature_tags
    )
    assert load_osm("xml", src, smaller, cache_dir=cache, crs=32649).digest != first.digest


def test_a_cache_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path):
    """The cache folder (given, or the default one) cannot be written: refused before any work,
    naming it as the cache folder, with both ways out (another --cache-dir, or --no-cache)."""
    from typer.testing import CliRunner

    from walkcover.cli import app

    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache's parent goes")
    args = ["run", "--city", "helsinki-sample", "--district", "sample-nw", "--standard", "toilet",
            "--out", str(tmp_path / "out"), "--cache-dir", str(blocker / "cache")]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert f"cache folder '{blocker / 'cache'}' cannot be written" in text
    assert "--cache-dir DIR" in text and "--no-cache" in text


def _aged(path: Path, hours: float) -> None:
    import os
    import time

    t = time.time() - hours * 3600
    os.utime(path, (t, t), follow_symlinks=False)


def _entry_bytes(entry: Path) -> int:
    return sum(f.stat().st_size for f in entry.iterdir())


def test_the_least_recently_used_entries_go_once_the_store_is_full(tmp_path, monkeypatch):
    """Three areas of one file read over days: once the entries pass the store's size, the
    longest unused go first; one used in the last hour (another run may be reading it) and the one
    just written stay, whatever the size. A cut unused for longest goes too, a half-written entry
    a killed run left goes, and nothing outside the cache is touched."""
    src, cache = source(tmp_path), tmp_path / "cache"
    areas = [box(113.649, 34.749, 113.655, 34.752), box(113.650, 34.750, 113.654, 34.751),
             box(113.651, 34.749, 113.655, 34.751)]  # fmt: skip
    tags = query().feature_tags
    entries = []
    for area in areas:
        load_osm("xml", src, OSMQuery(area, DEFAULT_WALK_HIGHWAYS, tags), cache_dir=cache)
        new = [p for p in (cache / "osm").iterdir() if p not in entries and p.name[0] != "."]
        assert len(new) == 1
        entries += new
    one = _entry_bytes(entries[0])
    _aged(entries[0] / "meta.json", 72)  # unused for three days
    _aged(entries[1] / "meta.json", 48)  # two days
    # a cut of a province file, unused for four days, and what a killed run left
    cuts = cache / "cuts"
    cuts.mkdir()
    (cuts / "old.osm.pbf").write_bytes(b"x" * 100)
    _aged(cuts / "old.osm.pbf", 96)
    stale = cache / "osm" / ".deadbeef-half"
    stale.mkdir()
    (stale / "streets.parquet").write_bytes(b"half")
    _aged(stale, 30)
    outside = tmp_path / "outside.osm.pbf"
    outside.write_bytes(b"not walkcover's")
    (cuts / "planted.osm.pbf").symlink_to(outside)
    _aged(cuts / "planted.osm.pbf", 200)

    gone = cache_mod.prune(cache, keep=entries[2], max_bytes=2 * one)
    # the oldest cut and entry (the store fell under its size then), the half-written entry
    assert set(gone) == {cuts / "old.osm.pbf", entries[0], stale}
    assert not entries[0].exists() and entries[1].is_dir() and entries[2].is_dir()
    assert not [p for p in (cache / "osm").iterdir() if p.name.startswith(".")]
    assert outside.read_bytes() == b"not walkcover's" and (cuts / "planted.osm.pbf").is_symlink()

    # past the size with nothing old enough: the recently used stay
    assert cache_mod.prune(cache, keep=entries[2], max_bytes=0, in_use_s=3 * 24 * 3600) == []
    # the one just written stays whatever its age
    _aged(entries[2] / "meta.json", 100)
    assert cache_mod.prune(cache, keep=entries[2], max_bytes=0) == [entries[1]]
    assert entries[2].is_dir()


def test_a_run_marks_its_entry_used_and_prunes_after_writing(tmp_path, monkeypatch):
    """A read from the cache marks the entry used (`prune` keeps it longest) without changing
    what the layers are (`OSMLayers.digest`); writing an entry prunes the store to its size."""
    src, cache = source(tmp_path), tmp_path / "cache"
    first = load_osm("xml", src, query(), cache_dir=cache, crs=32649)
    entry = only_entry(cache)
    _aged(entry / "meta.json", 50)
    again = load_osm("xml", src, query(), cache_dir=cache, crs=32649)
    assert again.digest == first.digest
    import time

    assert time.time() - (entry / "meta.json").stat().st_mtime < 600
    # a store of no size: the next area's entry, once written, sends the first (unused for
    # two days) away, and stays itself
    _aged(entry / "meta.json", 50)
    monkeypatch.setattr(cache_mod, "STORE_MAX_BYTES", 0)
    smaller = OSMQuery(
        box(113.650, 34.750, 113.654, 34.751), DEFAULT_WALK_HIGHWAYS, query().feature_tags
    )
    load_osm("xml", src, smaller, cache_dir=cache)
    assert not entry.exists()
    assert len(only_entry(cache).name) == len(entry.name)  # the new one
