"""The standard store (`walkcover.assessment.standard_store`): a rerun reads back every pass it
measured before, exactly as measured; a change to one standard or to its facilities measures that
standard alone again; a damaged, edited or planted file is measured again with a warning."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from walkcover.assessment import standard_store

STANDARDS = "toilet,primary_school,kindergarten,park"


@pytest.fixture
def measured(monkeypatch) -> list[str]:
    """The standards measured (not read back) by the runs of a test, in order."""
    from walkcover.assessment import run as run_mod

    ids: list[str] = []
    real = run_mod._measure_one

    def counting(study, std, *args):
        ids.append(std.id)
        return real(study, std, *args)

    monkeypatch.setattr(run_mod, "_measure_one", counting)
    return ids


@pytest.fixture
def layered(monkeypatch) -> list[tuple[str, str]]:
    """The (district, standard) parts of the districts' layers measured (not read back)."""
    from walkcover.measures import gaps

    parts: list[tuple[str, str]] = []
    real = gaps.standard_layers

    def counting(result, district_id, standards, **kw):
        parts.extend((district_id, s.id) for s in standards)
        return real(result, district_id, standards, **kw)

    monkeypatch.setattr(gaps, "standard_layers", counting)
    return parts


def _toilet_radius(folder: Path, radius: int) -> Path:
    """The bundled standards file with the toilets' main-street radius (300 m) set to `radius`."""
    bundled = Path(__file__).parents[1] / "configs" / "standards" / "zhengzhou-2018.yaml"
    text = bundled.read_text(encoding="utf-8")
    assert text.count("      main_street: 300\n") == 1
    path = folder / f"standards-{radius}.yaml"
    path.write_text(
        text.replace("      main_street: 300\n", f"      main_street: {radius}\n"), "utf-8"
    )
    return path


@pytest.fixture
def parts_read_ahead(monkeypatch) -> list[str]:
    """The names of the districts' layers parts read ahead (`standard_store.read_ahead_layers`)."""
    parts: list[str] = []
    real = standard_store.read_ahead_layers

    def reading(root, key, **kw):
        parts.append(key)
        return real(root, key, **kw)

    monkeypatch.setattr(standard_store, "read_ahead_layers", reading)
    return parts


def _assess(cache_dir, **options):
    import walkcover as wc

    options.setdefault("standard", STANDARDS)
    return wc.assess("helsinki-sample", cache_dir=cache_dir, **options).assessment


def _files(cache, kind="pass"):
    """The store's files of passes (or of districts' ``layers``)."""
    return sorted((cache / standard_store.STORE_FOLDER).glob(f"*.{kind}.npz"))


def _same_values(a: pd.Series, b: pd.Series) -> None:
    """Equal values of the same Python types (None is not NaN)."""
    assert a.dtype == b.dtype
    for x, y in zip(a.to_numpy(dtype=object), b.to_numpy(dtype=object)):
        assert type(x) is type(y) or (x is pd.NA and y is pd.NA), (x, y)
        assert (x == y) or (x != x and y != y) or (x is None and y is None), (x, y)


