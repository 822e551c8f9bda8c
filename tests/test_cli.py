"""`walkcover run` end to end on the real Helsinki sample, and its refusals."""

from __future__ import annotations

import re
import subprocess

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from conftest import split_graph_distances
from walkcover.cli import app
from walkcover.config.standards import PLAN_STANDARD_IDS, load_standards
from walkcover.engine import coverage as cov
from walkcover.measures.demand import demand_from_buildings, residential_buildings
from walkcover.measures.facilities import select_facilities

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    cache = tmp_path_factory.mktemp("cache")
    res = invoke("run", "--city", "helsinki-sample", "--out", str(out), "--cache-dir", str(cache))
    return res, out, cache


def test_run_writes_layers_columns_and_summary(sample_run):
    res, out, _ = sample_run
    assert res.exit_code == 0, res.output
    city = out / "helsinki-sample"
    summary = pd.read_csv(city / "summary.csv")
    assert len(summary) == 4 * len(PLAN_STANDARD_IDS)
    for col in [
        "district",
        "standard",
        "threshold_m",
        "facilities",
        "demand_units",
        "residents",
        "residents_covered_pct",
        "unsnapped_units",
    ]:
        assert col in summary.columns
    pct = summary["residents_covered_pct"]
    # a standard with no facility in reach (kindergartens: none in the sample) has no figure and
    # says why; every other figure is a share
    none = summary["facilities_in_reach"] == 0
    assert none.any() and pct[none].isna().all() and summary.loc[none, "meets_target"].isna().all()
    assert summary.loc[none, "no_data_reason"].str.contains("no facility").all()
    assert pct[~none].between(0, 100).all()
    assert (
        summary.loc[summary.standard == "toilet", "context_applied"].str.contains("ordinary_road")
    ).all()
    for slug in ["sample-nw", "sample-ne", "sample-sw", "sample-se"]:
        gpkg = city / slug / "coverage.gpkg"
        layers = {name: kind for name, kind in pyogrio.list_layers(gpkg)}
        assert {"demand", "facilities", "gaps", "service_areas", "streets", "layer_styles"} <= set(
            layers
        )
        assert set(layers) <= {
            "demand", "facilities", "facility_areas", "facility_lines", "gaps", "service_areas",
            "streets", "layer_styles",
        }  # fmt: skip
        # the streets a printed map draws: one row per OSM way, with its class
        streets = gpd.read_file(gpkg, layer="streets")
        assert len(streets) > 20 and streets["osm_id"].is_unique
        assert streets["highway"].notna().all() and (city / slug / "coverage.qgz").is_file()
        # one geometry type per layer: QGIS opens each as one layer, not as sub-layers
        assert layers["facilities"] == "Point"
        assert layers.get("facility_areas") in (None, "MultiPolygon")
        assert layers["demand"] == "MultiPolygon"
        # QGIS styles: the demand layer coloured by each standard's status, the first by default
        import sqlite3

        con = sqlite3.connect(gpkg)
        styles = con.execute(
            "SELECT f_table_name, styleName, useAsDefault, styleQML FROM layer_styles"
        ).fetchall()
        con.close()
        demand_styles = [s for s in styles if s[0] == "demand"]
        assert [s[1] for s in demand_styles][:2] == ["toilet", "kindergarten"]
        assert [s[2] for s in demand_styles].count(1) == 1
        assert 'attr="toilet_band"' in demand_styles[0][3] and "<qgis" in demand_styles[0][3]
        # QGIS colours the homes by the web map's bands, in its colours
        from walkcover.presentation.palette import BANDS, rgb

        qml = demand_styles[0][3]
        assert re.findall(r'<category symbol="\d+" value="([a-z]+)"', qml) == list(BANDS)
        colours = re.findall(r'name="color" value="(\d+),(\d+),(\d+),\d+"', qml)
        assert [tuple(map(int, c)) for c in colours] == [rgb(c) for c, _ in BANDS.values()]
        assert {s[0] for s in styles} >= {"demand", "facilities", "gaps", "service_areas"}
        gaps = gpd.read_file(gpkg, layer="gaps")
        assert {"standard", "rank", "residents_uncovered", "area_m2", "dist_m_at_centre"} <= set(
            gaps.columns
        )
        assert len(gpd.read_file(gpkg, layer="service_areas")) == len(PLAN_STANDARD_IDS)
        demand = gpd.read_file(gpkg, layer="demand")
        assert len(demand) > 0 and demand["osm_id"].str.match(r"^(way|relation)/\d+$").all()
        for sid in PLAN_STANDARD_IDS:
            assert {f"{sid}_dist_m", f"{sid}_covered"} <= set(demand.columns)
        nan = demand["toilet_dist_m"].isna()
        assert (demand.loc[nan, "toilet_status"] != cov.STATUS_COVERED).all()
        fac = gpd.read_file(gpkg, layer="facilities")
        assert {"geometry", "osm_id", "standard"} <= set(fac.columns)
        # GDAL's own tool (Debian's, as QGIS LTR uses) opens every layer without a warning
        info = subprocess.run(
            ["ogrinfo", "-ro", "-al", "-so", str(gpkg)], capture_output=True, text=True
        )
        assert info.returncode == 0 and info.stderr == "", info.stderr
        kinds = [
            ln.split(": ", 1)[1] for ln in info.stdout.splitlines() if ln.startswith("Geometry: ")
        ]
        assert len(kinds) == len(layers) and "Unknown (any)" not in kinds  # one type per layer
    # The printed table and the kindergarten note (the extract maps none).
    assert "Helsinki sample" in res.output and "SAMPLE" in res.output
    assert "no kindergarten facilities found" in res.output
    assert not list(city.rglob(".*.gpkg")) and not list(city.rglob(".*.csv"))  # no temp files left


