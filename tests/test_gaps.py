"""Gap polygons and service areas on a hand-made city whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely
from shapely.geometry import box

import walkcover as wc
from conftest import box_way, write_city
from walkcover.config.standards import load_standards
from walkcover.config.study_area import load_city
from walkcover.engine import coverage as cov
from walkcover.measures.gaps import gap_polygons, service_area


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("city")
    # A street along y=0 from x=-100 to x=1500; a toilet at (0,-5).
    nodes = {1: (-100, 0), 2: (0, 0), 3: (700, 0), 4: (1500, 0), 9: (0, -5, {"amenity": "toilets"})}
    ways = [(100, [1, 2, 3, 4], {"highway": "residential"})]
    # Block A (0..100 × 10..60) is within reach; block B (700..800 × 10..60) is not: its nearest
    # corner is 5 + 700 + 10 = 715 m away by foot, though only ~705 m in a straight line.
    ways.append(box_way(200, 20, 0, 10, 100, 60, {"landuse": "residential"}, nodes))
    ways.append(box_way(201, 30, 700, 10, 800, 60, {"landuse": "residential"}, nodes))
    # Homes: two in A, two in B (3 levels, 40 m² per person): B holds 400·3/40 + 600·3/40 = 75 residents.
    ways.append(
        box_way(300, 40, 20, 20, 40, 40, {"building": "apartments", "building:levels": "3"}, nodes)
    )
    ways.append(
        box_way(301, 50, 60, 20, 80, 40, {"building": "apartments", "building:levels": "3"}, nodes)
    )
    ways.append(
        box_way(
            302, 60, 710, 20, 730, 40, {"building": "apartments", "building:levels": "3"}, nodes
        )
    )
    ways.append(
        box_way(
            303, 70, 760, 20, 790, 40, {"building": "apartments", "building:levels": "3"}, nodes
        )
    )
    cfg, osm = write_city(tmp, nodes=nodes, ways=ways, district=box(-200, -200, 1600, 300))
    city = load_city(cfg)
    load_standards()
    return wc.assess(city, standard="toilet", source=osm, cache=False).assessment


def test_gap_is_exactly_the_uncovered_block(handmade):
    gaps = gap_polygons(handmade, "toilet", "d1")
    assert len(gaps) == 1
    g = gaps.iloc[0]
    block_b = box(700, 10, 800, 60)
    assert shapely.hausdorff_distance(g.geometry, block_b) < 0.05  # lon/lat in the file: 7 decimals
    assert g["residents_uncovered"] == pytest.approx(75.0, abs=0.1)
    assert g["units_uncovered"] == 2 and g["rank"] == 1
    assert g["area_m2"] == pytest.approx(5000.0, rel=1e-3)
    # From the block's centre (750,35): leg 35 to the street, then 750 m west, then the toilet's 5 m leg.
    assert g["dist_m_at_centre"] == pytest.approx(790.0, abs=0.1)
    summary = handmade.summary.iloc[0]
    # A holds 2 × 400·3/40 = 60 residents, B 75: 60 of 135 are covered.
    assert summary["residents_covered_pct"] == pytest.approx(100 * 60 / 135, abs=0.01)
    assert summary["area_covered_pct"] == pytest.approx(50.0)  # block A's 50 cells of 100
    assert summary["area_covered_euclid_pct"] == pytest.approx(
        50.0, abs=0.01
    )  # B lies beyond 500 m too


def test_service_area_never_includes_land_beyond_the_walking_distance(handmade):
    area = service_area(handmade, "toilet")
    assert area.contains(shapely.Point(0, -5)) and area.contains(shapely.Point(50, 35))
    assert not area.intersects(box(700, 10, 800, 60))
    # Sample the area densely and measure each point with the engine: never beyond 500 m.
    x0, y0, x1, y1 = area.bounds
    xs, ys = np.meshgrid(np.arange(x0, x1, 7.0), np.arange(y0, y1, 7.0))
    pts = shapely.points(xs.ravel(), ys.ravel())
    pts = pts[shapely.contains(area, pts)]
    assert len(pts) > 1000
    p = handmade.passes["toilet"]
    d = cov.demand_distances(
        handmade.network, cov.snap(handmade.network, pts, max_snap_m=1000), p.snaps, p.node_dist
    )
    assert np.nanmax(d) <= 500 + 1e-6
    # ... and it is not timid: points at 480 m along the street are inside.
    assert area.contains(shapely.Point(470, 5))


def test_service_areas_stop_at_the_district_and_its_margin(tmp_path):
    from walkcover.measures.gaps import SERVICE_AREA_MARGIN_M, district_service_areas

    # An L-shaped district (a strip south of the street, a column up its west end): its box reaches
    # far north-east of it, where the street's service area would run on (the toilet reaches 300 m
    # and more along y=0). Only the district and 100 m around it are measured and drawn.
    # A toilet block north of the street runs out of the margin (y 10 to 150, the margin ends at
    # y = 50): its grounds are drawn only up to the margin, as the walking part is.
    nodes = {1: (-100, 0), 2: (0, 0), 3: (700, 0), 4: (1500, 0), 9: (0, -5, {"amenity": "toilets"})}
    nodes |= {21: (400, 10), 22: (600, 10), 23: (600, 150), 24: (400, 150)}
    ways = [
        (100, [1, 2, 3, 4], {"highway": "residential"}),
        (200, [21, 22, 23, 24, 21], {"amenity": "toilets", "building": "yes"}),
    ]
    district = shapely.union(box(-200, -200, 1600, -50), box(-200, -200, 100, 300))
    cfg, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=district)
    res = wc.assess(load_city(cfg), standard="toilet", source=osm, cache=False).assessment
    area = district_service_areas(res, "d1").geometry.iloc[0]
    around = shapely.buffer(district, SERVICE_AREA_MARGIN_M)
    assert shapely.area(area) > 10_000
    assert shapely.area(shapely.difference(area, around)) < 1e-6
    # within the margin it is drawn: along the street south of it and up the column
    assert area.contains(shapely.Point(250, -45)) and area.contains(shapely.Point(50, 60))
    assert not area.intersects(box(250, 60, 600, 100))  # north-east: outside district and margin
    assert area.contains(shapely.Point(500, 30))  # the block's grounds inside the margin


def test_lattice_bands_measure_every_corner_once(handmade, monkeypatch):
    """The lattice measured in small bands (cut by the corners inside its outline, coordinates
    made per band from its rows and columns) gives the grids one band gives: every corner inside
    measured once, at its own place, none outside."""
    from walkcover.measures import gaps

    std = handmade.standard("toilet")
    outline = shapely.Polygon([(-60, -40), (640, -40), (300, 90), (-60, 90)])  # rows of all lengths
    lattice = gaps.Lattice.over(box(-80, -60, 660, 110), cell_m=7.0, within=outline)
    assert lattice.inside is not None and lattice.inside.shape == lattice.shape
    assert lattice.shape == (len(lattice.ys), len(lattice.xs))
    whole = lattice.within_reach(handmade, [std])[std.id]
    monkeypatch.setattr(gaps, "LATTICE_BAND_POINTS", 37)
    bands = lattice.bands()
    counts = [int(lattice.inside[r0:r1].sum()) for r0, r1 in bands]
    assert len(bands) > 10 and min(counts) > 0
    assert all(c <= 37 or r1 - r0 == 1 for c, (r0, r1) in zip(counts, bands))
    assert sum(counts) == int(lattice.inside.sum())  # no row left out, none twice
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(bands))
    banded = lattice.within_reach(handmade, [std])[std.id]
    np.testing.assert_array_equal(banded, whole)
    assert banded.any() and not banded[~lattice.inside].any()
    # each corner measured where it lies: as a home there would be
    j, i = np.nonzero(lattice.inside)
    xy = np.column_stack([lattice.xs[i], lattice.ys[j]])
    snaps = cov.snap_xy(handmade.network, xy, max_snap_m=200)
    p = handmade.passes[std.id]
    dist = cov.demand_distances(handmade.network, snaps, p.snaps, p.node_dist)
    np.testing.assert_array_equal(banded[j, i], dist <= std.threshold_m - np.sqrt(2) * 7.0)


def test_a_gap_centre_inside_a_home_takes_the_home_s_walk(tmp_path):
    """The centre of a gap made by one home lies inside the home, nearer a footway than its
    street: measured as bare land it walked to another toilet within the standard (370 m or
    so); the home, and its gap, walk beyond it (620 m).

    A street y=0 with a toilet at (0,-5); a home (560..640 × 15..170, its south side pointed:
    its nearest point (600,15) is 15 m from the street, 20 m from the footway); a footway x=540
    from y=60 to y=400, not joined to the street, with its own toilet at (545,400)."""
    nodes = {1: (-100, 0), 2: (0, 0), 3: (1500, 0), 9: (0, -5, {"amenity": "toilets"})}
    nodes |= {11: (540, 60), 12: (540, 400), 19: (545, 400, {"amenity": "toilets"})}
    nodes |= {21: (560, 30), 22: (600, 15), 23: (640, 30), 24: (640, 170), 25: (560, 170)}
    ways = [
        (100, [1, 2, 3], {"highway": "residential"}),
        (101, [11, 12], {"highway": "footway"}),
        (200, [21, 22, 23, 24, 25, 21], {"building": "apartments", "building:levels": "3"}),
    ]
    cfg, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-200, -200, 1600, 500))
    res = wc.assess(load_city(cfg), standard="toilet", source=osm, cache=False).assessment
    home = res.demand.iloc[0]
    # leg 15 to (600,0), 600 m west along the street, the toilet's 5 m leg
    assert home["toilet_dist_m"] == pytest.approx(620.0, abs=0.1)
    assert home["toilet_status"] == "beyond_threshold"
    gaps = gap_polygons(res, "toilet", "d1")
    (g,) = gaps[shapely.intersects(gaps.geometry, home.geometry)].itertuples()
    centre = shapely.point_on_surface(g.geometry)
    assert shapely.contains(home.geometry, centre)
    # the centre as bare land: its leg west to the footway, up it to the toilet, the toilet's leg
    p = res.passes["toilet"]
    as_land = cov.demand_distances(
        res.network, cov.snap(res.network, np.array([centre]), max_snap_m=200), p.snaps, p.node_dist
    )[0]
    assert as_land == pytest.approx(60 + (400 - centre.y) + 5, abs=0.1) and as_land < 500
    assert g.dist_m_at_centre == pytest.approx(620.0, abs=0.1)


def test_centre_walks_by_hand():
    """Each rule of `centre_walks` on squares whose answer is read off: a centre in an uncovered
    home takes its walk; a centre on land beyond the standard keeps its own; a centre on land
    within it (a cell the closing added) takes the nearest uncovered home or cell's."""
    from walkcover.measures.gaps import centre_walks

    gaps = np.array([box(0, 0, 30, 10), box(100, 0, 130, 10), box(200, 0, 230, 10)])
    homes = np.array([box(0, 0, 10, 10), box(100, 0, 110, 10), box(200, 0, 210, 10)])
    cells = np.array([[20.0, 0.0], [120.0, 0.0], [220.0, 0.0]])  # 10 m squares
    centres = shapely.points([(17, 5), (105, 5), (213, 5)])
    walks = centre_walks(
        centres,
        gaps,
        land_walk_m=np.array([400.0, 450.0, 800.0]),
        land_within=np.array([True, True, False]),
        homes=homes,
        home_walk_m=np.array([700.0, 710.0, 720.0]),
        cells_xy_m=cells,
        cell_size_m=10.0,
        cell_walk_m=np.array([650.0, 660.0, 670.0]),
    )
    # (17,5): on neither, land within: the cell 3 m east, not the home 7 m west
    # (105,5): inside the second home; (213,5): on land beyond the standard, its own walk
    np.testing.assert_array_equal(walks, [650.0, 710.0, 800.0])
    # a centre as near a home as a cell takes the home's walk
    tie = centre_walks(
        shapely.points([(15, 5)]),
        gaps[:1],
        land_walk_m=np.array([400.0]),
        land_within=np.array([True]),
        homes=homes[:1],
        home_walk_m=np.array([700.0]),
        cells_xy_m=cells[:1],
        cell_size_m=10.0,
        cell_walk_m=np.array([650.0]),
    )
    np.testing.assert_array_equal(tie, [700.0])


