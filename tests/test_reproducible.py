"""The same inputs give the same files: two runs into two folders are byte-identical (maps
included: folium's random element ids, and the CSP hashes made from them, are made stable; the
GeoPackages' and the workbook's time stamps are fixed), but for the documented ``written`` time of
``run.json``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from walkcover.cli import app

runner = CliRunner()


def test_two_runs_write_the_same_maps_and_records(tmp_path):
    from hostile import hostile_city

    cfg, _ = hostile_city(tmp_path)
    outs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    kept = ["--cache-dir", str(tmp_path / "cache")]
    # without a cache, then filling one, then from it (snaps, streets layers and passes kept)
    for out, cache in zip(outs, (["--no-cache"], kept, kept)):
        res = runner.invoke(
            app, ["run", "--city", str(cfg), "--out", str(out), "--standard", "toilet", *cache]
        )
        assert res.exit_code == 0, res.output
    assert any((tmp_path / "cache" / "standards").iterdir())
    a, b, c = (o / "handmade" for o in outs)
    for name in (
        "d1/map.html",
        "d2/map.html",
        "map.html",
        "summary.csv",
        "district_indicators.csv",
        "summary.xlsx",
        "summary.parquet",
        "city_files.json",
        "d1/coverage.gpkg",
        "d2/coverage.gpkg",
    ):
        assert (a / name).read_bytes() == (b / name).read_bytes() == (c / name).read_bytes(), name
    page = (a / "d1" / "map.html").read_text(encoding="utf-8")
    assert "00000000000000000000000000000001" in page  # ids counted, not drawn at random
    rec_a, rec_b, rec_c = (
        json.loads((d / "d1" / "run.json").read_text(encoding="utf-8")) for d in (a, b, c)
    )
    assert rec_a.pop("written") and rec_b.pop("written") and rec_c.pop("written")
    assert rec_a == rec_b == rec_c


def test_a_geopackage_is_the_file_gdal_writes_when_its_clock_stands_still(tmp_path):
    """GDAL stamps a layer as it makes it and, in one more transaction, as it closes it if its
    clock has moved on in between (to the millisecond): one write in four of a small layer in a
    run, which showed only in the file's SQLite change counter (bytes 24-27, 92-95). A layer of
    2,000 homes always takes GDAL longer than that; written by `write_layers` it must still be,
    byte for byte, the file written with GDAL's date held fixed; and GDAL's date is left as it
    was."""
    import geopandas as gpd
    import numpy as np
    import pyogrio
    import shapely

    from walkcover.presentation.geopackage import write_layers
    from walkcover.presentation.styles import STAMP

    x = np.arange(2000, dtype=float)
    homes = gpd.GeoDataFrame(
        {"population": x, "toilet_band": np.where(x % 2 == 0, "≤ 300 m", "> 300 m")},
        geometry=shapely.points(x, x),
        crs=32650,
    )
    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": STAMP})
    try:
        still = write_layers(tmp_path / "still.gpkg", {"demand": homes}).read_bytes()
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})
    for i in range(3):
        path = write_layers(tmp_path / f"{i}.gpkg", {"demand": homes})
        assert path.read_bytes() == still, i
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") == before
