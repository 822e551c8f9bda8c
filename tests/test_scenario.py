"""What-if scenarios: incremental edits give, home by home, what a full measure of the edited
facility set gives; unreachable sites say why; saved scenarios replay to the same figures."""

from __future__ import annotations

import copy
import dataclasses
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import yaml
from shapely.geometry import Point, box

import walkcover as wc
from conftest import LOCAL_CRS, box_way, write_city
from walkcover import scenario as scn
from walkcover import siting
from walkcover._errors import OutputExistsError
from walkcover.engine import coverage as cov
from walkcover.measures.bands import distance_band

WALK_COLUMNS = ["dist_m", "covered", "status", "band"]


def lonlat(a, geom) -> tuple[float, float]:
    """A point of `geom` (in the run's CRS) as WGS 84 lon/lat."""
    p = gpd.GeoSeries([geom], crs=a.crs).to_crs(4326).iloc[0]
    return float(p.x), float(p.y)


def full_measure(a, sid: str, did: str, sites: list[tuple[float, float]], removed: list[int]):
    """Each home's walk measured afresh by the engine: the run's access points of the facilities
    not `removed` (positions in ``counted``) plus `sites` (lon/lat), snapped and measured in one
    pass, as `walkcover run` measures."""
    p = a.passes[sid]
    homes, d = a.district_demand(did)
    thr = np.broadcast_to(np.asarray(a.thresholds(a.standard(sid), d), float), (len(homes),))
    keep = ~np.isin(p.access.index.to_numpy(), removed)
    pts = gpd.GeoSeries(
        gpd.points_from_xy([x for x, _ in sites], [y for _, y in sites]), crs=4326
    ).to_crs(a.crs)
    geoms = np.concatenate([p.access.to_numpy()[keep], pts.to_numpy()])
    f = cov.snap(
        a.network, geoms, max_snap_m=a.city.config.network.max_snap_m, reach_polygon_edges=True
    )
    walks = cov.measure(a.network, d, f, threshold_m=thr, limit_m=p.limit_m)
    walks["band"] = distance_band(walks["dist_m"].to_numpy(), thr, walks["status"].to_numpy())
    return walks


def assert_same_walks(sc: scn.Scenario, walks: pd.DataFrame) -> None:
    got = sc.demand
    assert len(got) == len(walks)
    np.testing.assert_allclose(
        got["dist_m"].to_numpy(float), walks["dist_m"].to_numpy(float), atol=1e-6, equal_nan=True
    )
    for col in ("covered", "status", "band"):
        assert list(got[col]) == list(walks[col]), col


def expected_figures(a, sid: str, did: str, walks: pd.DataFrame) -> tuple[float, float, float]:
    """Residents covered, their %, and units covered %, counted here from `walks`."""
    homes, _ = a.district_demand(did)
    w = homes[a.residents_column(sid)].to_numpy(float)
    cov_ = walks["covered"].to_numpy(bool)
    return float(w[cov_].sum()), 100 * float(w[cov_].sum()) / float(w.sum()), 100 * cov_.mean()


@pytest.fixture(scope="module")
def sample(sample_results):
    return sample_results.assessment


@pytest.mark.parametrize(
    ("standard", "district"),
    [
        ("toilet", "sample-nw"),  # street-context radii
        ("park", "sample-se"),  # polygon facilities reached along their outline
        ("bus_stop", "sample-sw"),  # many facilities
        ("kindergarten", "sample-ne"),  # none in the data: the first site gives the figure
    ],
)
def test_sample_edits_match_a_full_measure(sample, standard, district):
    a = sample
    sc = scn.scenario(a, standard, district_id=district)
    # before any edit: the run's own walks and summary row
    homes, _ = a.district_demand(district)
    for col in WALK_COLUMNS:
        run_col = homes[f"{standard}_{col}"]
        if col == "dist_m":
            np.testing.assert_array_equal(sc.demand[col].to_numpy(float), run_col.to_numpy(float))
        else:
            assert list(sc.demand[col]) == list(run_col)
    row = a.summary.set_index(["district_id", "standard"]).loc[(district, standard)]
    for k in [k for k in scn.SUMMARY_FIGURES if k not in ("district_id", "standard")]:
        mine, theirs = sc.summary[k], row[k]
        assert mine == theirs or (pd.isna(mine) and pd.isna(theirs)), k

    dgeom = a.district_geometry(district)
    c = dgeom.buffer(-150).representative_point()
    candidates = [c, Point(c.x + 120, c.y - 90), Point(c.x - 140, c.y + 60)]
    spots = [lonlat(a, p) for p in candidates if dgeom.contains(p)]
    assert len(spots) >= 2
    s1 = sc.add(lon=spots[0][0], lat=spots[0][1], name="new 1")
    s2 = sc.add(lon=spots[1][0], lat=spots[1][1], name="new 2", capacity=40)
    added = siting.walks_with_sites(
        a,
        standard,
        district,
        gpd.GeoSeries(gpd.points_from_xy(*zip(*spots[:2])), crs=4326),
    )
    assert_same_walks(sc, added[WALK_COLUMNS])
    # moved, then an existing facility closed: the one nearest to most homes
    moved = (spots[0][0] + 0.002, spots[0][1] - 0.001)
    sc.move(s1, lon=moved[0], lat=moved[1])
    assert_same_walks(sc, full_measure(a, standard, district, [moved, spots[1]], []))
    nearest = a.district_nearest(standard, district)
    removed = []
    if (nearest >= 0).any():
        busiest = int(np.bincount(nearest[nearest >= 0]).argmax())
        sc.remove(a.passes[standard].counted["osm_id"].iloc[busiest])
        removed = [busiest]
    walks = full_measure(a, standard, district, [moved, spots[1]], removed)
    assert_same_walks(sc, walks)
    covered, pct, units = expected_figures(a, standard, district, walks)
    s = sc.summary
    assert s["residents_covered"] == round(covered, 1)
    assert s["residents_covered_pct"] == pytest.approx(pct, abs=1e-9)
    assert s["units_covered_pct"] == pytest.approx(units, abs=1e-9)
    assert s["sites_added"] == 2 and s["facilities_removed"] == len(removed)
    assert s["facilities_in_reach"] == row["facilities_in_reach"] + 2 - len(removed)
    # the site removed, then the removal taken back: each state measured afresh again
    sc.remove(s2)
    assert_same_walks(sc, full_measure(a, standard, district, [moved], removed))
    assert sc.undo().op == "remove"
    assert_same_walks(sc, walks)
    # the gain adds up to the residents newly covered
    before = homes[f"{standard}_covered"].to_numpy(bool)
    w = homes[a.residents_column(standard)].to_numpy(float)
    now = walks["covered"].to_numpy(bool)
    assert sc.gain["residents_newly_covered"].sum() == pytest.approx(w[now & ~before].sum())


