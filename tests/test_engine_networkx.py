"""The engine agrees with networkx Dijkstra on the real Helsinki sample network to 1e-6 m."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely

from conftest import split_graph_distances
from walkcover.config.standards import load_standards
from walkcover.engine import coverage as cov
from walkcover.measures.demand import demand_from_buildings, residential_buildings
from walkcover.measures.facilities import select_facilities


@pytest.fixture(scope="module")
def sample(helsinki_layers, helsinki_network):
    city, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    houses = demand_from_buildings(
        residential_buildings(feats, city.config.demand), city.config.demand
    )
    return helsinki_network, feats, houses


def test_node_distances_equal_networkx(sample):
    """The engine's pass from every toilet equals networkx Dijkstra from a super-source whose legs
    are found independently: for each toilet (a point), the nearest snappable edge by shapely's
    distance, and the offset along it by `line_locate_point`; not the engine's own snaps."""
    net, feats, _ = sample
    toilets = select_facilities(feats, load_standards().standards["toilet"])
    toilets = toilets[toilets.geom_type == "Point"]
    assert len(toilets) >= 10  # the extract maps about 18 toilets; a broken selector finds none
    src = cov.snap(net, toilets.geometry, max_snap_m=200, reach_polygon_edges=True)
    ours = cov.node_distances(net, src, limit_m=np.inf)

    g = nx.Graph()
    e = net.edges
    for u, v, w in zip(e["u_idx"], e["v_idx"], e["length_m"]):
        if u != v and (not g.has_edge(u, v) or g[u][v]["w"] > w):
            g.add_edge(int(u), int(v), w=float(w))
    g.add_nodes_from(range(net.n_nodes))
    lines = e.geometry.to_numpy()
    allowed = np.asarray(net.snappable)
    for pt in toilets.geometry.to_numpy():
        d = shapely.distance(lines[allowed], pt)
        if d.min() > 200:
            continue
        for k in allowed[np.flatnonzero(d <= d.min() + 1e-9)]:  # every edge equally near
            along = shapely.line_locate_point(lines[k], pt)
            for node, w in (
                (e["u_idx"].iloc[k], along),
                (e["v_idx"].iloc[k], e["length_m"].iloc[k] - along),
            ):
                w = float(d.min() + w)
                if not g.has_edge("S", int(node)) or g["S"][int(node)]["w"] > w:
                    g.add_edge("S", int(node), w=w)
    ref = nx.single_source_dijkstra_path_length(g, "S", weight="w")
    theirs = np.array([ref.get(i, np.inf) for i in range(net.n_nodes)])
    assert np.isfinite(ours).sum() > 0.9 * net.n_nodes
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
    finite = np.isfinite(ours)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=0, atol=1e-6)


def test_building_distances_equal_split_graph_networkx(sample):
    net, feats, houses = sample
    stds = load_standards().standards
    for sid in ("toilet", "park", "bus_stop"):
        fac = select_facilities(feats, stds[sid])
        src = cov.snap(net, fac.geometry, max_snap_m=200, reach_polygon_edges=True)
        dem = cov.snap(net, houses.geometry, max_snap_m=200)
        ours = cov.demand_distances(net, dem, src, cov.node_distances(net, src, limit_m=np.inf))
        theirs = split_graph_distances(net, dem, src)
        assert len(dem.item) > 300
        np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
        ok = np.isfinite(ours)
        np.testing.assert_allclose(ours[ok], theirs[ok], rtol=0, atol=1e-6, err_msg=sid)
