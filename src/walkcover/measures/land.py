"""Land for area-based figures: residential or built-up land, the official Euclidean share covered,
and the share within walking distance measured on a grid of cells."""

from __future__ import annotations

import threading

import geopandas as gpd
import numpy as np
import scipy
import shapely

from walkcover.config.standards import Selector, Standard, StandardSet, features_matching
from walkcover.engine import coverage as cov
from walkcover.engine.network import Network
from walkcover.engine.street_context import unit_thresholds
from walkcover.measures.raster import centres_inside

#: Segments per quarter circle of the official circles (GEOS's ``quad_segs``).
CIRCLE_QUAD_SEGS = 32
#: Points at most whose circles `official_circles` draws with GEOS as well, to check the moved ones.
CIRCLE_CHECKS = 64
#: Points whose circles are made from one array at a time (``CIRCLE_CHUNK`` × 129 vertices × 16 B:
#: about 8 MB of coordinates at once, beside the circles themselves).
CIRCLE_CHUNK = 4096
#: How near the radius (relative) a straight-line distance measured by the KD-tree must be for
#: `straight_covered_share` to ask GEOS: both distances are within a few units in the last place
#: of the exact one, a millionfold less than this.
STRAIGHT_MARGIN = 1e-9


def land_union(features: gpd.GeoDataFrame, selectors: list[Selector]) -> shapely.Geometry:
    """The union of the polygons matching `selectors` (projected), made valid, as one
    (multi)polygon of disjoint parts (`dissolve`)."""
    polys = features_matching(features, selectors)
    polys = polys[polys.geom_type.isin(["Polygon", "MultiPolygon"])]
    parts = dissolve(shapely.make_valid(polys.geometry.to_numpy()))
    if not len(parts):
        return shapely.Polygon()
    return shapely.multipolygons(parts)


def dissolve(geoms: np.ndarray) -> np.ndarray:
    """The union of `geoms`' polygons as an array of disjoint polygons (lines and points that
    `make_valid` leaves of a collapsed polygon have no area and are dropped).

    Only polygons that meet (overlap or touch) are united, group by group: a city's land is
    thousands of separate blocks, and one ``union_all`` of all of them overlays pieces that never
    meet (green land on L: 8.0 s against 1.4 s, the same polygons).
    """
    parts = shapely.get_parts(shapely.get_parts(geoms))  # a collection's members, then theirs
    parts = parts[shapely.get_type_id(parts) == 3]
    n = len(parts)
    if n < 2:
        return parts
    a, b = shapely.STRtree(parts).query(parts, predicate="intersects")
    link = scipy.sparse.coo_array((np.ones(len(a), dtype=bool), (a, b)), shape=(n, n))
    _, group = scipy.sparse.csgraph.connected_components(link, directed=False)
    size = np.bincount(group)
    alone = size[group] == 1
    # the members of each group of several, group after group (sorted by group label)
    members = np.flatnonzero(~alone)
    if not len(members):
        return parts
    members = members[np.argsort(group[members], kind="stable")]
    _, first = np.unique(group[members], return_index=True)
    united = [shapely.union_all(parts[m]) for m in np.split(members, first[1:])]
    out = np.concatenate([parts[alone], np.array(united, dtype=object)])
    out = shapely.get_parts(out)
    return out[shapely.get_type_id(out) == 3]


