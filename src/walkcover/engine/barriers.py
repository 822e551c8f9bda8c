"""Barriers for the safe-route rule: a pupil's walk may not cross a trunk or primary road or a
railway except at a mapped crossing (GB 50180-2018; classes configurable in ``safe_route``).

The barrier lines cut the study area into cells. The safe network keeps one copy of a node per cell
it touches: a street inside a cell joins copies in that cell; a barrier road's own carriageway
(walked along its pavement) is copied into the cells on both of its sides; the copies of a node meet
only where the node is a mapped crossing. A way that crosses a barrier between its nodes is kept only
if it is a bridge, a tunnel or a mapped crossing way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover._malloc import release_free_memory
from walkcover.config.standards import SafeRoute, features_matching
from walkcover.config.tags import tag_column
from walkcover.engine import coverage as cov
from walkcover.engine.network import Network, components, symmetric_min_adjacency

_PROBE_M = 1.0
_SIDE_M = 3.0
#: Points within this distance of a cell's ring are placed by whole cells (`_cell_of_xy`): a margin
#: well above rounding, so that no point on a ring is placed ring by ring.
_ON_RING_M = 1e-3
#: Candidate (box, point) pairs weighed at a time (`_in_boxes`): bounds the arrays held at once.
_PAIR_CHUNK = 1 << 18
#: `_cell_of` places fewer points than this through an R-tree of them (on the L city's 10,000
#: cells, the two ways cost the same at about 70,000 points).
_FEW_POINTS = 1 << 16


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
    # an end no other part shares (to the micrometre; one complex number per point sorts faster
    # than rows of two)
    xy = np.ascontiguousarray(shapely.get_coordinates(ends).round(6)).view(np.complex128)
    _, inverse, counts = np.unique(xy.ravel(), return_inverse=True, return_counts=True)
    loose = ends[counts[inverse] == 1]
    # measured to the whole boundary only where a segment of it passes within reach
    lx, ly = shapely.get_x(loose), shapely.get_y(loose)
    reach = _near_segments(
        _grid(lx, ly), *_segments(shapely.get_parts(boundary)), edge_gap_m * (1 + 1e-9) + 1e-6
    )
    loose = loose[reach]
    near = loose[shapely.distance(loose, boundary) <= edge_gap_m]
    links = shapely.shortest_line(near, boundary) if len(near) else np.array([], dtype=object)
    noded = shapely.union_all([*parts, *links, boundary])
    polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    polys = polys[shapely.area(polys) > 0]
    return polys if len(polys) else np.array([extent], dtype=object)


class _Grid(NamedTuple):
    """Points bucketed into square tiles, about one point a tile, for box queries (`_in_boxes`).

    A point's tile is ``(floor((x - x0) / tile), floor((y - y0) / tile))``, numbered
    ``column * ny + row``: the tiles of one column are consecutive, so the points of a run of a
    column's tiles are one slice of `order`."""

    x: np.ndarray
    y: np.ndarray
    x0: float
    y0: float
    tile: float
    nx: int
    ny: int
    order: np.ndarray  # the points with finite coordinates, tile by tile
    start: np.ndarray  # where each tile's points start in `order` (and, last, where they end)


def _grid(x: np.ndarray, y: np.ndarray) -> _Grid:
    """The points `x`, `y` in a `_Grid`; points with a non-finite coordinate are in no tile."""
    finite = np.isfinite(x) & np.isfinite(y)
    idx = np.arange(len(x)) if finite.all() else np.flatnonzero(finite)
    if not len(idx):
        return _Grid(x, y, 0.0, 0.0, 1.0, 1, 1, idx, np.zeros(2, dtype=np.int64))
    fx, fy = x[idx], y[idx]
    x0, y0 = float(fx.min()), float(fy.min())
    w, h = float(fx.max()) - x0, float(fy.max()) - y0
    # about one point a tile; never more tiles than three times the points, even along a line
    tile = max(np.sqrt(w * h / len(idx)), max(w, h) / len(idx))
    tile = tile if tile > 0 else 1.0
    nx, ny = int(w / tile) + 1, int(h / tile) + 1
    key = np.floor((fx - x0) / tile).astype(np.int64) * ny
    key += np.floor((fy - y0) / tile).astype(np.int64)
    del fx, fy
    start = np.zeros(nx * ny + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=nx * ny), out=start[1:])
    return _Grid(x, y, x0, y0, tile, nx, ny, idx[np.argsort(key)], start)


