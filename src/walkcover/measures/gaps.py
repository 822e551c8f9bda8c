"""Where the gaps are: uncovered residential areas as polygons, and the land within walking distance.

Gap polygons are the denominator land's grid cells that are not within walking distance and the
cells the uncovered homes touch, on one raster, closed so areas a cell apart join, and polygonised.
Service areas are measured on a lattice, each corner the way a home is measured (its leg to the
nearest street, then the walk), and a cell counts only when all four corners are within the
threshold less the most the distance can grow inside a cell, so they never include land beyond the
walking distance.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.config.crs import to_lonlat
from walkcover.engine import coverage as cov
from walkcover.measures.raster import as_shapes, burn, centres_inside, polygons, rasterize

if TYPE_CHECKING:
    import pyproj

    from walkcover.config.standards import Standard, StandardSet
    from walkcover.engine.network import Network
    from walkcover.measures.land import DenominatorLand

GAP_COLUMNS = [
    "standard",
    "rank",
    "residents_uncovered",
    "units_uncovered",
    "area_m2",
    "dist_m_at_centre",
    "status_at_centre",
    "centre_x_m",
    "centre_y_m",
    "centre_lon",
    "centre_lat",
    "geometry",
]
#: The columns of `GAP_COLUMNS` that say where a gap's centre is: the point its
#: ``dist_m_at_centre`` was measured at, in the working CRS (metres) and in EPSG:4326.
GAP_CENTRE_COLUMNS = ["centre_x_m", "centre_y_m", "centre_lon", "centre_lat"]

#: The lattice step of the service areas (m).
SERVICE_AREA_CELL_M = 10.0


class Measured(Protocol):
    """What gaps and service areas read of a run's measurement (`walkcover.assessment.Assessment`
    has it all; this layer cannot import it). Read-only: nothing here is written to."""

    @property
    def standards(self) -> list[Standard]: ...
    @property
    def rules(self) -> StandardSet: ...
    @property
    def crs(self) -> pyproj.CRS: ...
    @property
    def network(self) -> Network: ...
    @property
    def demand(self) -> gpd.GeoDataFrame: ...
    @property
    def passes(self) -> Mapping[str, Any]: ...  # standard id → `assessment.StandardPass`
    @property
    def lands(self) -> DenominatorLand | None: ...
    @property
    def city(self) -> Any: ...  # `walkcover.config.study_area.City`

    def standard(self, standard_id: str) -> Standard: ...

    def thresholds(self, standard: Standard, snaps: cov.Snaps) -> np.ndarray | float: ...

    def district_geometry(self, district_id: str) -> shapely.Geometry: ...


@dataclass(frozen=True)
class DistrictLayers:
    """One district's derived layers, measured once with the run: its ``gaps`` (every standard,
    `GAP_COLUMNS`) and ``service_areas`` (a row per standard). Outputs render them; none
    measures them again."""

    gaps: gpd.GeoDataFrame
    service_areas: gpd.GeoDataFrame


@dataclass(frozen=True)
class StandardLayers:
    """One standard's part of a district's layers: its gap polygons (`GAP_COLUMNS`; none when
    every home is covered) and its row of the service areas (``standard, threshold_m, area_m2,
    geometry``). `joined_layers` puts a district's parts together."""

    gaps: gpd.GeoDataFrame
    service_area: dict[str, Any]


def standard_layers(
    result: Measured,
    district_id: str,
    standards: list[Standard],
    *,
    reached: shapely.Geometry | None,
    extent: shapely.Geometry | Literal["measure"] | None = "measure",
) -> dict[str, StandardLayers]:
    """The parts of one district's layers of `standards` (`reached`: the run's `reached_box`;
    `extent`: the district's `service_extent`, measured here if not given)."""
    if extent == "measure":
        extent = service_extent(result, district_id, reached=reached)
    homes = _district_homes(result, district_id)
    gaps = {s.id: _gap_polygons(result, s.id, district_id, homes) for s in standards}
    rows = _service_area_rows(result, district_id, standards, extent=extent)
    return {s.id: StandardLayers(gaps[s.id], rows[s.id]) for s in standards}


