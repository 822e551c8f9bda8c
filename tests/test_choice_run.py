"""Choice, capacity (E2SFCA) and life circles in a run: the columns and figures a standard that asks
for them gets, cross-checked against networkx distances and by hand from the demand columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import walkcover as wc
from test_choice import per_facility_networkx
from walkcover.config.standards import load_standards

#: The sample's clinics: seven, within 1000 m of most homes but not all (it maps no kindergarten).
SID = "clinic"
THRESHOLD_M = 1000.0
#: Luo & Qi's three-band weights, over the standard's 1000 m.
STEPS = [[300.0, 1.0], [600.0, 0.68], [1000.0, 0.22]]
DEFAULT_BEDS = 5.0
NORM = 1.5


def _standards_file(tmp: Path, *, tiers: bool = False) -> Path:
    """The bundled Zhengzhou standards with choice and an access rule for clinics (and,
    with `tiers`, two life circles made of some of its standards)."""
    bundled = Path(wc.__file__).resolve().parents[2] / "configs" / "standards"
    data = yaml.safe_load((bundled / "zhengzhou-2018.yaml").read_text(encoding="utf-8"))
    data["id"] = "zhengzhou-2018-choice"
    data["standards"][SID].update(
        choice=True,
        access={
            "decay": {"kind": "steps", "steps": STEPS},
            "default_capacity": DEFAULT_BEDS,
            "capacity_unit": "beds",
            "capacity_basis": "five beds (test)",
            "norm_per_1000": NORM,
            "norm_basis": "test norm",
        },
    )
    if tiers:
        for sid in ("toilet", "green_space"):
            data["standards"][sid]["life_circle"] = 5
        for sid in ("clinic", "park"):
            data["standards"][sid]["life_circle"] = 10
    path = tmp / f"standards-{'tiers' if tiers else 'choice'}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def choice_run(tmp_path_factory, sample_cache):
    path = _standards_file(tmp_path_factory.mktemp("choice"))
    return wc.assess(
        "helsinki-sample", standards=path, standard=[SID, "toilet"], cache_dir=sample_cache
    )


def _independent(a) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(home, facility, distance) of every pair within the threshold, by networkx (one Dijkstra
    per access point on a graph split at every snapped point), a facility's access points merged
    at the nearest."""
    passed = a.passes[SID]
    per_item = per_facility_networkx(a.network, a.demand_snaps, passed.snaps, limit_m=THRESHOLD_M)
    owner = passed.access.index.to_numpy()
    best: dict[tuple[int, int], float] = {}
    for (h, item), d in per_item.items():
        if d <= THRESHOLD_M:
            key = (h, int(owner[item]))
            best[key] = min(best.get(key, np.inf), d)
    home = np.array([k[0] for k in best], dtype=np.int64)
    fac = np.array([k[1] for k in best], dtype=np.int64)
    dist = np.array(list(best.values()), dtype=float)
    assert not np.any(np.abs(dist - THRESHOLD_M) < 1e-6)  # no count decided by rounding
    return home, fac, dist


def test_choice_columns_equal_networkx(choice_run):
    a = choice_run.assessment
    d = a.demand
    home, _fac, dist = _independent(a)
    n = len(d)
    count = np.bincount(home, minlength=n)
    ref = np.full((n, 3), np.nan)
    for h in np.unique(home):
        ds = np.sort(dist[home == h])[:3]
        ref[h, : len(ds)] = ds
    measured = (d[f"{SID}_status"] != "unsnapped").to_numpy()
    got = pd.array(d[f"{SID}_n_within"], dtype="Int64")
    assert got[~measured].isna().all()
    np.testing.assert_array_equal(got[measured].to_numpy(dtype=int), count[measured])
    assert (count >= 2).sum() > 50 and (count == 0).sum() > 10  # both kinds of homes are there
    for j in (2, 3):
        mine = d[f"{SID}_nearest{j}_m"].to_numpy(dtype=float)
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref[:, j - 1]))
        ok = ~np.isnan(mine)
        np.testing.assert_allclose(mine[ok], ref[ok, j - 1], rtol=0, atol=1e-6)
    # the nearest within the threshold is the coverage pass's own distance
    first = np.where(d[f"{SID}_covered"].to_numpy(dtype=bool), d[f"{SID}_dist_m"], np.nan)
    np.testing.assert_allclose(first, ref[:, 0], rtol=0, atol=1e-6)


