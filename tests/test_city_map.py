"""The city map and the region map read without explanation: districts on top with their names and
figures (hover, click, labels that never overlap), hexagons beneath and inside the study area, drawn
once, and a legend that follows the chosen standard. Real Helsinki sample, Chromium, network off."""

from __future__ import annotations

import itertools
import json
import re

import geopandas as gpd
import pytest
import shapely

from conftest import leaflet_eval, open_offline, shown_text
from walkcover.presentation.city_map import city_map, region_map
from walkcover.presentation.figures import NO_DATA, distance_text, meets_text, pct_text
from walkcover.presentation.web_map import render_html, save_map


@pytest.fixture(scope="module")
def city_page(sample_results, tmp_path_factory):
    path = tmp_path_factory.mktemp("city-map") / "map.html"
    save_map(city_map(sample_results.assessment), path)
    return path


@pytest.fixture(scope="module")
def region_page(sample_results, tmp_path_factory):
    """The sample city's districts as a one-city region (as `merge_district_parts` draws it)."""
    a = sample_results.assessment
    polys = a.districts.set_index("district_id").geometry
    summary = gpd.GeoDataFrame(
        a.summary.assign(city_name="赫尔辛基样例"),
        geometry=polys.reindex(a.summary["district_id"]).to_numpy(),
        crs=4326,
    )
    outline = gpd.GeoDataFrame(
        {"name": ["赫尔辛基样例"]}, geometry=[a.districts.union_all()], crs=4326
    )
    path = tmp_path_factory.mktemp("region-map") / "map.html"
    save_map(
        region_map(summary, outline, title="Sample region · 样例区域", standards=a.standards),
        path,
    )
    return path


def _blobs(page: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(r"_add\((\{.*?\})\);\n", page, flags=re.DOTALL)]


def _row(summary, district_id: str, standard: str):
    rows = summary[(summary["district_id"] == district_id) & (summary["standard"] == standard)]
    assert len(rows) == 1
    return rows.iloc[0]


def _pick(page, label: str) -> None:
    """Choose the standard `label` in the layer control (folded into its button on a small map)."""
    page.locator(".leaflet-control-layers").hover()
    page.locator(".leaflet-control-layers label", has_text=label).click()
    page.mouse.move(0, 0)
    page.wait_for_timeout(250)


def _hover_district(page, label: str) -> str:
    """Move the mouse to the centre of the district whose tooltip label is `label`; its tooltip."""
    point = leaflet_eval(
        page,
        f"const hit = feature(p => p.label === {json.dumps(label)});"
        " return screen(m.latLngToContainerPoint(hit.getBounds().getCenter()));",
    )
    page.mouse.move(0, 0)
    page.wait_for_timeout(100)
    page.mouse.move(*point)
    page.wait_for_timeout(300)
    return shown_text(page, ".leaflet-tooltip")


def test_hovering_a_district_shows_its_name_and_figure(city_page, sample_results, browser):
    """Districts are above the hexagons: the mouse over a district (where hexagons are drawn
    too) gives the district's name and the chosen standard's figure, target and verdict, formatted
    as every output formats them; "no data" where the standard has no facility."""
    a = sample_results.assessment
    page, errors, outside = open_offline(browser, city_page)
    try:
        for d in a.districts.itertuples():
            label = f"{d.name} / {d.name_en}"
            shown = _hover_district(page, label)
            r = _row(a.summary, d.district_id, "toilet")
            assert label in shown
            assert pct_text(r.residents_covered_pct, unit="%") in shown, (shown, r)
            assert re.search(r"target · 目标\s+100\.0%", shown), shown  # as every output
            assert meets_text(r.meets_target) in shown
        _pick(page, "幼儿园 Kindergarten")
        shown = _hover_district(page, f"{a.districts.name.iloc[0]} / {a.districts.name_en.iloc[0]}")
        assert NO_DATA in shown and "%" not in shown.split("target")[0], shown
        assert errors == [] and outside == []
    finally:
        page.close()