def joined_layers(result: Measured, parts: list[StandardLayers]) -> DistrictLayers:
    """A district's layers from its standards' parts (in the run's standard order)."""
    return DistrictLayers(
        gaps=_joined_gaps(result, [p.gaps for p in parts]),
        service_areas=gpd.GeoDataFrame(
            [p.service_area for p in parts], geometry="geometry", crs=result.crs
        ),
    )


#: Districts whose layers are measured at a time: the lattices, rasters and shortest-path
#: gathers release the interpreter lock, so two cores share them.
LAYER_THREADS = 2


def measure_layers(
    result: Measured,
    todo: Mapping[str, list[Standard]],
    *,
    homes: Mapping[str, int] | None = None,
    reached: shapely.Geometry | None = None,
    extents: Mapping[str, shapely.Geometry | None] | None = None,
) -> dict[str, dict[str, StandardLayers]]:
    """`standard_layers` of every district in `todo` for the standards it lists there,
    `LAYER_THREADS` districts at a time, those with most `homes` first (a large district started
    last would run on alone); a district with none to measure costs nothing. `reached` is the
    run's `reached_box`, `extents` the districts' `service_extent` (measured here if not
    given)."""
    counts = homes or {}
    order = sorted((d for d, stds in todo.items() if stds), key=lambda d: -int(counts.get(d, 0)))

    def one(d: str) -> dict[str, StandardLayers]:
        extent = extents[d] if extents is not None else "measure"
        return standard_layers(result, d, todo[d], reached=reached, extent=extent)

    if len(order) < 2:
        done = [one(d) for d in order]
    else:
        with ThreadPoolExecutor(max_workers=LAYER_THREADS) as pool:
            done = list(pool.map(one, order))
    return dict(zip(order, done))


def _grid(xmin: float, ymin: float, xmax: float, ymax: float, cell_m: float, pad: int = 2):
    """An empty raster on the `cell_m` lattice covering the box, with `pad` spare cells around."""
    c0 = int(np.floor(xmin / cell_m)) - pad
    r0 = int(np.floor(ymin / cell_m)) - pad
    c1 = int(np.floor(xmax / cell_m)) + pad
    r1 = int(np.floor(ymax / cell_m)) + pad
    grid = np.zeros((r1 - r0 + 1, c1 - c0 + 1), dtype=np.uint8)
    from affine import Affine  # (with attrs: 15 ms of importing, for rasters only)

    return grid, Affine(cell_m, 0, c0 * cell_m, 0, -cell_m, (r1 + 1) * cell_m), c0, r1


def _burn_points(grid: np.ndarray, c0: int, r1: int, xy: np.ndarray, cell_m: float) -> None:
    col = np.floor(xy[:, 0] / cell_m).astype(np.int64)
    row = np.floor(xy[:, 1] / cell_m).astype(np.int64)
    grid[r1 - row, col - c0] = 1


def gap_polygons(result: Measured, standard_id: str, district_id: str) -> gpd.GeoDataFrame:
    """The uncovered residential areas of one district for one standard, ranked by residents.

    Parameters
    ----------
    result
        A finished `walkcover.assessment.Assessment`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``standard, rank, residents_uncovered, units_uncovered, area_m2, dist_m_at_centre``
        (the walk to the nearest facility at the polygon's centre, a point inside it, measured as
        the home or land there is (`centre_walks`): beyond the standard; NaN where there is
        none), ``status_at_centre`` (why that walk is what it is, as a home's
        ``<standard>_status`` says it: ``beyond_threshold``, or, where the walk is NaN,
        ``beyond_search_limit``, ``unreachable``, ``unsnapped`` or ``no_facilities``), the
        centre itself (`GAP_CENTRE_COLUMNS`: ``centre_x_m, centre_y_m`` in the working CRS,
        ``centre_lon, centre_lat`` in EPSG:4326), geometry (working CRS).
    """
    return _gap_polygons(result, standard_id, district_id, _district_homes(result, district_id))


