"""The official figure with its caveats: how many residents its land holds, and a detour loss that
compares straight line and walking at the same radii.

The city (local metres): a primary road (a main street: toilets within 300 m) along y=0 from
x=-1000 to 1000; a toilet beside it at (2, 0). Residential land is the strip (-600..600) × (0..10):
its 10 m cells have centres at y=5 and x = -595, -585, …, 595 (120 cells), each 5 m from the road.
Two one-storey homes: A (0..20, 20..40), 400 m² → 10 residents, off the residential land; B
(100..120, 1..9), 160 m² → 4 residents, on it.

- Official (500 m circle ∩ land ÷ land): the circle spans x = 2 ± √(500² − y²) ≈ 2 ± 499.97 on average
  over the strip: ≈ 999.93 of its 1,200 m, 83.33%.
- Straight line at the walking radius (300 m): √((x−2)² + 5²) ≤ 300 → x ∈ [−297.96, 301.96]: the 60
  cells −295 … 295.
- Walking: leg 5 + |x − 2| ≤ 300 → x ∈ [−293, 297]: the 59 cells −285 … 295 → 49.17%.
- Detour loss at the same radii: (60 − 59) / 120 = 0.83 pp; the old official − walking difference,
  33.3 pp, measured the change of radius, not the detour.
- Residents on residential land: 4 of 14 = 28.6% (< 50%: a warning on the summary, report and map).
"""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

import walkcover as wc
from conftest import LOCAL_CRS, box_way, write_city


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("official")
    nodes: dict = {1: (-1000, 0), 2: (1000, 0), 3: (2, 0, {"amenity": "toilets"})}
    home = {"building": "apartments", "building:levels": "1"}
    ways = [
        (100, [1, 2], {"highway": "primary"}),
        box_way(200, 10, 0, 20, 20, 40, home, nodes),  # A
        box_way(201, 20, 100, 1, 120, 9, home, nodes),  # B
        box_way(300, 30, -600, 0, 600, 10, {"landuse": "residential"}, nodes),
    ]
    cfg, osm = write_city(tmp, nodes=nodes, ways=ways, district=box(-700, -200, 700, 200))
    return wc.assess(cfg, standard="toilet", source=osm, cache=False)


def test_detour_loss_compares_straight_line_and_walking_at_the_same_radii(city):
    row = city.summary.iloc[0]
    # the circle is drawn with 128 sides (up to 0.15 m inside the true circle): 83.31 vs 83.33
    assert row["area_covered_euclid_pct"] == pytest.approx(100 * 999.93 / 1200, abs=0.03)
    assert row["area_covered_pct"] == pytest.approx(100 * 59 / 120, abs=1e-9)
    assert row["detour_loss_pp"] == pytest.approx(100 * 1 / 120, abs=1e-9)


def test_share_of_residents_on_the_official_land_and_its_warning(city, tmp_path):
    row = city.summary.iloc[0]
    assert row["residents"] == pytest.approx(14.0, abs=0.01)
    assert row["residents_on_land_pct"] == pytest.approx(100 * 4 / 14, abs=0.01)
    warn = [n for n in city.notes if n.kind == "official_land"]
    assert len(warn) == 1 and warn[0].district == "d1"
    assert "only 28.6% of its residents live on residential land" in warn[0].text
    # on the map's legend and at the top of the report
    from walkcover.presentation.maps import district_map

    html = district_map(city.assessment, "d1").get_root().render()
    assert "only 28.6% of its residents" in html
    city.save(tmp_path / "out", maps=False)
    from walkcover.presentation.record import district_run
    from walkcover.presentation.report import district_report_html

    page = district_report_html(district_run(city.assessment, "d1"), maps_png={}, chart_png=b"")
    assert "Read first" in page and "only 28.6% of its residents" in page


