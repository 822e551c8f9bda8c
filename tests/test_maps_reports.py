"""What planners look at: maps in headless Chromium with the network off, and the PDF report."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import CHROMIUM, leaflet_eval, open_offline, shown_text  # noqa: F401 - browser is a conftest fixture
from walkcover.cli import app
from walkcover.config.standards import load_standards

STANDARD_LABELS = [
    f"{s.name_zh} {s.name} ({s.threshold_m:g} m)" for s in load_standards().standards.values()
]
runner = CliRunner()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    cache = tmp_path_factory.mktemp("cache")
    common = ["--city", "helsinki-sample", "--out", str(out), "--cache-dir", str(cache)]
    assert runner.invoke(app, ["run", *common], catch_exceptions=False).exit_code == 0
    res = runner.invoke(app, ["site", *common, "--district", "sample-nw", "--standard", "toilet", "--k", "2"],
                        catch_exceptions=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    # the report of one district (each takes ~5 s: 9 static maps and a PDF); the maps of all four
    res = runner.invoke(app, ["report", *common, "--district", "sample-nw"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
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


def test_pdf_report_pages_tables_and_chinese_text(outputs, tmp_path):
    pdf = outputs / "sample-nw" / "report.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    # summary, notes ("read first"), chart, gaps, counts, proposed sites, one map per standard,
    # methods
    assert pages == 6 + len(STANDARD_LABELS) + 1
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for phrase in [
        "样例区（西北）",
        "指标汇总",
        "Read first",
        "only 3.9% of its residents live on residential land",
        "十大缺口",
        "建议选址",
        "residents",
        "official %",
        "计算方法",
        "公厕",
    ]:
        assert phrase in text, phrase
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")],
        check=True,
    )
    png = next(tmp_path.glob("p*.png")).read_bytes()
    assert not_blank(png) > 5
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
    assert "NotoSansCJK" in fonts and " yes " in fonts  # embedded


def test_html_report_and_index(outputs):
    page = (outputs / "sample-nw" / "report.html").read_text(encoding="utf-8")
    for phrase in ["Summary against targets", "Ten largest gaps", "Proposed sites", "How the numbers were made",
                   "data:image/png;base64", "样例区（西北）"]:  # fmt: skip
        assert phrase in page, phrase
    # one district reported: the city pages of the run (all four districts) are left as they are
    assert not (outputs / "index.html").exists()
    assert (outputs / "sample-nw" / "maps" / "toilet.png").stat().st_size > 10_000


def test_city_index_compares_every_district(tmp_path):
    from hostile import hostile_city

    cfg, _ = hostile_city(tmp_path)
    common = ["--city", str(cfg), "--out", str(tmp_path / "out"), "--no-cache"]
    assert runner.invoke(app, ["run", *common, "--standard", "toilet"]).exit_code == 0
    res = runner.invoke(app, ["report", *common])
    assert res.exit_code == 0, res.output
    index = (tmp_path / "out" / "handmade" / "index.html").read_text(encoding="utf-8")
    assert "d1/report.pdf" in index and "d2/report.pdf" in index and "d2/map.html" in index


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


def test_homes_beyond_the_search_limit_are_farther_not_grey(sample_results):
    """In sample-sw most homes are beyond the primary-school search limit (1,000 m): they are drawn
    red ("farther") with "> 1,000" m, never in the grey of homes no walk reaches."""
    import json

    from walkcover.presentation.maps import district_map

    a = sample_results.assessment
    d = a.demand[a.demand["district_id"] == "sample-sw"]
    past = int((d["primary_school_status"] == "beyond_search_limit").sum())
    assert past > 50
    m = district_map(a, "sample-sw", show="primary_school")
    homes = []
    for child in m._children.values():
        for layer in getattr(child, "_children", {}).values():
            data = getattr(layer, "data", None)
            if isinstance(data, dict) and data.get("features"):
                props = [f["properties"] for f in data["features"]]
                if props and "band" in props[0] and props[0].get("status") != "H3 hexagon":
                    homes.append(props)
    assert homes  # one homes layer per standard
    beyond = [p for layer in homes for p in layer if p["status"] == "beyond_search_limit"]
    assert beyond and all(p["band"] == "beyond" and p["dist_m"] == "> 1,000" for p in beyond)
    assert not any(p["band"] == "unknown" for p in beyond)
    json.dumps(homes)  # plain data


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
    city = (outputs / "map.html").read_text(encoding="utf-8")
    assert "no facility in the data" in city  # kindergartens: none in the sample


def test_csv_figures_carry_no_float_noise(outputs):
    import re

    for name in ("summary.csv", "district_indicators.csv", "group_summary.csv"):
        text = (outputs / name).read_text(encoding="utf-8-sig")
        assert not re.search(r"(^|,)-0\.0(,|$)", text, re.M), name
        assert not re.search(r"\d\.\d*0000000\d", text), name
        assert not re.search(r"\d\.\d*9999999\d", text), name


def test_district_map_draws_the_streets_for_offline_reading(outputs):
    html = (outputs / "sample-nw" / "map.html").read_text(encoding="utf-8")
    # a layer named in the layer control (through JSON, escaped), one MultiLineString feature
    assert "Streets \\u00b7" in html
    lines = html.index('"type": "MultiLineString"')
    # added before the standards' layers: drawn under the homes, which answer hovers first
    assert lines < html.index('"band"')


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
