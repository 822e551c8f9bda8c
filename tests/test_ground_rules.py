"""Rules that decide figures on the ground: locked gates, homes between equally near streets,
features no longer in service. Hand-made OSM fixtures whose distances are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from shapely import affinity
from shapely.geometry import Point, box

from conftest import box_way, shift, streets, write_city
from walkcover.config.tags import tag_texts
from walkcover.engine import coverage as cov
from walkcover.engine.network import build_network, locked_gates

CM = 0.02  # lon/lat in the .osm file are rounded to 7 decimals (≈ 1 cm)


def gated_city(tmp_path, *, gate: dict):
    """A street y=0 from (0,0) to (400,0); a footway north from (400,0) through a gate at
    (400,100) to a toilet at (400,200); a long way back (400,200)→(0,200)→(0,0). One home at
    (290..310, -30..-10). A live bus stop at (0,5) and a disused one at (200,5)."""
    nodes = {
        1: (0, 0),
        2: (400, 0),
        3: (400, 100, gate),
        4: (400, 200, {"amenity": "toilets"}),
        5: (0, 200),
        20: (0, 5, {"highway": "bus_stop", "name": "Live"}),
        21: (200, 5, {"highway": "bus_stop", "disused": "yes", "name": "Closed"}),
    }
    ways = [
        (100, [1, 2], {"highway": "residential"}),
        (101, [2, 3, 4], {"highway": "footway"}),
        (102, [4, 5, 1], {"highway": "footway"}),
        box_way(200, 30, 290, -30, 310, -10, {"building": "house"}, nodes),
    ]
    return write_city(tmp_path, nodes=nodes, ways=ways, district=box(-100, -100, 500, 300))


@pytest.mark.parametrize(
    ("gate", "dist_m"),
    [
        # leg 10, 100 m east, 200 m north through the gate
        ({"barrier": "gate"}, 310.0),
        ({"barrier": "gate", "access": "yes"}, 310.0),
        ({"barrier": "gate", "access": "private", "foot": "yes"}, 310.0),
        # locked: leg 10, 300 m west, 200 m north, 400 m east
        ({"barrier": "gate", "access": "private"}, 910.0),
        ({"barrier": "gate", "access": "no"}, 910.0),
        ({"barrier": "gate", "locked": "yes"}, 910.0),
    ],
)
def test_a_locked_gate_cuts_the_path_through_it(tmp_path, gate, dist_m):
    import walkcover as wc

    cfg, osm = gated_city(tmp_path, gate=gate)
    res = wc.assess(cfg, standard="toilet", source=osm, cache=False)
    assert res.demand["toilet_dist_m"].iloc[0] == pytest.approx(dist_m, abs=CM)
    cut = [n.text for n in res.notes if "locked gate" in n.text]
    assert len(cut) == (dist_m > 900)
    assert res.assessment.locked_gates == ((3,) if cut else ())
    if cut:
        assert "1 locked gate(s)" in cut[0] and "locked_gates in run.json" in cut[0]
    # the footway up to the gate is still walkable on both sides: nothing was dropped
    net = res.assessment.network
    assert net.edges["length_m"].sum() == pytest.approx(400 + 200 + 400 + 200, abs=0.1)


def test_a_disused_bus_stop_serves_no_one_and_is_counted_as_left_out(tmp_path):
    import walkcover as wc

    cfg, osm = gated_city(tmp_path, gate={"barrier": "gate"})
    res = wc.assess(cfg, standard="bus_stop", source=osm, cache=False)
    # the live stop at (0,5): leg 10 + 300 m west + leg 5; the disused one would give 115 m
    assert res.demand["bus_stop_dist_m"].iloc[0] == pytest.approx(315.0, abs=CM)
    fac = res.facilities.set_index("name")
    assert bool(fac.loc["Live", "counts"]) and not bool(fac.loc["Closed", "counts"])
    assert fac.loc["Closed", "reason"] == "out of service (disused=yes)"
    notes = [n.text for n in res.notes if "disused" in n.text]
    assert notes == [
        "bus_stop: 1 feature(s) tagged disused or abandoned left out"
        " (every feature's OSM id: left_out in run.json)"
    ]
    assert res.assessment.left_out == {"bus_stop": ("node/21",)}


@pytest.mark.parametrize(
    ("tags", "retired"),
    [
        ({"highway": "bus_stop", "disused": "yes"}, True),
        ({"highway": "bus_stop", "abandoned": "yes"}, True),
        ({"highway": "bus_stop", "disused:highway": "bus_stop"}, True),
        ({"highway": "bus_stop", "disused": "no"}, False),
        ({"highway": "bus_stop", "disused:shop": "kiosk"}, False),  # the kiosk closed, not the stop
        ({"highway": "bus_stop"}, False),
    ],
)
def test_lifecycle_tags(tags, retired):
    from walkcover.measures.facilities import out_of_service

    assert (out_of_service(tags, ["highway"]) is not None) == retired


def two_footways(mirror: bool):
    """Footway A along y=0 and B along y=-40, x 0..200, joined only by a 1,040 m detour west of
    x=0; a toilet at B's east end (200,-40). A home (90..110, -30..-10) is 10 m from both.
    `mirror` reflects everything about y=-20 (A and B swap; the toilet is then on A)."""
    segs = [
        (1, 2, [(0, 0), (200, 0)]),
        (3, 4, [(0, -40), (200, -40)]),
        (1, 7, [(0, 0), (-500, 0)]),
        (7, 8, [(-500, 0), (-500, -40)]),
        (8, 3, [(-500, -40), (0, -40)]),
    ]
    home, toilet = box(90, -30, 110, -10), (200.0, -40.0)
    if mirror:
        segs = [(u, v, [(x, -40 - y) for x, y in pts]) for u, v, pts in segs]
        toilet = (200.0, 0.0)
    net = build_network(streets(segs, highway=["footway"] * len(segs)))
    home_g = shift(home if not mirror else affinity.scale(home, 1, -1, origin=(0, -20)))
    return net, np.array([home_g]), np.array([shift(Point(*toilet))])


@pytest.mark.parametrize("mirror", [False, True])
def test_a_home_between_two_equally_near_footways_walks_from_the_better_one(mirror):
    net, home, toilet = two_footways(mirror)
    fac = cov.snap(net, toilet, max_snap_m=50, reach_polygon_edges=True)
    dem = cov.snap(net, home, max_snap_m=50, tie_m=1.0)
    assert len(dem.item) == 2  # attached to both footways
    res = cov.measure(net, dem, fac, threshold_m=500, limit_m=2000)
    assert res["dist_m"].iloc[0] == pytest.approx(110.0, abs=1e-9)  # leg 10 + 100 m east on B


def test_without_the_tie_rule_the_answer_depends_on_the_layout():
    """What the tie rule fixes: with one attachment, one of the two mirror images walks the
    1,350 m detour (10 + 100 + 500 + 40 + 500 + 200) instead of 110 m."""
    got = []
    for mirror in (False, True):
        net, home, toilet = two_footways(mirror)
        fac = cov.snap(net, toilet, max_snap_m=50, reach_polygon_edges=True)
        dem = cov.snap(net, home, max_snap_m=50)
        got.append(cov.measure(net, dem, fac, threshold_m=500, limit_m=2000)["dist_m"].iloc[0])
    assert sorted(np.round(got, 6)) == [110.0, 1350.0]


def test_a_nearly_equal_street_within_the_tolerance_is_used_too():
    net, home, toilet = two_footways(False)
    home = np.array([affinity.translate(home[0], 0, 0.5)])  # 9.5 m from A, 10.5 m from B
    fac = cov.snap(net, toilet, max_snap_m=50, reach_polygon_edges=True)
    for tie_m, want in ((1.0, 110.5), (0.25, 1349.5)):  # 9.5 + 100 + 500 + 40 + 500 + 200
        dem = cov.snap(net, home, max_snap_m=50, tie_m=tie_m)
        res = cov.measure(net, dem, fac, threshold_m=500, limit_m=2000)
        assert res["dist_m"].iloc[0] == pytest.approx(want, abs=1e-9)
        # the home's street context is that of its nearest street (listed first)
        assert dem.leg_m[0] == pytest.approx(9.5)


def test_ties_from_coordinates_equal_ties_from_points(helsinki_network):
    """The KD-tree search (`snap_xy`) finds the same attachments within the tolerance as the
    R-tree search for the same points: every (point, edge) pair, with the same legs."""
    import shapely

    net = helsinki_network
    x0, y0, x1, y1 = net.edges.total_bounds
    gx, gy = np.meshgrid(np.arange(x0, x1, 7.0), np.arange(y0, y1, 7.0))
    xy = np.column_stack([gx.ravel(), gy.ravel()])[:19_000]
    ours = cov.snap_xy(net, xy, max_snap_m=200, tie_m=1.0)
    ref = cov.snap(net, shapely.points(xy), max_snap_m=200, tie_m=1.0)
    assert len(ref.item) > len(np.unique(ref.item)) + 500  # many points do have ties
    a = set(zip(ours.item.tolist(), ours.edge.tolist()))
    b = set(zip(ref.item.tolist(), ref.edge.tolist()))
    # pairs found by one search only sit on the tolerance's edge (rounding), if any
    odd = a ^ b
    assert len(odd) <= 1e-4 * len(b)
    both = sorted(a & b)
    leg_ours = dict(zip(zip(ours.item.tolist(), ours.edge.tolist()), ours.leg_m))
    leg_ref = dict(zip(zip(ref.item.tolist(), ref.edge.tolist()), ref.leg_m))
    np.testing.assert_allclose(
        [leg_ours[p] for p in both], [leg_ref[p] for p in both], rtol=0, atol=1e-9
    )


def test_locked_gates_are_read_from_node_tags():
    import geopandas as gpd

    f = gpd.GeoDataFrame(
        {
            "osm_id": ["node/1", "node/2", "node/3", "way/4", "node/5"],
            "tags": tag_texts(
                [
                    {"barrier": "gate", "access": "private"},
                    {"barrier": "gate"},
                    {"barrier": "gate", "access": "no", "foot": "designated"},
                    {"barrier": "gate", "access": "no"},  # a way: not a node on the path
                    {"barrier": "entrance", "locked": "yes"},
                ]
            ).array,
        },
        geometry=[Point(0, 0)] * 5,
        crs=3857,
    )
    assert locked_gates(f).tolist() == [1, 5]