# -- a hand-made street where closing a toilet makes the second-nearest one count -------------

#: Homes (20 × 20 m boxes 10 m off the street y=0) by their middle's x, and their levels.
HOMES = {"H1": (400, 1), "H2": (650, 2), "H3": (1500, 3), "H4": (1950, 1)}
TOILET_A, TOILET_B = (300, 5), (1100, -5)  # 5 m off the street


def hand_distance(home_x: float, toilet: tuple[float, float]) -> float:
    """Access leg of the home (10 m) + along the street + the toilet's access leg."""
    return 10 + abs(home_x - toilet[0]) + abs(toilet[1])


@pytest.fixture(scope="module")
def street_city(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scenario-city")
    nodes: dict = {1: (0, 0), 2: (1000, 0), 3: (2000, 0), 4: (0, 900), 5: (300, 900)}
    nodes[6] = (*TOILET_A, {"amenity": "toilets", "name": "A"})
    nodes[7] = (*TOILET_B, {"amenity": "toilets", "name": "B"})
    ways = [
        (100, [1, 2, 3], {"highway": "residential"}),
        (101, [4, 5], {"highway": "footway"}),  # an island of paths, 900 m from the street
    ]
    for i, (x, levels) in enumerate(HOMES.values()):
        home = {"building": "apartments", "building:levels": str(levels)}
        ways.append(box_way(200 + i, 10 + 4 * i, x - 10, 10, x + 10, 30, home, nodes))
    cfg, osm = write_city(tmp, nodes=nodes, ways=ways, district=box(-100, -100, 2100, 1000))
    a = wc.assess(cfg, standard="toilet", source=osm, cache=False).assessment
    return a


def local_lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = pyproj.Transformer.from_crs(LOCAL_CRS, 4326, always_xy=True).transform(x, y)
    return float(lon), float(lat)


def by_home(a, values) -> dict[str, object]:
    homes, _ = a.district_demand("d1")
    ids = {f"way/{200 + i}": k for i, k in enumerate(HOMES)}
    return {ids[o]: v for o, v in zip(homes["osm_id"], values)}


def test_closing_a_toilet_makes_the_second_nearest_count(street_city):
    a = street_city
    std = a.standard("toilet")
    radius = std.context_thresholds_m["ordinary_road"]
    homes, d = a.district_demand("d1")
    assert set(np.broadcast_to(a.thresholds(std, d), (len(homes),))) == {radius}
    sc = scn.scenario(a, "toilet", district_id="d1")
    ids = a.passes["toilet"].counted.set_index("name")["osm_id"]
    pos_a = [int(np.flatnonzero(ids.to_numpy() == ids["A"])[0])]  # A's position in `counted`
    got = by_home(a, sc.demand["dist_m"])
    want = {h: min(hand_distance(x, TOILET_A), hand_distance(x, TOILET_B)) for h, (x, _) in HOMES.items()}  # fmt: skip
    for h in HOMES:
        assert got[h] == pytest.approx(want[h], abs=0.1), h
    assert by_home(a, sc.demand["nearest"]) == {
        "H1": ids["A"], "H2": ids["A"], "H3": ids["B"], "H4": ids["B"]
    }  # fmt: skip

    sc.remove(ids["A"])
    got = by_home(a, sc.demand["dist_m"])
    for h, (x, _) in HOMES.items():  # every home now walks to B, the second-nearest of H1, H2
        assert got[h] == pytest.approx(hand_distance(x, TOILET_B), abs=0.1), h
    covered = by_home(a, sc.demand["covered"])
    assert covered == {h: hand_distance(x, TOILET_B) <= radius for h, (x, _) in HOMES.items()}
    assert covered["H2"] and not covered["H1"]  # H2 stays covered through B, H1 does not
    assert_same_walks(sc, full_measure(a, "toilet", "d1", [], pos_a))

    # a site near H4 (uncovered in the run) covers it; H3 keeps B, nearer than the site
    assert not by_home(a, homes["toilet_covered"])["H4"]
    site = (1920, -5)
    s1 = sc.add(lon=local_lonlat(*site)[0], lat=local_lonlat(*site)[1], name="east")
    got = by_home(a, sc.demand["dist_m"])
    assert got["H4"] == pytest.approx(hand_distance(1950, site), abs=0.1)
    assert got["H3"] == pytest.approx(hand_distance(1500, TOILET_B), abs=0.1)
    assert by_home(a, sc.demand["nearest"])["H4"] == s1
    res = dict(zip(homes["osm_id"], homes["residents"]))
    gain = sc.gain.set_index("site_id").loc[s1]
    assert gain["residents_newly_covered"] == pytest.approx(res["way/203"])
    assert gain["reason"] == ""
    assert_same_walks(sc, full_measure(a, "toilet", "d1", [local_lonlat(*site)], pos_a))
    w, now = homes["residents"].to_numpy(float), sc.demand["covered"].to_numpy(bool)
    assert sc.summary["residents_covered_pct"] == pytest.approx(100 * w[now].sum() / w.sum())
    # undo the site and the removal: back to the run
    sc.undo()
    sc.undo()
    np.testing.assert_array_equal(
        sc.demand["dist_m"].to_numpy(float), homes["toilet_dist_m"].to_numpy(float)
    )
    with pytest.raises(scn.ScenarioError, match="no edit to take back"):
        sc.undo()


def test_a_site_no_home_can_reach_gains_nothing_and_says_why(street_city):
    a = street_city
    sc = scn.scenario(a, "toilet", district_id="d1")
    before = sc.summary
    island = sc.add(lon=local_lonlat(150, 905)[0], lat=local_lonlat(150, 905)[1], name="island")
    off = sc.add(lon=local_lonlat(1000, 500)[0], lat=local_lonlat(1000, 500)[1], name="field")
    g = sc.gain.set_index("site_id")
    assert (g["residents_newly_covered"] == 0).all() and (g["homes_reached"] == 0).all()
    assert "island" in g.loc[island, "reason"] and "no home" in g.loc[island, "reason"]
    snap_m = a.city.config.network.max_snap_m
    assert f"within {snap_m:g} m" in g.loc[off, "reason"]
    assert sc.summary["residents_covered_pct"] == before["residents_covered_pct"]
    # the snapped island site is a facility in reach; the one off the network is not
    assert sc.summary["facilities_in_reach"] == before["facilities_in_reach"] + 1
    assert_same_walks(
        sc,
        full_measure(a, "toilet", "d1", [local_lonlat(150, 905), local_lonlat(1000, 500)], []),
    )


def test_bad_edits_are_refused_naming_the_value_and_the_fix(street_city):
    a = street_city
    sc = scn.scenario(a, "toilet", district_id="d1")
    far = local_lonlat(5000, 5000)
    with pytest.raises(scn.ScenarioError, match=r"lies outside district 'd1'.*give a point inside"):
        sc.add(lon=far[0], lat=far[1])
    inside = local_lonlat(500, 50)
    with pytest.raises(scn.ScenarioError, match="look swapped"):
        sc.add(lon=inside[1], lat=inside[0])
    with pytest.raises(scn.ScenarioError, match="lon=200.0, lat=30.0 are not WGS 84 degrees"):
        sc.add(lon=200.0, lat=30.0)
    with pytest.raises(scn.ScenarioError, match="capacity=-3: give a positive number"):
        sc.add(lon=inside[0], lat=inside[1], capacity=-3)
    with pytest.raises(
        scn.ScenarioError, match=r"'node/999' is neither a site.*Scenario.facilities"
    ):
        sc.remove("node/999")
    with pytest.raises(scn.ScenarioError, match="'site-7' is not a site of this scenario"):
        sc.move("site-7", lon=inside[0], lat=inside[1])
    toilet = a.passes["toilet"].counted["osm_id"].iloc[0]
    with pytest.raises(scn.ScenarioError, match="existing facility: remove it and add a site"):
        sc.move(toilet, lon=inside[0], lat=inside[1])
    sc.remove(toilet)
    with pytest.raises(scn.ScenarioError, match="removed already.*undo"):
        sc.remove(toilet)
    with pytest.raises(scn.ScenarioError, match="standard_id 'library'.*give one of: toilet"):
        scn.scenario(a, "library", district_id="d1")
    with pytest.raises(scn.ScenarioError, match="district_id 'd9'.*give one of: d1"):
        scn.scenario(a, "toilet", district_id="d9")
    assert sc.edits == (scn.Edit("remove", toilet),)  # refused edits leave no trace


def test_save_and_load_restore_the_same_figures(street_city, tmp_path):
    a = street_city
    sc = scn.scenario(a, "toilet", district_id="d1", name="../../东区 plan")
    assert re.fullmatch(r"plan-[0-9a-f]{8}", sc.slug), sc.slug
    site = local_lonlat(1920, -5)
    s1 = sc.add(lon=site[0], lat=site[1], name="east", capacity=12)
    sc.move(s1, lon=local_lonlat(1900, -5)[0], lat=local_lonlat(1900, -5)[1])
    sc.add(lon=local_lonlat(800, 8)[0], lat=local_lonlat(800, 8)[1], name="middle")
    sc.undo()  # the undone edit is not saved
    sc.remove(a.passes["toilet"].counted["osm_id"].iloc[0])
    out = tmp_path / "scenarios"
    saved = sc.save(out)
    assert sorted(p.name for p in out.iterdir()) == [f"{sc.slug}.gpkg", f"{sc.slug}.yaml"]
    assert saved == out / f"{sc.slug}.yaml"
    sites = gpd.read_file(out / f"{sc.slug}.gpkg", layer="sites")
    assert list(sites["site_id"]) == [s1] and sites["capacity"].iloc[0] == 12
    assert len(gpd.read_file(out / f"{sc.slug}.gpkg", layer="removals")) == 1
    back = scn.load_scenario(saved, a)
    assert back.name == sc.name and back.edits == sc.edits
    pd.testing.assert_frame_equal(back.demand, sc.demand)
    pd.testing.assert_series_equal(back.summary, sc.summary)
    pd.testing.assert_frame_equal(back.gain, sc.gain)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        sc.save(out)
    assert sc.save(out, overwrite=True) == saved


@pytest.mark.parametrize(
    ("name", "slug"),
    [("../../etc/passwd", "etc-passwd"), ("Toilets 2025!", "toilets-2025"), ("..", None)],
)
def test_scenario_names_become_plain_slugs(name, slug):
    got = scn.scenario_slug(name)
    assert got == slug if slug else got.startswith("scenario-")
    assert "/" not in got and not got.startswith(".")
    # names in Chinese do not collide with each other
    assert scn.scenario_slug("东区新建公厕") != scn.scenario_slug("西区新建公厕")


def test_results_open_save_and_load_a_scenario(sample_results, tmp_path):
    """`Results.scenario` opens one on a district by any of its names; `Results.load_scenario`
    replays a saved one to the same figures."""
    sc = sample_results.scenario("toilet", district="sample-sw", name="plan A")
    before = sc.summary["residents_covered_pct"]
    gaps = sample_results.assessment.gaps(sc.district_id, "toilet")
    centre = gpd.GeoSeries([gaps.geometry.iloc[0].representative_point()], crs=gaps.crs)
    lonlat = centre.to_crs(4326).iloc[0]
    sc.add(lon=lonlat.x, lat=lonlat.y, name="corner of the school yard")
    assert sc.summary["residents_covered_pct"] > before
    saved = sc.save(tmp_path)
    again = sample_results.load_scenario(saved)
    assert again.summary["residents_covered_pct"] == sc.summary["residents_covered_pct"]


# -- the official figure, suggestions and the export to `walkcover report` ---------------------


def gap_spots(results, standard: str, district: str, n: int) -> list[tuple[float, float]]:
    """A place (lon, lat) in each of the `n` largest gaps of the run."""
    gaps = results.gaps(standard, district).sort_values("rank").iloc[:n]
    assert len(gaps) == n
    pts = gpd.GeoSeries(gaps.geometry.representative_point().to_numpy(), crs=gaps.crs)
    return [(float(p.x), float(p.y)) for p in pts.to_crs(4326)]


def whole_official(a, sid: str, did: str, removed: list[int], sites) -> float:
    """The official figure measured whole (`euclid_covered_share`) for the run's counted
    facilities less `removed` (positions) plus `sites` (lon, lat)."""
    from walkcover.measures.land import euclid_covered_share

    std = a.standard(sid)
    land = a.lands.district_cells(std.denominator, did)[0]
    counted = a.passes[sid].counted.geometry.to_numpy()
    keep = ~np.isin(np.arange(len(counted)), removed)
    pts = gpd.GeoSeries(gpd.points_from_xy(*zip(*sites)), crs=4326) if sites else None
    extra = pts.to_crs(a.crs).to_numpy() if pts is not None else np.array([], dtype=object)
    return euclid_covered_share(land, np.concatenate([counted[keep], extra]), std.threshold_m)


@pytest.mark.parametrize(
    ("standard", "district"),
    [("toilet", "sample-nw"), ("primary_school", "sample-ne")],  # 88.5 %, 70.2 % in the run
)
def test_official_figure_is_the_whole_measure_after_each_edit(sample_results, standard, district):
    a = sample_results.assessment
    sc = scn.scenario(a, standard, district_id=district)
    run = a.summary.set_index(["district_id", "standard"]).loc[(district, standard)]
    first = sc.official_pct
    assert first == pytest.approx(run["area_covered_euclid_pct"], abs=1e-6)  # the run's
    assert first == whole_official(a, standard, district, [], [])  # the same measure
    nearest = a.district_nearest(standard, district)
    busiest = int(np.bincount(nearest[nearest >= 0]).argmax())
    sc.remove(a.passes[standard].counted["osm_id"].iloc[busiest])
    closed = sc.official_pct
    assert closed < run["area_covered_euclid_pct"]
    assert closed == pytest.approx(whole_official(a, standard, district, [busiest], []), abs=1e-9)
    spots = gap_spots(sample_results, standard, district, 1)
    dgeom = a.district_geometry(district)
    c = dgeom.buffer(-150).representative_point()
    spots.append(lonlat(a, Point(c.x + 60, c.y - 40)))
    for spot in spots:
        sc.add(lon=spot[0], lat=spot[1])
    assert sc.official_pct > closed
    assert sc.official_pct == pytest.approx(
        whole_official(a, standard, district, [busiest], spots), abs=1e-9
    )
    moved = (spots[0][0] + 0.003, spots[0][1] + 0.001)
    sc.move("site-1", lon=moved[0], lat=moved[1])
    assert sc.official_pct == pytest.approx(
        whole_official(a, standard, district, [busiest], [moved, spots[1]]), abs=1e-9
    )
    for _ in range(4):
        sc.undo()
    assert sc.official_pct == first


def test_suggest_keeps_the_scenarios_sites_and_adds_the_optimisers(sample_results):
    a = sample_results.assessment
    sc = scn.scenario(a, "toilet", district_id="sample-sw")
    first = gap_spots(sample_results, "toilet", "sample-sw", 1)[0]
    sc.add(lon=first[0], lat=first[1], name="ours")
    covered = float(sc.summary["residents_covered"])
    chosen = scn.suggest_sites(sc, k=2)
    assert 1 <= len(chosen) <= 2 and list(chosen["rank"]) == list(range(1, len(chosen) + 1))
    assert sc.edits == (sc.edits[0],)  # suggesting edits nothing
    # the optimiser counted only the homes the scenario leaves uncovered: its gains are the
    # residents the scenario covers once its sites are added
    ids = sc.suggest(2)
    assert ids == [f"site-{i}" for i in range(2, 2 + len(chosen))]
    assert [x.name for x in sc.sites[1:]] == [f"suggested {r} · 建议 {r}" for r in chosen["rank"]]
    gained = float(sc.summary["residents_covered"]) - covered
    assert gained > 0
    assert gained == pytest.approx(chosen["residents_newly_covered"].sum(), abs=0.1 * len(chosen))
    assert chosen["cumulative_coverage_pct"].iloc[-1] == pytest.approx(
        float(sc.summary["residents_covered_pct"]), abs=1e-6
    )
    for bad in (0, 2.5, True, "3"):
        with pytest.raises(scn.ScenarioError, match=re.escape(f"k={bad!r}: give the number")):
            scn.suggest_sites(sc, k=bad)
    with pytest.raises(scn.ScenarioError, match="time_limit_s=-1: give the seconds"):
        sc.suggest(1, time_limit_s=-1)


def test_export_gives_walkcover_report_the_scenarios_after_figure(sample_results, tmp_path):
    """Two sites exported into an empty folder: the district's run is written, then its proposed
    sites; every after figure the files hold is the scenario's, which is a full measure's, and
    `walkcover report` prints it on the before/after pages."""
    a = sample_results.assessment
    hostile = '<img src=x onerror="alert(1)">新建 1'
    sc = sample_results.scenario("toilet", district="sample-sw", name="东区 <b>plan</b>")
    spots = gap_spots(sample_results, "toilet", "sample-sw", 2)
    sc.add(lon=spots[0][0], lat=spots[0][1], name=hostile)
    sc.add(lon=spots[1][0], lat=spots[1][1], name="site two")
    after = float(sc.summary["residents_covered_pct"])
    run = a.summary.set_index(["district_id", "standard"]).loc[("sample-sw", "toilet")]
    assert after > run["residents_covered_pct"]
    written = sample_results.export_scenario(sc, tmp_path)
    folder = tmp_path / "helsinki-sample" / "sample-sw"
    assert folder / "coverage.gpkg" in written and folder / "proposed_sites.csv" in written
    layer = gpd.read_file(folder / "coverage.gpkg", layer="proposed_sites")
    assert list(layer["name"]) == [hostile, "site two"] and set(layer["scenario"]) == {sc.name}
    assert list(layer["rank"]) == [1, 2] and set(layer["method"]) == {scn.SCENARIO_METHOD}
    assert layer["cumulative_coverage_pct"].iloc[-1] == pytest.approx(after, abs=1e-9)
    one = sample_results.scenario("toilet", district="sample-sw")
    one.add(lon=spots[0][0], lat=spots[0][1])
    assert layer["cumulative_coverage_pct"].iloc[0] == pytest.approx(
        float(one.summary["residents_covered_pct"]), abs=1e-9
    )
    csv = pd.read_csv(folder / "proposed_sites.csv", encoding="utf-8-sig")
    assert csv["cumulative_coverage_pct"].iloc[-1] == pytest.approx(after, abs=1e-6)
    # each home's walk after the sites, as written, and a full measure of the edited set
    demand = gpd.read_file(folder / "coverage.gpkg", layer="demand")
    w = demand["residents"].to_numpy(float)
    now = (demand["toilet_after_status"] == "covered").to_numpy()
    assert 100 * w[now].sum() / w.sum() == pytest.approx(after, abs=1e-9)
    full = full_measure(a, "toilet", "sample-sw", spots, [])
    assert_same_walks(sc, full[WALK_COLUMNS])
    assert siting.coverage_with_sites(
        a, "toilet", "sample-sw", gpd.GeoSeries(gpd.points_from_xy(*zip(*spots)), crs=4326)
    ) == pytest.approx(after, abs=1e-9)
    # the report's before/after pages: the run's figure, then the scenario's
    from walkcover.presentation.figures import pct_text

    wc.report("helsinki-sample", tmp_path, district="sample-sw")
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "after 2 proposed site(s)" in page and "after the proposed sites" in page
    shown = page[page.index("after 2 proposed site(s)") :][:400]
    assert pct_text(after, unit="%").rstrip("%") in shown
    assert "<img src=x" not in page
    assert (folder / "maps" / "toilet_after.png").exists()


def test_export_refuses_closures_naming_them_and_writes_nothing(sample_results, tmp_path):
    sc = sample_results.scenario("toilet", district="sample-sw", name="closures")
    with pytest.raises(scn.ScenarioError, match="'closures' has no site to export; add a site"):
        sample_results.export_scenario(sc, tmp_path)
    spot = gap_spots(sample_results, "toilet", "sample-sw", 1)[0]
    sc.add(lon=spot[0], lat=spot[1])
    fac = sc.facilities
    fid = str(fac.loc[(fac["kind"] == "existing").to_numpy(), "facility_id"].iloc[0])
    sc.remove(fid)
    with pytest.raises(
        scn.ScenarioError,
        match=rf"closes existing facilities \({re.escape(fid)}.*Undo the closures",
    ):
        sample_results.export_scenario(sc, tmp_path)
    assert list(tmp_path.iterdir()) == []  # refused before anything is written
    other = dataclasses.replace(sample_results, assessment=copy.copy(sample_results.assessment))
    with pytest.raises(scn.ScenarioError, match="made on another run"):
        other.export_scenario(sc, tmp_path)
    sc.undo()
    sample_results.export_scenario(sc, tmp_path)
    with pytest.raises(OutputExistsError, match="already holds proposed sites for toilet"):
        sample_results.export_scenario(sc, tmp_path)
    assert sample_results.export_scenario(sc, tmp_path, overwrite=True)


# -- several standards at once ------------------------------------------------------------------

#: A plot that hosts two services: toilets (street-context radii) and clinics, in the district
#: where clinics reach 61% of residents in the run.
MULTI, MULTI_DISTRICT = ["toilet", "clinic"], "sample-ne"


def same_values(a: pd.Series, b: pd.Series) -> bool:
    """Two summary rows hold the same figures (NaN equal to NaN)."""
    assert list(a.index) == list(b.index)
    return all(x == y or (pd.isna(x) and pd.isna(y)) for x, y in zip(a, b, strict=True))


def assert_parts_equal_singles(m: scn.MultiScenario, singles: dict[str, scn.Scenario]) -> None:
    """Each standard of `m` gives what its single-standard scenario gives, home by home, and
    the multi-standard reads are made of them."""
    assert m.standard_ids == list(singles)
    summary = m.summary
    assert list(summary["standard"]) == list(singles)
    gain = m.gain
    demand = m.demand
    for i, (sid, one) in enumerate(singles.items()):
        part = m[sid]
        assert part.edits == one.edits, sid
        for col in scn.DEMAND_COLUMNS:
            mine, theirs = part.demand[col], one.demand[col]
            if col == "dist_m":
                np.testing.assert_array_equal(mine.to_numpy(float), theirs.to_numpy(float))
                np.testing.assert_array_equal(demand[f"{sid}_{col}"].to_numpy(float), theirs)
            elif col != "osm_id":
                assert list(mine) == list(theirs), (sid, col)
                assert list(demand[f"{sid}_{col}"]) == list(theirs), (sid, col)
        assert same_values(part.summary, one.summary), sid
        assert same_values(summary.iloc[i].rename(None), one.summary), sid
        mine = gain[(gain["standard"] == sid).to_numpy()].drop(columns="standard")
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), one.gain)
        assert [x.site_id for x in part.sites] == [x.site_id for x in m.sites]
        assert m.official_pct[sid] == one.official_pct


