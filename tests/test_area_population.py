"""Area figures (official straight-line and walking) and population models, computed by hand."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from shapely.geometry import Point, box

from conftest import CRS_M, X0, Y0, features, shift, streets
from walkcover.engine import coverage as cov
from walkcover.engine.network import build_network
from walkcover.measures import land as landmod
from walkcover.measures.population import allocate_raster, scale_to_totals


def test_river_with_one_distant_bridge():
    # South street y=0 and north street y=100 (0..1000 m), joined only by a bridge at x=1000; the
    # river runs between them. A bus stop at (100,-10) south; residential land box(0,110,200,130) north.
    net = build_network(
        streets(
            [
                (1, 2, [(0, 0), (1000, 0)]),
                (3, 4, [(0, 100), (1000, 100)]),
                (2, 4, [(1000, 0), (1000, 100)]),
            ]
        )
    )
    stop = np.array([shift(Point(100, -10))], dtype=object)
    land = shift(box(0, 110, 200, 130))
    radius = 1900.0
    # Straight line: the farthest corner (0,130) or (200,130) is √(100² + 140²) ≈ 172 m away → 100%.
    assert landmod.euclid_covered_share(land, stop, radius) == pytest.approx(100.0)
    # Walking to a 10 m cell centred (x, y): 10 + 900 + 100 + (1000 − x) + (y − 100) = 1910 − x + y.
    # Row y=115 is covered for x ≥ 125 (8 cells), row y=125 for x ≥ 135 (7 cells): 15 of 40 = 37.5%.
    cells = landmod.grid_cells(land, cell_m=10)
    assert cells.shape == (40, 2)
    cs = cov.snap_xy(net, cells, max_snap_m=50)
    fs = cov.snap(net, stop, max_snap_m=50, reach_polygon_edges=True)
    nd = cov.node_distances(net, fs, limit_m=2 * radius)
    walk = landmod.walk_covered_share(net, cs, fs, nd, threshold_m=radius)
    assert walk == pytest.approx(37.5)
    # detour loss = 100 − 37.5 = 62.5 percentage points


def test_official_area_formula_by_hand():
    land = shift(box(0, 0, 100, 100))
    # A square ground just west of the land, grown by 50 m, covers exactly its western half.
    ground = np.array([shift(box(-10, 0, 0, 100))], dtype=object)
    assert landmod.euclid_covered_share(land, ground, 50.0) == pytest.approx(50.0, abs=1e-9)
    assert landmod.euclid_covered_share(land, np.array([], dtype=object), 50.0) == 0.0
    assert np.isnan(landmod.euclid_covered_share(shift(box(0, 0, 0, 0)), ground, 50.0))


def test_official_circles_reach_in_from_outside_the_land():
    land = shift(box(0, 0, 100, 100))
    # A stop 30 m west of the land's edge: its 50 m circle cuts in a segment of area
    # r²·acos(d/r) − d·√(r² − d²) = 2500·acos(0.6) − 30·40 ≈ 1118.24 m² of the 10,000 m² (11.18%);
    # a stop 5 km away reaches nothing and changes nothing.
    near, far = shift(Point(-30, 50)), shift(Point(5000, 5000))
    expected = 100.0 * (2500.0 * np.arccos(0.6) - 1200.0) / 10_000.0
    for stops in ([near], [near, far]):
        got = landmod.euclid_covered_share(land, np.array(stops, dtype=object), 50.0)
        assert got == pytest.approx(expected, abs=0.02)  # the circle is a 128-gon
        # the city's union made once and cut to the land gives the same figure
        reach = landmod.official_reach(np.array(stops, dtype=object), 50.0)
        again = landmod.euclid_covered_share(land, np.array(stops, dtype=object), 50.0, reach=reach)
        assert again == pytest.approx(got, rel=1e-12)
    assert landmod.euclid_covered_share(land, np.array([far], dtype=object), 50.0) == 0.0
    far_reach = landmod.official_reach(np.array([far], dtype=object), 50.0)
    assert landmod.euclid_covered_share(land, np.array([far]), 50.0, reach=far_reach) == 0.0


def test_overlap_of_two_unions_piece_by_piece(helsinki_layers):
    from walkcover.config.standards import load_standards

    _, crs, layers = helsinki_layers
    rules = load_standards()
    feats = layers.features.to_crs(crs)
    # the sample maps no built-up land use: green land and parks overlap (17 pieces, 24.9 ha)
    green = landmod.land_union(feats, rules.land.green)
    parks = landmod.land_union(feats, rules.land.park_green)
    pieces = landmod.overlap_pieces(green, parks)
    whole = shapely.intersection(green, parks)
    assert len(pieces) > 10 and shapely.area(whole) > 100_000
    x0, y0, x1, y1 = shapely.bounds(whole)
    half = box(x0, y0, (x0 + x1) / 2, y1)
    for district in (half, box(x0, y0, x1, y1)):
        assert landmod.area_within(pieces, district) == pytest.approx(
            shapely.area(shapely.intersection(whole, district)), rel=1e-9
        )


def test_dissolve_unites_only_what_meets():
    # Two overlapping squares (a 150 × 100 block once united), a square touching them along an
    # edge, a far square with a hole that a small square fills, a polygon collapsed to a line by
    # make_valid (no area: dropped), and a lone square that stays exactly as it is.
    a, b = box(0, 0, 100, 100), box(50, 0, 150, 100)
    touching = box(150, 0, 200, 100)
    holed = shapely.Polygon(
        [(500, 0), (600, 0), (600, 100), (500, 100)], [[(540, 40), (560, 40), (560, 60), (540, 60)]]
    )
    plug = box(540, 40, 560, 60)
    lone = box(1000, 1000, 1010, 1010)
    flat = shapely.make_valid(shapely.Polygon([(0, 500), (10, 500), (20, 500)]))
    geoms = np.array([lone, a, holed, flat, b, touching, plug], dtype=object)
    parts = landmod.dissolve(geoms)
    assert (shapely.get_type_id(parts) == 3).all()
    # the lone square first, untouched; then one polygon per group
    assert shapely.equals(parts[0], lone) and len(parts) == 3
    assert sorted(np.round(shapely.area(parts))) == [100.0, 10_000.0, 20_000.0]
    # the same land as one union of everything, and no two parts meet
    whole = shapely.union_all(geoms[shapely.get_type_id(geoms) != 1])
    assert shapely.area(shapely.symmetric_difference(shapely.multipolygons(parts), whole)) == 0
    i, j = shapely.STRtree(parts).query(parts, predicate="intersects")
    assert (i == j).all()
    assert len(landmod.dissolve(np.array([], dtype=object))) == 0


def test_rasterize_burns_holes_collections_and_lines_as_shapely_would():
    from affine import Affine
    from rasterio.features import rasterize as rio_rasterize

    from walkcover.measures.raster import rasterize

    ring = shapely.Polygon(
        [(0, 0), (80, 0), (80, 80), (0, 80)], [[(20, 20), (60, 20), (60, 60), (20, 60)]]
    )
    geoms = [
        ring,
        shapely.MultiPolygon([box(90, 0, 100, 10), box(90, 50, 100, 70)]),
        shapely.GeometryCollection([box(0, 90, 30, 100), shapely.LineString([(40, 95), (99, 95)])]),
        shapely.Polygon(),
    ]
    kw = dict(out_shape=(10, 10), transform=Affine(10, 0, 0, 0, -10, 100), dtype=np.uint8)
    got = rasterize(geoms, **kw)
    # rasterio itself, one shapely part at a time (its own GeoJSON of each)
    parts = shapely.get_parts(shapely.get_parts(np.array(geoms, dtype=object)))
    want = rio_rasterize([p for p in parts if not p.is_empty], **kw)
    assert (got == want).all()
    assert got.sum() == 64 - 16 + 1 + 2 + 3 + 6  # the ring's hole stays empty; the line burns too
    assert got[5, 3] == 0 and got[8, 1] == 1  # row 0 is the north: y 90–100


def test_a_share_of_100_pct_meets_its_target_despite_rounding():
    from walkcover.measures.indicators import meets

    assert meets(100.0 - 1e-12, 100.0) and meets(100.0, 100.0)
    assert not meets(99.9, 100.0) and not meets(float("nan"), 100.0)
    assert list(meets(np.array([80.0, 79.99]), np.array([80.0, 80.0]))) == [True, False]


@pytest.fixture
def raster(tmp_path):
    """A 4 × 3 population raster in Web Mercator (not the working CRS), 100 m cells."""
    import pyproj

    to3857 = pyproj.Transformer.from_crs(CRS_M, 3857, always_xy=True)
    ox, oy = to3857.transform(X0 - 50, Y0 + 250)
    data = np.array([[10, 0, 5, 7], [0, 20, 0, 3], [1, 2, 4, -9999]], dtype="float32")
    path = tmp_path / "pop.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=3, count=1, dtype="float32", crs="EPSG:3857",
        transform=from_origin(ox, oy, 100, 100), nodata=-9999,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    return path, data


def test_raster_allocation_and_scaling_conserve_district_totals(raster):
    path, data = raster
    # Two districts: west half and east half of the raster's footprint (in the fixture CRS; the
    # raster's Mercator cells are ~1.2 × larger on the ground, which is fine: cells are assigned by centre).
    west = shift(box(-60, -60, 150, 260))
    east = shift(box(150, -60, 400, 260))
    districts = gpd.GeoDataFrame({"district_id": ["w", "e"]}, geometry=[west, east], crs=CRS_M)
    houses = features(
        ({"building": "yes"}, box(0, 150, 20, 170)),
        ({"building": "yes"}, box(30, 150, 50, 190)),  # twice the floor area of the first
        ({"building": "yes"}, box(200, 20, 220, 40)),
    ).assign(district_id=["w", "w", "e"])
    units = gpd.GeoDataFrame(houses, geometry="geometry", crs=CRS_M)
    weight = units.geometry.area.to_numpy()
    res, cells = allocate_raster(units, districts, path, weight=weight)
    assert len(cells) == 0  # every cell's people went to a building
    # Which raster cells fall in each district, by cell centre, computed independently:
    import pyproj

    back = pyproj.Transformer.from_crs(3857, CRS_M, always_xy=True)
    with rasterio.open(path) as src:
        t = src.transform
    per = {"w": 0.0, "e": 0.0}
    for r in range(3):
        for c in range(4):
            v = data[r, c]
            if v <= 0:
                continue
            x, y = back.transform(*(t @ (c + 0.5, r + 0.5)))
            for did, poly in (("w", west), ("e", east)):
                if poly.contains(Point(x, y)):
                    per[did] += float(v)
    assert per["w"] > 0 and per["e"] > 0
    assert res[:2].sum() == pytest.approx(per["w"], abs=1e-9)
    assert res[2] == pytest.approx(per["e"], abs=1e-9)
    scaled = scale_to_totals(res, units["district_id"].to_numpy(), {"w": 1000.0, "e": 250.0})
    assert scaled[:2].sum() == pytest.approx(1000.0, abs=1e-9) and scaled[2] == pytest.approx(
        250.0, abs=1e-9
    )
    assert scaled[1] / scaled[0] == pytest.approx(res[1] / res[0])
    # where buildings are too incomplete, cells without one are places of their own: the east
    # district's building keeps only its own cell's people, and the rest stay where they live
    res2, cells2 = allocate_raster(units, districts, path, weight=weight, cells_as_units=["e"])
    np.testing.assert_allclose(res2[:2], res[:2], atol=1e-9)
    assert set(cells2["district_id"]) == {"e"} and len(cells2) >= 2
    assert res2[2] + cells2["people"].sum() == pytest.approx(per["e"], abs=1e-9)
    assert res2[2] < res[2]


def test_levels_from_tags_height_type_or_default():
    from walkcover.config.study_area import DemandConfig
    from walkcover.measures.demand import demand_from_buildings

    cfg = DemandConfig(m2_per_person=50, default_levels=4, levels_by_type={"house": 2})
    f = features(
        ({"building": "apartments", "building:levels": "9"}, box(0, 0, 10, 10)),
        ({"building": "yes", "height": "31.5 m"}, box(0, 0, 10, 10)),
        ({"building": "house"}, box(0, 0, 10, 10)),
        ({"building": "yes"}, box(0, 0, 10, 10)),
    )
    d = demand_from_buildings(f, cfg)
    assert list(d["levels"]) == [9, 10, 2, 4]  # 31.5 m ÷ 3 m = 10.5 → 10 (round half to even)
    assert list(d["levels_from"]) == ["building:levels", "height", "building type", "default"]
    np.testing.assert_allclose(
        d["residents"], [100 * 9 / 50, 100 * 10 / 50, 100 * 2 / 50, 100 * 4 / 50]
    )


def test_cell_areas_for_density_rasters():
    """ASPECT gives persons per hectare: a cell's people = density × its area. In degrees the
    area comes from the ellipsoid; checked against the sphere's R² Δλ (sin φ1 − sin φ2)."""
    import math

    from rasterio.transform import from_origin

    from walkcover.measures.population import cell_area_ha

    d = 3 / 3600  # 3 arc-seconds, WorldPop's and ASPECT's cell
    got = cell_area_ha(from_origin(113.6, 34.76, d, d), "EPSG:4326", 2)
    r = 6_371_008.8
    for i, top in enumerate((34.76, 34.76 - d)):
        sphere = (
            r
            * r
            * math.radians(d)
            * (math.sin(math.radians(top)) - math.sin(math.radians(top - d)))
        )
        assert got[i] == pytest.approx(sphere / 1e4, rel=5e-3)
    assert 0.6 < got[0] < 0.8  # ≈ 0.70 ha at Zhengzhou's latitude, not 1 ha
    np.testing.assert_allclose(cell_area_ha(from_origin(0, 0, 100, 100), "EPSG:32650", 3), 1.0)
