"""Choice: every facility within reach of each home, and its nearest k (issue #29).

Checked against distances worked out by hand on a small network, against an independent networkx
Dijkstra per facility on the real Helsinki sample, and against the coverage engine itself (the
nearest facility's distance is ``coverage.measure``'s, to the last bit).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from conftest import build_network, shift, split_graph, streets
from walkcover.engine import choice
from walkcover.engine import coverage as cov

# --- a hand-made network ----------------------------------------------------------------------
#
#   node 4 (400, 300)
#      |  edge 2 (300 m, from node 2 up)
#   node 1 (0, 0) ---- edge 0 (400 m) ---- node 2 (400, 0) ---- edge 1 (600 m) ---- node 3 (1000, 0)
#
# Facilities (snaps written by hand, one row per access point):
#   F0: a park reached from two streets: edge 0 at 50 m (leg 10) and edge 2 at 250 m (leg 5)
#   F1: lines edge 1 from 100 m to 200 m (leg 0)
#   F2: edge 1 at 550 m (leg 20)
# Homes (snapped by the engine): H0 (100, 10) → edge 0 at 100, leg 10; H1 (700, −20) → edge 1 at
# 300, leg 20; H2 (410, 200) → edge 2 at 200, leg 10; H3 far away, unsnapped.
#
# Walking distances, by hand:
#   H0–F0: along edge 0: 10 + (10 + |100 − 50|) = 70   (through edge 2: 10+300+250+5 = 565, not it)
#   H0–F1: 10 + 300 (to node 2) + 100 = 410
#   H0–F2: 10 + 300 + 550 + 20 = 880                    (beyond the 800 m limit: not listed)
#   H1–F1: along edge 1: 20 + (0 + 300 − 200) = 120
#   H1–F2: along edge 1: 20 + (20 + 550 − 300) = 290
#   H1–F0: 20 + 300 (to node 2) + min(350 + 10, 250 + 5) = 575
#   H2–F0: along edge 2: 10 + (5 + 250 − 200) = 65
#   H2–F1: 10 + 200 (to node 2) + 100 = 310
#   H2–F2: 10 + 200 + 550 + 20 = 780
HAND = {
    0: [(70.0, 0), (410.0, 1)],
    1: [(120.0, 1), (290.0, 2), (575.0, 0)],
    2: [(65.0, 0), (310.0, 1), (780.0, 2)],
    3: [],
}


@pytest.fixture(scope="module")
def hand():
    net = build_network(
        streets(
            [
                (1, 2, [(0, 0), (400, 0)]),
                (2, 3, [(400, 0), (1000, 0)]),
                (2, 4, [(400, 0), (400, 300)]),
            ]
        )
    )
    homes = [shift(Point(100, 10)), shift(Point(700, -20)), shift(Point(410, 200))]
    homes.append(shift(Point(5000, 5000)))
    dem = cov.snap(net, np.array(homes, dtype=object), max_snap_m=50)
    fac = cov.Snaps(
        item=np.array([0, 0, 1, 2]),
        edge=np.array([0, 2, 1, 1]),
        lo_m=np.array([50.0, 250.0, 100.0, 550.0]),
        hi_m=np.array([50.0, 250.0, 200.0, 550.0]),
        leg_m=np.array([10.0, 5.0, 0.0, 20.0]),
        unsnapped=np.array([], dtype=np.int64),
        n_items=3,
    )
    return net, dem, fac


def test_hand_pairs_and_nearest(hand):
    net, dem, fac = hand
    assert dem.unsnapped.tolist() == [3]
    pairs = choice.facility_pairs(net, dem, fac, limit_m=800)
    got = {
        h: [
            (float(d), int(f))
            for hh, f, d in zip(pairs.home, pairs.facility, pairs.dist_m)
            if hh == h
        ]
        for h in range(4)
    }
    for h in range(4):
        assert [f for _, f in got[h]] == [f for _, f in HAND[h]], h
        np.testing.assert_allclose([d for d, _ in got[h]], [d for d, _ in HAND[h]], atol=1e-9)

    near = choice.nearest_facilities(pairs, k=3, threshold_m=400)
    for h, expect in HAND.items():
        for j in range(3):
            d, f = near[f"dist_{j + 1}_m"].iloc[h], near[f"facility_{j + 1}"].iloc[h]
            if j < len(expect):
                assert d == pytest.approx(expect[j][0], abs=1e-9) and f == expect[j][1]
            else:
                assert np.isnan(d) and f is pd.NA
    # within 400 m: H0 one (F0; F1 at 410), H1 two, H2 two (65, 310); H3 unmeasured
    assert near["n_within"].tolist() == [1, 2, 2, pd.NA]
    assert near["snapped"].tolist() == [True, True, True, False]
    # a threshold per home, as context radii give it
    per_home = choice.nearest_facilities(pairs, k=1, threshold_m=np.array([500, 100, 400, 400]))
    assert per_home["n_within"].tolist() == [2, 0, 2, pd.NA]


def test_hand_owner_groups_entrances(hand):
    """Items that are one facility's entrances count as one facility, at the nearest of them."""
    net, dem, fac = hand
    pairs = choice.facility_pairs(net, dem, fac, limit_m=800, owner=np.array([0, 1, 0]))
    near = choice.nearest_facilities(pairs, k=3, threshold_m=800)
    # F0 and F2 are now one facility: H1 sees it at 290 (F2's point), H0 at 70, H2 at 65
    assert near["facility_1"].tolist()[:3] == [0, 1, 0]
    np.testing.assert_allclose(near["dist_1_m"].to_numpy()[:3], [70, 120, 65], atol=1e-9)
    np.testing.assert_allclose(near["dist_2_m"].to_numpy()[:3], [410, 290, 310], atol=1e-9)
    assert np.isnan(near["dist_3_m"].to_numpy()[:4]).all()
    assert near["n_within"].tolist() == [2, 2, 2, pd.NA]
    with pytest.raises(ValueError, match="owner"):
        choice.facility_pairs(net, dem, fac, limit_m=800, owner=np.array([0, 1]))


