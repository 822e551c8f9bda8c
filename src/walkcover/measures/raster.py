"""Rasters on walkcover's metre grids: burning polygons (land, district outlines, footprints) onto a
grid and turning a grid back into polygons, through rasterio, safely from several threads."""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Sequence
from itertools import chain, pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

if TYPE_CHECKING:
    from affine import Affine

#: rasterio hides its NotGeoreferencedWarning (its in-memory rasters "have no geotransform";
#: walkcover always passes one) with ``warnings.catch_warnings``, which is not thread-safe: a
#: ``catch_warnings`` on another thread can restore the filters in the middle of it. Districts are
#: written on two threads (`walkcover.presentation.outputs.write_run`), so the warning is ignored
#: for good, and rasterio's ``rasterize`` and ``shapes`` take turns (a small share of their time).
_RASTERIO = threading.Lock()


@functools.cache
def _features() -> Any:
    """``rasterio.features``, imported on first use (importing rasterio starts GDAL: a third of a
    second a run with nothing to burn need not pay), with its warning ignored for good."""
    import rasterio.features
    from rasterio.errors import NotGeoreferencedWarning

    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    return rasterio.features


def rasterize(geoms: Sequence[shapely.Geometry] | np.ndarray, **kwargs: Any) -> np.ndarray:
    """`rasterio.features.rasterize` of shapely geometries (each burned with ``default_value``),
    one thread at a time.

    Polygons reach rasterio as GeoJSON-like mappings made from one array of all their coordinates
    (`as_shapes`); shapely's ``__geo_interface__`` builds a tuple per vertex in Python, which took
    most of the time of burning a city's land (green land on L: 1.3 s against 0.7 s, the same
    cells).
    """
    return burn(as_shapes(np.asarray(geoms, dtype=object))[0], **kwargs)


def burn(shapes: Sequence | np.ndarray, **kwargs: Any) -> np.ndarray:
    """`rasterio.features.rasterize` of shapes `as_shapes` made, one thread at a time."""
    features = _features()
    with _RASTERIO:
        return features.rasterize(list(shapes), **kwargs)


def as_shapes(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`geoms`' polygons (of polygons, multipolygons and collections) as GeoJSON-like mappings,
    their other parts (lines, points) as they are, and the position in `geoms` each came from
    (made once, they can be burned in any subset: ``burn(shapes[keep[owner]])``)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    parts, inner = shapely.get_parts(parts, return_index=True)  # a collection's multipolygons
    owner = owner[inner]
    full = ~shapely.is_empty(parts)
    parts, owner = parts[full], owner[full]
    polygon = shapely.get_type_id(parts) == 3
    out = np.empty(len(parts), dtype=object)
    out[~polygon] = parts[~polygon]
    if polygon.any():
        _, xy, (ring_at, poly_at) = shapely.to_ragged_array(parts[polygon])
        coords = xy.tolist()
        rings = [coords[a:b] for a, b in pairwise(ring_at.tolist())]
        mappings = [
            {"type": "Polygon", "coordinates": rings[a:b]} for a, b in pairwise(poly_at.tolist())
        ]
        out[np.flatnonzero(polygon)] = _object_array(mappings)
    return out, owner


def _object_array(items: list) -> np.ndarray:
    """`items` as a 1-d object array (``np.array`` would look inside the mappings)."""
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def polygons(grid: np.ndarray, transform: Affine) -> np.ndarray:
    """The polygons of the cells set to 1 in `grid` (a uint8 raster placed by `transform`), as an
    array: rasterio traces them, and shapely builds them all at once from one array of their
    rings' coordinates (not a shapely constructor per polygon and ring: 3.5 → 1.2 s for 16,000
    polygons)."""
    if not grid.any():
        return np.array([], dtype=object)
    with _RASTERIO:
        traced = [
            g["coordinates"]
            for g, v in _features().shapes(grid, mask=grid == 1, transform=transform)
            if v == 1
        ]
    if not traced:
        return np.array([], dtype=object)
    # every vertex's two floats read in one pass (not an array per ring: 3 times as fast)
    rings = list(chain.from_iterable(traced))
    xy = np.fromiter(chain.from_iterable(chain.from_iterable(rings)), dtype=float)
    ring_at = np.zeros(len(rings) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, rings), dtype=np.int64, count=len(rings)), out=ring_at[1:])
    poly_at = np.zeros(len(traced) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, traced), dtype=np.int64, count=len(traced)), out=poly_at[1:])
    return shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, xy.reshape(-1, 2), (ring_at, poly_at)
    )


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
    from affine import Affine  # (with attrs: 15 ms of importing, for rasters only)

    transform = Affine(cell_m, 0, x0 - cell_m / 2, 0, -cell_m, top)
    burned = rasterize(parts, out_shape=shape, transform=transform, dtype=np.uint8)
    return burned[::-1].astype(bool)  # image rows run north to south
