"""A run folder comes back tampered with: ``report`` checks everything it reads from ``run.json``,
``coverage.gpkg`` and the city tables before it draws a page. Every damaged value ends in one line
that names the file (and the layer or column) and the fix; never a traceback, raw exception text,
a library's warning, or a report drawn from wrong figures."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from walkcover.cli import app
from walkcover.presentation.record import RunRecordError, load_record

runner = CliRunner()

FIX = "walkcover run --overwrite"
#: Raw exception text a user must never see.
RAW = (
    "Traceback",
    "KeyError",
    "ValueError",
    "TypeError",
    "InvalidOperation",
    "this is a walkcover bug",
)


@pytest.fixture
def world(measured, tmp_path):
    """A fresh copy of the run's ``--out`` (``tmp/out``)."""
    import shutil

    cfg, out = measured
    shutil.copytree(out, tmp_path / "out", symlinks=True)
    return cfg, tmp_path / "out"


def report(cfg, out, *extra: str):
    return runner.invoke(app, ["report", "--city", str(cfg), "--out", str(out), *extra])


def city_dir(out: Path) -> Path:
    return out / "handmade"


def d1(out: Path) -> Path:
    return city_dir(out) / "d1"


def edit_record(out: Path, change, *, raw: str | None = None) -> None:
    path = d1(out) / "run.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    text = json.dumps(data, ensure_ascii=False)
    path.write_text(text if raw is None else text.replace('"@RAW@"', raw), encoding="utf-8")


def reseal(folder: Path) -> None:
    """The city set's manifest written again for its files as they are now (a tamperer who knows
    how walkcover seals a set): the checks below are the record's, not the manifest's."""
    manifest = folder / "city_files.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    files = {}
    for n in sorted(data["files"]):
        b = (folder / n).read_bytes()
        files[n] = {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
    set_id = hashlib.sha256("".join(f"{n}\0{d['sha256']}\0" for n, d in files.items()).encode())
    data = {"format": data["format"], "set_sha256": set_id.hexdigest(), "files": files}
    manifest.write_text(json.dumps(data, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


def edit_table(out: Path, name: str, change) -> None:
    """Rewrite a city table as walkcover writes it (BOM, CRLF, cells as text) and reseal."""
    path = city_dir(out) / name
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    table = change(table)
    path.write_bytes(b"\xef\xbb\xbf" + table.to_csv(index=False, lineterminator="\r\n").encode())
    reseal(city_dir(out))


def edit_layers(out: Path, change) -> None:
    """Rewrite ``d1/coverage.gpkg`` with `change` applied to its layers (a dict by name)."""
    gpkg = d1(out) / "coverage.gpkg"
    layers = {
        n: gpd.read_file(gpkg, layer=n) for n, _ in pyogrio.list_layers(gpkg) if n != "layer_styles"
    }
    change(layers)
    gpkg.unlink()
    for n, frame in layers.items():
        if isinstance(frame, gpd.GeoDataFrame):
            frame.to_file(gpkg, layer=n, driver="GPKG")
        else:
            pyogrio.write_dataframe(frame, gpkg, layer=n, driver="GPKG")


def one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    for raw in RAW:
        assert raw not in res.output, (raw, res.output)
    assert "warning" not in res.output.lower(), res.output
    for n in needles:
        assert n in text, (n, res.output)


def refused(res, *needles: str, out: Path) -> None:
    one_line_error(res, *needles)
    assert not (d1(out) / "report.pdf").exists()


# --- run.json --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["true", "1.0"])
def test_a_version_that_only_equals_one_is_refused(world, raw):
    """``true == 1`` and ``1.0 == 1`` in Python; version 1 is the integer 1."""
    cfg, out = world
    edit_record(out, lambda d: d.update(record_version="@RAW@"), raw=raw)
    refused(report(cfg, out), f"record_version {raw.capitalize()}", "run.json", FIX, out=out)


def test_fifteen_megabytes_of_notes_are_refused_at_once(world):
    """100,000 notes of 150 characters (under the file cap) once made `report` lay out for five
    minutes: refused in seconds, naming the record."""
    cfg, out = world
    edit_record(out, lambda d: d.update(notes=[{"text": "x" * 150}] * 100_000))
    assert (d1(out) / "run.json").stat().st_size > 10 * 1024**2
    t0 = time.perf_counter()
    res = report(cfg, out)
    assert time.perf_counter() - t0 < 30
    refused(res, "run.json", "besides its boundary", FIX, out=out)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.update(notes=[{"text": "n"}] * 5_000), "notes"),
        (lambda d: d.update(notes=[{"text": "x" * 2_000}] * 150), "notes and methods hold"),
        (lambda d: d.update(methods=["m"] * 1_000), "methods"),
    ],
    ids=["many-notes", "long-notes", "many-methods"],
)
def test_notes_and_methods_are_capped(world, change, needle):
    cfg, out = world
    edit_record(out, change)
    refused(report(cfg, out), "run.json", needle, FIX, out=out)


