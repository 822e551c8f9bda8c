"""`walkcover serve`: the local web app on the scenario library, driven in headless chromium
(network off but for the server on 127.0.0.1), and its safety: token, loopback only, file names."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from walkcover._errors import OutputExistsError, WalkcoverError
from walkcover.api import Results
from walkcover.presentation.figures import count_text, pct_text
from walkcover.presentation.palette import BANDS
from walkcover.server import LocalServer, ServeError, Workspace, check_host, running
from walkcover.server.app import MAX_BODY_BYTES, TOKEN_HEADER

DISTRICT, STANDARD = "sample-sw", "toilet"
HOSTILE = '<img src=x onerror="window.__pwned=1">"\'</script><script>window.__pwned=2</script>'


def call(server: LocalServer, path: str, body: object = None, *, token: str | None = "ok",
         headers: dict | None = None, raw: bytes | None = None) -> tuple[int, dict]:  # fmt: skip
    """One request to the server: (status, JSON answer)."""
    base = f"http://127.0.0.1:{server.port}"
    h = dict(headers or {})
    if token == "ok":
        h[TOKEN_HEADER] = server.token
    elif token is not None:
        h[TOKEN_HEADER] = token
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if data is not None:
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
        e.close()
    try:
        return status, json.loads(text or b"{}")
    except json.JSONDecodeError:
        return status, {"text": text.decode("utf-8", "replace")}


@pytest.fixture(scope="module")
def served(sample_results, tmp_path_factory):
    out = tmp_path_factory.mktemp("serve-out")
    with running(Workspace(out, results=sample_results), port=0) as server:
        yield server


def open_app(browser, url: str, *, wait_ready: bool = True):
    """The app's page with only 127.0.0.1 reachable; its console errors and refused requests."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("http://127.0.0.1:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.wait_for_function("() => window.walkcoverApp !== undefined")
    if wait_ready:
        page.evaluate("() => walkcoverApp.ready")
    return page, errors, outside


def at_screen(page, lon: float, lat: float) -> tuple[float, float]:
    """Page coordinates of a place on the app's map."""
    return page.evaluate(
        """([lon, lat]) => { const m = walkcoverApp.map; const p = m.latLngToContainerPoint([lat, lon]);
        const b = m.getContainer().getBoundingClientRect(); return [b.x + p.x, b.y + p.y]; }""",
        [lon, lat],
    )


def wait_edits(page, n: int) -> None:
    page.wait_for_function(
        f"() => walkcoverApp.edits >= {n} && !document.body.hasAttribute('aria-busy')"
    )


def shown(page) -> dict:
    return page.evaluate(
        """() => ({walk: document.getElementById('wc-f-walk').textContent,
        official: document.getElementById('wc-f-official').textContent,
        covered: document.getElementById('wc-f-covered').textContent,
        state: walkcoverApp.state(), ms: walkcoverApp.lastEditMs,
        colours: walkcoverApp.bands().split('').map((_, i) => walkcoverApp.homeColour(i))})"""
    )


def check_same(page_view: dict, sc) -> None:
    """The page shows what a full `Scenario` with the same edits computes: the figure, the
    residents, every home's colour."""
    s = sc.summary
    assert page_view["walk"] == pct_text(s["residents_covered_pct"], unit="%")
    f = page_view["state"]["figures"]
    assert f["residents_covered_pct"] == pytest.approx(float(s["residents_covered_pct"]), abs=1e-9)
    assert f["residents_covered"] == pytest.approx(float(s["residents_covered"]), abs=1e-6)
    assert page_view["colours"] == [BANDS[b][0] for b in sc.demand["band"]]


def largest_gap(results) -> tuple[float, float]:
    gaps = results.gaps(STANDARD, DISTRICT)
    top = gaps.sort_values("rank").iloc[0]
    p = gpd.GeoSeries([top.geometry.representative_point()], crs=gaps.crs).to_crs(4326).iloc[0]
    return p.x, p.y