def euclid_covered_share(
    land: shapely.Geometry,
    facilities: np.ndarray,
    radius_m: float,
    *,
    reach: shapely.Geometry | None = None,
) -> float:
    """The official method, exactly: area(union of circles of `radius_m` around the facilities ∩ land)
    ÷ area(land), in percent. A polygon facility's circle is its outline grown by the radius.

    `reach`, when given, is that union already made (`official_reach` of the same facilities and
    radius): one union for the whole city, cut to each district's land, instead of one per
    district of the circles near it. NaN when there is no land.

    Land the circles cover whole is 100 % exactly, found without the overlay: the land the
    overlay rebuilds can differ from the land itself in its area's last bit (99.99999999999997
    or 100.00000000000001 % on L), and overlaying a district's whole land with a box of circles
    was most of the time this figure took.
    """
    area = shapely.area(land)
    if area <= 0:
        return float("nan")
    if len(facilities) == 0:
        return 0.0
    x0, y0, x1, y1 = shapely.bounds(land)
    if reach is None:
        # only the circles that can reach the land's box: a district's share never buffers and
        # unites the whole city's facilities
        box = shapely.box(x0 - radius_m, y0 - radius_m, x1 + radius_m, y1 + radius_m)
        near = facilities[shapely.STRtree(facilities).query(box)]
        if len(near) == 0:
            return 0.0
        reach = official_reach(near, radius_m)
        cut = shapely.clip_by_rect(reach, x0, y0, x1, y1)
    else:
        reach = cut = shapely.clip_by_rect(reach, x0, y0, x1, y1)
    if covers_land(cut, land):
        return np.float64(100.0)  # (a number of the same type as the overlay's)
    return 100.0 * shapely.area(shapely.intersection(land, reach)) / area


def covers_land(region: shapely.Geometry, land: shapely.Geometry) -> bool:
    """Whether `region` (a geometry of the caller's own: it is prepared in place) covers `land`.

    Prepared, a region that is a rectangle (circles all round the land's box, which
    ``clip_by_rect`` returns as the box) answers from the boxes alone, and land partly outside
    mostly fails on the first of its parts found outside, before any edge is compared.
    """
    if shapely.is_empty(region) or shapely.is_empty(land):
        return False
    shapely.prepare(region)
    return bool(shapely.covers(region, land))


def official_reach(facilities: np.ndarray, radius_m: float) -> shapely.Geometry:
    """The union of the official circles of `radius_m` around `facilities` (an empty polygon when
    there are none): the area `euclid_covered_share` counts."""
    if len(facilities) == 0:
        return shapely.Polygon()
    return shapely.union_all(official_circles(facilities, radius_m))


def official_circles(facilities: np.ndarray, radius_m: float) -> np.ndarray:
    """``shapely.buffer(facilities, radius_m, quad_segs=32)``: the official circles, the same
    polygons to the last bit, in the same order.

    GEOS draws a point's circle as ``point + radius·(cos a, sin a)``, one addition per coordinate,
    so its circle round (0, 0) holds the offsets exactly and every point's circle is that one
    moved: made from arrays of coordinates, not buffered point by point (`moved_circles`; the
    bus stops of L: 0.22 → 0.11 s). Polygons, points with a z, empty points and points on an
    axis are buffered by GEOS.
    """
    geoms = np.asarray(facilities, dtype=object)
    out = np.empty(len(geoms), dtype=object)
    at = np.flatnonzero((shapely.get_type_id(geoms) == 0) & ~shapely.has_z(geoms))
    if len(at):
        xy = shapely.get_coordinates(geoms[at])  # (an empty point has none: then none is moved)
        moved = moved_circles(xy, radius_m, check=geoms[at]) if len(xy) == len(at) else None
        if moved is None:
            at = at[:0]
        else:
            out[at] = moved
    rest = np.ones(len(geoms), dtype=bool)
    rest[at] = False
    if rest.any():
        out[rest] = shapely.buffer(geoms[rest], radius_m, quad_segs=CIRCLE_QUAD_SEGS)
    return out


