"""Measure once, render many: the measuring pass takes each home's nearest facility with its
distance, and writing every output (tables, GeoPackages, maps) makes no shortest-path call."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse.csgraph

import walkcover.engine.coverage as cov
import walkcover.measures.gaps as gaps


def test_one_pass_gives_the_distances_and_the_nearest_source(helsinki_network):
    """`node_sources` gives `node_distances`' distances exactly (that pass is checked against
    networkx in test_engine_networkx), and each node's source is one at that distance: its
    distance from that source alone is the same."""
    net = helsinki_network
    pts = net.edges.geometry.iloc[[5, 400, 900, 1500]].interpolate(0.5, normalized=True)
    src = cov.snap(net, pts, max_snap_m=50)
    nodes = cov.node_sources(net, src, limit_m=800)
    np.testing.assert_array_equal(nodes.dist_m, cov.node_distances(net, src, limit_m=800))
    reached = np.isfinite(nodes.dist_m)
    assert reached.any() and (nodes.row[reached] >= 0).all() and (nodes.row[~reached] == -1).all()
    # each reached node's distance from its own source alone equals its distance from all
    e = net.edges
    for r in np.unique(nodes.row[reached]):
        alone = cov.node_distances(net, _row(src, r), limit_m=800)
        mine = nodes.row == r
        np.testing.assert_allclose(alone[mine], nodes.dist_m[mine], atol=1e-6)
    assert len(e)  # the graph is the sample's


def _row(snaps: cov.Snaps, r: int) -> cov.Snaps:
    """The snaps of one source row (`Snaps` keeps one row per attachment)."""
    keep = np.array([r])
    return cov.Snaps(
        item=np.zeros(1, dtype=snaps.item.dtype),
        edge=snaps.edge[keep],
        lo_m=snaps.lo_m[keep],
        hi_m=snaps.hi_m[keep],
        leg_m=snaps.leg_m[keep],
        n_items=1,
        unsnapped=np.zeros(1, dtype=bool),
    )


def test_the_measuring_pass_keeps_each_homes_nearest_facility(sample_results):
    """`StandardPass.nearest` equals an independent nearest-source pass, and the facility it names
    is found exactly where the home has a distance."""
    a = sample_results.assessment
    for sid, p in a.passes.items():
        assert len(p.nearest) == len(a.demand)
        if not len(p.snaps.item):
            assert (p.nearest == -1).all()
            continue
        rows = cov.nearest_sources(a.network, a.demand_snaps, p.snaps, limit_m=p.limit_m)
        want = np.where(rows >= 0, p.access.index.to_numpy()[p.snaps.item[np.maximum(rows, 0)]], -1)
        np.testing.assert_array_equal(p.nearest, want, err_msg=sid)
        dist = a.demand[f"{sid}_dist_m"].to_numpy()
        assert ((p.nearest >= 0) == np.isfinite(dist)).all(), sid


def test_writing_makes_no_shortest_path_call(sample_results, tmp_path):
    """With the shortest-path routine patched to raise, every output of a measured run is written:
    presentation computes no distance."""

    def refuse(*_a, **_k):
        raise AssertionError("a shortest path was computed while writing")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scipy.sparse.csgraph, "dijkstra", refuse)
        mp.setattr(cov, "node_sources", refuse)
        mp.setattr(cov, "node_distances", refuse)
        mp.setattr(cov, "nearest_sources", refuse)
        # nor a snap, a gather of distances, a gap or a service area: those are measured with
        # the run, before anything is written
        mp.setattr(cov, "snap", refuse)
        mp.setattr(cov, "snap_xy", refuse)
        mp.setattr(cov, "demand_distances", refuse)
        mp.setattr(cov, "measure", refuse)
        mp.setattr(gaps, "standard_layers", refuse)
        mp.setattr(gaps, "_gap_polygons", refuse)
        mp.setattr(gaps.Lattice, "within_reach", refuse)
        # nor a hexagon's coverage: the city map draws the run's (`Assessment.hexagons`)
        import h3

        mp.setattr(h3, "latlng_to_cell", refuse)
        files = sample_results.save(tmp_path / "out", maps=True)
    names = {p.name for p in files.written}
    assert {"coverage.gpkg", "map.html", "summary.csv"} <= names


def _refusing_engine(mp: pytest.MonkeyPatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("something was measured while writing")

    mp.setattr(scipy.sparse.csgraph, "dijkstra", refuse)
    for name in ("node_sources", "node_distances", "nearest_sources", "snap", "snap_xy"):
        mp.setattr(cov, name, refuse)
    for name in ("demand_distances", "measure"):
        mp.setattr(cov, name, refuse)
    mp.setattr(gaps, "standard_layers", refuse)
    mp.setattr(gaps.Lattice, "within_reach", refuse)


def test_proposed_sites_are_measured_before_writing(sample_results, tmp_path):
    """A run into a folder where `site` proposed sites keeps them: the homes' walks after them
    are measured by `walkcover.siting.proposal` (in the API), and writing them, maps included,
    measures nothing; the layer holds exactly those walks."""
    import geopandas as gpd

    from walkcover.api import earlier_proposals
    from walkcover.presentation.outputs import write_run

    r, out = sample_results, tmp_path / "out"
    r.save(out, maps=False)
    r.save_sites(r.site("toilet", k=2), out)
    proposals = earlier_proposals(r.assessment, out, overwrite=True)
    assert proposals and all(set(p.after) == {"toilet"} for p in proposals.values())
    with pytest.MonkeyPatch.context() as mp:
        _refusing_engine(mp)
        write_run(r.assessment, out, overwrite=True, maps=True, proposals=proposals)
    for did, p in proposals.items():
        slug = r.assessment.districts.set_index("district_id").loc[did, "slug"]
        gpkg = out / r.assessment.city.id / slug / "coverage.gpkg"
        demand = gpd.read_file(gpkg, layer="demand")
        np.testing.assert_array_equal(
            demand["toilet_after_dist_m"].to_numpy(), p.after["toilet"]["dist_m"].to_numpy()
        )
        assert len(gpd.read_file(gpkg, layer="proposed_sites")) == len(p.sites)


def test_the_results_hold_every_districts_gaps_and_service_areas(sample_results):
    """The run's model holds each district's gaps and service areas, equal to measuring them
    afresh; the model keeps no lazily filled cache, and what a reader changes stays its own."""
    a = sample_results.assessment
    assert not hasattr(a, "derived")
    assert set(a.district_layers) == set(a.districts["district_id"])
    for did in a.districts["district_id"]:
        fresh_gaps = gaps.district_gaps(a, did)
        assert len(fresh_gaps) > 0
        pd.testing.assert_frame_equal(
            pd.DataFrame(a.gaps(did).drop(columns="geometry")),
            pd.DataFrame(fresh_gaps.drop(columns="geometry")),
        )
        assert a.gaps(did).geometry.geom_equals_exact(fresh_gaps.geometry, 1e-9).all()
        fresh_areas = gaps.district_service_areas(a, did)
        assert (a.service_areas(did)["area_m2"].to_numpy() == fresh_areas["area_m2"]).all()
        toilet = a.gaps(did, "toilet")
        assert len(toilet) and (toilet["standard"] == "toilet").all()
        mine = a.gaps(did)
        mine["rank"] = -1  # a reader's copy
        assert (a.gaps(did)["rank"] > 0).all()
    with pytest.raises(KeyError, match="not measured in this run"):
        a.gaps("no-such-district")


def test_the_hexagons_hold_every_resident_and_their_coverage(sample_results):
    """`Assessment.hexagons` holds each home's residents once (per cell and district), and each
    piece's share covered is its homes' covered residents over its residents."""
    import h3

    from walkcover.config.crs import to_lonlat

    a = sample_results.assessment
    hx = a.hexagons
    assert hx is not None and 5 <= hx.resolution <= 10
    cells = hx.cells
    assert cells.groupby(["cell", "district_id"]).size().max() == 1
    assert cells["residents"].sum() == pytest.approx(a.demand["residents"].sum(), rel=1e-12)
    pts = to_lonlat(a.demand.geometry.representative_point().to_numpy(), a.demand.crs)
    home_cell = [h3.latlng_to_cell(p.y, p.x, hx.resolution) for p in pts]
    d = a.demand.assign(cell=home_cell, district_id=a.demand["district_id"].astype(str))
    one = cells.iloc[int(np.argmax(cells["residents"].to_numpy()))]
    mine = d[(d["cell"] == one["cell"]) & (d["district_id"] == one["district_id"])]
    want = 100 * mine.loc[mine["toilet_covered"], "residents"].sum() / mine["residents"].sum()
    assert one["toilet_covered_pct"] == pytest.approx(want, rel=1e-12)