def test_a_large_boundary_with_few_notes_is_a_real_record(world):
    """A county's boundary to the centimetre is megabytes of WKT: the caps are on the rest."""
    cfg, out = world
    angle = np.linspace(0, 2 * np.pi, 200_000, endpoint=False)  # 200,000 vertices
    ring = shapely.Polygon(np.c_[200 + 600 * np.cos(angle), 600 * np.sin(angle)])
    wkt = shapely.to_wkt(ring, rounding_precision=2)
    assert len(wkt) > 2_000_000
    edit_record(out, lambda d: d.update(boundary_wkt=wkt))
    record = load_record(d1(out) / "run.json")
    assert record.boundary_wkt == wkt
    res = report(cfg, out, "--district", "d1")
    assert res.exit_code == 0, res.output
    assert (d1(out) / "report.pdf").is_file()


@pytest.mark.parametrize(
    ("wkt", "needle"),
    [
        ("POLYGON EMPTY", "boundary_wkt is an empty polygon"),
        ("MULTIPOLYGON EMPTY", "boundary_wkt is an empty polygon"),
        ("POLYGON ((0 0, NaN 0, 1 1, 0 0))", "not numbers"),
        ("POLYGON ((0 0, 1e300 0, 1e300 1e300, 0 0))", "beyond any projected CRS"),
        ("POLYGON ((1e7 1e7, 1e7 1.0001e7, 1.0001e7 1.0001e7, 1e7 1e7))", "does not hold"),
        ("POLYGON ((0 0, 3e6 0, 3e6 3e6, 0 3e6, 0 0))", "wider than any district"),
        ("POLYGON ((0 0, 1 1, 2 2, 0 0))", "encloses no area"),
    ],
    ids=["empty", "multi-empty", "nan", "huge", "far-away", "too-wide", "no-area"],
)
def test_an_absurd_boundary_is_refused(world, wkt, needle):
    cfg, out = world
    edit_record(out, lambda d: d.update(boundary_wkt=wkt))
    refused(report(cfg, out), "run.json", needle, FIX, out=out)


def test_a_boundary_that_crosses_itself_is_repaired(world):
    """A bow tie around the homes: repaired into its two triangles, the report is drawn."""
    cfg, out = world
    edit_record(
        out,
        lambda d: d.update(
            boundary_wkt="POLYGON ((-50 -150, 450 150, 450 -150, -50 150, -50 -150))"
        ),
    )
    res = report(cfg, out, "--district", "d1")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("crs", "needle"),
    [("not a crs", "crs is not a coordinate reference system"), ("EPSG:4326", "not a projected")],
    ids=["garbage", "degrees"],
)
def test_a_record_crs_that_is_no_run_crs_is_refused(world, crs, needle):
    cfg, out = world
    edit_record(out, lambda d: d.update(crs=crs))
    refused(report(cfg, out), "run.json", needle, FIX, out=out)


# --- coverage.gpkg ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "epsg"), [("demand", 4326), ("facilities", 3857)], ids=["demand", "facilities"]
)
def test_a_layer_in_another_crs_is_refused(world, layer, epsg):
    """Reprojected layers would draw homes a world away from the boundary: refused by name."""
    cfg, out = world

    def change(layers):
        layers[layer] = layers[layer].to_crs(epsg)

    edit_layers(out, change)
    refused(report(cfg, out), "coverage.gpkg", f"layer {layer} is in", "crs", FIX, out=out)


def _one_row(layers, name: str, base: dict, geometry, values: dict) -> None:
    """Layer `name` as one well-formed row (`base`, with `values` changed), at `geometry`, in the
    demand layer's CRS."""
    layers[name] = gpd.GeoDataFrame(
        {k: [v] for k, v in (base | values).items()},
        geometry=[geometry],
        crs=layers["demand"].crs,
    )


def _gap(layers, **values):
    base = {
        "standard": "toilet",
        "rank": 1,
        "residents_uncovered": 10.0,
        "units_uncovered": 1.0,
        "area_m2": 100.0,
        "dist_m_at_centre": 700.0,
        "status_at_centre": "beyond_threshold",
        "centre_x_m": 15.0,
        "centre_y_m": 15.0,
        "centre_lon": 24.95,
        "centre_lat": 60.17,
    }
    _one_row(layers, "gaps", base, shapely.box(10, 10, 20, 20), values)


def _proposed(layers, **values):
    base = {
        "standard": "toilet",
        "rank": 1,
        "residents_newly_covered": 10.0,
        "cumulative_coverage_pct": 90.0,
        "method": "greedy",
    }
    _one_row(layers, "proposed_sites", base, shapely.Point(100, 0), values)


