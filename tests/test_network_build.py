"""The network without its islands is taken from the network first built (`network._kept`), not
built again from the kept streets: it must be that network to the last bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import streets
from walkcover.engine import network as net_mod


def _rebuilt(walk, *, min_island_m: float, cut: np.ndarray) -> net_mod.Network:
    """What `build_network` made before: the kept streets built again, from scratch."""
    walk = walk[walk.geometry.notna() & ~walk.geometry.is_empty].reset_index(drop=True)
    first = net_mod._build(walk, cut)
    comp = first.component[first.edges["u_idx"].to_numpy()]
    total = np.bincount(comp, weights=first.edges["length_m"].to_numpy())
    keep = total[comp] >= min_island_m
    return net_mod._build(walk[keep].reset_index(drop=True), cut)


def _assert_same(a: net_mod.Network, b: net_mod.Network) -> None:
    pd.testing.assert_frame_equal(
        a.edges.drop(columns="geometry"), b.edges.drop(columns="geometry")
    )
    assert a.edges.geometry.to_numpy().tolist() == b.edges.geometry.to_numpy().tolist()
    assert a.edges.crs == b.edges.crs
    for name in ("node_osm_ids", "component", "snappable"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    for name in ("indptr", "indices", "weight_m"):
        x, y = getattr(a.adjacency, name), getattr(b.adjacency, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.adjacency.n == b.adjacency.n
    assert len(a.tree) == len(b.tree)


def test_islands_dropped_as_if_built_again():
    # a main piece (with a parallel edge, a self-loop and a locked gate at node 3), a 30 m island
    # (nodes 10-11) and a 200 m piece (20-21), numbered so the island's nodes sit between the others
    segs = [
        (1, 2, [(0, 0), (100, 0)]),
        (2, 3, [(100, 0), (200, 0)]),
        (1, 2, [(0, 0), (50, 20), (100, 0)]),  # parallel, longer: the shorter arc is kept
        (3, 4, [(200, 0), (300, 0)]),
        (4, 4, [(300, 0), (310, 10), (300, 0)]),  # a self-loop
        (10, 11, [(0, 50), (30, 50)]),  # the island
        (20, 21, [(0, 100), (200, 100)]),
        (3, 5, [(200, 0), (200, -80)]),  # the second street ending at the gate
    ]
    walk = streets(segs)
    cut = np.array([3], dtype=np.int64)
    net = net_mod.build_network(walk, min_island_m=50.0, cut_nodes=cut)
    _assert_same(net, _rebuilt(walk, min_island_m=50.0, cut=cut))
    # the island is gone, the 200 m piece and the main piece stay
    assert set(net.node_osm_ids.tolist()) == {1, 2, 3, 4, 5, 20, 21}
    assert (net.node_osm_ids == 3).sum() == 3  # each street end at the gate a node of its own
    assert len(np.unique(net.component)) == 3 + 1  # the gate splits the main piece in three
    assert len(net.edges) == len(segs) - 1
    a = net.adjacency
    i, j = (int(np.flatnonzero(net.node_osm_ids == k)[0]) for k in (1, 2))
    assert a.weight_m[a.indptr[i] : a.indptr[i + 1]][
        a.indices[a.indptr[i] : a.indptr[i + 1]] == j
    ] == [100.0]


def test_helsinki_without_islands_as_if_built_again(helsinki_layers):
    city, crs, layers = helsinki_layers
    walk = net_mod.walkable_streets(layers.streets, walk_highways=city.config.network.walk_highways)
    walk = walk.to_crs(crs)
    cut = net_mod.locked_gates(layers.features)
    island_m = city.config.network.min_island_m
    net = net_mod.build_network(walk, min_island_m=island_m, cut_nodes=cut)
    ref = _rebuilt(walk, min_island_m=island_m, cut=cut)
    assert len(ref.edges) < len(walk)  # the sample has islands to drop
    _assert_same(net, ref)


@pytest.mark.parametrize("island_m", [0.0, 1e9])
def test_nothing_or_everything_dropped(island_m):
    walk = streets([(1, 2, [(0, 0), (100, 0)]), (3, 4, [(0, 50), (30, 50)])])
    cut = np.zeros(0, dtype=np.int64)
    net = net_mod.build_network(walk, min_island_m=island_m, cut_nodes=cut)
    _assert_same(net, _rebuilt(walk, min_island_m=island_m, cut=cut))
    assert len(net.edges) == (2 if island_m == 0 else 0)


def test_node_positions_are_numpys_unique():
    """The node positions (made by a hash table) are `np.unique`'s ids and inverse, each end at
    a cut node a position of its own after them, in street order (cut given twice or not)."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        ids = rng.integers(-5, 40, size=int(rng.integers(0, 60))).astype(np.int64)
        cut = rng.choice(np.arange(-5, 45), size=int(rng.integers(0, 6))).astype(np.int64)
        at = np.isin(ids, cut)
        shared, inverse = np.unique(ids[~at], return_inverse=True)
        want_inverse = np.empty(len(ids), dtype=np.int64)
        want_inverse[~at] = inverse
        want_inverse[at] = len(shared) + np.arange(int(at.sum()))
        want_ids = np.concatenate([shared, ids[at]])
        got_ids, got_inverse = net_mod._node_positions(ids, cut)
        assert got_ids.dtype == want_ids.dtype and np.array_equal(got_ids, want_ids)
        assert got_inverse.dtype == want_inverse.dtype and np.array_equal(got_inverse, want_inverse)
