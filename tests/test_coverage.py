"""The engine on hand-made networks whose distances were computed by hand (in the comments)."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from conftest import CRS_M, shift, split_graph_distances, streets
from walkcover.config.tags import tag_values
from walkcover.engine import coverage as cov
from walkcover.engine.network import build_network


def gs(*geoms) -> gpd.GeoSeries:
    return gpd.GeoSeries([shift(g) for g in geoms], crs=CRS_M)


def diamond(cx: float, cy: float, r: float) -> Polygon:
    return Polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)])


def run(net, demand, facilities, *, threshold_m=1000.0, limit_m=2000.0, max_snap_m=100.0):
    d = cov.snap(net, demand, max_snap_m=max_snap_m)
    f = cov.snap(net, facilities, max_snap_m=max_snap_m, reach_polygon_edges=True)
    res = cov.measure(net, d, f, threshold_m=threshold_m, limit_m=limit_m)
    return res, d, f


@pytest.fixture
def line_net():
    # 1 (0,0) —100 m— 2 (100,0) —200 m— 3 (300,0); an island 10 (0,500) — 11 (100,500)
    return build_network(
        streets(
            [
                (1, 2, [(0, 0), (100, 0)]),
                (2, 3, [(100, 0), (300, 0)]),
                (10, 11, [(0, 500), (100, 500)]),
            ]
        )
    )


def test_mid_edge_facility_and_building(line_net):
    # toilet at (50,10): edge 1-2, offset 50, leg 10. House: diamond whose lowest corner is (250,15):
    # edge 2-3, offset 150, leg 15. Walk: 10 + (100-50) + 150 + 15 = 225 m.
    res, d, f = run(line_net, gs(diamond(250, 20, 5)), gs(Point(50, 10)))
    assert res["dist_m"].iloc[0] == pytest.approx(225.0, abs=1e-9)
    assert res["status"].iloc[0] == cov.STATUS_COVERED
    assert split_graph_distances(line_net, d, f)[0] == pytest.approx(225.0, abs=1e-9)


def test_same_edge_uses_the_offset_difference(line_net):
    # toilet (120,-5): edge 2-3 offset 20, leg 5. House corner (280,5): offset 180, leg 5.
    # Along the edge: 5 + 160 + 5 = 170; via node 2 or 3 it would be 205.
    res, d, f = run(line_net, gs(diamond(280, 10, 5)), gs(Point(120, -5)))
    assert res["dist_m"].iloc[0] == pytest.approx(170.0, abs=1e-9)
    assert split_graph_distances(line_net, d, f)[0] == pytest.approx(170.0, abs=1e-9)


def test_island_unsnapped_threshold_and_limit(line_net):
    houses = gs(
        Point(50, 520),  # 20 m from the island's street: reached by nobody
        Point(150, 250),  # 250 m from any street: beyond the 100 m snap distance
        diamond(250, 20, 5),  # 225 m away (first test)
    )
    res, _, _ = run(line_net, houses, gs(Point(50, 10)), threshold_m=200.0, limit_m=400.0)
    assert list(res["status"]) == [cov.STATUS_UNREACHABLE, cov.STATUS_UNSNAPPED, cov.STATUS_BEYOND]
    assert math.isnan(res["dist_m"].iloc[0]) and math.isnan(res["dist_m"].iloc[1])
    assert res["dist_m"].iloc[2] == pytest.approx(225.0)
    assert not res["covered"].any()
    # With the search cut off at 220 m the 225 m house is not measured: NaN and flagged.
    res, _, _ = run(line_net, houses, gs(Point(50, 10)), threshold_m=200.0, limit_m=220.0)
    assert res["status"].iloc[2] == cov.STATUS_BEYOND_LIMIT and math.isnan(res["dist_m"].iloc[2])


def test_no_facilities_flags_every_unit(line_net):
    res, _, _ = run(line_net, gs(Point(50, 10)), gpd.GeoSeries([], crs=CRS_M))
    assert res["status"].iloc[0] == cov.STATUS_NO_FACILITIES
    assert math.isnan(res["dist_m"].iloc[0]) and not res["covered"].iloc[0]


def test_polygon_facility_reached_at_its_edge_not_centroid():
    net = build_network(streets([(1, 2, [(0, 0), (600, 0)])]))
    park = Polygon(
        [(450, 10), (550, 110), (450, 210), (350, 110)]
    )  # lowest corner 10 m from street
    # House (350,-10): offset 350, leg 10. Park corner: offset 450, leg 10 → 10 + 100 + 10 = 120.
    # (From the centroid (450,110) it would be 10 + 100 + 110 = 220.)
    res, d, f = run(net, gs(Point(350, -10)), gs(park))
    # The corner is the only point at the park's nearest distance: no stretch around it.
    assert res["dist_m"].iloc[0] == pytest.approx(120.0, abs=1e-9)
    assert f.lo_m[0] == f.hi_m[0] == pytest.approx(450.0, abs=1e-9)
    assert split_graph_distances(net, d, f)[0] == pytest.approx(res["dist_m"].iloc[0], abs=1e-9)


def test_polygon_facility_lining_a_street_is_reached_along_its_whole_side():
    net = build_network(streets([(1, 2, [(-100, 0), (600, 0)])]))
    park = box(0, 10, 200, 110)  # its south side runs 10 m from the street for 200 m
    # Houses opposite both ends of that side: each 5 + 10 = 15 m, not 15 + 200 for one of them.
    res, d, f = run(net, gs(Point(0, -5), Point(200, -5), Point(300, -5)), gs(park))
    np.testing.assert_allclose(res["dist_m"], [15.0, 15.0, 115.0], atol=1e-9)
    np.testing.assert_allclose(split_graph_distances(net, d, f), res["dist_m"], atol=1e-9)
    np.testing.assert_allclose([f.lo_m[0], f.hi_m[0]], [100.0, 300.0], atol=1e-9)


def test_a_side_lining_two_street_segments_is_reached_along_each():
    # The street is cut at (100,0) under the park's south side (0..200, 10 m off): the first
    # segment runs along it from its offset 100 to its end (offset 200), the second from its start
    # to offset 100. Houses under x = 0, 100 and 200: 5 + 10 = 15 m each; (300,-5): 5 + 100 + 10.
    net = build_network(streets([(1, 2, [(-100, 0), (100, 0)]), (2, 3, [(100, 0), (600, 0)])]))
    houses = gs(Point(0, -5), Point(100, -5), Point(200, -5), Point(300, -5))
    res, d, f = run(net, houses, gs(box(0, 10, 200, 110)))
    np.testing.assert_allclose(res["dist_m"], [15.0, 15.0, 15.0, 115.0], atol=1e-9)
    np.testing.assert_allclose(split_graph_distances(net, d, f), res["dist_m"], atol=1e-9)
    spans = sorted(zip(f.edge.tolist(), f.lo_m.tolist(), f.hi_m.tolist()))
    np.testing.assert_allclose([s[1:] for s in spans], [[100.0, 200.0], [0.0, 100.0]], atol=1e-9)


def test_a_street_ending_beside_a_park_reaches_it_up_to_its_end():
    # A dead end (0,0)-(50,0) under the park's side (0..200, 10 m off) and a street the other way:
    # the dead end's whole length lines the park; nothing else is within 25 m.
    net = build_network(streets([(1, 2, [(0, 0), (50, 0)]), (2, 3, [(50, 0), (50, -300)])]))
    res, d, f = run(net, gs(Point(60, -200)), gs(box(0, 10, 200, 110)))
    assert (f.lo_m[0], f.hi_m[0]) == pytest.approx((0.0, 50.0), abs=1e-9)
    # (60,-200): 10 to the street at offset 200 of 2-3, 200 up to node 2, then the leg of 10 m.
    assert res["dist_m"].iloc[0] == pytest.approx(220.0, abs=1e-9)
    assert split_graph_distances(net, d, f)[0] == pytest.approx(220.0, abs=1e-9)


def test_street_crossing_a_park_is_inside_it_over_the_crossing():
    net = build_network(streets([(1, 2, [(0, 0), (300, 0)])]))
    park = box(100, -50, 200, 50)  # the street runs through it from x=100 to x=200
    houses = gs(Point(150, 60), Point(250, 5), Point(20, -3))
    # (150,60): its street point is inside the park → only its 60 m leg.
    # (250,5): 5 + (250-200) = 55.  (20,-3): 3 + (100-20) = 83.
    res, d, f = run(net, houses, gs(park))
    np.testing.assert_allclose(res["dist_m"], [60.0, 55.0, 83.0], atol=1e-9)
    np.testing.assert_allclose(split_graph_distances(net, d, f), [60.0, 55.0, 83.0], atol=1e-9)


def test_parallel_edges_keep_the_shortest_and_zero_length_edges_connect():
    detour = [(0, 0), (50, 80), (100, 0)]  # 2 × √(50² + 80²) ≈ 188.68 m
    net = build_network(
        streets(
            [
                (0, 1, [(-100, 0), (0, 0)]),
                (1, 2, [(0, 0), (100, 0)]),
                (1, 2, detour),
                (2, 5, [(100, 0), (100, 0)]),  # zero length: two OSM nodes at one spot
                (5, 4, [(100, 0), (200, 0)]),
            ]
        )
    )
    # toilet (-50,5): offset 50 on 0-1, leg 5; house (150,-4): offset 50 on 5-4, leg 4.
    # 5 + 50 + 100 (the straight edge, not 100 + 188.68) + 0 + 50 + 4 = 209.
    res, d, f = run(net, gs(Point(150, -4)), gs(Point(-50, 5)))
    assert res["dist_m"].iloc[0] == pytest.approx(209.0, abs=1e-9)
    assert split_graph_distances(net, d, f)[0] == pytest.approx(209.0, abs=1e-9)
    i, j = np.searchsorted(net.node_osm_ids, [1, 2])
    assert net.csr[i, j] == pytest.approx(100.0)


def test_tunnels_carry_walkers_but_nobody_snaps_to_them():
    net = build_network(
        streets(
            [(1, 2, [(0, 0), (100, 0)]), (2, 3, [(100, 0), (100, 300)])],
            tunnel=["yes", None],
        )
    )
    # The house sits 5 m above the tunnel; it must attach to the street 2-3 (30 m away) instead.
    d = cov.snap(net, gs(Point(70, 5)), max_snap_m=100)
    assert list(d.edge) == [1]
    assert d.leg_m[0] == pytest.approx(30.0)


def test_many_facilities_on_one_edge_equal_networkx(line_net):
    """Several facilities (and parks spanning stretches) on the same edges as many homes: each
    home's best along its own edge, or through either end, is networkx's on the split graph."""
    rng = np.random.default_rng(11)
    xs = rng.uniform(-50, 350, 60)
    homes = gs(*[Point(x, y) for x, y in zip(xs, rng.choice([-8.0, 6.0], 60))])
    shops = [Point(x, y) for x, y in zip(rng.uniform(0, 300, 12), rng.uniform(-12, 12, 12))]
    parks = [box(40, 5, 70, 20), box(150, -30, 160, 30)]  # beside one edge, across the other
    d = cov.snap(line_net, homes, max_snap_m=100)
    f = cov.snap(line_net, gs(*shops, *parks), max_snap_m=100, reach_polygon_edges=True)
    assert np.bincount(f.edge).max() >= 5  # many sources share an edge
    nd = cov.node_distances(line_net, f, limit_m=5000)
    got = cov.demand_distances(line_net, d, f, nd)
    np.testing.assert_allclose(got, split_graph_distances(line_net, d, f), atol=1e-9)


def test_threshold_per_unit_and_limit_checked(line_net):
    d = cov.snap(line_net, gs(diamond(250, 20, 5), diamond(280, 10, 5)), max_snap_m=100)
    f = cov.snap(line_net, gs(Point(50, 10)), max_snap_m=100)
    res = cov.measure(line_net, d, f, threshold_m=np.array([300.0, 100.0]), limit_m=600)
    assert list(res["covered"]) == [True, False]
    with pytest.raises(ValueError, match="limit_m"):
        cov.measure(line_net, d, f, threshold_m=700.0, limit_m=600)


def test_nearest_facility_is_the_one_giving_the_distance(line_net):
    # Toilets at (50,10) [edge 1-2] and (290,-5) [edge 2-3]; houses at (20,3) and (250,15).
    toilets = gs(Point(50, 10), Point(290, -5))
    houses = gs(Point(20, 3), Point(250, 15), Point(50, 520))
    d = cov.snap(line_net, houses, max_snap_m=100)
    f = cov.snap(line_net, toilets, max_snap_m=100)
    rows = cov.nearest_sources(line_net, d, f, limit_m=1000)
    assert list(f.item[rows[:2]]) == [0, 1]
    assert rows[2] == -1  # the island house: no facility reachable


def test_taking_snaps_equals_snapping_the_subset(helsinki_network, helsinki_layers):
    """A district's homes taken from the run's snaps are exactly what snapping them alone gives."""
    from walkcover.measures.demand import demand_from_buildings, residential_buildings

    city, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    homes = demand_from_buildings(
        residential_buildings(feats, city.config.demand), city.config.demand
    )
    homes = homes.reset_index(drop=True)
    every = cov.snap(helsinki_network, homes.geometry, max_snap_m=200)
    rng = np.random.default_rng(3)
    pick = np.sort(rng.choice(len(homes), size=len(homes) // 3, replace=False))
    alone = cov.snap(
        helsinki_network, homes.geometry.iloc[pick].reset_index(drop=True), max_snap_m=200
    )
    taken = every.take(pick)
    assert taken.n_items == alone.n_items == len(pick)
    for field in ("item", "edge", "lo_m", "hi_m", "leg_m", "unsnapped"):
        np.testing.assert_array_equal(getattr(taken, field), getattr(alone, field), err_msg=field)


def test_snapping_in_runs_on_threads_equals_snapping_at_once(
    helsinki_network, helsinki_layers, monkeypatch
):
    """Many homes (and areas reached along their sides) are snapped in halves on two threads:
    the same rows, in the same order, as one run on one thread."""
    from walkcover.measures.demand import demand_from_buildings, residential_buildings

    city, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    homes = demand_from_buildings(
        residential_buildings(feats, city.config.demand), city.config.demand
    ).geometry.to_numpy()
    assert len(homes) > 300
    monkeypatch.setattr(cov, "SNAP_CHUNK_MIN", 100)
    for options in ({"tie_m": 1.0}, {"reach_polygon_edges": True}):
        runs = []
        for threads in (1, 2):
            monkeypatch.setattr(cov, "SNAP_THREADS", threads)
            runs.append(cov.snap(helsinki_network, homes, max_snap_m=15, **options))
        one, two = runs
        assert one.n_items == two.n_items == len(homes) and len(one.unsnapped) > 0
        for field in ("item", "edge", "lo_m", "hi_m", "leg_m", "unsnapped"):
            np.testing.assert_array_equal(getattr(one, field), getattr(two, field), err_msg=field)


def test_a_park_s_stretch_holds_its_nearest_point_and_points_sit_at_their_projection(
    helsinki_network, helsinki_layers, monkeypatch
):
    """Areas reached along their sides are never located by a shortest line: their stretch of
    street (from the span points) holds the street's nearest point to them, on the real sample's
    parks; a point facility sits where it projects onto its street; and should the span find
    nothing, the nearest point is taken."""
    from walkcover.config.standards import features_matching, load_standards

    _, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    parks = features_matching(feats, load_standards().land.green).geometry.to_numpy()
    parks = parks[shapely.get_type_id(parks) >= 3]
    stops = feats[(tag_values(feats["tags"], "highway") == "bus_stop").to_numpy()]
    stops = stops.geometry.to_numpy()
    assert len(parks) > 20 and len(stops) > 20
    items = np.concatenate([parks, stops])
    net = helsinki_network
    lines = net.edges.geometry.to_numpy()
    snaps = cov.snap(net, items, max_snap_m=200, reach_polygon_edges=True)
    g, e = items[snaps.item], lines[snaps.edge]
    nearest = shapely.line_locate_point(e, shapely.get_point(shapely.shortest_line(g, e), 1))
    is_park = snaps.item < len(parks)
    assert is_park.sum() > 100 and (snaps.hi_m[is_park] - snaps.lo_m[is_park] > 1).sum() > 20
    assert (snaps.lo_m <= nearest + 1e-9).all() and (nearest <= snaps.hi_m + 1e-9).all()
    np.testing.assert_allclose(snaps.lo_m[~is_park], nearest[~is_park], rtol=0, atol=1e-9)
    monkeypatch.setattr(
        cov, "_span_points", lambda *a: (np.array([], dtype=np.int64), np.array([]))
    )
    bare = cov.snap(net, items, max_snap_m=200, reach_polygon_edges=True)
    np.testing.assert_array_equal(bare.edge, snaps.edge)
    np.testing.assert_allclose(bare.lo_m, nearest, rtol=0, atol=1e-9)
    np.testing.assert_allclose(bare.hi_m, nearest, rtol=0, atol=1e-9)


def test_bounded_nearest_streets_equal_the_rtree_nearest_search(helsinki_network, helsinki_layers):
    """Homes' nearest streets (and those within the tie) found from the bound of a point inside
    each home are exactly those of the R-tree's nearest search, including homes beyond the snap
    distance (none) and homes that streets cross (distance 0)."""
    from walkcover.measures.demand import demand_from_buildings, residential_buildings

    city, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    homes = demand_from_buildings(
        residential_buildings(feats, city.config.demand), city.config.demand
    ).geometry.to_numpy()
    net = helsinki_network
    for max_snap_m, tie_m in ((200.0, 1.0), (12.0, 3.0)):
        got = cov._nearest_with_ties(net, homes, max_snap_m=max_snap_m, tie_m=tie_m, bounded=True)
        want = cov._nearest_with_ties(net, homes, max_snap_m=max_snap_m, tie_m=tie_m)
        g, w = np.lexsort((got[1], got[0])), np.lexsort((want[1], want[0]))
        np.testing.assert_array_equal(got[0][g], want[0][w])
        np.testing.assert_array_equal(got[1][g], want[1][w])
        assert len(np.unique(want[0])) > 300
        assert len(want[0]) > len(np.unique(want[0]))  # some homes have several streets in reach
    assert len(np.unique(want[0])) < len(homes)  # at 12 m, some homes reach no street


def test_kdtree_nearest_edges_equal_the_rtree(helsinki_network):
    """For many points (a 10 m lattice and random points over the sample), the KD-tree search
    gives the R-tree's answer: the same points snapped, the same distance to the chosen edge, and
    the same edge wherever the two nearest edges are not equally near."""
    import shapely

    net = helsinki_network
    x0, y0, x1, y1 = net.edges.total_bounds
    gx, gy = np.meshgrid(np.arange(x0 - 300, x1 + 300, 10.0), np.arange(y0 - 300, y1 + 300, 10.0))
    rng = np.random.default_rng(5)
    xy = np.vstack(
        [np.column_stack([gx.ravel(), gy.ravel()]),
         rng.uniform([x0, y0], [x1, y1], size=(20_000, 2))]
    )  # fmt: skip
    found, edge = cov.nearest_edges(net, xy, max_snap_m=200)
    pts = shapely.points(xy)
    ref = net.tree.query_nearest(pts, max_distance=200, all_matches=False)
    np.testing.assert_array_equal(found, ref[0])
    lines = net.edges.geometry.to_numpy()[net.snappable]
    d_ours = shapely.distance(pts[found], lines[edge])
    d_ref = shapely.distance(pts[ref[0]], lines[ref[1]])
    np.testing.assert_allclose(d_ours, d_ref, rtol=0, atol=1e-9)
    # where another edge is chosen, it is an exact tie that reaches the street at the same place
    # (a junction both edges end at), so every distance measured from the point is the same
    differ = np.flatnonzero(edge != ref[1])
    ours_at = shapely.get_point(shapely.shortest_line(pts[found[differ]], lines[edge[differ]]), 1)
    ref_at = shapely.get_point(shapely.shortest_line(pts[found[differ]], lines[ref[1][differ]]), 1)
    assert (shapely.distance(ours_at, ref_at) < 1e-6).mean() > 0.99
    assert len(found) > 40_000


def test_snapping_coordinates_equals_snapping_points(helsinki_network):
    """snap_xy (coordinates, no geometry per point) gives what snap gives for the same points:
    the same items snapped and unsnapped, the same legs, and where the edge is the same, the same
    offset along it."""
    import shapely

    net = helsinki_network
    x0, y0, x1, y1 = net.edges.total_bounds
    gx, gy = np.meshgrid(np.arange(x0 - 250, x1 + 250, 10.0), np.arange(y0 - 250, y1 + 250, 10.0))
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    ours = cov.snap_xy(net, xy, max_snap_m=200)
    ref = cov.snap(net, shapely.points(xy[:19_999]), max_snap_m=200)  # below the KD-tree size
    ref2 = cov.snap(net, shapely.points(xy[19_999:]), max_snap_m=200)
    item = np.concatenate([ref.item, ref2.item + 19_999])
    edge = np.concatenate([ref.edge, ref2.edge])
    leg = np.concatenate([ref.leg_m, ref2.leg_m])
    lo = np.concatenate([ref.lo_m, ref2.lo_m])
    unsnapped = np.concatenate([ref.unsnapped, ref2.unsnapped + 19_999])
    np.testing.assert_array_equal(ours.item, item)
    np.testing.assert_array_equal(ours.unsnapped, unsnapped)
    np.testing.assert_allclose(ours.leg_m, leg, rtol=0, atol=1e-9)
    same = ours.edge == edge
    assert same.mean() > 0.9
    np.testing.assert_allclose(ours.lo_m[same], lo[same], rtol=0, atol=1e-6)
    # where another edge is chosen it is an exact tie reaching the street at the same place (a
    # junction both edges end at): the lowest edge here, whichever the R-tree returned first there
    lines = net.edges.geometry.to_numpy()
    differ = np.flatnonzero(~same)
    at_ours = shapely.line_interpolate_point(lines[ours.edge[differ]], ours.lo_m[differ])
    at_ref = shapely.line_interpolate_point(lines[edge[differ]], lo[differ])
    assert (shapely.distance(at_ours, at_ref) < 1e-6).mean() > 0.99
    np.testing.assert_array_equal(ours.hi_m, ours.lo_m)
    assert ours.n_items == len(xy) and len(ours.item) > 20_000


def test_kdtree_asks_for_more_samples_before_the_rtree(helsinki_network, monkeypatch):
    """Points whose 8 nearest samples cannot decide (footway meshes) are decided by 32 or 128
    samples, with the answer the R-tree fallback alone gives."""
    net = helsinki_network
    x0, y0, x1, y1 = net.edges.total_bounds
    gx, gy = np.meshgrid(np.arange(x0, x1, 7.0), np.arange(y0, y1, 7.0))
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    deeper = cov.snap_xy(net, xy, max_snap_m=200)
    monkeypatch.setattr(cov, "KDTREE_MAX_K", 8)  # undecided points straight to the R-tree
    rtree = cov.snap_xy(net, xy, max_snap_m=200)
    np.testing.assert_array_equal(deeper.item, rtree.item)
    np.testing.assert_allclose(deeper.leg_m, rtree.leg_m, rtol=0, atol=1e-9)
    kd = net.edge_samples[0]
    d, _ = kd.query(xy, k=8, distance_upper_bound=210)
    undecided = np.isfinite(d[:, 0]) & (d[:, -1] <= d[:, 0] + cov.SAMPLE_SPACING_M / 2 + 1e-9)
    assert undecided.sum() > 1_000  # the deeper search was exercised
