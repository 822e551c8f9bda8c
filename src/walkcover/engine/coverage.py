"""The coverage engine: snap onto street edges, one multi-source shortest-path pass per standard.

Distance from a demand unit to the nearest facility = the demand unit's access leg to its street
+ the walk along the street network + the facility's access leg. Both ends sit *on edges*, at an
offset from the edge's first node, so two places on the same segment get their true separation.

All facilities of a standard are joined to one virtual source node: a facility on edge (u, v) at
offsets [lo, hi] (a point has lo = hi; a park crossed by a path spans an interval) with access leg
``a`` adds arcs source→u of ``a + lo`` and source→v of ``a + length − hi``. One Dijkstra pass from that
node (scipy.sparse.csgraph, cut off at ``limit_m``) gives every node its distance to the nearest facility.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy
import shapely

from walkcover.engine.network import SAMPLE_SPACING_M, EdgeSamples, Network
from walkcover.engine.snap_store import stored

#: Why a demand unit has the distance it has; every NaN distance carries one of the last four.
STATUS_COVERED = "covered"
STATUS_BEYOND = "beyond_threshold"
STATUS_BEYOND_LIMIT = "beyond_search_limit"
STATUS_UNREACHABLE = "unreachable"
STATUS_UNSNAPPED = "unsnapped"
STATUS_NO_FACILITIES = "no_facilities"


#: How much farther than its nearest point a stretch of street may be and still line a polygon.
_SPAN_TOL_M = 1e-6


@dataclass(frozen=True)
class Snaps:
    """Where items sit on the network. One row per (item, edge) attachment.

    ``item`` is the position of the input geometry; ``lo_m``/``hi_m`` the offsets along the edge from
    its ``u`` end (equal for a point); ``leg_m`` the straight access leg from the item to the edge.
    Items with no edge within the snap distance are listed in ``unsnapped``.
    """

    item: np.ndarray
    edge: np.ndarray
    lo_m: np.ndarray
    hi_m: np.ndarray
    leg_m: np.ndarray
    unsnapped: np.ndarray
    n_items: int

    @functools.cached_property
    def by_edge(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows grouped by edge, made once: ``(order, edges, first, count)``: the rows in edge
        order, each edge that holds a row (sorted), where its rows start in that order, how many."""
        order = np.argsort(self.edge, kind="stable")
        edges, first, count = np.unique(self.edge[order], return_index=True, return_counts=True)
        return order, edges, first, count

    def holds(self, n_edges: int) -> np.ndarray:
        """Which of a network's `n_edges` edges hold a row (a boolean table, made once)."""
        tables = self.__dict__.setdefault("_holds", {})
        if n_edges not in tables:
            table = np.zeros(n_edges, dtype=bool)
            table[self.by_edge[1]] = True
            tables[n_edges] = table
        out: np.ndarray = tables[n_edges]
        return out

    def edge_ends(self, network: Network) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's edge length and its ``u`` and ``v`` nodes on `network`, gathered once:
        every standard's distances (`demand_distances`) read the same rows of the edge table,
        and on a city the gathers took most of each call."""
        cached = self.__dict__.get("_edge_ends")
        if cached is None or cached[0] is not network:
            e = network.edges
            ends = (
                e["length_m"].to_numpy()[self.edge],
                e["u_idx"].to_numpy()[self.edge],
                e["v_idx"].to_numpy()[self.edge],
            )
            cached = (network, ends)
            self.__dict__["_edge_ends"] = cached
        out: tuple[np.ndarray, np.ndarray, np.ndarray] = cached[1]
        return out

    def take(self, positions: np.ndarray) -> Snaps:
        """The snaps of the items at `positions` (in that order), renumbered from 0: the same as
        snapping those items alone, without snapping again."""
        positions = np.asarray(positions, dtype=np.int64)
        new = np.full(self.n_items, -1, dtype=np.int64)
        new[positions] = np.arange(len(positions))
        keep = new[self.item] >= 0
        order = np.argsort(new[self.item[keep]], kind="stable")
        unsnapped = new[self.unsnapped]
        return Snaps(
            new[self.item[keep]][order],
            self.edge[keep][order],
            self.lo_m[keep][order],
            self.hi_m[keep][order],
            self.leg_m[keep][order],
            np.sort(unsnapped[unsnapped >= 0]),
            len(positions),
        )


def run_starts(*keys: np.ndarray) -> np.ndarray:
    """For rows sorted by `keys`, True where a run of equal keys starts (the first row of each
    item, or of each (item, edge) pair)."""
    n = len(keys[0])
    out = np.ones(n, dtype=bool)
    if n > 1:
        out[1:] = np.any([k[1:] != k[:-1] for k in keys], axis=0)
    return out


#: From twice this many geometries on, `snap` (called from the main thread) snaps them in
#: `SNAP_THREADS` runs at once: the R-tree queries and shapely's distances release the GIL.
SNAP_CHUNK_MIN = 20_000
SNAP_THREADS = min(2, os.cpu_count() or 1)
#: From this many points on, `snap` finds nearest edges with a KD-tree (`nearest_edges`).
KDTREE_MIN_POINTS = 20_000
#: The most samples asked of the KD-tree for one point before the R-tree decides (8, 16, 32, 64, 128).
KDTREE_MAX_K = 128
#: Points per chunk of the KD-tree search: its (points × samples) temporaries stay in the CPU's
#: caches (500,000 lattice corners of L: 2.1 s in chunks of 250,000, 1.5 s in chunks of 65,536),
#: seven 8-byte arrays of them at most (`_kdtree_pass`): about 30 MB a chunk at 8 samples.
NEAREST_CHUNK_POINTS = 65_536


def nearest_edges(
    network: Network,
    xy: np.ndarray,
    *,
    max_snap_m: float,
    k: int = 8,
    chunk: int = NEAREST_CHUNK_POINTS,
) -> tuple[np.ndarray, np.ndarray]:
    """For many points (an ``(n, 2)`` array), the nearest snappable edge within `max_snap_m`:
    the answer of the edge R-tree's ``query_nearest``, found with array operations.

    The edges are sampled every ``SAMPLE_SPACING_M`` along their segments (`Network.edge_samples`,
    built once per network) and the samples put in a ``scipy.spatial.cKDTree``. A point's nearest
    edge has a sample within (distance to its nearest sample) + half the spacing, so the segments
    of its `k` nearest samples hold it whenever the `k`-th sample is farther than that; the exact
    point-to-segment distance picks among them (ties: the lowest edge). The few points whose `k`
    samples are all that near (dense junctions) go to the R-tree. Points go in chunks of `chunk`.

    Returns
    -------
    (positions, edges)
        Positions in `xy` of the points snapped, and their edges as positions among the
        snappable edges (as ``STRtree.query_nearest`` returns them).
    """
    found, edge, _, _ = _nearest(network, xy, max_snap_m=max_snap_m, k=k, chunk=chunk)
    return found, edge


def snap_xy(network: Network, xy: np.ndarray, *, max_snap_m: float, tie_m: float = 0.0) -> Snaps:
    """`snap` for points given as coordinates (an ``(n, 2)`` array, e.g. a lattice), without making
    a geometry per point: the nearest edge (and, with `tie_m`, the equally near ones), the access
    leg and the offset along the edge come straight from `nearest_edges`' exact point-to-segment
    search. Taken from the network's snap store where it has one (`snap_store.stored`)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return stored(
        network,
        "xy",
        (max_snap_m, tie_m),
        xy,
        lambda: _snap_xy(network, xy, max_snap_m=max_snap_m, tie_m=tie_m),
    )