def test_a_click_pins_the_district_figure(city_page, sample_results, browser):
    a = sample_results.assessment
    d = a.districts.iloc[2]
    r = _row(a.summary, d.district_id, "primary_school")
    page, errors, _ = open_offline(browser, city_page)
    try:
        _pick(page, "小学 Primary school")
        label = f"{d['name']} / {d['name_en']}"
        _hover_district(page, label)
        page.mouse.down()
        page.mouse.up()
        page.wait_for_timeout(300)
        popup = shown_text(page, ".leaflet-popup-content")
        assert label in popup and pct_text(r.residents_covered_pct, unit="%") in popup, popup
        assert "Primary school" in popup
        assert errors == []
    finally:
        page.close()


def test_the_legend_follows_the_chosen_standard(city_page, browser):
    page, errors, _ = open_offline(browser, city_page)
    try:

        def legend() -> str:
            return " ".join(shown_text(page, "#walkcover-legend").split())

        first = legend()
        # (the toilets: a distance per street context, not the default alone)
        assert (
            "Public toilet" in first and "within 300/500/800 m walk" in first and "100.0%" in first
        )
        _pick(page, "幼儿园 Kindergarten")
        kg = legend()
        assert "Kindergarten" in kg and "300 m" in kg and "Public toilet" not in kg
        _pick(page, "公园")
        park = legend()
        assert "Park" in park and "目标 90.0%" in park, park  # a target as every output has it
        tick = page.evaluate(
            "() => document.querySelector('#walkcover-legend .walkcover-legend-tick').style.left"
        )
        assert tick == "90%"
        assert page.locator("#walkcover-legend").count() == 1 and errors == []
    finally:
        page.close()


def test_hexagons_lie_within_the_study_area_and_are_drawn_once(city_page, sample_results):
    a = sample_results.assessment
    page = city_page.read_text(encoding="utf-8")
    layers = [b for b in _blobs(page) if b["features"] and "cell" in b["features"][0]["properties"]]
    assert len(layers) == 1  # one geometry for every standard, recoloured per standard
    feats = layers[0]["features"]
    assert len(feats) > 10
    assert all(len(f["properties"]["pct"]) == len(a.standards) for f in feats)
    area = shapely.union_all(a.districts.geometry.to_numpy()).buffer(2e-6)  # 6-decimal rounding
    hexes = [shapely.geometry.shape(f["geometry"]) for f in feats]
    outside = [f["properties"]["cell"] for f, h in zip(feats, hexes) if not area.covers(h)]
    assert outside == []
    # under the kindergartens (none in the sample) no hexagon has a figure
    kg = [s.id for s in a.standards].index("kindergarten")
    assert all(f["properties"]["pct"][kg] is None for f in feats)
    assert any(f["properties"]["pct"][0] is not None for f in feats)


def _hover_point(page, lon: float, lat: float) -> str:
    """Move the mouse to (lon, lat) on an open city map; the legend's line for the hexagon there."""
    point = leaflet_eval(page, f"return screen(m.latLngToContainerPoint([{lat}, {lon}]));")
    page.mouse.move(*point)
    page.wait_for_timeout(150)
    return shown_text(page, ".walkcover-legend-here")