def moved_circles(xy: np.ndarray, radius_m: float, *, check: np.ndarray) -> np.ndarray | None:
    """GEOS's circles of `radius_m` round the points `xy` (an ``(n, 2)`` array), made by moving
    its circle round (0, 0); None when that cannot be the same to the last bit.

    None when GEOS's circle round (0, 0) is not one plain ring, a coordinate is 0 or not finite
    (``-0.0 + 0.0`` is not ``-0.0 + -0.0``), or any of a spread sample of the points
    (`CIRCLE_CHECKS` of `check`, the points as geometries) is drawn otherwise by GEOS: one that
    builds circles differently, or fuses the multiply and the add (rounding once instead of twice
    changes some vertices of a good share of the points: a sample of them holds one all but
    surely).
    """
    template = shapely.buffer(shapely.Point(0.0, 0.0), radius_m, quad_segs=CIRCLE_QUAD_SEGS)
    if (
        shapely.get_type_id(template) != 3
        or shapely.is_empty(template)
        or shapely.get_num_interior_rings(template) != 0
        or not np.isfinite(xy).all()
        or not (xy != 0).all()
    ):
        return None
    offsets = shapely.get_coordinates(template)  # the shell, closed
    out = np.empty(len(xy), dtype=object)
    for s in range(0, len(xy), CIRCLE_CHUNK):  # a chunk's coordinates at a time
        out[s : s + CIRCLE_CHUNK] = shapely.polygons(xy[s : s + CIRCLE_CHUNK, None, :] + offsets)
    sample = np.unique(np.linspace(0, len(xy) - 1, min(len(xy), CIRCLE_CHECKS)).astype(np.int64))
    drawn = shapely.buffer(check[sample], radius_m, quad_segs=CIRCLE_QUAD_SEGS)
    if not shapely.equals_identical(drawn, out[sample]).all():
        return None
    return out


def walk_covered_share(
    network: Network,
    cells: cov.Snaps,
    facilities: cov.Snaps,
    node_dist: np.ndarray,
    *,
    threshold_m: float | np.ndarray,
) -> float:
    """Share of land cells (snapped like homes) within `threshold_m` walking of a facility, in %.

    Cells farther than the snap distance from any street count as not covered. NaN without cells.
    """
    if cells.n_items == 0:
        return float("nan")
    dist = cov.demand_distances(network, cells, facilities, node_dist)
    return 100.0 * float(np.mean(dist <= threshold_m))


def straight_covered_share(
    cells: np.ndarray, facilities: np.ndarray, radius_m: float | np.ndarray
) -> float:
    """Share of land cells within `radius_m` (scalar or per cell) in a straight line of a
    facility, in %: the official circles on the walking figure's cells and radii. NaN without cells.

    `cells` are points, or their coordinates as an ``(n, 2)`` array. A cell is near when GEOS's
    distance to its nearest facility is at most the cell's radius. Given coordinates, the
    facilities that are points are searched with a KD-tree, which settles every cell whose nearest
    such point is not within a hair (`STRAIGHT_MARGIN`) of its radius, and GEOS searches the rest
    (those cells, the other facilities): the same cells, without a point geometry per cell and
    GEOS's search of every facility for each (a city's residential land: 200,000 cells).
    """
    if len(cells) == 0:
        return float("nan")
    if len(facilities) == 0:
        return 0.0
    r = np.broadcast_to(np.asarray(radius_m, dtype=float), (len(cells),))
    rmax = float(r.max())
    if np.asarray(cells).dtype == object:
        near = _near_geos(cells, facilities, r, rmax)
    else:
        near = _near_xy(np.asarray(cells, dtype=float).reshape(-1, 2), facilities, r, rmax)
    return 100.0 * float(near.mean())


def _near_geos(cells: np.ndarray, facilities: np.ndarray, r: np.ndarray, rmax: float) -> np.ndarray:
    """Which `cells` (points) have a facility within their radius `r`, by GEOS's nearest search
    within `rmax` (the largest radius of all the cells measured)."""
    pairs, dist = shapely.STRtree(facilities).query_nearest(
        cells, max_distance=rmax, return_distance=True, all_matches=False
    )
    idx = pairs[0]
    near = np.zeros(len(cells), dtype=bool)
    near[idx] = dist <= r[idx]
    return near


