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
    outs = [tmp_path / "a", tmp_path / "b"]
    for out, cache in zip(outs, (["--no-cache"], ["--cache-dir", str(tmp_path / "cache")])):
        res = runner.invoke(
            app, ["run", "--city", str(cfg), "--out", str(out), "--standard", "toilet", *cache]
        )
        assert res.exit_code == 0, res.output
    a, b = (o / "handmade" for o in outs)
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
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    page = (a / "d1" / "map.html").read_text(encoding="utf-8")
    assert "00000000000000000000000000000001" in page  # ids counted, not drawn at random
    rec_a, rec_b = (json.loads((d / "d1" / "run.json").read_text(encoding="utf-8")) for d in (a, b))
    assert rec_a.pop("written") and rec_b.pop("written")
    assert rec_a == rec_b
