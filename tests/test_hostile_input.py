"""Anyone's data: names that try to run as script, break a page or a spreadsheet, or fool the
terminal; shared configs that try to exhaust memory or silently replace a standard (issue 11)."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import leaflet_eval, open_offline
from hostile import (
    BACKSLASH_NAME,
    DISTRICT_NAME,
    DISTRICT_NAME_EN,
    FORMULA_NAME,
    SCRIPT_NAME,
    hostile_city,
)
from walkcover._errors import ConfigError
from walkcover._escape import csv_cell, terminal
from walkcover.cli import app
from walkcover.config.standards import load_standards

runner = CliRunner()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    cfg, _ = hostile_city(base)
    out = base / "out"
    res = runner.invoke(
        app,
        [
            "run",
            "--city",
            str(cfg),
            "--standard",
            "toilet",
            "--out",
            str(out),
            "--no-cache",
        ],
        catch_exceptions=False,
    )
    return res, cfg, out / "handmade"


def test_hostile_run_completes_and_prints_names_as_they_are(hostile_run):
    res, _, _ = hostile_run
    assert res.exit_code == 0, res.output
    text = res.output
    # Rich markup is not read from names: "[/b]" did not crash, "[north]" did not vanish
    assert DISTRICT_NAME in " ".join(text.split())
    # an ANSI escape in a name is shown, not obeyed
    assert "\x1b" not in text and "\\x1b[31mred" in text


def test_csv_cells_that_would_run_as_formulas_are_neutralised(hostile_run):
    _, _, city = hostile_run
    raw = (city / "summary.csv").read_text(encoding="utf-8-sig")
    assert f'"\'{FORMULA_NAME.replace(chr(34), chr(34) * 2)}"' in raw
    summary = pd.read_csv(city / "summary.csv", encoding="utf-8-sig")
    names = set(summary["district_name"])
    assert "'" + FORMULA_NAME in names and FORMULA_NAME not in names
    assert DISTRICT_NAME in names  # not a formula: left exactly as it is
    # numbers, also negative ones, stay numbers
    assert summary["residents"].dtype.kind == "f"
    assert csv_cell("-12.5") == "-12.5" and csv_cell("-1+2") == "'-1+2"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)" and csv_cell("\tx") == "'\tx"


def test_workbook_keeps_formula_like_names_as_text(hostile_run):
    """``summary.xlsx``: the district named ``=HYPERLINK(…)`` is a text cell holding exactly that
    name (Excel shows it, never runs it); numbers stay numbers."""
    import zipfile

    import openpyxl

    _, _, city = hostile_run
    wb = openpyxl.load_workbook(city / "summary.xlsx")
    ws = wb["summary"]
    header = [c.value for c in ws[1]]
    names = [row[header.index("district_name")] for row in ws.iter_rows(min_row=2)]
    hit = [c for c in names if c.value == FORMULA_NAME]
    assert hit and all(c.data_type == "s" for c in hit)
    assert all(c.data_type == "s" for c in names)
    # a control character cannot be stored in a sheet: it is shown, as in the terminal
    names_en = [row[header.index("district_name_en")].value for row in ws.iter_rows(min_row=2)]
    assert any("\\x1b[31mred" in str(v) for v in names_en)
    residents = [row[header.index("residents")].value for row in ws.iter_rows(min_row=2)]
    assert all(isinstance(v, int | float) for v in residents)
    # the header bold and frozen, percentages to one decimal
    assert ws.freeze_panes == "A2" and all(c.font.b for c in ws[1])
    pct = [
        row[j]
        for row in ws.iter_rows(min_row=2)
        for j, name in enumerate(header)
        if str(name).endswith("_pct") and row[j].value is not None
    ]
    assert pct and all(c.number_format == "0.0" for c in pct)
    # columns as wide as their longest text (up to 48 characters)
    from openpyxl.utils import get_column_letter

    width = ws.column_dimensions[get_column_letter(header.index("district_name") + 1)].width
    assert width >= min(max(len(str(c.value)) for c in names), 46)
    with zipfile.ZipFile(city / "summary.xlsx") as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet  # no formula anywhere in the file


def _state(page) -> dict:
    return page.evaluate(
        "() => ({title: document.title, pwned: window.__pwned || null,"
        " leaflet: document.querySelectorAll('.leaflet-container').length})"
    )


def _find_layer_js(prop: str, value: str) -> str:
    """The feature layer whose property `prop` is `value` (for `leaflet_eval`)."""
    return f"feature(p => p[{prop!r}] === {value!r})"


@pytest.mark.parametrize("which", ["d1/map.html", "map.html"])
def test_maps_run_no_script_from_names_and_still_draw(hostile_run, browser, which):
    _, _, city = hostile_run
    page, errors, outside = open_offline(browser, city / which)
    try:
        before = _state(page)
        assert before["leaflet"] == 1
        assert before["pwned"] is None
        assert errors == [] and outside == []  # no syntax error from "\u", no CSP violation
        html = (city / which).read_text(encoding="utf-8")
        assert (
            "Content-Security-Policy" in html
            and "'unsafe-inline'" not in html.split("script-src")[1][:200]
        )
        # no data text in a template literal: folium's Tooltip/Popup are not used for data
        assert "bindTooltip(`" not in html and "$(`" not in html
        if which == "d1/map.html":
            # the popup of each hostile facility shows its name as text, runs nothing
            for name in (SCRIPT_NAME, BACKSLASH_NAME):
                shown = leaflet_eval(
                    page,
                    f"const l = {_find_layer_js('name', name)}; l.fire('click', {{latlng: l.getLatLng()}}, true);"
                    " const p = document.querySelector('.leaflet-popup-content');"
                    " return {text: p.innerText, imgs: p.querySelectorAll('img').length};",
                )
                assert name in shown["text"] and shown["imgs"] == 0
                assert "homes for which it is the nearest" in shown["text"]
        else:
            label = f"{DISTRICT_NAME} / {DISTRICT_NAME_EN}"
            shown = leaflet_eval(
                page,
                f"const l = {_find_layer_js('label', label)};"
                " l.fire('mouseover', {latlng: l.getBounds().getCenter()}, true);"
                " const t = document.querySelector('.leaflet-tooltip');"
                " return {text: t.innerText, scripts: t.querySelectorAll('script').length};",
            )
            assert DISTRICT_NAME in shown["text"] and "<script>" in shown["text"]
            assert shown["scripts"] == 0
            # the district without residents has no figure, and says so
            empty = leaflet_eval(
                page,
                f"const l = {_find_layer_js('label', FORMULA_NAME + ' / Empty')};"
                " l.fire('mouseover', {latlng: l.getBounds().getCenter()}, true);"
                " const t = document.querySelectorAll('.leaflet-tooltip'); return t[t.length - 1].innerText;",
            )
            assert "no residents in the data" in empty
        page.wait_for_timeout(300)
        after = _state(page)
        assert after["title"] == before["title"] and after["pwned"] is None
        assert errors == []
    finally:
        page.close()


def test_layer_names_from_a_standards_file_are_text(tmp_path, browser):
    """A shared standards file whose standard name carries a script: shown, not run."""
    src = load_standards().standards["toilet"]
    text = (
        "id: hostile\ntitle: t\ndocument: d\nissued: '2018-01-01'\nstandards:\n  toilet:\n"
        f"    name: {json.dumps(SCRIPT_NAME)}\n    name_zh: 公厕\n    threshold_m: 500\n"
        "    selectors: [{amenity: toilets}]\n    target_pct: 100\n"
        "    citation: {section: s, text: '<img src=x onerror=\"window.__pwned=3\">'}\n"
    )
    (tmp_path / "hostile.yaml").write_text(text, encoding="utf-8")
    rules = load_standards(tmp_path / "hostile.yaml")
    assert rules.standards["toilet"].name == SCRIPT_NAME and src.id == "toilet"
    cfg, _ = hostile_city(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--city", str(cfg), "--standards", str(tmp_path / "hostile.yaml"),
                              "--district", "d1", "--out", str(out), "--no-cache"])  # fmt: skip
    assert res.exit_code == 0, res.output
    page, errors, _ = open_offline(browser, out / "handmade" / "d1" / "map.html")
    try:
        labels = " ".join(page.locator(".leaflet-control-layers label").all_inner_texts())
        assert SCRIPT_NAME in labels
        page.wait_for_timeout(300)
        assert _state(page)["pwned"] is None and errors == []
    finally:
        page.close()


def test_yaml_alias_bomb_duplicate_ids_and_folders_are_refused(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    bomb.write_text("\n".join(lines) + "\n", encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_standards(bomb)
    assert time.perf_counter() - t0 < 1.0
    dup = tmp_path / "dup.yaml"
    base = (
        load_standards.__globals__["_paths"].bundle_root() / "configs/standards/zhengzhou-2018.yaml"
    ).read_text(encoding="utf-8")
    assert base.count("\nstandards:\n") == 1
    dup.write_text(
        base.replace(
            "\nstandards:\n", "\nstandards:\n  toilet:\n    name: Toilet\n    threshold_m: 100\n"
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"duplicate key 'toilet' \(first at line \d+\)"):
        load_standards(dup)
    with pytest.raises(ConfigError, match="is a folder; pass a YAML file"):
        load_standards(tmp_path)
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 1_100_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="MB; a standards file is a few kilobytes"):
        load_standards(big)


def test_terminal_escaping_shows_controls():
    assert terminal("a\x1b[2Jb\u202ec\nd\te") == "a\\x1b[2Jb\\u202ec\nd\te"


def test_report_and_explain_print_hostile_names_as_text(hostile_run, tmp_path):
    import shutil
    import subprocess

    _, cfg, city = hostile_run
    out = tmp_path / "out"
    shutil.copytree(city, out / "handmade")
    res = runner.invoke(
        app, ["report", "--city", str(cfg), "--district", "d1", "--out", str(out), "--no-cache"]
    )
    assert res.exit_code == 0, res.output
    page = (out / "handmade" / "d1" / "report.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "script-src" not in page
    assert "<script>window.__pwned" not in page and "&lt;script&gt;window.__pwned=2" in page
    text = subprocess.run(["pdftotext", str(out / "handmade" / "d1" / "report.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "$\\frac{1}{" in text  # printed, not read as mathtext
    res = runner.invoke(
        app,
        ["explain", "--city", str(cfg), "--district", "d1", "--standard", "toilet", "--no-cache"],
    )
    assert res.exit_code == 0, res.output
    first = " ".join(res.output.split())
    assert first.startswith(f"{DISTRICT_NAME} / ") and "[bold]" not in first and "[/]" not in first
    assert "\\x1b[31mred (d1) — Public toilet 公厕 Standard:" in first
    assert "\x1b" not in res.output
