"""What a run holds on to: the street layer goes once the walk network is built, and the maps and
GeoPackages pick a district's streets from a table of boxes, not from a second R-tree of a city's
edges (issue 27, memory)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd
import shapely

from walkcover.presentation.layers import edges_in_box


def test_edges_in_box_equals_an_rtree_query(helsinki_network):
    """Every box gives the edges an R-tree query by the box gives (boxes meeting, edges
    included), in ascending order; boxes that touch an edge's box at a side or a corner count."""
    edges = helsinki_network.edges
    geoms = edges.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    rng = np.random.default_rng(27)
    boxes = [(x0, y0, x1, y1), (x1 + 1, y1 + 1, x1 + 2, y1 + 2)]
    for _ in range(40):
        ax, bx = np.sort(rng.uniform(x0 - 50, x1 + 50, 2))
        ay, by = np.sort(rng.uniform(y0 - 50, y1 + 50, 2))
        boxes.append((float(ax), float(ay), float(bx), float(by)))
    b = shapely.bounds(geoms)
    for i in (0, 7, 123):  # exactly on an edge's box: its right side, its top, a corner
        boxes += [
            (b[i, 2], b[i, 1], b[i, 2] + 5, b[i, 3]),
            (b[i, 0], b[i, 3], b[i, 2], b[i, 3] + 5),
            (b[i, 2], b[i, 3], b[i, 2] + 1, b[i, 3] + 1),
            (b[i, 0] - 1, b[i, 1] - 1, np.nextafter(b[i, 0], -np.inf), b[i, 3]),  # just short
        ]
    hits = 0
    for box in boxes:
        got = edges_in_box(edges, box)
        want = np.sort(tree.query(shapely.box(*box)))
        np.testing.assert_array_equal(got, want)
        hits += len(got)
    assert hits > 0


def test_a_run_lets_the_street_layer_go(sample_cache):
    """Given a read instead of the layers, the run holds the only reference to them: the street
    layer is freed once the network is built, and the figures are those of a run given the layers
    themselves."""
    import walkcover as wc
    from walkcover.assessment import assess_layers, study_query
    from walkcover.config.study_area import working_crs
    from walkcover.sources import load_osm

    plan = wc.study(
        "helsinki-sample", district="sample-sw", standard="toilet", cache_dir=sample_cache
    )
    query = study_query(plan.city, plan.districts, plan.rules, plan.standards)

    def read():
        return load_osm(
            plan.source_kind, plan.source, query, cache_dir=plan.cache_dir,
            crs=working_crs(plan.city),
        )  # fmt: skip

    streets_seen: list[weakref.ref] = []
    seen_at_measuring: list[bool] = []

    def reading():
        layers = read()
        streets_seen.append(weakref.ref(layers.streets))
        return layers

    def progress(label: str) -> None:
        if label.startswith("measuring") and streets_seen and not seen_at_measuring:
            gc.collect()
            seen_at_measuring.append(streets_seen[0]() is None)

    args = (plan.city, plan.districts, plan.rules, plan.standards)
    given_read = assess_layers(*args, reading, progress=progress)
    assert seen_at_measuring == [True], "the street layer was still held while measuring"
    kept = read()
    given_layers = assess_layers(*args, kept)
    pd.testing.assert_frame_equal(given_read.summary, given_layers.summary)
    assert (given_read.source, given_read.data_date) == (kept.source, kept.data_date)
    assert len(given_read.summary) and given_read.summary["residents"].sum() > 0


def _streets_whole(assessment, geom):
    """The streets layer made at once, as before it came in parts (the reference)."""
    from walkcover.assessment import search_limit_m

    margin = max(search_limit_m(s, assessment.city) for s in assessment.standards)
    e = assessment.network.edges
    x0, y0, x1, y1 = shapely.bounds(geom)
    near = e.iloc[edges_in_box(e, (x0 - margin, y0 - margin, x1 + margin, y1 + margin))]
    at, ways = pd.factorize(near["osm_id"].astype(str), sort=False)
    order = np.argsort(at, kind="stable")
    lines = shapely.multilinestrings(near.geometry.to_numpy()[order], indices=at[order])
    first = np.zeros(len(ways), dtype=np.int64)
    first[at[order][::-1]] = order[::-1]
    return list(ways), list(near["highway"].to_numpy()[first]), lines


