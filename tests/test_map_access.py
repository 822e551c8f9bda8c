"""The district map of a run that measures capacity (E2SFCA), choice and life circles: the homes
painted against the norm and by their circle's completeness, the legend that states the norm, its
unit and basis, the popups that give the 2nd and 3rd nearest facility and a facility's capacity
(the default flagged); hostile names and bases stay text."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import walkcover as wc
from conftest import canvas_pixels, leaflet_eval, open_offline
from hostile import BACKSLASH_NAME, SCRIPT_NAME, hostile_city
from test_choice_run import DEFAULT_BEDS, NORM, SID, _standards_file
from walkcover.cli import app
from walkcover.presentation.figures import count_text, figure_text, pct_text
from walkcover.presentation.palette import ACCESS_COLOURS, LIFE_CIRCLE_COLOURS, rgb

DISTRICT = "sample-se"  # the sample district with most homes
ACCESS_LABEL = "beds per 1,000 residents"
TIER_LABEL = "5-minute life circle"


@pytest.fixture(scope="module")
def access_run(tmp_path_factory, sample_cache):
    """Clinics with choice and an access rule (beds, norm 1.5 per 1,000), a 5-minute circle of
    toilets and green space and a 10-minute one of clinics and parks; the map of one district."""
    from walkcover.presentation.maps import district_map
    from walkcover.presentation.web_map import save_map

    tmp = tmp_path_factory.mktemp("map-access")
    path = _standards_file(tmp, tiers=True)
    a = wc.assess(
        "helsinki-sample",
        standards=path,
        standard=[SID, "toilet", "green_space", "park"],
        cache_dir=sample_cache,
    ).assessment
    page = tmp / "map.html"
    save_map(district_map(a, DISTRICT), page)
    return a, page


def homes_data(page: Path) -> dict:
    blobs = re.findall(
        r"new L\.WalkcoverHomes\((\{.*?\})\);\n", page.read_text(encoding="utf-8"), flags=re.DOTALL
    )
    assert len(blobs) == 1
    return json.loads(blobs[0])


def expected_access_classes(values: np.ndarray, norm: float) -> list[int]:
    """By hand: 0 at or above the norm, 1 below it, 2 below half of it, 3 none in reach (0),
    4 not measured (NaN)."""
    out = []
    for v in values:
        if v != v:
            out.append(4)
        elif v <= 0:
            out.append(3)
        elif v >= norm:
            out.append(0)
        elif v >= norm / 2:
            out.append(1)
        else:
            out.append(2)
    return out


def test_the_homes_carry_access_and_life_circle_classes_compactly(access_run):
    """One byte per home and view: its class against the norm (as the summary counts "below the
    norm": access < norm) and its life circle's state; no per-home objects."""
    a, page = access_run
    demand, _ = a.district_demand(DISTRICT)
    n = len(demand)
    data = homes_data(page)
    kinds = [v["kind"] for v in data["views"]]
    assert kinds == ["access", "tier", "tier"]
    access = data["views"][0]
    assert data["standards"][access["of"]]["name"].endswith("Community clinic")
    codes = list(base64.b64decode(access["codes"]))
    assert len(codes) == n
    want = expected_access_classes(demand[f"{SID}_access"].to_numpy(float), NORM)
    assert codes == want
    assert {0, 1, 2} & set(codes) and len(set(codes)) >= 2  # more than one class is drawn
    assert access["colours"] == list(ACCESS_COLOURS)
    assert access["labels"][0] == f"at or above the norm (≥ {NORM:g}) · 达到标准"
    # the 5-minute circle: complete, or how many of its two facilities are missing
    five = data["views"][1]
    complete = pd.array(demand["life_circle_5min_complete"], dtype="boolean")
    found = pd.array(demand["life_circle_5min_found"], dtype="Int64")
    want = [
        4 if c is pd.NA else 0 if c else min(2 - int(f), 3)
        for c, f in zip(complete, found, strict=True)
    ]
    assert list(base64.b64decode(five["codes"])) == want and {0, 1} <= set(want)
    assert five["colours"] == list(LIFE_CIRCLE_COLOURS)
    # compact: the views cost a few bytes a home, in strings and arrays only
    per_home = len(json.dumps(data["views"], ensure_ascii=False)) / n
    assert per_home < 40, per_home
    for v in data["views"]:
        assert all(isinstance(x, (str, int, list, dict)) for x in v.values())
    # the standard with choice carries its 2nd, 3rd nearest and count as lookups
    clinic = data["standards"][access["of"]]
    assert set(clinic["choice"]) == {"second", "third", "within"}
    assert all(set(c) == {"table", "index"} for c in clinic["choice"].values())


def legend_text(page) -> str:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('#walkcover-legend [data-standard]'))"
        ".filter(e => !e.hidden).map(e => e.innerText).join('\\n')"
    )