def _gap_polygons(
    result: Measured, standard_id: str, district_id: str, homes: _Homes
) -> gpd.GeoDataFrame:
    std = result.standard(standard_id)
    p = result.passes[standard_id]
    net = result.network
    if result.lands is None:
        raise ValueError("gap polygons need the run's denominator land (`Assessment.lands`)")
    _, pts, cells = result.lands.district_cells(std.denominator, district_id)
    cell_m = result.rules.land.cell_m
    uncovered = np.zeros(len(pts), dtype=bool)
    if cells.n_items:
        dist = cov.demand_distances(net, cells, p.snaps, p.node_dist)
        uncovered = ~(dist <= result.thresholds(std, cells))
    miss = ~result.demand[f"{standard_id}_covered"].to_numpy(dtype=bool)[homes.at]
    foot = homes.footprints[miss]
    if not uncovered.any() and not len(foot):
        return gpd.GeoDataFrame({c: [] for c in GAP_COLUMNS[:-1]}, geometry=[], crs=result.crs)
    # One raster on the land grid: the uncovered land cells and every cell an uncovered home
    # touches; a closing joins areas less than a cell apart (a block stays exactly as it is).
    from scipy.ndimage import binary_closing

    boxes = [shapely.total_bounds(foot)] if len(foot) else []  # a box, never a union
    if uncovered.any():
        ux, uy = pts[uncovered, 0], pts[uncovered, 1]
        boxes.append((ux.min(), uy.min(), ux.max(), uy.max()))
    b = np.array(boxes)
    grid, transform, c0, r1 = _grid(
        b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max(), cell_m
    )
    if uncovered.any():
        _burn_points(grid, c0, r1, pts[uncovered], cell_m)
    if len(foot):
        grid |= burn(
            homes.shapes[miss[homes.owner]],
            out_shape=grid.shape,
            transform=transform,
            all_touched=True,
            dtype=np.uint8,
        )
    grid = binary_closing(grid, structure=np.ones((3, 3), dtype=bool)).astype(np.uint8)
    merged = polygons(grid, transform)
    # each gap asks which homes' points it contains (the gap prepared once: a point within a
    # gap's thousands of vertices was tested against all of them), in the homes' order as
    # `within` gave them: a home lies in one gap at most, and the sums below add in that order
    hit_gap, hit_unit = shapely.STRtree(homes.inside[miss]).query(merged, predicate="contains")
    order = np.lexsort((hit_gap, hit_unit))
    hit_unit, hit_gap = hit_unit[order], hit_gap[order]
    res = np.zeros(len(merged))
    units = np.zeros(len(merged), dtype=np.int64)
    np.add.at(res, hit_gap, homes.residents[miss][hit_unit])
    np.add.at(units, hit_gap, 1)
    # the walk at each gap's centre (the point the report gives the lon/lat of), as the home or
    # land there is measured: never one within the standard (`centre_walks`)
    # (the centre is kept with the gap: every output gives this point, never one of its own)
    centre = shapely.point_on_surface(merged)
    cs = cov.snap(net, centre, max_snap_m=result.city.config.network.max_snap_m)
    land_walk_m = cov.demand_distances(net, cs, p.snaps, p.node_dist)
    land_within = land_walk_m <= result.thresholds(std, cs)
    cells_walk_m = dist[uncovered] if cells.n_items else np.zeros(0)
    pick = centre_picks(
        centre,
        merged,
        land_within=land_within,
        homes=foot,
        cells_xy_m=np.floor(pts[uncovered] / cell_m) * cell_m,  # the squares burned
        cell_size_m=cell_m,
    )
    # each centre's walk and its status, from what it takes them from (`centre_picks`): its own
    # walk as land, an uncovered home's (as the demand frame has it) or an uncovered cell's
    land_dist_m = np.where(land_walk_m <= p.limit_m, land_walk_m, np.nan)
    home_dist_m = result.demand[f"{standard_id}_dist_m"].to_numpy(dtype=float)[homes.at][miss]
    cell_dist_m = np.where(cells_walk_m <= p.limit_m, cells_walk_m, np.nan)
    statuses = [
        cov.walk_status(net, cs, p.snaps, dist_m=land_dist_m, covered=land_within),
        result.demand[f"{standard_id}_status"].to_numpy(dtype=object)[homes.at][miss],
        _cell_status(net, cells, p.snaps, uncovered=uncovered, cell_dist_m=cell_dist_m),
    ]
    walks = np.concatenate([land_dist_m, home_dist_m, cell_dist_m])
    picked = np.where(pick < 0, np.arange(len(centre)), len(centre) + pick)
    cdist = walks[picked]
    status = np.concatenate(statuses)[picked].astype(object)
    cx, cy = shapely.get_x(centre), shapely.get_y(centre)
    lonlat = to_lonlat(centre, result.crs)
    out = gpd.GeoDataFrame(
        {
            "standard": standard_id,
            "residents_uncovered": np.round(res, 1),
            "units_uncovered": units,
            "area_m2": np.round(shapely.area(merged), 1),
            "dist_m_at_centre": np.round(cdist, 1),
            "status_at_centre": status,
            "centre_x_m": cx,
            "centre_y_m": cy,
            "centre_lon": shapely.get_x(lonlat),
            "centre_lat": shapely.get_y(lonlat),
        },
        geometry=merged,
        crs=result.crs,
    )
    out = out.sort_values(["residents_uncovered", "area_m2"], ascending=False, kind="mergesort")
    out.insert(1, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)[GAP_COLUMNS]


