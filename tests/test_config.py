"""Standards and city configs: the bundled files, and bad files reported in full."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest

from conftest import streets
from walkcover import ConfigError, CRSError, DistrictNotFoundError
from walkcover.config.standards import PLAN_STANDARD_IDS, load_standards, tag_matches
from walkcover.config.study_area import load_city, resolve_districts, working_crs
from walkcover.engine.network import build_network

DATA = Path(__file__).parent / "data"


def test_bundled_standards_encode_the_plan():
    s = load_standards()
    assert tuple(s.standards) == PLAN_STANDARD_IDS
    expected = {
        "toilet": 500,
        "kindergarten": 300,
        "primary_school": 500,
        "middle_school": 1000,
        "green_space": 300,
        "park": 500,
        "bus_stop": 500,
        "fitness": 1000,
        "clinic": 1000,
    }
    assert {k: v.threshold_m for k, v in s.standards.items()} == expected
    toilet = s.standards["toilet"]
    assert toilet.context_thresholds_m == {
        "main_street": 300,
        "ordinary_road": 500,
        "riverside_park": 800,
    }
    assert toilet.max_threshold_m == 800
    assert "ordinary_road" in toilet.context_applied
    assert all(st.citation.section.startswith("三、") for st in s.standards.values())


def test_malformed_standards_report_every_problem_at_once():
    with pytest.raises(ConfigError) as err:
        load_standards(DATA / "broken_standards.yaml")
    msg = str(err.value)
    assert "standards.toilet.threshold_m: found -300" in msg
    assert "standards.toilet.target_pct: found 150" in msg
    assert "standards.park.selectors: found []" in msg
    assert "standards.park.citation: missing" in msg
    assert "standards.park.colour: found 'green'" in msg
    assert "5 problem(s)" in msg


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("id: x\nstandards:\n  toilet: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_standards(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_standards(tmp_path / "missing.yaml")


def test_selectors():
    assert tag_matches(
        {"amenity": "school", "name": "郑州市第二中学"}, {"amenity": "school", "name": "~中学"}
    )
    assert not tag_matches(
        {"amenity": "school", "name": "实验小学"}, {"amenity": "school", "name": "~中学"}
    )
    assert tag_matches({"leisure": "garden"}, {"leisure": ["park", "garden"]})
    assert tag_matches({"highway": "bus_stop"}, {"highway": True})
    assert not tag_matches({}, {"highway": True})
    with pytest.raises(ConfigError, match="unknown standard 'toilets'.*toilet"):
        load_standards().select(["toilets"])


def test_zhengzhou_districts_resolve_by_any_name():
    city = load_city("zhengzhou")
    assert len(city.districts) == 12
    assert working_crs(city).to_epsg() == 4547
    for name in ("金水区", "金水", "Jinshui District", "jinshui", "410105", "410105-jinshui"):
        hit = resolve_districts(city, name)
        assert list(hit["name"]) == ["金水区"], name
    assert list(resolve_districts(city, "管城区")["name"]) == ["管城回族区"]
    assert len(resolve_districts(city, "all")) == 12
    with pytest.raises(DistrictNotFoundError) as err:
        resolve_districts(city, "郑东新区")
    assert "郑东新区" in str(err.value) and "金水区 / Jinshui District / 410105" in str(err.value)


def test_sample_city_is_labelled_and_uses_utm():
    city = load_city("helsinki-sample")
    assert city.districts["is_sample"].all()
    assert working_crs(city).to_epsg() == 32635


def test_geographic_crs_is_refused_with_the_fix(tmp_path):
    s = streets([(1, 2, [(0, 0), (1, 0)])])
    with pytest.raises(CRSError, match="EPSG:4326.*needs metres.*projected CRS"):
        build_network(gpd.GeoDataFrame(s, geometry="geometry", crs=4326))
    cfg = (
        (Path(load_city("helsinki-sample").config_path))
        .read_text()
        .replace("crs: utm", "crs: EPSG:4326")
    )
    (tmp_path / "c.yaml").write_text(cfg)
    with pytest.raises(ConfigError, match="crs: found 'EPSG:4326'.*degrees"):
        load_city(tmp_path / "c.yaml")


def test_own_boundaries_in_cgcs2000_are_repaired_and_compared(tmp_path):
    import shapely

    from walkcover.config.study_area import replace_boundaries

    city = load_city("zhengzhou")
    mine = city.districts[city.districts["name"].isin(["金水区", "中原区"])].to_crs("EPSG:4547")
    # Make 中原区 self-intersecting: swap two neighbouring vertices of its largest ring.
    zy = mine.index[mine["name"] == "中原区"][0]
    poly = max(shapely.get_parts(mine.geometry[zy]), key=lambda p: p.area)
    xy = list(poly.exterior.coords)
    xy.insert(11, xy[len(xy) // 2])  # a spike to the far side: the ring touches itself
    bad = shapely.Polygon(xy)
    assert not bad.is_valid
    mine.loc[zy, "geometry"] = bad
    path = tmp_path / "official.gpkg"
    mine[["name", "geometry"]].rename(columns={"name": "区名"}).to_file(path)
    with pytest.warns(UserWarning, match="中原区 was invalid"):
        new, diff = replace_boundaries(city, path, name_field="区名")
    assert new.districts.geometry.is_valid.all()
    d = diff.set_index("name")
    assert d.loc["金水区", "diff_pct"] == pytest.approx(
        0.0, abs=0.01
    )  # the same polygon, reprojected
    assert (
        d.loc["中原区", "repaired"] != "" and abs(d.loc["中原区", "diff_pct"]) > 0.01
    )  # only its main part
    assert d.loc["二七区", "repaired"].startswith("not in file")
    assert len(diff) == 12
    with pytest.raises(DistrictNotFoundError):
        gdf = mine[["name", "geometry"]].assign(name=["郑东新区", "金水区"])
        gdf.to_file(tmp_path / "bad.gpkg")
        replace_boundaries(city, tmp_path / "bad.gpkg", name_field="name")


@pytest.mark.parametrize(
    ("name", "district_id"),
    [("jinshui", "410105"), ("Jinshui", "410105"), ("jinshuiqu", "410105"), ("金水", "410105"),
     ("Guancheng", "410104"), ("guanchenghuizuqu", "410104"), ("410104", "410104"),
     ("erqi", "410103"), ("zhongyuan", "410102")],
)  # fmt: skip
def test_district_names_in_pinyin(name, district_id):
    city = load_city("zhengzhou")
    hit = resolve_districts(city, name)
    assert list(hit["district_id"]) == [district_id]


def test_a_list_of_districts():
    city = load_city("zhengzhou")
    hit = resolve_districts(city, "金水区, erqi，410104")
    assert sorted(hit["district_id"]) == ["410103", "410104", "410105"]
    with pytest.raises(DistrictNotFoundError, match="'Kallio' matches no district"):
        resolve_districts(city, "金水区,Kallio")


@pytest.mark.parametrize(
    ("typed", "closest"),
    [("jinshiu", "Jinshui"), ("410106x", "410106"), ("中原去", "中原区"), ("qqqqqqqqq", None)],
)
def test_a_mistyped_district_names_the_closest_in_the_library_too(typed, closest):
    """The library's district error says which district was most likely meant, and none when
    nothing is close."""
    city = load_city("zhengzhou")
    with pytest.raises(DistrictNotFoundError) as err:
        resolve_districts(city, typed)
    text = str(err.value)
    if closest is None:
        assert "closest" not in text
    else:
        assert f"(closest: {closest!r})" in text


def test_a_mistyped_standard_names_the_closest_in_the_library_too():
    """The library says the closest id itself (the CLI adds the ready --standard line)."""
    rules = load_standards()
    with pytest.raises(ConfigError, match=r"unknown standard 'toilte' \(closest: 'toilet'\)"):
        rules.select(["toilte"])
    with pytest.raises(ConfigError) as err:
        rules.select(["xyzzy"])
    assert "closest" not in str(err.value)