def test_access_equals_e2sfca_by_hand(choice_run):
    """E2SFCA from the networkx distances, the capacities the run says it used, the step decay:
    R_j = S_j / Σ P_i W(d_ij), A_i = 1000 Σ R_j W(d_ij)."""
    a = choice_run.assessment
    d = a.demand
    home, fac, dist = _independent(a)
    weight = np.select([dist <= 300, dist <= 600, dist <= 1000], [1.0, 0.68, 0.22], 0.0)
    fac_rows = a.facilities[(a.facilities["standard"] == SID) & a.facilities["counts"]]
    cap = fac_rows["capacity"].to_numpy(dtype=float)
    assert np.isfinite(cap).all()
    assert (fac_rows["capacity_source"] == "default").sum() >= 1  # the sample tags few
    assert np.all(cap[(fac_rows["capacity_source"] == "default").to_numpy()] == DEFAULT_BEDS)
    pop = d["residents"].to_numpy(dtype=float)
    demand_j = np.bincount(fac, weights=pop[home] * weight, minlength=len(cap))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(demand_j > 0, cap / demand_j, 0.0)
    ref = 1000.0 * np.bincount(home, weights=ratio[fac] * weight, minlength=len(d))
    mine = d[f"{SID}_access"].to_numpy(dtype=float)
    measured = (d[f"{SID}_status"] != "unsnapped").to_numpy()
    assert np.isnan(mine[~measured]).all()
    np.testing.assert_allclose(mine[measured], ref[measured], rtol=1e-9, atol=1e-9)
    assert (ref > 0).sum() > 50


def test_summary_figures_from_the_homes(choice_run):
    a = choice_run.assessment
    d, s = a.demand, a.summary
    for _, row in s[s["standard"] == SID].iterrows():
        homes = d[d["district_id"] == row["district_id"]]
        res = homes["residents"].to_numpy(dtype=float)
        n = pd.array(homes[f"{SID}_n_within"], dtype="Int64").fillna(0).to_numpy(dtype=int)
        assert row["residents_choice_pct"] == pytest.approx(
            100 * res[n >= 2].sum() / res.sum(), abs=1e-9
        )
        acc = homes[f"{SID}_access"].to_numpy(dtype=float)
        ok = ~np.isnan(acc)
        assert row["access_mean_per_1000"] == pytest.approx(
            (acc[ok] * res[ok]).sum() / res[ok].sum(), rel=1e-9
        )
        below = 100 * res[ok][acc[ok] < NORM].sum() / res[ok].sum()
        assert row["residents_below_norm_pct"] == pytest.approx(below, abs=1e-9)
        assert row["access_norm_per_1000"] == NORM
        assert row["capacity_unit"] == "beds"
        assert row["facilities_default_capacity"] <= row["facilities_in_reach"]
    # a standard that asks for neither has no such columns and no such figures
    assert "toilet_n_within" not in d and "toilet_access" not in d
    toilet = s[s["standard"] == "toilet"]
    assert toilet["residents_choice_pct"].isna().all()
    assert toilet["access_mean_per_1000"].isna().all()
    assert any("default 5 beds" in n.text for n in a.notes)