@pytest.mark.parametrize("district", ["sample-ne", "sample-sw"])
def test_toilet_figure_matches_an_independent_networkx_computation(
    sample_run, helsinki_layers, helsinki_network, district
):
    """Residents within each home's own toilet radius (300 m on a main street, 500 m on an ordinary
    road, 800 m by a riverside park), by networkx on the split graph; in sample-sw some homes stand
    on main streets, so a flat 500 m would give another figure."""
    _, out, _ = sample_run
    city, crs, layers = helsinki_layers
    summary = pd.read_csv(out / "helsinki-sample" / "summary.csv")
    got = summary.query(f"district == '{district}' and standard == 'toilet'")[
        "residents_covered_pct"
    ].item()
    toilet = load_standards().standards["toilet"]
    feats = layers.features.to_crs(crs)
    houses = demand_from_buildings(
        residential_buildings(feats, city.config.demand), city.config.demand
    )
    geom = city.districts.to_crs(crs).query(f"district_id == '{district}'").geometry.item()
    houses = houses[houses.representative_point().within(geom)].reset_index(drop=True)
    toilets = select_facilities(feats, toilet)
    snap_m = city.config.network.max_snap_m
    dist = split_graph_distances(
        helsinki_network,
        cov.snap(
            helsinki_network, houses.geometry, max_snap_m=snap_m, tie_m=city.config.network.tie_m
        ),
        cov.snap(helsinki_network, toilets.geometry, max_snap_m=snap_m, reach_polygon_edges=True),
    )
    layer = gpd.read_file(out / "helsinki-sample" / district / "coverage.gpkg", layer="demand")
    context = houses["osm_id"].map(layer.set_index("osm_id")["toilet_context"])
    radius = context.map(toilet.context_thresholds_m).to_numpy(float)
    assert not np.isnan(radius).any()
    w = houses["residents"].to_numpy(float)
    expected = 100 * w[dist <= radius].sum() / w.sum()
    flat = 100 * w[dist <= 500].sum() / w.sum()
    assert 0 < expected < 100
    assert got == pytest.approx(expected, abs=1e-9)
    if district == "sample-sw":
        assert (context == "main_street").sum() >= 10
        assert abs(expected - flat) > 1  # a broken per-street radius cannot pass