def _in_boxes(grid: _Grid, bounds: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (box, point) of each box (rows ``xmin, ymin, xmax, ymax`` of `bounds`) with the
    points of `grid` inside it (edges included), chunk by chunk, in box order.

    A box covers a run of tiles in each of its columns, one slice of the points sorted by tile; the
    slices' points are then held to the box itself. Rows with a non-finite bound match nothing.
    """
    if not len(grid.order) or not len(bounds):
        return
    with np.errstate(invalid="ignore"):
        lo_x = np.floor((bounds[:, 0] - grid.x0) / grid.tile)
        hi_x = np.floor((bounds[:, 2] - grid.x0) / grid.tile)
        lo_y = np.floor((bounds[:, 1] - grid.y0) / grid.tile)
        hi_y = np.floor((bounds[:, 3] - grid.y0) / grid.tile)
        hit = np.isfinite(bounds).all(axis=1)
        hit &= (hi_x >= 0) & (lo_x < grid.nx) & (hi_y >= 0) & (lo_y < grid.ny)
    box = np.flatnonzero(hit)
    if not len(box):
        return
    c0 = np.maximum(lo_x[box], 0).astype(np.int64)
    n_col = np.minimum(hi_x[box], grid.nx - 1).astype(np.int64) - c0 + 1
    r0 = np.maximum(lo_y[box], 0).astype(np.int64)
    r1 = np.minimum(hi_y[box], grid.ny - 1).astype(np.int64)
    del lo_x, hi_x, lo_y, hi_y, hit
    # one entry per (box, column): the slice of sorted points in the box's rows of that column
    first = np.cumsum(n_col) - n_col
    tile = (np.repeat(c0 - first, n_col) + np.arange(int(n_col.sum()))) * grid.ny
    lo = grid.start[tile + np.repeat(r0, n_col)]
    count = grid.start[tile + np.repeat(r1 + 1, n_col)] - lo
    entry_box = np.repeat(box, n_col)
    del tile, first, c0, r0, r1
    # entries split to at most a chunk of points, then taken in runs of about a chunk
    if count.max(initial=0) > _PAIR_CHUNK:
        parts = np.maximum(-(-count // _PAIR_CHUNK), 1)
        skip = np.arange(int(parts.sum())) - np.repeat(np.cumsum(parts) - parts, parts)
        lo = np.repeat(lo, parts) + skip * _PAIR_CHUNK
        count = np.minimum(np.repeat(count, parts) - skip * _PAIR_CHUNK, _PAIR_CHUNK)
        entry_box = np.repeat(entry_box, parts)
    some = count > 0
    lo, count, entry_box = lo[some], count[some], entry_box[some]
    run = (np.cumsum(count) - count) // _PAIR_CHUNK
    cut = np.flatnonzero(np.r_[True, run[1:] != run[:-1], True])
    for e0, e1 in itertools.pairwise(cut):
        n = count[e0:e1]
        at = np.cumsum(n) - n
        p = grid.order[np.repeat(lo[e0:e1] - at, n) + np.arange(int(at[-1] + n[-1]))]
        b = np.repeat(entry_box[e0:e1], n)
        px, py = grid.x[p], grid.y[p]
        inside = (bounds[b, 0] <= px) & (px <= bounds[b, 2])
        inside &= (bounds[b, 1] <= py) & (py <= bounds[b, 3])
        yield b[inside], p[inside]


class _Cells(NamedTuple):
    """Cells ready for point-in-cell tests, as private copies (prepared geometries hold indexes
    built on first use, so the tree's own stay unprepared and may be shared between threads)."""

    geoms: np.ndarray  # the cells, prepared
    bounds: np.ndarray  # their bounding boxes
    rings: np.ndarray  # each ring of each cell (shell, then holes) as a polygon, prepared
    ring_cell: np.ndarray  # the cell of each ring
    ring_hole: np.ndarray  # whether each ring is a hole
    ring_bounds: np.ndarray  # their bounding boxes
    segments: tuple[np.ndarray, np.ndarray]  # the rings' segments (`_segments`)


def _prepared_cells(tree: shapely.STRtree) -> _Cells:
    """The cells of `tree` as `_Cells` (copied through WKB, which keeps every coordinate exactly)."""
    geoms = shapely.from_wkb(shapely.to_wkb(tree.geometries))
    rings, ring_cell = shapely.get_rings(geoms, return_index=True)
    rings = shapely.polygons(rings)
    ring_hole = np.r_[False, ring_cell[1:] == ring_cell[:-1]]
    shapely.prepare(geoms)
    shapely.prepare(rings)
    return _Cells(
        geoms,
        shapely.bounds(geoms).reshape(-1, 4),
        rings,
        ring_cell.astype(np.int64),
        ring_hole,
        shapely.bounds(rings).reshape(-1, 4),
        _segments(rings),
    )


def _cell_of_xy(cells: _Cells, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The cell (position among `cells`) each point (`x`, `y`) lies strictly inside, -1 for none
    (on a cell's boundary, outside all cells, or a non-finite coordinate).

    Candidate cells come from bounding boxes over a grid of the points (`_in_boxes`, the pairs an
    R-tree of the points would give) and prepared polygons test their candidates by coordinates,
    so no shapely point is made. Points farther than `_ON_RING_M` from every ring are placed ring
    by ring (`_cell_of_off_rings`); the few others, on or next to a boundary, by whole cells.
    Where cells overlapped (they do not: they are faces of noded lines), the last containing cell
    would win.
    """
    if not len(x) or not len(cells.geoms):
        return np.full(len(x), -1, dtype=np.int64)
    grid = _grid(x, y)
    near = _near_segments(grid, *cells.segments, _ON_RING_M)
    out = _cell_of_off_rings(cells, grid, ~near)
    del grid
    idx = np.flatnonzero(near)
    if len(idx):
        sub = _grid(x[idx], y[idx])
        for c, p in _in_boxes(sub, cells.bounds):
            inside = shapely.contains_xy(cells.geoms[c], sub.x[p], sub.y[p])
            out[idx[p[inside]]] = c[inside]
    return out


def _cell_of(tree: shapely.STRtree, points: np.ndarray) -> np.ndarray:
    """The cell (position in `tree`) each point lies strictly inside, -1 for none (on a boundary,
    outside all cells, or an empty point).

    Many points are placed by their coordinates (`_cell_of_xy`). Fewer than `_FEW_POINTS` are put
    in an R-tree that the cells ask which points they contain: the predicate runs on the prepared
    query geometry, a cell prepared for that query alone, which costs less than preparing copies
    of all cells and their rings (the same answer: strictly inside, the last cell winning).
    """
    if (
        len(points) >= _FEW_POINTS
        and len(tree.geometries)
        and (shapely.get_type_id(points) <= 0).all()  # points (or empty, or missing)
    ):
        return _cell_of_xy(_prepared_cells(tree), *_point_xy(points))
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) and len(tree.geometries):
        c, p = shapely.STRtree(points).query(tree.geometries, predicate="contains")
        out[p] = c
    return out


def _point_xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates of `points`; NaN for an empty point or a missing one."""
    x, y = np.full(len(points), np.nan), np.full(len(points), np.nan)
    xy, at = shapely.get_coordinates(points, return_index=True)
    x[at], y[at] = xy[:, 0], xy[:, 1]
    return x, y


def _cell_of_off_rings(cells: _Cells, grid: _Grid, off: np.ndarray) -> np.ndarray:
    """`_cell_of_xy` of the points of `grid` known to lie on no ring of any cell (`off`); -1 for
    the others.

    Off the rings, a point lies inside a cell exactly when it lies inside the cell's shell and
    inside none of its holes: a point-in-polygon test counts the rings' crossings of a ray from
    the point, and the holes of a valid polygon lie apart inside its shell. Tested ring by ring, a
    point meets only the rings whose boxes hold it; tested whole, a large cell weighs the crossings
    of all its holes for each of its points (on the L city, 1.2 million nodes take 0.5 s in the
    cell around the others, which has 675 holes, and 0.09 s in its shell alone).
    """
    out = np.full(len(grid.x), -1, dtype=np.int64)
    if not len(cells.rings):
        return out

    def hits(which: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(point, cell) of the points `off` the rings inside the rings `which`, in ring order."""
        for r, p in _in_boxes(grid, cells.ring_bounds[which]):
            off_r = off[p]
            ring, p = which[r[off_r]], p[off_r]
            inside = shapely.contains_xy(cells.rings[ring], grid.x[p], grid.y[p])
            yield p[inside], cells.ring_cell[ring[inside]]

    n_cells = np.int64(len(cells.geoms))
    hole_hits = list(hits(np.flatnonzero(cells.ring_hole)))
    in_hole = np.zeros(len(grid.x), dtype=bool)
    veto = np.zeros(0, dtype=np.int64)  # point * n_cells + cell: the point is in a hole of the cell
    if hole_hits:
        hole_p = np.concatenate([p for p, _ in hole_hits])
        veto = np.sort(hole_p * n_cells + np.concatenate([c for _, c in hole_hits]))
        in_hole[hole_p] = True
    del hole_hits
    for p, c in hits(np.flatnonzero(~cells.ring_hole)):
        maybe = np.flatnonzero(in_hole[p])
        if len(maybe):
            key = p[maybe] * n_cells + c[maybe]
            at = np.minimum(np.searchsorted(veto, key), len(veto) - 1)
            ok = np.ones(len(p), dtype=bool)
            ok[maybe] = veto[at] != key
            p, c = p[ok], c[ok]
        out[p] = c
    return out


def _segments(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The straight segments of `lines` (lines, rings, or polygons of a single ring each), as
    start and end rows ``x, y``."""
    xy, line = shapely.get_coordinates(lines, return_index=True)
    same = line[1:] == line[:-1]
    return xy[:-1][same], xy[1:][same]


def _near_segments(grid: _Grid, a: np.ndarray, b: np.ndarray, distance: float) -> np.ndarray:
    """Whether each point of `grid` lies within `distance` (inclusive) of one of the segments from
    `a` to `b`: ``shapely.dwithin`` of a point and the segments' lines, without shapely points.

    Candidate points come from each segment's box widened by `distance` (`_in_boxes`); their
    distance to the segment is worked out in numpy as GEOS does it, and the rare pair within a
    micrometre of `distance` is settled by `shapely.dwithin` itself.
    """
    near = np.zeros(len(grid.x), dtype=bool)
    if not len(a):
        return near
    pad = distance + 1e-6
    bounds = np.column_stack(
        [
            np.minimum(a[:, 0], b[:, 0]) - pad,
            np.minimum(a[:, 1], b[:, 1]) - pad,
            np.maximum(a[:, 0], b[:, 0]) + pad,
            np.maximum(a[:, 1], b[:, 1]) + pad,
        ]
    )
    x, y = grid.x, grid.y
    for s, p in _in_boxes(grid, bounds):
        todo = ~near[p]  # a point found near one segment needs no other
        s, p = s[todo], p[todo]
        d = _segment_distance(x[p], y[p], a[s], b[s])
        near[p[d <= distance - 1e-6]] = True
        unsure = np.flatnonzero(np.abs(d - distance) < 1e-6)
        if len(unsure):
            pts = shapely.points(x[p[unsure]], y[p[unsure]])
            lines = shapely.linestrings(np.stack([a[s[unsure]], b[s[unsure]]], axis=1))
            near[p[unsure[shapely.dwithin(pts, lines, distance)]]] = True
    return near


def _segment_distance(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The distance from each point (`px`, `py`) to the segment from `a` to `b` (rows ``x, y``),
    in the steps of GEOS's ``Distance::pointToSegment``."""
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    dx, dy = bx - ax, by - ay
    len2 = dx * dx + dy * dy
    flat = len2 == 0
    len2[flat] = 1.0
    r = ((px - ax) * dx + (py - ay) * dy) / len2
    across = np.abs(((ay - py) * dx - (ax - px) * dy) / len2) * np.sqrt(len2)
    to_a = np.sqrt((px - ax) ** 2 + (py - ay) ** 2)
    to_b = np.sqrt((px - bx) ** 2 + (py - by) ** 2)
    d: np.ndarray = np.where(flat | (r <= 0), to_a, np.where(r >= 1, to_b, across))
    return d


def _node_xy(network: Network) -> tuple[np.ndarray, np.ndarray]:
    """Each node's position: the first coordinate of the edges leaving it (``u``), then the last of
    the edges arriving at it (``v``), later edges over earlier ones; NaN for a node of no edge.

    The edges' coordinates are read a chunk at a time: only the ends are kept."""
    geoms = network.edges.geometry.to_numpy()
    u, v = network.edges["u_idx"].to_numpy(), network.edges["v_idx"].to_numpy()
    x, y = np.full(network.n_nodes, np.nan), np.full(network.n_nodes, np.nan)
    v_end = np.empty((len(geoms), 2))
    for s in range(0, len(geoms), _PAIR_CHUNK):
        part = geoms[s : s + _PAIR_CHUNK]
        xy = shapely.get_coordinates(part)
        last = np.cumsum(shapely.get_num_coordinates(part)) - 1
        first = np.r_[0, last[:-1] + 1]
        x[u[s : s + _PAIR_CHUNK]] = xy[first, 0]
        y[u[s : s + _PAIR_CHUNK]] = xy[first, 1]
        v_end[s : s + len(part)] = xy[last]
    x[v], y[v] = v_end[:, 0], v_end[:, 1]
    return x, y


def _end_cells(
    network: Network, tree: shapely.STRtree, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The cell each edge leaves its ``u`` end into and arrives from at its ``v`` end: the cell
    of a probe `_PROBE_M` along the edge from that end (half-way on shorter edges).

    A probe lies within `_PROBE_M` of its node, so where no cell boundary passes that close to the
    node the probe is in the node's cell: the nodes are placed in their cells (one position per
    node, not two probes per edge), and only the edges at nodes near a boundary are probed. The
    nodes are handled by their coordinates, read from the edges' ends (`_node_xy`): those within
    `_PROBE_M` of a ring of a cell are found segment by segment (`_near_segments`), the others,
    off every ring, are placed ring by ring (`_cell_of_off_rings`). A city's million nodes as
    shapely points, and R-trees of them, cost more time and memory than the tests themselves.
    """
    geoms = network.edges.geometry.to_numpy()
    u, v = network.edges["u_idx"].to_numpy(), network.edges["v_idx"].to_numpy()
    if not len(geoms):
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    cells = _prepared_cells(tree)
    grid = _grid(*_node_xy(network))
    # nodes within the probe distance of a cell boundary (barriers and the study area's edge):
    # their edges are probed, and their own cells are never read
    close = _near_segments(grid, *cells.segments, _PROBE_M * (1 + 1e-9))
    node_cell = _cell_of_off_rings(cells, grid, ~close)
    del grid
    c_u, c_v = node_cell[u], node_cell[v]
    del node_cell
    at_u, at_v = np.flatnonzero(close[u]), np.flatnonzero(close[v])
    del close
    probe = np.minimum(_PROBE_M, length / 2)
    ends = np.concatenate(
        [
            shapely.line_interpolate_point(geoms[at_u], probe[at_u]),
            shapely.line_interpolate_point(geoms[at_v], length[at_v] - probe[at_v]),
        ]
    )
    probed = _cell_of_xy(cells, *_point_xy(ends))
    c_u[at_u], c_v[at_v] = probed[: len(at_u)], probed[len(at_u) :]
    return c_u, c_v


def _sides(geoms: np.ndarray, length: np.ndarray, tree: shapely.STRtree) -> list[np.ndarray]:
    """The cell on the left and on the right of each barrier carriageway (probed beside its middle)."""
    if not len(geoms):
        return []
    mid = shapely.line_interpolate_point(geoms, 0.5, normalized=True)
    ahead = shapely.line_interpolate_point(geoms, np.minimum(length / 2 + 0.5, length))
    mx, my = shapely.get_x(mid), shapely.get_y(mid)
    dx = shapely.get_x(ahead) - mx
    dy = shapely.get_y(ahead) - my
    del mid, ahead
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0
    signs = (1.0, -1.0)
    side = _cell_of_xy(
        _prepared_cells(tree),
        np.concatenate([mx - sign * dy / norm * _SIDE_M for sign in signs]),
        np.concatenate([my + sign * dx / norm * _SIDE_M for sign in signs]),
    )
    return np.split(side, len(signs))


def _crossing_links(
    copy_osm_ids: np.ndarray, crossing_node_ids: np.ndarray, copy_node: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-length links joining all copies of each mapped crossing node (first copy to the rest)."""
    is_crossing = np.isin(copy_osm_ids, crossing_node_ids)
    cross = pd.DataFrame({"node": copy_node[is_crossing], "copy": np.flatnonzero(is_crossing)})
    first = cross.groupby("node")["copy"].transform("first").to_numpy()
    link = first != cross["copy"].to_numpy()
    return first[link], cross["copy"].to_numpy()[link]


def _node_copies(node: np.ndarray, cell: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """The number of each (`node`, `cell`) pair among the distinct pairs in order of node, then
    cell, and the node of each number: ``np.unique`` of one key per pair, without sorting them.

    A node mostly lies in one cell: one of each node's cells is taken as its main one, and only the
    pairs at other cells (nodes on a barrier, ends of a crossing way) are sorted.
    """
    node = node.astype(np.int64, copy=False)
    cell = cell.astype(np.int64, copy=False)
    main = np.zeros(n_nodes, dtype=np.int64)
    main[node] = cell
    other = np.flatnonzero(cell != main[node])
    span = np.int64(cell.max(initial=-1) + 2)  # cells run from -1
    key, inverse = np.unique(node[other] * span + (cell[other] + 1), return_inverse=True)
    o_node, o_cell = key // span, key % span - 1  # the other pairs, in order
    count = np.bincount(o_node, minlength=n_nodes)
    listed = np.zeros(n_nodes, dtype=bool)
    listed[node] = True
    count += listed  # each listed node's cells
    del listed
    first = np.cumsum(count)
    first -= count  # each node's first number
    # an other cell's place: after its node's other cells below it, and the main cell if below
    o_code = first[o_node] + np.arange(len(key)) - np.searchsorted(o_node, o_node)
    o_code += main[o_node] < o_cell
    # the main cell's place: after its node's other cells below it
    below, n_below = np.unique(o_node[o_cell < main[o_node]], return_counts=True)
    first[below] += n_below
    code = first[node]
    code[other] = o_code[inverse]
    return code, np.repeat(np.arange(n_nodes), count)


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
    # GEOS's noding of the barriers, the prepared cells that place the edges' ends and the arrays
    # under a megabyte leave their small blocks behind in malloc's heap, given back at each step
    # (on the L city, the peak is some 70 MB lower for 20 ms)
    cell_polys = cells(barriers, extent)
    release_free_memory()
    tree = shapely.STRtree(cell_polys)
    length = e["length_m"].to_numpy()
    c_u, c_v = _end_cells(network, tree, length)
    is_barrier = street_tags["is_barrier"].to_numpy(dtype=bool)
    # Barrier carriageways: copied into the cells on both sides.
    bidx = np.flatnonzero(is_barrier)
    sides = _sides(geoms[bidx], length[bidx], tree)
    release_free_memory()
    may_cross = _is_yes(street_tags, "bridge") | _is_yes(street_tags, "tunnel")
    may_cross |= (
        street_tags["footway"].astype("string").eq("crossing").fillna(False).to_numpy(dtype=bool)
    )
    # Ordinary edges: in one cell, or crossing legitimately (bridge, tunnel, crossing way).
    idx = np.flatnonzero(~is_barrier & ((c_u == c_v) | may_cross))
    orig_e = np.concatenate([idx, *[bidx] * len(sides)])
    cu = np.concatenate([c_u[idx], *sides])
    cv = np.concatenate([c_v[idx], *sides])
    del c_u, c_v, idx, bidx, sides, is_barrier, may_cross
    m = len(orig_e)
    # Node copies: one number per (node, cell) pair of the edges' ends
    ends = np.concatenate([e["u_idx"].to_numpy()[orig_e], e["v_idx"].to_numpy()[orig_e]])
    code, copy_node = _node_copies(ends, np.concatenate([cu, cv]), network.n_nodes)
    del ends, cv
    lu, lv = _crossing_links(network.node_osm_ids[copy_node], crossing_node_ids, copy_node)
    all_u = np.concatenate([code[:m], lu])
    all_v = np.concatenate([code[m:], lv])
    del code, lu, lv
    all_w = np.concatenate([length[orig_e], np.zeros(len(all_u) - m)])
    release_free_memory()
    adjacency = symmetric_min_adjacency(all_u, all_v, all_w, len(copy_node))
    comp = components(adjacency)
    edges = gpd.GeoDataFrame(
        {
            "u_idx": all_u[:m],
            "v_idx": all_v[:m],
            "length_m": all_w[:m],
            "orig_edge": orig_e,
            "cell": cu,
        },
        geometry=geoms[orig_e],
        crs=e.crs,
    )
    del all_u, all_v, all_w, orig_e, cu
    safe = Network(
        edges=edges,
        node_osm_ids=network.node_osm_ids[copy_node],
        adjacency=adjacency,
        component=comp,
        snappable=np.arange(len(edges)),
        given_tree=network.tree,
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
