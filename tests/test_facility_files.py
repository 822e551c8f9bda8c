"""Planners' facility files: Chinese headers, Excel, datums, and the guards against wrong coordinates."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Geod
from typer.testing import CliRunner

from walkcover.cli import app
from walkcover.measures.facility_files import FacilityFileError, imported_path, read_facility_file
from walkcover.sources import coords

runner = CliRunner()
GEOD = Geod(ellps="WGS84")


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKCOVER_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def osm_toilets(helsinki_layers):
    from walkcover.config.standards import load_standards
    from walkcover.measures.facilities import select_facilities

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
    import walkcover as wc
    from walkcover.config.standards import load_standards
    from walkcover.config.study_area import load_city

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
    load_standards()
    result = wc.assess(city, standard="toilet", cache=False)
    fac = result.facilities
    assert (fac["matched_by"] == "imported from plots.gpkg").sum() == 1  # the duplicate merged away
    assert len(fac) == len(osm_toilets) + 1


def test_without_osm_facilities_the_streets_betray_gcj02(tmp_path, data_home):
    import pyproj
    from shapely.geometry import box

    from conftest import LOCAL_CRS, write_city

    # A hand-made Zhengzhou neighbourhood: three streets 1 km apart, and no toilets in OSM.
    nodes = {1: (0, 0), 2: (3000, 0), 3: (0, 1000), 4: (3000, 1000), 5: (0, 2000), 6: (3000, 2000)}
    ways = [(10, [1, 2], {"highway": "residential"}), (11, [3, 4], {"highway": "residential"}),
            (12, [5, 6], {"highway": "residential"})]  # fmt: skip
    cfg, _ = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-500, -500, 3500, 2500))
    # Toilets on those streets, exported from Amap: GCJ-02.
    to_ll = pyproj.Transformer.from_crs(LOCAL_CRS, 4326, always_xy=True)
    x = np.array([300.0, 900.0, 1500.0, 2100.0, 2700.0, 600.0, 1800.0])
    y = np.array([0.0, 1000.0, 2000.0, 0.0, 1000.0, 2000.0, 0.0])
    lon, lat = to_ll.transform(x, y)
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    csv = tmp_path / "amap_toilets.csv"
    pd.DataFrame({"名称": [f"公厕{i}" for i in range(len(x))], "经度": glon, "纬度": glat}).to_csv(
        csv, index=False
    )
    args = ["import", str(csv), "--city", str(cfg), "--standard", "toilet", "--no-cache"]
    res = runner.invoke(app, args)
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "probably gcj02" in text and "--coords gcj02" in text
    assert not imported_path("handmade", "toilet").exists()
    res = runner.invoke(app, [*args, "--coords", "gcj02"])
    assert res.exit_code == 0, res.output
    stored = gpd.read_file(imported_path("handmade", "toilet"))
    d = [
        GEOD.inv(a, b, c, e)[2]
        for a, b, c, e in zip(stored.geometry.x, stored.geometry.y, lon, lat)
    ]
    assert max(d) < 0.05


def test_shapefile_in_cgcs2000_imports(tmp_path):
    pts = gpd.GeoDataFrame(
        {"名称": ["公厕A", "公厕B"]},
        geometry=gpd.points_from_xy([113.64, 113.66], [34.74, 34.76]),
        crs=4326,
    ).to_crs("EPSG:4547")
    shp = tmp_path / "toilets.shp"
    pts.to_file(shp, encoding="utf-8")
    got = read_facility_file(shp)
    assert list(got["name"]) == ["公厕A", "公厕B"]
    np.testing.assert_allclose(got.geometry.x, [113.64, 113.66], atol=1e-7)
    np.testing.assert_allclose(got.geometry.y, [34.74, 34.76], atol=1e-7)


def _shift_by_pandas(points, reference, crs, *, bin_m=25.0, search_m=1500.0):
    """The same vote held with every pair in one pandas frame (the first implementation)."""
    import pandas as pd
    import shapely

    p = points.to_crs(crs).geometry
    r = reference.to_crs(crs).geometry.representative_point()
    ip, ir = shapely.STRtree(r.to_numpy()).query(
        p.to_numpy(), predicate="dwithin", distance=search_m
    )
    dx = r.x.to_numpy()[ir] - p.x.to_numpy()[ip]
    dy = r.y.to_numpy()[ir] - p.y.to_numpy()[ip]
    votes = pd.DataFrame(
        {"p": ip, "bx": np.round(dx / bin_m), "by": np.round(dy / bin_m)}
    ).drop_duplicates()
    allv = pd.concat(
        [votes.assign(bx=votes.bx + i, by=votes.by + j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    ).drop_duplicates()
    counts = allv.groupby(["bx", "by"])["p"].nunique()
    (bx, by), n = counts.idxmax(), counts.max()
    k = (np.abs(np.round(dx / bin_m) - bx) <= 1) & (np.abs(np.round(dy / bin_m) - by) <= 1)
    return float(np.median(dx[k])), float(np.median(dy[k])), n / len(points)


@pytest.mark.parametrize("shifted", [True, False])
def test_chunked_shift_vote_equals_the_all_pairs_vote(shifted):
    """detect_shift votes in chunks (flat memory); the answer is the all-pairs answer."""
    import geopandas as gpd
    import shapely

    from walkcover.measures.facility_files import detect_shift

    crs = "EPSG:32650"
    rng = np.random.default_rng(7)
    ref_xy = rng.uniform(0, 5000, (60, 2)) + np.array([500_000, 3_800_000])
    idx = rng.integers(0, 60, 3000)
    pts_xy = (
        ref_xy[idx] + rng.normal(0, 8, (3000, 2)) + np.array([-540, 125] if shifted else [0, 0])
    )
    ref = gpd.GeoDataFrame(geometry=shapely.points(ref_xy), crs=crs)
    pts = gpd.GeoDataFrame(geometry=shapely.points(pts_xy), crs=crs)
    east, north, share = _shift_by_pandas(pts, ref, crs)
    got = detect_shift(pts, ref, crs, chunk_pairs=5_000)  # many chunks
    if shifted:
        assert got == pytest.approx((east, north, share), abs=1e-9)
        assert got[0] == pytest.approx(540, abs=5) and got[1] == pytest.approx(-125, abs=5)
    else:
        assert np.hypot(east, north) < 100 and got is None


def test_an_imports_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch):
    """The imports folder (``WALKCOVER_DATA``) cannot be written: the error names it and the way
    to put it elsewhere, and nothing is imported (GDAL's own errors were said as a walkcover bug)."""
    import geopandas as gpd
    from shapely.geometry import Point

    from walkcover._errors import OutputFolderError
    from walkcover.measures.facility_files import write_import

    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder goes")
    monkeypatch.setenv("WALKCOVER_DATA", str(blocker))
    points = gpd.GeoDataFrame({"name": ["a"]}, geometry=[Point(24.94, 60.17)], crs=4326)
    with pytest.raises(OutputFolderError, match=r"imports folder .*WALKCOVER_DATA"):
        write_import(points, "helsinki-sample", "toilet", overwrite=False)


def test_what_sqlite_says_of_a_full_disk_is_an_oserror(tmp_path):
    """GDAL and sqlite3 say a full or read-only disk in SQLite's words: `storage_errors` raises
    them as the `OSError` they are, and lets anything else through as it is."""
    import errno

    from walkcover._atomic import storage_errors

    with pytest.raises(OSError) as full, storage_errors(tmp_path / "x.gpkg"):
        raise RuntimeError("sqlite3_exec(COMMIT) failed: database or disk is full")
    assert full.value.errno == errno.ENOSPC and full.value.filename == str(tmp_path / "x.gpkg")
    with pytest.raises(OSError) as ro, storage_errors(tmp_path / "x.gpkg"):
        raise RuntimeError("attempt to write a readonly database")
    assert ro.value.errno == errno.EROFS
    with pytest.raises(ValueError, match="a bug"), storage_errors(tmp_path / "x.gpkg"):
        raise ValueError("a bug")
