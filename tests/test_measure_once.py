"""Measure once, render many: the measuring pass takes each home's nearest facility with its
distance, and writing every output (tables, GeoPackages, maps) makes no shortest-path call."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.csgraph

import walkcover.engine.coverage as cov


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
        files = sample_results.save(tmp_path / "out", maps=True)
    names = {p.name for p in files.written}
    assert {"coverage.gpkg", "map.html", "summary.csv"} <= names
