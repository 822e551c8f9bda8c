"""`walkcover cache info | prune | clear` on real caches the library wrote (the Helsinki sample),
and against what walkcover did not write: links inside the cache, a folder that is no cache, a
cache being written, a removal cut short."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from walkcover import cache_folder
from walkcover.cli import app
from walkcover.sources import cache as cache_mod

runner = CliRunner()
DATA = Path(__file__).parent / "data"
HOUR_S = 3600.0


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def said(res) -> str:
    return " ".join(res.output.split())


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory) -> Path:
    """A cache the sample's run wrote: OSM layers, snaps, streets layers, measured standards."""
    cache = tmp_path_factory.mktemp("built-cache")
    out = tmp_path_factory.mktemp("out")
    res = invoke("run", "--city", "helsinki-sample", "--out", str(out), "--cache-dir", str(cache))
    assert res.exit_code == 0, res.output
    for kind in ("osm", "snaps", "layers", "standards"):
        assert any((cache / kind).iterdir()), kind
    return cache


@pytest.fixture
def cache(built_cache, tmp_path) -> Path:
    """A copy of `built_cache` of this test's own (times kept: everything was just used)."""
    folder = tmp_path / "cache"
    shutil.copytree(built_cache, folder, symlinks=True)
    return folder


def age(folder: Path, seconds: float) -> None:
    """Make everything in `folder` look last used `seconds` ago (links themselves, not followed)."""
    when = time.time() - seconds
    for base, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            os.utime(Path(base) / name, (when, when), follow_symlinks=False)


def files_in(folder: Path) -> dict[str, int]:
    """Every regular file under `folder` (not through links), by relative path, with its size."""
    out = {}
    for base, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(base) / name
            if not path.is_symlink():
                out[str(path.relative_to(folder))] = path.stat().st_size
    return out


def kind_sizes(folder: Path) -> dict[str, int]:
    return {k: v.size_bytes for k, v in cache_folder.contents(folder).kinds.items()}


# -- info -----------------------------------------------------------------------------------


def test_info_names_the_folder_each_kind_with_its_size_and_the_osm_source(cache):
    found = cache_folder.contents(cache)
    files = files_in(cache)
    for kind, size in found.kinds.items():  # sizes as the files on disk add up
        assert size.size_bytes == sum(n for p, n in files.items() if p.startswith(f"{kind}/"))
    assert found.kinds["snaps"].items == len(list((cache / "snaps").glob("*.npz")))
    assert found.size_bytes == sum(files.values())
    (entry,) = found.osm_entries
    assert entry.source.endswith("Helsinki.osm.pbf") and entry.source_kind == "pbf"
    assert 0 <= entry.age_s < HOUR_S and entry.damage is None

    res = invoke("cache", "info", "--cache-dir", str(cache))
    assert res.exit_code == 0, res.output
    text = said(res)
    assert str(cache) in text and "from --cache-dir" in text
    for kind in cache_folder.KINDS:
        assert kind in text
    assert "Helsinki.osm.pbf" in res.output.replace("\n", "").replace(" ", "")
    assert cache_folder.size_text(found.size_bytes) in text


def test_info_of_the_default_cache_says_where_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKCOVER_CACHE", str(tmp_path / "nowhere"))
    res = invoke("cache", "info")
    assert res.exit_code == 0, res.output
    assert "$WALKCOVER_CACHE" in said(res) and "nothing cached there yet" in said(res)


def test_info_escapes_a_source_name_read_from_the_cache(cache):
    (entry,) = (p for p in (cache / "osm").iterdir() if not p.name.startswith("."))
    meta = json.loads((entry / "meta.json").read_text())
    meta["source"] = "evil\x1b[31m\x1b]0;title\x07.osm.pbf"
    (entry / "meta.json").write_text(json.dumps(meta))
    res = invoke("cache", "info", "--cache-dir", str(cache))
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    assert "evil" in res.output


# -- clear ----------------------------------------------------------------------------------


def test_clear_removes_everything_a_run_no_longer_uses(cache):
    age(cache, 2 * HOUR_S)
    res = invoke("cache", "clear", "--cache-dir", str(cache), "--yes")
    assert res.exit_code == 0, res.output
    assert files_in(cache) == {}  # nothing left, sources.json included
    assert cache.is_dir()  # the folder itself stays
    assert "removed osm 1" in said(res)
    assert all(size == 0 for size in kind_sizes(cache).values())


def test_clear_one_kind_leaves_the_others(cache):
    age(cache, 2 * HOUR_S)
    before = kind_sizes(cache)
    res = invoke("cache", "clear", "--cache-dir", str(cache), "--kind", "snaps,layers", "-y")
    assert res.exit_code == 0, res.output
    after = kind_sizes(cache)
    assert after["snaps"] == after["layers"] == 0
    assert before["snaps"] > 0 and before["layers"] > 0
    for kind in ("osm", "standards"):
        assert after[kind] == before[kind] > 0
    assert (cache / cache_mod.STAMPS_FILE).is_file()  # only with every kind


