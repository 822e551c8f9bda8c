"""The layer store (`walkcover.presentation.layer_store`): a district's ``streets`` layer kept in the
cache is copied into its GeoPackage as it would be written, to the last bit; it is filed under
everything it is made of; a damaged, planted or unwritable store costs a write and a warning,
never a wrong layer or a failed run."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import logging
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from walkcover.engine import snap_store
from walkcover.presentation import layer_store
from walkcover.presentation.geopackage import Kept, write_layers
from walkcover.presentation.layers import streets_box
from walkcover.presentation.outputs import write_district_files, write_run


def _with_store(assessment, root):
    """`assessment` whose network keeps what is made of it in `root` (None: keeps nothing)."""
    return dataclasses.replace(
        assessment, network=dataclasses.replace(assessment.network, store_dir=root)
    )


@pytest.fixture
def plain(sample_results):
    return _with_store(sample_results.assessment, None)


@pytest.fixture
def stored(sample_results, tmp_path):
    return _with_store(sample_results.assessment, tmp_path / "cache")


def _district(assessment) -> tuple[str, object]:
    """The sample's district with the most streets, and its geometry."""
    ids = list(assessment.districts["district_id"])
    did = ids[0]
    return did, assessment.district_geometry(did)


def _write(assessment, folder):
    did, geom = _district(assessment)
    folder.mkdir(parents=True, exist_ok=True)
    write_district_files(assessment, did, geom, folder, proposal=None)
    return folder / "coverage.gpkg"


def _layers(gpkg) -> dict[str, pd.DataFrame]:
    out = {}
    for name, _ in pyogrio.list_layers(gpkg):
        frame = pyogrio.read_dataframe(gpkg, layer=name)
        plain = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
        if "geometry" in frame:
            plain["wkb"] = shapely.to_wkb(frame.geometry.to_numpy())
        out[name] = plain
    with sqlite3.connect(gpkg) as con:
        out["(styles)"] = pd.DataFrame(con.execute("SELECT * FROM layer_styles ORDER BY id"))
        out["(contents)"] = pd.DataFrame(
            con.execute(
                "SELECT table_name, data_type, min_x, min_y, max_x, max_y, srs_id "
                "FROM gpkg_contents ORDER BY table_name"
            )
        )
    return out


def _same_layers(a, b) -> None:
    la, lb = _layers(a), _layers(b)
    assert sorted(la) == sorted(lb)
    for name in la:
        pd.testing.assert_frame_equal(la[name], lb[name], obj=name)


def _kept_files(root) -> list[str]:
    folder = root / layer_store.STORE_FOLDER
    return sorted(p.suffix for p in folder.iterdir()) if folder.exists() else []