def sparse_city(tmp_path, *, raster: bool):
    """Residential land (0..200) × (0..200), 40,000 m², with one mapped 20 × 20 m building at
    (10..30, 10..30): 1% of the land against the 25% of fully mapped land, ≈ 4% complete. A street
    along y=-5. With `raster`: a 100 m population raster over (-100..300) × (-100..300) in the
    city's CRS whose cells hold 1, 2, … 16 people; the district (−50..250)² takes the cells whose
    centre lies in it: centres 0±50 … 200±50 → the 3 × 3 cells centred at 0, 100, 200 (x and y)."""
    import rasterio
    from rasterio.transform import from_origin

    nodes: dict = {1: (-100, -5), 2: (300, -5)}
    home = {"building": "apartments", "building:levels": "1"}
    ways = [
        (100, [1, 2], {"highway": "residential"}),
        box_way(200, 10, 10, 10, 30, 30, home, nodes),
        box_way(300, 20, 0, 0, 200, 200, {"landuse": "residential"}, nodes),
    ]
    cfg, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-50, -50, 250, 250))
    data = np.arange(1, 17, dtype="float32").reshape(4, 4)
    path = tmp_path / "pop.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32", crs=LOCAL_CRS,
        transform=from_origin(-150, 350, 100, 100),
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    opts = {"population_raster": path} if raster else {}
    return wc.assess(cfg, standard="toilet", source=osm, cache=False, **opts), data


def test_a_sparsely_mapped_district_takes_its_residents_from_the_raster(tmp_path):
    res, data = sparse_city(tmp_path, raster=True)
    row = res.summary.iloc[0]
    assert row["building_completeness_pct"] == pytest.approx(4.0, abs=0.01)
    # cell centres: x = -100, 0, 100, 200 (columns), y = 300, 200, 100, 0 (rows); the district
    # (-50..250)² holds columns 1..3 and rows 1..3
    inside = data[1:4, 1:4]
    assert row["residents"] == pytest.approx(float(inside.sum()), abs=0.05)  # totals preserved
    kinds = res.demand["kind"].value_counts().to_dict()
    # the building's cell (centre (0, 0)) gives its people to the building; the 8 others are units
    assert kinds == {"building": 1, "raster_cell": 8}
    b = res.demand[res.demand["kind"] == "building"]
    assert b["residents"].iloc[0] == pytest.approx(float(data[3, 1]), abs=1e-6)
    # a cell with residential land puts its people on that land, not at its centre: every cell
    # here touches the land (0..200)², even the one centred on its corner (200, 200)
    cells = res.demand[res.demand["kind"] == "raster_cell"].to_crs(LOCAL_CRS)
    inner = box(0, 0, 200, 200).buffer(-0.5)
    assert all(inner.contains(g) for g in cells.geometry)
    assert row["demand_model"] == "raster (buildings incomplete)"
    note = [n.text for n in res.notes if n.kind == "demand"]
    assert len(note) == 1 and "look 4% complete" in note[0] and "8 raster cell(s)" in note[0]


def test_without_a_raster_a_sparse_district_is_warned_about(tmp_path):
    res, _ = sparse_city(tmp_path, raster=False)
    assert res.summary.iloc[0]["building_completeness_pct"] == pytest.approx(4.0, abs=0.01)
    note = [n.text for n in res.notes if n.kind == "demand"]
    assert len(note) == 1 and note[0].startswith("d1: WARNING its mapped buildings look only 4%")
    assert "covers only the mapped part" in note[0]
    assert "buildings mapped: ≈ 4% complete" in res.explain("toilet")
    from walkcover.presentation.record import district_run
    from walkcover.presentation.report import district_report_html

    page = district_report_html(district_run(res.assessment, "d1"), maps_png={}, chart_png=b"")
    assert "Buildings mapped: ≈ 4% complete" in page and "WARNING" in page