def test_a_multi_standard_scenario_is_its_single_standard_scenarios(sample_results):
    """Sites that serve toilets and clinics at once, moved, an existing toilet and a site
    removed, undone: each standard equals the single-standard scenario with the same edits,
    home by home, after every edit, and the last state a full measure."""
    a = sample_results.assessment
    m = sample_results.scenario(MULTI, district=MULTI_DISTRICT, name="community centre")
    assert isinstance(m, scn.MultiScenario) and m.district_id == MULTI_DISTRICT
    singles = {sid: scn.scenario(a, sid, district_id=MULTI_DISTRICT) for sid in MULTI}
    assert_parts_equal_singles(m, singles)  # before any edit: the run's figures

    def both(edit) -> None:
        edit(m)
        for one in singles.values():
            edit(one)
        assert_parts_equal_singles(m, singles)

    spots = gap_spots(sample_results, "clinic", MULTI_DISTRICT, 1)
    spots += gap_spots(sample_results, "toilet", MULTI_DISTRICT, 1)
    s1 = m.add(lon=spots[0][0], lat=spots[0][1], name="centre", capacity=30)
    for one in singles.values():
        assert one.add(lon=spots[0][0], lat=spots[0][1], name="centre", capacity=30) == s1
    assert_parts_equal_singles(m, singles)
    both(lambda sc: sc.add(lon=spots[1][0], lat=spots[1][1], name="school yard"))
    moved = (spots[0][0] + 0.0015, spots[0][1] - 0.0008)
    both(lambda sc: sc.move("site-1", lon=moved[0], lat=moved[1]))
    # an existing toilet closes: only the toilet standard changes
    nearest = a.district_nearest("toilet", MULTI_DISTRICT)
    busiest = int(np.bincount(nearest[nearest >= 0]).argmax())
    toilet = str(a.passes["toilet"].counted["osm_id"].iloc[busiest])
    m.remove(toilet)  # the id is a toilet's only: no standard= needed
    singles["toilet"].remove(toilet)
    assert_parts_equal_singles(m, singles)
    assert m.removed == {"toilet": [toilet], "clinic": []}
    assert m.edits[-1] == scn.Edit("remove", toilet, standard="toilet")
    both(lambda sc: sc.remove("site-2"))  # a site goes from every standard
    assert [x.site_id for x in m.sites] == ["site-1"]
    both(lambda sc: sc.undo())  # the site is back
    assert [x.site_id for x in m.sites] == ["site-1", "site-2"]
    s = m.summary.set_index("standard")
    assert list(s["sites_added"]) == [2, 2] and list(s["facilities_removed"]) == [1, 0]
    # the last state, per standard, is a full measure of its edited facility set
    for sid, removed in (("toilet", [busiest]), ("clinic", [])):
        walks = full_measure(a, sid, MULTI_DISTRICT, [moved, spots[1]], removed)
        assert_same_walks(m[sid], walks)
    # undo takes back the closure from the toilets alone, then the move from both
    assert m.undo() == scn.Edit("remove", toilet, standard="toilet")
    singles["toilet"].undo()
    assert_parts_equal_singles(m, singles)
    assert m.undo() == scn.Edit("move", "site-1", *moved)
    for one in singles.values():
        one.undo()
    assert_parts_equal_singles(m, singles)
    for _ in range(2):
        m.undo()
    run = a.summary.set_index(["district_id", "standard"])
    for sid in MULTI:
        assert (
            m.summary.set_index("standard").loc[sid, "residents_covered_pct"]
            == run.loc[(MULTI_DISTRICT, sid), "residents_covered_pct"]
        )
    with pytest.raises(scn.ScenarioError, match="no edit to take back"):
        m.undo()


