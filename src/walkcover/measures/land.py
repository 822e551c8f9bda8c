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
    else:
        reach = shapely.clip_by_rect(reach, x0, y0, x1, y1)
    return 100.0 * shapely.area(shapely.intersection(land, reach)) / area


def official_reach(facilities: np.ndarray, radius_m: float) -> shapely.Geometry:
    """The union of the official circles of `radius_m` around `facilities` (an empty polygon when
    there are none): the area `euclid_covered_share` counts."""
    if len(facilities) == 0:
        return shapely.Polygon()
    return shapely.union_all(shapely.buffer(facilities, radius_m, quad_segs=32))


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
    """Share of land cells (points) within `radius_m` (scalar or per cell) in a straight line of a
    facility, in %: the official circles on the walking figure's cells and radii. NaN without cells."""
    if len(cells) == 0:
        return float("nan")
    if len(facilities) == 0:
        return 0.0
    r = np.broadcast_to(np.asarray(radius_m, dtype=float), (len(cells),))
    pairs, dist = shapely.STRtree(facilities).query_nearest(
        cells, max_distance=float(r.max()), return_distance=True, all_matches=False
    )
    idx = pairs[0]
    near = np.zeros(len(cells), dtype=bool)
    near[idx] = dist <= r[idx]
    return 100.0 * float(near.mean())


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
                land = shapely.intersection(self.union(kind), dgeom)
                pts = grid_cells(land, cell_m=self.rules.land.cell_m)
                snaps = cov.snap_xy(self.network, pts, max_snap_m=self.snap_m)
                self._cells[key] = (land, pts, snaps)
        return self._cells[key]

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
                detour = straight_covered_share(shapely.points(pts), fac_geoms, thr) - walk
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
        """Which network edges have their midpoint in the district."""
        shapely.prepare(dgeom)
        mid = self.edge_midpoints()
        inside: np.ndarray = shapely.contains_xy(dgeom, mid[:, 0], mid[:, 1])
        return inside

    def edge_midpoints(self) -> np.ndarray:
        """The network edges' midpoints as coordinates (`Network.midpoints`)."""
        return self.network.midpoints
