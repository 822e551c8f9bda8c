"""Barriers for the safe-route rule: a pupil's walk may not cross a trunk or primary road or a
railway except at a mapped crossing (GB 50180-2018; classes configurable in ``safe_route``).

The barrier lines cut the study area into cells. The safe network keeps one copy of a node per cell
it touches: a street inside a cell joins copies in that cell; a barrier road's own carriageway
(walked along its pavement) is copied into the cells on both of its sides; the copies of a node meet
only where the node is a mapped crossing. A way that crosses a barrier between its nodes is kept only
if it is a bridge, a tunnel or a mapped crossing way.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.config.standards import SafeRoute, features_matching
from walkcover.config.tags import tag_column
from walkcover.engine import coverage as cov
from walkcover.engine.network import Network, components, symmetric_min_adjacency

_PROBE_M = 1.0
_SIDE_M = 3.0


def barrier_lines(
    streets: gpd.GeoDataFrame, features: gpd.GeoDataFrame, rules: SafeRoute
) -> np.ndarray:
    """Barrier road and railway lines (projected); bridges and tunnels do not bar the way."""
    hw = (
        streets["highway"]
        .astype("string")
        .isin(rules.barrier_highways)
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    raised = _is_yes(streets, "bridge") | _is_yes(streets, "tunnel")
    roads = streets.geometry.to_numpy()[hw & ~raised]
    rail = features_matching(features, [{"railway": list(rules.barrier_railways)}])
    rail = rail[rail.geom_type.isin(["LineString", "MultiLineString"])]
    raised_rail = pd.DataFrame({k: tag_column(rail, k).to_numpy() for k in ("bridge", "tunnel")})
    keep = ~(_is_yes(raised_rail, "bridge") | _is_yes(raised_rail, "tunnel"))
    rails = rail.geometry.to_numpy()[keep] if len(rail) else np.array([], dtype=object)
    return np.concatenate([roads, rails])


def _is_yes(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Whether each value of column `col` says yes: present and, in any case, none of ``no``,
    ``""``, ``nan``, ``none`` (False throughout when there is no such column)."""
    if col not in frame:
        return np.zeros(len(frame), dtype=bool)
    v = frame[col]
    low = v.astype(str).str.lower()
    yes: np.ndarray = (v.notna() & ~low.isin(["no", "", "nan", "none"])).to_numpy(dtype=bool)
    return yes


def cells(lines: np.ndarray, extent: shapely.Geometry, *, edge_gap_m: float = 100.0) -> np.ndarray:
    """The polygons the barrier lines cut `extent` into.

    A barrier clipped at the edge of the study area often stops a node short of it; loose ends
    within `edge_gap_m` of the extent's boundary are joined to it, so the road still cuts.
    """
    if len(lines) == 0:
        return np.array([extent], dtype=object)
    boundary = shapely.boundary(extent)
    noded = shapely.line_merge(shapely.union_all(lines))
    parts = shapely.get_parts(noded)
    ends = np.concatenate([shapely.get_point(parts, 0), shapely.get_point(parts, -1)])
    xy = shapely.get_coordinates(ends).round(6)
    _, inverse, counts = np.unique(xy, axis=0, return_inverse=True, return_counts=True)
    loose = ends[counts[inverse.ravel()] == 1]
    near = loose[shapely.distance(loose, boundary) <= edge_gap_m]
    links = shapely.shortest_line(near, boundary) if len(near) else np.array([], dtype=object)
    noded = shapely.union_all([*parts, *links, boundary])
    polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    polys = polys[shapely.area(polys) > 0]
    return polys if len(polys) else np.array([extent], dtype=object)


