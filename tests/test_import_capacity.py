"""Capacities in planners' facility files: `walkcover import` reads them, refuses cells that are not
a number of places (nothing written), and a run's E2SFCA access uses them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import walkcover as wc
from test_choice_run import DEFAULT_BEDS, SID, _standards_file
from walkcover.cli import app
from walkcover.measures.facility_files import imported_facilities, imported_path

runner = CliRunner()
CITY = "helsinki-sample"


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKCOVER_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def _import(path, *extra: str):
    args = ["import", str(path), "--city", CITY, "--standard", SID, "--no-check", *extra]
    res = runner.invoke(app, args)
    return res, " ".join(res.output.split())


@pytest.fixture(scope="module")
def three_clinics(helsinki_layers):
    """Three of the sample's OSM clinics, as far apart as they lie (lon, lat)."""
    from walkcover.config.standards import load_standards
    from walkcover.measures.facilities import select_facilities

    _, crs, layers = helsinki_layers
    c = select_facilities(layers.features, load_standards().standards[SID])
    c = c[c["counts"].to_numpy(dtype=bool)]
    pts = c.geometry.representative_point().to_crs(crs)
    xy = np.column_stack([pts.x, pts.y])
    far = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    i, j = np.unravel_index(np.argmax(far), far.shape)
    k = int(np.argmax(np.minimum(far[i], far[j])))
    ll = pts.iloc[[i, j, k]].to_crs(4326)
    assert len({i, j, k}) == 3
    return ll.x.to_numpy(), ll.y.to_numpy()


def _csv(tmp_path, lon, lat, capacity=None, *, header="capacity", name="clinics.csv"):
    frame = pd.DataFrame({"name": [f"clinic {i}" for i in range(len(lon))], "lon": lon, "lat": lat})
    if capacity is not None:
        frame[header] = capacity
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _assess(city, standards, cache_dir):
    return wc.assess(city, standards=standards, standard=SID, cache_dir=cache_dir)


def _city(tmp_path):
    from walkcover.config.study_area import load_city

    sample = load_city(CITY).config_path
    cfg = sample.read_text().replace("path: ../../data/", f"path: {sample.parents[2]}/data/")
    cfg += f"facilities:\n  {SID}: {{source: files}}\n"
    (tmp_path / "city.yaml").write_text(cfg)
    return load_city(tmp_path / "city.yaml")


def test_capacities_reach_the_run_and_its_access(three_clinics, tmp_path, sample_cache):
    lon, lat = three_clinics
    standards = _standards_file(tmp_path)
    city = _city(tmp_path)

    # An import made before capacities were read: no capacity column stored. It still loads.
    old = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"], "address": None, "source_row": [1, 2, 3],
         "source_file": "old.csv"},
        geometry=gpd.points_from_xy(lon, lat), crs=4326,
    )  # fmt: skip
    imported_path(CITY, SID).parent.mkdir(parents=True)
    old.to_file(imported_path(CITY, SID), layer="facilities", driver="GPKG")
    assert "capacity" not in imported_facilities(CITY, SID, 3067)
    before = _assess(city, standards, sample_cache)

    csv = _csv(tmp_path, lon, lat, ["40", "", "0"])
    res, text = _import(csv, "--overwrite")
    assert res.exit_code == 0, text
    stored = gpd.read_file(imported_path(CITY, SID))
    np.testing.assert_array_equal(stored["capacity"], [40.0, np.nan, 0.0])
    after = _assess(city, standards, sample_cache)

    fac = after.facilities
    fac = fac[fac["standard"] == SID].set_index("osm_id")
    rows = [f"file:clinics.csv#{r}" for r in (1, 2, 3)]
    np.testing.assert_array_equal(fac.loc[rows, "capacity"], [40.0, DEFAULT_BEDS, 0.0])
    assert fac.loc[rows, "capacity_source"].tolist() == ["file", "default", "file"]
    old_fac = before.facilities
    assert (old_fac.loc[old_fac["standard"] == SID, "capacity_source"] == "default").all()

    # E2SFCA: the home nearest the 40-place clinic gets more than with the default 5 (eight times
    # that clinic's share); homes that reach only the 0-place one get less (nothing from it)
    a = before.demand[f"{SID}_access"].to_numpy(dtype=float)
    b = after.demand[f"{SID}_access"].to_numpy(dtype=float)
    homes = after.demand.geometry.centroid
    forty = gpd.GeoSeries(gpd.points_from_xy(lon[:1], lat[:1]), crs=4326).to_crs(homes.crs)
    home = int(np.argmin(homes.distance(forty.iloc[0]).to_numpy()))
    assert b[home] > a[home] > 0
    ok = np.isfinite(a) & np.isfinite(b)
    assert (b[ok] < a[ok]).any()