def _no_making(monkeypatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("the streets layer was made again: the store was not read")

    monkeypatch.setattr(layer_store, "streets_layer", refuse)


def test_streets_kept_and_copied_as_written(plain, stored, tmp_path, monkeypatch):
    without = _write(plain, tmp_path / "plain")
    first = _write(stored, tmp_path / "first")
    root = stored.network.store_dir
    assert _kept_files(root) == [".gpkg", ".json"]
    _no_making(monkeypatch)
    again = _write(stored, tmp_path / "again")
    _same_layers(without, first)
    _same_layers(without, again)
    # a copy, then the same writes: the bytes a run without a cache writes
    assert filecmp.cmp(first, again, shallow=False)
    assert filecmp.cmp(without, again, shallow=False)
    streets = pyogrio.read_dataframe(again, layer="streets")
    assert len(streets) > 100 and set(streets.columns) == {"osm_id", "highway", "geometry"}
    # the project opens the layers in the order written without a store: streets last
    for name in ("plain", "first", "again"):
        assert (tmp_path / name / "coverage.qgz").read_bytes() == (
            tmp_path / "plain" / "coverage.qgz"
        ).read_bytes()
    facts = json.loads(next((root / "layers").glob("*.json")).read_text())
    assert facts["layer"] == "streets" and facts["columns"] == ["osm_id", "highway"]
    assert facts["bytes"] == next((root / "layers").glob("*.gpkg")).stat().st_size


def test_a_run_written_twice_writes_its_streets_once(stored, tmp_path, monkeypatch):
    """`write_run` (what ``walkcover run`` and `Results.save` call) keeps every district's
    streets and copies them on the next run: the same GeoPackages, none made again."""
    write_run(stored, tmp_path / "out1", overwrite=False, maps=False)
    root = stored.network.store_dir
    n_districts = len(stored.districts)
    assert len(list((root / "layers").glob("*.gpkg"))) == n_districts
    _no_making(monkeypatch)
    write_run(stored, tmp_path / "out2", overwrite=False, maps=False)
    for gpkg in sorted((tmp_path / "out1").rglob("coverage.gpkg")):
        twin = tmp_path / "out2" / gpkg.relative_to(tmp_path / "out1")
        assert filecmp.cmp(gpkg, twin, shallow=False), gpkg.parent.name


def test_key_follows_what_the_layer_is_made_of(stored):
    # a network named by its edges (one named by what it is built from is keyed by that: below)
    net = dataclasses.replace(stored.network, recipe=None)
    _, geom = _district(stored)
    box = streets_box(stored, geom)
    key = layer_store.streets_key(net, box)
    assert layer_store.streets_key(dataclasses.replace(net), box) == key  # recomputed: the same

    def changed(column, value):
        edges = net.edges.copy()
        edges.loc[edges.index[7], column] = value
        return dataclasses.replace(net, edges=edges)

    moved = net.edges.copy()
    g = moved.geometry.to_numpy().copy()
    xy = shapely.get_coordinates(g[3])
    xy[0, 0] = np.nextafter(xy[0, 0], np.inf)
    g[3] = shapely.linestrings(xy)
    moved = moved.set_geometry(g)
    others = {
        "a class changed": layer_store.streets_key(changed("highway", "bridleway"), box),
        "an id changed": layer_store.streets_key(changed("osm_id", "way/1"), box),
        "an edge moved by an ulp": layer_store.streets_key(
            dataclasses.replace(net, edges=moved), box
        ),
        "the box grown by an ulp": layer_store.streets_key(
            net, (*box[:3], float(np.nextafter(box[3], np.inf)))
        ),
    }
    assert key not in others.values()
    assert len(set(others.values())) == len(others)
    # named by its recipe: the recipe names the layer, whatever the edges hold
    named = layer_store.streets_key(dataclasses.replace(net, recipe=b"recipe"), box)
    assert named != key
    assert named == layer_store.streets_key(dataclasses.replace(net, recipe=b"recipe"), box)
    assert named != layer_store.streets_key(dataclasses.replace(net, recipe=b"other"), box)


def _damage_ways():
    def truncate(gpkg, manifest, outside):
        with gpkg.open("r+b") as fh:
            fh.truncate(gpkg.stat().st_size // 2)

    def flip(gpkg, manifest, outside):
        data = bytearray(gpkg.read_bytes())
        data[len(data) // 2] ^= 0xFF  # the same size, one byte wrong
        gpkg.write_bytes(bytes(data))

    def garbage_manifest(gpkg, manifest, outside):
        manifest.write_bytes(b"\x00{not json")

    def huge_manifest(gpkg, manifest, outside):
        facts = json.loads(manifest.read_text())
        facts["columns"] = ["c"] * 100_000
        manifest.write_text(json.dumps(facts))

    def wrong_fields(gpkg, manifest, outside):
        facts = json.loads(manifest.read_text())
        facts["bounds"] = [0.0, 0.0, "inf", 1.0]
        manifest.write_text(json.dumps(facts))

    def other_layer(gpkg, manifest, outside):
        facts = json.loads(manifest.read_text())
        facts["layer"] = "demand"
        manifest.write_text(json.dumps(facts))

    def hostile_name(gpkg, manifest, outside):
        facts = json.loads(manifest.read_text())
        facts["columns"] = ["osm_id", 'highway"/><layer name="x']
        manifest.write_text(json.dumps(facts))

    def linked_out(gpkg, manifest, outside):
        outside.write_bytes(gpkg.read_bytes())  # the same bytes, reached through a link
        gpkg.unlink()
        gpkg.symlink_to(outside)

    def missing(gpkg, manifest, outside):
        gpkg.unlink()

    return [
        truncate,
        flip,
        garbage_manifest,
        huge_manifest,
        wrong_fields,
        hostile_name,
        other_layer,
        linked_out,
        missing,
    ]


@pytest.mark.parametrize("damage", _damage_ways(), ids=lambda f: f.__name__)
def test_damaged_kept_file_written_again(plain, stored, tmp_path, caplog, damage):
    without = _write(plain, tmp_path / "plain")
    _write(stored, tmp_path / "first")
    folder = stored.network.store_dir / "layers"
    gpkg = next(folder.glob("*.gpkg"))
    manifest = gpkg.with_suffix(".json")
    outside = tmp_path / "outside.gpkg"
    damage(gpkg, manifest, outside)
    before_outside = outside.read_bytes() if outside.exists() else None
    caplog.set_level(logging.WARNING, logger="walkcover.presentation.layer_store")
    again = _write(stored, tmp_path / "again")
    _same_layers(without, again)
    assert filecmp.cmp(without, again, shallow=False)
    assert any(gpkg.stem in r.getMessage() for r in caplog.records), caplog.text
    # mended: a regular file again, and the next copy needs no making
    assert not gpkg.is_symlink() and gpkg.is_file()
    if before_outside is not None:
        assert outside.read_bytes() == before_outside  # never written through the link
    caplog.clear()
    third = _write(stored, tmp_path / "third")
    assert filecmp.cmp(again, third, shallow=False)
    assert not caplog.records


def test_store_that_cannot_be_written_loses_nothing(plain, stored, tmp_path, caplog, monkeypatch):
    without = _write(plain, tmp_path / "plain")
    root = stored.network.store_dir
    root.mkdir()
    (root / layer_store.STORE_FOLDER).write_text("a file where the folder goes")
    monkeypatch.setattr(snap_store, "_WARNED", set())
    caplog.set_level(logging.WARNING, logger="walkcover.presentation.layer_store")
    first = _write(stored, tmp_path / "first")
    second = _write(stored, tmp_path / "second")
    _same_layers(without, first)
    _same_layers(without, second)
    said = [r for r in caplog.records if "could not keep" in r.getMessage()]
    assert len(said) == 1  # once per cache, not once per district


def test_store_folder_linked_out_of_the_cache_is_not_written(plain, stored, tmp_path):
    without = _write(plain, tmp_path / "plain")
    root = stored.network.store_dir
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / layer_store.STORE_FOLDER).symlink_to(elsewhere, target_is_directory=True)
    written = _write(stored, tmp_path / "first")
    _same_layers(without, written)
    assert list(elsewhere.iterdir()) == []
    assert layer_store.prune(root, max_bytes=0) == 0  # nor pruned through the link


def test_two_kept_layers_refused_before_writing(tmp_path):
    def never(_tmp):
        raise AssertionError("started")

    path = tmp_path / "two.gpkg"
    with pytest.raises(ValueError, match="'a', 'b' are all kept"):
        write_layers(path, {"a": Kept(never), "b": Kept(never)})
    assert not path.exists()


def test_prune_keeps_the_most_recently_used(tmp_path):
    folder = tmp_path / layer_store.STORE_FOLDER
    folder.mkdir()
    now = time.time()
    for k, age_s in enumerate((300, 200, 100)):
        for suffix in (".gpkg", ".json"):
            f = folder / f"{k:064x}{suffix}"
            f.write_bytes(b"x" * (1000 if suffix == ".gpkg" else 10))
            os.utime(f, (now - age_s, now - age_s))
    stale = folder / ".walkcover-tmp-layer-dead.gpkg"
    stale.write_bytes(b"x")
    os.utime(stale, (now - 7200, now - 7200))
    removed = layer_store.prune(tmp_path, max_bytes=2020)
    assert removed == 3  # the oldest pair and the dead run's temporary file
    assert not stale.exists()
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{k:064x}{suffix}" for k in (1, 2) for suffix in (".gpkg", ".json")
    ]


def _map_page(assessment) -> str:
    from walkcover.presentation.maps import district_map
    from walkcover.presentation.web_map import render_html

    did, _ = _district(assessment)
    return render_html(district_map(assessment, did))


def test_map_streets_kept_and_drawn_the_same(plain, stored, monkeypatch):
    """The district map's packed streets are kept beside its streets layer: the page is the page
    drawn without a cache, byte for byte, and a rerun packs no street again."""
    from walkcover.presentation import maps

    without = _map_page(plain)
    first = _map_page(stored)
    kept = list((stored.network.store_dir / "layers").glob("*.json"))
    kinds = sorted(json.loads(k.read_text())["packed"]["kind"] for k in kept)
    assert kinds == ["line", "polygon"]  # the streets, and the homes beside them

    def refuse(*_a, **_k):
        raise AssertionError("the map's streets or homes were packed again: the store was not read")

    monkeypatch.setattr(maps, "way_lines", refuse)
    monkeypatch.setattr(maps, "pack_geometry", refuse)
    again = _map_page(stored)
    assert first == without and again == without
    assert "WalkcoverLines" in again


@pytest.mark.parametrize("kind", ["line", "polygon"], ids=["streets", "homes"])
@pytest.mark.parametrize(
    "damage",
    [
        lambda facts: "\x00 not json",
        lambda facts: json.dumps({**facts, "version": 99}),
        lambda facts: json.dumps(
            {
                **facts,
                "packed": {
                    **facts["packed"],
                    "kind": "line" if facts["packed"]["kind"] == "polygon" else "polygon",
                },
            }
        ),
        lambda facts: json.dumps(
            {**facts, "packed": {**facts["packed"], "xy": "</script><script>alert(1)</script>"}}
        ),
        lambda facts: json.dumps({**facts, "packed": {**facts["packed"], "origin": [1.0, "x"]}}),
        lambda facts: json.dumps({**facts, "packed": [1, 2, 3]}),
    ],
    ids=["garbage", "version", "kind", "script in the text", "origin", "not a dict"],
)
def test_damaged_map_streets_drawn_again(plain, stored, caplog, damage, kind):
    without = _map_page(plain)
    _map_page(stored)
    (path,) = [
        p
        for p in (stored.network.store_dir / "layers").glob("*.json")
        if json.loads(p.read_text())["packed"]["kind"] == kind
    ]
    path.write_text(damage(json.loads(path.read_text())))
    caplog.set_level(logging.WARNING, logger="walkcover.presentation.layer_store")
    page = _map_page(stored)
    assert page == without
    assert "alert(1)" not in page
    assert any(path.name in r.getMessage() for r in caplog.records), caplog.text
    caplog.clear()
    assert _map_page(stored) == without  # mended
    assert not caplog.records


def test_packed_homes_follow_the_footprints(stored):
    """The map's packed homes are kept under the footprints themselves: the same footprints are
    read back (not packed again), one moved by an ulp or other options are packed anew."""
    from walkcover.presentation.web_map import pack_geometry

    net = stored.network
    geoms = stored.demand.geometry.to_numpy()[:50]
    made: list[int] = []

    def packing(g, step_m=0.5):
        def make():
            made.append(len(g))
            return pack_geometry(g, stored.crs, step_m=step_m, simplify_m=0.5)

        return layer_store.packed_homes(net, g, stored.crs, (step_m, 0.5), make)

    first = packing(geoms)
    assert packing(geoms) == first and made == [50]
    moved = geoms.copy()
    xy = shapely.get_coordinates(moved[7])
    xy[0] = np.nextafter(xy[0], np.inf)
    xy[-1] = xy[0]  # (a ring stays closed)
    moved[7] = shapely.polygons(xy)
    packing(moved)
    packing(geoms, step_m=2.0)
    assert made == [50, 50, 50]
    assert first == pack_geometry(geoms, stored.crs, step_m=0.5, simplify_m=0.5)


def test_a_full_disk_under_the_store_loses_only_the_store(
    plain, stored, tmp_path, caplog, monkeypatch
):
    """GDAL says a full disk in SQLite's words (a `RuntimeError`, not an `OSError`): writing a
    kept streets layer that way costs the store, never the run (it used to fail the district, the
    --out folder blamed)."""
    import pyogrio.errors

    from walkcover.presentation import geopackage

    without = _write(plain, tmp_path / "plain")
    folder = stored.network.store_dir / layer_store.STORE_FOLDER
    real = geopackage._write_layer

    def full(tmp, name, layer, *, first):
        if Path(tmp).parent == folder:  # the store's files alone
            raise pyogrio.errors.DataLayerError(
                "Error while writing batch to OGR layer: sqlite3_exec(COMMIT) failed: "
                "database or disk is full"
            )
        return real(tmp, name, layer, first=first)

    monkeypatch.setattr(geopackage, "_write_layer", full)
    monkeypatch.setattr(snap_store, "_WARNED", set())
    caplog.set_level(logging.WARNING, logger="walkcover.presentation.layer_store")
    written = _write(stored, tmp_path / "full")
    _same_layers(without, written)
    said = [r.getMessage() for r in caplog.records if "could not keep" in r.getMessage()]
    assert len(said) == 1 and "No space left on device" in said[0], said
