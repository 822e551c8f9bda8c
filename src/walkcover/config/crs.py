"""Projected geometries back to longitude and latitude without PROJ's search, where it is exact.

pyproj finds a transformation between two CRSs by searching PROJ's database: 50-60 ms for
EPSG:4547 (CGCS2000 / Gauss-Kruger 114E) to EPSG:4326, in every process and again in every thread.
A run of a county with no data takes about a second, and paid it for one polygon (its study area).

When a projected CRS's own datum is WGS 84's (a UTM zone), or one PROJ knows no shift from
(CGCS2000, ETRS89), the way back to EPSG:4326 is the inverse of its projection alone, which
pyproj makes at once. `to_lonlat` uses it only when that is so for the geometry at hand: its result
projected forward again by PROJ's own transformation (the one a run made first, and has) must land
within `ROUND_TRIP_M` of the input; else (a datum shifted from WGS 84, such as Beijing 1954) PROJ's
transformation back is used, as `GeoSeries.to_crs` would.
"""

from __future__ import annotations

import functools
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

#: How near the forward projection of the result must come back to the input, in metres.
ROUND_TRIP_M = 1e-3


@functools.lru_cache(maxsize=16)
def _inverse_projection(crs: pyproj.CRS) -> pyproj.Transformer | None:
    """The inverse of `crs`'s projection, to its own geographic CRS (None if it has none)."""
    base = crs.geodetic_crs
    if not crs.is_projected or base is None or not base.is_geographic:
        return None
    return pyproj.Transformer.from_crs(crs, base, always_xy=True)


def to_lonlat(geom: shapely.Geometry, crs: Any) -> shapely.Geometry:
    """`geom`, in the projected `crs`, in EPSG:4326 (longitude, latitude).

    Exactly what ``GeoSeries([geom], crs=crs).to_crs(4326)`` gives, to `ROUND_TRIP_M`; without
    PROJ's search for the transformation where the projection's inverse is that transformation
    (see the module's notes).
    """
    if shapely.is_empty(geom):
        return geom
    crs = pyproj.CRS.from_user_input(crs)
    inverse = _inverse_projection(crs)
    if inverse is not None:

        def back(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(inverse.transform(xy[:, 0], xy[:, 1]))

        lonlat = shapely.transform(geom, back)
        again = gpd.GeoSeries([lonlat], crs=4326).to_crs(crs).iloc[0]
        gap = np.abs(shapely.get_coordinates(again) - shapely.get_coordinates(geom))
        if np.isfinite(gap).all() and gap.max() <= ROUND_TRIP_M:
            return lonlat
    return gpd.GeoSeries([geom], crs=crs).to_crs(4326).iloc[0]


__all__ = ["ROUND_TRIP_M", "to_lonlat"]
