"""Projected geometries back to longitude and latitude without PROJ's search, where it is exact.

pyproj finds a transformation between two CRSs by searching PROJ's database: 50-60 ms for
EPSG:4547 (CGCS2000 / Gauss-Kruger 114E) to EPSG:4326, in every process and again in every thread.
A run of a county with no data takes about a second, and paid it for one polygon (its study area),
then once more for each map (drawn on a thread of its own) and for the city map.

When a projected CRS's own datum is WGS 84's (a UTM zone), or one PROJ knows no shift from
(CGCS2000, ETRS89), the way back to EPSG:4326 is the inverse of its projection alone, which
pyproj makes at once. That is checked once per CRS and process (`_exact_inverse`): points over the
CRS's area of use, projected by PROJ's own transformation from EPSG:4326 and taken back by the
inverse, must land within `ROUND_TRIP_DEG` of where they started. Else (a datum shifted from
WGS 84, such as OSGB36 or Beijing 1954) PROJ's transformation back is used, as
`GeoSeries.to_crs` would. Where the inverse is used, the results are those of ``to_crs(4326)``
(for EPSG:4547 and the UTM zones, to the bit).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

#: How near the round trip must bring points back, in degrees (about a millimetre).
ROUND_TRIP_DEG = 1e-8

_verdicts: dict[str, bool] = {}  # CRS (WKT) -> whether its projection's inverse is exact
_lock = threading.Lock()


@functools.lru_cache(maxsize=16)
def _inverse_projection(crs: pyproj.CRS) -> pyproj.Transformer | None:
    """The inverse of `crs`'s projection, to its own geographic CRS (None if it has none)."""
    base = crs.geodetic_crs
    if not crs.is_projected or base is None or not base.is_geographic:
        return None
    return pyproj.Transformer.from_crs(crs, base, always_xy=True)


def _exact_inverse(crs: pyproj.CRS) -> pyproj.Transformer | None:
    """`crs`'s projection inverse when it is the way back to EPSG:4326 (see the module's notes)."""
    inverse = _inverse_projection(crs)
    if inverse is None or crs.area_of_use is None:
        return None
    key = crs.to_wkt()
    with _lock:
        if key not in _verdicts:
            _verdicts[key] = _round_trips(crs, inverse)
        return inverse if _verdicts[key] else None


def _round_trips(crs: pyproj.CRS, inverse: pyproj.Transformer) -> bool:
    """Whether points over `crs`'s area of use come back from it by `inverse` where they were."""
    west, south, east, north = crs.area_of_use.bounds  # type: ignore[union-attr]
    if east < west:  # an area across the antimeridian: its western part
        east = 180.0
    inset = 0.1
    lon = np.linspace(west + inset * (east - west), east - inset * (east - west), 3)
    lat = np.linspace(south + inset * (north - south), north - inset * (north - south), 3)
    lon, lat = (a.ravel() for a in np.meshgrid(lon, lat))
    there = gpd.GeoSeries(shapely.points(lon, lat), crs=4326).to_crs(crs)  # PROJ's transformation
    back_lon, back_lat = inverse.transform(there.x.to_numpy(), there.y.to_numpy())
    gap = np.abs(np.concatenate([back_lon - lon, back_lat - lat]))
    return bool(np.isfinite(gap).all() and gap.max() <= ROUND_TRIP_DEG)


def to_lonlat(geoms: Any, crs: Any) -> Any:
    """`geoms` (a geometry or an array of them, in `crs`) in EPSG:4326 (longitude, latitude), as
    ``GeoSeries(geoms, crs=crs).to_crs(4326)`` gives them, without PROJ's search where the
    projection's inverse is that transformation (see the module's notes)."""
    crs = pyproj.CRS.from_user_input(crs)
    one = isinstance(geoms, shapely.Geometry)
    values = np.asarray([geoms] if one else geoms, dtype=object)
    if crs.equals("EPSG:4326") or not len(values) or shapely.is_empty(values).all():
        out = values
    elif (inverse := _exact_inverse(crs)) is not None:

        def back(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(inverse.transform(xy[:, 0], xy[:, 1]))

        out = shapely.transform(values, back)
    else:
        out = gpd.GeoSeries(values, crs=crs).to_crs(4326).to_numpy()
    return out[0] if one else out


def frame_to_lonlat(frame: Any) -> Any:
    """A GeoDataFrame or GeoSeries in EPSG:4326, by `to_lonlat`."""
    if frame.crs is None:
        raise ValueError("the frame has no CRS: it cannot be taken to EPSG:4326")
    lonlat = gpd.GeoSeries(
        to_lonlat(frame.geometry.to_numpy(), frame.crs), index=frame.index, crs=4326
    )
    if isinstance(frame, gpd.GeoSeries):
        return lonlat.rename(frame.name)
    out = frame.copy()
    out[frame.geometry.name] = lonlat  # the frame's CRS is its geometry column's
    return out


__all__ = ["ROUND_TRIP_DEG", "frame_to_lonlat", "to_lonlat"]