def _set(layer: str, col: str, value):
    def change(layers):
        layers[layer][col] = value

    return change


def _drop(layer: str, col: str):
    def change(layers):
        layers[layer] = layers[layer].drop(columns=col)

    return change


def _null_geometry(layers):
    demand = layers["demand"]
    geoms = demand.geometry.to_numpy().copy()
    geoms[0] = None
    layers["demand"] = gpd.GeoDataFrame(
        demand.drop(columns="geometry"), geometry=geoms, crs=demand.crs
    )


def _garbage_proposed(layers):
    layers["proposed_sites"] = gpd.GeoDataFrame(
        {"x": ["junk"]}, geometry=[shapely.Point(0, 0)], crs=layers["demand"].crs
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (_set("demand", "toilet_dist_m", "abc"), "the demand layer: column toilet_dist_m holds 'abc'"),
        (_set("demand", "toilet_dist_m", -5.0), "column toilet_dist_m holds -5.0"),
        (_set("demand", "toilet_status", "pwned"), "column toilet_status holds 'pwned'"),
        (_set("demand", "toilet_band", "purple"), "column toilet_band holds 'purple'"),
        (_null_geometry, "the demand layer: row 1 has no geometry"),
        (_drop("facilities", "counts"), "the facilities layer lacks the column counts"),
        (_drop("facilities", "standard"), "the facilities layer lacks the column standard"),
        (_drop("facilities", "name"), "the facilities layer lacks the column name"),
        (_set("facilities", "counts", "maybe"), "column counts holds 'maybe'"),
        (lambda ls: _gap(ls, rank="first"), "the gaps layer: column rank holds 'first'"),
        (lambda ls: _gap(ls, rank=1.5), "the gaps layer: column rank holds 1.5"),
        (lambda ls: _gap(ls, area_m2="big"), "the gaps layer: column area_m2 holds 'big'"),
        (lambda ls: _gap(ls, status_at_centre="pwned"),
         "the gaps layer: column status_at_centre holds 'pwned'"),
        (lambda ls: _gap(ls, status_at_centre=None),
         "the gaps layer: column status_at_centre holds None"),
        # a gap is where no one is within the standard: its centre never is (the report would
        # say "within the standard" of a gap)
        (lambda ls: _gap(ls, status_at_centre="covered", dist_m_at_centre=None),
         "the gaps layer: column status_at_centre holds 'covered'"),
        (lambda ls: _gap(ls, centre_lon=500.0), "the gaps layer: column centre_lon holds 500.0"),
        (lambda ls: _gap(ls, centre_lat="north"),
         "the gaps layer: column centre_lat holds 'north'"),
        (_garbage_proposed, "the proposed_sites layer lacks the columns standard, method"),
        (lambda ls: _proposed(ls, rank="x"), "the proposed_sites layer: column rank holds 'x'"),
        (
            lambda ls: _proposed(ls, cumulative_coverage_pct=250.0),
            "column cumulative_coverage_pct holds 250.0",
        ),
    ],
    ids=["dist-text", "dist-negative", "status", "band", "null-geometry", "no-counts",
         "no-standard", "no-name", "counts-text", "gap-rank-text", "gap-rank-fraction",
         "gap-area-text", "gap-status", "gap-status-empty", "gap-status-covered", "gap-lon", "gap-lat-text",
         "proposed-garbage", "proposed-rank", "proposed-pct"],
)  # fmt: skip
def test_a_tampered_layer_is_one_line(world, change, needle):
    cfg, out = world
    edit_layers(out, change)
    refused(report(cfg, out), "coverage.gpkg", needle, FIX, out=out)


def test_a_well_formed_gap_and_site_are_drawn(world):
    """The layers the tests above break, whole: the report is made (the checks refuse only
    what is wrong)."""
    cfg, out = world

    def change(layers):
        _gap(layers)
        _proposed(layers)

    edit_layers(out, change)
    res = report(cfg, out, "--district", "d1")
    assert res.exit_code == 0, res.output


def test_a_gap_written_before_its_centre_was_kept_is_drawn(world):
    """A gaps layer without the centre and its status (a run before they were kept) still gives
    a report: no coordinates and no reason, never ones made up."""
    cfg, out = world

    def change(layers):
        _gap(layers, dist_m_at_centre=None)
        layers["gaps"] = layers["gaps"].drop(
            columns=["status_at_centre", "centre_x_m", "centre_y_m", "centre_lon", "centre_lat"]
        )

    edit_layers(out, change)
    res = report(cfg, out, "--district", "d1")
    assert res.exit_code == 0, res.output


def _plain_sqlite(out: Path) -> None:
    gpkg = d1(out) / "coverage.gpkg"
    gpkg.unlink()
    with sqlite3.connect(gpkg) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
        db.execute("INSERT INTO t VALUES (1)")
    db.close()


