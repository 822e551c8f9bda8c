"""``summary.xlsx`` for people: every header in English and Chinese (the cell keeps the CSV's
machine name), a frozen header row and an autofilter on every sheet, figures shown rounded by
number formats (the cells keep the exact values), and coverage coloured against its target
(issue #31, part 5)."""

from __future__ import annotations

import re

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from walkcover.measures.indicators import DISTRICT_COLUMNS, SUMMARY_COLUMNS
from walkcover.presentation.palette import BANDS
from walkcover.presentation.tables import HEADERS, header_label

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def city(sample_results, tmp_path_factory):
    out = tmp_path_factory.mktemp("workbook")
    sample_results.save(out)
    (city,) = [p for p in out.iterdir() if p.is_dir()]
    return city


@pytest.fixture(scope="module")
def book(city):
    return openpyxl.load_workbook(city / "summary.xlsx")


def _csv(city, sheet: str) -> pd.DataFrame:
    return pd.read_csv(city / f"{sheet}.csv", encoding="utf-8-sig", dtype=str)


def _shown_label(cell) -> str:
    """What Excel shows for a header cell: the literal of its format's text section."""
    m = re.fullmatch(r';;;"(.*)"', cell.number_format)
    assert m, (cell.value, cell.number_format)
    return m.group(1)


def test_every_column_of_the_city_tables_has_a_bilingual_header():
    for col in [*SUMMARY_COLUMNS, *DISTRICT_COLUMNS, "group", "districts"]:
        label = header_label(col)
        assert col in HEADERS and label != col
        english, chinese = label.split(" · ")
        assert english and CJK.search(chinese) and not CJK.search(english), col
    assert header_label("residents_covered_pct") == "residents covered % · 居民覆盖率（%）"


@pytest.mark.parametrize("sheet", ["summary", "district_indicators", "group_summary"])
def test_headers_frozen_filtered_and_bilingual(city, book, sheet):
    ws = book[sheet]
    header = [c.value for c in ws[1]]
    # the cells hold the CSV's machine names, as programs read them …
    assert header == list(_csv(city, sheet).columns)
    # … and show English and Chinese
    for cell in ws[1]:
        assert _shown_label(cell) == HEADERS[cell.value]
        assert cell.font.b and cell.alignment.wrap_text
    assert ws.freeze_panes == "A2"
    last = get_column_letter(len(header))
    assert ws.auto_filter.ref == f"A1:{last}{ws.max_row}"


def _column(ws, name: str) -> list:
    header = [c.value for c in ws[1]]
    j = header.index(name)
    return [row[j] for row in ws.iter_rows(min_row=2)]


def test_figures_show_rounded_and_keep_their_values(city, book):
    # areas and densities: a non-zero amount never shows as zero (as `figures.amount_text`)
    small_km2 = '[=0]#,##0.00;[<=0.005]"<0.01";#,##0.00'
    small_density = '[=0]#,##0.0;[<=0.05]"<0.1";#,##0.0'
    ws = book["summary"]
    summary = pd.read_parquet(city / "summary.parquet")
    residents = _column(ws, "residents")
    assert [c.value for c in residents] == pytest.approx(summary["residents"].tolist())
    assert any(c.value != round(c.value) for c in residents)  # 1641.5: kept, shown whole
    assert {c.number_format for c in residents} == {"#,##0"}
    for name in ("residents_covered_pct", "street_covered_pct_ordinary_road", "target_pct"):
        cells = [c for c in _column(ws, name) if c.value is not None]
        assert cells and {c.number_format for c in cells} == {"0.0"}, name
    for name in ("facilities", "demand_units", "residents_covered", "threshold_m"):
        cells = [c for c in _column(ws, name) if c.value is not None]
        assert cells and {c.number_format for c in cells} == {"#,##0"}, name
    # the NW quadrant's residential land, 0.0005 km²: "<0.01", never "0.00"
    land = [c for c in _column(ws, "land_km2") if c.value is not None]
    assert {c.number_format for c in land} == {small_km2}
    assert any(0 < c.value <= 0.005 for c in land)
    # district_indicators: each value as its unit asks
    ws = book["district_indicators"]
    units = [c.value for c in _column(ws, "unit")]
    values = _column(ws, "value")
    want = {"count": "#,##0", "km²": small_km2, "%": "0.0", "per km²": small_density}
    seen = set()
    for unit, cell in zip(units, values):
        if cell.value is not None and unit in want:
            assert cell.number_format == want[unit], (unit, cell.value)
            seen.add(unit)
    assert seen == set(want)
    # group_summary: the same rules
    ws = book["group_summary"]
    assert {c.number_format for c in _column(ws, "residents")} == {"#,##0"}
    assert {c.number_format for c in _column(ws, "residents_covered_pct") if c.value} == {"0.0"}


def _rules(ws) -> dict[str, list]:
    out: dict[str, list] = {}
    for cf in ws.conditional_formatting:
        out.setdefault(str(cf.sqref), []).extend(cf.rules)
    return out


def _fills(rules) -> set[str]:
    return {r.dxf.fill.bgColor.rgb[-6:].lower() for r in rules}


@pytest.mark.parametrize("sheet, judged", [("summary", "residents_covered_pct"),
                                           ("district_indicators", "value")])  # fmt: skip
def test_coverage_is_coloured_against_its_target(book, sheet, judged):
    ws = book[sheet]
    header = [c.value for c in ws[1]]
    rules = _rules(ws)
    flag = get_column_letter(header.index("meets_target") + 1)
    green, red = BANDS["within"][0].lstrip("#"), BANDS["beyond"][0].lstrip("#")
    for name in (judged, "meets_target"):
        col = get_column_letter(header.index(name) + 1)
        mine = rules[f"{col}2:{col}{ws.max_row}"]
        assert _fills(mine) == {green, red}
        formulas = {r.formula[0]: r.dxf.fill.bgColor.rgb[-6:].lower() for r in mine}
        assert formulas == {
            f"AND(ISLOGICAL(${flag}2),${flag}2)": green,
            f"AND(ISLOGICAL(${flag}2),NOT(${flag}2))": red,
        }


def test_group_coverage_is_coloured_against_its_target(book):
    ws = book["group_summary"]
    header = [c.value for c in ws[1]]
    v = get_column_letter(header.index("residents_covered_pct") + 1)
    t = get_column_letter(header.index("target_pct") + 1)
    (mine,) = [r for ref, r in _rules(ws).items() if ref == f"{v}2:{v}{ws.max_row}"]
    formulas = {r.formula[0] for r in mine}
    assert formulas == {
        f"AND(ISNUMBER(${v}2),ISNUMBER(${t}2),${v}2>=${t}2)",
        f"AND(ISNUMBER(${v}2),ISNUMBER(${t}2),${v}2<${t}2)",
    }