@pytest.fixture(scope="module")
def four_ways(tmp_path_factory):
    """A hand-made city whose gaps' centres have no walk for each reason a home can lack one.

    A street y=0 from x=-100 to x=3000 with a toilet at (0,-5); the toilets' search limit is
    800 m × 2 = 1,600 m. Block B (700..800 × 10..60, two homes) walks about 790 m: beyond the
    standard. Block F (2,500..2,600 × 10..60, a home) lies 2,500 m along the street: beyond the
    search limit. Land I (1,100..1,200 × 610..660, residential land, no home) lies beside a footway
    (y=600) joined to no other street: no walk reaches it. Home U (1,500..1,600 × 1,500..1,550) is
    900 m from the footway and 1,500 m from the street, past the 200 m snap: on no street.
    """
    tmp = tmp_path_factory.mktemp("four_ways")
    nodes = {1: (-100, 0), 2: (0, 0), 3: (3000, 0), 9: (0, -5, {"amenity": "toilets"})}
    nodes |= {11: (1000, 600), 12: (1300, 600)}
    ways = [(100, [1, 2, 3], {"highway": "residential"}), (101, [11, 12], {"highway": "footway"})]
    flats = {"building": "apartments", "building:levels": "3"}
    ways.append(box_way(200, 20, 700, 10, 800, 60, {"landuse": "residential"}, nodes))
    ways.append(box_way(300, 30, 710, 20, 730, 40, flats, nodes))
    ways.append(box_way(301, 40, 760, 20, 790, 40, flats, nodes))
    ways.append(box_way(302, 50, 2510, 20, 2590, 40, flats, nodes))
    ways.append(box_way(201, 60, 1100, 610, 1200, 660, {"landuse": "residential"}, nodes))
    ways.append(box_way(303, 70, 1500, 1500, 1600, 1550, flats, nodes))
    district = box(-200, -200, 3100, 1700)
    cfg, osm = write_city(tmp, nodes=nodes, ways=ways, district=district)
    return wc.assess(load_city(cfg), standard="toilet", source=osm, cache=False).assessment


