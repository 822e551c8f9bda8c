"""Projected geometries back to EPSG:4326 (`walkcover.config.crs`): what ``to_crs(4326)`` gives,
without PROJ's 50 ms search where the projection's inverse is the transformation, and with PROJ's
transformation where a datum is shifted from WGS 84."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from conftest import run_python
from walkcover.config.crs import frame_to_lonlat, to_lonlat


def _area(lon: float, lat: float, crs: str) -> shapely.Geometry:
    """A few kilometres of polygon with a hole, around (lon, lat), in `crs`."""
    centre = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(crs).iloc[0]
    return centre.buffer(3000).difference(centre.buffer(500))


def test_where_the_datum_is_wgs84s_it_is_to_crs_to_the_bit():
    for lon, lat, crs in ((113.65, 34.76, "EPSG:4547"), (24.94, 60.17, "EPSG:32635")):
        area = _area(lon, lat, crs)
        expected = gpd.GeoSeries([area], crs=crs).to_crs(4326).iloc[0]
        got = to_lonlat(area, crs)
        assert shapely.to_wkb(got) == shapely.to_wkb(expected), crs


def test_a_shifted_datum_takes_projs_transformation():
    # OSGB36 (British National Grid) is about 100 m from WGS 84: its projection's inverse alone
    # would put the area that far off
    area = _area(-0.13, 51.51, "EPSG:27700")
    expected = gpd.GeoSeries([area], crs="EPSG:27700").to_crs(4326).iloc[0]
    plain = pyproj.Transformer.from_crs("EPSG:27700", "EPSG:4277", always_xy=True)
    x, _ = plain.transform(*shapely.get_coordinates(area).T)
    assert np.abs(x - shapely.get_coordinates(expected)[:, 0]).max() > 5e-4  # > 30 m
    got = to_lonlat(area, "EPSG:27700")
    np.testing.assert_allclose(
        shapely.get_coordinates(got), shapely.get_coordinates(expected), rtol=0, atol=1e-9
    )


def test_an_empty_geometry_stays_empty():
    assert shapely.is_empty(to_lonlat(shapely.Polygon(), "EPSG:4547"))


def test_no_search_for_the_way_back_from_epsg_4547():
    # in a fresh interpreter: an earlier test's transformers are cached in this one
    child = (
        "import pyproj.transformer as T, geopandas as gpd, shapely\n"
        "from walkcover.config.crs import frame_to_lonlat, to_lonlat\n"
        "made = []\n"
        "make = T.TransformerFromCRS.__call__\n"
        "def spy(self):\n"
        "    made.append((self.crs_from.decode()[:9], self.crs_to.decode()[:9]))\n"
        "    return make(self)\n"
        "T.TransformerFromCRS.__call__ = spy\n"
        "p = gpd.GeoSeries([shapely.Point(113.65, 34.76)], crs=4326).to_crs(4547).iloc[0]\n"
        "to_lonlat(p.buffer(2000), 'EPSG:4547')\n"
        "print(made)"
    )
    made = run_python(child)
    assert "('EPSG:4547', 'EPSG:4326')" not in made, made
    assert "('EPSG:4326', 'EPSG:4547')" in made, made  # the spy sees the searches it should


def test_frames_keep_their_columns_index_and_names():
    area = _area(113.65, 34.76, "EPSG:4547")
    frame = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"]},
        geometry=gpd.GeoSeries([area, area.centroid, None]),
        index=[7, 8, 9],
        crs="EPSG:4547",
    ).rename_geometry("geom")
    got, expected = frame_to_lonlat(frame), frame.to_crs(4326)
    assert got.crs.equals("EPSG:4326") and got.geometry.name == "geom"
    assert list(got.columns) == ["name", "geom"] and list(got.index) == [7, 8, 9]
    assert shapely.to_wkb(got.geometry.to_numpy()[:2]).tolist() == (
        shapely.to_wkb(expected.geometry.to_numpy()[:2]).tolist()
    )
    assert got.geometry.iloc[2] is None
    points = frame_to_lonlat(frame.geometry.centroid.rename("centre"))
    assert isinstance(points, gpd.GeoSeries) and points.name == "centre"
    assert points.crs.equals("EPSG:4326")