def test_multi_standard_scenarios_are_asked_as_a_list_or_a_comma_string(sample_results):
    m = sample_results.scenario(" clinic,fitness , clinic", district="sample-sw")
    assert isinstance(m, scn.MultiScenario) and m.standard_ids == ["clinic", "fitness"]
    assert list(m.summary["standard"]) == ["clinic", "fitness"]
    assert list(m.summary.columns) == [*scn.SUMMARY_FIGURES, "sites_added", "facilities_removed"]
    assert list(m.gain.columns) == scn.MULTI_GAIN_COLUMNS and m.gain.empty
    one = sample_results.scenario(["toilet", "toilet"], district="sample-sw")
    assert isinstance(one, scn.MultiScenario) and one.standard_ids == ["toilet"]
    # one id, as before: the single-standard scenario
    assert type(sample_results.scenario("toilet", district="sample-sw")) is scn.Scenario


def test_multi_standard_scenarios_refuse_bad_input_naming_the_choices(sample_results):
    a = sample_results.assessment
    measured = ", ".join(s.id for s in a.standards)
    with pytest.raises(
        scn.ScenarioError,
        match=rf"'clinc' \(did you mean 'clinic'\?\), 'library' not measured in this run; give "
        rf"some of: {measured}$",
    ):
        sample_results.scenario(["clinc", "fitness", "library"], district="sample-sw")
    for empty in ([], ",", " , "):
        with pytest.raises(scn.ScenarioError, match="give at least one standard id; measured"):
            sample_results.scenario(empty, district="sample-sw")
    with pytest.raises(scn.ScenarioError, match="3 is not a standard id; give ids as text"):
        scn.scenario(a, ["clinic", 3], district_id="sample-sw")
    with pytest.raises(scn.ScenarioError, match="district_id 'd9'.*give one of"):
        scn.scenario(a, ["clinic", "fitness"], district_id="d9")
    with pytest.raises(scn.ScenarioError, match="a Scenario covers one standard.*give a list"):
        scn.scenario(a, "clinic,fitness", district_id="sample-sw")
    assert isinstance(scn.scenario(a, ("clinic",), district_id="sample-sw"), scn.MultiScenario)
    # green space and parks share the city's parks: a park's id names a facility of both
    m = sample_results.scenario(["green_space", "park"], district="sample-se")
    both = set(a.passes["green_space"].counted["osm_id"]) & set(a.passes["park"].counted["osm_id"])
    park = sorted(both)[0]
    with pytest.raises(
        scn.ScenarioError,
        match=rf"facility '{park}' is a facility of green_space and park .*say which closes: "
        rf"remove\('{park}', standard='green_space' or standard='park'\)",
    ):
        m.remove(park)
    with pytest.raises(scn.ScenarioError, match="position 0 names a counted facility of each"):
        m.remove(0)
    with pytest.raises(
        scn.ScenarioError, match="standard='toilet' is not a standard of this scenario; give one "
        "of: green_space, park"
    ):  # fmt: skip
        m.remove(park, standard="toilet")
    with pytest.raises(scn.ScenarioError, match=r"'node/999' is neither a site.*\(green_space, "):
        m.remove("node/999")
    assert m.edits == ()  # refused edits leave no trace
    m.remove(park, standard="park")
    assert m.removed == {"green_space": [], "park": [park]}
    spot = gap_spots(sample_results, "park", "sample-se", 1)[0]
    site = m.add(lon=spot[0], lat=spot[1])
    with pytest.raises(scn.ScenarioError, match="is a site, which serves every standard"):
        m.remove(site, standard="park")
    with pytest.raises(scn.ScenarioError, match="lies outside district"):
        m.add(lon=spot[0] + 1, lat=spot[1])
    assert [len(p.edits) for p in m.parts.values()] == [1, 2]  # the refused add left none
    # an edit made on one standard alone would put the sites' ids apart: refused next time
    m["park"].add(lon=spot[0], lat=spot[1])
    with pytest.raises(scn.ScenarioError, match=r"the park part .*edited on its own"):
        m.add(lon=spot[0], lat=spot[1])
    m["park"].undo()
    assert m.add(lon=spot[0], lat=spot[1]) == "site-2"