def classes_shown(page, points: list[tuple[float, float]], colours) -> list[int]:
    """The class painted at each point (lon, lat): the canvas pixel there, matched to the
    nearest of `colours` (homes are drawn at 85% opacity)."""
    pixels = canvas_pixels(page, points)
    ref = [np.array(rgb(c)) for c in colours]
    return [int(np.argmin([np.abs(c - np.array(p)).sum() for c in ref])) for p in pixels]


def pick(page, label: str) -> None:
    page.locator(".leaflet-control-layers label", has_text=label).first.click()
    page.wait_for_timeout(300)


def test_access_view_paints_the_homes_against_the_norm_with_its_legend(access_run, browser):
    a, page_path = access_run
    demand, _ = a.district_demand(DISTRICT)
    row = a.summary[(a.summary["district_id"] == DISTRICT) & (a.summary["standard"] == SID)].iloc[0]
    page, errors, outside = open_offline(browser, page_path)
    try:
        pick(page, ACCESS_LABEL)
        text = " ".join(legend_text(page).split())
        assert f"Norm · 标准: {NORM:g} beds per 1,000 residents" in text and "(test norm)" in text
        assert f"mean 平均 {figure_text(row['access_mean_per_1000'])}" in text
        assert f"lowest 10% 最低10% {figure_text(row['access_p10_per_1000'])}" in text
        below = pct_text(row["residents_below_norm_pct"], unit="%")
        assert f"Residents below the norm · 低于标准居民: {below}" in text
        n_default, n_reach = row["facilities_default_capacity"], row["facilities_in_reach"]
        assert n_default == n_reach > 0  # the sample tags no clinic's beds
        assert (
            f"⚠ {count_text(n_default)} of {count_text(n_reach)} facilities use the default of "
            f"{DEFAULT_BEDS:g} beds (five beds (test))" in text
        )
        for label in ("at or above the norm (≥ 1.5)", "below half the norm (< 0.75)"):
            assert label in text
        # the bands give way to the view's classes
        assert page.evaluate("() => document.querySelector('[data-bands]').hidden")
        # the largest homes are painted in their class
        big = [int(i) for i in np.argsort(-demand.geometry.area.to_numpy())[:12]]
        inside = demand.geometry.iloc[big].representative_point().to_crs(4326)
        shown = classes_shown(page, list(zip(inside.x, inside.y)), ACCESS_COLOURS)
        want = expected_access_classes(demand[f"{SID}_access"].to_numpy(float)[big], NORM)
        assert shown == want
        # the clinics are on the map in this view too, their popups with the beds flagged
        popup = leaflet_eval(
            page,
            "const l = feature(p => p.capacity !== undefined); if (!l || !l._map) return null;"
            " l.fire('click', {latlng: l.getLatLng()}, true);"
            " return document.querySelector('.leaflet-popup-content').innerText;",
        )
        assert popup is not None
        assert f"capacity · 容量: {DEFAULT_BEDS:g} beds" in popup
        assert "DEFAULT: no capacity tagged" in popup
        # back to the standard: bands again
        pick(page, "Community clinic (1,000 m)")
        assert not page.evaluate("() => document.querySelector('[data-bands]').hidden")
        assert errors == [] and outside == []
    finally:
        page.close()


def home_popup(page, f: int, lon: float, lat: float) -> str:
    return leaflet_eval(
        page,
        f"const h = walkcover.homes; h._hit = {f}; h.openPopup(L.latLng({lat}, {lon}));"
        " return document.querySelector('.leaflet-popup-content').innerText;",
    )