def _gap_over(gaps, area):
    (g,) = gaps[shapely.intersects(gaps.geometry, area)].itertuples()
    return g


def test_a_gap_centre_without_a_walk_says_why(four_ways):
    """``status_at_centre`` tells an empty ``dist_m_at_centre`` beyond the search limit from one
    no walk reaches and one on no street, in the words of the homes' ``toilet_status``."""
    assert four_ways.passes["toilet"].limit_m == 1600.0
    gaps = gap_polygons(four_ways, "toilet", "d1")
    beyond = _gap_over(gaps, box(700, 10, 800, 60))
    assert beyond.dist_m_at_centre > 500 and beyond.status_at_centre == cov.STATUS_BEYOND
    far = _gap_over(gaps, box(2510, 20, 2590, 40))
    assert np.isnan(far.dist_m_at_centre) and far.status_at_centre == cov.STATUS_BEYOND_LIMIT
    island = _gap_over(gaps, box(1100, 610, 1200, 660))
    assert np.isnan(island.dist_m_at_centre) and island.status_at_centre == cov.STATUS_UNREACHABLE
    off = _gap_over(gaps, box(1500, 1500, 1600, 1550))
    assert np.isnan(off.dist_m_at_centre) and off.status_at_centre == cov.STATUS_UNSNAPPED
    # the homes say the same of themselves
    status = dict(zip(four_ways.demand["osm_id"].astype(str), four_ways.demand["toilet_status"]))
    assert status["way/302"] == cov.STATUS_BEYOND_LIMIT
    assert status["way/303"] == cov.STATUS_UNSNAPPED