def test_hand_nearest_equals_measure(hand):
    net, dem, fac = hand
    for limit in (800.0, 300.0, 60.0):
        pairs = choice.facility_pairs(net, dem, fac, limit_m=limit)
        near = choice.nearest_facilities(pairs, k=1, threshold_m=min(limit, 100.0))
        ref = cov.measure(net, dem, fac, threshold_m=min(limit, 100.0), limit_m=limit)
        np.testing.assert_array_equal(near["dist_1_m"].to_numpy(), ref["dist_m"].to_numpy())


def test_refuses_bad_limits(hand):
    net, dem, fac = hand
    with pytest.raises(ValueError, match="finite"):
        choice.facility_pairs(net, dem, fac, limit_m=np.inf)
    pairs = choice.facility_pairs(net, dem, fac, limit_m=300)
    with pytest.raises(ValueError, match="search limit"):
        choice.nearest_facilities(pairs, k=3, threshold_m=400)
    with pytest.raises(ValueError, match="k must"):
        choice.nearest_facilities(pairs, k=0, threshold_m=100)


def test_no_facilities_or_homes(hand):
    net, dem, fac = hand
    none = fac.take(np.array([], dtype=np.int64))
    pairs = choice.facility_pairs(net, dem, none, limit_m=800)
    assert len(pairs.home) == 0
    near = choice.nearest_facilities(pairs, k=2, threshold_m=100)
    assert np.isnan(near["dist_1_m"]).all()
    assert near["n_within"].tolist() == [0, 0, 0, pd.NA]


# --- the real Helsinki sample, against an independent networkx Dijkstra per facility ------------

LIMIT_M, THRESHOLD_M = 800.0, 500.0


