"""Choice: every facility within walking reach of each home, and the nearest k of them.

The coverage pass (`walkcover.engine.coverage`) answers "how far is the *nearest* facility". Choice
and capacity need more: the 2nd and 3rd nearest distinct facility, how many lie within the
standard's distance, and every (home, facility) pair within it for capacity-aware access (E2SFCA).

One bounded shortest-path search per facility gives them all, as a sparse list of pairs (`Pairs`,
COO arrays), never a dense home × facility matrix:

* A facility's access points (its snaps: a park reached from several streets) join one virtual
  source, exactly as `coverage.node_distances` joins all of a standard's facilities: the arcs
  source→u of ``leg + lo`` and source→v of ``leg + (length − hi)``. A facility therefore counts
  once, at its nearest access point.
* The search runs on the part of the network that can lie within ``limit_m`` of those arcs' ends:
  every edge is at least as long as the straight line between its nodes, so a node farther than
  ``limit_m − arc`` (straight line) from every arc end cannot be reached. A KD-tree of the nodes
  finds that part; scipy's Dijkstra (cut off at ``limit_m``) runs on it alone. Work grows with the
  facilities and the streets around them, not with the area of the city.
* A home's distance to a facility is then computed as `coverage.demand_distances` computes it:
  its access leg + the best of through its edge's ``u`` end, its ``v`` end, or along the edge to
  the facility's own access point on that edge, with the same floating-point operations, so the
  nearest facility's distance equals `coverage.measure`'s ``dist_m`` to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy
import shapely

from walkcover.engine.coverage import Snaps, run_starts
from walkcover.engine.network import Adjacency, Network

#: Straight-line slack added to each search radius: rounding in edge lengths and node coordinates
#: (an edge's length is its geometry's, never shorter than its chord) can never hide a node.
_RADIUS_PAD_M = 1e-3


#: The most facilities searched in one call (its distance table is facilities × subgraph nodes).
_BATCH = 32

#: The most grid cells the bounded search buckets nodes in (a table of 8 bytes a cell).
_MAX_CELLS = 4_000_000


@dataclass(frozen=True)
class Pairs:
    """Every (home, facility) pair within walking reach, as COO arrays.

    Attributes
    ----------
    home
        Demand item (position of the home in the input of `snap`), one per pair.
    facility
        The facility (its item in the snapped input, or its `owner`), one per pair; each facility
        appears at most once per home, at its nearest access point.
    dist_m
        The walking distance of the pair (home leg + along its edge + network + facility leg),
        at most ``limit_m``.
    n_homes, n_facilities
        How many homes and facilities were given (snapped or not).
    unsnapped
        Homes that could not be snapped: they have no pairs, and no measured value (NaN).
    limit_m
        The search cutoff: a pair farther than this is not listed.

    Pairs are sorted by home, then distance, then facility.
    """

    home: np.ndarray
    facility: np.ndarray
    dist_m: np.ndarray
    n_homes: int
    n_facilities: int
    unsnapped: np.ndarray
    limit_m: float


def facility_pairs(
    network: Network,
    demand: Snaps,
    facilities: Snaps,
    *,
    limit_m: float,
    owner: np.ndarray | None = None,
    n_facilities: int | None = None,
) -> Pairs:
    """Every (home, facility) pair within `limit_m` walking distance, by one bounded search per
    facility.

    Parameters
    ----------
    network
        The walk network.
    demand
        Snapped homes (`coverage.snap`); a home attached to several equally near edges walks from
        the best one, as in `coverage.demand_distances`.
    facilities
        Snapped facilities; the rows of one item are one facility's access points.
    limit_m
        Search cutoff in metres (finite). Pairs farther apart are not listed.
    owner
        The facility of each item of `facilities` when a facility is several items (its
        entrances, as the run's access geometries carry their facility's position in their index):
        all of one facility's access points are searched from together and it counts once.
        By default each item is a facility.
    n_facilities
        How many facilities there are (default: the highest `owner` + 1, or the items).

    Returns
    -------
    Pairs
        The pairs sorted by home, distance and facility. The smallest distance of each home equals
        ``coverage.measure(...)["dist_m"]`` for the same snaps and `limit_m`.
    """
    if not np.isfinite(limit_m) or limit_m < 0:
        raise ValueError(
            f"limit_m must be a finite distance in metres, not {limit_m!r}: the search is "
            "bounded (use the standard's largest threshold)"
        )
    n_homes = demand.n_items
    if owner is None:
        own = np.arange(facilities.n_items, dtype=np.int64)
    else:
        own = np.asarray(owner, dtype=np.int64)
        if own.shape != (facilities.n_items,) or (len(own) and own.min() < 0):
            raise ValueError(
                f"owner must give a facility (0 or more) for each of the {facilities.n_items} "
                f"facility items, not an array of shape {own.shape}"
            )
    n_fac = int(n_facilities) if n_facilities is not None else int(own.max(initial=-1)) + 1
    if len(own) and own.max() >= n_fac:
        raise ValueError(f"owner names facility {own.max()}, beyond n_facilities ({n_fac})")
    empty_i = np.array([], dtype=np.int64)
    unsnapped = np.asarray(demand.unsnapped, dtype=np.int64)
    if len(demand.item) == 0 or len(facilities.item) == 0:
        return Pairs(
            empty_i, empty_i, empty_i.astype(float), n_homes, n_fac, unsnapped, float(limit_m)
        )

    e = network.edges
    length = e["length_m"].to_numpy()
    u_all, v_all = e["u_idx"].to_numpy(), e["v_idx"].to_numpy()
    n = network.n_nodes

    # Homes' rows: their two ends, each with what is added to the end's distance (the same floats
    # as `demand_distances`: ``node_dist[u] + off`` and ``node_dist[v] + (length − off)``).
    h_len, h_u, h_v = demand.edge_ends(network)
    h_off = demand.lo_m
    h_tail = h_len - h_off
    end_node = np.concatenate([h_u, h_v])
    end_row = np.concatenate([np.arange(len(h_u)), np.arange(len(h_v))])
    end_add = np.concatenate([h_off, h_tail])
    o = np.argsort(end_node, kind="stable")
    end_add = end_add[o]
    end_item, end_leg = demand.item[end_row[o]], demand.leg_m[end_row[o]]
    end_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(end_node, minlength=n), out=end_start[1:])
    has_home = end_start[1:] > end_start[:-1]  # nodes at an end of a home's edge

    # Each facility's arcs from its virtual source, written as `node_distances` writes them; of
    # one facility's arcs to one node the shortest (as `np.minimum.at` keeps it there)
    arc_node = np.concatenate([u_all[facilities.edge], v_all[facilities.edge]])
    arc_m = np.concatenate(
        [
            facilities.leg_m + facilities.lo_m,
            facilities.leg_m + (length[facilities.edge] - facilities.hi_m),
        ]
    )
    arc_fac = np.concatenate([own[facilities.item], own[facilities.item]])
    keep = arc_m <= limit_m
    arc_node, arc_m, arc_fac = arc_node[keep], arc_m[keep], arc_fac[keep]
    o = np.lexsort((arc_m, arc_node, arc_fac))
    o = o[run_starts(arc_fac[o], arc_node[o])]
    arc_node, arc_m, arc_fac = arc_node[o], arc_m[o], arc_fac[o]

    # homes on a facility's own edge, walking along it; then the searches
    along = _along_pairs(network, demand, facilities, own, limit_m=limit_m)
    homes_l, facs_l, dists_l = [along[0]], [along[1]], [along[2]]
    if len(arc_fac):
        # The nodes a facility may reach lie within limit − arc (straight line) of its arcs'
        # ends: inside the box around those circles. Facilities whose boxes' centres share a
        # tile are searched together, on the union of their boxes (one subgraph, one call).
        xy = node_xy(network)
        grid = _Grid.of(xy, cell_m=max(limit_m / 8.0, 25.0), max_cells=_MAX_CELLS)
        fac_ids, arc_first = np.unique(arc_fac, return_index=True)
        arc_count = np.diff(np.append(arc_first, len(arc_fac)))
        r = limit_m - arc_m + _RADIUS_PAD_M
        ax, ay = xy[arc_node, 0], xy[arc_node, 1]
        x0, x1 = np.minimum.reduceat(ax - r, arc_first), np.maximum.reduceat(ax + r, arc_first)
        y0, y1 = np.minimum.reduceat(ay - r, arc_first), np.maximum.reduceat(ay + r, arc_first)
        tile_m = max(limit_m / 2.0, 25.0)
        tx = np.floor((x0 + x1) / 2 / tile_m).astype(np.int64)
        ty = np.floor((y0 + y1) / 2 / tile_m).astype(np.int64)
        by_tile = np.lexsort((ty, tx))
        cut = np.flatnonzero(run_starts(tx[by_tile], ty[by_tile]))
        adj = network.adjacency
        local = np.full(n, -1, dtype=np.int64)
        for t0, t1 in zip(cut, np.append(cut[1:], len(by_tile))):
            for b0 in range(int(t0), int(t1), _BATCH):
                batch = by_tile[b0 : min(b0 + _BATCH, int(t1))]
                sub = grid.box(x0[batch].min(), x1[batch].max(), y0[batch].min(), y1[batch].max())
                at = _ragged(arc_first[batch], arc_count[batch])
                source = np.repeat(np.arange(len(batch)), arc_count[batch])
                src, reached, dist = _bounded_dijkstra(
                    adj, sub, source, arc_node[at], arc_m[at], local, limit_m=limit_m, keep=has_home
                )
                # every home row with an end among the reached nodes
                cnt = end_start[reached + 1] - end_start[reached]
                end = _ragged(end_start[reached], cnt)
                d = end_leg[end] + (np.repeat(dist, cnt) + end_add[end])
                ok = d <= limit_m
                h, f, d = end_item[end[ok]], np.repeat(src, cnt)[ok], d[ok]
                # one pair per (home, facility) of the batch: the better end, the best row
                key = h * len(batch) + f
                o = np.lexsort((d, key))
                o = o[run_starts(key[o])]
                homes_l.append(h[o])
                facs_l.append(fac_ids[batch][f[o]])
                dists_l.append(d[o])

    home = np.concatenate(homes_l)
    fac = np.concatenate(facs_l)
    dist = np.concatenate(dists_l)
    # one pair per (home, facility): the best of its rows, ends and access points (the searches
    # gave one each already; a home on a facility's own edge may also walk along it)
    key = home * max(n_fac, 1) + fac
    o = np.lexsort((dist, key))
    o = o[run_starts(key[o])]
    home, fac, dist = home[o], fac[o], dist[o]
    o = np.lexsort((fac, dist, home))
    return Pairs(home[o], fac[o], dist[o], n_homes, n_fac, unsnapped, float(limit_m))


def _along_pairs(
    network: Network, demand: Snaps, facilities: Snaps, owner: np.ndarray, *, limit_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(home, facility, distance) of each home row and facility access point on the same edge,
    walking along it: ``home leg + (facility leg + distance to its [lo, hi] span)``, the same
    floats as `coverage.demand_distances`."""
    order, src_edges, first, count = facilities.by_edge
    empty = np.array([], dtype=np.int64)
    if not len(src_edges):
        return empty, empty, empty.astype(float)
    rows = np.flatnonzero(facilities.holds(len(network.edges))[demand.edge])
    at = np.searchsorted(src_edges, demand.edge[rows])
    many = count[at]
    k = order[_ragged(first[at], many)]  # every facility row on each home row's edge
    r = np.repeat(rows, many)
    o = demand.lo_m[r]
    a = facilities.leg_m[k] + np.maximum(
        0.0, np.maximum(facilities.lo_m[k] - o, o - facilities.hi_m[k])
    )
    d = demand.leg_m[r] + a
    ok = d <= limit_m
    return demand.item[r[ok]], owner[facilities.item[k[ok]]], d[ok]