def test_home_popup_gives_choice_and_capacity(access_run, browser):
    """The popup of a home under the clinics gives its 2nd and 3rd nearest clinic within the
    standard (whole metres, "none" where there is none), how many are within, and its beds per
    1,000 residents, as `figures` writes them."""
    a, page_path = access_run
    demand, _ = a.district_demand(DISTRICT)
    within = pd.array(demand[f"{SID}_n_within"], dtype="Int64")
    two = int(np.flatnonzero(within.fillna(0).to_numpy(int) >= 3)[0])
    one = (
        int(np.flatnonzero(within.fillna(-1).to_numpy(int) == 1)[0])
        if (within == 1).any()
        else None
    )
    page, errors, _ = open_offline(browser, page_path)
    try:
        pick(page, "Community clinic (1,000 m)")
        at = demand.geometry.iloc[[two]].representative_point().to_crs(4326).iloc[0]
        text = home_popup(page, two, at.x, at.y)
        # each row of the table: its swatch (■, transparent where none), its label, its value
        lines = [" ".join(line.split()).removeprefix("■ ") for line in text.splitlines()]
        second = f"{count_text(demand[f'{SID}_nearest2_m'].iloc[two])} m"
        third = f"{count_text(demand[f'{SID}_nearest3_m'].iloc[two])} m"
        assert f"2nd nearest · 第二近 {second}" in lines
        assert f"3rd nearest · 第三近 {third}" in lines
        assert any(
            line.startswith("facilities within reach") and line.endswith(f" {within[two]}")
            for line in lines
        ), lines
        access = figure_text(demand[f"{SID}_access"].iloc[two])
        assert f"beds per 1,000 residents · 每千人容量 {access}" in lines
        if one is not None:
            at = demand.geometry.iloc[[one]].representative_point().to_crs(4326).iloc[0]
            text = " ".join(home_popup(page, one, at.x, at.y).split())
            assert "2nd nearest · 第二近 none within reach" in text
        assert errors == []
    finally:
        page.close()


def test_life_circle_view_paints_completeness_with_its_legend(access_run, browser):
    a, page_path = access_run
    demand, _ = a.district_demand(DISTRICT)
    rows = a.district_rows
    row = rows[
        (rows["district_id"] == DISTRICT) & (rows["indicator"] == "life_circle_5min_complete_pct")
    ].iloc[0]
    page, errors, _ = open_offline(browser, page_path)
    try:
        pick(page, TIER_LABEL)
        text = " ".join(legend_text(page).split())
        assert f"生活圈齐全居民: {pct_text(row['value'], unit='%')}" in text
        assert row["note"] in text  # the facility most often missing
        for label in ("complete · 齐全", "1 missing · 缺1项", "not measured · 未计算"):
            assert label in text
        # a home that lacks one of the two: its popup says which
        lacks = np.flatnonzero(
            pd.array(demand["life_circle_5min_found"], dtype="Int64").fillna(-1).to_numpy(int) == 1
        )
        f = int(lacks[0])
        missing = (
            "公厕 Public toilet"
            if not demand["toilet_covered"].iloc[f]
            else "绿地（见绿） Green space"
        )
        at = demand.geometry.iloc[[f]].representative_point().to_crs(4326).iloc[0]
        popup = " ".join(home_popup(page, f, at.x, at.y).split())
        assert "missing 1 of 2 · 缺1项（共2项）" in popup and missing in popup
        big = [int(i) for i in np.argsort(-demand.geometry.area.to_numpy())[:12]]
        inside = demand.geometry.iloc[big].representative_point().to_crs(4326)
        shown = classes_shown(page, list(zip(inside.x, inside.y)), LIFE_CIRCLE_COLOURS)
        done = pd.array(demand["life_circle_5min_complete"], dtype="boolean")
        found = pd.array(demand["life_circle_5min_found"], dtype="Int64")
        assert shown == [0 if done[i] else min(2 - int(found[i]), 3) for i in big]
        assert errors == []
    finally:
        page.close()