def test_a_plain_sqlite_file_is_one_line_without_gdal_warnings(world):
    """GDAL's "bad application_id" is a warning before the error: only walkcover's line shows,
    in-process and from the real command (whose stderr GDAL could write to directly)."""
    cfg, out = world
    _plain_sqlite(out)
    res = report(cfg, out)
    refused(res, "coverage.gpkg", FIX, out=out)
    assert "application_id" not in res.output
    cmd = [sys.executable, "-m", "walkcover", "report", "--city", str(cfg), "--out", str(out)]
    env = dict(os.environ, COLUMNS="400")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "coverage.gpkg" in lines[0] and "application_id" not in lines[0]


# --- the city tables ---------------------------------------------------------------------------


def _d1_toilet(table: pd.DataFrame) -> pd.Series:
    return (table["district_id"] == "d1") & (table["standard"] == "toilet")


def _summary_cell(col: str, value: str):
    def change(table):
        table.loc[_d1_toilet(table), col] = value
        return table

    return change


def _rename_district(table):
    table.loc[table["district_id"] == "d1", "district_id"] = "d1-renamed"
    return table


def _duplicate_row(table):
    return pd.concat([table, table[_d1_toilet(table)]], ignore_index=True)


def _stray_standard(table):
    row = table[_d1_toilet(table)].copy()
    row["standard"] = "park"
    return pd.concat([table, row], ignore_index=True)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (_summary_cell("residents_covered_pct", "inf"), "column residents_covered_pct holds inf"),
        (_summary_cell("residents_covered_pct", "1e308"), "column residents_covered_pct holds 1e+308"),
        (_summary_cell("residents_covered_pct", "lots"), "column residents_covered_pct holds 'lots'"),
        (_summary_cell("area_covered_pct", "-3"), "column area_covered_pct holds -3.0"),
        (_summary_cell("target_pct", ""), "column target_pct holds an empty cell"),
        (_summary_cell("residents", "abc"), "column residents holds 'abc'"),
        (_summary_cell("residents", "-5"), "column residents holds -5.0"),
        (_summary_cell("facilities_in_reach", "abc"), "column facilities_in_reach holds 'abc'"),
        (_summary_cell("meets_target", "yes"), "column meets_target holds 'yes'"),
        (lambda t: t.drop(columns="facilities_in_reach"), "lacks the column facilities_in_reach"),
        (lambda t: t.drop(columns=["target_pct", "residents"]),
         "lacks the columns residents, target_pct"),
        (_rename_district, "has no row for district 'd1' and standard 'toilet'"),
        (_duplicate_row, "has 2 rows for district 'd1' and standard 'toilet'"),
        (_stray_standard, "standard 'park', which run.json does not record"),
    ],
    ids=["inf", "1e308", "lots", "negative-pct", "no-target", "residents-text",
         "residents-negative", "reach-text", "meets-text", "no-reach", "no-columns", "no-row",
         "two-rows", "stray-standard"],
)  # fmt: skip
def test_a_tampered_summary_is_one_line(world, change, needle):
    cfg, out = world
    edit_table(out, "summary.csv", change)
    refused(report(cfg, out), "summary.csv", needle, "walkcover run --overwrite", out=out)


def _indicator_cell(col: str, value: str):
    def change(table):
        table.loc[table["district_id"] == "d1", col] = value
        return table

    return change


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda t: t.drop(columns="name"), "lacks the column name"),
        (lambda t: t.drop(columns=["unit", "note"]), "lacks the columns unit, note"),
        (lambda t: t.drop(columns="value"), "lacks the column value"),
        (_indicator_cell("value", "abc"), "column value holds 'abc'"),
        (_indicator_cell("value", "inf"), "column value holds inf"),
        (_indicator_cell("target", "1e308"), "column target holds 1e+308"),
        (_indicator_cell("meets_target", "maybe"), "column meets_target holds 'maybe'"),
    ],
    ids=["no-name", "no-unit-note", "no-value", "value-text", "value-inf", "target-huge",
         "meets-text"],
)  # fmt: skip
def test_tampered_indicators_are_one_line(world, change, needle):
    cfg, out = world
    edit_table(out, "district_indicators.csv", change)
    refused(report(cfg, out), "district_indicators.csv", needle, FIX, out=out)


def test_an_untouched_run_still_reports(world):
    """The checks pass what ``walkcover run`` wrote: both districts (one without homes)."""
    cfg, out = world
    res = report(cfg, out)
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output.lower()
    assert (d1(out) / "report.pdf").is_file()
    assert (city_dir(out) / "d2" / "report.pdf").is_file()


def test_load_record_refuses_a_boolean_version(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"record_version": true}', encoding="utf-8")
    with pytest.raises(RunRecordError, match="record_version True"):
        load_record(path)
