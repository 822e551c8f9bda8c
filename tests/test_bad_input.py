"""Broken input gets one line naming the input, the value and the fix, before any computation,
and nothing is wrong without a word (issue 11, items 8 and 11–14, and the one-line errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hostile import hostile_city
from walkcover.cli import app
from walkcover.measures.facility_files import read_facility_file

runner = CliRunner()


def one_line_error(res, *phrases: str) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.output
    line = " ".join(res.output[res.output.index("error:") :].split())
    for phrase in phrases:
        assert phrase in line, (phrase, line)
    return line


@pytest.fixture
def city(tmp_path):
    cfg, _ = hostile_city(tmp_path)
    return cfg


def test_out_or_cache_that_is_a_file_is_refused_before_work(tmp_path, city):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    res = runner.invoke(app, ["run", "--city", str(city), "--out", str(a_file), "--no-cache"])
    one_line_error(res, f"--out '{a_file}' is a file, not a folder; pass a folder")
    res = runner.invoke(
        app, ["run", "--city", str(city), "--out", str(tmp_path / "o"), "--cache-dir", str(a_file)]
    )
    one_line_error(res, f"cache folder '{a_file}' is a file, not a folder")
    # the refused command made no --out folder (nor its missing parent)
    assert not (tmp_path / "o").exists()
    res = runner.invoke(
        app,
        ["run", "--city", str(city), "--out", str(tmp_path / "p" / "o"), "--tiles", "nonsense"],
    )
    assert res.exit_code == 2, res.output
    assert not (tmp_path / "p").exists()
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.*"))


@pytest.mark.parametrize("value", ["0", "-5"])
def test_time_limit_must_be_positive(tmp_path, city, value):
    res = runner.invoke(app, ["site", "--city", str(city), "--district", "d1", "--standard", "toilet", "--k", "1",
                              "--out", str(tmp_path / "o"), "--no-cache", "--time-limit", value])  # fmt: skip
    one_line_error(
        res,
        f"--time-limit {float(value):g}: give the seconds HiGHS may search as a positive number",
    )


def test_standards_folder_and_duplicate_id_are_refused(tmp_path, city):
    res = runner.invoke(
        app,
        ["run", "--city", str(city), "--out", str(tmp_path / "o"), "--standards", str(tmp_path)],
    )
    one_line_error(res, f"standards file '{tmp_path}' is a folder; pass a YAML file")


def _districts(path, features):
    fc = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")


def _square(x, y, d=0.01):
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]],
    }


def test_district_ids_that_give_one_folder_are_refused(tmp_path, city):
    _districts(tmp_path / "districts.geojson", [
        {"type": "Feature", "properties": {"id": "../x", "name": "甲", "name_en": "A"}, "geometry": _square(113.6, 34.7)},
        {"type": "Feature", "properties": {"id": "x", "name": "乙", "name_en": "B"}, "geometry": _square(113.7, 34.7)},
    ])  # fmt: skip
    res = runner.invoke(
        app, ["run", "--city", str(city), "--out", str(tmp_path / "o"), "--no-cache"]
    )
    one_line_error(
        res,
        "district ids must differ in their letters and digits",
        "['../x', 'x'] all give folder 'x'",
    )


def test_self_intersecting_district_is_repaired_with_a_warning(tmp_path, city):
    from walkcover.config.study_area import load_city

    bowtie = {"type": "Polygon", "coordinates": [[[113.6, 34.7], [113.61, 34.71], [113.61, 34.7],
                                                  [113.6, 34.71], [113.6, 34.7]]]}  # fmt: skip
    _districts(tmp_path / "districts.geojson", [
        {"type": "Feature", "properties": {"id": "d1", "name": "蝶形区", "name_en": "Bowtie"}, "geometry": bowtie}
    ])  # fmt: skip
    with pytest.warns(UserWarning, match=r"boundary of 蝶形区 was invalid \(Self-intersection"):
        city_obj = load_city(city)
    assert city_obj.districts.geometry.iloc[0].is_valid
    assert city_obj.districts.geometry.iloc[0].area == pytest.approx(0.5 * 0.01 * 0.01, rel=1e-6)
    res = runner.invoke(
        app,
        ["explain", "--city", str(city), "--district", "d1", "--standard", "toilet", "--no-cache"],
    )
    assert "warning: districts.geojson: boundary of 蝶形区 was invalid" in " ".join(
        res.output.split()
    )


def test_empty_district_file_and_empty_or_mislabelled_boundaries(tmp_path, city):
    _districts(tmp_path / "districts.geojson", [])
    res = runner.invoke(
        app, ["run", "--city", str(city), "--out", str(tmp_path / "o"), "--no-cache"]
    )
    one_line_error(res, "districts.geojson' holds no features; it needs one polygon per district")
    (tmp_path / "again").mkdir()
    cfg, _ = hostile_city(tmp_path / "again")
    empty = tmp_path / "empty.geojson"
    _districts(empty, [])
    res = runner.invoke(app, ["run", "--city", str(cfg), "--out", str(tmp_path / "o"), "--no-cache",
                              "--boundaries", str(empty), "--name-field", "name"])  # fmt: skip
    one_line_error(res, f"--boundaries '{empty}' holds no features")
    metres = tmp_path / "metres.geojson"  # CGCS2000 metres saved with the GeoJSON default CRS
    sq = {"type": "Polygon", "coordinates": [[[38_500_000, 3_845_000], [38_510_000, 3_845_000],
                                              [38_510_000, 3_855_000], [38_500_000, 3_845_000]]]}  # fmt: skip
    _districts(metres, [{"type": "Feature", "properties": {"name": "d1"}, "geometry": sq}])
    res = runner.invoke(app, ["run", "--city", str(cfg), "--out", str(tmp_path / "o"), "--no-cache",
                              "--boundaries", str(metres), "--name-field", "name"])  # fmt: skip
    one_line_error(res, "says its CRS is EPSG:4326 (degrees), but its coordinates run from 38500000",
                   "those are metres. Save it with its real CRS")  # fmt: skip


def _raster(path, *, x0, y0, cell_m, width, height, crs):
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
                       crs=crs, transform=from_origin(x0, y0, cell_m, cell_m), tiled=True,
                       compress="deflate", sparse_ok=True, nodata=-1) as dst:  # fmt: skip
        if width * height <= 10_000:
            dst.write(np.ones((1, height, width), dtype="float32"))


def test_population_raster_off_the_city_or_too_fine_is_refused(tmp_path, city):
    from conftest import LOCAL_CRS

    far = tmp_path / "far.tif"
    _raster(far, x0=50_000, y0=50_000, cell_m=100, width=10, height=10, crs=LOCAL_CRS)
    res = runner.invoke(app, ["run", "--city", str(city), "--district", "d1", "--standard", "toilet",
                              "--out", str(tmp_path / "o"), "--no-cache", "--population-raster", str(far)])  # fmt: skip
    one_line_error(
        res,
        f"population raster '{far}' does not cover the districts: it spans 50000, 49000 to 51000, 50000",
    )
    fine = tmp_path / "fine.tif"  # 1 cm cells over the district: 1.5 billion cells
    _raster(fine, x0=-60, y0=160, cell_m=0.01, width=52_000, height=32_000, crs=LOCAL_CRS)
    assert fine.stat().st_size < 5_000_000
    res = runner.invoke(app, ["run", "--city", str(city), "--district", "d1", "--standard", "toilet",
                              "--out", str(tmp_path / "o"), "--no-cache", "--population-raster", str(fine)])  # fmt: skip
    one_line_error(
        res, "has cells of 0.01 × 0.01", "resample it first, e.g. gdalwarp -tr 100 100 -r sum"
    )


def test_windows_1252_csv_is_read_as_such_and_repeated_rows_once(tmp_path):
    rows = ["name,lon,lat", "Café Müller WC,113.651,34.751", "Crème brûlée WC,113.652,34.752",
            "Café Müller WC,113.651,34.751", "Café Müller WC,113.651,34.751", "Straße WC,113.653,34.753"]  # fmt: skip
    path = tmp_path / "toilets.csv"
    path.write_bytes("\r\n".join(rows).encode("cp1252"))
    with pytest.warns(UserWarning, match=r"2 row\(s\) repeat an earlier one .* rows 4, 5"):
        pts = read_facility_file(path)
    assert list(pts["name"]) == ["Café Müller WC", "Crème brûlée WC", "Straße WC"]
    assert pts.attrs["encoding"] == "cp1252"
    gbk = tmp_path / "公厕.csv"
    gbk.write_bytes(
        "名称,经度,纬度\n人民公园公厕,113.65,34.75\n二七广场公厕,113.66,34.76\n".encode("gbk")
    )
    pts = read_facility_file(gbk)
    assert (
        list(pts["name"]) == ["人民公园公厕", "二七广场公厕"] and pts.attrs["encoding"] == "gb18030"
    )
    # told, the given encoding wins
    with pytest.warns(UserWarning, match="repeat an earlier one"):
        pts = read_facility_file(path, encoding="latin-1")
    assert pts.attrs["encoding"] == "latin-1"


def test_verbose_shows_the_traceback_unexpected_errors_are_one_line(tmp_path, city, monkeypatch):
    import walkcover.api

    def boom(*_a, **_k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(walkcover.api, "assess_layers", boom)
    res = runner.invoke(
        app, ["run", "--city", str(city), "--out", str(tmp_path / "o"), "--no-cache"]
    )
    one_line_error(
        res,
        "unexpected ZeroDivisionError: division by zero; this is a walkcover bug: run again with -v",
    )
    res = runner.invoke(
        app, ["-v", "run", "--city", str(city), "--out", str(tmp_path / "o"), "--no-cache"]
    )
    assert res.exit_code == 2 and "Traceback (most recent call last)" in res.output
