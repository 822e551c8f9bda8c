"""The one formatter (`walkcover.presentation.figures`): each kind of figure has one precision in
every output, a non-zero amount never reads as zero, and the workbook's number formats say what
the text says. Expected texts are worked out by hand."""

from __future__ import annotations

import math
import re

import pytest

from walkcover.presentation.figures import (
    EMPTY,
    NO_DATA,
    NO_DATA_EN,
    NO_DATA_ZH,
    amount_text,
    coordinate_text,
    decimals_for,
    distance_text,
    distances_text,
    length_text,
    metres_text,
    pct_text,
    setting_text,
    sheet_format,
    target_text,
    value_text,
)


@pytest.mark.parametrize(
    ("value", "decimals", "want"),
    [
        (0.0005, 2, "<0.01"),  # the NW quadrant's land: not zero, so never "0.00"
        (0.005, 2, "<0.01"),  # half a step rounds (half to even) to zero: still not zero
        (0.0051, 2, "0.01"),
        (0.0, 2, "0.00"),  # a zero is a figure
        (-0.0001, 1, ">-0.1"),
        (1e-12, 2, "0.00"),  # zero as stored (nine decimals, as the CSV has it)
        (21.75330, 1, "21.8"),
        (1234.56, 1, "1,234.6"),
        (98.45, 1, "98.4"),  # half to even, as every figure
        (math.nan, 1, EMPTY),
        (None, 2, EMPTY),
    ],
)
def test_amount_text(value, decimals, want):
    assert amount_text(value, decimals=decimals) == want


def test_amount_text_keeps_its_unit_on_a_small_amount():
    assert amount_text(0.0005, decimals=2, unit=" km²") == "<0.01 km²"
    assert amount_text(2.274, unit=" per km²") == "2.3 per km²"


@pytest.mark.parametrize(
    ("value", "unit", "want"),
    [
        (10.0, "count", "10"),  # never 10.00
        (1641.5, "count", "1,642"),
        (20.337453278, "%", "20.3"),
        (0.00050616, "km²", "<0.01"),
        (0.43975, "km²", "0.44"),
        (2.274014248, "per km²", "2.3"),  # a density: one decimal, as the workbook
        (66.989259102, "m² per resident", "67.0"),
        (math.nan, "per km²", EMPTY),
    ],
)
def test_value_text_by_unit(value, unit, want):
    assert value_text(value, unit=unit) == want


def test_decimals_by_unit():
    assert [decimals_for(u) for u in ("count", "%", "km²", "per km²", "")] == [0, 1, 2, 1, 1]


def test_a_target_is_a_percentage_like_every_other():
    assert target_text(100) == "100.0"
    assert target_text(100, unit="%") == "100.0%"
    assert target_text(92.5, unit="%") == "92.5%"
    assert target_text(math.nan, unit="%") == EMPTY


def test_lengths_and_coordinates():
    assert length_text(1000) == "1,000 m"
    assert length_text(math.nan) == EMPTY
    assert coordinate_text(24.9489637) == "24.948964"
    assert coordinate_text(None) == EMPTY


def test_no_data_is_said_in_both_languages():
    assert NO_DATA == f"{NO_DATA_EN} · {NO_DATA_ZH}" == "no data · 无数据"


def _shown_by(fmt: str, value: float) -> str:
    """What an Excel number format of `sheet_format`'s kind shows of `value`: the first section
    whose condition holds, else the last (enough for the formats this module makes)."""
    sections = fmt.split(";")
    for section in sections[:-1]:
        m = re.fullmatch(r"\[(=|<=)([0-9.]+)\](.*)", section)
        assert m, section
        op, limit, shown = m.group(1), float(m.group(2)), m.group(3)
        if (value == limit) if op == "=" else (value <= limit):
            return (
                shown.strip('"') if shown.startswith('"') else f"{value:,.{shown.count('0') - 1}f}"
            )
    shown = sections[-1]
    return f"{value:,.{len(shown.split('.')[1]) if '.' in shown else 0}f}"


@pytest.mark.parametrize("decimals", [1, 2])
@pytest.mark.parametrize(
    "value", [0.0, 0.0004, 0.0005, 0.004, 0.005, 0.04, 0.05, 0.051, 0.3, 1234.5]
)
def test_the_workbook_shows_what_the_text_says(decimals, value):
    """A small amount's number format agrees with `amount_text` on which side of "<0.01" a value
    falls (away from exact halves, where Excel rounds half away from zero)."""
    fmt = sheet_format(decimals, small=True)
    text = amount_text(value, decimals=decimals)
    if text.startswith("<"):
        assert _shown_by(fmt, value) == text
    else:
        assert not _shown_by(fmt, value).startswith("<")


def test_sheet_formats():
    assert sheet_format(0) == "#,##0"
    assert sheet_format(1, separators=False) == "0.0"
    assert sheet_format(2) == "#,##0.00"
    assert sheet_format(2, small=True) == '[=0]#,##0.00;[<=0.005]"<0.01";#,##0.00'