def per_facility_networkx(
    net, demand: cov.Snaps, sources: cov.Snaps, *, limit_m: float
) -> dict[tuple[int, int], float]:
    """(home, facility) → walking distance, by networkx on a graph whose edges are split at every
    snapped point (conftest's `split_graph`), one Dijkstra per facility from a source
    joined to every point of each of its access spans by the access leg. Shares no distance
    arithmetic with the engine."""
    g, entry = split_graph(net, demand, sources)  # facility → {node: access leg}
    out: dict[tuple[int, int], float] = {}
    for f, legs in entry.items():
        for node, leg in legs.items():
            g.add_edge("S", node, w=leg)
        dist = nx.single_source_dijkstra_path_length(g, "S", cutoff=limit_m + 1, weight="w")
        g.remove_node("S")
        for k in range(len(demand.item)):
            d = dist.get(("d", k), np.inf) + demand.leg_m[k]
            key = (int(demand.item[k]), f)
            if d <= limit_m + 1:
                out[key] = min(out.get(key, np.inf), float(d))
    return out


@pytest.fixture(scope="module")
def helsinki(helsinki_green_space):
    return helsinki_green_space


def test_helsinki_pairs_equal_networkx(helsinki):
    net, dem, src = helsinki
    access_points = np.bincount(src.item, minlength=src.n_items)
    assert src.n_items >= 24 and (access_points > 1).sum() >= 24  # a few dozen, several each
    assert len(dem.item) > 300
    pairs = choice.facility_pairs(net, dem, src, limit_m=LIMIT_M)
    ours = {(int(h), int(f)): float(d) for h, f, d in zip(pairs.home, pairs.facility, pairs.dist_m)}
    assert len(ours) == len(pairs.home)  # each facility once per home
    theirs = per_facility_networkx(net, dem, src, limit_m=LIMIT_M)
    sure = {k: d for k, d in theirs.items() if d <= LIMIT_M - 1e-6}
    assert len(sure) > 3000
    assert set(sure) <= set(ours)
    assert set(ours) <= {k for k, d in theirs.items() if d <= LIMIT_M + 1e-6}
    diff = np.array([ours[k] - theirs[k] for k in ours])
    np.testing.assert_allclose(diff, 0.0, atol=1e-6)

    # the nearest three, from the independent distances
    near = choice.nearest_facilities(pairs, k=3, threshold_m=THRESHOLD_M)
    ref = np.full((dem.n_items, 3), np.nan)
    ref_count = np.zeros(dem.n_items, dtype=int)
    by_home: dict[int, list[float]] = {}
    for (h, _), d in sure.items():
        by_home.setdefault(h, []).append(d)
    for h, ds in by_home.items():
        ds.sort()
        ref[h, : min(3, len(ds))] = ds[:3]
        ref_count[h] = sum(d <= THRESHOLD_M for d in ds)
        assert all(abs(d - THRESHOLD_M) > 1e-6 for d in ds)  # no count decided by rounding
    mine = near[["dist_1_m", "dist_2_m", "dist_3_m"]].to_numpy()
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref))
    np.testing.assert_allclose(mine[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=1e-6)
    assert (~np.isnan(ref[:, 2])).sum() > 100  # many homes have three within reach
    measured = np.setdiff1d(np.arange(dem.n_items), dem.unsnapped)
    np.testing.assert_array_equal(near["n_within"].to_numpy()[measured], ref_count[measured])


def test_helsinki_nearest_equals_measure_exactly(helsinki):
    net, dem, src = helsinki
    for limit, thr in ((LIMIT_M, THRESHOLD_M), (300.0, 300.0)):
        pairs = choice.facility_pairs(net, dem, src, limit_m=limit)
        near = choice.nearest_facilities(pairs, k=1, threshold_m=thr)
        ref = cov.measure(net, dem, src, threshold_m=thr, limit_m=limit)
        np.testing.assert_array_equal(near["dist_1_m"].to_numpy(), ref["dist_m"].to_numpy())
        covered = near["n_within"].to_numpy(dtype=float, na_value=0) > 0
        np.testing.assert_array_equal(covered, ref["covered"].to_numpy())


def test_node_xy_ends_of_edges(helsinki):
    """The bounded search leans on every edge being at least as long as its chord."""
    net, _, _ = helsinki
    xy = choice.node_xy(net)
    e = net.edges
    u, v = e["u_idx"].to_numpy(), e["v_idx"].to_numpy()
    chord = np.hypot(*(xy[u] - xy[v]).T)
    assert np.isfinite(xy).all()
    assert (e["length_m"].to_numpy() >= chord - 1e-9).all()
