"""The snap store (`walkcover.engine.snap_store`): snaps kept in the cache are the snaps made, to
the last bit; they are filed under everything they depend on; a damaged, planted or unwritable
store costs a snap and a warning, never a wrong distance or a failed run."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np
import pandas as pd
import pytest
import shapely

from walkcover.engine import coverage as cov
from walkcover.engine import snap_store
from walkcover.measures.gaps import Lattice


def _same(a: cov.Snaps, b: cov.Snaps) -> None:
    for name in ("item", "edge", "lo_m", "hi_m", "leg_m", "unsnapped"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.n_items == b.n_items


@pytest.fixture
def lattice(helsinki_network) -> np.ndarray:
    """The corners of a 10 m lattice over the sample's streets (about 20,000)."""
    x0, y0, x1, y1 = shapely.total_bounds(helsinki_network.edges.geometry.to_numpy())
    lat = Lattice.over(shapely.box(x0, y0, x1, y1), cell_m=10)
    xx, yy = np.meshgrid(lat.xs, lat.ys)
    return np.column_stack([xx.ravel(), yy.ravel()])


@pytest.fixture
def stored_net(helsinki_network, tmp_path):
    return dataclasses.replace(helsinki_network, store_dir=tmp_path)


def _files(root) -> list:
    folder = root / snap_store.STORE_FOLDER
    return sorted(folder.glob("*.npz")) if folder.exists() else []