def test_click_drag_delete_save_load(browser, served, sample_results):
    page, errors, outside = open_app(browser, served.url)
    page.select_option("#wc-district", DISTRICT)
    page.select_option("#wc-standard", STANDARD)
    page.click("#wc-open")
    page.wait_for_function(f"() => walkcoverApp.state().district_id === '{DISTRICT}'")
    page.wait_for_function("() => !document.body.hasAttribute('aria-busy')")
    before = shown(page)
    fresh = sample_results.scenario(STANDARD, district=DISTRICT)
    check_same(before, fresh)  # the run's own figures and bands

    # add a site by clicking in the largest gap
    page.click("#wc-add")
    page.mouse.click(*at_screen(page, *largest_gap(sample_results)))
    wait_edits(page, 1)
    added = shown(page)
    site = added["state"]["sites"][0]
    assert site["snap"] is not None and site["reason"] == ""
    sc = sample_results.scenario(STANDARD, district=DISTRICT)
    sc.add(lon=site["lon"], lat=site["lat"])
    check_same(added, sc)
    assert (
        added["state"]["figures"]["residents_covered_pct"]
        > before["state"]["figures"]["residents_covered_pct"]
    )
    assert page.locator("#wc-site-list li[data-site-id='site-1'] .wc-gain").inner_text() == (
        "+" + count_text(sc.gain.set_index("site_id").loc["site-1", "residents_newly_covered"])
    )
    assert added["ms"] < 500

    # drag it: the figure follows
    box = page.locator(".leaflet-marker-icon[data-site-id='site-1']").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(x - 12 * k, y - 9 * k)
    page.mouse.up()
    wait_edits(page, 2)
    moved = shown(page)
    where = moved["state"]["sites"][0]
    assert (where["lon"], where["lat"]) != (site["lon"], site["lat"])
    sc.move("site-1", lon=where["lon"], lat=where["lat"])
    check_same(moved, sc)
    assert moved["ms"] < 500

    # save it under a name
    page.fill("#wc-name", "plan A")
    page.click("#wc-save-btn")
    page.wait_for_function("() => document.querySelectorAll('#wc-saved option').length === 1")
    saved = Path(served.workspace.folder) / "plan-a.yaml"
    assert yaml.safe_load(saved.read_text(encoding="utf-8"))["name"] == "plan A"

    # delete it: the figure is back to the run's
    page.click("#wc-site-list li[data-site-id='site-1'] .wc-delete")
    wait_edits(page, 3)
    deleted = shown(page)
    check_same(deleted, fresh)
    assert deleted["state"]["sites"] == []

    # load the saved scenario: the same figures as when it was saved
    old_id = deleted["state"]["id"]
    page.select_option("#wc-saved", "plan-a")
    page.click("#wc-load")
    page.wait_for_function(f"() => walkcoverApp.state().id !== '{old_id}'")
    page.wait_for_function("() => !document.body.hasAttribute('aria-busy')")
    again = shown(page)
    check_same(again, sc)
    assert again["official"] == moved["official"]

    # compare the loaded scenario with the saved one: the same figures side by side
    page.select_option("#wc-cmp-b", "saved:plan-a")
    page.click("#wc-cmp-btn")
    page.wait_for_selector("#wc-cmp-table:not([hidden])")
    cells = page.locator("#wc-cmp-table tbody tr").first.locator("td").all_inner_texts()
    assert cells == [moved["walk"], moved["walk"]]
    assert errors == [] and outside == []
    page.close()


def test_suggest_adds_the_optimisers_sites(served, sample_results):
    code, st = call(served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD})
    assert code == 200
    code, out = call(served, f"/api/scenarios/{st['id']}/suggest", {"k": 2})
    assert code == 200, out
    assert 1 <= len(out["sites"]) <= 2
    sc = sample_results.scenario(STANDARD, district=DISTRICT)
    for x in out["sites"]:
        sc.add(lon=x["lon"], lat=x["lat"])
    assert out["figures"]["residents_covered_pct"] == pytest.approx(
        float(sc.summary["residents_covered_pct"]), abs=1e-9
    )
    # the optimiser's own answer for this district: the same residents newly covered
    best = sample_results.site(STANDARD, k=2, district=DISTRICT)[0]
    assert out["figures"]["residents_covered_pct"] == pytest.approx(best.after_pct, abs=1e-6)
    code, out = call(served, f"/api/scenarios/{st['id']}/suggest", {"k": 0})
    assert code == 400 and "k=0" in out["error"]