def _snap_xy(network: Network, xy: np.ndarray, *, max_snap_m: float, tie_m: float) -> Snaps:
    n = len(xy)
    if n == 0 or len(network.snappable) == 0:
        empty = np.array([], dtype=np.int64)
        z = empty.astype(float)
        return Snaps(empty, empty, z, z, z, np.arange(n), n)
    found, edge, leg, lo = _nearest(
        network, xy, max_snap_m=max_snap_m, k=8, chunk=NEAREST_CHUNK_POINTS, tie_m=tie_m
    )
    snapped = np.zeros(n, dtype=bool)
    snapped[found] = True
    return Snaps(found, network.snappable[edge], lo, lo.copy(), leg, np.flatnonzero(~snapped), n)


def _nearest(
    network: Network,
    xy: np.ndarray,
    *,
    max_snap_m: float,
    k: int,
    chunk: int,
    tie_m: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions snapped, their snappable-edge positions, legs and offsets along the edges; rows
    sorted by position, leg and edge."""
    parts = [
        _nearest_chunk(network, xy[s : s + chunk], max_snap_m=max_snap_m, k=k, tie_m=tie_m)
        for s in range(0, len(xy), chunk)
    ]
    if not parts:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty.astype(float), empty.astype(float)
    starts = range(0, len(xy), chunk)
    return (
        np.concatenate([p[0] + s for p, s in zip(parts, starts)]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
    )


def _kdtree_pass(
    es: EdgeSamples, xy: np.ndarray, *, max_snap_m: float, k: int, tie_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One KD-tree search of `k` samples a point: the rows ``(found, edge, leg, lo)`` of the points
    it decides, and the points it leaves undecided (``rest``).

    Its (points × k) arrays are few and reused in place (the float64 distances, offsets and
    indices, computed in the order of the plain expressions, so the same floats to the last bit).
    """
    spacing = SAMPLE_SPACING_M
    n_samples = len(es.segment)
    n = len(xy)
    no_edge = np.iinfo(np.int64).max
    # every core (the query releases the GIL; two writing threads simply share them)
    d, i = es.tree.query(xy, k=k, distance_upper_bound=max_snap_m + spacing, workers=-1)
    d, i = d.reshape(n, k), i.reshape(n, k)
    have = np.isfinite(d[:, 0])
    far = d[:, -1].copy()  # the k-th sample's distance
    del d
    miss = i >= n_samples  # fewer than k samples in range: the missing ones are masked below
    seg = es.segment.take(i, mode="clip")
    del i
    # exact distance from each point to each candidate segment, one (points × k) array per
    # coordinate (gathers of flat arrays, no (points × k × 2) temporaries)
    px = es.x.take(seg)
    np.subtract(xy[:, 0:1], px, out=px)
    py = es.y.take(seg)
    np.subtract(xy[:, 1:2], py, out=py)
    sx, sy = es.dx.take(seg), es.dy.take(seg)
    tt = px * sx
    tmp = py * sy
    tt += tmp
    es.len2.take(seg, out=tmp)
    tmp[~(tmp > 0)] = 1.0  # a segment of no length: t = 0
    tt /= tmp
    del tmp
    np.clip(tt, 0.0, 1.0, out=tt)
    px -= np.multiply(sx, tt, out=sx)
    py -= np.multiply(sy, tt, out=sy)
    del sx, sy
    dist = np.hypot(px, py, out=px)
    del py
    dist[miss] = np.inf
    cand_edge = es.edge.take(seg)
    cand_edge[miss] = no_edge
    best_d = dist.min(axis=1)
    # Complete when the k-th sample lies beyond the radius that can hold the nearest edge (and
    # every edge within tie_m of it): each such edge has a sample within its distance + spacing/2,
    # and the nearest is no farther than the nearest candidate segment (`best_d`, exact: it
    # settles more points than the nearest sample's distance would, whose segment it measures).
    complete = (far > best_d + spacing / 2 + tie_m + 1e-9) | ~have
    ok = have & complete & (best_d <= max_snap_m)
    if tie_m <= 0:  # the nearest edge only; among exact ties the lowest (no sort: row minima)
        r = np.flatnonzero(ok)
        ce = cand_edge[r]
        ce[dist[r] != best_d[r, None]] = no_edge
        c = np.argmin(ce, axis=1)
        del ce
    else:  # every edge within reach, each at its nearest segment
        reach = np.minimum(best_d + tie_m, max_snap_m)
        r, c = np.nonzero(ok[:, None] & ~miss & (dist <= reach[:, None]))
        de, ee = dist[r, c], cand_edge[r, c]
        o = np.lexsort((de, ee, r))
        o = o[run_starts(r[o], ee[o])]
        r, c = r[o], c[o]
    at = seg[r, c]
    lo = es.offset_m[at] + tt[r, c] * np.sqrt(es.len2[at])
    return r, cand_edge[r, c], dist[r, c], lo, np.flatnonzero(have & ~complete)


def _nearest_chunk(
    network: Network, xy: np.ndarray, *, max_snap_m: float, k: int, tie_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    es = network.edge_samples
    kk = min(k, len(es.segment))
    empty = np.array([], dtype=np.int64)
    if kk == 0 or not len(xy):
        return empty, empty, empty.astype(float), empty.astype(float)
    # the KD-tree pass returns its rows only: its (points × k) arrays are let go before the
    # undecided points are searched again
    found, edge, leg, lo, rest = _kdtree_pass(es, xy, max_snap_m=max_snap_m, k=kk, tie_m=tie_m)
    if not len(rest) and tie_m <= 0:  # one row per point, in point order already
        return found, edge, leg, lo
    if len(rest) and kk < min(KDTREE_MAX_K, len(es.segment)):
        # dense junctions and footway meshes: ask the KD-tree for twice as many samples (exact by
        # the same test), several times faster than the R-tree for these points. Doubling, not
        # quadrupling: nine in ten points left at 8 are settled at 16 (a lattice of L: 280,000
        # and 29,000), and 32 samples a point cost twice 16 for the nine that did not need them.
        # (In chunks holding as many point × sample pairs as the first pass: memory stays flat.)
        more = _nearest(
            network,
            xy[rest],
            max_snap_m=max_snap_m,
            k=2 * kk,
            chunk=max(1, len(xy) * kk // (2 * kk)),
            tie_m=tie_m,
        )
        found = np.concatenate([found, rest[more[0]]])
        edge = np.concatenate([edge, more[1]])
        leg = np.concatenate([leg, more[2]])
        lo = np.concatenate([lo, more[3]])
        # one row per point (no ties): the point order alone, a radix sort, not three keys
        order = np.argsort(found, kind="stable") if tie_m <= 0 else np.lexsort((edge, leg, found))
        return found[order], edge[order].astype(np.int64), leg[order], lo[order]
    if len(rest):  # still undecided: the R-tree, and shapely for the leg and the offset
        pts = shapely.points(xy[rest])
        pairs = _nearest_with_ties(network, pts, max_snap_m=max_snap_m, tie_m=tie_m)
        lines = network.edges.geometry.to_numpy()[network.snappable[pairs[1]]]
        g = pts[pairs[0]]
        near = shapely.get_point(shapely.shortest_line(g, lines), 1)
        found = np.concatenate([found, rest[pairs[0]]])
        edge = np.concatenate([edge, pairs[1]])
        leg = np.concatenate([leg, pairs[2]])
        lo = np.concatenate([lo, shapely.line_locate_point(lines, near)])
    order = np.lexsort((edge, leg, found))
    return found[order], edge[order].astype(np.int64), leg[order], lo[order]


def snap(
    network: Network,
    geoms: gpd.GeoSeries | np.ndarray,
    *,
    max_snap_m: float,
    reach_polygon_edges: bool = False,
    polygon_reach_m: float = 25.0,
    tie_m: float = 0.0,
) -> Snaps:
    """Snap geometries onto the nearest street edge within `max_snap_m`.

    Parameters
    ----------
    network
        The walk network (same CRS as `geoms`).
    geoms
        Points or polygons, in metres.
    max_snap_m
        Largest allowed access leg; farther items are reported in ``unsnapped``.
    reach_polygon_edges
        For facilities: a polygon is reached at its edge, not its centroid, from every street within
        `polygon_reach_m` of it (else from its nearest street within `max_snap_m`); a street that
        runs into it is inside it over the whole crossing.
    polygon_reach_m
        How close a street must pass a polygon facility to count as one of its access streets.
    tie_m
        Attach each point or home (not a facility polygon) to every edge within `tie_m` of as near
        as its nearest one, not to whichever of equally near edges the index returns first: a home
        crossed by two footways, or midway between two streets, walks from the better one
        (`demand_distances` takes the best attachment). 0 keeps the single nearest edge.

    Returns
    -------
    Snaps
        Rows sorted by item, then access leg, then edge: an item's first row is its nearest edge.
        Taken from the network's snap store where it has one (`snap_store.stored`).
    """
    arr = np.asarray(geoms.to_numpy() if hasattr(geoms, "to_numpy") else geoms, dtype=object)
    return stored(
        network,
        "geometries",
        (max_snap_m, reach_polygon_edges, polygon_reach_m, tie_m),
        arr,
        lambda: _snap(
            network,
            arr,
            max_snap_m=max_snap_m,
            reach_polygon_edges=reach_polygon_edges,
            polygon_reach_m=polygon_reach_m,
            tie_m=tie_m,
        ),
    )


def _snap(
    network: Network,
    arr: np.ndarray,
    *,
    max_snap_m: float,
    reach_polygon_edges: bool,
    polygon_reach_m: float,
    tie_m: float,
) -> Snaps:
    """`snap` of the geometries `arr`, made."""
    n = len(arr)
    if n == 0 or len(network.snappable) == 0:
        empty = np.array([], dtype=np.int64)
        return Snaps(
            empty,
            empty,
            empty.astype(float),
            empty.astype(float),
            empty.astype(float),
            np.arange(n),
            n,
        )
    if (
        n >= 2 * SNAP_CHUNK_MIN
        and SNAP_THREADS > 1
        and threading.current_thread() is threading.main_thread()
    ):
        # many homes: halves snapped on threads (the R-tree and shapely release the GIL)
        parts = np.array_split(np.arange(n), SNAP_THREADS)
        with ThreadPoolExecutor(max_workers=SNAP_THREADS) as pool:
            done = list(
                pool.map(
                    lambda at: _snap(
                        network,
                        arr[at],
                        max_snap_m=max_snap_m,
                        reach_polygon_edges=reach_polygon_edges,
                        polygon_reach_m=polygon_reach_m,
                        tie_m=tie_m,
                    ),
                    parts,
                )
            )
        return _joined(done)
    kinds = shapely.get_type_id(arr)
    if n >= KDTREE_MIN_POINTS and not reach_polygon_edges and (kinds == 0).all():
        # many points (a grid of land cells): the KD-tree search, no geometry work per point
        return _snap_xy(network, shapely.get_coordinates(arr), max_snap_m=max_snap_m, tie_m=tie_m)
    edge_geoms = network.edges.geometry.to_numpy()
    is_area = kinds >= 3  # Polygon, MultiPolygon and collections
    # each attachment's access leg comes with it: `shapely.distance` of the pair, measured once
    items, edges, legs = [], [], []
    # Points and demand: the single nearest edge.
    single = ~is_area if reach_polygon_edges else np.ones(n, dtype=bool)
    if single.any():
        idx = np.flatnonzero(single)
        at, on, dist = _nearest_with_ties(
            network, arr[idx], max_snap_m=max_snap_m, tie_m=tie_m, bounded=True
        )
        items.append(idx[at])
        edges.append(network.snappable[on])
        legs.append(dist)
    if reach_polygon_edges and is_area.any():
        idx = np.flatnonzero(is_area)
        # Every street that runs along (within polygon_reach_m) or into the area gives access ...
        at, on, dist = _within(network.tree, arr[idx], min(polygon_reach_m, max_snap_m))
        # ... and an area with no street that close is reached from its nearest street.
        alone = np.setdiff1d(np.arange(len(idx)), at)
        far = network.tree.query_nearest(
            arr[idx[alone]], max_distance=max_snap_m, all_matches=False
        )
        far_edge = network.snappable[far[1]]
        items += [idx[at], idx[alone[far[0]]]]
        edges += [network.snappable[on], far_edge]
        legs += [dist, shapely.distance(arr[idx[alone[far[0]]]], edge_geoms[far_edge])]
    item = np.concatenate(items) if items else np.array([], dtype=np.int64)
    edge = np.concatenate(edges) if edges else np.array([], dtype=np.int64)
    leg = np.concatenate(legs) if legs else np.array([], dtype=float)
    g, e = arr[item], edge_geoms[edge]
    area_item = is_area[item]
    # A point is located where it projects onto its street (the street's nearest point to it).
    lo = np.empty(len(item))
    pt = ~area_item
    lo[pt] = shapely.line_locate_point(e[pt], g[pt])
    if not reach_polygon_edges:
        # A home's door is taken opposite its middle, not at whichever corner happens to be nearest.
        lo[area_item] = shapely.line_locate_point(e[area_item], shapely.centroid(g[area_item]))
    hi = lo.copy()
    if reach_polygon_edges:
        # A polygon is reached anywhere along the stretch of street that runs at its nearest
        # distance: all of a park's side that lines the street, all of a path's crossing inside it.
        # That stretch holds the street's nearest point to the polygon (a nearest pair of two
        # outlines has a vertex on one of them, and every such vertex is a candidate).
        k = np.flatnonzero(area_item)
        if len(k):
            lo[k], hi[k] = np.inf, -np.inf
            at, offs = _span_points(g[k], e[k], leg[k], item[k])
            np.minimum.at(lo, k[at], offs)
            np.maximum.at(hi, k[at], offs)
            lost = k[~np.isfinite(lo[k])]  # none, but never a stretch from infinity
            if len(lost):
                near = shapely.get_point(shapely.shortest_line(g[lost], e[lost]), 1)
                lo[lost] = hi[lost] = shapely.line_locate_point(e[lost], near)
    unsnapped = np.setdiff1d(np.arange(n), item)
    order = np.lexsort((edge, leg, item))
    return Snaps(item[order], edge[order], lo[order], hi[order], leg[order], unsnapped, n)


def _joined(parts: list[Snaps]) -> Snaps:
    """The snaps of consecutive runs of items, snapped apart, as one (items renumbered on)."""
    start = np.cumsum([0] + [p.n_items for p in parts])
    return Snaps(
        np.concatenate([p.item + s for p, s in zip(parts, start)]),
        np.concatenate([p.edge for p in parts]),
        np.concatenate([p.lo_m for p in parts]),
        np.concatenate([p.hi_m for p in parts]),
        np.concatenate([p.leg_m for p in parts]),
        np.concatenate([p.unsnapped + s for p, s in zip(parts, start)]),
        int(start[-1]),
    )


def _span_points(
    areas: np.ndarray, streets: np.ndarray, leg: np.ndarray, owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points of each street within its leg (+ `_SPAN_TOL_M`) of its area, as (pair, offset along
    the street): the first and last of them bound the stretch the area is reached from.

    A street that touches or enters its area (leg 0): the ends of its cut through the area. A street
    that passes at a distance: the stretch at that nearest distance is bounded by the street's own
    vertices or by the projections of the area's vertices at that distance (two straight pieces at
    their nearest are either parallel, with a vertex at each end of the shared stretch, or meet at
    a single point), so those are the only candidates: found through a tree of the areas' vertices,
    with no buffer of an area per street (exact, where a buffer's rounded corners are chords).
    `owner` says which area each pair's area is (pairs of one area share its vertices).
    """
    ats, offs = [], []
    cross = np.flatnonzero(leg == 0)
    if len(cross):
        # Each area prepared once, on a copy: GEOS builds a prepared geometry's indexes on first
        # use, which is not thread-safe, and a park may be a facility of two standards measured
        # on two threads at once (their shared geometries are only ever read).
        _, first, which = np.unique(owner[cross], return_index=True, return_inverse=True)
        private = shapely.from_wkb(shapely.to_wkb(areas[cross][first]))
        shapely.prepare(private)
        # a street wholly inside its area (a path through a park): all of it, with no overlay
        inside = shapely.contains_properly(private[which], streets[cross])
        ats += [cross[inside], cross[inside]]
        offs += [np.zeros(int(inside.sum())), shapely.length(streets[cross[inside]])]
        cut = cross[~inside]
        part = shapely.intersection(streets[cut], areas[cut])
        xy, at = shapely.get_coordinates(part, return_index=True)
        ats.append(cut[at])
        offs.append(shapely.line_locate_point(streets[cut][at], shapely.points(xy)))
    along = np.flatnonzero(leg > 0)
    if len(along):
        e, g, reach = streets[along], areas[along], leg[along] + _SPAN_TOL_M
        # the street's own vertices that close to the area
        exy, eat = shapely.get_coordinates(e, return_index=True)
        ep = shapely.points(exy)
        ok = shapely.distance(ep, g[eat]) <= reach[eat]
        ats.append(along[eat[ok]])
        offs.append(shapely.line_locate_point(e[eat[ok]], ep[ok]))
        # the area's vertices that close to the street, projected onto it
        _, first, which = np.unique(owner[along], return_index=True, return_inverse=True)
        vxy, vat = shapely.get_coordinates(g[first], return_index=True)
        vp = shapely.points(vxy)
        # (the candidates near each street, then those of its own area, then their distances:
        # GEOS's within-distance test cost several times as much, see `_within`)
        pair, vert = _boxes_near(shapely.STRtree(vp), e, reach)
        mine = vat[vert] == which[pair]
        pair, vert = pair[mine], vert[mine]
        close = shapely.distance(e[pair], vp[vert]) <= reach[pair]
        pair, vert = pair[close], vert[close]
        ats.append(along[pair])
        offs.append(shapely.line_locate_point(e[pair], vp[vert]))
    if not ats:
        return np.array([], dtype=np.int64), np.array([], dtype=float)
    return np.concatenate(ats), np.concatenate(offs)


def _within(
    tree: shapely.STRtree, geoms: np.ndarray, distance: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of ``tree.query(geoms, predicate="dwithin", distance=distance)`` (`distance` a
    scalar or one per geometry), with their exact distances: ``(positions in geoms, positions
    in the tree, distance)``.

    GEOS's prepared within-distance test cost several times an exact distance (a park's
    hundreds of footways on L: 2 s for 500,000 pairs, the distances of the same pairs 0.9 s), and
    every caller measured those distances next. So the tree is asked only for the items whose
    boxes meet each geometry's box grown by `distance` (a hair more: never fewer than the
    predicate's candidates), and their distances (`shapely.distance`) decide: the same pairs, in
    the tree's order.
    """
    d = np.broadcast_to(np.asarray(distance, dtype=float), (len(geoms),))
    a, t = _boxes_near(tree, geoms, d)
    dist = shapely.distance(geoms[a], tree.geometries[t])
    keep = dist <= d[a]
    return a[keep], t[keep], dist[keep]


def _boxes_near(
    tree: shapely.STRtree, geoms: np.ndarray, distance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(positions in geoms, positions in the tree)`` of the tree's items whose boxes meet each
    geometry's box grown by its `distance` (and a micrometre): every pair within that distance,
    and more (`_within` measures them)."""
    b = shapely.bounds(geoms)
    at = np.flatnonzero(~np.isnan(b[:, 0]))  # an empty geometry is near nothing
    if not len(at):
        empty = np.array([], dtype=np.int64)
        return empty, empty
    pad = distance[at] + 1e-6
    lo = np.column_stack([b[at, 0] - pad, b[at, 1] - pad])
    hi = np.column_stack([b[at, 2] + pad, b[at, 3] + pad])
    # each box as its diagonal (the same extent, made three times as fast as a polygon)
    found = tree.query(shapely.linestrings(np.stack([lo, hi], axis=1)))
    return at[found[0]], found[1]


def _nearest_with_ties(
    network: Network, geoms: np.ndarray, *, max_snap_m: float, tie_m: float, bounded: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(positions in geoms, snappable-edge positions, distances)`` of each geometry's nearest
    edge within `max_snap_m` and, with `tie_m` > 0, of every other edge within `tie_m` of that
    distance (the distances are ``shapely.distance`` of each pair: callers need not measure them
    again).

    With `bounded` (and `tie_m` > 0), the R-tree's nearest search is replaced by a bound: a
    geometry is no farther from the streets than from the street nearest a point inside it (found
    by the KD-tree search), so every street within that bound (+ `tie_m`) is measured exactly and
    those within `tie_m` of the nearest kept: the same pairs, without a nearest search per home.
    """
    lines = network.tree.geometries  # the snappable edges' lines, as the tree holds them
    if bounded and tie_m > 0 and len(geoms):
        inner = shapely.get_coordinates(shapely.point_on_surface(geoms))
        at, edge, _, _ = _nearest(
            network, inner, max_snap_m=max_snap_m, k=8, chunk=NEAREST_CHUNK_POINTS
        )
        upper = np.full(len(geoms), float(max_snap_m))
        upper[at] = np.minimum(shapely.distance(geoms[at], lines[edge]), max_snap_m)
        g, e, dist = _within(network.tree, geoms, np.minimum(upper + tie_m, max_snap_m))
        best = np.full(len(geoms), np.inf)
        np.minimum.at(best, g, dist)
        keep = dist <= np.minimum(best[g] + tie_m, max_snap_m)
        return g[keep], e[keep], dist[keep]
    pairs = network.tree.query_nearest(geoms, max_distance=max_snap_m, all_matches=False)
    got = geoms[pairs[0]]
    dist = shapely.distance(got, lines[pairs[1]])
    if tie_m <= 0 or not len(pairs[0]):
        return pairs[0], pairs[1], dist
    reach = np.minimum(dist + tie_m, max_snap_m)
    g, e, dist = _within(network.tree, got, reach)
    return pairs[0][g], e, dist


def node_distances(network: Network, sources: Snaps, *, limit_m: float) -> np.ndarray:
    """Distance from every node to the nearest source (inf beyond `limit_m` or unreachable)."""
    n = network.n_nodes
    if len(sources.item) == 0:
        return np.full(n, np.inf)
    length = network.edges["length_m"].to_numpy()[sources.edge]
    u = network.edges["u_idx"].to_numpy()[sources.edge]
    v = network.edges["v_idx"].to_numpy()[sources.edge]
    first = np.full(n, np.inf)
    np.minimum.at(first, u, sources.leg_m + sources.lo_m)
    np.minimum.at(first, v, sources.leg_m + (length - sources.hi_m))
    dist = scipy.sparse.csgraph.dijkstra(
        _with_source(network, first), directed=True, indices=n, limit=limit_m
    )
    return np.asarray(dist[:n])


@dataclass(frozen=True)
class NodeSources:
    """One bounded pass from every source at once: each node's distance to its nearest source
    (inf beyond the limit or unreachable) and which source that is (its row in the `Snaps`,
    -1 where none). Ties go to the lower row."""

    dist_m: np.ndarray
    row: np.ndarray


def node_sources(network: Network, sources: Snaps, *, limit_m: float) -> NodeSources:
    """`node_distances`, and the source each node's shortest path starts from, in one pass.

    The distances are those of `node_distances` (the same virtual source, the same arcs); the
    predecessors of that pass are followed back to the node each path enters the network at, whose
    cheapest source arc names the source.
    """
    n = network.n_nodes
    if len(sources.item) == 0:
        return NodeSources(np.full(n, np.inf), np.full(n, -1, dtype=np.int64))
    e = network.edges
    length = e["length_m"].to_numpy()
    su, sv = e["u_idx"].to_numpy()[sources.edge], e["v_idx"].to_numpy()[sources.edge]
    node = np.concatenate([su, sv])
    # the arcs' lengths written as `node_distances` writes them: the same floats, to the last bit
    w = np.concatenate(
        [sources.leg_m + sources.lo_m, sources.leg_m + (length[sources.edge] - sources.hi_m)]
    )
    row = np.concatenate([np.arange(len(su)), np.arange(len(sv))])
    order = np.lexsort((row, w, node))  # by node, then the cheapest arc, then the lower row
    best = order[run_starts(node[order])]
    first = np.full(n, np.inf)
    first_row = np.full(n, -1, dtype=np.int64)
    first[node[best]] = w[best]
    first_row[node[best]] = row[best]
    dist, pred = scipy.sparse.csgraph.dijkstra(
        _with_source(network, first),
        directed=True,
        indices=n,
        limit=limit_m,
        return_predecessors=True,
    )
    dist, pred = np.asarray(dist[:n]), np.asarray(pred[:n])
    # The node each shortest path enters the network at: follow predecessors back (pointer jumping).
    hop = np.where((pred == n) | (pred < 0), np.arange(n), pred)
    while True:
        nxt = hop[hop]
        if np.array_equal(nxt, hop):
            break
        hop = nxt
    return NodeSources(dist, np.where(np.isfinite(dist), first_row[hop], -1))


def _with_source(network: Network, first: np.ndarray) -> scipy.sparse.csr_array:
    """The network's CSR with a virtual source appended as node ``n``: an arc of length ``first[i]``
    to every node ``i`` where it is finite, and no arc back."""
    n = network.n_nodes
    targets = np.flatnonzero(np.isfinite(first))
    adj = network.adjacency
    indptr = np.append(adj.indptr, adj.indptr[-1] + len(targets))
    indices = np.concatenate([adj.indices, targets.astype(adj.indices.dtype)])
    data = np.concatenate([adj.weight_m, first[targets]])
    return scipy.sparse.csr_array((data, indices, indptr), shape=(n + 1, n + 1))


def demand_distances(
    network: Network,
    demand: Snaps,
    sources: Snaps,
    node_dist: np.ndarray,
) -> np.ndarray:
    """Each demand item's network distance to the nearest source (inf if none was found).

    Combines, per item, its access leg with the best of: through the edge's ``u`` end, through its
    ``v`` end, or along the same edge to a source on it.
    """
    out = np.full(demand.n_items, np.inf)
    if len(demand.item) == 0:
        return out
    e = demand.edge
    length, u, v = demand.edge_ends(network)
    off = demand.lo_m
    best = np.minimum(node_dist[u] + off, node_dist[v] + (length - off))
    # rows on an edge that holds a source too (few): along the edge may be shorter. The sources
    # are grouped by edge once; each such row tries its edge's sources one rank at a time
    order, src_edges, first, count = sources.by_edge
    if len(src_edges):
        # which rows those are, through a table of the edges that hold a source (a binary search
        # of millions of lattice corners' edges took longer than the rest of the call), made once
        # per set of sources
        rows = np.flatnonzero(sources.holds(len(network.edges))[e])
        at = np.searchsorted(src_edges, e[rows])
        start, many = first[at], count[at]
        lo, hi, leg = sources.lo_m[order], sources.hi_m[order], sources.leg_m[order]
        along = np.full(len(rows), np.inf)
        for rank in range(int(many.max(initial=0))):
            ok = np.flatnonzero(many > rank)
            k, o = start[ok] + rank, off[rows[ok]]
            a = leg[k] + np.maximum(0.0, np.maximum(lo[k] - o, o - hi[k]))
            along[ok] = np.minimum(along[ok], a)
        best[rows] = np.minimum(best[rows], along)
    np.minimum.at(out, demand.item, demand.leg_m + best)
    return out


def covered_length_m(
    network: Network, sources: Snaps, node_dist: np.ndarray, radius_m: float | np.ndarray
) -> np.ndarray:
    """Length of each edge within `radius_m` (scalar or per edge) walking distance of a source.

    A point at offset t on edge (u, v) of length L is covered when ``D[u] + t``, ``D[v] + L − t`` or,
    for a source on the same edge, ``leg + distance to its [lo, hi] span`` is within the radius; the
    covered pieces are merged so that overlaps count once.
    """
    e = network.edges
    n = len(e)
    r = np.broadcast_to(np.asarray(radius_m, dtype=float), (n,))
    length = e["length_m"].to_numpy()
    du = node_dist[e["u_idx"].to_numpy()]
    dv = node_dist[e["v_idx"].to_numpy()]
    idx = np.arange(n)
    parts = [
        (idx, np.zeros(n), r - du),
        (idx, length - (r - dv), length),
    ]
    if len(sources.item):
        s_edge = sources.edge
        slack = r[s_edge] - sources.leg_m
        parts.append((s_edge, sources.lo_m - slack, sources.hi_m + slack))
    edge = np.concatenate([p[0] for p in parts])
    start = np.concatenate([p[1] for p in parts])
    end = np.concatenate([p[2] for p in parts])
    start = np.clip(start, 0.0, None)
    end = np.minimum(end, length[edge])
    keep = np.isfinite(start) & np.isfinite(end) & (end > start)
    df = pd.DataFrame({"edge": edge[keep], "start": start[keep], "end": end[keep]})
    if df.empty:
        return np.zeros(n)
    df = df.sort_values(["edge", "start"], kind="mergesort")
    frontier = df.groupby("edge")["end"].cummax().groupby(df["edge"]).shift(1)
    eff_start = np.maximum(df["start"].to_numpy(), frontier.fillna(-np.inf).to_numpy())
    gain = np.clip(df["end"].to_numpy() - eff_start, 0.0, None)
    out = np.zeros(n)
    np.add.at(out, df["edge"].to_numpy(), gain)
    return out


def measure(
    network: Network,
    demand: Snaps,
    facilities: Snaps,
    *,
    threshold_m: float | np.ndarray,
    limit_m: float,
    node_dist: np.ndarray | None = None,
) -> pd.DataFrame:
    """Distance, coverage and status of each demand item for one standard.

    Parameters
    ----------
    network
        The walk network.
    demand, facilities
        Snapped demand units and facilities (`snap`).
    threshold_m
        The standard's walking distance, a scalar or one value per demand item (context radii).
    limit_m
        Search cutoff; must be at least the largest threshold. Beyond it distances are NaN.
    node_dist
        `node_distances` of `facilities` when already computed (it is reused, not recomputed).

    Returns
    -------
    pandas.DataFrame
        One row per demand item, in input order: ``dist_m`` (NaN when not found within `limit_m`),
        ``covered`` (bool) and ``status`` (why; see the ``STATUS_*`` constants).
    """
    thr = np.broadcast_to(np.asarray(threshold_m, dtype=float), (demand.n_items,))
    if np.any(thr > limit_m):
        raise ValueError(
            f"limit_m ({limit_m:g}) must be at least the largest threshold ({thr.max():g})"
        )
    if node_dist is None:
        node_dist = node_distances(network, facilities, limit_m=limit_m)
    dist = demand_distances(network, demand, facilities, node_dist)
    dist = np.where(dist <= limit_m, dist, np.nan)
    covered = np.nan_to_num(dist, nan=np.inf) <= thr
    status = walk_status(network, demand, facilities, dist_m=dist, covered=covered)
    dist[demand.unsnapped] = np.nan
    covered[demand.unsnapped] = False
    return pd.DataFrame({"dist_m": dist, "covered": covered, "status": status})


def walk_status(
    network: Network,
    demand: Snaps,
    facilities: Snaps,
    *,
    dist_m: np.ndarray,
    covered: np.ndarray,
) -> np.ndarray:
    """Why each demand item has the walk it has (the ``STATUS_*`` constants), as `measure` says
    it of homes: covered, beyond the threshold, or, where `dist_m` is NaN (no facility within the
    search limit), beyond the search limit (its street joins a facility's), unreachable (it does
    not: an island), no facilities (the standard has none in the data), or unsnapped (no street
    within the snap distance, whatever its walk).

    Parameters
    ----------
    network
        The walk network.
    demand, facilities
        The snapped items and the standard's facilities (`snap`).
    dist_m
        Each item's walk in metres, NaN beyond the search limit.
    covered
        Whether each item is within its standard.

    Returns
    -------
    numpy.ndarray
        One status per item (objects: str).
    """
    status = np.where(covered, STATUS_COVERED, STATUS_BEYOND).astype(object)
    missing = np.isnan(np.asarray(dist_m, dtype=float))
    if len(facilities.item) == 0:
        status[missing] = STATUS_NO_FACILITIES
    else:
        src_nodes = np.concatenate(
            [
                network.edges["u_idx"].to_numpy()[facilities.edge],
                network.edges["v_idx"].to_numpy()[facilities.edge],
            ]
        )
        reach_comp = np.unique(network.component[src_nodes])
        comp = np.full(demand.n_items, -1)
        comp[demand.item] = network.component[network.edges["u_idx"].to_numpy()[demand.edge]]
        reachable = np.isin(comp, reach_comp)
        status[missing & reachable] = STATUS_BEYOND_LIMIT
        status[missing & ~reachable] = STATUS_UNREACHABLE
    status[demand.unsnapped] = STATUS_UNSNAPPED
    return status


def nearest_sources(
    network: Network,
    demand: Snaps,
    sources: Snaps,
    *,
    limit_m: float,
    nodes: NodeSources | None = None,
) -> np.ndarray:
    """For each demand item, the row of `sources` (its facility access) that is nearest by walking,
    or -1 when none is within `limit_m`. Ties go to the lower row.

    `nodes` is the `node_sources` pass of `sources` when the caller has it (the measuring pass
    does): no shortest path is computed again.
    """
    out = np.full(demand.n_items, -1, dtype=np.int64)
    if len(sources.item) == 0 or len(demand.item) == 0:
        return out
    if nodes is None:
        nodes = node_sources(network, sources, limit_m=limit_m)
    e = network.edges
    length = e["length_m"].to_numpy()
    dist, node_row = nodes.dist_m, nodes.row
    du, dv = dist[e["u_idx"].to_numpy()[demand.edge]], dist[e["v_idx"].to_numpy()[demand.edge]]
    off, dl = demand.lo_m, length[demand.edge]
    cand = [
        (du + off, node_row[e["u_idx"].to_numpy()[demand.edge]]),
        (dv + dl - off, node_row[e["v_idx"].to_numpy()[demand.edge]]),
    ]
    same = pd.DataFrame({"k": np.arange(len(demand.edge)), "edge": demand.edge, "off": off}).merge(
        pd.DataFrame(
            {
                "edge": sources.edge,
                "lo": sources.lo_m,
                "hi": sources.hi_m,
                "leg": sources.leg_m,
                "row": np.arange(len(sources.edge)),
            }
        ),
        on="edge",
    )
    along_d = np.full(len(demand.edge), np.inf)
    along_r = np.full(len(demand.edge), -1, dtype=np.int64)
    if len(same):
        same["d"] = same["leg"] + np.maximum(
            0.0, np.maximum(same["lo"] - same["off"], same["off"] - same["hi"])
        )
        top = same.sort_values(["k", "d", "row"], kind="mergesort").drop_duplicates("k")
        along_d[top["k"].to_numpy()] = top["d"].to_numpy()
        along_r[top["k"].to_numpy()] = top["row"].to_numpy()
    cand.append((along_d, along_r))
    d_all = np.vstack([c[0] for c in cand])
    r_all = np.vstack([c[1] for c in cand])
    pick = np.argmin(d_all, axis=0)
    k = np.arange(len(demand.edge))
    d_best = d_all[pick, k] + demand.leg_m
    r_best = np.where(d_best <= limit_m, r_all[pick, k], -1)
    # An item attached to several edges (ties) takes its best attachment; ties to the lower row.
    o = np.lexsort((r_best, np.where(r_best >= 0, d_best, np.inf), demand.item))
    first = o[run_starts(demand.item[o])]
    out[demand.item[first]] = r_best[first]
    return out