def test_multi_standard_save_and_load_and_a_single_standard_file_as_before(
    sample_results, tmp_path
):
    """A multi-standard scenario saves its standards and edits and replays to the same figures;
    a single-standard file, as walkcover has always written it, loads as a Scenario unchanged;
    hostile names stay text."""
    a = sample_results.assessment
    hostile = "!!python/object/apply:os.system ['touch pwned']\n<img src=x onerror=alert(1)>"
    name = "../../" + hostile
    m = sample_results.scenario(MULTI, district=MULTI_DISTRICT, name=name)
    assert "/" not in m.slug and not m.slug.startswith(".")
    spots = gap_spots(sample_results, "clinic", MULTI_DISTRICT, 2)
    m.add(lon=spots[0][0], lat=spots[0][1], name=hostile, capacity=12)
    m.add(lon=spots[1][0], lat=spots[1][1], name="second")
    m.move("site-2", lon=spots[1][0] + 0.001, lat=spots[1][1])
    toilet = str(a.passes["toilet"].counted["osm_id"].iloc[0])
    m.remove(toilet)
    out = tmp_path / "scenarios"
    saved = m.save(out)
    assert sorted(p.name for p in out.iterdir()) == [f"{m.slug}.gpkg", f"{m.slug}.yaml"]
    doc = yaml.safe_load(saved.read_text(encoding="utf-8"))
    assert doc["walkcover_scenario"] == scn.MULTI_FILE_VERSION and doc["standards"] == MULTI
    assert "standard" not in doc and doc["name"] == m.name == name.strip()
    assert doc["edits"][-1] == {"op": "remove", "facility_id": toilet, "standard": "toilet"}
    sites = gpd.read_file(out / f"{m.slug}.gpkg", layer="sites")
    assert list(sites["standard"]) == ["toilet", "clinic"] * 2
    assert list(sites["name"]) == [hostile, hostile, "second", "second"]
    removals = gpd.read_file(out / f"{m.slug}.gpkg", layer="removals")
    assert list(zip(removals["standard"], removals["facility_id"])) == [("toilet", toilet)]
    back = sample_results.load_scenario(saved)
    assert isinstance(back, scn.MultiScenario) and back.standard_ids == MULTI
    assert back.name == name.strip() and back.edits == m.edits
    pd.testing.assert_frame_equal(back.summary, m.summary)
    pd.testing.assert_frame_equal(back.demand, m.demand)
    pd.testing.assert_frame_equal(back.gain, m.gain)
    assert not (tmp_path / "pwned").exists() and not list(tmp_path.parent.glob("pwned"))
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        m.save(out)
    # a file of one standard, as Scenario.save has always written it
    lon, lat = spots[0]
    old = out / "old.yaml"
    old.write_text(
        "walkcover_scenario: 1\nname: old plan\ncity: helsinki-sample\nstandard: clinic\n"
        f"district: {MULTI_DISTRICT}\nlayers: old.gpkg\nedits:\n- op: add\n  site_id: site-1\n"
        f"  lon: {lon!r}\n  lat: {lat!r}\n  name: corner\n  capacity: null\n",
        encoding="utf-8",
    )
    single = sample_results.load_scenario(old)
    assert type(single) is scn.Scenario and single.standard.id == "clinic"
    assert single.edits == (scn.Edit("add", "site-1", lon, lat, "corner", None),)
    fresh = scn.scenario(a, "clinic", district_id=MULTI_DISTRICT)
    fresh.add(lon=lon, lat=lat, name="corner")
    pd.testing.assert_frame_equal(single.demand, fresh.demand)
    # and a single-standard scenario still writes that layout
    path = single.save(out, overwrite=True)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["walkcover_scenario"] == 1 and doc["standard"] == "clinic"
    assert "standards" not in doc and "standard" not in doc["edits"][0]
    # a multi-standard file naming a standard the run did not measure
    bad = out / "bad.yaml"
    bad.write_text(saved.read_text(encoding="utf-8").replace("- clinic", "- clinc"), "utf-8")
    with pytest.raises(scn.ScenarioError, match=r"bad.yaml.*'clinc' \(did you mean 'clinic'"):
        sample_results.load_scenario(bad)