def _no_making(monkeypatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("snapped again: the store was not read")

    monkeypatch.setattr(cov, "_snap_xy", refuse)
    monkeypatch.setattr(cov, "_snap", refuse)


def test_lattice_snaps_kept_and_read_back_the_same(
    helsinki_network, stored_net, lattice, tmp_path, monkeypatch
):
    made = cov.snap_xy(helsinki_network, lattice, max_snap_m=200)
    first = cov.snap_xy(stored_net, lattice, max_snap_m=200)
    assert len(_files(tmp_path)) == 1
    _same(first, made)
    assert made.n_items == len(lattice) > 10_000 and len(made.item) > 1_000  # snapped ones too
    _no_making(monkeypatch)
    _same(cov.snap_xy(stored_net, lattice, max_snap_m=200), made)


def test_homes_and_facility_polygons_kept(
    helsinki_green_space, helsinki_layers, tmp_path, monkeypatch
):
    """Homes with ties and park polygons reached along their streets: the geometry path, its
    threads and its spans, kept and read back whole."""
    from walkcover.config.standards import load_standards
    from walkcover.measures.demand import demand_from_buildings, residential_buildings
    from walkcover.measures.facilities import select_facilities

    net, homes_made, parks_made = helsinki_green_space
    city, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    houses = demand_from_buildings(
        residential_buildings(feats, city.config.demand), city.config.demand
    )
    parks = select_facilities(feats, load_standards().standards["green_space"])
    monkeypatch.setattr(snap_store, "STORE_MIN_ITEMS", 1)  # the sample's parks are few
    monkeypatch.setattr(cov, "SNAP_CHUNK_MIN", 100)  # and its homes snapped on two threads
    stored = dataclasses.replace(net, store_dir=tmp_path)
    homes = cov.snap(stored, houses.geometry, max_snap_m=200, tie_m=1.0)
    fac = cov.snap(stored, parks.geometry, max_snap_m=200, reach_polygon_edges=True)
    assert len(_files(tmp_path)) == 2
    _same(homes, homes_made)
    _same(fac, parks_made)
    assert (fac.hi_m > fac.lo_m).any()  # spans along the parks' sides, not points
    _no_making(monkeypatch)
    _same(cov.snap(stored, houses.geometry, max_snap_m=200, tie_m=1.0), homes_made)
    _same(cov.snap(stored, parks.geometry, max_snap_m=200, reach_polygon_edges=True), parks_made)


def test_key_follows_everything_a_snap_depends_on(stored_net, lattice, tmp_path):
    key = snap_store.snap_key(stored_net, "xy", (200.0, 0.0), lattice)
    # the same network under another store, a copy of the points: the same snaps
    other = dataclasses.replace(stored_net, store_dir=tmp_path / "elsewhere")
    assert snap_store.snap_key(other, "xy", (200.0, 0.0), lattice.copy()) == key
    nudged = lattice.copy()
    nudged[7, 0] = np.nextafter(nudged[7, 0], np.inf)
    fewer = stored_net.edges.iloc[1:].reset_index(drop=True)
    moved = stored_net.edges.copy()
    moved.loc[0, "geometry"] = shapely.affinity.translate(moved.geometry.iloc[0], 1e-9)
    not_snappable = dataclasses.replace(stored_net, snappable=stored_net.snappable[1:])
    changed = {
        "a point one ulp away": snap_store.snap_key(stored_net, "xy", (200.0, 0.0), nudged),
        "a point fewer": snap_store.snap_key(stored_net, "xy", (200.0, 0.0), lattice[1:]),
        "another snap distance": snap_store.snap_key(stored_net, "xy", (150.0, 0.0), lattice),
        "ties": snap_store.snap_key(stored_net, "xy", (200.0, 1.0), lattice),
        "geometries, not coordinates": snap_store.snap_key(
            stored_net, "geometries", (200.0, 0.0), lattice
        ),
        "an edge fewer": snap_store.snap_key(
            dataclasses.replace(stored_net, edges=fewer), "xy", (200.0, 0.0), lattice
        ),
        "an edge moved by a nanometre": snap_store.snap_key(
            dataclasses.replace(stored_net, edges=moved), "xy", (200.0, 0.0), lattice
        ),
        "an edge no longer snappable": snap_store.snap_key(
            not_snappable, "xy", (200.0, 0.0), lattice
        ),
    }
    assert key not in changed.values()
    assert len(set(changed.values())) == len(changed)


def _rewrite(path, **changes) -> None:
    """Rewrite a stored file with some arrays changed and a checksum that fits them."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in ("item", "edge", "lo_m", "hi_m", "leg_m", "unsnapped")}
        n = int(z["n_items"])
    arrays.update(changes)
    np.savez(path, **arrays, n_items=np.int64(n), sha256=snap_store._checksum(arrays, n))


@pytest.mark.parametrize(
    "damage",
    [
        "cut_short",
        "byte_flipped",
        "edge_out_of_range",
        "leg_not_finite",
        "column_dropped",
        "pickled_objects",
        "not_a_zip",
        "link_to_elsewhere",
    ],
)
def test_damaged_file_snapped_again(
    damage, helsinki_network, stored_net, lattice, tmp_path, caplog
):
    made = cov.snap_xy(helsinki_network, lattice, max_snap_m=200)
    cov.snap_xy(stored_net, lattice, max_snap_m=200)
    (path,) = _files(tmp_path)
    data = path.read_bytes()
    if damage == "cut_short":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "byte_flipped":  # inside the leg array's bytes, past the headers
        b = bytearray(data)
        b[len(b) // 2] ^= 0x01
        path.write_bytes(bytes(b))
    elif damage == "edge_out_of_range":
        with np.load(path) as z:
            edge = z["edge"].copy()
        edge[0] = len(helsinki_network.edges)
        _rewrite(path, edge=edge)
    elif damage == "leg_not_finite":
        with np.load(path) as z:
            leg = z["leg_m"].copy()
        leg[3] = np.nan
        _rewrite(path, leg_m=leg)
    elif damage == "column_dropped":
        with np.load(path) as z:
            kept = {k: z[k] for k in z.files if k != "hi_m"}
        np.savez(path, **kept)
    elif damage == "pickled_objects":
        with np.load(path) as z:
            kept = {k: z[k] for k in z.files}
        kept["item"] = np.array([object()] * len(kept["item"]), dtype=object)
        np.savez(path, **kept)
    elif damage == "not_a_zip":
        path.write_text("<html>not snaps</html>")
    else:  # a link planted in place of the file, to a good file elsewhere
        outside = tmp_path.parent / f"{tmp_path.name}-outside.npz"
        path.replace(outside)
        path.symlink_to(outside)
    caplog.set_level(logging.WARNING, logger="walkcover.engine.snap_store")
    again = cov.snap_xy(stored_net, lattice, max_snap_m=200)
    _same(again, made)
    assert any(path.name in r.getMessage() for r in caplog.records), damage
    # the damaged file is replaced by a good one, read next time without a warning
    assert not path.is_symlink()
    caplog.clear()
    _same(cov.snap_xy(stored_net, lattice, max_snap_m=200), made)
    assert not caplog.records


def test_store_that_cannot_be_written_loses_nothing(
    helsinki_network, lattice, tmp_path, caplog, monkeypatch
):
    made = cov.snap_xy(helsinki_network, lattice, max_snap_m=200)
    (tmp_path / snap_store.STORE_FOLDER).write_text("a file where the folder goes")
    net = dataclasses.replace(helsinki_network, store_dir=tmp_path)
    caplog.set_level(logging.WARNING, logger="walkcover.engine.snap_store")
    monkeypatch.setattr(snap_store, "_WARNED", set())
    _same(cov.snap_xy(net, lattice, max_snap_m=200), made)
    _same(cov.snap_xy(net, lattice[1:], max_snap_m=200), made.take(np.arange(1, len(lattice))))
    # said once for the cache, not once per file a run would have kept
    assert sum("could not keep" in r.getMessage() for r in caplog.records) == 1


def test_store_folder_linked_out_of_the_cache_is_not_written(helsinki_network, lattice, tmp_path):
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    cache.mkdir()
    elsewhere.mkdir()
    (cache / snap_store.STORE_FOLDER).symlink_to(elsewhere, target_is_directory=True)
    net = dataclasses.replace(helsinki_network, store_dir=cache)
    made = cov.snap_xy(helsinki_network, lattice, max_snap_m=200)
    _same(cov.snap_xy(net, lattice, max_snap_m=200), made)
    assert list(elsewhere.iterdir()) == []
    assert snap_store.prune(cache, max_bytes=0) == 0  # nor pruned through the link


def test_small_calls_and_no_cache_keep_nothing(helsinki_network, stored_net, lattice, tmp_path):
    cov.snap_xy(stored_net, lattice[: snap_store.STORE_MIN_ITEMS - 1], max_snap_m=200)
    assert _files(tmp_path) == []
    assert helsinki_network.store_dir is None
    cov.snap_xy(helsinki_network, lattice, max_snap_m=200)
    assert _files(tmp_path) == []


def test_prune_keeps_the_most_recently_used(tmp_path):
    folder = tmp_path / snap_store.STORE_FOLDER
    folder.mkdir()
    now = time.time()
    for i, age_s in enumerate([50, 10, 30, 40]):
        p = folder / f"{i:064x}.npz"
        p.write_bytes(b"x" * 1000)
        os.utime(p, (now - age_s, now - age_s))
    stale = folder / f"{snap_store.TMP_PREFIX}snaps-dead.npz"
    fresh = folder / f"{snap_store.TMP_PREFIX}snaps-writing.npz"
    for p, age_s in ((stale, 2 * snap_store.STALE_TMP_S), (fresh, 1)):
        p.write_bytes(b"y")
        os.utime(p, (now - age_s, now - age_s))
    other = folder / "notes.txt"  # not the store's: left alone
    other.write_text("keep")
    removed = snap_store.prune(tmp_path, max_bytes=2500)
    left = sorted(p.name for p in folder.iterdir())
    assert removed == 3  # the two least recently used files, and the dead run's
    assert left == sorted([f"{1:064x}.npz", f"{2:064x}.npz", fresh.name, "notes.txt"])


def test_rerun_from_the_store_measures_the_same(tmp_path, monkeypatch):
    import walkcover as wc

    first = wc.assess("helsinki-sample", cache_dir=tmp_path)
    stored = _files(tmp_path)
    assert len(stored) >= 3  # homes, land cells, lattice bands
    calls = []
    made = cov._snap_xy
    monkeypatch.setattr(cov, "_snap_xy", lambda *a, **k: calls.append(len(a[1])) or made(*a, **k))
    again = wc.assess("helsinki-sample", cache_dir=tmp_path)
    assert all(n < snap_store.STORE_MIN_ITEMS for n in calls)  # only calls too small to keep
    unstored = wc.assess("helsinki-sample", cache=False)
    for other in (again, unstored):
        pd.testing.assert_frame_equal(first.assessment.demand, other.assessment.demand)
        pd.testing.assert_frame_equal(first.assessment.summary, other.assessment.summary)
        for d, layers in first.assessment.district_layers.items():
            theirs = other.assessment.district_layers[d]
            pd.testing.assert_frame_equal(layers.gaps, theirs.gaps)
            pd.testing.assert_frame_equal(layers.service_areas, theirs.service_areas)


def test_rerun_after_a_new_threshold_snaps_nothing_again(tmp_path, monkeypatch):
    """A planner's rerun after changing a standard's radius (the toilets' on main streets, 300 →
    250 m): every snap comes from the store, and the figures follow the new radius."""
    import walkcover as wc
    from walkcover._paths import config_file

    text = config_file("standards", "zhengzhou-2018").read_text(encoding="utf-8")
    at = text.index("main_street: 300", text.index("  toilet:"))
    changed = tmp_path / "standards.yaml"
    changed.write_text(text[:at] + "main_street: 250" + text[at + 16 :], encoding="utf-8")
    cache = tmp_path / "cache"
    first = wc.assess("helsinki-sample", cache_dir=cache)
    calls = []
    made_xy, made = cov._snap_xy, cov._snap
    monkeypatch.setattr(
        cov, "_snap_xy", lambda *a, **k: calls.append(len(a[1])) or made_xy(*a, **k)
    )
    monkeypatch.setattr(cov, "_snap", lambda *a, **k: calls.append(len(a[1])) or made(*a, **k))
    again = wc.assess("helsinki-sample", cache_dir=cache, standards=changed)
    assert calls and all(n < snap_store.STORE_MIN_ITEMS for n in calls)
    monkeypatch.undo()
    fresh = wc.assess("helsinki-sample", cache=False, standards=changed)
    pd.testing.assert_frame_equal(again.assessment.demand, fresh.assessment.demand)
    pd.testing.assert_frame_equal(again.assessment.summary, fresh.assessment.summary)
    d = again.assessment.demand
    on_main = d["toilet_context"].astype(str) == "main_street"
    assert on_main.any()
    # the new radius is what the homes on main streets are held to
    covered = d["toilet_covered"].astype(bool)
    assert not (covered & on_main & (d["toilet_dist_m"] > 250)).any()
    assert (first.assessment.demand["toilet_covered"].astype(bool) & ~covered).any()


def _text_digest(values, dtype="str") -> str:
    import hashlib

    h = hashlib.sha256()
    snap_store.hash_text(
        h, values if isinstance(values, pd.Series) else pd.Series(values, dtype=dtype)
    )
    return h.hexdigest()


def test_text_columns_hashed_by_their_values():
    """Text is hashed from Arrow's buffers: a slice hashes as the values it shows, a column in
    chunks (parsed a row group at a time) as the same column whole (read back from the cache),
    objects as Arrow text, and no two different columns of these share a digest."""
    import pyarrow as pa

    whole = pd.Series(["way/1", "way/22", None, "way/333"], dtype="str")
    sliced = whole.iloc[1:].reset_index(drop=True)
    assert _text_digest(sliced) == _text_digest(["way/22", None, "way/333"])
    chunked = pd.Series(
        pd.arrays.ArrowExtensionArray(
            pa.chunked_array([["way/1", "way/22"], [None, "way/333"]], type=pa.large_string())
        )
    )
    assert _text_digest(chunked) == _text_digest(whole)
    assert _text_digest(whole.astype(object)) == _text_digest(whole)
    digests = {
        _text_digest(v)
        for v in (
            ["ab", "c"],
            ["a", "bc"],
            ["", "abc"],
            [None, "abc"],
            ["abc", None],
            ["abc"],
            ["ab", "c", ""],
        )
    }
    assert len(digests) == 7
    # plain Python strings (an object column) are hashed through their values
    assert _text_digest(["a", "bc"], dtype=object) != _text_digest(["ab", "c"], dtype=object)


def _frame_digest(frame) -> str:
    import hashlib

    h = hashlib.sha256()
    snap_store.hash_frame(h, frame)
    return h.hexdigest()


def test_frames_hashed_by_their_values():
    """A frame's digest follows every value, name and geometry, not how the values are held."""
    import geopandas as gpd

    base = gpd.GeoDataFrame(
        {
            "osm_id": pd.Series(["node/1", "way/2"], dtype="str"),
            "levels": [3.0, np.nan],
            "counts": [True, False],
            "mixed": pd.Series([1, "1"], dtype=object),
        },
        geometry=[shapely.Point(0, 0), shapely.Point(1, 1)],
    )
    d = _frame_digest(base)
    held_otherwise = base.copy()
    held_otherwise["osm_id"] = held_otherwise["osm_id"].astype(object)
    assert _frame_digest(held_otherwise) == d
    changes = []
    for col, value in (
        ("osm_id", "node/3"),
        ("levels", 4.0),
        ("counts", True),
        ("mixed", 1),
        ("geometry", shapely.Point(1, 1 + 1e-12)),
    ):
        other = base.copy()
        other.loc[1, col] = value
        changes.append(_frame_digest(other))
    renamed = base.rename(columns={"levels": "floors"})
    reindexed = base.set_axis([5, 6])
    digests = {d, *changes, _frame_digest(renamed), _frame_digest(reindexed)}
    assert len(digests) == 8