def _assert_same(a, b) -> None:
    """Two assessments with the same passes, figures, homes and notes, value for value."""
    assert list(a.passes) == list(b.passes)
    for sid, p in a.passes.items():
        q = b.passes[sid]
        for frame_a, frame_b in ((p.counted, q.counted),):
            pd.testing.assert_frame_equal(frame_a, frame_b, check_exact=True)
            for col in frame_a.columns:
                if frame_a[col].dtype == object:
                    _same_values(frame_a[col], frame_b[col])
        pd.testing.assert_series_equal(p.access, q.access, check_exact=True)
        assert p.access.crs == q.access.crs
        for name in ("item", "edge", "lo_m", "hi_m", "leg_m", "unsnapped"):
            x, y = getattr(p.snaps, name), getattr(q.snaps, name)
            assert x.dtype == y.dtype and np.array_equal(x, y), (sid, name)
        assert p.snaps.n_items == q.snaps.n_items
        assert p.node_dist.dtype == q.node_dist.dtype
        assert np.array_equal(p.node_dist, q.node_dist)  # inf beyond the limit, kept as inf
        assert np.array_equal(p.nearest, q.nearest) and p.nearest.dtype == q.nearest.dtype
        assert p.limit_m == q.limit_m
        if p.edge_radii is None:
            assert q.edge_radii is None
        else:
            assert np.array_equal(p.edge_radii, q.edge_radii)
    pd.testing.assert_frame_equal(a.facilities, b.facilities, check_exact=True)
    for col in a.facilities.columns:
        if a.facilities[col].dtype == object:
            _same_values(a.facilities[col], b.facilities[col])
    pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
    pd.testing.assert_frame_equal(a.district_rows, b.district_rows, check_exact=True)
    pd.testing.assert_frame_equal(a.demand, b.demand, check_exact=True)
    for col in a.demand.columns:
        if a.demand[col].dtype == object:
            _same_values(a.demand[col], b.demand[col])
    assert a.notes == b.notes
    for did in a.district_layers:
        pd.testing.assert_frame_equal(a.gaps(did), b.gaps(did), check_exact=True)
        pd.testing.assert_frame_equal(a.service_areas(did), b.service_areas(did), check_exact=True)


def test_a_rerun_reads_every_pass_back_as_measured(measuring_cache, measured, layered):
    first = _assess(measuring_cache)
    assert sorted(measured) == sorted(STANDARDS.split(","))
    assert len(layered) == 4 * 4  # four districts, four standards
    assert len(_files(measuring_cache)) == 4
    assert len(_files(measuring_cache, "layers")) == 4 * 4
    measured.clear()
    layered.clear()
    again = _assess(measuring_cache)
    assert measured == [] and layered == []  # nothing measured: every pass and part read back
    _assert_same(first, again)
    # the same as a run that keeps nothing
    _assert_same(first, _assess(None, cache=False))


def test_a_changed_standard_alone_is_measured_again(
    measuring_cache, measured, layered, monkeypatch, tmp_path
):
    """A planner changes the toilets' radius, or one standard's facilities: that standard is
    measured again, the others read back, and the figures are those of a fresh run."""

    _assess(measuring_cache)
    path = _toilet_radius(tmp_path, 250)
    measured.clear()
    layered.clear()
    kept = _assess(measuring_cache, standards=str(path))
    assert measured == ["toilet"]
    assert {s for _, s in layered} == {"toilet"}  # its districts' layers alone, again
    _assert_same(kept, _assess(None, cache=False, standards=str(path)))


def test_a_changed_standard_on_two_threads_takes_the_idle_one(
    measuring_cache, monkeypatch, tmp_path
):
    """Measured alone (every other pass read back), a standard's land figures are made beside the
    rest of its pass, on the other measuring thread, and the figures are a fresh run's; with more
    than one pass to measure, they are not."""
    from walkcover.assessment import run as run_mod
    from walkcover.assessment import study as study_mod

    monkeypatch.setattr(study_mod, "MEASURE_THREADS", 2)
    monkeypatch.setattr(study_mod, "THREADS_FROM_EDGES", 0)  # the sample is small
    spare: list[tuple[str, bool]] = []
    real = run_mod._measure_one

    def watching(study, std, *args):
        spare.append((std.id, study.spare_thread))
        return real(study, std, *args)

    monkeypatch.setattr(run_mod, "_measure_one", watching)
    _assess(measuring_cache)
    assert sorted(spare) == sorted((s, False) for s in STANDARDS.split(","))
    path = _toilet_radius(tmp_path, 260)
    spare.clear()
    kept = _assess(measuring_cache, standards=str(path))
    assert spare == [("toilet", True)]
    fresh = _assess(None, cache=False, standards=str(path))
    assert ("toilet", False) in spare
    _assert_same(kept, fresh)
    assert any(kept.summary["area_covered_pct"].notna())  # the land figures are there


