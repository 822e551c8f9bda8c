"""The primary-school safe-route rule: no crossing of a primary road except at a mapped crossing."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box

from conftest import CRS_M, shift, streets
from walkcover.engine import coverage as cov
from walkcover.engine.barriers import remap_snaps, safe_network
from walkcover.engine.network import build_network

# A residential street 1 (0,0) — 5 (200,0) — 2 (400,0) crosses a primary road 3 (200,-300) — 5 — 4 (200,300)
# at node 5. A footbridge 6 (100,200) — 7 (300,200) spans the primary road without touching it,
# reached by footways 1–6 and 7–2.
SEGMENTS = [
    (1, 5, [(0, 0), (200, 0)]),
    (5, 2, [(200, 0), (400, 0)]),
    (3, 5, [(200, -300), (200, 0)]),
    (5, 4, [(200, 0), (200, 300)]),
]
EXTENT = shift(box(-50, -300, 450, 300))


def build(crossing: bool, bridge: bool = False):
    segs = list(SEGMENTS)
    highway = ["residential", "residential", "primary", "primary"]
    bridges = [None, None, None, None]
    if bridge:
        segs += [
            (1, 6, [(0, 0), (100, 200)]),
            (6, 7, [(100, 200), (300, 200)]),
            (7, 2, [(300, 200), (400, 0)]),
        ]
        highway += ["footway", "footway", "footway"]
        bridges += [None, "yes", None]
    s = streets(segs, highway=highway, bridge=bridges)
    net = build_network(s)
    tags = pd.DataFrame(
        {
            "highway": net.edges["highway"],
            "bridge": net.edges["bridge"],
            "tunnel": None,
            "footway": None,
            "is_barrier": net.edges["highway"].eq("primary"),
        }
    )
    barriers = s.geometry.to_numpy()[np.asarray(highway) == "primary"]
    safe, cells = safe_network(
        net, tags, barriers, np.array([5] if crossing else [], dtype=np.int64), extent=EXTENT
    )
    return net, safe, cells


def distances(crossing: bool, bridge: bool = False):
    net, safe, cells = build(crossing, bridge)
    school = gpd.GeoSeries([shift(Point(50, 5))], crs=CRS_M)
    houses = gpd.GeoSeries(
        [shift(Point(x, y)) for x, y in [(350, 5), (195, 100), (205, 100)]], crs=CRS_M
    )
    d = cov.snap(net, houses, max_snap_m=20)
    f = cov.snap(net, school, max_snap_m=20, reach_polygon_edges=True)
    plain = cov.measure(net, d, f, threshold_m=500, limit_m=1000)
    sd = remap_snaps(d, safe, cells, houses.to_numpy())
    sf = remap_snaps(f, safe, cells, school.to_numpy())
    return plain, cov.measure(safe, sd, sf, threshold_m=500, limit_m=1000)


def test_without_a_mapped_crossing_the_far_side_is_not_safe():
    plain, safe = distances(crossing=False)
    # school (50,5): offset 50, leg 5. East house (350,5): 5 + 150 + 150 + 5 = 310.
    # West house (195,100) beside the primary road: 5 + 150 + 100 + 5 = 260, along its west pavement.
    # East house (205,100): the same 260 m, but only by crossing the primary road at node 5.
    np.testing.assert_allclose(plain["dist_m"], [310, 260, 260], atol=1e-9)
    assert safe["dist_m"].iloc[1] == pytest.approx(260.0)
    assert np.isnan(safe["dist_m"].iloc[0]) and np.isnan(safe["dist_m"].iloc[2])
    assert list(safe["status"]) == [
        cov.STATUS_UNREACHABLE,
        cov.STATUS_COVERED,
        cov.STATUS_UNREACHABLE,
    ]


def test_a_mapped_crossing_makes_the_walk_safe():
    plain, safe = distances(crossing=True)
    np.testing.assert_allclose(safe["dist_m"], plain["dist_m"], atol=1e-9)
    assert safe["covered"].all()


def test_a_footbridge_is_a_safe_crossing():
    plain, safe = distances(crossing=False, bridge=True)
    # Over the bridge: 5 + 50 (back to node 1) + √(100²+200²) + 200 + √(100²+200²) + 50 + 5 to the east house.
    via_bridge = 5 + 50 + 2 * np.hypot(100, 200) + 200 + 50 + 5
    assert safe["dist_m"].iloc[0] == pytest.approx(via_bridge)
    assert plain["dist_m"].iloc[0] == pytest.approx(310.0)


def test_edge_ends_placed_by_their_nodes_equal_probing_every_edge(
    helsinki_network, helsinki_layers
):
    """On the sample's real barriers (its primary roads and railways), the cells found for each
    edge's ends through their nodes (probing only edges at nodes near a barrier) are exactly those
    of a probe on every edge."""
    from walkcover.config.standards import load_standards
    from walkcover.engine import barriers as bar

    _, crs, layers = helsinki_layers
    net = helsinki_network
    lines = bar.barrier_lines(
        layers.streets.to_crs(crs), layers.features.to_crs(crs), load_standards().safe_route
    )
    geoms = net.edges.geometry.to_numpy()
    polys = bar.cells(lines, shapely.box(*shapely.total_bounds(geoms)))
    assert len(lines) > 50 and len(polys) > 10
    tree = shapely.STRtree(polys)
    length = net.edges["length_m"].to_numpy()
    probe = np.minimum(bar._PROBE_M, length / 2)
    want_u = bar._cell_of(tree, shapely.line_interpolate_point(geoms, probe))
    want_v = bar._cell_of(tree, shapely.line_interpolate_point(geoms, length - probe))
    got_u, got_v = bar._end_cells(net, tree, length)
    np.testing.assert_array_equal(got_u, want_u)
    np.testing.assert_array_equal(got_v, want_v)
    assert (want_u != want_v).sum() > 20  # edges that cross a barrier: ends in different cells