def test_a_gap_centre_with_no_facility_in_the_data_says_so(tmp_path):
    """A city without a toilet: its gap's centre has no walk because there is no facility."""
    nodes = {1: (-100, 0), 2: (1000, 0)}
    ways = [(100, [1, 2], {"highway": "residential"})]
    ways.append(box_way(300, 10, 100, 20, 140, 40, {"building": "apartments"}, nodes))
    cfg, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-200, -200, 1100, 300))
    res = wc.assess(load_city(cfg), standard="toilet", source=osm, cache=False).assessment
    (g,) = gap_polygons(res, "toilet", "d1").itertuples()
    assert np.isnan(g.dist_m_at_centre) and g.status_at_centre == cov.STATUS_NO_FACILITIES


def test_gaps_keep_the_centre_their_walk_was_measured_at(handmade):
    """Each gap holds its centre, the point inside it its walk was measured at, in metres and in
    lon/lat: `shapely.point_on_surface` of the polygon, the lon/lat that point's."""
    from walkcover.config.crs import to_lonlat

    gaps = gap_polygons(handmade, "toilet", "d1")
    centre = shapely.point_on_surface(gaps.geometry.to_numpy())
    np.testing.assert_array_equal(gaps["centre_x_m"], shapely.get_x(centre))
    np.testing.assert_array_equal(gaps["centre_y_m"], shapely.get_y(centre))
    lonlat = to_lonlat(centre, handmade.crs)
    np.testing.assert_array_equal(gaps["centre_lon"], shapely.get_x(lonlat))
    np.testing.assert_array_equal(gaps["centre_lat"], shapely.get_y(lonlat))
    assert shapely.contains_xy(gaps.geometry.iloc[0], gaps["centre_x_m"][0], gaps["centre_y_m"][0])
    # as the run's layers hold them
    np.testing.assert_array_equal(handmade.gaps("d1")["centre_lon"], gaps["centre_lon"])