@pytest.mark.parametrize(
    "bad",
    ["abc", "-5", "nan", "1e308", "=1+1", "<img onerror=alert(1)>", "200000", "inf"],
)
def test_a_bad_capacity_refuses_the_import_naming_the_row(bad, tmp_path, data_home):
    csv = _csv(tmp_path, [24.94, 24.95, 24.96], [60.16, 60.165, 60.17], ["40", bad, ""])
    res, text = _import(csv)
    assert res.exit_code == 2, text
    assert "clinics.csv" in text and "row 3" in text and repr(bad) in text, text
    assert "row 2" not in text and "row 4" not in text
    assert "nothing was imported" in text and "0 to 100,000" in text
    assert not imported_path(CITY, SID).exists()


def test_a_refused_import_keeps_the_earlier_one(tmp_path, data_home):
    good = _csv(tmp_path, [24.94, 24.95], [60.16, 60.165], ["12", "30"], name="good.csv")
    assert _import(good)[0].exit_code == 0
    kept = imported_path(CITY, SID).read_bytes()
    bad = _csv(tmp_path, [24.94, 24.95], [60.16, 60.165], ["12", "=HYPERLINK(1)"], name="bad.csv")
    res, text = _import(bad, "--overwrite")
    assert res.exit_code == 2 and "row 3" in text, text
    assert imported_path(CITY, SID).read_bytes() == kept


def test_refused_values_are_escaped_truncated_and_the_first_few_named(tmp_path, data_home):
    caps = ["\x1b[31m5\x1b[0m", "x" * 80] + ["abc"] * 10
    csv = _csv(tmp_path, np.linspace(24.93, 24.96, 12), np.linspace(60.16, 60.17, 12), caps)
    res, text = _import(csv)
    assert res.exit_code == 2
    assert "\x1b" not in res.output and "\\x1b[31m5" in text
    assert "x" * 31 not in text and "x" * 30 + "…" in text
    assert "12 capacity cell(s)" in text and "and 7 more" in text and "row 7" not in text


def test_capacity_col_and_the_headers_found(tmp_path, data_home):
    lon, lat = [24.94, 24.95], [60.16, 60.165]
    csv = _csv(tmp_path, lon, lat, ["7", "8"], header="Kapazität")
    res, text = _import(csv, "--capacity-col", "Kapasiteetti")
    assert res.exit_code == 2, text
    assert "--capacity-col 'Kapasiteetti' is not a column" in text
    assert "name, lon, lat, Kapazität" in text
    assert not imported_path(CITY, SID).exists()
    res, text = _import(csv)  # not a name it knows: imported without capacities
    assert res.exit_code == 0, text
    assert gpd.read_file(imported_path(CITY, SID))["capacity"].isna().all()
    res, text = _import(csv, "--capacity-col", "Kapazität", "--overwrite")
    assert res.exit_code == 0, text
    np.testing.assert_array_equal(gpd.read_file(imported_path(CITY, SID))["capacity"], [7, 8])
    for header in (" Beds ", "学位数", "床 位", "PLACES"):
        path = _csv(tmp_path, lon, lat, ["1,200", "约40人"], header=header, name="h.csv")
        res, text = _import(path, "--overwrite")
        assert res.exit_code == 0, text
        got = gpd.read_file(imported_path(CITY, SID))["capacity"]
        np.testing.assert_array_equal(got, [1200.0, 40.0])


def test_excel_and_geopackage_capacities(tmp_path):
    from walkcover.measures.facility_files import FacilityFileError, read_facility_file

    xy = {"经度": [24.94, 24.95, 24.96], "纬度": [60.16, 60.165, 60.17]}
    xlsx = tmp_path / "幼儿园.xlsx"
    pd.DataFrame({"名称": ["a", "b", "c"], **xy, "学位": [120, None, 0]}).to_excel(
        xlsx, index=False
    )
    np.testing.assert_array_equal(read_facility_file(xlsx)["capacity"], [120.0, np.nan, 0.0])
    # pandas reads the text "nan" (or "NA", "null") as a missing value; here it is a bad cell
    pd.DataFrame({"名称": ["a", "b", "c"], **xy, "学位": [120, "nan", "NA"]}).to_excel(
        xlsx, index=False
    )
    with pytest.raises(FacilityFileError, match=r"2 capacity cell.*row 3 'nan'.*row 4 'NA'"):
        read_facility_file(xlsx)
    pts = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"], "beds": [12.0, np.nan, -3.0]},
        geometry=gpd.points_from_xy(xy["经度"], xy["纬度"]),
        crs=4326,
    )
    gpkg = tmp_path / "clinics.gpkg"
    pts.to_file(gpkg)
    with pytest.raises(FacilityFileError, match=r"feature 3 '-3.0' \(negative number\)"):
        read_facility_file(gpkg)
    pts.iloc[:2].to_file(gpkg)
    np.testing.assert_array_equal(read_facility_file(gpkg)["capacity"], [12.0, np.nan])