def _cell_of(tree: shapely.STRtree, points: np.ndarray) -> np.ndarray:
    """The cell (position in `tree`) each point lies inside, -1 for none.

    The cells ask a tree of the points which they contain: a predicate runs on the prepared query
    geometry, and a prepared cell answers for its many points far faster than each point asking
    the few large cells whether it lies within them (the same answer: strictly inside)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) and len(tree.geometries):
        c, p = shapely.STRtree(points).query(tree.geometries, predicate="contains")
        out[p] = c
    return out


def _end_cells(
    network: Network, tree: shapely.STRtree, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The cell each edge leaves its ``u`` end into and arrives from at its ``v`` end: the cell
    of a probe `_PROBE_M` along the edge from that end (half-way on shorter edges).

    A probe lies within `_PROBE_M` of its node, so where no cell boundary passes that close to the
    node the probe is in the node's cell: the nodes are placed in their cells (one point per node,
    not two per edge), and only the edges at nodes near a barrier are probed.
    """
    e = network.edges
    geoms = e.geometry.to_numpy()
    u, v = e["u_idx"].to_numpy(), e["v_idx"].to_numpy()
    if not len(geoms):
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    # node positions: each edge runs from its u node to its v node
    xy = shapely.get_coordinates(geoms)
    last = np.cumsum(shapely.get_num_coordinates(geoms)) - 1
    first = np.r_[0, last[:-1] + 1]
    node_xy = np.zeros((network.n_nodes, 2))
    node_xy[u], node_xy[v] = xy[first], xy[last]
    nodes = shapely.points(node_xy)
    node_cell = _cell_of(tree, nodes)
    # nodes within the probe distance of a cell boundary (barriers and the study area's edge):
    # their edges are probed
    ring_xy, ring = shapely.get_coordinates(shapely.get_rings(tree.geometries), return_index=True)
    same = ring[1:] == ring[:-1]
    bounds = shapely.linestrings(np.stack([ring_xy[:-1][same], ring_xy[1:][same]], axis=1))
    close = np.zeros(network.n_nodes, dtype=bool)
    if len(bounds):
        near_node, _ = shapely.STRtree(bounds).query(
            nodes, predicate="dwithin", distance=_PROBE_M * (1 + 1e-9)
        )
        close[near_node] = True
    c_u, c_v = node_cell[u], node_cell[v]
    probe = np.minimum(_PROBE_M, length / 2)
    at_u, at_v = np.flatnonzero(close[u]), np.flatnonzero(close[v])
    c_u[at_u] = _cell_of(tree, shapely.line_interpolate_point(geoms[at_u], probe[at_u]))
    c_v[at_v] = _cell_of(
        tree, shapely.line_interpolate_point(geoms[at_v], length[at_v] - probe[at_v])
    )
    return c_u, c_v


def _sides(geoms: np.ndarray, length: np.ndarray, tree: shapely.STRtree) -> list[np.ndarray]:
    """The cell on the left and on the right of each barrier carriageway (probed beside its middle)."""
    if not len(geoms):
        return []
    mid = shapely.line_interpolate_point(geoms, 0.5, normalized=True)
    ahead = shapely.line_interpolate_point(geoms, np.minimum(length / 2 + 0.5, length))
    dx = shapely.get_x(ahead) - shapely.get_x(mid)
    dy = shapely.get_y(ahead) - shapely.get_y(mid)
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0
    out = []
    for sign in (1.0, -1.0):
        px = shapely.get_x(mid) - sign * dy / norm * _SIDE_M
        py = shapely.get_y(mid) + sign * dx / norm * _SIDE_M
        out.append(_cell_of(tree, shapely.points(px, py)))
    return out


