"""`coverage._within`: the pairs of an R-tree's within-distance query, found from boxes and exact
distances (the snapping of homes, parks and their stretches of street relies on it)."""

from __future__ import annotations

import numpy as np
import shapely

from walkcover.engine import coverage as cov


def _pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.unique(np.column_stack([a, b]), axis=0)


def test_within_gives_the_pairs_of_the_dwithin_query(helsinki_layers, helsinki_network):
    from walkcover.config.standards import features_matching, load_standards
    from walkcover.measures.demand import demand_from_buildings, residential_buildings

    city, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    homes = demand_from_buildings(
        residential_buildings(feats, city.config.demand), city.config.demand
    ).geometry.to_numpy()
    parks = features_matching(feats, load_standards().land.green).geometry.to_numpy()
    parks = parks[shapely.get_type_id(parks) >= 3]
    points = shapely.centroid(homes[::3])
    geoms = np.concatenate([homes, parks, points, [shapely.Polygon(), None]])
    tree = helsinki_network.tree
    rng = np.random.default_rng(3)
    for distance in (25.0, 0.0, rng.uniform(0, 60, len(geoms))):
        got = cov._within(tree, geoms, distance)
        want = tree.query(geoms, predicate="dwithin", distance=distance)
        assert len(want[0]) > 1_000 or np.all(distance == 0)
        np.testing.assert_array_equal(_pairs(got[0], got[1]), _pairs(want[0], want[1]))
        np.testing.assert_array_equal(
            got[2], shapely.distance(geoms[got[0]], tree.geometries[got[1]])
        )
    # a tree of points queried by lines (a park's vertices near its streets)
    vp = shapely.points(shapely.get_coordinates(parks))
    lines = tree.geometries[:3_000]
    reach = rng.uniform(0, 30, len(lines))
    got = cov._within(shapely.STRtree(vp), lines, reach)
    want = shapely.STRtree(vp).query(lines, predicate="dwithin", distance=reach)
    assert len(want[0]) > 100
    np.testing.assert_array_equal(_pairs(got[0], got[1]), _pairs(want[0], want[1]))
