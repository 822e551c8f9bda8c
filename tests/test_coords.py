"""GCJ-02 / BD-09 conversions against published reference pairs, round trips, and outside China."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from walkcover.sources import coords

GEOD = Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# Published pairs (the standard forward formulas, as in wandergis/coordtransform and its ports):
@pytest.mark.parametrize(
    ("fn", "src", "expected"),
    [
        (
            coords.wgs84_to_gcj02,
            (116.404, 39.915),
            (116.41024449916938, 39.91640428150164),
        ),  # Beijing
        (coords.wgs84_to_gcj02, (116.0, 40.0), (116.006141221789, 40.001213650174)),
        (
            coords.wgs84_to_gcj02,
            (113.647881, 34.829793),
            (113.65396374215176, 34.8287280094783),
        ),  # Zhengzhou
        (
            coords.wgs84_to_gcj02,
            (121.0917077, 30.6107779),
            (121.09626935575027, 30.608604331756705),
        ),
        (coords.gcj02_to_bd09, (116.404, 39.915), (116.41036949371029, 39.92133699351022)),
        (coords.bd09_to_gcj02, (116.404, 39.915), (116.39762729119315, 39.90865673957631)),
    ],
)
def test_published_pairs_within_a_metre(fn, src, expected):
    lon, lat = fn(*src)
    assert metres(float(lon), float(lat), *expected) < 1.0
    if fn is not coords.bd09_to_gcj02:  # the published BD-09 inverse is itself approximate (~0.1 m)
        assert float(lon) == pytest.approx(expected[0], abs=1e-7)


def test_wgs84_to_bd09_published():
    lon, lat = coords.from_wgs84(116.404, 39.915, "bd09")
    assert metres(float(lon), float(lat), 116.41662724378733, 39.922699552216216) < 1.0
    lon, lat = coords.from_wgs84(121.0917077, 30.6107779, "bd09")
    assert metres(float(lon), float(lat), 121.10271732371203, 30.61484572185035) < 1.0


def test_round_trips_are_exact_to_a_centimetre():
    rng = np.random.default_rng(4)
    lon = rng.uniform(112.7, 114.2, 500)  # Zhengzhou and around
    lat = rng.uniform(34.2, 35.0, 500)
    for datum in ("gcj02", "bd09"):
        back = coords.to_wgs84(*coords.from_wgs84(lon, lat, datum), datum)
        d = [metres(a, b, c, e) for a, b, c, e in zip(lon, lat, *back)]
        assert max(d) < 0.01, datum


def test_zhengzhou_offset_is_about_555_m_east_and_130_m_south_of_gcj():
    # The bundled boundaries' provenance: GCJ-02 sits ≈ +0.0061° lon, −0.0012° lat from WGS84 here.
    glon, glat = coords.wgs84_to_gcj02(113.65, 34.75)
    east = metres(113.65, 34.75, float(glon), 34.75)
    assert 500 < east < 620 and float(glon) > 113.65
    assert float(glat) < 34.75 and 90 < metres(113.65, 34.75, 113.65, float(glat)) < 160


def test_points_outside_china_are_left_as_they_are():
    lon, lat = np.array([24.94, -0.12]), np.array([60.17, 51.5])  # Helsinki, London
    for datum in ("gcj02", "bd09"):
        for fn in (coords.to_wgs84, coords.from_wgs84):
            a, b = fn(lon, lat, datum)
            np.testing.assert_array_equal(a, lon)
            np.testing.assert_array_equal(b, lat)