def _cell_status(
    net: Network,
    cells: cov.Snaps,
    facilities: cov.Snaps,
    *,
    uncovered: np.ndarray,
    cell_dist_m: np.ndarray,
) -> np.ndarray:
    """The status (`coverage.walk_status`) of each uncovered land cell, whose walks (NaN: none
    within the search limit) are `cell_dist_m`."""
    if not cells.n_items:
        return np.zeros(0, dtype=object)
    dist_m = np.full(cells.n_items, np.nan)
    dist_m[uncovered] = cell_dist_m
    covered = ~np.asarray(uncovered, dtype=bool)
    return cov.walk_status(net, cells, facilities, dist_m=dist_m, covered=covered)[uncovered]


def centre_picks(
    centres: np.ndarray,
    gaps: np.ndarray,
    *,
    land_within: np.ndarray,
    homes: np.ndarray,
    cells_xy_m: np.ndarray,
    cell_size_m: float,
) -> np.ndarray:
    """Whose walk each gap's centre takes (`centre_walks` says why): its own as land, an
    uncovered home's or an uncovered land cell's.

    Parameters
    ----------
    centres, gaps
        A point inside each gap, and the gaps (polygons).
    land_within
        Whether each centre's own walk, measured as land, is within its standard.
    homes
        The uncovered homes' footprints.
    cells_xy_m, cell_size_m
        The uncovered land cells' squares (their south-west corners, an array of shape
        ``(n, 2)``, and their side).

    Returns
    -------
    numpy.ndarray
        One integer per centre: -1 its own walk as land, ``i`` the walk of ``homes[i]``,
        ``len(homes) + j`` that of the ``j``-th cell.
    """
    out = np.full(len(centres), -1, dtype=np.int64)
    settled = np.zeros(len(centres), dtype=bool)
    if len(homes):
        at, home = shapely.STRtree(homes).query(centres, predicate="intersects")
        order = np.lexsort((home, at))  # per centre, the first home holding it
        at, home = at[order], home[order]
        first = np.r_[True, at[1:] != at[:-1]] if len(at) else np.zeros(0, dtype=bool)
        out[at[first]] = home[first]
        settled[at[first]] = True
    todo = np.flatnonzero(~settled & np.asarray(land_within, dtype=bool))
    if len(todo) and len(homes) + len(cells_xy_m):
        # (the squares made only for the few centres that need them)
        x, y = cells_xy_m[:, 0], cells_xy_m[:, 1]
        units = np.concatenate([homes, shapely.box(x, y, x + cell_size_m, y + cell_size_m)])
        g, u = shapely.STRtree(units).query(gaps[todo], predicate="intersects")
        near = shapely.distance(centres[todo][g], units[u])
        order = np.lexsort((u, near, g))  # per gap, the nearest unit (homes come first)
        g, u = g[order], u[order]
        first = np.r_[True, g[1:] != g[:-1]] if len(g) else np.zeros(0, dtype=bool)
        out[todo[g[first]]] = u[first]
    return out


