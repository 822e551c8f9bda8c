"""Chinese map coordinates: GCJ-02 (Amap, Tencent) and BD-09 (Baidu) to and from WGS84.

The standard published formulas (Krasovsky ellipsoid, a = 6378245 m, e² = 0.00669342162296594323);
points outside China's bounding box are left as they are, as those formulas require. The inverses are
exact: fixed-point iteration of the forward formula to below 1e-9°, not the common one-step
approximation that is off by up to a metre or two (GCJ-02) or a decimetre (BD-09).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

Datum = Literal["wgs84", "gcj02", "bd09"]


def out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where the standard formulas leave a point untouched (outside China's bounding box)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _transform_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    r += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return r


def _transform_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    r += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    r += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    r += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return r


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → GCJ-02 (the forward formula)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    out = out_of_china(lon, lat)
    return np.where(out, lon, lon + dlon), np.where(out, lat, lat + dlat)


def gcj02_to_wgs84(
    lon, lat, *, tol_deg: float = 1e-10, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → WGS84, exact to `tol_deg` by fixed-point iteration of the forward formula."""
    glon, glat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = _invert(wgs84_to_gcj02, glon, glat, glon.copy(), glat.copy(), tol_deg, max_iter)
    out = out_of_china(glon, glat)
    return np.where(out, glon, wlon), np.where(out, glat, wlat)


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → BD-09."""
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(
    lon, lat, *, tol_deg: float = 1e-10, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → GCJ-02: the published inverse (good to ~0.1 m), refined to `tol_deg` by iterating
    the forward formula."""
    blon, blat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = blon - 0.0065, blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    start = z * np.cos(theta), z * np.sin(theta)
    return _invert(gcj02_to_bd09, blon, blat, *start, tol_deg, max_iter)


def _invert(
    forward,
    lon: np.ndarray,
    lat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    tol_deg: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) that `forward` maps onto (lon, lat), by fixed-point iteration from a start guess:
    both offsets are small and smooth, so each step moves the guess by the remaining error."""
    for _ in range(max_iter):
        flon, flat = forward(x, y)
        dlon, dlat = flon - lon, flat - lat
        x, y = x - dlon, y - dlat
        if np.all(np.abs(dlon) < tol_deg) and np.all(np.abs(dlat) < tol_deg):
            break
    return x, y


def to_wgs84(lon, lat, datum: Datum) -> tuple[np.ndarray, np.ndarray]:
    """Convert lon/lat given in `datum` to WGS84."""
    return _convert(lon, lat, datum, _TO_WGS84)


def from_wgs84(lon, lat, datum: Datum) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 lon/lat to `datum`."""
    return _convert(lon, lat, datum, _FROM_WGS84)


#: Per datum, the conversions from it to WGS84 and back, applied in order.
_TO_WGS84 = {"wgs84": (), "gcj02": (gcj02_to_wgs84,), "bd09": (bd09_to_gcj02, gcj02_to_wgs84)}
_FROM_WGS84 = {"wgs84": (), "gcj02": (wgs84_to_gcj02,), "bd09": (wgs84_to_gcj02, gcj02_to_bd09)}


def _convert(lon, lat, datum: Datum, chains: dict) -> tuple[np.ndarray, np.ndarray]:
    if datum not in chains:
        raise ValueError(f"datum {datum!r}: use wgs84, gcj02 or bd09")
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = lon, lat
    for step in chains[datum]:
        x, y = step(x, y)
    if datum == "bd09":  # BD-09 outside China is left as it is too
        out = out_of_china(lon, lat)
        x, y = np.where(out, lon, x), np.where(out, lat, y)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