def test_the_hexagon_under_the_cursor_is_said_in_the_legend(city_page, sample_results, browser):
    """The districts above the hexagons take the mouse, so the legend says the hexagon under the
    cursor: its own figure for the chosen standard and its residents, as the page's data holds
    them, marked beneath the ramp; "no data" under a standard with no facility; nothing once the
    cursor leaves the hexagons."""
    a = sample_results.assessment
    layer = next(
        b
        for b in _blobs(city_page.read_text(encoding="utf-8"))
        if b["features"] and "cell" in b["features"][0]["properties"]
    )
    kg = [s.id for s in a.standards].index("kindergarten")
    # the largest piece with a toilet figure unlike the district's, where a hover lands inside it
    feats = [f for f in layer["features"] if f["properties"]["pct"][0] is not None]
    f = max(feats, key=lambda f: shapely.geometry.shape(f["geometry"]).area)
    at = shapely.geometry.shape(f["geometry"]).representative_point()
    page, errors, outside = open_offline(browser, city_page)
    try:
        page.mouse.move(0, 0)
        page.wait_for_timeout(100)
        shown = _hover_point(page, at.x, at.y)
        assert f["properties"]["text"][0] in shown, (shown, f["properties"])
        assert f"of {f['properties']['residents']} residents" in shown, shown
        tick = page.evaluate(
            "() => document.querySelector('.walkcover-legend-here-tick').style.left"
        )
        assert tick == f"{f['properties']['pct'][0]}%"
        _pick(page, "幼儿园 Kindergarten")
        shown = _hover_point(page, at.x, at.y)
        assert f["properties"]["text"][kg] == NO_DATA and NO_DATA in shown, shown
        # a point of the map outside every hexagon (on a grid over the map, away from its edges)
        grid = leaflet_eval(
            page,
            "const s = m.getSize(), out = [];"
            " for (let i = 1; i < 8; i++) for (let j = 1; j < 8; j++) {"
            "  const c = m.containerPointToLatLng([s.x * i / 8, s.y * j / 8]);"
            "  const [x, y] = screen({x: s.x * i / 8, y: s.y * j / 8});"
            "  const under = document.elementFromPoint(x, y);"  # not under the legend
            "  if (under && m.getContainer().contains(under)) out.push([c.lng, c.lat]); }"
            " return out;",
        )
        hexes = shapely.union_all(
            [shapely.geometry.shape(g["geometry"]) for g in layer["features"]]
        )
        lon, lat = next(p for p in grid if hexes.distance(shapely.Point(p)) > 1e-4)
        assert _hover_point(page, lon, lat) == ""
        assert errors == [] and outside == []
    finally:
        page.close()


def _visible_boxes(page, selector: str) -> list[dict]:
    return page.evaluate(
        """(s) => Array.from(document.querySelectorAll(s))
            .filter(e => getComputedStyle(e).visibility !== 'hidden' && e.offsetParent !== null)
            .map(e => { const r = e.getBoundingClientRect();
                        return {l: r.left, r: r.right, t: r.top, b: r.bottom, text: e.innerText}; })""",
        selector,
    )


def _overlapping(boxes: list[dict]) -> list[tuple[str, str]]:
    return [
        (p["text"], q["text"])
        for p, q in itertools.combinations(boxes, 2)
        if p["l"] < q["r"] and q["l"] < p["r"] and p["t"] < q["b"] and q["t"] < p["b"]
    ]


@pytest.mark.parametrize("zoom_out", [0, 1, 2, 3])
def test_no_facility_labels_never_overlap(city_page, browser, zoom_out):
    """Kindergartens (none in the sample, so each of the four districts says so): at every zoom
    the labels that show do not overlap, and at least one shows."""
    page, errors, _ = open_offline(browser, city_page, size=(900, 600))
    try:
        _pick(page, "幼儿园 Kindergarten")
        leaflet_eval(page, f"m.setZoom(m.getZoom() - {zoom_out}, {{animate: false}}); return 0;")
        page.wait_for_timeout(300)
        boxes = _visible_boxes(page, ".walkcover-nodata > div")
        assert boxes and all(NO_DATA in b["text"] for b in boxes)  # the words of every output
        assert _overlapping(boxes) == []
        assert errors == []
    finally:
        page.close()


def test_every_district_is_labelled_with_its_figure(city_page, sample_results, browser):
    a = sample_results.assessment
    page, errors, _ = open_offline(browser, city_page)
    try:
        boxes = _visible_boxes(page, ".walkcover-label > div")
        texts = sorted(" ".join(b["text"].split()) for b in boxes)
        want = sorted(
            f"{d.name} {d.name_en} "
            + pct_text(_row(a.summary, d.district_id, "toilet").residents_covered_pct, unit="%")
            + " "
            + meets_text(_row(a.summary, d.district_id, "toilet").meets_target)
            for d in a.districts.itertuples()
        )
        assert texts == want
        assert _overlapping(boxes) == []
        assert errors == []
    finally:
        page.close()


