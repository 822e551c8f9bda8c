"""What planners look at: maps in headless Chromium with the network off, and the PDF report."""

from __future__ import annotations

import io
import json
import re
import subprocess

import numpy as np
import pytest
import scipy.sparse.csgraph
from PIL import Image
from typer.testing import CliRunner

from conftest import CHROMIUM, leaflet_eval, open_offline, shown_text  # noqa: F401 - browser is a conftest fixture
from walkcover.cli import app
from walkcover.config.standards import load_standards
from walkcover.presentation.figures import NO_DATA, distance_text

STANDARD_LABELS = [
    f"{s.name_zh} {s.name} ({distance_text(s)})" for s in load_standards().standards.values()
]
runner = CliRunner()


#: Files `run` and `site` write, which `report` must leave byte for byte and untouched.
RUN_FILES = ("coverage.gpkg", "run.json", "map.html", "proposed_sites.csv")


def run_files(city_dir) -> dict[str, tuple[bytes, int]]:
    files = [*city_dir.glob("*.csv"), city_dir / "map.html"]
    files += [p for name in RUN_FILES for p in city_dir.glob(f"*/{name}")]
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


#: What the `outputs` fixture saw around `report`: the engine calls and the run files before it.
REPORT_RUN: dict = {}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    import walkcover.engine.network
    import walkcover.sources

    out = tmp_path_factory.mktemp("out")
    cache = tmp_path_factory.mktemp("cache")
    common = ["--city", "helsinki-sample", "--out", str(out), "--cache-dir", str(cache)]
    assert runner.invoke(app, ["run", *common], catch_exceptions=False).exit_code == 0
    res = runner.invoke(app, ["site", *common, "--district", "sample-nw", "--standard", "toilet", "--k", "2"],
                        catch_exceptions=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    before = run_files(out / "helsinki-sample")
    # the report of one district, made from the run's files: no OSM read, no network built, no
    # shortest-path pass (every entry to the engine counts its calls)
    calls: list[str] = []

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return fn(*args, **kwargs)

        return wrapper

    with pytest.MonkeyPatch.context() as mp:
        for module, name in [
            (scipy.sparse.csgraph, "dijkstra"),  # the engine and siting call it from here
            (walkcover.engine.network, "build_network"),
            (walkcover.sources, "load_osm"),
        ]:
            mp.setattr(module, name, counting(name, getattr(module, name)))
        res = runner.invoke(
            app, ["report", *common[:4], "--district", "sample-nw"], catch_exceptions=False
        )
    assert res.exit_code == 0, res.output
    REPORT_RUN.update(calls=calls, before=before)
    return out / "helsinki-sample"


def not_blank(png: bytes) -> float:
    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(img.std())


@pytest.mark.parametrize("which", ["sample-nw/map.html", "sample-se/map.html", "map.html"])
def test_maps_open_offline_with_every_layer_and_no_errors(outputs, browser, which):
    page, errors, outside = open_offline(browser, outputs / which)
    try:
        assert page.locator(".leaflet-container").count() == 1
        labels = page.locator(".leaflet-control-layers label").all_inner_texts()
        labels = [" ".join(t.split()) for t in labels]
        for expected in STANDARD_LABELS:
            assert expected in labels, (expected, labels)
        assert errors == [] and outside == []
        # Something is drawn: the Leaflet map holds many layers, painted on its canvas; and a legend.
        n_layers = page.evaluate(
            "() => { const m = Object.values(window).find(v => v instanceof L.Map); let n = 0;"
            " m.eachLayer(() => n++); return n; }"
        )
        assert n_layers > 20
        assert page.locator("canvas").count() >= 1
        assert page.locator("#walkcover-legend").count() == 1
        shot = page.screenshot()
        assert not_blank(shot) > 15
    finally:
        page.close()


def test_district_map_shows_proposed_sites_and_popups(outputs, browser):
    page, errors, _ = open_offline(browser, outputs / "sample-nw" / "map.html")
    try:
        html = (outputs / "sample-nw" / "map.html").read_text(encoding="utf-8")
        assert "proposed site #1" in html and "homes for which it is the nearest" in html
        assert "https://cdn" not in html and "<script src=" not in html
        assert errors == []
    finally:
        page.close()


def test_report_measures_nothing_and_touches_no_run_file(outputs):
    assert REPORT_RUN["calls"] == []
    before = REPORT_RUN["before"]
    after = run_files(outputs)
    assert after.keys() == before.keys() and len(after) >= 4 * 3 + 4
    changed = [p for p in after if after[p] != before[p]]
    assert changed == []
    assert (outputs / "sample-nw" / "report.pdf").exists()


def pdf_pages(pdf) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split("\f")[:-1]


def test_pdf_report_pages_tables_and_chinese_text(outputs, tmp_path):
    pdf = outputs / "sample-nw" / "report.pdf"
    pages = pdf_pages(pdf)
    # a title page, the summary and its chart, a page per standard (its name at the top), in
    # the standards' order, then gaps, methods and the appendix
    assert "Sample district NW" in pages[0] and "Read first" in pages[0]
    # the Chinese summary counts the standards not met too, as the English one does
    read_first = " ".join(pages[0].split())
    met = re.search(r"(\d+) of 9 standards meet their target; (\d+) do not", read_first)
    assert met and f"9项标准中{met[1]}项达标，{met[2]}项未达标" in read_first, read_first
    assert "Summary against targets" in pages[1]
    stds = list(load_standards().standards.values())
    heads = [f"{s.name_zh} {s.name}" for s in stds]
    starts = [h for p in pages for h in heads if p.strip().startswith(h)]
    assert starts == heads  # each standard's page begins with its name, in order
    assert next(i for i, p in enumerate(pages) if p.strip().startswith(heads[0])) <= 3
    text = "\n".join(pages)
    for phrase in [
        "样例区（西北）",
        "指标与目标",
        "only 3.9% of its residents live on residential land",
        "十大缺口",
        "建议选址",
        "after the proposed sites",
        "official %",
        "计算方法",
        "公厕",
    ]:
        assert phrase in text, phrase
    assert "nan" not in text.replace("nanometre", "").lower().split()  # no "nan" cell
    # the kindergartens (none in the sample) say "no data", on their page and in the chart's place
    kg = next(p for p in pages if p.strip().startswith("幼儿园 Kindergarten"))
    # (no 0.0% figure; the target 100.0% is not one)
    assert "no facility in reach in the data" in kg and not re.search(r"(?<![\d.])0\.0%", kg)
    row = next(ln for ln in pages[1].splitlines() if ln.split()[:2] == ["kindergarten", "幼儿园"])
    # the summary: no figure, not 0% (its target, 100.0, is not one)
    assert "no data" in row and not re.search(r"(?<![\d.])0\.0(?!\d)", row)
    toilet = next(ln for ln in pages[1].splitlines() if ln.split()[:2] == ["toilet", "公厕"])
    assert toilet.split()[2] == "300/500/800", toilet  # every distance, on one line of its cell
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", "-f", "3", "-l", "3", str(pdf), str(tmp_path / "p")],
        check=True,
    )
    png = next(tmp_path.glob("p*.png")).read_bytes()
    assert not_blank(png) > 5
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
    cjk = [line for line in fonts.splitlines() if "walkcover-CJK" in line]
    assert cjk and all(line.split()[-5:-3] == ["yes", "yes"] for line in cjk)  # embedded subsets