def test_official_figure_recomputed(served, sample_results):
    """The official circle figure equals the run's before an edit and moves with the edits."""
    code, st = call(served, "/api/scenarios", {"district_id": "sample-nw", "standard_id": "clinic"})
    row = sample_results.summary.set_index(["district_id", "standard"]).loc[("sample-nw", "clinic")]
    assert st["figures"]["area_covered_euclid_pct"] == pytest.approx(
        float(row["area_covered_euclid_pct"]), abs=1e-9
    )
    closed = next(f for f in st["facilities"] if not f["removed"])
    code, after = call(
        served, f"/api/scenarios/{st['id']}/edits", {"op": "remove", "id": closed["facility_id"]}
    )
    assert code == 200
    assert after["figures"]["area_covered_euclid_pct"] <= st["figures"]["area_covered_euclid_pct"]
    assert after["removed"] == [closed["facility_id"]]
    assert "facilities" not in after  # positions travel once, with the full state


@pytest.fixture(scope="module")
def hostile_results(sample_results):
    """The sample run with a hostile name on a toilet and a 20 m snap distance (so that a place
    far from any street can be clicked)."""
    a = sample_results.assessment
    p = a.passes[STANDARD]
    counted = p.counted.copy()
    counted["name"] = pd.Series([HOSTILE] * len(counted), index=counted.index, dtype=object)
    net = a.city.config.network.model_copy(update={"max_snap_m": 20.0})
    city = a.city.model_copy(update={"config": a.city.config.model_copy(update={"network": net})})
    a2 = dataclasses.replace(
        a, city=city, passes={**a.passes, STANDARD: dataclasses.replace(p, counted=counted)}
    )
    return Results(assessment=a2, study=sample_results.study)


def far_from_streets(results, district: str) -> tuple[float, float]:
    """A place in `district` farthest from any street (over 20 m: the hostile run's snap)."""
    a = results.assessment
    g = a.district_geometry(district)
    x0, y0, x1, y1 = g.bounds
    xs, ys = np.meshgrid(np.arange(x0, x1, 5.0), np.arange(y0, y1, 5.0))
    pts = shapely.points(xs.ravel(), ys.ravel())
    pts = pts[shapely.contains(g.buffer(-20), pts)]  # not where a click's pixel could leave it
    lines = a.network.edges.geometry.to_numpy()
    tree = shapely.STRtree(lines)
    near = tree.query_nearest(pts, return_distance=True, all_matches=False)
    far = pts[near[0][0][np.argmax(near[1])]]
    assert near[1].max() > 40
    p = gpd.GeoSeries([far], crs=a.crs).to_crs(4326).iloc[0]
    return p.x, p.y


