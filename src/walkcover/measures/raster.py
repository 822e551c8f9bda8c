"""Rasters on walkcover's metre grids: burning polygons (land, district outlines, footprints) onto a
grid and turning a grid back into polygons, through rasterio, safely from several threads."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

#: rasterio hides its NotGeoreferencedWarning (its in-memory rasters "have no geotransform";
#: walkcover always passes one) with ``warnings.catch_warnings``, which is not thread-safe: a
#: ``catch_warnings`` on another thread can restore the filters in the middle of it. Districts are
#: written on two threads (`walkcover.presentation.outputs.write_run`), so the warning is ignored
#: for good, and rasterio's ``rasterize`` and ``shapes`` take turns (a small share of their time).
_RASTERIO = threading.Lock()
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)


def rasterize(geoms: Sequence[shapely.Geometry] | np.ndarray, **kwargs: Any) -> np.ndarray:
    """`rasterio.features.rasterize` of shapely geometries (each burned with ``default_value``),
    one thread at a time.

    Polygons reach rasterio as GeoJSON-like mappings made from one array of all their coordinates;
    shapely's ``__geo_interface__`` builds a tuple per vertex in Python, which took most of the
    time of burning a city's land (green land on L: 1.3 s against 0.7 s, the same cells).
    """
    from rasterio.features import rasterize as _rasterize

    shapes = _as_mappings(np.asarray(geoms, dtype=object))
    with _RASTERIO:
        return _rasterize(shapes, **kwargs)


def _as_mappings(geoms: np.ndarray) -> list:
    """Polygons (of polygons, multipolygons and collections) as GeoJSON-like mappings; other
    geometries (lines, points) as they are."""
    parts = shapely.get_parts(shapely.get_parts(geoms))
    parts = parts[~shapely.is_empty(parts)]
    polygon = shapely.get_type_id(parts) == 3
    out: list = list(parts[~polygon])
    if polygon.any():
        _, xy, (ring_at, poly_at) = shapely.to_ragged_array(parts[polygon])
        coords = xy.tolist()
        rings = [coords[a:b] for a, b in pairwise(ring_at.tolist())]
        out += [
            {"type": "Polygon", "coordinates": rings[a:b]} for a, b in pairwise(poly_at.tolist())
        ]
    return out


def polygons(grid: np.ndarray, transform: Affine) -> list[shapely.Geometry]:
    """The polygons of the cells set to 1 in `grid` (a uint8 raster placed by `transform`)."""
    from rasterio.features import shapes

    if not grid.any():
        return []
    with _RASTERIO:
        return [
            shapely.geometry.shape(g)
            for g, v in shapes(grid, mask=grid == 1, transform=transform)
            if v == 1
        ]


def centres_inside(
    geom: shapely.Geometry, x0: float, y0: float, cell_m: float, shape: tuple[int, int]
) -> np.ndarray:
    """Which points of the lattice ``x0 + i·cell_m, y0 + j·cell_m`` (``shape`` = rows j, columns
    i; row 0 the southernmost) lie inside `geom`'s polygons: they are burned onto a raster whose cell centres
    are those points (rasterio's rule: a cell whose centre is inside), no point geometry per cell."""
    rows, cols = shape
    parts = shapely.get_parts(shapely.get_parts(geom))  # a collection's lines and points: no area
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    if rows == 0 or cols == 0 or not len(parts):
        return np.zeros(shape, dtype=bool)
    top = y0 + (rows - 0.5) * cell_m  # north edge of the northernmost row
    transform = Affine(cell_m, 0, x0 - cell_m / 2, 0, -cell_m, top)
    burned = rasterize(parts, out_shape=shape, transform=transform, dtype=np.uint8)
    return burned[::-1].astype(bool)  # image rows run north to south