def test_a_new_facility_list_measures_its_standard_alone_again(tmp_path, monkeypatch, measured):
    """A planner imports a new list of toilets (the city takes them from OSM and files): the
    toilets alone are measured again, and they count the new list's."""
    import geopandas as gpd
    import shapely
    from typer.testing import CliRunner

    import walkcover as wc
    from walkcover.cli import app
    from walkcover.config.study_area import load_city

    monkeypatch.setenv("WALKCOVER_DATA", str(tmp_path / "data"))
    base = load_city("helsinki-sample").config_path
    cfg = base.read_text().replace("path: ../../data/", f"path: {base.parent.parent.parent}/data/")
    cfg += "facilities:\n  toilet: {source: both, merge_within_m: 30}\n"
    (tmp_path / "city.yaml").write_text(cfg)

    def import_points(xy):
        pts = gpd.GeoDataFrame(
            {"name": [f"p{i}" for i in range(len(xy))]},
            geometry=shapely.points(xy),
            crs=4326,
        )
        pts.to_file(tmp_path / "plots.gpkg")
        res = CliRunner().invoke(
            app,
            [
                *("import", str(tmp_path / "plots.gpkg"), "--city", "helsinki-sample"),
                *("--standard", "toilet", "--no-check", "--overwrite"),
            ],
        )
        assert res.exit_code == 0, res.output

    def run():
        city = load_city(tmp_path / "city.yaml")
        return wc.assess(city, standard="toilet,park", cache_dir=tmp_path / "cache").assessment

    import_points([(24.9384, 60.1699)])
    run()
    measured.clear()
    run()
    assert measured == []
    import_points([(24.9384, 60.1699), (24.9450, 60.1710)])
    measured.clear()
    again = run()
    assert measured == ["toilet"]
    imported = again.facilities["matched_by"].astype(str).str.startswith("imported")
    assert imported.sum() == 2


def _damage_cases():
    def cut_short(path):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    def flip_a_byte(path):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def resealed(change):
        """Edited, with a checksum made again to match: caught by the checks on its contents."""

        def edit(path):
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            change(arrays)
            arrays["sha256"] = standard_store._checksum(arrays)
            path.unlink()
            with path.open("wb") as fh:
                np.savez(fh, allow_pickle=True, **arrays)  # (a planted pickle too)

        return edit

    def shorter_distances(arrays):
        arrays["node_dist"] = arrays["node_dist"][:-1]

    def nearest_out_of_range(arrays):
        arrays["nearest"] = arrays["nearest"].copy()
        arrays["nearest"][0] = 10**9

    def snapped_to_no_edge(arrays):
        arrays["snap_edge"] = arrays["snap_edge"].copy()
        arrays["snap_edge"][0] = -5

    def foreign_meta(arrays):
        arrays["meta"] = np.frombuffer(b'{"version": 1, "key": "x"}', dtype=np.uint8)

    def a_pickle(arrays):
        arrays["meta"] = np.array([{"x": 1}], dtype=object)

    def unreadable_frame(arrays):
        arrays["frame_facilities"] = np.frombuffer(b"not parquet", dtype=np.uint8)

    return {
        "cut short": cut_short,
        "a byte flipped": flip_a_byte,
        "distances of fewer nodes": resealed(shorter_distances),
        "a nearest facility out of range": resealed(nearest_out_of_range),
        "a snap to no edge": resealed(snapped_to_no_edge),
        "a foreign manifest": resealed(foreign_meta),
        "a pickled array": resealed(a_pickle),
        "a frame that is not Parquet": resealed(unreadable_frame),
    }