def centre_walks(
    centres: np.ndarray,
    gaps: np.ndarray,
    *,
    land_walk_m: np.ndarray,
    land_within: np.ndarray,
    homes: np.ndarray,
    home_walk_m: np.ndarray,
    cells_xy_m: np.ndarray,
    cell_size_m: float,
    cell_walk_m: np.ndarray,
) -> np.ndarray:
    """The walk at each gap's centre (``dist_m_at_centre``), as the gap's own homes and land are
    measured, so that it is never one within the standard.

    A gap is made of the homes and land cells beyond the standard (`homes`, `cells_xy_m`: their
    footprints and squares; `home_walk_m`, `cell_walk_m`: their walks), and a centre (a point
    inside its gap, from `shapely.point_on_surface`) is measured as (`centre_picks`):

    1. the walk of the uncovered home whose footprint holds it (the first, where they overlap):
       a home walks from its own nearest street, and a point inside it, measured as bare land,
       may take another street's (on the sample, a footway 14 m from a block's middle gave 474 m
       where the block itself, 1 m from its street, walks 516 m to a 500 m school);
    2. else its own walk as land (`land_walk_m`), where that is beyond its standard (not
       `land_within`);
    3. else, the centre lying on land within the standard that the gap holds only to join its
       parts or to hold a home's edge (a cell the closing or a footprint's edge added), the walk
       of the gap's uncovered home or cell nearest it (homes first, then the lower position,
       where two are as near).

    Parameters
    ----------
    centres, gaps
        A point inside each gap, and the gaps (polygons).
    land_walk_m, land_within
        Each centre's own walk measured as land (inf where there is none within the search
        limit), and whether that is within its standard.
    homes, home_walk_m
        The uncovered homes' footprints and their walks (NaN: none within the search limit).
    cells_xy_m, cell_size_m, cell_walk_m
        The uncovered land cells' squares (their south-west corners, an array of shape
        ``(n, 2)``, and their side) and their walks (inf: none).

    Returns
    -------
    numpy.ndarray
        One walk per gap, in metres (inf or NaN where there is none within the search limit).
    """
    pick = centre_picks(
        centres,
        gaps,
        land_within=land_within,
        homes=homes,
        cells_xy_m=cells_xy_m,
        cell_size_m=cell_size_m,
    )
    land = np.asarray(land_walk_m, dtype=float)
    walks = np.concatenate([home_walk_m, cell_walk_m]).astype(float)
    return np.where(pick < 0, land, walks[np.maximum(pick, 0)] if len(walks) else land)


@dataclass(frozen=True)
class _Homes:
    """A district's homes as every standard's gaps use them, made once per district: their rows
    in the demand frame, footprints made valid, those footprints as shapes to burn (`as_shapes`:
    ``owner`` says whose), a point inside each, and their residents."""

    at: np.ndarray
    footprints: np.ndarray
    shapes: np.ndarray
    owner: np.ndarray
    inside: np.ndarray
    residents: np.ndarray


def _district_homes(result: Measured, district_id: str) -> _Homes:
    d = result.demand
    at = np.flatnonzero((d["district_id"] == district_id).to_numpy())
    raw = d.geometry.to_numpy()[at]
    foot = shapely.make_valid(raw)
    shapes, owner = as_shapes(foot)
    return _Homes(
        at=at,
        footprints=foot,
        shapes=shapes,
        owner=owner,
        inside=shapely.point_on_surface(raw),
        residents=d["residents"].to_numpy(dtype=float)[at],
    )


#: Lattice corners snapped and measured at a time: memory stays flat however large the district
#: (a band's own arrays about 15 MB, with the KD-tree search's temporaries for
#: `coverage.NEAREST_CHUNK_POINTS` corners at a time: about 40 MB in all a thread, where bands of
#: 250,000 corners and a full grid of coordinates held three times that), and each standard's
#: distances are still taken for many corners per call.
LATTICE_BAND_POINTS = 100_000


