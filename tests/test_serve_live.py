"""`walkcover serve` on live scenarios: the page's data packed and edits answered with only the
homes whose band changed, two tabs on one scenario seeing each other's edits, and the export of
a scenario to `walkcover report`."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from test_serve import DISTRICT, HOSTILE, STANDARD, call, largest_gap, open_app
from walkcover.measures.bands import BAND_NAMES
from walkcover.server import Workspace, running


@pytest.fixture(scope="module")
def served(sample_results, tmp_path_factory):
    out = tmp_path_factory.mktemp("serve-live-out")
    with running(Workspace(out, results=sample_results), port=0) as server:
        yield server


def band_string(sc) -> str:
    """Every home's band as the state writes it: its position in `BAND_NAMES`, a digit each."""
    return "".join(str(BAND_NAMES.index(b)) for b in sc.bands)


def gap_places(results, n: int) -> list[tuple[float, float]]:
    gaps = results.gaps(STANDARD, DISTRICT).sort_values("rank").iloc[:n]
    pts = gpd.GeoSeries(gaps.geometry.representative_point().to_numpy(), crs=gaps.crs)
    return [(float(p.x), float(p.y)) for p in pts.to_crs(4326)]


def test_two_clients_see_each_others_edits(served, sample_results):
    """Tab A edits; tab B's next poll sees the new version, and the state since the version it
    showed carries exactly the homes whose band changed and A's figures."""
    code, a = call(served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD})
    assert code == 200
    sid = a["id"]
    code, b = call(served, f"/api/scenarios/{sid}?full=1")  # tab B joins (#scenario=<id>)
    assert code == 200 and b["version"] == a["version"] == 0 and b["bands"] == a["bands"]
    code, v = call(served, f"/api/scenarios/{sid}/version")
    assert (code, v) == (200, {"id": sid, "version": 0})

    lon, lat = largest_gap(sample_results)
    code, edited = call(
        served, f"/api/scenarios/{sid}/edits", {"op": "add", "lon": lon, "lat": lat, "since": 0}
    )
    assert code == 200 and edited["version"] == 1
    sc = sample_results.scenario(STANDARD, district=DISTRICT)
    sc.add(lon=lon, lat=lat)
    now = band_string(sc)
    # A's answer: no geometry, no band of a home that did not change
    assert not {"bands", "homes", "streets", "gaps", "facilities"} & set(edited)
    changes = edited["band_changes"]
    expected = [i for i, (x, y) in enumerate(zip(b["bands"], now, strict=True)) if x != y]
    assert changes["since"] == 0 and changes["homes"] == expected and len(expected) > 0
    assert changes["bands"] == "".join(now[i] for i in expected)

    # B polls: a new version; the state since the one B shows gives B what A sees
    code, v = call(served, f"/api/scenarios/{sid}/version")
    assert v["version"] == 1
    code, seen = call(served, f"/api/scenarios/{sid}?since=0")
    assert code == 200 and seen["band_changes"] == changes
    assert seen["figures"] == edited["figures"] and seen["sites"] == edited["sites"]
    assert seen["figures"]["residents_covered_pct"] == pytest.approx(
        float(sc.summary["residents_covered_pct"]), abs=1e-9
    )
    shown = list(b["bands"])
    for i, c in zip(seen["band_changes"]["homes"], seen["band_changes"]["bands"], strict=True):
        shown[i] = c
    assert "".join(shown) == now
    # nothing new: the same version; an unknown version gets every home's band
    assert call(served, f"/api/scenarios/{sid}/version")[1]["version"] == 1
    assert call(served, f"/api/scenarios/{sid}?since=1")[1]["band_changes"]["homes"] == []
    assert call(served, f"/api/scenarios/{sid}?since=99")[1]["bands"] == now
    code, out = call(served, f"/api/scenarios/{sid}?since=abc")
    assert code == 400 and "since='abc'" in out["error"] and "whole number" in out["error"]
    code, out = call(served, f"/api/scenarios/{sid}/edits", {"op": "undo", "since": -1})
    assert code == 400 and "since=-1:" in out["error"]
    assert call(served, "/api/scenarios/nope/version")[0] == 404


