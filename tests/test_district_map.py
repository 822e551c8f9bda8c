"""The district map at city scale: every home drawn once and recoloured per standard, the legend
that follows the standard shown, and what a planner must always see (the OSM credit, a readable
scale bar, a legend clear of the district). Speed is measured in docs/benchmarks.md, never here."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import canvas_pixels, leaflet_eval, open_offline, shown_text
from walkcover.presentation.figures import distance_text, pct_text
from walkcover.presentation.palette import BANDS, rgb

DISTRICT = "sample-se"  # the sample district with most homes


@pytest.fixture(scope="module")
def district_page(sample_results, tmp_path_factory):
    from walkcover.presentation.maps import district_map
    from walkcover.presentation.web_map import save_map

    path = tmp_path_factory.mktemp("district-map") / "map.html"
    save_map(district_map(sample_results.assessment, DISTRICT), path)
    return path


def homes_blob(page: str) -> str:
    blobs = re.findall(r"new L\.WalkcoverHomes\((\{.*?\})\);\n", page, flags=re.DOTALL)
    assert len(blobs) == 1, len(blobs)  # the homes travel once, for every standard
    return blobs[0]


def test_homes_travel_once_within_a_size_budget_per_home(sample_results, district_page):
    """The page carries each home's footprint once and, per standard, a byte of band and status
    and an index into a short table of walks: under 150 bytes a home for all nine standards
    (drawn as GeoJSON per standard, as before, a home took some 3,000)."""
    a = sample_results.assessment
    n_homes = int((a.demand["district_id"] == DISTRICT).sum())
    assert n_homes > 100
    page = district_page.read_text(encoding="utf-8")
    blob = homes_blob(page)
    assert len(blob) / n_homes < 150, len(blob) / n_homes
    # no per-standard copy of the homes as GeoJSON features
    assert not re.search(r'"properties": \{[^{}]*"band"', page) and "osm_id" not in blob


def bands_shown(page, points: list[tuple[float, float]]) -> list[str]:
    """The band painted at each point (lon, lat): the canvas pixel there, matched to the nearest
    band colour (the homes are drawn at 85% opacity over the map)."""
    pixels = canvas_pixels(page, points)
    colours = {band: np.array(rgb(colour)) for band, (colour, _) in BANDS.items()}
    return [min(colours, key=lambda b: np.abs(colours[b] - np.array(p)).sum()) for p in pixels]


def test_every_standard_switches_and_recolours_the_homes(sample_results, district_page, browser):
    """Each standard picked in the layer control paints the homes in its own bands (``<sid>_band``
    as measured), with no script error; the legend names it and gives its figure."""
    a = sample_results.assessment
    demand, _ = a.district_demand(DISTRICT)
    summary = a.summary[a.summary["district_id"] == DISTRICT].set_index("standard")
    page, errors, outside = open_offline(browser, district_page)
    try:
        # the largest homes, drawn as footprints: a point inside each is painted by it
        sample = [int(i) for i in np.argsort(-demand.geometry.area.to_numpy())[:12]]
        inside = demand.geometry.iloc[sample].representative_point().to_crs(4326)
        points = list(zip(inside.x, inside.y))
        changed = 0
        for std in a.standards:
            label = f"{std.name_zh} {std.name} ({distance_text(std)})"
            page.locator(".leaflet-control-layers-base label", has_text=label).click()
            page.wait_for_timeout(150)
            want = demand[f"{std.id}_band"].to_numpy()[sample].tolist()
            assert bands_shown(page, points) == want, std.id
            changed += want != demand["toilet_band"].to_numpy()[sample].tolist()
            legend = shown_text(page, "#walkcover-legend")
            assert f"{std.name_zh} {std.name}" in legend
            row = summary.loc[std.id]
            none = bool(row["no_data_reason"]) or not row["facilities_in_reach"]
            assert pct_text(row["residents_covered_pct"], no_data=none, unit="%") in legend
            others = [s for s in a.standards if s.id != std.id]
            assert not any(f"{s.name_zh} {s.name}\n" in legend for s in others)
        assert changed >= 2  # the standards do paint the homes differently
        assert errors == [] and outside == []
    finally:
        page.close()


def test_the_streets_stay_drawn_when_another_standard_is_shown(
    sample_results, district_page, browser
):
    """The streets share the homes' canvas: recolouring the homes (another standard picked, and
    back) repaints the streets under them too. Their bounds were NaN (no smallest size), so every
    partial redraw left them out and the district's streets vanished until the next zoom."""
    import shapely

    a = sample_results.assessment
    demand, _ = a.district_demand(DISTRICT)
    boundary = a.districts.set_index("slug").to_crs(a.crs).loc[DISTRICT].geometry
    edges = a.network.edges
    edges = edges[(edges.geometry.length > 40) & edges.geometry.within(boundary.buffer(-20))]
    mids = edges.geometry.interpolate(0.5, normalized=True)
    homes = shapely.STRtree(demand.geometry.to_numpy())
    clear = [i for i, pt in enumerate(mids) if not len(homes.query(pt.buffer(4)))][:25]
    assert len(clear) >= 10
    lonlat = mids.iloc[clear].to_crs(4326)
    points = list(zip(lonlat.x, lonlat.y))
    page, errors, _ = open_offline(browser, district_page)
    try:
        before = canvas_pixels(page, points)
        drawn = [p for p in before if p != [0, 0, 0]]  # (a pixel the street's line missed)
        assert len(drawn) >= len(points) // 2, before
        # (another standard's service area differs: the same pixels once its own is back)
        for std in (a.standards[2], a.standards[0]):
            label = f"{std.name_zh} {std.name} ({distance_text(std)})"
            page.locator(".leaflet-control-layers-base label", has_text=label).click()
            page.wait_for_timeout(150)
        assert canvas_pixels(page, points) == before
        assert errors == []
    finally:
        page.close()