@dataclass(frozen=True)
class Lattice:
    """Lattice corners over an extent (coordinates only: no geometry per corner, not even a full
    grid of them): corner ``(j, i)`` lies at ``(xs[i], ys[j])``, row 0 the southernmost. With
    `inside`, only the corners set there are measured (the others are never within reach)."""

    xs: np.ndarray
    ys: np.ndarray
    cell_m: float
    inside: np.ndarray | None = None

    @classmethod
    def over(
        cls, extent: shapely.Geometry, *, cell_m: float, within: shapely.Geometry | None = None
    ) -> Lattice:
        """The corners over `extent`'s box; with `within`, only those inside it are measured (a
        district's outline is far smaller than its box, which overlaps its neighbours)."""
        x0, y0, x1, y1 = shapely.bounds(extent)
        xs = np.arange(np.floor(x0 / cell_m) * cell_m, x1 + cell_m, cell_m)
        ys = np.arange(np.floor(y0 / cell_m) * cell_m, y1 + cell_m, cell_m)
        inside = None
        if within is not None:
            inside = centres_inside(within, xs[0], ys[0], cell_m, (len(ys), len(xs)))
        return cls(xs, ys, cell_m, inside)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of corners: the shape of `inside` and of `within_reach`'s grids."""
        return len(self.ys), len(self.xs)

    def bands(self) -> list[tuple[int, int]]:
        """Row ranges ``[r0, r1)`` holding at most `LATTICE_BAND_POINTS` corners to measure each
        (or a single row that holds more): a district's outline leaves most of its box's rows
        short, so bands are cut by the corners measured, not by the rows."""
        n_rows, n_cols = self.shape
        per_row = np.full(n_rows, n_cols) if self.inside is None else self.inside.sum(axis=1)
        upto = np.concatenate([[0], np.cumsum(per_row)])  # corners before each row
        out = []
        r0 = 0
        while r0 < n_rows:
            r1 = int(np.searchsorted(upto, upto[r0] + LATTICE_BAND_POINTS, side="right")) - 1
            r1 = min(max(r1, r0 + 1), n_rows)
            if upto[r1] > upto[r0]:
                out.append((r0, r1))
            r0 = r1
        return out

    def within_reach(self, result: Measured, standards: list) -> dict[str, np.ndarray]:
        """Per standard, which corners are within its threshold less ``√2 · cell_m`` (a boolean
        grid of `shape`): each band of rows (`bands`) is snapped once and measured for every
        standard, then let go."""
        net = result.network
        ok = {s.id: np.zeros(self.shape, dtype=bool) for s in standards}
        n_cols = self.shape[1]
        for r0, r1 in self.bands():
            if self.inside is not None:
                at = np.flatnonzero(self.inside[r0:r1])
            else:
                at = np.arange((r1 - r0) * n_cols)
            row, col = np.divmod(at, n_cols)
            xy = np.empty((len(at), 2))
            xy[:, 0] = self.xs[col]
            xy[:, 1] = self.ys[row + r0]
            del row, col
            snaps = cov.snap_xy(net, xy, max_snap_m=result.city.config.network.max_snap_m)
            del xy
            for std in standards:
                p = result.passes[std.id]
                dist = cov.demand_distances(net, snaps, p.snaps, p.node_dist)
                limit = np.asarray(result.thresholds(std, snaps)) - np.sqrt(2.0) * self.cell_m
                band = ok[std.id][r0:r1].reshape(-1)  # a view: rows of the grid are contiguous
                band[at] = dist <= limit
        return ok

    def area(self, ok: np.ndarray, polys: np.ndarray) -> shapely.Geometry:
        """The cells whose four corners are `ok`, with the facilities' own grounds `polys`, as one
        (multi)polygon."""
        covered = ok[:-1, :-1] & ok[1:, :-1] & ok[:-1, 1:] & ok[1:, 1:]
        # Raster rows run north to south: flip the lattice (south to north) into image order.
        grid = covered[::-1].astype(np.uint8)
        from affine import Affine  # (with attrs: 15 ms of importing, for rasters only)

        transform = Affine(self.cell_m, 0, self.xs[0], 0, -self.cell_m, self.ys[-1])
        if len(polys):  # the facilities' own grounds are within reach: those over the lattice
            b = shapely.bounds(polys)
            x0, y0, x1, y1 = self.xs[0], self.ys[0], self.xs[-1], self.ys[-1]
            over = (b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)
            if over.any():
                grounds = rasterize(
                    polys[over],
                    out_shape=grid.shape,
                    transform=transform,
                    dtype=np.uint8,
                )
                if self.inside is not None:
                    # the grounds too stop where the lattice does: at the cells whose four
                    # corners are measured (not wherever the grid's box happens to end)
                    i = self.inside
                    cells = i[:-1, :-1] & i[1:, :-1] & i[:-1, 1:] & i[1:, 1:]
                    grounds &= cells[::-1].astype(np.uint8)
                grid |= grounds
        pieces = polygons(grid, transform)
        return shapely.multipolygons(pieces) if len(pieces) else shapely.Polygon()