def test_second_run_reads_the_cache_and_refuses_to_overwrite(sample_run, monkeypatch):
    _, out, cache = sample_run
    assert any((cache / "osm").iterdir())
    before = (out / "helsinki-sample" / "summary.csv").read_bytes()
    res = runner.invoke(
        app, ["run", "--city", "helsinki-sample", "--out", str(out), "--cache-dir", str(cache)]
    )
    assert res.exit_code == 2
    assert "--overwrite" in res.output and "already holds results" in res.output
    assert (out / "helsinki-sample" / "summary.csv").read_bytes() == before

    from walkcover.sources import cache as cache_mod

    def no_parse(*_a):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as m:
        m.setattr(cache_mod, "_read_source", no_parse)
        res = invoke(
            "run",
            "--city",
            "helsinki-sample",
            "--out",
            str(out),
            "--cache-dir",
            str(cache),
            "--overwrite",
        )
    assert res.exit_code == 0, res.output
    assert (out / "helsinki-sample" / "summary.csv").read_bytes() == before

    res = invoke(
        "run",
        "--city",
        "helsinki-sample",
        "--district",
        "Sample district NW",
        "--standard",
        "toilet",
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--overwrite",
    )
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(out / "helsinki-sample" / "summary.csv")
    assert len(summary) == 3 * len(PLAN_STANDARD_IDS) + 1
    # Rows of the other districts survive a one-district run.
    assert set(summary["district"]) == {"sample-nw", "sample-ne", "sample-sw", "sample-se"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--district", "Kallio"], "matches no district of helsinki-sample; use 'all' or one of"),
        (["--standard", "library"], "unknown standard 'library'; choose from: all, toilet"),
        (
            ["--standards", "tests/data/broken_standards.yaml"],
            "standards.toilet.threshold_m: found -300",
        ),
        (["--source", "missing.osm.pbf"], "does not exist"),
        (["--source", "tests/data/README.md"], "unknown file type"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["run", "--city", "helsinki-sample", "--out", str(out), "--no-cache", *args]
    )
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not out.exists() or not any(out.rglob("*.*"))


def test_corrupt_pbf_writes_nothing(tmp_path):
    bad = tmp_path / "henan-latest.osm.pbf"
    bad.write_bytes(b"\x00\x01garbage" * 1000)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["run", "--city", "helsinki-sample", "--out", str(out), "--no-cache", "--source", str(bad)],
    )
    assert res.exit_code == 2
    assert "could not be read as an .osm.pbf" in " ".join(res.output.split())
    assert not out.exists() or not any(out.rglob("*.*"))


def test_interrupted_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    from walkcover.presentation.outputs import write_atomic

    target = tmp_path / "summary.csv"
    target.write_text("old\n")

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, crash)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_explain_prints_how_the_figures_were_made(sample_run):
    _, _, cache = sample_run
    res = invoke("explain", "--city", "helsinki-sample", "--district", "Sample district NE", "--standard", "park",
                 "--cache-dir", str(cache))  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    for phrase in ["found by leisure=park", "left out:", "smaller than 5000 m²", "residential_land:",
                   "official (straight-line 500 m circles", "land within walking distance",
                   "residents within walking distance", "detour loss"]:  # fmt: skip
        assert phrase in text, phrase
    res = runner.invoke(
        app, ["explain", "--city", "helsinki-sample", "--district", "all", "--standard", "park"]
    )
    assert res.exit_code == 2 and "one district and one standard" in res.output


def test_zhengzhou_totals_are_read_from_the_bundled_table():
    from walkcover.config.study_area import load_city
    from walkcover.measures.population import read_totals

    city = load_city("zhengzhou")
    t = city.config.population.totals
    totals = read_totals(
        city.resolve(t.path),
        id_field=t.id_field,
        value_field=t.value_field,
        multiplier=t.multiplier,
    )
    assert totals["410105"] == pytest.approx(1_333_000)
    # the 12 units and the city row; the functional zones have no code and cannot be placed
    assert set(totals) == {*city.districts["district_id"], "410100"}