def test_clear_keeps_what_a_run_used_lately_unless_told_no_run_is(cache):
    before = files_in(cache)  # all just used by the run
    res = invoke("cache", "clear", "--cache-dir", str(cache), "--yes")
    assert res.exit_code == 0, res.output
    assert files_in(cache) == before
    assert "nothing to remove" in said(res) and "a run may be using them" in said(res)
    res = invoke("cache", "clear", "--cache-dir", str(cache), "--yes", "--in-use-s", "0")
    assert res.exit_code == 0, res.output
    assert files_in(cache) == {}


def test_clear_asks_first_and_a_no_removes_nothing(cache):
    age(cache, 2 * HOUR_S)
    before = files_in(cache)
    res = invoke("cache", "clear", "--cache-dir", str(cache), input="n\n")
    assert res.exit_code == 1
    assert "remove the cached osm" in said(res)
    assert files_in(cache) == before
    res = invoke("cache", "clear", "--cache-dir", str(cache), "--kind", "osm", input="y\n")
    assert res.exit_code == 0, res.output
    assert not any(p for p in (cache / "osm").iterdir())


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"Documents/thesis.docx": "mine", "osm/notes.txt": "mine"}, "'Documents'"),
        ({"photo.jpg": "mine"}, "'photo.jpg'"),
        ({".bashrc": "mine", ".config/app.ini": "mine"}, "none of the folders"),
    ],
)
def test_clear_and_prune_refuse_a_folder_that_is_no_cache(tmp_path, layout, message):
    home = tmp_path / "home"
    for name, text in layout.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    age(home, 30 * 24 * HOUR_S)
    before = files_in(home)
    for args in (("clear", "--yes", "--in-use-s", "0"), ("prune", "--max-bytes", "0")):
        res = invoke("cache", *args, "--cache-dir", str(home))
        assert res.exit_code == 2, res.output
        text = said(res)
        assert "does not look like a walkcover cache" in text and message in text
        assert str(home) in text and "nothing was removed" in text
    res = invoke("cache", "info", "--cache-dir", str(home))  # shown, with the same warning
    assert res.exit_code == 0 and "does not look like a walkcover cache" in said(res)
    assert files_in(home) == before
    with pytest.raises(cache_folder.CacheFolderError):
        cache_folder.clear(home, in_use_s=0)