def _near_xy(xy: np.ndarray, facilities: np.ndarray, r: np.ndarray, rmax: float) -> np.ndarray:
    """`_near_geos` for cells given as coordinates: a cell is near a facility within its radius
    when it is near one of the facilities that are points or near one of the others, so the points
    are searched with a KD-tree (GEOS deciding the cells within `STRAIGHT_MARGIN` of their radius:
    the tree's distances and GEOS's may differ in the last bit) and GEOS searches the others for
    the cells left."""
    geoms = np.asarray(facilities, dtype=object)
    fxy = np.zeros((0, 2))
    point = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms) & ~shapely.has_z(geoms)
    if point.any() and rmax > 0 and np.isfinite(r).all() and np.isfinite(xy).all():
        fxy = shapely.get_coordinates(geoms[point])
        if not np.isfinite(fxy).all():
            fxy, point[:] = np.zeros((0, 2)), False
    else:
        point[:] = False
    near = np.zeros(len(xy), dtype=bool)
    if len(fxy):
        bound = rmax * (1 + 2 * STRAIGHT_MARGIN)
        dist, _ = scipy.spatial.cKDTree(fxy).query(xy, k=1, distance_upper_bound=bound)
        near = dist <= r * (1 - STRAIGHT_MARGIN)
        unsure = np.flatnonzero(~near & (dist <= r * (1 + STRAIGHT_MARGIN)))
        if len(unsure):
            near[unsure] = _near_geos(shapely.points(xy[unsure]), geoms[point], r[unsure], rmax)
    others = geoms[~point]
    left = np.flatnonzero(~near)
    if len(others) and len(left):
        near[left] = _near_geos(shapely.points(xy[left]), others, r[left], rmax)
    return near


def area_within(geom: shapely.Geometry | np.ndarray, district: shapely.Geometry) -> float:
    """Area (m²) of `geom` (a union, or an array of pieces: disjoint parts) inside `district`,
    clipping only the parts that cross its edge; the same as ``area(intersection(geom, district))``
    without intersecting a whole city's union with every district."""
    parts = shapely.get_parts(geom)
    if not len(parts):
        return 0.0
    cand = parts[shapely.STRtree(parts).query(district, predicate="intersects")]
    shapely.prepare(district)
    inside = shapely.contains_properly(district, cand)
    crossing = shapely.intersection(cand[~inside], district)
    return float(shapely.area(cand[inside]).sum() + shapely.area(crossing).sum())


def overlap_pieces(a: shapely.Geometry, b: shapely.Geometry) -> np.ndarray:
    """``intersection(a, b)`` of two unions (each made of disjoint parts) as an array of disjoint
    pieces: the parts are intersected pair by pair where they meet, which is far cheaper than one
    overlay of two city-wide unions and covers the same land."""
    pa, pb = shapely.get_parts(a), shapely.get_parts(b)
    if not len(pa) or not len(pb):
        return np.array([], dtype=object)
    ia, ib = shapely.STRtree(pb).query(pa, predicate="intersects")
    # a collection's members are split, and a multipolygon among them too
    pieces = shapely.get_parts(shapely.get_parts(shapely.intersection(pa[ia], pb[ib])))
    return pieces[shapely.get_type_id(pieces) == 3]  # polygons (touching lines and points: no area)


def grid_cells(land: shapely.Geometry, *, cell_m: float) -> np.ndarray:
    """Centres (an ``(n, 2)`` array) of the `cell_m` grid cells whose centre lies in `land` (a
    grid anchored at 0, 0), south to north and west to east; found by burning `land` onto the grid,
    not by testing a point per cell, and kept as coordinates, not a point geometry per cell."""
    empty = np.zeros((0, 2))
    if shapely.is_empty(land):
        return empty
    x0, y0, x1, y1 = shapely.bounds(land)
    xs = np.arange(np.floor(x0 / cell_m) * cell_m + cell_m / 2, x1, cell_m)
    ys = np.arange(np.floor(y0 / cell_m) * cell_m + cell_m / 2, y1, cell_m)
    if not len(xs) or not len(ys):
        return empty
    rows, cols = np.nonzero(centres_inside(land, xs[0], ys[0], cell_m, (len(ys), len(xs))))
    return np.column_stack([xs[cols], ys[rows]])