def test_a_page_keeps_no_data_on_one_line():
    """The report's cells: 无数据 in a span that does not wrap (WeasyPrint broke it "无数/据" in a
    narrow column), everything else escaped as it is."""
    from walkcover.presentation.report import figure_html

    assert str(figure_html(NO_DATA)) == 'no data · <span class="nobr">无数据</span>'
    assert str(figure_html("94.9")) == "94.9"
    assert str(figure_html("<b>")) == "&lt;b&gt;"
    assert str(figure_html(f"{NO_DATA} ✗")) == 'no data · <span class="nobr">无数据</span> ✗'


def test_distances_of_a_standard_in_several_files_are_each_said_once():
    """A standard by street context gives each distance (300/500/800 m), never its default
    alone; the same id in several cities' files gives every distance any of them has, once."""
    from types import SimpleNamespace

    toilet = SimpleNamespace(
        threshold_m=500.0,
        context_thresholds_m={"main_street": 300.0, "ordinary_road": 500.0, "riverside_park": 800},
    )
    plain = SimpleNamespace(threshold_m=500.0, context_thresholds_m={})
    other = SimpleNamespace(threshold_m=300.0, context_thresholds_m={})
    assert distance_text(toilet) == "300/500/800 m"
    assert distance_text(toilet, compact=True) == "300–800 m"
    assert distance_text(plain) == "500 m"
    assert distances_text([toilet, plain]) == "300/500/800 m"
    assert distances_text([plain, other]) == "300/500 m"
    assert distances_text([]) == EMPTY


def test_walk_text_says_why_there_is_no_walk():
    """A walk in whole metres; where there is none, the reason its status gives, never a
    number and never one reason for all."""
    from walkcover.engine import coverage as cov
    from walkcover.presentation.figures import STATUS_WORDS, walk_text

    assert walk_text(789.6, status=cov.STATUS_BEYOND) == "790 m"
    assert walk_text(1234.4, status=cov.STATUS_BEYOND, unit=False) == "1,234"
    reasons = [
        cov.STATUS_BEYOND_LIMIT,
        cov.STATUS_UNREACHABLE,
        cov.STATUS_UNSNAPPED,
        cov.STATUS_NO_FACILITIES,
    ]
    texts = [walk_text(float("nan"), status=s) for s in reasons]
    assert texts == [STATUS_WORDS[s] for s in reasons] and len(set(texts)) == 4
    assert texts[-1] == "no facility in the data · 数据中无设施"
    assert walk_text(None, status=None) == EMPTY and walk_text(float("nan"), status="?") == EMPTY


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (0.03, "<0.1%"),  # 0.03% of residents covered: some, never "0.0%" (none)
        (0.05, "<0.1%"),  # half a step rounds (half to even) to zero: still not zero
        (0.0500001, "0.1%"),
        (0.0, "0.0%"),  # none is none
        (1e-12, "0.0%"),  # zero as the CSV stores it (nine decimals)
        (99.97, ">99.9%"),  # not everyone: never "100.0%" beside a 100% target it misses
        (99.95, ">99.9%"),  # rounds half to even up to 100.0: still not whole
        (99.9499, "99.9%"),
        (100.0, "100.0%"),
        (99.99999999999997, "100.0%"),  # whole as the CSV stores it
        (94.95, "95.0%"),
        (float("nan"), EMPTY),
    ],
)
def test_a_share_never_reads_as_none_or_whole_where_it_is_not(value, want):
    assert pct_text(value, unit="%") == want
    assert pct_text(value) == want.removesuffix("%")
    assert pct_text(value, no_data=True, unit="%") == NO_DATA


def test_distances_and_settings_have_thousands_separators():
    """A distance reads as a length does (``1,000 m``), whether configured or measured; a setting
    keeps the digits its file gives (a norm of 0.75 is not "0.8")."""
    from types import SimpleNamespace

    far = SimpleNamespace(threshold_m=1000.0, context_thresholds_m={})
    ctx = SimpleNamespace(
        threshold_m=500.0, context_thresholds_m={"a": 300.0, "b": 1500.0, "c": 800}
    )
    assert distance_text(far) == "1,000 m" == length_text(1000.0)
    assert distance_text(ctx) == "300/800/1,500 m"
    assert distance_text(ctx, compact=True) == "300–1,500 m"
    assert metres_text(1000) == "1,000 m" and metres_text(12.5) == "12.5 m"
    assert metres_text(None) == EMPTY
    assert [setting_text(v) for v in (1000.0, 0.75, 12.5, 300, 0.1 + 0.2, 2_500_000)] == [
        "1,000",
        "0.75",
        "12.5",
        "300",
        "0.3",
        "2,500,000",
    ]
    assert setting_text(float("nan")) == EMPTY