def test_the_city_map_is_byte_identical_across_writes(sample_results, tmp_path):
    paths = [tmp_path / "a.html", tmp_path / "b.html"]
    for p in paths:
        save_map(city_map(sample_results.assessment), p)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert render_html(city_map(sample_results.assessment)) == paths[0].read_text(encoding="utf-8")


def test_region_map_hover_and_legend_follow_the_standard(region_page, sample_results, browser):
    a = sample_results.assessment
    d = a.districts.iloc[0]
    page, errors, outside = open_offline(browser, region_page)
    try:
        shown = _hover_district(page, f"赫尔辛基样例 {d['name']}")
        r = _row(a.summary, d.district_id, "toilet")
        assert pct_text(r.residents_covered_pct, unit="%") in shown, shown
        assert "whole city" in shown and meets_text(r.meets_target) in shown
        legend = " ".join(shown_text(page, "#walkcover-legend").split())
        # every distance of the toilets' rule by street context, not the default alone
        toilet = distance_text(a.standard("toilet")).removesuffix(" m")
        assert "Public toilet" in legend and f"within {toilet} m walk" in legend, legend
        _pick(page, "Kindergarten")
        legend = " ".join(shown_text(page, "#walkcover-legend").split())
        assert "Kindergarten" in legend and "300 m" in legend and "Public toilet" not in legend
        shown = _hover_district(page, f"赫尔辛基样例 {d['name']}")
        assert NO_DATA in shown, shown
        assert _overlapping(_visible_boxes(page, ".walkcover-label > div")) == []
        assert errors == [] and outside == []
    finally:
        page.close()


def test_the_region_map_states_the_figure_the_region_page_ranks(sample_results, region_page):
    """A city's whole figure on the region map is `city_figures`' (the one rule the region page
    ranks by and group summaries use), formatted by the one formatter, for every standard."""
    from walkcover.measures.indicators import city_figures
    from walkcover.presentation.figures import pct_text

    summary = sample_results.assessment.summary.assign(city="sample", city_name="赫尔辛基样例")
    want = {
        r.standard_name: pct_text(r.residents_covered_pct, no_data=bool(r.note), unit="%")
        for r in city_figures(summary).itertuples()
    }
    # a standard with no facility in reach of the city (kindergartens: none in the sample) has
    # no data, as its districts say, never "—" (a city without residents)
    assert want["Kindergarten"] == NO_DATA
    seen: dict[str, set[str]] = {}
    for blob in _blobs(region_page.read_text(encoding="utf-8")):
        for feature in blob.get("features", []):
            props = feature.get("properties", {})
            if "city_pct" in props:
                seen.setdefault(props["standard"], set()).add(props["city_pct"])
    assert set(seen) == set(want)
    assert {k: v.pop() for k, v in seen.items() if len(v) == 1} == want


def _legend_standards(page: str) -> dict[str, str]:
    """The region map's legend text per standard (`StandardView`'s spec), by standard name."""
    spec = re.search(r"walkcoverStandardView\(.*?, (\{\"legends\".*?\})\);\n", page, re.DOTALL)
    assert spec is not None
    legends = json.loads(spec.group(1))["legends"]
    return {e["standard"].split(" · ")[0]: e["standard"] for e in legends}


def test_the_region_map_gives_every_distance_of_a_standard_by_street_context(
    sample_results, tmp_path
):
    """The region map's legend says each distance of the toilets' rule (300/500/800 m by street
    context) from the standards the cities used, as the city and district maps do, never the
    default 500 m alone; it reads no free text (``context_applied`` blanked here). A standard
    the map is not given is labelled by its rows' ``threshold_m``."""
    a = sample_results.assessment
    toilet = a.standard("toilet")
    assert len(set(toilet.context_thresholds_m.values())) > 1  # a rule per street context
    polys = a.districts.set_index("district_id").geometry
    summary = gpd.GeoDataFrame(
        a.summary.assign(city_name="赫尔辛基样例", context_applied=""),
        geometry=polys.reindex(a.summary["district_id"]).to_numpy(),
        crs=4326,
    )
    outline = gpd.GeoDataFrame(
        {"name": ["赫尔辛基样例"]}, geometry=[a.districts.union_all()], crs=4326
    )
    given = _legend_standards(
        render_html(region_map(summary, outline, title="R", standards=a.standards))
    )
    toilets = distance_text(toilet).removesuffix(" m")
    assert "/" in toilets
    assert f"within {toilets} m walk · 步行{toilets}米内" in given["Public toilet"]
    for std in a.standards:
        assert f"within {distance_text(std)} walk" in given[std.name], given[std.name]
    # without the standards: each row's threshold, as the summary holds it
    bare = _legend_standards(render_html(region_map(summary, outline, title="R")))
    assert f"within {toilet.threshold_m:g} m walk" in bare["Public toilet"]