def test_hostile_names_stay_text_and_no_street_is_said(browser, hostile_results, tmp_path):
    with running(Workspace(tmp_path, results=hostile_results), port=0) as server:
        page, errors, outside = open_app(browser, server.url)
        page.evaluate(f"() => walkcoverApp.open('{DISTRICT}', '{STANDARD}').then(() => null)")
        page.wait_for_function("() => !document.body.hasAttribute('aria-busy')")
        # a facility's popup
        fid = page.evaluate("walkcoverApp.state().facilities[0].facility_id")
        page.evaluate(
            "(id) => { walkcoverApp.map.eachLayer(l => { if (l.facilityId === id) l.openPopup(); }); }",
            fid,
        )
        popup = page.locator(".leaflet-popup-content")
        assert HOSTILE in popup.inner_text()
        # a site's name and the scenario's name
        lon, lat = largest_gap(hostile_results)
        page.evaluate(
            "([lon, lat, n]) => walkcoverApp.add(lon, lat, n).then(() => null)", [lon, lat, HOSTILE]
        )
        assert HOSTILE in page.locator("#wc-site-list").inner_text()
        page.evaluate("(n) => walkcoverApp.save(n).then(() => null)", HOSTILE)
        assert HOSTILE in page.locator("#wc-saved").inner_text()
        files = sorted(p.name for p in (tmp_path / "scenarios").iterdir())
        assert all(Path(f).parent == Path() for f in files) and any(
            f.endswith(".yaml") for f in files
        )
        page.select_option("#wc-cmp-b", index=1)
        page.click("#wc-cmp-btn")
        page.wait_for_selector("#wc-cmp-table:not([hidden])")
        assert HOSTILE in page.locator("#wc-cmp-table thead").inner_text()
        # a click far from any street: the site is kept and the page says why it serves no one
        page.evaluate(f"() => walkcoverApp.open('sample-nw', '{STANDARD}').then(() => null)")
        page.wait_for_function("() => walkcoverApp.state().district_id === 'sample-nw'")
        page.wait_for_function("() => !document.body.hasAttribute('aria-busy')")
        far = far_from_streets(hostile_results, "sample-nw")
        page.click("#wc-add")
        page.mouse.click(*at_screen(page, *far))
        page.wait_for_function("() => walkcoverApp.state().sites.length === 1")
        assert "no walkable street within 20 m" in page.locator("#wc-notice").inner_text()
        # a click outside the district: refused, with the reason
        page.click("#wc-add")
        outside_pt = page.evaluate(
            "() => { const b = walkcoverApp.map.getBounds(); return [b.getEast(), b.getNorth()]; }"
        )
        page.mouse.click(*at_screen(page, outside_pt[0] - 1e-4, outside_pt[1] - 1e-4))
        page.wait_for_selector("#wc-notice.wc-error")
        assert "outside district" in page.locator("#wc-notice").inner_text()
        errors = [e for e in errors if "400" not in e]  # the refused click's answer
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert errors == [] and outside == []
        page.close()


def test_progress_while_the_run_is_measured(browser, sample_results, tmp_path):
    go = threading.Event()

    def load(progress):
        progress("reading OSM data")
        assert go.wait(60)
        return sample_results

    with running(Workspace(tmp_path, load=load), port=0) as server:
        page, errors, _ = open_app(browser, server.url, wait_ready=False)
        page.wait_for_function(
            "() => document.getElementById('wc-status').textContent.includes('reading OSM data')"
        )
        assert page.locator("#wc-bar").is_visible()
        assert call(server, "/api/meta")[0] == 503
        go.set()
        page.evaluate("() => walkcoverApp.ready")
        assert page.evaluate("walkcoverApp.state().homes.count") > 0
        assert len(page.evaluate("walkcoverApp.bands()")) == page.evaluate(
            "walkcoverApp.state().homes.count"
        )
        assert errors == [] or all("503" in e for e in errors)
        page.close()


# -- safety ------------------------------------------------------------------------------------


def test_every_call_needs_the_token(served):
    for path in ("/api/status", "/api/meta", "/api/saved", "/"):
        assert call(served, path, token=None)[0] == 403, path
        assert call(served, path, token="x" * 32)[0] == 403, path
        assert call(served, path)[0] == 200, path
    code, _ = call(served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD},
                   token=None)  # fmt: skip
    assert code == 403
    # the page's own link works, a page without the token does not
    with urllib.request.urlopen(served.url, timeout=30) as r:
        html = r.read().decode()
        policy = r.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'; script-src 'sha256-")
    assert "connect-src 'self'" in policy and "unsafe-eval" not in policy
    assert 'http-equiv="Content-Security-Policy"' in html
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.DOTALL)  # Leaflet's own strings
    assert "<script src" not in markup and "<link" not in markup  # nothing from elsewhere
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup) is None


def test_listens_only_on_loopback(served):
    assert served.socket.getsockname()[0] == "127.0.0.1"
    assert served.url.startswith(f"http://127.0.0.1:{served.port}/?token=")
    # not on the machine's other addresses
    others = {
        a
        for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        if "." in a and not a.startswith("127.")
    }
    for addr in others:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://{addr}:{served.port}/api/status", timeout=2)
    # another host name than the loopback's (DNS rebinding): refused
    assert call(served, "/api/status", headers={"Host": "evil.example"})[0] == 400
    with pytest.raises(ServeError, match="--allow-remote"):
        check_host("0.0.0.0", allow_remote=False)
    assert check_host("0.0.0.0", allow_remote=True) == "0.0.0.0"