def test_the_streets_layer_in_parts_is_the_whole_layer(sample_results):
    """However many ways a part holds, the parts end to end are the layer: the same ways, in the
    same order, with the same classes and lines (each way's segments, joined into one line where
    one starts where the one before ends); no part holds more than asked."""
    from walkcover.presentation.layers import streets_layer

    a = sample_results.assessment
    did = str(a.districts["district_id"].iloc[0])
    geom = a.district_geometry(did)
    ways, highway, lines = _streets_whole(a, geom)
    assert len(ways) > 100
    for per in (1, 7, 100, len(ways), 10 * len(ways)):
        parts = list(streets_layer(a, geom, ways_per_part=per))
        assert all(len(p) <= per for p in parts)
        assert len(parts) == -(-len(ways) // per)
        got = pd.concat(parts, ignore_index=True)
        assert list(got["osm_id"]) == ways
        assert list(got["highway"]) == highway
        geoms = got.geometry.to_numpy()
        assert shapely.equals(geoms, lines).all()  # the same segments, merged
        # as few lines as the segments make (GEOS's merge, independently): most ways are one line
        pieces = shapely.get_num_geometries(shapely.line_merge(lines))
        assert (shapely.get_num_geometries(geoms) == pieces).all()
        assert shapely.get_num_geometries(geoms).sum() < shapely.get_num_geometries(lines).sum()


def _gpkg_rows(path, layer):
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return con.execute(f'SELECT * FROM "{layer}" ORDER BY fid').fetchall()
    finally:
        con.close()


def test_a_layer_written_in_parts_is_the_layer_written_whole(sample_results, tmp_path):
    """The GeoPackage's rows (geometry blobs included), its contents table, the styles and the
    QGIS project are those of the layer written as one frame; a part with other columns or an
    empty iterator is refused by name."""
    import sqlite3
    import zipfile

    import pytest

    from walkcover.presentation.geopackage import write_layers
    from walkcover.presentation.layers import demand_layer, streets_layer

    a = sample_results.assessment
    did = str(a.districts["district_id"].iloc[0])
    geom = a.district_geometry(did)

    def layers(per):
        return {
            "demand": demand_layer(a, did),
            "streets": streets_layer(a, geom, ways_per_part=per),
        }

    whole = write_layers(tmp_path / "whole.gpkg", layers(10**9), project=tmp_path / "w.qgz")
    parts = write_layers(tmp_path / "parts.gpkg", layers(50), project=tmp_path / "p.qgz")
    for layer in ("demand", "streets"):
        assert _gpkg_rows(parts, layer) == _gpkg_rows(whole, layer)
    for query in (
        "SELECT * FROM layer_styles ORDER BY id",
        "SELECT table_name, data_type, min_x, min_y, max_x, max_y, srs_id FROM gpkg_contents",
        "SELECT * FROM gpkg_geometry_columns",
    ):
        rows = [sqlite3.connect(p).execute(query).fetchall() for p in (whole, parts)]
        assert rows[0] == rows[1], query
    projects = [
        zipfile.ZipFile(tmp_path / f"{q}.qgz")
        .read(f"{q}.qgs")
        .replace(b"whole.gpkg", b"parts.gpkg")
        for q in ("w", "p")
    ]
    assert projects[0] == projects[1]
    assert len(_gpkg_rows(parts, "streets")) > 100

    def other_columns():
        first = next(streets_layer(a, geom, ways_per_part=10))
        yield first
        yield first.rename(columns={"highway": "class"})

    with pytest.raises(ValueError, match="'streets'.*columns"):
        write_layers(tmp_path / "bad.gpkg", {"streets": other_columns()})
    with pytest.raises(ValueError, match="'streets'.*no parts"):
        write_layers(tmp_path / "none.gpkg", {"streets": iter([])})


def test_the_adjacency_keeps_the_shortest_of_parallel_edges():
    """Both directions of every edge, the shortest of parallel edges (never their sum), no
    self-loops, zero lengths kept: against a plain dictionary on random multigraphs."""
    from walkcover.engine.network import symmetric_min_adjacency

    rng = np.random.default_rng(27)
    for trial in range(12):
        n = int(rng.integers(1, 60))
        m = int(rng.integers(0, 400))
        u, v = rng.integers(0, n, m), rng.integers(0, n, m)
        w = rng.choice([0.0, 1.0, 2.5], m) if trial % 2 else rng.random(m) * 100
        want: dict[tuple[int, int], float] = {}
        for a, b, x in zip(u.tolist(), v.tolist(), w.tolist()):
            if a != b:
                for key in ((a, b), (b, a)):
                    want[key] = min(want.get(key, np.inf), x)
        adj = symmetric_min_adjacency(u, v, w, n)
        got = {
            (i, int(j)): float(x)
            for i in range(n)
            for j, x in zip(
                adj.indices[adj.indptr[i] : adj.indptr[i + 1]],
                adj.weight_m[adj.indptr[i] : adj.indptr[i + 1]],
            )
        }
        assert got == want
        for i in range(n):  # each row's columns ascending, as CSR consumers expect
            row = adj.indices[adj.indptr[i] : adj.indptr[i + 1]]
            assert (np.diff(row) > 0).all()


def test_the_edge_samples_go_once_measured_and_come_back_the_same(sample_cache):
    """A finished run holds no KD-tree of edge samples (no writer snaps); a later snap (a site,
    a scenario) makes them again, the same, and snaps as the run did. (A run of its own: the
    session's shared results are snapped on by other tests.)"""
    import walkcover as wc
    from walkcover.engine import coverage as cov

    a = wc.assess(
        "helsinki-sample", district="sample-sw", standard="toilet", cache_dir=sample_cache
    ).assessment
    net = a.network
    assert "edge_samples" not in net.__dict__
    xy = shapely.get_coordinates(a.demand.geometry.representative_point().to_numpy())
    snaps = cov.snap_xy(net, xy, max_snap_m=a.city.config.network.max_snap_m)
    again = net.edge_samples
    assert again is net.edge_samples  # made once, then kept until let go again
    assert len(snaps.item) > 0.9 * len(xy)
    first = again.tree.data.copy()
    from walkcover.engine.network import let_samples_go

    let_samples_go(net)
    assert "edge_samples" not in net.__dict__
    np.testing.assert_array_equal(net.edge_samples.tree.data, first)


def test_the_safe_route_network_goes_with_the_last_standard_that_walks_it():
    """Two safe-route standards: the network stays while one is left to measure, and goes as
    soon as the last is measured (the other standards may still be running)."""
    import threading
    from types import SimpleNamespace

    from walkcover.assessment.run import _safe_route_measured

    study = SimpleNamespace(lock=threading.Lock(), safe=object(), safe_left=2)
    _safe_route_measured(study)
    assert study.safe is not None and study.safe_left == 1
    _safe_route_measured(study)
    assert study.safe is None


def test_the_safe_route_network_is_built_first_and_let_go_after_its_last_standard(
    measuring_cache, monkeypatch
):
    """A run builds the safe-route network at the start of the first pass that walks it, before
    that pass snaps anything (its building came on top of a pass's snaps and distances and of the
    other thread's: the run's peak on L), then measures the standards that walk it on the same
    thread (one that took them while it was built sat idle), and nothing keeps it past the last
    of them: not the task that built it."""
    import walkcover as wc
    from walkcover.assessment import run as run_mod
    from walkcover.assessment.safe_route import SafeRoute
    from walkcover.engine import coverage

    built: list[weakref.ref] = []
    events: list[tuple[str, bool]] = []
    real_build, real_measure = SafeRoute.build.__func__, run_mod._measure_one
    real_snap = coverage.snap

    def build(cls, *args, **kwargs):
        events.append(("build", True))
        out = real_build(cls, *args, **kwargs)
        built.append(weakref.ref(out))
        return out

    def measure(study, std, *args):
        gc.collect()
        events.append((std.id, bool(built) and built[0]() is not None))
        return real_measure(study, std, *args)

    def snap(*args, **kwargs):
        if events and events[-1][0] != "snap":
            events.append(("snap", True))
        return real_snap(*args, **kwargs)

    monkeypatch.setattr(SafeRoute, "build", classmethod(build))
    monkeypatch.setattr(run_mod, "_measure_one", measure)
    monkeypatch.setattr(coverage, "snap", snap)
    monkeypatch.setattr(run_mod, "measure_threads", lambda _network: 1)  # one order to check
    standards = "toilet,primary_school,kindergarten,clinic"
    res = wc.assess("helsinki-sample", standard=standards, cache_dir=measuring_cache)
    passes = [e[0] for e in events if e[0] != "snap"]
    assert passes == ["primary_school", "build", "toilet", "kindergarten", "clinic"]
    # built at the start of its pass: before that pass's first snap
    assert [e[0] for e in events[:3]] == ["primary_school", "build", "snap"]
    alive = dict(e for e in events if e[0] != "snap")
    assert not alive["toilet"] and not alive["kindergarten"] and not alive["clinic"]
    gc.collect()
    assert not built[0]()  # the run keeps none of it
    # the results are in the standards' order, whatever the order they were measured in
    assert list(res.assessment.passes) == standards.split(",")
    assert res.assessment.summary["residents_covered_safe_pct"].notna().any()
