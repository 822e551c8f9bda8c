"""Site suggestions: exact answers against brute force and spopt, greedy fallback, promises kept."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from scipy import sparse
from shapely.geometry import Point
from typer.testing import CliRunner

from conftest import split_graph_distances
from walkcover import siting
from walkcover.cli import app
from walkcover.engine import coverage as cov


def random_instance(seed: int, n_units: int = 30, n_cand: int = 9, density: float = 0.2):
    rng = np.random.default_rng(seed)
    a = sparse.csc_array(rng.random((n_units, n_cand)) < density)
    w = rng.integers(1, 100, n_units).astype(float)
    cands = gpd.GeoDataFrame(
        {"source": "test", "node_osm_id": np.arange(n_cand)},
        geometry=[Point(i, 0) for i in range(n_cand)],
        crs=3857,
    )
    return siting.CoverageMatrix(
        a, w, np.arange(n_units), cands, covered_before=0.0, total=float(w.sum())
    )


@pytest.mark.parametrize("seed", range(6))
def test_best_k_matches_brute_force_and_greedy_is_never_better(seed):
    cm = random_instance(seed)
    for k in (1, 2, 3):
        res = siting.site(cm, k=k, time_limit_s=30)
        best = siting.brute_force(cm, k)
        assert res.method == "optimal (HiGHS)"
        assert res.objective == pytest.approx(best)
        assert siting.covered_residents(cm, siting.greedy(cm, k=k)) <= best + 1e-9


def test_greedy_is_sometimes_worse_so_the_exact_solver_matters():
    worse = 0
    for seed in range(6):
        cm = random_instance(seed)
        worse += (
            siting.covered_residents(cm, siting.greedy(cm, k=3)) < siting.brute_force(cm, 3) - 1e-9
        )
    assert worse >= 1


def test_fewest_sites_for_a_target_matches_brute_force():
    cm = random_instance(11, n_units=25, n_cand=8, density=0.25)
    target = 100.0 * 0.8 * cm.reachable / cm.total
    res = siting.site(cm, target_pct=target, time_limit_s=30)
    need = target / 100 * cm.total
    fewest = next(k for k in range(1, 9) if siting.brute_force(cm, k) >= need - 1e-9)
    assert len(res.chosen) == fewest
    assert res.gain.sum() >= need - 1e-9


def test_time_limit_falls_back_to_greedy():
    cm = random_instance(5, n_units=400, n_cand=120, density=0.05)
    res = siting.site(cm, k=8, time_limit_s=1e-6)
    assert res.method.startswith("greedy")
    assert res.objective == pytest.approx(siting.covered_residents(cm, siting.greedy(cm, k=8)))


def test_bad_requests_are_refused_clearly():
    cm = random_instance(2)
    with pytest.raises(siting.SitingError, match="at least 1"):
        siting.site(cm, k=0)
    with pytest.raises(siting.SitingError, match="exactly one of"):
        siting.site(cm)
    reach = 100 * (cm.covered_before + cm.reachable) / cm.total
    assert reach < 100  # this seeded instance leaves some units no candidate reaches
    with pytest.raises(siting.SitingError, match=rf"cannot be reached.*{reach:.1f}%"):
        siting.site(cm, target_pct=100.0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP 3.3 warns about its own 4.0 API
def test_same_objective_as_spopt(helsinki_assessment):
    pulp = pytest.importorskip("pulp")
    from spopt.locate import LSCP, MCLP

    cm = siting.district_coverage_matrix(helsinki_assessment, "toilet", "sample-nw")
    a = cm.matrix.toarray()
    useful = a.any(axis=1)
    # spopt takes a cost matrix and a radius: covered pairs cost 0, others 2.
    cost = np.where(a, 0.0, 2.0)
    mclp = MCLP.from_cost_matrix(cost, cm.weights, service_radius=1.0, p_facilities=2, name="m")
    mclp = mclp.solve(pulp.PULP_CBC_CMD(msg=False))
    picked = [j for j, v in enumerate(mclp.fac_vars) if v.varValue > 0.5]
    assert len(picked) == 2
    theirs = float(cm.weights[a[:, picked].any(axis=1)].sum())
    ours = siting.site(cm, k=2, time_limit_s=30)
    assert ours.objective == pytest.approx(theirs)
    # LSCP covers every unit the candidates can reach, with the fewest sites.
    lscp = LSCP.from_cost_matrix(cost[useful], service_radius=1.0, name="l").solve(
        pulp.PULP_CBC_CMD(msg=False)
    )
    n_spopt = sum(1 for v in lscp.fac_vars if v.varValue > 0.5)
    target = 100.0 * (cm.covered_before + cm.reachable) / cm.total
    ours_l = siting.site(cm, target_pct=target - 1e-9, time_limit_s=30)
    assert len(ours_l.chosen) == n_spopt


@pytest.fixture(scope="module")
def helsinki_assessment(sample_results):
    return sample_results.assessment


@pytest.mark.parametrize(
    ("district", "standard", "k"), [("sample-nw", "toilet", 2), ("sample-se", "park", 1)]
)
def test_adding_the_proposed_sites_gives_the_promised_coverage(
    helsinki_assessment, district, standard, k
):
    cm = siting.district_coverage_matrix(helsinki_assessment, standard, district)
    res = siting.site(cm, k=k, time_limit_s=30)
    sites = siting.proposed_sites(cm, res, standard=standard)
    before = 100 * cm.covered_before / cm.total
    promised = float(sites["cumulative_coverage_pct"].iloc[-1])
    assert promised > before
    assert list(sites["rank"]) == list(range(1, len(sites) + 1))
    assert (np.diff(sites["residents_newly_covered"]) <= 1e-9).all()
    remeasured = siting.coverage_with_sites(helsinki_assessment, standard, district, sites.geometry)
    assert remeasured == pytest.approx(promised, abs=1e-9)
    # and independently: networkx on the split graph, from the facilities plus the new sites
    a = helsinki_assessment
    homes = a.demand[(a.demand["district_id"] == district).to_numpy()].reset_index(drop=True)
    snap_m = a.city.config.network.max_snap_m
    dem = cov.snap(a.network, homes.geometry, max_snap_m=snap_m, tie_m=a.city.config.network.tie_m)
    geoms = np.concatenate([a.passes[standard].access.to_numpy(), sites.geometry.to_numpy()])
    src = cov.snap(a.network, geoms, max_snap_m=snap_m, reach_polygon_edges=True)
    dist = split_graph_distances(a.network, dem, src)  # per home, inf when unsnapped
    radius = np.broadcast_to(a.thresholds(a.standard(standard), dem), (len(homes),))
    covered = dist <= radius
    w = homes["residents"].to_numpy(float)
    assert 100 * w[covered].sum() / w.sum() == pytest.approx(promised, abs=1e-6)


def test_plots_in_the_wrong_crs_are_refused(helsinki_assessment, tmp_path):
    # Plots given in UTM metres but saved as if they were lon/lat degrees.
    dg = (
        helsinki_assessment.districts.to_crs(helsinki_assessment.crs)
        .set_index("district_id")
        .geometry["sample-nw"]
    )
    p = dg.representative_point()
    wrong = gpd.GeoDataFrame({"name": ["plot 1"]}, geometry=[p], crs=4326)
    path = tmp_path / "plots.gpkg"
    wrong.to_file(path)
    with pytest.raises(siting.CRSError, match="says EPSG:4326 .degrees. but .* look like metres"):
        siting.district_coverage_matrix(helsinki_assessment, "toilet", "sample-nw", plots=path)
    # Plots somewhere else entirely (a real place, in the wrong city): refused, with where they are.
    far = gpd.GeoDataFrame({"name": ["plot 2"]}, geometry=[Point(113.65, 34.75)], crs=4326)
    far.to_file(tmp_path / "far.geojson")
    with pytest.raises(siting.CRSError, match="none of its 1 plots lies in the district"):
        siting.district_coverage_matrix(
            helsinki_assessment, "toilet", "sample-nw", plots=tmp_path / "far.geojson"
        )
    right = gpd.GeoDataFrame(
        {"name": ["plot 1"]}, geometry=[p], crs=helsinki_assessment.crs
    ).to_crs(4326)
    right.to_file(tmp_path / "ok.geojson")
    cm = siting.district_coverage_matrix(
        helsinki_assessment, "toilet", "sample-nw", plots=tmp_path / "ok.geojson"
    )
    assert len(cm.candidates) == 1 and cm.candidates["source"].iloc[0].startswith("plots file")


def test_cli_site_writes_layer_and_csv_and_handles_no_gap(tmp_path, sample_cache):
    runner = CliRunner()
    out = tmp_path / "out"
    res = runner.invoke(app, ["site", "--city", "helsinki-sample", "--district", "sample-nw", "--standard", "toilet",
                              "--k", "2", "--out", str(out), "--cache-dir", str(sample_cache)], catch_exceptions=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    gpkg = out / "helsinki-sample" / "sample-nw" / "coverage.gpkg"
    layer = gpd.read_file(gpkg, layer="proposed_sites")
    assert {"rank", "residents_newly_covered", "cumulative_coverage_pct", "geometry"} <= set(
        layer.columns
    )
    assert (out / "helsinki-sample" / "sample-nw" / "proposed_sites.csv").exists()
    # the plan's own figure (Zhengzhou orders 1,450 new toilets) is Zhengzhou's, not Helsinki's
    assert "plan orders" not in " ".join(res.output.split())
    again = runner.invoke(app, ["site", "--city", "helsinki-sample", "--district", "sample-nw", "--standard",
                                "toilet", "--k", "2", "--out", str(out), "--cache-dir", str(sample_cache)])  # fmt: skip
    assert again.exit_code == 2 and "--overwrite" in again.output
    # bus stops already reach everyone in sample-nw: nothing to site
    res = runner.invoke(app, ["site", "--city", "helsinki-sample", "--district", "sample-nw", "--standard",
                              "bus_stop", "--target", "100", "--out", str(out), "--cache-dir", str(sample_cache)])  # fmt: skip
    assert res.exit_code == 0 and "no gap" in res.output
    res = runner.invoke(app, ["site", "--city", "helsinki-sample", "--district", "sample-nw", "--standard",
                              "toilet", "--k", "0", "--out", str(out), "--cache-dir", str(sample_cache)])  # fmt: skip
    assert res.exit_code == 2 and "at least 1" in res.output
    # a report written before the sites is said to lack them, with the command that adds them
    assert "were written before these sites" not in " ".join(again.output.split())
    (out / "helsinki-sample" / "sample-nw" / "report.pdf").write_bytes(b"%PDF")
    res = runner.invoke(app, ["site", "--city", "helsinki-sample", "--district", "sample-nw", "--standard", "toilet",
                              "--k", "2", "--out", str(out), "--cache-dir", str(sample_cache), "--overwrite"])  # fmt: skip
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and "the reports of sample-nw were written before these sites" in said
    assert (
        "walkcover report --city helsinki-sample --out" in said and "--overwrite` adds them" in said
    )