def _grounds(result: Measured, standard_id: str) -> np.ndarray:
    """The standard's counted facilities that are areas (their grounds are within reach)."""
    g = result.passes[standard_id].counted.geometry.to_numpy()
    return g[np.isin(shapely.get_type_id(g), (3, 6))]


#: How far past its boundary a district's service areas are drawn: enough for the map to show
#: them running on across the border, not the whole walking distance (a 1 km band around a 5 km
#: district doubled its lattice, and the neighbours measured the same land again).
SERVICE_AREA_MARGIN_M = 100.0


def district_service_areas(
    result: Measured,
    district_id: str,
    *,
    cell_m: float = SERVICE_AREA_CELL_M,
    reached: shapely.Geometry | Literal["measure"] | None = "measure",
) -> gpd.GeoDataFrame:
    """Layer ``service_areas``: per standard, the land within walking distance in one district and
    `SERVICE_AREA_MARGIN_M` around it. `reached` is `reached_box` of the run where the caller has
    it (the same for every district), else it is measured here."""
    if isinstance(reached, str):
        reached = reached_box(result)
    extent = service_extent(result, district_id, reached=reached)
    rows = _service_area_rows(result, district_id, result.standards, extent=extent, cell_m=cell_m)
    return gpd.GeoDataFrame(list(rows.values()), geometry="geometry", crs=result.crs)


def service_extent(
    result: Measured, district_id: str, *, reached: shapely.Geometry | None
) -> shapely.Geometry | None:
    """Where a district's service areas are measured: the part of its box (grown by
    `SERVICE_AREA_MARGIN_M`) inside `reached` (`reached_box`), grown to hold the grounds of
    every standard's facilities there; None when nothing is reached. The same for all the
    run's standards, whichever of them are measured."""
    around = shapely.buffer(result.district_geometry(district_id), SERVICE_AREA_MARGIN_M)
    extent = _reached_extent(reached, around)
    return None if extent is None else _with_grounds(result, extent, around)


def _service_area_rows(
    result: Measured,
    district_id: str,
    standards: list[Standard],
    *,
    extent: shapely.Geometry | None,
    cell_m: float = SERVICE_AREA_CELL_M,
) -> dict[str, dict[str, Any]]:
    """Per standard of `standards`, its row of the district's service areas, measured on the
    lattice over `extent` (`service_extent`)."""
    dgeom = result.district_geometry(district_id)
    around = shapely.buffer(dgeom, SERVICE_AREA_MARGIN_M)
    lattice = None if extent is None else Lattice.over(extent, cell_m=cell_m, within=around)
    ok = {} if lattice is None else lattice.within_reach(result, standards)
    rows = {}
    for std in standards:
        if lattice is None:  # no street near the district is within reach of a facility
            polys = _grounds(result, std.id)
            polys = polys[shapely.intersects(polys, dgeom)]
            area = shapely.union_all(polys) if len(polys) else shapely.Polygon()
        else:
            area = lattice.area(ok[std.id], _grounds(result, std.id))
        rows[std.id] = {
            "standard": std.id,
            "threshold_m": std.threshold_m,
            "area_m2": round(shapely.area(area), 1),
            "geometry": area,
        }
    return rows


def _reached_extent(
    box: shapely.Geometry | None, around: shapely.Geometry
) -> shapely.Geometry | None:
    """The part of `around`'s bounding box inside `box` (`reached_box`): the lattice goes only
    where there is something to measure, not over a county's empty extent. None when nothing is
    reached there."""
    if box is None:
        return None
    clipped = shapely.intersection(box, shapely.envelope(around))
    return None if shapely.is_empty(clipped) or shapely.area(clipped) == 0 else clipped