def test_pdf_text_stays_within_every_page(outputs):
    """Every word pdftotext finds lies inside its page: no table or label runs off the paper."""
    import re

    bbox = subprocess.run(
        ["pdftotext", "-bbox", str(outputs / "sample-nw" / "report.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    n_words, off = 0, []
    for page in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', bbox, re.S):
        w, h = float(page.group(1)), float(page.group(2))
        for m in re.finditer(
            r'<word xMin="([-\d.]+)" yMin="([-\d.]+)" xMax="([-\d.]+)" yMax="([-\d.]+)">(.*?)</word>',
            page.group(3),
        ):
            x0, y0, x1, y1 = map(float, m.groups()[:4])
            n_words += 1
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                off.append(m.group(5))
    assert n_words > 500 and off == []


def test_each_standard_fits_its_page(outputs):
    """A standard's maps (the toilets' before and after the proposed sites too), their captions
    and its figures print on one page: no near-empty page of spilled figures after it."""
    pages = pdf_pages(outputs / "sample-nw" / "report.pdf")
    stds = list(load_standards().standards.values())
    heads = [f"{s.name_zh} {s.name}" for s in stds]
    starts = [i for i, p in enumerate(pages) if any(p.strip().startswith(h) for h in heads)]
    assert len(starts) == len(stds)
    # the page after each standard's page begins with the next standard, or the next section
    for i, std in zip(starts, stds, strict=True):
        page = pages[i]
        assert "residents within reach" in page and "as measured" in page, std.id
        nxt = pages[i + 1].strip()
        assert any(nxt.startswith(h) for h in heads) or nxt.startswith("Capacity"), (std.id, nxt)
    toilet = pages[starts[0]]
    assert "after the proposed sites" in toilet and "Largest gaps" in toilet


def test_maps_print_at_the_size_they_are_drawn(outputs):
    """Every map and the chart print at the resolution they were drawn at (the PNG's own pixels
    per inch): unscaled, so their text prints at the point size it was set in (the legends'
    size is tested on the figures, `test_print.test_map_legend_is_readable_on_paper`)."""
    from walkcover.presentation.report import MAP_HEIGHT_IN, PRINT_WIDTH_IN

    folder = outputs / "sample-nw"
    listing = subprocess.run(
        ["pdfimages", "-list", str(folder / "report.pdf")],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()[2:]  # fmt: skip
    printed = {(int(c[3]), int(c[4])): float(c[12]) for c in (ln.split() for ln in listing)}
    pngs = sorted((folder / "maps").glob("*.png"))
    assert {"toilet.png", "toilet_after.png", "coverage_chart.png"} <= {p.name for p in pngs}
    for png in pngs:
        with Image.open(png) as img:
            size, dpi = img.size, float(img.info["dpi"][0])
        assert size in printed, png.name  # in the PDF
        assert printed[size] == pytest.approx(dpi, rel=0.01), png.name
        if png.name != "coverage_chart.png":  # a map is at most a page wide and fits its page
            assert size[0] / dpi <= PRINT_WIDTH_IN + 0.01, png.name
            assert size[1] / dpi <= MAP_HEIGHT_IN + 0.01, png.name


def test_html_report_and_index(outputs):
    page = (outputs / "sample-nw" / "report.html").read_text(encoding="utf-8")
    for phrase in ["Summary against targets", "Ten largest gaps", "Proposed sites", "How the numbers were made",
                   "data:image/png;base64", "样例区（西北）", "after the proposed sites"]:  # fmt: skip
        assert phrase in page, phrase
    # one district reported: the city pages of the run (all four districts) are left as they are
    assert not (outputs / "index.html").exists()
    assert (outputs / "sample-nw" / "maps" / "toilet.png").stat().st_size > 10_000
    assert (outputs / "sample-nw" / "maps" / "toilet_after.png").stat().st_size > 10_000


def test_report_needs_a_run_and_keeps_its_reports(tmp_path):
    """Without a run there is nothing to report: refused, naming the district and the fix, with
    nothing written. Reports are not replaced without --overwrite."""
    common = ["--city", "helsinki-sample", "--out", str(tmp_path)]
    res = runner.invoke(app, ["report", *common, "--district", "sample-sw"])
    assert res.exit_code != 0
    assert "summary.csv is missing" in res.output and "walkcover run" in res.output
    assert not (tmp_path / "helsinki-sample" / "sample-sw").exists()


def test_city_index_compares_every_district(tmp_path):
    from hostile import hostile_city

    cfg, _ = hostile_city(tmp_path)
    common = ["--city", str(cfg), "--out", str(tmp_path / "out"), "--no-cache"]
    assert runner.invoke(app, ["run", *common, "--standard", "toilet"]).exit_code == 0
    res = runner.invoke(app, ["report", *common])
    assert res.exit_code == 0, res.output
    index = (tmp_path / "out" / "handmade" / "index.html").read_text(encoding="utf-8")
    assert "d1/report.pdf" in index and "d2/report.pdf" in index and "d2/map.html" in index
    # the comparison table: one row per district (two), under one header row
    table = index[index.index("<table") : index.index("</table>")]
    assert table.count("<tr>") == 3


def test_district_map_answers_hovers_and_clicks_with_the_boundary_on(outputs, browser):
    """With the district boundary shown (it is by default), a real mouse over a gap shows the
    gap's tooltip and a click on a facility opens its popup: the boundary is a line and catches
    nothing inside the district."""
    page, errors, _ = open_offline(browser, outputs / "sample-nw" / "map.html")
    try:
        on = page.evaluate(
            "() => [...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
            ".filter(l => l.innerText.includes('District boundary'))"
            ".map(l => l.querySelector('input').checked)"
        )
        assert on == [True]
        # a point inside the largest gap's polygon, under the mouse: the gap's tooltip
        gap_point = leaflet_eval(
            page,
            "const hit = feature(p => p.rank === 1); const b = hit._pxBounds;"
            " for (let y = b.min.y; y <= b.max.y; y += 2) for (let x = b.min.x; x <= b.max.x; x += 2)"
            " { const p = L.point(x, y);"
            " if (hit._containsPoint(p)) return screen(m.layerPointToContainerPoint(p)); }"
            " return null;",
        )
        assert gap_point is not None
        page.mouse.move(*gap_point)
        page.wait_for_timeout(300)
        assert "gap rank" in shown_text(page, ".leaflet-tooltip")
        # a facility drawn where neither the legend nor the layer control covers it
        fac_point = leaflet_eval(
            page,
            "const s = m.getSize();"
            " const ui = [...document.querySelectorAll('#walkcover-legend, .leaflet-control')]"
            ".map(e => e.getBoundingClientRect());"
            " const under = ([x, y]) => ui.some(b => x >= b.left - 8 && x <= b.right + 8 &&"
            " y >= b.top - 8 && y <= b.bottom + 8);"
            " const hit = feature((p, l) => { if (!p.osm_id || !l.getLatLng) return false;"
            " const c = m.latLngToContainerPoint(l.getLatLng());"
            " return c.x > 10 && c.x < s.x - 10 && c.y > 10 && c.y < s.y - 10 && !under(screen(c)); });"
            " return hit ? screen(m.latLngToContainerPoint(hit.getLatLng())) : null;",
        )
        assert fac_point is not None
        page.mouse.click(*fac_point)
        page.wait_for_timeout(300)
        popup = shown_text(page, ".leaflet-popup-content")
        assert "homes for which it is the nearest" in popup
        assert errors == []
    finally:
        page.close()


def homes_data(m) -> dict:
    """The data of a district map's homes layer (`maps.HomesLayer`), as the page receives it."""
    from walkcover.presentation.maps import HomesLayer

    layers = [c for c in m._children.values() if isinstance(c, HomesLayer)]
    assert len(layers) == 1  # every home once, for every standard
    (text,) = layers[0]._deferred.values()
    return json.loads(text)


def varints(b64: str) -> list[int]:
    """LEB128 varints (base64), as the page's `walkcover.varints` reads them."""
    import base64

    out, value, shift = [], 0, 0
    for byte in base64.b64decode(b64):
        value |= (byte & 127) << shift
        shift += 7
        if not byte & 128:
            out.append(value)
            value, shift = 0, 0
    return out


def test_homes_beyond_the_search_limit_are_farther_not_grey(sample_results):
    """In sample-sw most homes are beyond the primary-school search limit (1,000 m): they are drawn
    red ("farther") with "> 1,000 m", never in the grey of homes no walk reaches."""
    import base64

    from walkcover.presentation.maps import BAND_KEYS, district_map

    a = sample_results.assessment
    d = a.demand[a.demand["district_id"] == "sample-sw"]
    past = (d["primary_school_status"] == "beyond_search_limit").to_numpy()
    assert past.sum() > 50
    data = homes_data(district_map(a, "sample-sw", show="primary_school"))
    k = [s.id for s in a.standards].index("primary_school")
    std = data["standards"][k]
    bands = [BAND_KEYS[c & 3] for c in base64.b64decode(std["codes"])]
    walks = [std["walk"]["table"][i] for i in varints(std["walk"]["index"])]
    assert len(bands) == len(walks) == len(d)
    assert all(bands[i] == "beyond" and walks[i] == "> 1,000 m" for i in np.flatnonzero(past))
    assert bands == d["primary_school_band"].tolist()


def test_one_standard_at_a_time_and_no_data_where_no_facility(outputs, browser):
    page, errors, _ = open_offline(browser, outputs / "sample-nw" / "map.html")
    try:
        radios = page.evaluate(
            "() => document.querySelectorAll('.leaflet-control-layers-base input[type=radio]').length"
        )
        assert radios == len(STANDARD_LABELS)
        assert errors == []
    finally:
        page.close()
    # kindergartens (none in the sample): "no data" said on the map when they are chosen, and
    # not under another standard
    for which in ("sample-nw/map.html", "map.html"):
        page, errors, _ = open_offline(browser, outputs / which)
        try:
            label = page.locator(".walkcover-nodata > div", has_text=NO_DATA)
            assert label.count() == 0 or not label.first.is_visible()
            page.locator(".leaflet-control-layers label", has_text="幼儿园 Kindergarten").click()
            page.wait_for_timeout(200)
            n = 1 if which.startswith("sample") else 4
            assert label.count() == n and label.first.is_visible(), which
            assert errors == []
        finally:
            page.close()


def test_csv_figures_carry_no_float_noise(outputs):
    import re

    for name in ("summary.csv", "district_indicators.csv", "group_summary.csv"):
        text = (outputs / name).read_text(encoding="utf-8-sig")
        assert not re.search(r"(^|,)-0\.0(,|$)", text, re.M), name
        assert not re.search(r"\d\.\d*0000000\d", text), name
        assert not re.search(r"\d\.\d*9999999\d", text), name


def test_district_map_draws_the_streets_for_offline_reading(outputs):
    html = (outputs / "sample-nw" / "map.html").read_text(encoding="utf-8")
    # a layer named in the layer control (through JSON, escaped), drawn from packed lines
    assert "Streets \\u00b7" in html
    lines = html.index("new L.WalkcoverLines(")
    packed = re.search(r"new L\.WalkcoverLines\((\{.*?\}), \{", html, flags=re.DOTALL)
    assert packed and json.loads(packed.group(1))["kind"] == "line"
    # added before the standards' layers and the homes: drawn under them, deaf to the mouse
    assert lines < html.index("walkcover.lazy(") < html.index("new L.WalkcoverHomes(")


def test_after_proposed_sites_paints_only_its_own_standard(outputs, browser):
    """With Park shown and the toilets' "after proposed sites" box ticked, every home is painted
    by its park band; with Public toilet shown, by its walk after the sites (a home nearer now
    turns green) and the legend says so; unticked, by its toilet band again."""
    import geopandas as gpd

    from walkcover.presentation.maps import BAND_KEYS

    homes = gpd.read_file(outputs / "sample-nw" / "coverage.gpkg", layer="demand")
    page, errors, _ = open_offline(browser, outputs / "sample-nw" / "map.html")
    painted = "() => { const h = walkcover.homes, out = []; for (let f = 0; f < h._g.n; f++) out.push(h.band(f)); return out; }"
    try:
        box = page.locator(
            ".leaflet-control-layers-overlays label", has_text="Public toilet: after"
        )
        page.locator(".leaflet-control-layers-base label", has_text=" Park (").click()
        box.locator("input").check()
        page.wait_for_timeout(200)
        bands = [BAND_KEYS[c] for c in page.evaluate(painted)]
        assert bands == homes["park_band"].tolist()
        assert not page.locator("[data-after]").first.is_visible()
        page.locator(".leaflet-control-layers-base label", has_text="公厕 Public toilet").click()
        page.wait_for_timeout(200)
        after = [BAND_KEYS[c] for c in page.evaluate(painted)]
        assert after != homes["toilet_band"].tolist()
        gained = homes["toilet_after_status"].eq("covered") & ~homes["toilet_status"].eq("covered")
        assert gained.any() and all(after[i] == "within" for i in np.flatnonzero(gained))
        assert "after the 2 proposed site(s)" in shown_text(page, "#walkcover-legend")
        box.locator("input").uncheck()
        page.wait_for_timeout(200)
        assert [BAND_KEYS[c] for c in page.evaluate(painted)] == homes["toilet_band"].tolist()
        assert errors == []
    finally:
        page.close()


def test_report_tables_speak_to_people(outputs):
    """Gaps and proposed sites in the report: human column names in both languages, no raw field
    name, no "nan", and each proposed site with its location."""
    import subprocess

    page = (outputs / "sample-nw" / "report.html").read_text(encoding="utf-8")
    pdf = subprocess.run(
        ["pdftotext", "-layout", str(outputs / "sample-nw" / "report.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for text in (page, pdf):
        assert "rank_in_standard" not in text and "residents_uncovered" not in text
        assert "residents not covered" in text and "未覆盖居民" in text
        assert "新增覆盖居民" in text and "经度" in text
    assert ">nan<" not in page and " nan " not in pdf


def test_proposed_sites_show_homes_before_and_after(outputs, browser):
    """`site` leaves each home's walk once the sites are built beside its walk today (never
    longer, shorter for some), and the map an overlay, off at first, drawing the homes after."""
    import geopandas as gpd

    homes = gpd.read_file(outputs / "sample-nw" / "coverage.gpkg", layer="demand")
    now, later = (
        homes["toilet_dist_m"].to_numpy(float),
        homes["toilet_after_dist_m"].to_numpy(float),
    )
    both = ~np.isnan(now) & ~np.isnan(later)
    assert (later[both] <= now[both] + 1e-9).all() and (later[both] < now[both] - 1).any()
    gained = homes["toilet_after_status"].eq("covered") & ~homes["toilet_status"].eq("covered")
    assert gained.any()
    page, errors, _ = open_offline(browser, outputs / "sample-nw" / "map.html")
    try:
        label = "公厕 Public toilet: after 2 proposed site(s)"
        box = page.locator(".leaflet-control-layers-overlays label", has_text=label)
        assert box.count() == 1 and not box.locator("input").is_checked()
        box.locator("input").check()
        page.wait_for_timeout(200)
        assert errors == []
    finally:
        page.close()


def test_layer_control_leaves_the_map_its_room(outputs, browser):
    """On a laptop screen the layer control takes a modest corner; in a notebook-sized map it folds
    into Leaflet's layers button and opens under the mouse."""
    page, errors, _ = open_offline(browser, outputs / "sample-nw" / "map.html")
    try:
        box = page.locator(".leaflet-control-layers").bounding_box()
        assert box is not None and box["width"] * box["height"] < 0.15 * 1280 * 900
    finally:
        page.close()
    page, errors, _ = open_offline(browser, outputs / "sample-nw" / "map.html", size=(900, 500))
    try:
        control = page.locator(".leaflet-control-layers")
        assert not page.locator(".leaflet-control-layers-list").is_visible()
        small = control.bounding_box()
        assert small is not None and small["width"] < 60 and small["height"] < 60
        control.hover()
        page.wait_for_timeout(200)
        assert page.locator(".leaflet-control-layers-list").is_visible()
        assert errors == []
    finally:
        page.close()


def test_report_of_a_run_with_planners_boundaries(tmp_path):
    """A run over planners' own boundaries (d1 cut back to x ≤ 300 m): `report` takes the same
    --boundaries, and without them still draws the boundary the figures were measured in."""
    import json

    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    from conftest import LOCAL_CRS
    from hostile import hostile_city

    cfg, _ = hostile_city(tmp_path)
    own = gpd.GeoDataFrame(
        {"code": ["d1", "d2"]},
        geometry=[box(-50, -150, 300, 150), box(2000, 2000, 2200, 2200)],
        crs=LOCAL_CRS,
    ).to_crs(4326)
    own.to_file(tmp_path / "own.gpkg")
    common = ["--city", str(cfg), "--out", str(tmp_path / "out")]
    planners = ["--boundaries", str(tmp_path / "own.gpkg"), "--name-field", "code"]
    res = runner.invoke(app, ["run", *common, *planners, "--standard", "toilet", "--no-cache"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", *common, *planners])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "out" / "handmade" / "d1" / "run.json").read_text("utf-8"))
    drawn = shapely.from_wkt(record["boundary_wkt"])
    assert drawn.bounds == pytest.approx((-50, -150, 300, 150), abs=0.05)
    res = runner.invoke(app, ["report", *common, "--overwrite"])  # the bundled names still match
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "handmade" / "d1" / "report.pdf").stat().st_size > 10_000


def test_district_map_opens_on_the_whole_district(outputs, browser):
    """The district's outline is seen whole when its map opens, a margin from the window's edges,
    and still fills most of the window (whole zoom steps either cut its edges or, with a margin,
    left it at half the window)."""
    from walkcover.config.study_area import load_city

    d = load_city("helsinki-sample").districts.set_index("slug").geometry["sample-nw"]
    x0, y0, x1, y1 = d.bounds
    page, errors, _ = open_offline(browser, outputs / "sample-nw" / "map.html", size=(1280, 720))
    try:
        left, top, right, bottom, width, height = leaflet_eval(
            page,
            f"const a = m.latLngToContainerPoint([{y1}, {x0}]);"
            f" const b = m.latLngToContainerPoint([{y0}, {x1}]); const s = m.getSize();"
            " return [a.x, a.y, b.x, b.y, s.x, s.y];",
        )
        margins = [left, top, width - right, height - bottom]
        assert min(margins) >= 20, margins
        assert max((right - left) / width, (bottom - top) / height) > 0.75
        assert errors == []
    finally:
        page.close()