def test_explain_says_how_capacity_is_counted(choice_run):
    from walkcover.presentation.explanation import explanation

    a = choice_run.assessment
    did = str(a.summary["district_id"].iloc[0])
    text = explanation(a, did, SID)
    assert "E2SFCA" in text and "stepped decay ≤ 300 m × 1" in text
    assert "residents below the norm of 1.5 beds per 1,000" in text
    assert "two or more facilities within 1,000 m" in text


@pytest.fixture(scope="module")
def tiers(tmp_path_factory, sample_cache):
    """(the standards file with two life circles, the sample measured on all their standards)."""
    path = _standards_file(tmp_path_factory.mktemp("tiers"), tiers=True)
    run = wc.assess(
        "helsinki-sample",
        standards=path,
        standard=["toilet", "green_space", "clinic", "park"],
        cache_dir=sample_cache,
    )
    return path, run


def test_life_circles_from_the_covered_columns(tiers, sample_cache):
    path, run = tiers
    assert load_standards(path).life_circle_tiers() == {
        5: ["toilet", "green_space"],
        10: ["park", "clinic"],
    }
    a = run.assessment
    d = a.demand
    measured = np.ones(len(d), dtype=bool)
    for sid in ("toilet", "green_space"):
        measured &= (d[f"{sid}_status"] != "unsnapped").to_numpy()
    both = d["toilet_covered"].to_numpy(bool) & d["green_space_covered"].to_numpy(bool)
    got = pd.array(d["life_circle_5min_complete"], dtype="boolean")
    assert got[~measured].isna().all()
    np.testing.assert_array_equal(got[measured].to_numpy(dtype=bool), both[measured])
    assert both.any() and (~both & measured).any()
    rows = a.district_rows[a.district_rows["indicator"] == "life_circle_5min_complete_pct"]
    assert len(rows) == len(a.districts)
    for _, r in rows.iterrows():
        m = (d["district_id"] == r["district_id"]).to_numpy() & measured
        res = d["residents"].to_numpy(float)
        assert r["value"] == pytest.approx(100 * res[m & both].sum() / res[m].sum(), abs=1e-9)
    # a run that leaves out part of a tier does not measure it, and says so
    part = wc.assess(
        "helsinki-sample", standards=path, standard=["toilet"], cache_dir=sample_cache
    ).assessment
    assert "life_circle_5min_complete" not in part.demand
    assert any("5-minute life circle is not measured" in n.text for n in part.notes)


def test_gb50180_end_to_end(tmp_path, sample_cache):
    """``walkcover run --standards gb50180-2018`` on the sample: the life circles and the capacity
    figures reach the tables, the workbook and the GeoPackage, each field named in both
    languages."""
    import re
    import sqlite3

    import pyogrio
    from typer.testing import CliRunner

    from walkcover.cli import app
    from walkcover.presentation.styles import field_alias

    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "run", "--city", "helsinki-sample", "--standards", "gb50180-2018", "--out", str(out),
            "--no-maps", "--cache-dir", str(sample_cache),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    city = out / "helsinki-sample"
    rules = load_standards("gb50180-2018")
    summary = pd.read_csv(city / "summary.csv", dtype={"district_id": str})
    assert set(summary["standard"]) == set(rules.standards)
    kg = summary[summary["standard"] == "kindergarten"]
    assert (kg["capacity_unit"] == "places").all()
    ind = pd.read_csv(city / "district_indicators.csv", dtype={"district_id": str})
    for tier in rules.life_circle_tiers():
        rows = ind[ind["indicator"] == f"life_circle_{tier}min_complete_pct"]
        assert len(rows) == summary["district"].nunique()
        figure = rows["value"].notna()
        assert rows.loc[figure, "value"].between(0, 100).all()
        assert rows.loc[~figure, "note"].str.startswith("no data: no ").all()
    # the sample maps no kindergarten: the 5-minute circle has no figure (never 0%), and says why
    five = ind[ind["indicator"] == "life_circle_5min_complete_pct"]
    assert five["value"].isna().all()
    assert five["note"].str.contains("Kindergarten · 幼儿园").all()
    ten = ind[ind["indicator"] == "life_circle_10min_complete_pct"]
    assert ten["value"].notna().any()
    gpkg = next(city.glob("*/coverage.gpkg"))
    fields = list(pyogrio.read_info(gpkg, layer="demand")["fields"])
    wanted = {
        "life_circle_5min_complete",
        "life_circle_15min_found",
        "kindergarten_n_within",
        "kindergarten_nearest2_m",
        "kindergarten_access",
        "health_centre_access",
    }
    assert wanted <= set(fields)
    assert "toilet_access" not in fields and "toilet_n_within" not in fields
    for f in [f for f in fields if f.startswith("life_circle_") or f.endswith("_n_within")]:
        assert " · " in field_alias(f) and re.search(r"[\u4e00-\u9fff]", field_alias(f)), f
    # kindergartens have no facility in the data: their choice and capacity are unknown, never 0
    homes = pyogrio.read_dataframe(gpkg, layer="demand", read_geometry=False)
    assert homes["kindergarten_access"].isna().all()
    assert homes["kindergarten_n_within"].isna().all()
    assert homes["health_centre_access"].isna().all()  # none in the sample either
    with sqlite3.connect(gpkg) as db:
        (n,) = db.execute(
            "SELECT count(*) FROM demand WHERE life_circle_10min_found >= 0"
        ).fetchone()
    assert n > 0


