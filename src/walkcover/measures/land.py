"""Land for area-based figures: residential or built-up land, the official Euclidean share covered,
and the share within walking distance measured on a grid of cells."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from walkcover.config.standards import Selector, features_matching
from walkcover.engine import coverage as cov
from walkcover.engine.network import Network


def land_union(features: gpd.GeoDataFrame, selectors: list[Selector]) -> shapely.Geometry:
    """The union of the polygons matching `selectors` (projected), made valid."""
    polys = features_matching(features, selectors)
    polys = polys[polys.geom_type.isin(["Polygon", "MultiPolygon"])]
    if not len(polys):
        return shapely.Polygon()
    return shapely.union_all(shapely.make_valid(polys.geometry.to_numpy()))


def euclid_covered_share(land: shapely.Geometry, facilities: np.ndarray, radius_m: float) -> float:
    """The official method, exactly: area(union of circles of `radius_m` around the facilities ∩ land)
    ÷ area(land), in percent. A polygon facility's circle is its outline grown by the radius.

    NaN when there is no land.
    """
    area = shapely.area(land)
    if area <= 0:
        return float("nan")
    if len(facilities) == 0:
        return 0.0
    reach = shapely.union_all(shapely.buffer(facilities, radius_m, quad_segs=32))
    return 100.0 * shapely.area(shapely.intersection(land, reach)) / area


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


def grid_cells(land: shapely.Geometry, *, cell_m: float) -> np.ndarray:
    """Centres of the `cell_m` grid cells whose centre lies in `land` (a grid anchored at 0, 0)."""
    if shapely.is_empty(land):
        return np.array([], dtype=object)
    x0, y0, x1, y1 = shapely.bounds(land)
    xs = np.arange(np.floor(x0 / cell_m) * cell_m + cell_m / 2, x1, cell_m)
    ys = np.arange(np.floor(y0 / cell_m) * cell_m + cell_m / 2, y1, cell_m)
    if not len(xs) or not len(ys):
        return np.array([], dtype=object)
    gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
    shapely.prepare(land)
    inside = shapely.contains_xy(land, gx, gy)
    return shapely.points(gx[inside], gy[inside])