def test_groups_are_reported_and_csv_has_a_bom_unless_no_bom(tmp_path, sample_run):
    _, _, cache = sample_run
    out = tmp_path / "out"
    res = invoke("run", "--city", "helsinki-sample", "--standard", "toilet", "--out", str(out), "--cache-dir",
                 str(cache), "--no-maps")  # fmt: skip
    assert res.exit_code == 0, res.output
    city = out / "helsinki-sample"
    # a BOM by default, so Excel opens Chinese text right; --no-bom for scripts
    assert (city / "summary.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    plain = invoke("run", "--city", "helsinki-sample", "--standard", "toilet", "--out", str(tmp_path / "o2"),
                   "--cache-dir", str(cache), "--no-maps", "--no-bom")  # fmt: skip
    assert plain.exit_code == 0, plain.output
    assert (tmp_path / "o2" / "helsinki-sample" / "summary.csv").read_bytes()[:3] != b"\xef\xbb\xbf"
    summary = pd.read_csv(city / "summary.csv", encoding="utf-8-sig")
    groups = pd.read_csv(city / "group_summary.csv", encoding="utf-8-sig").set_index("group")
    north = summary[summary["district"].isin(["sample-nw", "sample-ne"])]
    assert groups.loc["north (sample)", "residents"] == pytest.approx(
        north["residents"].sum(), abs=0.2
    )
    expected = 100 * north["residents_covered"].sum() / north["residents"].sum()
    assert groups.loc["north (sample)", "residents_covered_pct"] == pytest.approx(
        expected, abs=1e-6
    )
    assert "Groups of districts" in res.output


def test_quiet_and_verbose_also_after_the_command(tmp_path, sample_cache):
    """`walkcover run … -q` works (the flags are the group's; people type them at the end), prints
    nothing but errors, and the help shows --no-cache, not --no-no-cache."""
    from walkcover.cli import hoist_global_flags

    args = ["run", "--city", "helsinki-sample", "--district", "sample-nw", "--standard", "toilet",
            "--out", str(tmp_path / "o"), "--cache-dir", str(sample_cache), "--no-maps", "-q"]  # fmt: skip
    assert hoist_global_flags(args)[0] == "-q"
    res = runner.invoke(app, hoist_global_flags(args))
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == ""
    helptext = runner.invoke(app, ["run", "--help"], terminal_width=200).output
    assert "--no-cache" in helptext and "--no-no-cache" not in helptext
    assert "--bom" in helptext and "--no-bom" in helptext


def test_site_says_why_it_proposes_fewer_sites_than_asked(tmp_path, sample_cache):
    """sample-se: three new toilets reach every resident, so --k 5 gives three and says why; the
    plan's own figures (Zhengzhou's 1,450 new toilets) are not printed for Helsinki."""
    args = ["site", "--city", "helsinki-sample", "--district", "sample-se", "--standard", "toilet",
            "--k", "5", "--out", str(tmp_path / "o"), "--cache-dir", str(sample_cache)]  # fmt: skip
    res = runner.invoke(app, args, terminal_width=80)
    assert res.exit_code == 0, res.output
    # the table fits an 80-column terminal, every name whole (wrapped, never cut with "…")
    from rich.cells import cell_len

    table = [ln for ln in res.stdout.splitlines() if ln[:1] in "┏┃┡│└"]
    assert "…" not in res.stdout and table and max(map(cell_len, table)) <= 80
    text = " ".join(res.stdout.split())
    assert "样例区（东南） (sample-se)" in text
    assert "3 site(s), not the 5 asked: they already reach every resident" in text
    assert "solver's" in text and "optimality" in text
    assert "plan orders" not in text


def test_explain_does_not_suggest_all_which_it_refuses(sample_cache):
    res = runner.invoke(
        app,
        ["explain", "--city", "helsinki-sample", "--district", "nowhere", "--standard", "toilet",
         "--cache-dir", str(sample_cache)],
        terminal_width=300,
    )  # fmt: skip
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "explain takes one of:" in text and "sample-nw" in text and "'all'" not in text