def test_api_access_and_life_circles(choice_run, tiers):
    from walkcover._errors import ConfigError

    homes = choice_run.access(SID)
    d = choice_run.assessment.demand
    assert len(homes) == len(d)
    np.testing.assert_array_equal(homes[f"{SID}_access"], d[f"{SID}_access"])
    one = choice_run.access(SID, district="sample-ne")
    assert 0 < len(one) < len(homes) and set(one["district_id"]) == {"sample-ne"}
    with pytest.raises(ConfigError, match="measures neither choice nor capacity"):
        choice_run.access("toilet")
    with pytest.raises(ConfigError, match="standards='gb50180-2018'"):
        choice_run.life_circles()
    r = tiers[1]
    table = r.life_circles()
    assert set(table["tier_min"]) == {5, 10} and len(table) == 2 * len(r.districts)
    ind = r.district_rows.set_index(["district_id", "indicator"])["value"]
    for row in table.itertuples():
        assert ind[
            (row.district_id, f"life_circle_{row.tier_min}min_complete_pct")
        ] == pytest.approx(row.complete_pct, nan_ok=True)
    assert len(r.life_circles("sample-ne")) == 2


def test_explain_names_the_life_circle(tiers, sample_cache):
    path, r = tiers
    text = r.explain("green_space", district="sample-ne")
    row = r.life_circles("sample-ne").set_index("tier_min").loc[5]
    assert "Life circle (GB 50180-2018, 5-minute)" in text
    assert "within its own distance: Public toilet, Green space" in text
    from walkcover.presentation.figures import figure_text

    assert f"complete: {figure_text(row['complete_pct'], unit='%')}" in text
    part = wc.assess("helsinki-sample", standards=path, standard=["toilet"], cache_dir=sample_cache)
    assert "not measured in this run" in part.explain("toilet", district="sample-ne")


def test_unmeasured_standard_and_odd_district_are_named(choice_run):
    from walkcover._errors import DistrictNotFoundError, StandardNotMeasuredError

    with pytest.raises(
        StandardNotMeasuredError,
        match=r"'clinc' was not measured in this run \(closest: 'clinic'\); it measured: clinic, toilet",
    ):
        choice_run.access("clinc")
    with pytest.raises(DistrictNotFoundError, match="found float '5.5'"):
        choice_run.access(SID, district=5.5)
    with pytest.raises(DistrictNotFoundError, match="no district"):
        choice_run.access(SID, district=5)  # a number is read as a code: there is none