def _moved_centres(result, district_id: str, *, d_lon: float, d_lat: float):
    """`result` with its gaps' stored centres moved by (`d_lon`, `d_lat`) degrees: an output
    that made a centre of its own would not give these."""
    import dataclasses

    layers = result.district_layers[district_id]
    gaps = layers.gaps.copy()
    gaps["centre_lon"] += d_lon
    gaps["centre_lat"] += d_lat
    moved = dataclasses.replace(layers, gaps=gaps)
    return dataclasses.replace(
        result, district_layers={**result.district_layers, district_id: moved}
    )


def _map_gap_frames(result, district_id: str, monkeypatch) -> list:
    """The frames a district map draws its gaps from (their tooltips' values), per standard."""
    import folium

    from walkcover.presentation import maps

    frames = []
    real = maps.PackedGeoJson

    def spy(frame, **kwargs):
        frames.append(frame)
        return real(frame, **kwargs)

    monkeypatch.setattr(maps, "PackedGeoJson", spy)
    for std in result.standards:
        maps._add_gaps(folium.FeatureGroup(), result, std, district_id)
    return frames


def test_report_and_map_give_the_centre_the_gap_keeps(handmade, monkeypatch):
    """The report's ten largest gaps and the map's gap tooltips give the lon/lat the gap keeps
    (``centre_lon``, ``centre_lat``), exactly, never a point of their own."""
    from walkcover.presentation.figures import coordinate_text
    from walkcover.presentation.record import district_run
    from walkcover.presentation.report import gaps_view, top_gaps

    moved = _moved_centres(handmade, "d1", d_lon=0.001, d_lat=-0.002)
    stored = moved.gaps("d1")
    kept = handmade.gaps("d1")
    assert len(stored) and (np.abs(stored["centre_lon"] - kept["centre_lon"]) > 5e-4).all()
    top = top_gaps(district_run(moved, "d1"))
    np.testing.assert_array_equal(top["lon"], stored["centre_lon"])
    np.testing.assert_array_equal(top["lat"], stored["centre_lat"])
    view = gaps_view(top)
    assert list(view["lon\n经度"]) == [coordinate_text(v) for v in stored["centre_lon"]]
    assert list(view["lat\n纬度"]) == [coordinate_text(v) for v in stored["centre_lat"]]
    (frame,) = _map_gap_frames(moved, "d1", monkeypatch)
    assert list(frame["centre"]) == [
        f"{coordinate_text(lon)}, {coordinate_text(lat)}"
        for lon, lat in zip(stored["centre_lon"], stored["centre_lat"])
    ]


def test_report_and_map_say_why_a_gap_centre_has_no_walk(four_ways, monkeypatch):
    """Where a gap's centre has no walk, the report and the map's tooltips say why, in the words
    a home's status has (`figures.STATUS_WORDS`), not "beyond the search limit" for every one."""
    from walkcover.presentation.figures import STATUS_WORDS
    from walkcover.presentation.record import district_run
    from walkcover.presentation.report import gaps_view, top_gaps

    gaps = four_ways.gaps("d1")
    expected = {
        cov.STATUS_BEYOND_LIMIT: STATUS_WORDS[cov.STATUS_BEYOND_LIMIT],
        cov.STATUS_UNREACHABLE: STATUS_WORDS[cov.STATUS_UNREACHABLE],
        cov.STATUS_UNSNAPPED: STATUS_WORDS[cov.STATUS_UNSNAPPED],
    }
    assert set(expected) <= set(gaps["status_at_centre"])
    assert len(set(expected.values())) == 3
    top = top_gaps(district_run(four_ways, "d1"))
    shown = dict(zip(top["status_at_centre"], gaps_view(top)["walk m at centre\n中心步行米"]))
    (frame,) = _map_gap_frames(four_ways, "d1", monkeypatch)
    tooltip = dict(zip(gaps["status_at_centre"], frame["walk"]))
    for status, words in expected.items():
        assert shown[status] == words and tooltip[status] == words
    beyond = gaps[gaps["status_at_centre"] == cov.STATUS_BEYOND].iloc[0]
    walk_m = f"{beyond['dist_m_at_centre']:,.0f}"
    assert shown[cov.STATUS_BEYOND] == walk_m and tooltip[cov.STATUS_BEYOND] == f"{walk_m} m"
