"""Street contexts and the toilet radii: 300 m main streets, 500 m ordinary roads, 800 m riverside parks."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from conftest import CRS_M, features, shift, streets
from walkcover.config.standards import load_standards
from walkcover.engine import coverage as cov
from walkcover.engine.network import build_network
from walkcover.engine.street_context import (
    classify_edges,
    context_radii,
    snap_radii,
    unit_thresholds,
)

RULES = load_standards()
TOILET = RULES.standards["toilet"]


@pytest.fixture
def three_streets():
    # A primary road (y=0), a residential road (y=1000) and a footway through a riverside park (y=2000),
    # each 2 km long and a component of its own; a sidewalk beside the primary road, a footway far from it.
    s = streets(
        [
            (1, 2, [(0, 0), (2000, 0)]),
            (3, 4, [(0, 1000), (2000, 1000)]),
            (5, 6, [(0, 2000), (2000, 2000)]),
            (7, 8, [(0, 12), (100, 12)]),
            (9, 10, [(0, 300), (100, 300)]),
        ],
        highway=["primary", "residential", "footway", "footway", "footway"],
        footway=[None, None, None, "sidewalk", "sidewalk"],
    )
    net = build_network(s)
    f = features(
        ({"leisure": "park"}, box(-10, 1950, 2010, 2040)),
        ({"natural": "water"}, box(-10, 2060, 2010, 2200)),  # 20 m from the park: a riverside park
        ({"leisure": "park"}, box(-10, 950, 500, 990)),  # a park with no water: not riverside
    )
    tags = pd.DataFrame({"highway": net.edges["highway"], "footway": net.edges["footway"]})
    return net, classify_edges(net, tags, f, RULES.street_contexts)


def test_edges_are_classified(three_streets):
    _, ctx = three_streets
    assert list(ctx) == [
        "main_street",
        "ordinary_road",
        "riverside_park",
        "main_street",
        "ordinary_road",
    ]


def test_edges_are_classified_a_chunk_of_midpoints_at_a_time(three_streets, monkeypatch):
    # midpoints are made as points two edges at a time: every chunk's hits land on its own edges
    net, ctx = three_streets
    monkeypatch.setattr("walkcover.engine.street_context.MIDPOINT_CHUNK", 2)
    monkeypatch.setattr("walkcover.engine.network.MIDPOINT_CHUNK", 2)
    net.__dict__.pop("midpoints", None)
    tags = pd.DataFrame({"highway": net.edges["highway"], "footway": net.edges["footway"]})
    f = features(
        ({"leisure": "park"}, box(-10, 1950, 2010, 2040)),
        ({"natural": "water"}, box(-10, 2060, 2010, 2200)),
    )
    assert list(classify_edges(net, tags, f, RULES.street_contexts)) == list(ctx)
    mids = [shift(Point(1000, y)).coords[0] for y in (0, 1000, 2000)]  # half-way along each
    np.testing.assert_allclose(net.midpoints[:3], mids)


def test_radii_gathered_from_the_edges_equal_the_radii_by_context(three_streets):
    # snap_radii (per-edge radii made once, gathered) against unit_thresholds (a context per item):
    # one home per context, one beyond every street (unsnapped: the default context's radius)
    net, ctx = three_streets
    homes = gpd.GeoSeries(
        [shift(Point(300, 5)), shift(Point(500, 1005)), shift(Point(800, 2005)), Point(5e4, 5e4)],
        crs=CRS_M,
    )
    d = cov.snap(net, homes, max_snap_m=20)
    assert list(d.unsnapped) == [3]
    got = snap_radii(TOILET, context_radii(TOILET, ctx), d)
    np.testing.assert_array_equal(got, [300, 500, 800, 500])
    np.testing.assert_array_equal(got, unit_thresholds(TOILET, ctx, d))


def test_each_unit_is_held_to_its_own_context_radius(three_streets):
    net, ctx = three_streets
    # Toilets at the west end of each street (on it). Houses 5 m off the street at offsets chosen so
    # that the walk is 290/310 m (main), 490/510 m (ordinary) and 790/810 m (riverside park).
    toilets = gpd.GeoSeries([shift(Point(0, y)) for y in (0, 1000, 2000)], crs=CRS_M)
    houses = gpd.GeoSeries(
        [
            shift(Point(x, y + 5))
            for y, xs in ((0, (285, 305)), (1000, (485, 505)), (2000, (785, 805)))
            for x in xs
        ],
        crs=CRS_M,
    )
    d = cov.snap(net, houses, max_snap_m=20)
    f = cov.snap(net, toilets, max_snap_m=20, reach_polygon_edges=True)
    thr = unit_thresholds(TOILET, ctx, d)
    np.testing.assert_array_equal(thr, [300, 300, 500, 500, 800, 800])
    res = cov.measure(net, d, f, threshold_m=thr, limit_m=1600)
    np.testing.assert_allclose(res["dist_m"], [290, 310, 490, 510, 790, 810], atol=1e-9)
    assert list(res["covered"]) == [True, False, True, False, True, False]


def test_covered_street_length_per_context(three_streets):
    net, ctx = three_streets
    toilets = gpd.GeoSeries([shift(Point(0, y)) for y in (0, 1000, 2000)], crs=CRS_M)
    f = cov.snap(net, toilets, max_snap_m=20, reach_polygon_edges=True)
    nd = cov.node_distances(net, f, limit_m=1600)
    radius = np.array([TOILET.context_thresholds_m[c] for c in ctx])
    cover = cov.covered_length_m(net, f, nd, radius)
    # From a toilet at the end of a 2 km street, the first r metres are covered; the sidewalk and
    # the lone footway have no toilet in their component.
    np.testing.assert_allclose(cover, [300, 500, 800, 0, 0], atol=1e-9)


def test_covered_length_merges_overlaps():
    net = build_network(streets([(1, 2, [(0, 0), (1000, 0)])]))
    toilets = gpd.GeoSeries([shift(Point(x, 0)) for x in (400, 500)], crs=CRS_M)
    f = cov.snap(net, toilets, max_snap_m=20)
    nd = cov.node_distances(net, f, limit_m=1000)
    # [400−100, 400+100] ∪ [500−100, 500+100] = [300, 600]: 300 m, not 400.
    assert cov.covered_length_m(net, f, nd, 100.0)[0] == pytest.approx(300.0)