def test_export_writes_each_standards_sites_into_the_district(sample_results, tmp_path):
    """Exported, a two-standard scenario's sites are the district's proposed sites of both
    standards, each with its own after figure (that of its single-standard scenario); a second
    export is refused naming both; another standard's sites stay."""
    m = sample_results.scenario(MULTI, district=MULTI_DISTRICT, name="hub")
    spots = gap_spots(sample_results, "clinic", MULTI_DISTRICT, 2)
    for i, (lon, lat) in enumerate(spots):
        m.add(lon=lon, lat=lat, name=f"hub {i + 1}")
    toilet = str(
        m.facilities.query("standard == 'toilet' and kind == 'existing'")["facility_id"].iloc[0]
    )
    m.remove(toilet)
    with pytest.raises(scn.ScenarioError, match=r"standard toilet: .*closes existing facilities"):
        sample_results.export_scenario(m, tmp_path)
    assert list(tmp_path.iterdir()) == []
    m.undo()
    park = sample_results.scenario("park", district=MULTI_DISTRICT)
    park.add(lon=spots[0][0], lat=spots[0][1], name="pocket park")
    sample_results.export_scenario(park, tmp_path)
    written = sample_results.export_scenario(m, tmp_path)
    folder = tmp_path / "helsinki-sample" / MULTI_DISTRICT
    assert folder / "coverage.gpkg" in written
    layer = gpd.read_file(folder / "coverage.gpkg", layer="proposed_sites")
    assert list(layer["standard"]) == ["park", "toilet", "toilet", "clinic", "clinic"]
    assert list(layer["name"]) == ["pocket park", "hub 1", "hub 2", "hub 1", "hub 2"]
    for sid in MULTI:
        mine = layer[(layer["standard"] == sid).to_numpy()]
        assert list(mine["rank"]) == [1, 2]
        assert mine["cumulative_coverage_pct"].iloc[-1] == pytest.approx(
            float(m[sid].summary["residents_covered_pct"]), abs=1e-9
        )
    demand = gpd.read_file(folder / "coverage.gpkg", layer="demand")
    w = demand["residents"].to_numpy(float)
    now = (demand["clinic_after_status"] == "covered").to_numpy()
    assert 100 * w[now].sum() / w.sum() == pytest.approx(
        float(m["clinic"].summary["residents_covered_pct"]), abs=1e-9
    )
    with pytest.raises(OutputExistsError, match="proposed sites for toilet, clinic; pass"):
        sample_results.export_scenario(m, tmp_path)
    m.remove("site-2")
    sample_results.export_scenario(m, tmp_path, overwrite=True)
    layer = gpd.read_file(folder / "coverage.gpkg", layer="proposed_sites")
    assert list(layer["standard"]) == ["park", "toilet", "clinic"]