def test_the_legend_gives_the_toilets_rule_per_street_context(
    sample_results, district_page, browser
):
    toilet = sample_results.assessment.standard("toilet")
    page, errors, _ = open_offline(browser, district_page)
    try:
        legend = shown_text(page, "#walkcover-legend")
        for context, radius in toilet.context_thresholds_m.items():
            assert f"{radius:g} m {context.replace('_', ' ')}" in legend
        assert toilet.citation.section in legend and toilet.citation.text in legend
        # no column name reaches a planner
        assert not re.search(r"\b[a-z]+(_[a-z]+)+_pct\b", legend)
        assert errors == []
    finally:
        page.close()


def gap_spots(page) -> list:
    """On an open district map, a point over a home inside a gap and one over a gap where no
    home is (page coordinates; None where there is none)."""
    return leaflet_eval(
        page,
        "const h = walkcover.homes; let home = null, bare = null;"
        " m.eachLayer(l => { if (!l.feature || !l.feature.properties.rank || !l._pxBounds) return;"
        "  const b = l._pxBounds; for (let y = b.min.y; y <= b.max.y; y += 2) for (let x = b.min.x; x <= b.max.x; x += 2) {"
        "   const p = L.point(x, y); if (!l._containsPoint(p)) continue;"
        "   const c = m.layerPointToContainerPoint(p); if (c.x < 0 || c.y < 0 || c.x > m.getSize().x || c.y > m.getSize().y) continue;"
        "   if (h.homeAt(p) >= 0) home = home || screen(c); else bare = bare || screen(c); } });"
        " return [home, bare];",
    )


def test_a_home_inside_a_gap_answers_before_the_gap(district_page, browser):
    """Hovering a home that lies in a gap shows the home (its walk and the rule there), not the
    gap; hovering the gap where no home is shows the gap, with the rule that applies there."""
    page, errors, _ = open_offline(browser, district_page)
    try:
        page.locator(".leaflet-control-layers-base label", has_text="Primary school").click()
        page.wait_for_timeout(200)
        home, bare = gap_spots(page)
        assert home is not None and bare is not None
        page.mouse.move(*home)
        page.wait_for_timeout(300)
        text = shown_text(page, ".leaflet-tooltip")
        assert "walk · 步行" in text and "gap rank" not in text
        page.mouse.move(*bare)
        page.wait_for_timeout(300)
        text = shown_text(page, ".leaflet-tooltip")
        assert "gap rank" in text and "≤ 500 m" in text
        assert errors == []
    finally:
        page.close()


def test_the_official_land_warning_goes_with_the_standards_that_divide_by_that_land(
    sample_results, district_page
):
    """Few of the district's residents live on residential land: the legend says so with each
    standard whose official figure divides by it, not with the bus stops (built-up land) or a
    standard with no official figure (it used to be shown with every standard)."""
    from bs4 import BeautifulSoup

    a = sample_results.assessment
    summary = a.summary[a.summary["district_id"] == DISTRICT].set_index("standard")
    notes = [n.text for n in a.district_notes(DISTRICT, kind="official_land")]
    assert any("live on residential land" in t for t in notes)  # (else the test says nothing)
    assert not any("live on built up" in t for t in notes)
    soup = BeautifulSoup(district_page.read_text(encoding="utf-8"), "html.parser")
    warned = {}
    for k, std in enumerate(a.standards):
        section = soup.select_one(f"#walkcover-legend [data-standard='{k}']")
        warned[std.id] = "live on residential land" in section.get_text()
    official = summary["area_covered_euclid_pct"].notna()
    want = {s.id: bool(official[s.id]) and s.denominator == "residential_land" for s in a.standards}
    assert warned == want
    assert not warned["bus_stop"] and True in warned.values()
    outside = soup.select_one("#walkcover-legend")
    for section in outside.select("[data-standard]"):
        section.decompose()
    assert "live on residential land" not in outside.get_text()  # not for every standard