@pytest.mark.parametrize("case", list(_damage_cases()))
def test_a_damaged_file_is_measured_again(measuring_cache, measured, caplog, case):
    """A kept file cut short, damaged on disk or edited (even with its checksum made again)
    never crashes a run nor gives it other figures: the pass is measured again, with a
    warning, and filed again."""
    first = _assess(measuring_cache, standard="toilet")
    (path,) = _files(measuring_cache)
    _damage_cases()[case](path)
    measured.clear()
    with caplog.at_level(logging.WARNING, logger="walkcover.assessment.standard_store"):
        again = _assess(measuring_cache, standard="toilet")
    assert measured == ["toilet"]
    assert "measuring again" in caplog.text
    _assert_same(first, again)
    measured.clear()
    _assess(measuring_cache, standard="toilet")
    assert measured == []  # filed again, whole


def test_a_planted_link_or_a_file_of_another_pass_is_not_read(measuring_cache, measured):
    # (one run for both: a run of one reads a smaller area around the districts, by that
    # standard's search limit, and files its passes under other names)
    _assess(measuring_cache, standard="toilet,park")
    toilet, park = (p for p in _files(measuring_cache))  # (in name order: either may be first)
    a, b = toilet.read_bytes(), park.read_bytes()
    # each file put under the other's name: the names inside do not match
    toilet.write_bytes(b)
    park.write_bytes(a)
    measured.clear()
    _assess(measuring_cache, standard="toilet,park")
    assert sorted(measured) == ["park", "toilet"]
    # a link planted in place of a file is never followed
    outside = measuring_cache.parent / "outside.npz"
    target = _files(measuring_cache)[0]
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    measured.clear()
    _assess(measuring_cache, standard="toilet,park")
    assert len(measured) == 1
    assert len(_files(measuring_cache)) == 2  # filed again in its place: the link replaced
    assert not target.is_symlink()


def test_a_store_that_cannot_be_written_costs_only_the_store(measuring_cache, monkeypatch, caplog):
    folder = measuring_cache / standard_store.STORE_FOLDER
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")  # the store's folder cannot be made
    with caplog.at_level(logging.WARNING):
        res = _assess(measuring_cache)
    assert res.summary["residents_covered_pct"].notna().any()
    said = [r for r in caplog.records if "standard store: could not keep" in r.getMessage()]
    assert len(said) <= 1  # said once per cache, not once per standard


def test_prune_keeps_the_store_under_its_size(measuring_cache, monkeypatch):
    _assess(measuring_cache)
    assert len(_files(measuring_cache)) == 4
    assert len(_files(measuring_cache, "layers")) == 4 * 4  # four districts, four standards
    files = sorted((measuring_cache / standard_store.STORE_FOLDER).glob("*.npz"))
    for age, path in enumerate(files):
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    sizes = [p.stat().st_size for p in files]
    monkeypatch.setattr(standard_store, "STORE_MAX_BYTES", sum(sizes[2:]))
    assert standard_store.prune(measuring_cache) == 2
    left = sorted((measuring_cache / standard_store.STORE_FOLDER).glob("*.npz"))
    assert left == files[2:]  # the two least recently used went


def test_no_cache_keeps_no_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKCOVER_CACHE", str(tmp_path / "default"))
    _assess(None, cache=False, standard="toilet")
    assert not (tmp_path / "default" / standard_store.STORE_FOLDER).exists()