def test_schools_count_children_and_toilets_report_the_elderly(tmp_path):
    """Groups by age from rasters. A street y=0 from x=-100 to 1000; a primary school at (0, 5) and
    a toilet at (100, 5); home A (90..110, 10..30) near both, home B (890..910, 10..30) 800 m on.
    100 m rasters with one row of cells centred at y=100, x=-100 … 900: total 50 and 50 people in
    A's and B's cells, children 30 and 10, over-65s 2 and 6. Primary school (500 m): A covered, B
    not → residents 50%, children 30 / 40 = 75%. Toilet: residents 50%, over-65s 2 / 8 = 25%."""
    import rasterio
    import yaml
    from rasterio.transform import from_origin

    from walkcover import _paths

    nodes: dict = {
        1: (-100, 0), 2: (1000, 0),
        3: (0, 5, {"amenity": "school", "isced:level": "1"}),
        4: (100, 5, {"amenity": "toilets"}),
    }  # fmt: skip
    home = {"building": "apartments", "building:levels": "1"}
    ways = [
        (100, [1, 2], {"highway": "residential"}),
        box_way(200, 10, 90, 10, 110, 30, home, nodes),
        box_way(201, 20, 890, 10, 910, 30, home, nodes),
    ]
    cfg, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-150, -100, 1050, 150))
    for name, a, b in (("total", 50, 50), ("kids", 30, 10), ("old", 2, 6)):
        data = np.zeros((1, 11), dtype="float32")
        data[0, 2], data[0, 10] = a, b
        with rasterio.open(
            tmp_path / f"{name}.tif", "w", driver="GTiff", width=11, height=1, count=1,
            dtype="float32", crs=LOCAL_CRS, transform=from_origin(-150, 150, 100, 100),
        ) as dst:  # fmt: skip
            dst.write(data, 1)
    with cfg.open("a", encoding="utf-8") as f:
        f.write(
            "population: {raster: total.tif, groups: {school_age: {rasters: [kids.tif]}, "
            "over_65: {rasters: [old.tif], label: residents over 65}}}\n"
        )
    shipped = _paths.config_file("standards", "zhengzhou-2018")
    rules = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    rules["standards"]["primary_school"]["population_group"] = "school_age"
    rules["standards"]["toilet"]["report_group"] = "over_65"
    std_file = tmp_path / "standards.yaml"
    std_file.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    res = wc.assess(
        cfg, standard="primary_school,toilet", standards=std_file, source=osm, cache=False
    )
    s = res.summary.set_index("standard")
    assert s.loc["primary_school", "residents_group"] == "school_age"
    assert s.loc["primary_school", "residents"] == pytest.approx(40.0, abs=1e-6)
    assert s.loc["primary_school", "residents_covered_pct"] == pytest.approx(75.0, abs=1e-6)
    assert s.loc["toilet", "residents_group"] == "all"
    assert s.loc["toilet", "residents_covered_pct"] == pytest.approx(50.0, abs=1e-6)
    assert s.loc["toilet", "report_group"] == "over_65"
    assert s.loc["toilet", "report_group_covered_pct"] == pytest.approx(25.0, abs=1e-6)
    # a group with no raster: all residents, and a note
    rules["standards"]["primary_school"]["population_group"] = "age_6_11"
    std_file.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    res2 = wc.assess(cfg, standard="primary_school", standards=std_file, source=osm, cache=False)
    assert res2.summary.iloc[0]["residents_covered_pct"] == pytest.approx(50.0, abs=1e-6)
    assert any("'age_6_11' has no raster" in n.text for n in res2.notes)


def test_a_threshold_in_minutes_at_a_walking_speed():
    from walkcover.config.standards import Standard

    base = {
        "name": "x",
        "selectors": [{"amenity": "x"}],
        "target_pct": 100,
        "citation": {"section": "1"},
    }
    assert Standard(**base, threshold_min=15).threshold_m == pytest.approx(1080.0)
    assert Standard(**base, threshold_min=15, walk_speed_mps=0.9).threshold_m == pytest.approx(
        810.0
    )
    with pytest.raises(ValueError, match="not both"):
        Standard(**base, threshold_min=15, threshold_m=500)