def land_in(
    parts: np.ndarray, tree: shapely.STRtree, district: shapely.Geometry
) -> shapely.Geometry:
    """``intersection(multipolygons(parts), district)``: the district's land of a union whose
    disjoint polygons are `parts` (indexed by `tree`), the same geometry to the last bit, from the
    parts that meet the district only: the overlay with the whole union goes through every part
    near the district's box (L's built-up land cut to its twelve districts: 0.55 → 0.20 s).

    The parts left out share no point with the district nor, being disjoint from it, with any of
    its edges: in GEOS's overlay they only add edges outside the district, never in the result,
    and the nodes where they touch a kept part (polygons of one dissolved group may touch at a
    point) lie outside the district too. The overlay's edges keep their order, its result rings
    start where they did, and its clipping box, smaller or not, cuts the kept rings only outside
    the district (see ``tests/test_land_speed_equivalence.py``).
    """
    hit = np.sort(tree.query(district, predicate="intersects"))
    return shapely.intersection(shapely.multipolygons(parts[hit]), district)


def same_points(
    xy: np.ndarray, other: np.ndarray, *, cell_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in `xy` and in `other` (two ``(n, 2)`` arrays of grid cell centres, `grid_cells`)
    of the points whose coordinates are the same to the last bit.

    The points are matched by their cell of the `cell_m` grid (a grid's centres come row by row,
    in the order of their cells: a binary search in `xy` for each point of `other`, no sort) and
    kept only when their coordinates' bits agree; a point missed (another grid, a cell seen twice)
    is simply not matched.
    """
    empty = np.zeros(0, dtype=np.int64)
    if not len(xy) or not len(other):
        return empty, empty
    a, b = np.ascontiguousarray(xy, dtype=float), np.ascontiguousarray(other, dtype=float)
    ca, cb = np.rint(a / cell_m - 0.5), np.rint(b / cell_m - 0.5)  # (column, row) of each cell
    lo = np.minimum(ca.min(axis=0), cb.min(axis=0))
    span = np.maximum(ca.max(axis=0), cb.max(axis=0)) - lo + 1
    if not np.isfinite(span).all() or span[0] * span[1] >= 2.0**62:
        return empty, empty
    width = int(span[0])
    ka = (ca[:, 1] - lo[1]).astype(np.int64) * width + (ca[:, 0] - lo[0]).astype(np.int64)
    kb = (cb[:, 1] - lo[1]).astype(np.int64) * width + (cb[:, 0] - lo[0]).astype(np.int64)
    del ca, cb
    order = None if (ka[1:] > ka[:-1]).all() else np.argsort(ka, kind="stable")
    ka_sorted = ka if order is None else ka[order]
    at = np.minimum(np.searchsorted(ka_sorted, kb), len(ka) - 1)
    i = at if order is None else order[at]
    same = (ka_sorted[at] == kb) & (a.view(np.int64)[i] == b.view(np.int64)).all(axis=1)
    return i[same], np.flatnonzero(same)


def joined_snaps(pieces: list[tuple[np.ndarray, cov.Snaps]], n_items: int) -> cov.Snaps:
    """One `cov.Snaps` of `n_items` items from pieces ``(positions, snaps of the items at those
    positions)`` that hold every item once, its rows ordered as ``cov.snap_xy`` orders them (by
    item, then access leg, then edge).

    With one row per item (``snap_xy`` without ties) each piece's rows are scattered to their
    place, the snapped items in order, with no sort of a city's million rows.
    """
    item = np.concatenate([at[s.item] for at, s in pieces])
    snapped = np.zeros(n_items, dtype=bool)
    snapped[item] = True
    unsnapped = np.sort(np.concatenate([at[s.unsnapped] for at, s in pieces]))
    edge, lo, hi, leg = (
        np.concatenate([getattr(s, f) for _, s in pieces])
        for f in ("edge", "lo_m", "hi_m", "leg_m")
    )
    if int(np.count_nonzero(snapped)) != len(item):  # several rows for an item: sort them
        order = np.lexsort((edge, leg, item))
        return cov.Snaps(
            item[order], edge[order], lo[order], hi[order], leg[order], unsnapped, n_items
        )
    place = (np.cumsum(snapped) - 1)[item]  # each row's place: its item's among those snapped
    return cov.Snaps(
        np.flatnonzero(snapped),
        _placed(edge, place),
        _placed(lo, place),
        _placed(hi, place),
        _placed(leg, place),
        unsnapped,
        n_items,
    )


def _placed(values: np.ndarray, place: np.ndarray) -> np.ndarray:
    """`values` moved to their `place` (a permutation)."""
    out = np.empty_like(values)
    out[place] = values
    return out


class DenominatorLand:
    """Denominator land per district (residential or built-up land, as each standard says), its
    grid cells snapped to the network once and reused by every standard."""

    def __init__(
        self,
        features: gpd.GeoDataFrame,
        d_proj: gpd.GeoDataFrame,
        rules: StandardSet,
        network: Network,
        *,
        snap_m: float,
        context: np.ndarray | None,
        unions: dict[str, shapely.Geometry] | None = None,
    ) -> None:
        self.features, self.d_proj, self.rules, self.network = features, d_proj, rules, network
        self.snap_m, self.context = snap_m, context
        #: land unions by kind, seeded with any the caller already made
        self._union: dict[str, shapely.Geometry] = dict(unions or {})
        #: per (kind, district): the land, its cell centres (coordinates) and their snaps
        self._cells: dict[tuple[str, str], tuple[shapely.Geometry, np.ndarray, cov.Snaps]] = {}
        #: per kind, while some district's land is still to cut: the union's parts and their tree
        self._parts: dict[str, tuple[np.ndarray, shapely.STRtree] | None] = {}
        # standards are measured on several threads: each union and each district's cells is
        # made once, by the first thread that asks, while the others asking for it wait
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, ...], threading.Lock] = {}

    def _lock(self, *key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def union(self, kind: str) -> shapely.Geometry:
        with self._lock("union", kind):
            if kind not in self._union:
                self._union[kind] = land_union(self.features, getattr(self.rules.land, kind))
        return self._union[kind]

    def district_land(self, kind: str, did: str) -> tuple[shapely.Geometry, cov.Snaps]:
        """The district's land of `kind` and its grid cells snapped to the network."""
        land, _, snaps = self.district_cells(kind, did)
        return land, snaps

    def district_cells(self, kind: str, did: str) -> tuple[shapely.Geometry, np.ndarray, cov.Snaps]:
        """The district's land of `kind`, its grid cell centres (an ``(n, 2)`` array), and those
        snapped to the network."""
        key = (kind, did)
        with self._lock("cells", kind, did):
            if key not in self._cells:
                dgeom = self.d_proj.loc[self.d_proj["district_id"] == did].geometry.iloc[0]
                land = self._land_in(kind, dgeom)
                pts = grid_cells(land, cell_m=self.rules.land.cell_m)
                snaps = self._snap_cells(kind, did, pts)
                self._cells[key] = (land, pts, snaps)
                if all((kind, d) in self._cells for d in self.d_proj["district_id"]):
                    self._parts.pop(kind, None)  # every district's land is cut
        return self._cells[key]

    def _land_in(self, kind: str, dgeom: shapely.Geometry) -> shapely.Geometry:
        """``intersection(union(kind), dgeom)``, from the union's parts that meet the district
        (`land_in`) when the union is polygons."""
        with self._lock("parts", kind):
            if kind not in self._parts:
                union = self.union(kind)
                parts = shapely.get_parts(union)
                polygons = (
                    shapely.get_type_id(union) in (3, 6) and (shapely.get_type_id(parts) == 3).all()
                )
                self._parts[kind] = (parts, shapely.STRtree(parts)) if polygons else None
            pieces = self._parts.get(kind)
        if pieces is None:
            return shapely.intersection(self.union(kind), dgeom)
        return land_in(*pieces, dgeom)

    def _snap_cells(self, kind: str, did: str, pts: np.ndarray) -> cov.Snaps:
        """``cov.snap_xy`` of the district's cells `pts`, the same snaps, taking those of the cells
        the district's land of another kind has already snapped (a snap is the point's alone:
        `cov.Snaps.take`): L's residential cells are all built-up cells too, a sixth of them."""
        known = [self._cells.get((k, d)) for k, d in tuple(self._cells) if d == did and k != kind]
        n = len(pts)
        left = np.ones(n, dtype=bool)
        pieces = []
        if len(self.network.snappable):
            for other in known:
                if other is None or not left.any():
                    continue
                at, j = same_points(pts, other[1], cell_m=self.rules.land.cell_m)
                keep = left[at]
                if keep.any():
                    pieces.append((at[keep], other[2].take(j[keep])))
                    left[at[keep]] = False
        if not pieces:
            return cov.snap_xy(self.network, pts, max_snap_m=self.snap_m)
        rest = np.flatnonzero(left)
        if len(rest):
            pieces.append((rest, cov.snap_xy(self.network, pts[rest], max_snap_m=self.snap_m)))
        return joined_snaps(pieces, n)

    def figures(
        self, std: Standard, fac_geoms: np.ndarray, fac_snaps: cov.Snaps, node_dist: np.ndarray
    ) -> dict[str, dict[str, float]]:
        """Per district: denominator land (km²), its share within the official circles and within
        walking distance."""
        out = {}
        reach = None  # the circles' union, made once for every district that has land
        for did in self.d_proj["district_id"]:
            land, pts, snaps = self.district_cells(std.denominator, did)
            if reach is None and len(fac_geoms) and shapely.area(land) > 0:
                reach = official_reach(fac_geoms, std.threshold_m)
            euclid = euclid_covered_share(land, fac_geoms, std.threshold_m, reach=reach)
            thr = unit_thresholds(std, self.context, snaps)
            walk = walk_covered_share(self.network, snaps, fac_snaps, node_dist, threshold_m=thr)
            detour = euclid - walk
            if std.context_thresholds_m:
                # the official circles use one radius, the walk each street's: the detour compares
                # the same cells at the same radii, straight line against walking
                detour = straight_covered_share(pts, fac_geoms, thr) - walk
            out[did] = {
                "land_km2": shapely.area(land) / 1e6,
                "area_covered_euclid_pct": euclid,
                "area_covered_pct": walk,
                "detour_loss_pp": 0.0 if abs(detour) < 1e-9 else detour,
            }
        return out

    def homes_on(self, kind: str, homes: np.ndarray) -> np.ndarray:
        """Which homes (geometries) touch land of `kind`: those the official figure counts."""
        parts = shapely.get_parts(self.union(kind))
        out = np.zeros(len(homes), dtype=bool)
        if len(parts) and len(homes):
            out[np.unique(shapely.STRtree(parts).query(homes, predicate="intersects")[0])] = True
        return out

    def edge_district(self, did: str, dgeom: shapely.Geometry) -> np.ndarray:
        """Which network edges have their midpoint in the district.

        Only the midpoints inside the district's box are tested against its outline (the same
        test, on fewer points: a city's dozen districts each tested all 1.5 million of L's
        midpoints, 0.9 s of the summary)."""
        mid = self.edge_midpoints()
        inside = np.zeros(len(mid), dtype=bool)
        if dgeom is None or shapely.is_empty(dgeom):
            return inside
        x0, y0, x1, y1 = shapely.bounds(dgeom)
        x, y = mid[:, 0], mid[:, 1]
        near = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        if len(near):
            shapely.prepare(dgeom)
            inside[near] = shapely.contains_xy(dgeom, x[near], y[near])
        return inside

    def edge_midpoints(self) -> np.ndarray:
        """The network edges' midpoints as coordinates (`Network.midpoints`)."""
        return self.network.midpoints