def test_the_plans_count_of_new_facilities_is_its_own_citys(sample_results, district_page):
    """Zhengzhou's plan orders 1,450 new toilets: its own maps say so, the Helsinki sample's (whose
    standards file is Zhengzhou's) do not."""
    import dataclasses

    from walkcover.presentation.maps import district_map

    assert "规划新增" not in district_page.read_text(encoding="utf-8")
    a = sample_results.assessment
    assert a.rules.city != a.city.id and a.standards[0].plan_new is not None
    own = dataclasses.replace(a, rules=a.rules.model_copy(update={"city": a.city.id}))
    page = district_map(own, DISTRICT).get_root().render()
    assert f"plan: {a.standards[0].plan_new.count:,} new" in page and "规划新增" in page


def test_a_toilet_gap_tooltip_stays_on_the_screen(district_page, browser):
    """The toilets' rule names every street context: its line wraps within the tooltip, which
    stays narrow enough for every figure of the gap to be read on the screen (it stretched to
    987 px, its figures past the window's edge)."""
    page, errors, _ = open_offline(browser, district_page, size=(1280, 900))
    try:
        _, bare = gap_spots(page)
        assert bare is not None
        page.mouse.move(*bare)
        page.wait_for_timeout(300)
        text = shown_text(page, ".leaflet-tooltip")
        assert "gap rank" in text and "300 m main street" in text and "800 m riverside" in text
        box = page.locator(".leaflet-tooltip").bounding_box()
        assert box is not None and box["width"] <= 480, box
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1280, box
        assert errors == []
    finally:
        page.close()


@pytest.mark.parametrize("size", [(1280, 900), (900, 500)])
def test_credit_scale_and_legend_leave_the_district_readable(
    sample_results, district_page, browser, size
):
    """The OpenStreetMap credit is shown (ODbL) without tiles; the scale bar's text fits in its
    box ("100 m", not a cut "100 n"); the legend covers no part of the district's outline."""
    d = sample_results.assessment.districts.set_index("district_id").geometry[DISTRICT]
    page, errors, _ = open_offline(browser, district_page, size=size)
    try:
        credit = page.locator(".leaflet-control-attribution")
        assert credit.is_visible() and "© OpenStreetMap contributors" in credit.inner_text()
        scale = page.evaluate(
            "() => { const e = document.querySelector('.leaflet-control-scale-line');"
            " const r = document.createRange(); r.selectNodeContents(e);"
            " const t = r.getBoundingClientRect(), b = e.getBoundingClientRect();"
            " return [e.innerText, t.right <= b.right + 0.5 && t.bottom <= b.bottom + 0.5]; }"
        )
        assert re.fullmatch(r"\d+ k?m", scale[0]) and scale[1], scale
        covered = leaflet_eval(
            page,
            "const l = document.getElementById('walkcover-legend').getBoundingClientRect();"
            f" const ring = {[list(c) for c in d.exterior.coords] if d.geom_type == 'Polygon' else [list(c) for c in d.envelope.exterior.coords]};"
            " return ring.filter(([x, y]) => { const [px, py] = screen(m.latLngToContainerPoint([y, x]));"
            "  return px >= l.left && px <= l.right && py >= l.top && py <= l.bottom; }).length;",
        )
        assert covered == 0
        assert errors == []
    finally:
        page.close()


#: Every entry of the district map's legend that must lie inside its box: the bands, the
#: symbols, and each line of the standard's section shown.
_LEGEND_ENTRIES = (
    "() => { const box = document.getElementById('walkcover-legend');"
    " const b = box.getBoundingClientRect(), out = [];"
    " const entries = [...box.querySelectorAll('[data-bands] > *, [data-symbols] > *,"
    "  [data-standard]:not([hidden]) > *, details > div:not([data-bands]):not([data-symbols])"
    ":not([data-standard])')];"
    " for (const e of entries) {"
    "  e.scrollIntoView({block: 'nearest', inline: 'nearest'});"
    "  const r = e.getBoundingClientRect(), t = document.createRange();"
    "  t.selectNodeContents(e); const w = t.getBoundingClientRect();"
    "  const b = box.getBoundingClientRect();"
    "  out.push({text: e.textContent, inside: [r, w].every(q => q.left >= b.left - 0.5"
    "   && q.right <= b.right + 0.5 && q.top >= b.top - 0.5 && q.bottom <= b.bottom + 0.5)}); }"
    " return {entries: out, wide: box.scrollWidth <= box.clientWidth}; }"
)