def test_scenario_names_never_reach_outside_the_folder(served, tmp_path):
    code, st = call(served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD})
    folder = Path(served.workspace.folder).resolve()
    before = {p.resolve() for p in folder.parent.parent.rglob("*")}
    for name in ("../../escape", "/etc/passwd", "..\\..\\win", "城市/../../逃"):
        code, out = call(
            served, f"/api/scenarios/{st['id']}/save", {"name": name, "overwrite": True}
        )
        assert code == 200, out
        assert (folder / out["file"]).resolve().parent == folder
    after = {p.resolve() for p in folder.parent.parent.rglob("*")}
    assert all(p.parent == folder for p in after - before)
    for slug in ("../escape", "..", "/etc/passwd", "escape/../x", "ESCAPE", "a" * 200):
        assert call(served, "/api/saved/load", {"slug": slug})[0] == 404, slug


def test_bodies_are_limited_and_must_be_json(served):
    code, out = call(served, "/api/scenarios", raw=b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}")
    assert code == 413
    assert call(served, "/api/scenarios", raw=b"not json")[0] == 400
    code, out = call(served, "/api/scenarios", {"district_id": 5, "standard_id": STANDARD})
    assert code == 400 and "district_id=5" in out["error"]
    code, out = call(served, "/api/scenarios", {"district_id": "nowhere", "standard_id": STANDARD})
    assert code == 400 and "nowhere" in out["error"]
    assert call(served, "/api/scenarios/nope/edits", {"op": "undo"})[0] == 404
    code, st = call(served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD})
    code, out = call(
        served, f"/api/scenarios/{st['id']}/edits", {"op": "add", "lon": "x", "lat": 1}
    )
    assert code == 400 and "lon='x'" in out["error"]
    code, out = call(served, f"/api/scenarios/{st['id']}/edits", {"op": "explode"})
    assert code == 400 and "op='explode'" in out["error"]
    code, out = call(served, f"/api/scenarios/{st['id']}/edits", {"op": "undo"})
    assert code == 400 and "undo" in out["error"]