def _with_grounds(
    result: Measured, extent: shapely.Geometry, around: shapely.Geometry
) -> shapely.Geometry:
    """`extent` grown to hold the facilities' grounds that meet `around` (within its box): they
    belong to the service areas wherever streets are reached, and the lattice must not cut them
    where the streets a run holds happen to end (a district run's network stops at its study
    area, the city's does not)."""
    boxes = [shapely.bounds(extent)]
    area = shapely.from_wkb(shapely.to_wkb(around))  # prepared on a copy
    shapely.prepare(area)
    for std in result.standards:
        g = _grounds(result, std.id)
        g = g[shapely.intersects(area, g)] if len(g) else g
        if len(g):
            boxes.append(shapely.total_bounds(g))
    b = np.array(boxes)
    grown = shapely.box(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    return shapely.intersection(grown, shapely.envelope(around))


def reached_box(result: Measured) -> shapely.Geometry | None:
    """The box of the streets some facility reaches within the largest threshold of the run's
    standards, grown by that threshold: the same for every district, so taken once per run."""
    reach_m = max((s.max_threshold_m for s in result.standards), default=0.0)
    e = result.network.edges
    if not len(e):
        return None
    u, v = e["u_idx"].to_numpy(), e["v_idx"].to_numpy()
    near = np.zeros(len(e), dtype=bool)
    for p in result.passes.values():
        near |= np.minimum(p.node_dist[u], p.node_dist[v]) < reach_m
        near[p.snaps.edge] = True
    geoms = e.geometry.to_numpy()[near]
    if not len(geoms):
        return None
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    pad = reach_m  # land up to the threshold beyond the last reached street
    return shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad)


def district_gaps(result: Measured, district_id: str) -> gpd.GeoDataFrame:
    """Layer ``gaps``: the gap polygons of every standard for one district (its homes prepared
    once for all of them)."""
    homes = _district_homes(result, district_id)
    return _joined_gaps(
        result, [_gap_polygons(result, s.id, district_id, homes) for s in result.standards]
    )


def _joined_gaps(result: Measured, frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Standards' gap polygons as one layer (in the order given)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in GAP_COLUMNS[:-1]}, geometry=[], crs=result.crs)
    return gpd.GeoDataFrame(
        pd.concat(frames, ignore_index=True), geometry="geometry", crs=result.crs
    )


def service_area(
    result: Measured,
    standard_id: str,
    *,
    within: shapely.Geometry | None = None,
    cell_m: float = 5.0,
) -> shapely.Geometry:
    """The land within walking distance of the standard's facilities, as one (multi)polygon.

    Land is measured the way `run` measures a home: the straight leg to its nearest street, then the
    walk. The distance is taken at the corners of a `cell_m` lattice, and a cell belongs to the area
    only when all four corners are within the threshold less ``√2 · cell_m`` (the most the distance
    can grow inside a cell), so the area never includes land beyond the walking distance. The
    facilities' own polygons are added. With `within`, only land within the largest threshold of it.
    `district_service_areas` measures every standard of a district on one `Lattice`.
    """
    std = result.standard(standard_id)
    p = result.passes[standard_id]
    e = result.network.edges
    du, dv = p.node_dist[e["u_idx"].to_numpy()], p.node_dist[e["v_idx"].to_numpy()]
    near = np.minimum(du, dv) < std.max_threshold_m
    near[p.snaps.edge] = True
    if within is not None:
        extent = shapely.buffer(within, std.max_threshold_m)
    elif near.any():
        extent = shapely.buffer(shapely.union_all(e.geometry.to_numpy()[near]), std.max_threshold_m)
    else:
        extent = shapely.Polygon()
    polys = _grounds(result, standard_id)
    if shapely.is_empty(extent) or not near.any():
        return shapely.union_all(polys) if len(polys) else shapely.Polygon()
    lattice = Lattice.over(extent, cell_m=cell_m)
    return lattice.area(lattice.within_reach(result, [std])[std.id], polys)