@pytest.mark.parametrize("size", [(1280, 900), (800, 700)])
def test_every_legend_entry_stays_inside_the_legend(sample_results, district_page, browser, size):
    """Each entry of the legend (the bands, the symbols, the standard's lines) lies within the
    legend's box, open in a laptop's window and in a narrow one: the band "unreachable, not
    snapped, or no facility in the data · 不可达/未匹配/无设施" ran out of the box as one
    unbroken line. Nothing is hidden to make it fit: every band's words are there."""
    page, errors, _ = open_offline(browser, district_page, size=size)
    try:
        if not page.evaluate("() => document.querySelector('#walkcover-legend details').open"):
            page.locator("#walkcover-legend summary").click()  # folded on a small screen
        found = page.evaluate(_LEGEND_ENTRIES)
        texts = " ".join(e["text"] for e in found["entries"])
        for _, words in BANDS.values():
            assert words in texts
        assert len(found["entries"]) > len(BANDS)
        assert [e["text"] for e in found["entries"] if not e["inside"]] == []
        assert found["wide"]  # no part of a line left to a sideways scroll
        assert errors == []
    finally:
        page.close()


def packed_layers(page: str) -> list[dict]:
    """The packed layers of a district map's page (`web_map.PackedGeoJson`: columns of
    properties under ``props``)."""
    import json

    found = re.findall(r"walkcover\.lazy\((\{.*?\}), \{\s*interactive:", page, flags=re.DOTALL)
    return [json.loads(f) for f in found]


def test_facility_popups_carry_the_homes_per_band_as_figures_text(sample_results, district_page):
    """A facility's popup gives how many homes have it as their nearest, by band, as text made by
    `figures.count_text` (``1,642``), never a number the browser writes (``1642``)."""
    from walkcover.assessment import can_serve
    from walkcover.presentation.figures import count_text

    a = sample_results.assessment
    demand, _ = a.district_demand(DISTRICT)
    dgeom = a.district_geometry(DISTRICT)
    want: dict[str, dict[str, tuple[str, str, str]]] = {}
    for std in a.standards:
        counted = a.passes[std.id].counted
        if not len(counted):
            continue
        nearest = a.district_nearest(std.id, DISTRICT)
        band = demand[f"{std.id}_band"].to_numpy(dtype=object)
        per_band = [
            np.bincount(nearest[(nearest >= 0) & (band == b)], minlength=len(counted))
            for b in ("within", "near", "beyond")
        ]
        near = np.flatnonzero(can_serve(counted.geometry, dgeom, a.passes[std.id].limit_m))
        ids = counted["osm_id"].astype(str).to_numpy()
        want[std.id] = {ids[i]: tuple(count_text(c[i]) for c in per_band) for i in near}
    layers = [p["props"] for p in packed_layers(district_page.read_text("utf-8"))]
    facilities = [p for p in layers if {"within", "near", "beyond", "osm_id"} <= set(p)]
    assert facilities
    shown_counts = 0
    for props in facilities:
        got = list(zip(props["osm_id"], props["within"], props["near"], props["beyond"]))
        assert all(isinstance(t, str) for row in got for t in row[1:]), got[:3]
        assert any(all(want[s].get(i) == tuple(t) for i, *t in got) for s in want), got[:3]
        shown_counts += sum(int(t.replace(",", "")) > 0 for row in got for t in row[1:])
    assert shown_counts > 0  # some facility is some home's nearest


def test_a_map_prints_a_cluster_count_as_count_text_does():
    """The district map's facility clusters print their count in the browser: with thousands
    separators as `count_text` (it printed "12345"), in a circle that grows to hold them."""
    import json
    import shutil
    import subprocess
    from types import SimpleNamespace

    from walkcover.presentation.figures import COUNT_JS, count_text
    from walkcover.presentation.maps import FacilityClusters

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    this = SimpleNamespace(get_name=lambda: "clusters", points="points", count_js=COUNT_JS)
    script = str(FacilityClusters._template.module.script(this, {}))  # type: ignore[attr-defined]
    make = re.search(r"iconCreateFunction: (function \(cluster\) \{.*?\n\s*\})", script, re.S)
    assert make is not None
    counts = [7, 999, 1000, 12345, 1234567]
    js = (
        "var L = {divIcon: function (o) { return o; }, point: function (x, y) { return [x, y]; }};"
        f"var make = {make.group(1)};"
        f"console.log(JSON.stringify({json.dumps(counts)}.map(function (n) {{"
        "  var icon = make({getChildCount: function () { return n; }});"
        "  return [icon.html, icon.iconSize[0]]; })));"
    )
    out = subprocess.run([node, "-e", js], capture_output=True, text=True, check=True, timeout=60)
    shown = json.loads(out.stdout)
    assert [h for h, _ in shown] == [f"<div>{count_text(n)}</div>" for n in counts]
    assert shown[2][0] == "<div>1,000</div>" and shown[3][1] > shown[1][1]