def test_no_facility_in_the_data_carries_no_choice_or_capacity(sample_results):
    """The Zhengzhou plan measures choice and places for kindergartens, of which the sample maps
    none: no data (as the kindergartens' layer says), never "none within reach" or 0 places, so
    the map carries no capacity view and no choice for them, and nothing more than without."""
    from walkcover.presentation.maps import _homes_data, _views

    a = sample_results.assessment
    kg = next(s for s in a.standards if s.id == "kindergarten")
    assert kg.choice and kg.access is not None
    demand, _ = a.district_demand(DISTRICT)
    summary = a.summary[a.summary["district_id"] == DISTRICT].set_index("standard")
    assert summary.loc["kindergarten", "facilities_in_reach"] == 0
    assert _views(a, demand, list(a.standards), summary) == []
    data = _homes_data(a, demand, list(a.standards), initial=0, proposed=None, after=None,
                       views=[], summary=summary)  # fmt: skip
    assert all("choice" not in s and "access" not in s for s in data["standards"])
    assert "views" not in data and "second" not in data["words"]
    # the same homes with a facility in reach (no summary to say otherwise) carry them
    data = _homes_data(a, demand, list(a.standards), initial=0, proposed=None, after=None)
    k = [s.id for s in a.standards].index("kindergarten")
    assert {"choice", "access"} <= set(data["standards"][k]) and "second" in data["words"]


def _hostile_standards(tmp: Path) -> Path:
    """The Zhengzhou toilets with choice and an access rule whose words are hostile."""
    bundled = Path(wc.__file__).resolve().parents[2] / "configs" / "standards"
    data = yaml.safe_load((bundled / "zhengzhou-2018.yaml").read_text(encoding="utf-8"))
    data["id"] = "hostile-access"
    data["standards"]["toilet"].update(
        choice=True,
        access={
            "decay": {"kind": "gaussian", "sigma_m": 200},
            "default_capacity": 4,
            "capacity_unit": "seats",
            "capacity_unit_zh": '<img src=x onerror="window.__pwned=5">',
            "capacity_basis": SCRIPT_NAME,
            "norm_per_1000": 2,
            "norm_basis": "<script>window.__pwned=6</script>${document.title+=6}",
        },
    )
    path = tmp / "hostile-access.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_hostile_names_and_bases_stay_inert(tmp_path, browser):
    cfg, _ = hostile_city(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        ["run", "--city", str(cfg), "--standards", str(_hostile_standards(tmp_path)),
         "--standard", "toilet", "--district", "d1", "--out", str(out), "--no-cache"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    page, errors, outside = open_offline(browser, out / "handmade" / "d1" / "map.html")
    try:
        before = page.evaluate("() => document.title")
        pick(page, "seats per 1,000 residents")
        text = legend_text(page)
        assert SCRIPT_NAME in text and "<script>window.__pwned=6</script>" in text
        assert page.evaluate("() => document.querySelectorAll('#walkcover-legend img').length") == 0
        for name in (SCRIPT_NAME, BACKSLASH_NAME):
            shown = leaflet_eval(
                page,
                f"const l = feature(p => p.name === {name!r}); if (!l || !l._map) return null;"
                " l.fire('click', {latlng: l.getLatLng()}, true);"
                " const p = document.querySelector('.leaflet-popup-content');"
                " return {text: p.innerText, imgs: p.querySelectorAll('img').length};",
            )
            assert shown is not None and name in shown["text"] and shown["imgs"] == 0
            assert "DEFAULT" in shown["text"]
        # a home's popup in the view, with the hostile unit as text
        popup = leaflet_eval(
            page,
            "const h = walkcover.homes; h._hit = 0; h.openPopup(m.getCenter());"
            " const p = document.querySelector('.leaflet-popup-content');"
            " return {text: p.innerText, imgs: p.querySelectorAll('img').length};",
        )
        assert 'onerror="window.__pwned=5"' in popup["text"] and popup["imgs"] == 0
        page.wait_for_timeout(300)
        state = page.evaluate("() => ({title: document.title, pwned: window.__pwned || null})")
        assert state == {"title": before, "pwned": None}
        assert errors == [] and outside == []
    finally:
        page.close()
