"""The figures of summary.csv and district_indicators.csv on a hand-made city whose every answer is
computed by hand: the toilet radius per street, covered street length per context, the safe-route
figure for primary schools, and the counts, densities and land shares per district.

The city (local metres): a residential street 1 (0,0) — 5 (200,0) — 2 (400,0) crossing a primary road
6 (200,-3000) — 3 (200,-300) — 5 — 4 (200,300) — 7 (200,3000) at node 5, with no mapped crossing
(the road runs through the whole study area, so it cuts it in two). A toilet stands on the primary road
at (200,-100); a primary school at (50,-5). Four 20 × 20 m one-storey homes (400 m² ÷ 40 m² per person
= 10 residents each): E (340..360, 5..25) by the residential street, W (170..190, 90..110) west of the
primary road, E2 (210..230, 90..110) and N (210..230, 250..270) east of it. The district is
(-50..450) × (-350..350): 0.35 km². Residential land (250..400, 2..202) is 0.03 km² and holds a
garden (300..350, 150..200) of 2,500 m²; a park (-40..60, 100..200) is 10,000 m².

The OSM file stores lon/lat to 7 decimals (about 1 cm), so lengths agree to a few centimetres.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import box

import walkcover as wc
from conftest import box_way, write_city

CM = 0.05  # metres


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("figures")
    nodes: dict = {
        1: (0, 0), 5: (200, 0), 2: (400, 0), 3: (200, -300), 4: (200, 300), 6: (200, -3000),
        7: (200, 3000),
        8: (200, -100, {"amenity": "toilets"}),
        9: (50, -5, {"amenity": "school", "isced:level": "1", "name": "Primary"}),
    }  # fmt: skip
    home = {"building": "apartments", "building:levels": "1"}
    ways = [
        (100, [1, 5, 2], {"highway": "residential"}),
        (101, [6, 3, 5, 4, 7], {"highway": "primary"}),
        box_way(200, 20, 340, 5, 360, 25, home, nodes),  # E
        box_way(201, 30, 170, 90, 190, 110, home, nodes),  # W
        box_way(202, 40, 210, 90, 230, 110, home, nodes),  # E2
        box_way(203, 50, 210, 250, 230, 270, home, nodes),  # N
        box_way(300, 60, 250, 2, 400, 202, {"landuse": "residential"}, nodes),
        box_way(301, 70, 300, 150, 350, 200, {"leisure": "garden"}, nodes),
        box_way(302, 80, -40, 100, 60, 200, {"leisure": "park", "name": "Park"}, nodes),
    ]
    cfg, osm = write_city(tmp, nodes=nodes, ways=ways, district=box(-50, -350, 450, 350))
    return wc.assess(cfg, standard="toilet,primary_school,park", source=osm, cache=False)


def row(results, standard):
    s = results.summary
    return s[s["standard"] == standard].iloc[0]


def home_distances(results, standard):
    d = results.demand.set_index("osm_id")
    return {k: d.loc[k, f"{standard}_dist_m"] for k in d.index}


def test_each_home_is_held_to_its_own_streets_toilet_radius(city):
    # toilet → node 5: 100 m. E: 100 + 150 + 5 = 255 (ordinary road, 500 m): covered.
    # W, E2: 100 + 100 + 10 = 210 (main street, 300 m): covered. N: 100 + 260 + 10 = 370 > 300.
    d = city.demand.sort_values("osm_id")
    np.testing.assert_allclose(d["toilet_dist_m"], [255, 210, 210, 370], atol=CM)
    assert list(d["toilet_context"]) == [
        "ordinary_road",
        "main_street",
        "main_street",
        "main_street",
    ]
    assert list(d["toilet_covered"]) == [True, True, True, False]
    assert row(city, "toilet")["residents_covered_pct"] == pytest.approx(
        75.0, abs=0.01
    )  # a flat 500 m: 100


def test_covered_street_length_per_context(city):
    r = row(city, "toilet")
    # Main street: the primary road inside the district, 600 m; from the toilet at y=-100, 300 m down to y=-300 ... all
    # of edge 3–5 (300 m), and of edge 5–4 up to y=200 (200 m): 500 of 600 m.
    assert r["street_km_main_street"] == pytest.approx(0.6, abs=CM / 1000)
    assert r["street_covered_pct_main_street"] == pytest.approx(500 / 600 * 100, abs=0.01)
    # Ordinary road: the residential street, 400 m, at most 100 + 200 = 300 m ≤ 500 m: all covered.
    assert r["street_km_ordinary_road"] == pytest.approx(0.4, abs=CM / 1000)
    assert r["street_covered_pct_ordinary_road"] == pytest.approx(100.0)
    assert r["street_km_riverside_park"] == pytest.approx(0.0)
    assert math.isnan(r["street_covered_pct_riverside_park"])


def test_safe_route_figure_counts_only_homes_reached_without_crossing(city):
    # School at offset 50 on edge 1–5, leg 5: 150 m to node 5. By the plain network every home is
    # within 500 m: E 5 + 150 + 150 + 5 = 310, W and E2 265, N 425. Without a mapped crossing of the
    # primary road only W (on its west pavement) is reached safely.
    d = city.demand.sort_values("osm_id")
    np.testing.assert_allclose(d["primary_school_dist_m"], [310, 265, 265, 425], atol=CM)
    assert d["primary_school_safe_dist_m"].iloc[1] == pytest.approx(265.0, abs=CM)
    assert d["primary_school_safe_dist_m"].isna().tolist() == [True, False, True, True]
    assert list(d["primary_school_safe_status"]) == [
        "unreachable",
        "covered",
        "unreachable",
        "unreachable",
    ]
    r = row(city, "primary_school")
    assert r["residents_covered_pct"] == pytest.approx(100.0)
    assert r["residents_covered_safe_pct"] == pytest.approx(25.0, abs=0.01)


def test_district_indicators_values(city):
    ind = city.district_rows.set_index("indicator")
    assert ind.loc["area", "value"] == pytest.approx(0.35, rel=1e-4)
    assert ind.loc["built_up_area", "value"] == pytest.approx(0.03, rel=1e-4)
    assert ind.loc["toilet.density.district_area", "value"] == pytest.approx(1 / 0.35, rel=1e-4)
    assert ind.loc["toilet.density.built_up_area", "value"] == pytest.approx(1 / 0.03, rel=1e-4)
    assert bool(ind.loc["toilet.density.built_up_area", "meets_target"]) is True  # 33.3 ≥ 5
    assert bool(ind.loc["toilet.density.district_area", "meets_target"]) is False  # 2.9 < 5
    # nothing mapped: missing data, not zero
    assert math.isnan(ind.loc["drinking_water", "value"])
    assert "missing data, not zero" in ind.loc["drinking_water", "note"]
    assert ind.loc["park.per_capita", "value"] == pytest.approx(10_000 / 40, rel=1e-3)
    assert ind.loc["park.per_capita", "target"] == 10
    assert ind.loc["green.coverage", "value"] == pytest.approx(100 * 2_500 / 30_000, rel=1e-4)
    assert ind.loc["green.coverage", "target"] == 39
    assert bool(ind.loc["green.coverage", "meets_target"]) is False