def test_two_tabs_saving_one_name_never_mix_its_files(served, sample_results):
    """Two scenarios saved again and again under one name from two threads: the YAML file and
    the GeoPackage always describe the same one."""
    lon, lat = largest_gap(sample_results)
    ids = []
    for n in (1, 3):
        code, st = call(
            served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD}
        )
        for k in range(n):
            call(served, f"/api/scenarios/{st['id']}/edits",
                 {"op": "add", "lon": lon + 4e-4 * k, "lat": lat})  # fmt: skip
        ids.append(st["id"])
    problems: list[object] = []

    def save(live_id: str) -> None:
        for _ in range(6):
            code, out = call(served, f"/api/scenarios/{live_id}/save",
                             {"name": "shared", "overwrite": True})  # fmt: skip
            if code != 200:
                problems.append(out)

    threads = [threading.Thread(target=save, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []
    folder = Path(served.workspace.folder)
    doc = yaml.safe_load((folder / "shared.yaml").read_text(encoding="utf-8"))
    sites = gpd.read_file(folder / "shared.gpkg", layer="sites")
    assert len(doc["edits"]) == len(sites) in (1, 3)
    # and it loads
    code, st = call(served, "/api/saved/load", {"slug": "shared"})
    assert code == 200 and len(st["sites"]) == len(sites)
    # a save that would replace a scenario without being told to: 409
    code, out = call(served, f"/api/scenarios/{ids[0]}/save", {"name": "shared"})
    assert code == 409 and '{"overwrite": true}' in out["error"]
    assert "confirm on the page" in out["error"] and "overwrite=True" not in out["error"]


def test_command_prints_the_url_first(sample_cache, tmp_path):
    """``walkcover serve`` prints the token URL as its first line, listens on 127.0.0.1 only,
    and refuses another host without --allow-remote."""
    refused = subprocess.run(
        [sys.executable, "-m", "walkcover", "serve", "--city", "helsinki-sample",
         "--host", "0.0.0.0", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "walkcover", "serve", "--city", "helsinki-sample",
         "--district", DISTRICT, "--standard", STANDARD, "--port", "0",
         "--cache-dir", str(sample_cache), "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("http://127.0.0.1:") and "/?token=" in first, first
        base, token = first.split("/?token=")
        req = urllib.request.Request(base + "/api/status")
        with pytest.raises(urllib.error.HTTPError) as no_token:
            urllib.request.urlopen(req, timeout=10)
        assert no_token.value.code == 403
        no_token.value.close()
        deadline = time.monotonic() + 120
        state = ""
        while time.monotonic() < deadline and state != "ready":
            req = urllib.request.Request(base + "/api/status", headers={TOKEN_HEADER: token})
            with urllib.request.urlopen(req, timeout=10) as r:
                state = json.loads(r.read())["state"]
            assert state in ("loading", "ready"), state
            time.sleep(0.3)
        assert state == "ready"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # and its pipes closed


def test_a_multi_standard_scenario_is_listed_but_opened_in_python(
    browser, sample_results, tmp_path
):
    """The page edits one standard at a time: a scenario of several, saved from Python, is
    listed with its standards and refused (400) when opened, saying where to open it; asking
    for several standards at once is refused too."""
    m = sample_results.scenario(["toilet", "clinic"], district=DISTRICT, name="centre")
    lon, lat = largest_gap(sample_results)
    m.add(lon=lon, lat=lat, name=HOSTILE)
    with running(Workspace(tmp_path, results=sample_results), port=0) as server:
        m.save(server.workspace.folder)
        code, out = call(server, "/api/saved")
        assert code == 200
        assert out["saved"] == [
            {"slug": "centre", "name": "centre", "district_id": DISTRICT,
             "standard_id": "toilet,clinic", "standards": ["toilet", "clinic"], "edits": 1}
        ]  # fmt: skip
        code, out = call(server, "/api/saved/load", {"slug": "centre"})
        assert code == 400
        assert "several standards (toilet, clinic)" in out["error"]
        assert "Results.load_scenario" in out["error"]
        code, out = call(
            server, "/api/scenarios", {"district_id": DISTRICT, "standard_id": "toilet,clinic"}
        )
        assert code == 400 and "one standard at a time" in out["error"]
        # a single-standard one saved beside it is listed and opens as before
        one = sample_results.scenario(STANDARD, district=DISTRICT, name="one")
        one.save(server.workspace.folder)
        code, out = call(server, "/api/saved")
        assert [x["standards"] for x in out["saved"]] == [["toilet", "clinic"], [STANDARD]]
        assert call(server, "/api/saved/load", {"slug": "one"})[0] == 200
        # the page lists it, greyed out, and never offers it to open or compare
        page, errors, outside = open_app(browser, server.url)
        got = page.evaluate(
            """() => ({saved: [...document.querySelectorAll('#wc-saved option')].map(
                o => [o.value, o.disabled]), chosen: document.getElementById('wc-saved').value,
                compare: [...document.querySelectorAll('#wc-cmp-b option')].map(o => o.value)})"""
        )
        assert got["saved"] == [["centre", True], ["one", False]] and got["chosen"] == "one"
        assert got["compare"] == ["live:", "saved:one"]
        assert errors == [] and outside == []
        page.close()


def test_hostile_bodies_are_refused_with_400_naming_the_field(served, sample_results):
    code, out = call(served, "/api/scenarios", raw=b"[" * 5000 + b"]" * 5000)
    assert code == 400 and "nests too deep" in out["error"]
    code, st = call(served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD})
    assert code == 200
    edits = f"/api/scenarios/{st['id']}/edits"
    for lon in ("9" * 5000, "9" * 1000, "-" + "9" * 5000, "1e400", "NaN"):
        code, out = call(served, edits, raw=f'{{"op":"add","lon":{lon},"lat":1}}'.encode())
        assert code == 400 and "lon=" in out["error"] and "finite number" in out["error"], lon
        assert len(out["error"]) < 300
    code, out = call(served, edits, raw=b'{"op":"undo","since":' + b"9" * 5000 + b"}")
    assert code == 400 and "since=inf" in out["error"]


def test_saved_scenarios_are_read_only_from_plain_files_in_the_folder(sample_results, tmp_path):
    """A link out of the folder, an alias bomb and a name that is not text are listed as
    unreadable (nothing of them shown) and never loaded."""
    ws = Workspace(tmp_path / "out", results=sample_results)
    sc = ws.results.scenario(STANDARD, district=DISTRICT, name="plain")
    outside = sc.save(tmp_path / "elsewhere")
    secret = outside.read_text(encoding="utf-8").replace("name: plain", "name: secret-name")
    outside.write_text(secret, encoding="utf-8")
    sc.save(ws.folder)
    (ws.folder / "linked.yaml").symlink_to(outside)
    bomb = "walkcover_scenario: 1\nname: &a [x, x]\nstandard: *a\n"
    (ws.folder / "bomb.yaml").write_text(bomb, encoding="utf-8")
    not_text = secret.replace("name: secret-name", "name: {a: 1}")
    (ws.folder / "named.yaml").write_text(not_text, encoding="utf-8")
    listed = {x["slug"]: x for x in ws.saved()}
    assert set(listed) == {"plain", "linked", "bomb", "named"}
    assert "unreadable" not in listed["plain"] and listed["plain"]["name"] == "plain"
    for slug in ("linked", "bomb", "named"):
        assert listed[slug]["unreadable"] and listed[slug]["name"] == slug
        assert "secret-name" not in json.dumps(listed[slug])
    assert "symbolic link" in listed["linked"]["unreadable"]
    assert "anchors and aliases" in listed["bomb"]["unreadable"]
    with pytest.raises(WalkcoverError, match="symbolic link"):
        ws.load("linked")
    with pytest.raises(WalkcoverError, match="anchors and aliases"):
        ws.load("bomb")
    assert ws.load("plain")["name"] == "plain"


def test_export_command_is_quoted_and_409_says_what_the_page_does(sample_results, tmp_path):
    out = tmp_path / "x; echo PWNED $(id)"
    ws = Workspace(out, results=sample_results)
    st = ws.open(district_id=DISTRICT, standard_id=STANDARD)
    gaps = sample_results.gaps(STANDARD, DISTRICT).sort_values("rank")
    p = gpd.GeoSeries(gaps.geometry.representative_point().to_numpy(), crs=gaps.crs).to_crs(4326)
    ws.edit(st["id"], {"op": "add", "lon": float(p.iloc[0].x), "lat": float(p.iloc[0].y)})
    answer = ws.export(st["id"])
    words = shlex.split(answer["command"])
    assert words[:2] == ["walkcover", "report"] and words[-2:] == ["--out", str(out)]
    assert "echo" not in words
    with pytest.raises(OutputExistsError) as err:
        ws.export(st["id"])
    msg = str(err.value)
    assert "already holds proposed sites for toilet" in msg
    assert (
        "confirm on the page" in msg and '{"overwrite": true}' in msg and "--overwrite" not in msg
    )
    assert ws.export(st["id"], overwrite=True)["files"]


def test_a_save_on_a_full_disk_is_said_as_such(served, monkeypatch):
    """Saving a scenario onto a full disk: 507 and a line naming the --out folder and the full
    disk (GDAL's SQLite error used to be a 500 'unexpected error' and a traceback)."""
    import walkcover.scenario as scenario_mod

    code, st = call(served, "/api/scenarios", {"district_id": DISTRICT, "standard_id": STANDARD})
    assert code == 200, st
    real = scenario_mod.write_atomic

    def full(path, write):
        if Path(path).suffix == ".gpkg":
            raise RuntimeError("sqlite3_exec(COMMIT) failed: database or disk is full")
        return real(path, write)

    monkeypatch.setattr(scenario_mod, "write_atomic", full)
    code, out = call(served, f"/api/scenarios/{st['id']}/save", {"name": "full", "overwrite": True})
    assert code == 507, out
    assert "failed: the disk is full" in out["error"]
    assert str(served.workspace.out) in out["error"]
    assert not (Path(served.workspace.folder) / "full.yaml").exists()