def test_clear_refuses_a_file_given_as_the_cache(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    res = invoke("cache", "clear", "--cache-dir", str(file), "--yes")
    assert res.exit_code == 2
    assert "is a file, not a cache folder" in said(res)
    assert file.read_text() == "mine"


def test_links_inside_the_cache_are_never_followed(cache, tmp_path):
    outside = tmp_path / "outside"
    (outside / "entry").mkdir(parents=True)
    (outside / "entry" / "meta.json").write_text("{}")
    (outside / "precious.npz").write_bytes(b"mine")
    (outside / "standards").mkdir()
    (outside / "standards" / ("a" * 64 + ".pass.npz")).write_bytes(b"mine too")
    # an entry, a stored file and a whole kind's folder that are links out of the cache
    (cache / "osm" / ("b" * 32)).symlink_to(outside / "entry", target_is_directory=True)
    (cache / "snaps" / ("c" * 64 + ".npz")).symlink_to(outside / "precious.npz")
    shutil.rmtree(cache / "standards")
    (cache / "standards").symlink_to(outside / "standards", target_is_directory=True)
    # and a file of a real entry that is a link out
    (real,) = (p for p in (cache / "osm").iterdir() if p.name != "b" * 32)
    (real / "extra.parquet").symlink_to(outside / "precious.npz")
    kept = files_in(outside)

    found = cache_folder.contents(cache)
    assert found.kinds["standards"].is_link and found.kinds["standards"].size_bytes == 0
    assert "b" * 32 in found.kinds["osm"].foreign
    age(cache, 2 * HOUR_S)
    res = invoke("cache", "clear", "--cache-dir", str(cache), "--yes")
    assert res.exit_code == 0, res.output
    assert files_in(outside) == kept  # nothing out of the cache touched
    assert not (cache / "standards").exists() and not (cache / "standards").is_symlink()
    assert not real.exists()  # the entry went, its link removed and not followed
    assert (cache / "osm" / ("b" * 32)).is_symlink()  # not ours: left alone, and said
    assert "left alone 2 name(s)" in said(res)


def test_names_walkcover_does_not_make_are_left_alone(cache):
    mine = cache / "snaps" / "my-notes.txt"
    mine.write_text("mine")
    age(cache, 2 * HOUR_S)
    res = invoke("cache", "clear", "--cache-dir", str(cache), "--kind", "snaps", "--yes")
    assert res.exit_code == 0, res.output
    assert mine.read_text() == "mine"
    assert "my-notes.txt" in said(res)
    assert kind_sizes(cache)["snaps"] == 0  # (not counted as the store's)


def test_a_cache_being_written_keeps_the_entry_being_written(tmp_path, monkeypatch):
    from shapely.geometry import box

    from walkcover.config.standards import load_standards, selector_keys
    from walkcover.config.study_area import DEFAULT_WALK_HIGHWAYS
    from walkcover.sources import OSMQuery, load_osm

    src = tmp_path / "city.osm"
    src.write_bytes((DATA / "tiny.osm").read_bytes())
    root = tmp_path / "cache"
    keys = selector_keys([load_standards().standards["toilet"]])
    first = OSMQuery(box(113.649, 34.749, 113.655, 34.752), DEFAULT_WALK_HIGHWAYS, keys)
    load_osm("xml", str(src), first, cache_dir=root)
    age(root, 2 * HOUR_S)  # an old entry, and a second one being written now
    seen = []
    real = cache_mod._write_side_by_side

    def clear_meanwhile(writes):
        real(writes)
        (being_written,) = (p for p in (root / "osm").iterdir() if p.name.startswith("."))
        seen.append(cache_folder.clear(root))  # what `walkcover cache clear` does now
        assert being_written.is_dir()

    monkeypatch.setattr(cache_mod, "_write_side_by_side", clear_meanwhile)
    second = OSMQuery(box(113.650, 34.749, 113.655, 34.752), DEFAULT_WALK_HIGHWAYS, keys)
    layers = load_osm("xml", str(src), second, cache_dir=root)
    (done,) = seen
    assert done.removed["osm"] == 1 and done.in_use["osm"] == 1
    (entry,) = (p for p in (root / "osm").iterdir() if not p.name.startswith("."))
    assert entry.name == cache_mod.cache_key("xml", {"sha256": cache_mod.file_sha256(src)}, second)
    monkeypatch.undo()
    again = load_osm("xml", str(src), second, cache_dir=root)  # the entry is whole
    assert len(again.streets) == len(layers.streets) > 0


def test_a_removal_cut_short_leaves_no_damaged_entry_and_the_next_clear_finishes(
    cache, monkeypatch
):
    age(cache, 2 * HOUR_S)
    (entry,) = (p for p in (cache / "osm").iterdir())
    real = shutil.rmtree

    def killed(path, *args, **kwargs):  # the process dies after removing one file
        next(p for p in Path(path).iterdir() if p.name != "meta.json").unlink()
        raise OSError("killed")

    monkeypatch.setattr(cache_mod.shutil, "rmtree", killed)
    with pytest.raises(OSError, match="killed"):
        cache_folder.clear(cache, kinds=["osm"])
    monkeypatch.setattr(cache_mod.shutil, "rmtree", real)
    assert not entry.exists()  # under its own name: the whole entry or nothing
    (left,) = (cache / "osm").iterdir()
    assert left.name.startswith(".gone-")
    assert cache_folder.contents(cache).kinds["osm"].hidden == 1
    age(cache, 2 * HOUR_S)
    res = invoke("cache", "clear", "--cache-dir", str(cache), "--kind", "osm", "--yes")
    assert res.exit_code == 0, res.output
    assert not any((cache / "osm").iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("clear", "--yes", "--kind", "everything"),
            "--kind 'everything' is no kind of cached item",
        ),
        (("clear", "--yes", "--in-use-s", "-5"), "--in-use-s -5.0: give a number of seconds"),
        (("prune", "--max-bytes", "10x"), "--max-bytes '10x' is not a size"),
        (("prune", "--max-bytes", "-1GiB"), "--max-bytes '-1GiB' is not a size"),
        (("prune", "--max-bytes", "9" * 5000), "--max-bytes '" + "9" * 36 + "… is too large"),
        (("clear", "--yes", "--kind", ","), "--kind ',' names no kind of cached item"),
        (("clear", "--yes", "--kind", ""), "--kind '' names no kind of cached item"),
    ],
)
def test_bad_options_are_named_with_the_fix_and_remove_nothing(cache, args, message):
    age(cache, 2 * HOUR_S)
    before = files_in(cache)
    res = invoke("cache", *args, "--cache-dir", str(cache))
    assert res.exit_code == 2, res.output
    assert message in said(res)
    assert files_in(cache) == before


# -- prune ----------------------------------------------------------------------------------


def test_prune_removes_the_least_recently_used_past_the_limit(cache):
    (entry,) = (p for p in (cache / "osm").iterdir())
    before = kind_sizes(cache)
    res = invoke("cache", "prune", "--cache-dir", str(cache), "--max-bytes", "0")
    assert res.exit_code == 0, res.output
    assert entry.is_dir()  # used by the run just now: kept, whatever the limit
    assert "nothing to remove" in said(res)
    age(cache, 2 * HOUR_S)
    res = invoke("cache", "prune", "--cache-dir", str(cache), "--max-bytes", "0")
    assert res.exit_code == 0, res.output
    assert not entry.exists()
    assert "removed osm 1" in said(res)
    after = kind_sizes(cache)
    for kind in ("snaps", "layers", "standards"):  # far below their own limits
        assert after[kind] == before[kind] > 0


@pytest.mark.parametrize(
    ("text", "size_bytes"),
    [("0", 0), ("1000", 1000), ("8GiB", 8 * 2**30), ("500MB", 500 * 10**6), ("1.5 g", 1.5e9)],
)
def test_parse_size(text, size_bytes):
    assert cache_folder.parse_size(text, option="--max-bytes") == size_bytes