def _crossing_links(
    copy_osm_ids: np.ndarray, crossing_node_ids: np.ndarray, copy_node: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-length links joining all copies of each mapped crossing node (first copy to the rest)."""
    is_crossing = np.isin(copy_osm_ids, crossing_node_ids)
    cross = pd.DataFrame({"node": copy_node[is_crossing], "copy": np.flatnonzero(is_crossing)})
    first = cross.groupby("node")["copy"].transform("first").to_numpy()
    link = first != cross["copy"].to_numpy()
    return first[link], cross["copy"].to_numpy()[link]


def safe_network(
    network: Network,
    street_tags: pd.DataFrame,
    barriers: np.ndarray,
    crossing_node_ids: np.ndarray,
    *,
    extent: shapely.Geometry | None = None,
) -> tuple[Network, shapely.STRtree]:
    """The walk network with barrier crossings removed except at mapped crossings.

    Parameters
    ----------
    network
        The walk network.
    street_tags
        Per network edge: ``highway``, ``bridge``, ``tunnel``, ``footway`` and ``is_barrier``.
    barriers
        Barrier lines (`barrier_lines`).
    crossing_node_ids
        OSM ids of nodes that are mapped crossings.
    extent
        The study area (projected); barriers cut it into cells. Default: the network's bounding box.

    Returns
    -------
    (Network, STRtree)
        The safe network, whose edges carry ``orig_edge`` and ``cell``, and the cell index.
    """
    e = network.edges
    geoms = e.geometry.to_numpy()
    if extent is None:
        extent = shapely.box(*shapely.total_bounds(geoms))
    cell_polys = cells(barriers, extent)
    tree = shapely.STRtree(cell_polys)
    length = e["length_m"].to_numpy()
    c_u, c_v = _end_cells(network, tree, length)
    is_barrier = street_tags["is_barrier"].to_numpy(dtype=bool)
    may_cross = _is_yes(street_tags, "bridge") | _is_yes(street_tags, "tunnel")
    may_cross |= (
        street_tags["footway"].astype("string").eq("crossing").fillna(False).to_numpy(dtype=bool)
    )

    rows_u, rows_v, cells_u, cells_v, orig = [], [], [], [], []
    # Ordinary edges: in one cell, or crossing legitimately (bridge, tunnel, crossing way).
    ordinary = ~is_barrier & ((c_u == c_v) | may_cross)
    idx = np.flatnonzero(ordinary)
    rows_u.append(e["u_idx"].to_numpy()[idx])
    rows_v.append(e["v_idx"].to_numpy()[idx])
    cells_u.append(c_u[idx])
    cells_v.append(c_v[idx])
    orig.append(idx)
    # Barrier carriageways: copied into the cells on both sides.
    bidx = np.flatnonzero(is_barrier)
    for side in _sides(geoms[bidx], length[bidx], tree):
        rows_u.append(e["u_idx"].to_numpy()[bidx])
        rows_v.append(e["v_idx"].to_numpy()[bidx])
        cells_u.append(side)
        cells_v.append(side)
        orig.append(bidx)
    u = np.concatenate(rows_u)
    v = np.concatenate(rows_v)
    cu = np.concatenate(cells_u)
    cv = np.concatenate(cells_v)
    orig_e = np.concatenate(orig)
    # Node copies (node, cell) → new index, through one integer key per pair (cells from -1 up)
    span = int(max(cu.max(initial=-1), cv.max(initial=-1))) + 2
    key = np.concatenate([u, v]).astype(np.int64) * span + (np.concatenate([cu, cv]) + 1)
    uniq, codes = np.unique(key, return_inverse=True)
    m = len(u)
    nu, nv = codes[:m], codes[m:]
    copy_node = uniq // span
    lu, lv = _crossing_links(network.node_osm_ids[copy_node], crossing_node_ids, copy_node)
    n_copies = len(copy_node)
    all_u = np.concatenate([nu, lu])
    all_v = np.concatenate([nv, lv])
    all_w = np.concatenate([length[orig_e], np.zeros(len(lu))])
    adjacency = symmetric_min_adjacency(all_u, all_v, all_w, n_copies)
    comp = components(adjacency)
    edges = gpd.GeoDataFrame(
        {"u_idx": nu, "v_idx": nv, "length_m": length[orig_e], "orig_edge": orig_e, "cell": cu},
        geometry=geoms[orig_e],
        crs=e.crs,
    )
    safe = Network(
        edges=edges,
        node_osm_ids=network.node_osm_ids[copy_node],
        adjacency=adjacency,
        component=comp,
        tree=network.tree,
        snappable=np.arange(len(edges)),
    )
    return safe, tree


def remap_snaps(
    snaps: cov.Snaps, safe: Network, cell_tree: shapely.STRtree, item_geoms: np.ndarray
) -> cov.Snaps:
    """Move snaps from original edges onto their copies in the safe network.

    An item on a barrier carriageway goes to the copy on its own side (the cell holding the item);
    an item on an edge the safe network dropped becomes unsnapped.
    """
    copies = pd.DataFrame(
        {"orig": safe.edges["orig_edge"].to_numpy(), "cell": safe.edges["cell"].to_numpy()}
    )
    copies["copy"] = np.arange(len(copies))
    item_cell = (
        _cell_of(cell_tree, shapely.point_on_surface(item_geoms[snaps.item]))
        if len(snaps.item)
        else np.array([], dtype=np.int64)
    )
    df = pd.DataFrame(
        {"row": np.arange(len(snaps.item)), "orig": snaps.edge, "item_cell": item_cell}
    )
    j = df.merge(copies, on="orig", how="inner")
    j["prefer"] = (j["cell"] != j["item_cell"]).astype(int)
    j = j.sort_values(["row", "prefer"]).drop_duplicates("row")
    rows = j["row"].to_numpy()
    kept_items = snaps.item[rows]
    unsnapped = np.union1d(snaps.unsnapped, np.setdiff1d(snaps.item, kept_items))
    return cov.Snaps(
        kept_items,
        j["copy"].to_numpy(),
        snaps.lo_m[rows],
        snaps.hi_m[rows],
        snaps.leg_m[rows],
        unsnapped,
        snaps.n_items,
    )