@pytest.mark.parametrize("case", ["cut short", "another standard", "other gap columns"])
def test_a_damaged_part_of_the_layers_is_measured_again(measuring_cache, layered, caplog, case):
    first = _assess(measuring_cache, standard="toilet")
    path = next(p for p in _files(measuring_cache, "layers"))
    if case == "cut short":
        path.write_bytes(path.read_bytes()[:100])
    else:
        import io
        import json

        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if case == "another standard":
            meta = json.loads(arrays["meta"].tobytes())
            meta["standard"] = "park"
            arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        else:
            gaps = pd.read_parquet(io.BytesIO(arrays["frame_gaps"].tobytes()))
            buf = io.BytesIO()
            gaps.rename(columns={"rank": "ranking"}).to_parquet(buf)
            arrays["frame_gaps"] = np.frombuffer(buf.getvalue(), dtype=np.uint8)
        arrays["sha256"] = standard_store._checksum(arrays)
        with path.open("wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
    layered.clear()
    with caplog.at_level(logging.WARNING, logger="walkcover.assessment.standard_store"):
        again = _assess(measuring_cache, standard="toilet")
    assert len(layered) == 1  # that part alone
    assert "measuring again" in caplog.text
    _assert_same(first, again)


def test_a_rerun_reads_the_study_back(measuring_cache, monkeypatch, caplog):
    """The homes and residents, the street contexts, the district indicators and the homes on
    each denominator land depend on the study alone: a rerun reads them back, and a damaged
    file of them is made again with a warning."""
    from walkcover.assessment import run as run_mod

    calls: list[str] = []
    for name in ("homes_and_residents", "classify_edges", "district_indicators", "homes_on_land"):
        real = getattr(run_mod, name)

        def counting(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(run_mod, name, counting)
    first = _assess(measuring_cache)
    assert sorted(calls) == [
        "classify_edges",
        "district_indicators",
        "homes_and_residents",
        "homes_on_land",
    ]
    calls.clear()
    again = _assess(measuring_cache)
    assert calls == []
    _assert_same(first, again)
    assert first.completeness.equals(again.completeness)
    assert first.population_model == again.population_model
    folder = measuring_cache / standard_store.STORE_FOLDER
    for kind in ("residents", "contexts", "figures"):
        for path in folder.glob(f"*.{kind}.npz"):
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="walkcover.assessment.standard_store"):
        third = _assess(measuring_cache)
    assert sorted(calls) == [
        "classify_edges",
        "district_indicators",
        "homes_and_residents",
        "homes_on_land",
    ]
    assert "again" in caplog.text
    _assert_same(first, third)


def test_a_barrier_street_moved_alone_measures_the_passes_again(measuring_cache, measured):
    """A motorway is no part of the walk network, yet the safe route treats it as a barrier:
    moving it alone (the network, the features and the homes unchanged) names the study anew,
    so the kept passes are measured again, never served stale."""
    import geopandas as gpd
    import shapely

    import walkcover as wc
    from walkcover.assessment.model import study_query
    from walkcover.assessment.run import assess_layers
    from walkcover.config.study_area import working_crs
    from walkcover.sources import load_osm

    plan = wc.study("helsinki-sample", standard="primary_school,park", cache_dir=measuring_cache)
    crs = working_crs(plan.city)
    query = study_query(plan.city, plan.districts, plan.rules, plan.standards)
    # read without a cache: layers named by their contents, not by a cache entry
    layers = load_osm(plan.source_kind, plan.source, query, cache_dir=None, crs=crs)
    x0, y0, x1, y1 = layers.streets.total_bounds

    def with_motorway(shift_m: float):
        y = (y0 + y1) / 2 + shift_m
        row = gpd.GeoDataFrame(
            {
                "u": [-1],
                "v": [-2],
                "osm_id": ["way/-1"],
                "highway": ["motorway"],
            },
            geometry=[shapely.LineString([(x0, y), (x1, y)])],
            crs=layers.streets.crs,
        )
        streets = pd.concat([layers.streets, row], ignore_index=True)
        return dataclasses.replace(layers, streets=streets)

    args = (plan.city, plan.districts, plan.rules, plan.standards)
    assess_layers(*args, with_motorway(0.0), cache_dir=measuring_cache)
    assert sorted(measured) == ["park", "primary_school"]
    measured.clear()
    assess_layers(*args, with_motorway(0.0), cache_dir=measuring_cache)
    assert measured == []
    assess_layers(*args, with_motorway(60.0), cache_dir=measuring_cache)
    assert sorted(measured) == ["park", "primary_school"]


def test_the_passes_are_read_while_the_network_is_built(measuring_cache, measured, monkeypatch):
    """Layers read from the OSM cache name the walk network before it is built (its recipe):
    the study's digest is made and every kept pass read beside the building, and the passes
    read then are those a run reading them afterwards gets, value for value."""
    import threading

    from walkcover.assessment import run as run_mod

    first = _assess(measuring_cache)
    measured.clear()
    n = len(STANDARDS.split(","))
    read: list[str] = []
    all_read = threading.Event()
    real_read = standard_store.read_ahead

    def reading(root, key, **kw):
        found = real_read(root, key, **kw)
        read.append(key)
        if len(read) == n:
            all_read.set()
        return found

    monkeypatch.setattr(standard_store, "read_ahead", reading)
    waited: list[bool] = []
    real_build = run_mod.build_network

    def building(*args, **kwargs):
        # the build does not end before the passes are read: only reads made beside it can
        # end this wait (a run reading them after the build would wait here in vain)
        waited.append(all_read.wait(timeout=60))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(run_mod, "build_network", building)
    loaded: list[str] = []
    real_load = standard_store._load

    def loading(root, key, kind, **kw):
        loaded.append(kind)
        return real_load(root, key, kind, **kw)

    monkeypatch.setattr(standard_store, "_load", loading)
    again = _assess(measuring_cache)
    assert waited == [True]
    assert len(set(read)) == n
    assert measured == []
    assert loaded.count("pass") == n  # each pass read once, ahead; none read again
    assert again.network.recipe is not None
    _assert_same(first, again)


def test_a_network_named_by_its_recipe_is_named_by_nothing_else(tmp_path):
    """The recipe (the layers' name, the street classes walked, the islands dropped, the
    code) names the network in every store; each of its parts changes the name, and a network
    without one is named by its edges."""
    import geopandas as gpd
    import shapely

    from walkcover.engine import snap_store
    from walkcover.engine.network import build_network

    base = standard_store.network_recipe(
        b"layers", walk_highways=("footway", "residential"), min_island_m=50.0
    )
    others = [
        standard_store.network_recipe(
            b"layers 2", walk_highways=("footway", "residential"), min_island_m=50.0
        ),
        standard_store.network_recipe(b"layers", walk_highways=("footway",), min_island_m=50.0),
        standard_store.network_recipe(
            b"layers", walk_highways=("footway", "residential"), min_island_m=0.0
        ),
    ]
    assert len({base, *others}) == 4
    streets = gpd.GeoDataFrame(
        {"u": [1, 2], "v": [2, 3], "osm_id": ["way/1", "way/1"], "highway": ["footway"] * 2},
        geometry=[shapely.LineString([(0, 0), (10, 0)]), shapely.LineString([(10, 0), (20, 0)])],
        crs=3067,
    )
    plain = build_network(streets)
    moved = build_network(streets.set_geometry(streets.translate(xoff=1.0)))
    assert snap_store.network_digest(plain) != snap_store.network_digest(moved)
    named = [dataclasses.replace(n, recipe=base) for n in (plain, moved)]
    assert snap_store.network_digest(named[0]) == snap_store.network_digest(named[1])
    assert snap_store.network_digest(named[0]) == snap_store.recipe_digest(base)
    assert standard_store.network_digest(named[0]) == standard_store.recipe_digest(base)
    assert standard_store.network_digest(plain) != standard_store.network_digest(named[0])


def test_a_rerun_from_the_stores_never_builds_the_edges_index(measuring_cache, monkeypatch):
    """The edges' R-tree is built when something is first snapped: a rerun that reads every
    snap back (the homes' too, kept here however few) builds none."""
    from walkcover.engine import snap_store

    monkeypatch.setattr(snap_store, "STORE_MIN_ITEMS", 0)
    first = _assess(measuring_cache)
    assert "tree" in first.network.__dict__
    again = _assess(measuring_cache)
    assert "tree" not in again.network.__dict__
    _assert_same(first, again)


def test_a_rerun_reads_the_summary_and_the_service_extents_back(
    measuring_cache, monkeypatch, caplog, parts_read_ahead
):
    """The summary, its notes and where each district's service areas are measured depend on
    every standard at once: a rerun over the same passes reads them back (and, by the extents,
    reads every part of the layers while the network is built); a damaged file of them is made
    again with a warning."""
    from walkcover.assessment import run as run_mod

    calls: list[str] = []
    for name in ("summary_table", "reached_box"):
        real = getattr(run_mod, name)

        def counting(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(run_mod, name, counting)
    first = _assess(measuring_cache)
    assert sorted(calls) == ["reached_box", "summary_table"] and parts_read_ahead == []
    assert any(n.district for n in first.notes)  # the summary made notes of its own
    calls.clear()
    again = _assess(measuring_cache)
    assert calls == []
    assert len(parts_read_ahead) == len(set(parts_read_ahead)) == 4 * 4  # every part, read ahead
    _assert_same(first, again)
    (run_file,) = _files(measuring_cache, "run")
    data = bytearray(run_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    run_file.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="walkcover.assessment.standard_store"):
        third = _assess(measuring_cache)
    assert sorted(calls) == ["reached_box", "summary_table"]
    assert "again" in caplog.text
    _assert_same(first, third)


def test_a_changed_standard_reads_the_other_layers_ahead(
    measuring_cache, layered, tmp_path, caplog, parts_read_ahead
):
    """With one standard changed the run's figures are not filed, but the service extents the
    study's last run measured are: the other standards' layers filed under them are read while the
    network is built, and taken, the run's own extents being the same. A damaged file of them is
    said, and the layers read when needed."""
    _assess(measuring_cache)
    assert parts_read_ahead == []  # nothing filed yet
    (last,) = _files(measuring_cache, "extents")
    fresh = {}
    for radius in (270, 280):
        path = _toilet_radius(tmp_path, radius)
        fresh[radius] = (path, _assess(None, cache=False, standards=str(path)))
    layered.clear()
    kept = _assess(measuring_cache, standards=str(fresh[270][0]))
    assert (
        len(parts_read_ahead) == len(set(parts_read_ahead)) == 4 * 4
    )  # every part named by the last extents
    assert {s for _, s in layered} == {"toilet"}  # the others' parts taken from those
    _assert_same(kept, fresh[270][1])
    parts_read_ahead.clear()
    layered.clear()
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="walkcover.assessment.standard_store"):
        again = _assess(measuring_cache, standards=str(fresh[280][0]))
    assert last.name in caplog.text and "measuring again" in caplog.text and parts_read_ahead == []
    assert {s for _, s in layered} == {"toilet"}  # the others' parts read when needed
    _assert_same(again, fresh[280][1])


def test_frames_keep_their_missing_values_and_integers():
    """A kept table's columns of objects come back with NaN, None and pd.NA where they were and
    integers as integers (Parquet reads all three missing values alike, and integers beside
    them as floats); integers floats cannot hold are not kept."""
    frame = pd.DataFrame(
        {
            "capacity": pd.Series([pd.NA, 0, 5, None, float("nan")], dtype=object),
            "meets": pd.Series([True, None, False, True, None], dtype=object),
            "count": pd.Series([1, 2, 3, 4, 5], dtype=object),
        }
    )
    blob, missing = standard_store._frame_bytes(frame)
    back = standard_store._frame(blob, missing, crs=None)
    for col in frame.columns:
        assert back[col].dtype == object
        for x, y in zip(frame[col], back[col], strict=True):
            assert type(x) is type(y), (col, x, y)
            assert x is y or x == y or (x != x and y != y), (col, x, y)
    with pytest.raises(ValueError, match="2\\*\\*53"):
        standard_store._frame_bytes(pd.DataFrame({"id": pd.Series([None, 2**60], dtype=object)}))