def test_the_page_takes_packed_geometry_and_another_tabs_edits(browser, served, sample_results):
    """The homes arrive packed and are drawn where they are; a second tab opened on the first's
    address shows the same scenario and takes its edits at the next poll."""
    one, errors1, outside1 = open_app(browser, served.url)
    one.evaluate(f"() => walkcoverApp.open('{DISTRICT}', '{STANDARD}').then(() => null)")
    one.wait_for_function(f"() => walkcoverApp.state().district_id === '{DISTRICT}'")
    state = one.evaluate("walkcoverApp.state()")
    assert state["homes"]["geometry"]["kind"] == "point"
    assert state["streets"]["kind"] == "line" and state["gaps"]["kind"] == "polygon"
    # the district map's decoder puts every home where the run has it (to the 0.5 m step)
    got = np.array(
        one.evaluate(
            "() => walkcover.geojson(walkcoverApp.state().homes.geometry).features"
            ".map(f => f.geometry.coordinates)"
        )
    )
    a = sample_results.assessment
    homes, _ = a.district_demand(DISTRICT)
    want = gpd.GeoSeries(homes.geometry.representative_point(), crs=a.crs).to_crs(4326)
    assert got.shape == (len(homes), 2) == (state["homes"]["count"], 2)
    np.testing.assert_allclose(got[:, 0], want.x.to_numpy(), atol=1e-5)
    np.testing.assert_allclose(got[:, 1], want.y.to_numpy(), atol=1e-5)

    two, errors2, outside2 = open_app(browser, one.url)  # the address names the scenario
    assert "#scenario=" + state["id"] in one.url
    assert two.evaluate("walkcoverApp.state().id") == state["id"]
    lon, lat = largest_gap(sample_results)
    one.evaluate("([lon, lat]) => walkcoverApp.add(lon, lat, 'from tab one').then(() => null)",
                 [lon, lat])  # fmt: skip
    two.wait_for_function("() => walkcoverApp.synced >= 1", timeout=15_000)  # its own poll
    mine = one.evaluate(
        "() => ({walk: document.getElementById('wc-f-walk').textContent, bands: walkcoverApp.bands()})"
    )
    theirs = two.evaluate(
        "() => ({walk: document.getElementById('wc-f-walk').textContent, bands: walkcoverApp.bands()})"
    )
    assert theirs == mine and mine["bands"] != state["bands"]
    assert "from tab one" in two.locator("#wc-site-list").inner_text()
    # and back: tab two undoes, tab one follows
    two.evaluate("() => walkcoverApp.undo().then(() => null)")
    one.evaluate("() => walkcoverApp.poll()")
    assert one.evaluate("walkcoverApp.bands()") == state["bands"]
    assert one.evaluate("walkcoverApp.state().sites.length") == 0
    assert errors1 == errors2 == [] and outside1 == outside2 == []
    one.close()
    two.close()


def test_export_to_report_from_the_page_and_the_api(browser, served, sample_results):
    """The export writes the district's proposed sites into --out (never a path from the
    request), asks before replacing them, and refuses a scenario that closes facilities."""
    out = Path(served.workspace.out)
    code, st = call(served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD})
    sid = st["id"]
    code, err = call(served, f"/api/scenarios/{sid}/export", {})
    assert code == 400 and "has no site to export" in err["error"]
    for i, (lon, lat) in enumerate(gap_places(sample_results, 2)):
        name = HOSTILE if i == 0 else "second"
        code, s = call(served, f"/api/scenarios/{sid}/edits",
                       {"op": "add", "lon": lon, "lat": lat, "name": name})  # fmt: skip
        assert code == 200
    # a closure: refused, naming the facility
    fid = next(f["facility_id"] for f in st["facilities"] if not f["removed"])
    call(served, f"/api/scenarios/{sid}/edits", {"op": "remove", "id": fid})
    code, err = call(served, f"/api/scenarios/{sid}/export", {"path": "/etc"})
    assert code == 400 and fid in err["error"] and "Undo the closures" in err["error"]
    assert not (out / "helsinki-sample").exists()
    code, s = call(served, f"/api/scenarios/{sid}/edits", {"op": "undo"})

    page, errors, outside = open_app(browser, f"{served.url}#scenario={sid}")
    assert page.evaluate("walkcoverApp.state().sites.length") == 2
    page.click("#wc-export")
    page.wait_for_function("() => walkcoverApp.lastExport !== undefined", timeout=120_000)
    done = page.evaluate("walkcoverApp.lastExport")
    folder = out / "helsinki-sample" / DISTRICT
    assert "helsinki-sample/sample-sw/coverage.gpkg" in done["files"]
    assert done["command"].startswith(
        "walkcover report --city helsinki-sample --district sample-sw"
    )
    assert "walkcover report" in page.locator("#wc-notice").inner_text()
    layer = gpd.read_file(folder / "coverage.gpkg", layer="proposed_sites")
    assert list(layer["name"]) == [HOSTILE, "second"]
    assert layer["cumulative_coverage_pct"].iloc[-1] == pytest.approx(
        s["figures"]["residents_covered_pct"], abs=1e-9
    )
    assert done["after_text"] == s["figures"]["text"]["residents_covered_pct"]
    # again: the page asks before replacing them (409 without overwrite)
    code, err = call(served, f"/api/scenarios/{sid}/export", {})
    assert code == 409 and "already holds proposed sites" in err["error"]
    page.on("dialog", lambda d: d.accept())
    page.evaluate("() => { walkcoverApp.lastExport = undefined; }")
    page.click("#wc-export")
    page.wait_for_function("() => walkcoverApp.lastExport !== undefined", timeout=120_000)
    assert page.evaluate("window.__pwned") is None
    assert all("409" in e for e in errors) and outside == []
    page.close()