def _ragged(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The positions ``start[i], start[i] + 1, …, start[i] + count[i] − 1`` of every i, in order."""
    total = int(count.sum())
    if total == 0:
        return np.array([], dtype=np.int64)
    ends = np.cumsum(count)
    return np.repeat(start - (ends - count), count) + np.arange(total)


def _bounded_dijkstra(
    adj: Adjacency,
    sub: np.ndarray,
    source: np.ndarray,
    node: np.ndarray,
    arc_m: np.ndarray,
    local: np.ndarray,
    *,
    limit_m: float,
    keep: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dijkstra from several virtual sources at once, on the subgraph of the nodes `sub`, cut off
    at `limit_m`: source ``source[i]`` has an arc of `arc_m` ``[i]`` to node ``node[i]`` (arcs
    sorted by source, at most one per source and node; their nodes among `sub`).

    Returns ``(source, node, distance)`` of every node each source reaches among those `keep`
    marks (a boolean per network node). `local` is a scratch array of −1, one per network node,
    left as it was found.
    """
    m, k = len(sub), int(source.max()) + 1
    local[sub] = np.arange(m)
    try:
        cnt = adj.indptr[sub + 1] - adj.indptr[sub]
        at = _ragged(adj.indptr[sub], cnt)
        col = local[adj.indices[at]]
        target = local[node]
    finally:
        local[sub] = -1
    if (target < 0).any():
        raise RuntimeError("a facility's access node lies outside its search box")
    inside = col >= 0
    row_cnt = np.bincount(np.repeat(np.arange(m), cnt)[inside], minlength=m)
    # rows 0 … m−1: the subgraph's nodes; rows m … m+k−1: the virtual sources (no arc back)
    indptr = np.zeros(m + k + 1, dtype=np.int64)
    np.cumsum(row_cnt, out=indptr[1 : m + 1])
    indptr[m + 1 :] = indptr[m] + np.cumsum(np.bincount(source, minlength=k))
    indices = np.concatenate([col[inside], target]).astype(np.int32)
    data = np.concatenate([adj.weight_m[at[inside]], arc_m])
    graph = scipy.sparse.csr_array((data, indices, indptr), shape=(m + k, m + k))
    dist = scipy.sparse.csgraph.dijkstra(
        graph, directed=True, indices=np.arange(m, m + k), limit=limit_m
    )
    wanted = np.flatnonzero(keep[sub])
    dist = dist[:, wanted]
    src, found = np.nonzero(np.isfinite(dist))
    return src, sub[wanted[found]], np.asarray(dist[src, found])


@dataclass(frozen=True)
class _Grid:
    """The nodes bucketed in square cells, in row-major cell order: the nodes of a box are one
    contiguous run per row of cells (array slices, no object per node)."""

    xy: np.ndarray
    x0: float
    y0: float
    cell_m: float
    n_cols: int
    n_rows: int
    order: np.ndarray
    start: np.ndarray

    @classmethod
    def of(cls, xy: np.ndarray, *, cell_m: float, max_cells: int) -> _Grid:
        ok = np.isfinite(xy).all(axis=1)
        lo = xy[ok].min(axis=0) if ok.any() else np.zeros(2)
        hi = xy[ok].max(axis=0) if ok.any() else np.zeros(2)
        # cells no smaller than the area allows (a region-wide network keeps a small table)
        cell_m = max(cell_m, float(np.sqrt(np.prod(hi - lo + 1.0) / max_cells)))
        n_cols, n_rows = (np.floor((hi - lo) / cell_m).astype(np.int64) + 1).tolist()
        col = np.floor((xy[ok, 0] - lo[0]) / cell_m).astype(np.int64)
        row = np.floor((xy[ok, 1] - lo[1]) / cell_m).astype(np.int64)
        key = row * n_cols + col
        o = np.argsort(key, kind="stable")
        start = np.zeros(n_cols * n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(key, minlength=n_cols * n_rows), out=start[1:])
        return cls(
            xy, float(lo[0]), float(lo[1]), cell_m, n_cols, n_rows, np.flatnonzero(ok)[o], start
        )

    def box(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """Every node in the cells the box ``[x0, x1] × [y0, y1]`` overlaps (a superset of the
        nodes inside it)."""
        c0, c1 = self._cells(x0, x1, self.x0, self.n_cols)
        r0, r1 = self._cells(y0, y1, self.y0, self.n_rows)
        rows = np.arange(r0, r1 + 1) * self.n_cols
        a, b = self.start[rows + c0], self.start[rows + c1 + 1]
        out: np.ndarray = self.order[_ragged(a, b - a)]
        return out

    def _cells(self, lo: float, hi: float, origin: float, n: int) -> tuple[int, int]:
        first = int(np.clip(np.floor((lo - origin) / self.cell_m), 0, n - 1))
        last = int(np.clip(np.floor((hi - origin) / self.cell_m), 0, n - 1))
        return first, last


def node_xy(network: Network) -> np.ndarray:
    """Each node's coordinates, an ``(n_nodes, 2)`` array: where its edges' geometries end.

    Raises
    ------
    RuntimeError
        When an edge is shorter than the straight line between its nodes (a geometry that does not
        run from its ``u`` node to its ``v`` node): the bounded search would be unsound.
    """
    e = network.edges
    geoms = e.geometry.to_numpy()
    xy = np.full((network.n_nodes, 2), np.nan)
    if len(geoms):
        # each line's first and last vertex, from one flat array of vertices (no point objects)
        coords = shapely.get_coordinates(geoms)
        count = shapely.get_num_coordinates(geoms)
        end = np.cumsum(count)
        start = end - count
        xy[e["u_idx"].to_numpy()] = coords[start]
        xy[e["v_idx"].to_numpy()] = coords[end - 1]
    adj = network.adjacency
    rows = np.repeat(np.arange(adj.n), np.diff(adj.indptr))
    chord = np.hypot(*(xy[rows] - xy[adj.indices]).T)
    if np.any(adj.weight_m < chord - _RADIUS_PAD_M):
        raise RuntimeError(
            "an edge is shorter than the straight line between its nodes: its geometry does not "
            "run from its u node to its v node, and the bounded search cannot be trusted"
        )
    return xy


def nearest_facilities(
    pairs: Pairs, *, k: int = 3, threshold_m: float | np.ndarray
) -> pd.DataFrame:
    """The nearest `k` distinct facilities of each home and how many lie within `threshold_m`.

    Parameters
    ----------
    pairs
        `facility_pairs` of the homes and facilities.
    k
        How many nearest facilities to report.
    threshold_m
        The standard's walking distance, a scalar or one value per home (context radii), at most
        ``pairs.limit_m``.

    Returns
    -------
    pandas.DataFrame
        One row per home, in input order: ``dist_1_m … dist_k_m`` (NaN where the home has fewer
        facilities within ``pairs.limit_m``), ``facility_1 … facility_k`` (the facilities as
        ``Pairs.facility`` names them, <NA> there), ``n_within`` (distinct facilities within the
        threshold; <NA> for unsnapped homes, which were not measured) and ``snapped``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    n = pairs.n_homes
    thr = np.broadcast_to(np.asarray(threshold_m, dtype=float), (n,))
    if n and np.nanmax(thr) > pairs.limit_m:
        raise ValueError(
            f"threshold_m ({np.nanmax(thr):g}) must be at most the pairs' search limit "
            f"({pairs.limit_m:g}): search with a larger limit_m"
        )
    home, fac, dist = pairs.home, pairs.facility, pairs.dist_m
    first = np.flatnonzero(run_starts(home)) if len(home) else np.array([], dtype=np.int64)
    rank = np.arange(len(home)) - np.repeat(first, np.diff(np.append(first, len(home))))
    out: dict[str, object] = {}
    top = rank < k
    for j in range(k):
        at = top & (rank == j)
        d = np.full(n, np.nan)
        d[home[at]] = dist[at]
        out[f"dist_{j + 1}_m"] = d
    for j in range(k):
        at = top & (rank == j)
        f = pd.array(np.full(n, pd.NA), dtype="Int64")
        f[home[at]] = fac[at]
        out[f"facility_{j + 1}"] = f
    within = dist <= thr[home] if len(home) else np.array([], dtype=bool)
    count = pd.array(np.bincount(home[within], minlength=n), dtype="Int64")
    count[pairs.unsnapped] = pd.NA
    out["n_within"] = count
    snapped = np.ones(n, dtype=bool)
    snapped[pairs.unsnapped] = False
    out["snapped"] = snapped
    return pd.DataFrame(out)