#: The only numbers a city or region map's features carry: what the page computes with (each
#: standard's colour and the ramp's marks), never shown as written.
_COMPUTED = {"pct"}


def _numbers_shown(blobs: list[dict]) -> list[tuple[str, object]]:
    """Every property of the features in `blobs` that holds a number and is not `_COMPUTED`."""
    return [
        (k, v)
        for blob in blobs
        for f in blob.get("features", [])
        for k, v in f.get("properties", {}).items()
        if k not in _COMPUTED
        and any(isinstance(x, (int, float)) for x in (v if isinstance(v, list) else [v]))
    ]


def test_map_data_holds_figures_text_never_a_number_the_browser_writes(
    sample_results, city_page, region_page
):
    """What a planner reads on the city and region maps (a district's figure, target, verdict,
    its city's figure; a hexagon's figures and residents) travels as text made by
    `walkcover.presentation.figures` (``1,642``, ``93.6%``); numbers only where the page
    computes with them (colours, the ramp's marks)."""
    from walkcover.presentation.figures import count_text

    a = sample_results.assessment
    for path in (city_page, region_page):
        blobs = _blobs(path.read_text(encoding="utf-8"))
        assert blobs and _numbers_shown(blobs) == []
    blobs = _blobs(city_page.read_text(encoding="utf-8"))
    hexes = [f for b in blobs for f in b["features"] if "cell" in f["properties"]]
    cells = a.hexagons.cells
    residents = {c: set() for c in cells["cell"]}
    for c, r in zip(cells["cell"], cells["residents"]):
        residents[c].add(count_text(r))
    assert hexes and all(
        f["properties"]["residents"] in residents[f["properties"]["cell"]] for f in hexes
    )
    districts = [
        f["properties"] for b in blobs for f in b["features"] if "covered" in f["properties"]
    ]
    for p in districts:
        rows = a.summary[a.summary["standard_name"] == p["standard"].split(" ", 1)[-1]]
        assert p["covered"] in {pct_text(v, unit="%") for v in rows["residents_covered_pct"]} | {
            NO_DATA,
            "no residents in the data · 数据中无居民",
        }, p


def test_the_region_map_labels_each_city_with_its_figure(sample_results, region_page):
    """Each city's label on the region map gives its whole figure (`city_figures`, as the region
    page ranks it) by the one formatter: it read the figure as a column of the table (none
    found) and wrote "—" for every city."""
    from walkcover.measures.indicators import city_figures

    summary = sample_results.assessment.summary.assign(city="sample", city_name="赫尔辛基样例")
    figures = city_figures(summary).set_index("standard")
    page = region_page.read_text(encoding="utf-8")
    spec = re.search(r"walkcoverStandardView\(.*?, (\{\"legends\".*?\})\);\n", page, re.DOTALL)
    assert spec is not None
    labels = json.loads(spec.group(1))["labels"]
    toilet = [s.id for s in sample_results.assessment.standards].index("toilet")
    want = pct_text(figures.loc["toilet", "residents_covered_pct"], unit="%")
    assert want != "—"
    assert [lab["lines"] for lab in labels[toilet]] == [
        ["赫尔辛基样例", f"{want} · whole city 全市"]
    ]
    # no facility in reach of the city: no data, labelled as a district without one is
    kg = [s.id for s in sample_results.assessment.standards].index("kindergarten")
    assert [(lab["lines"], lab["kind"]) for lab in labels[kg]] == [
        (["赫尔辛基样例", f"{NO_DATA} · whole city 全市"], "nodata")
    ]
