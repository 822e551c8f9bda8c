"""The one place a figure is made into text for people: the terminal, maps, reports, index pages.

A planner quotes a number from one output and finds it in every other, so every output formats
through here, with one rule:

* **Round half to even at one decimal, never truncate.** The value is first taken to the nine
  decimals the CSV and workbook store (so a figure read back from ``summary.csv`` formats the same
  as the one in memory), then rounded on its decimal digits: 99.99999999999997 → ``100.0``,
  98.45 → ``98.4``, 98.55 → ``98.6``.
* **A share that is not zero never reads as none, and one that is not whole never reads as
  complete** (`pct_text`): 0.03% of residents covered is ``<0.1%``, never ``0.0%``; 99.97% is
  ``>99.9%``, never ``100.0%`` beside a 100% target it misses. A planner reading ``0.0%`` sends
  nobody to look, and one reading ``100.0%`` ticks the standard off; the bound is true where a
  truncated ``99.9%`` would not be the CSV's figure rounded (the report once truncated where
  the CSV rounded: 99.9% beside 100.0). Exactly zero and exactly 100 (as stored, `STORED_DECIMALS`) read
  ``0.0%`` and ``100.0%``.
* **"no data" where a standard has no facility** in reach of the district: never 0%. The machine
  tables leave such a row's figures empty and give the reason (``no_data_reason``).
* The same words in Chinese and English (`NO_DATA`), with the reason said beside it, never in its
  place: a district or a city without a facility in reach (`NO_FACILITY_WHY`, the CSV's
  ``no_data_reason``), a home of a standard with no facility at all (`NO_FACILITY_IN_DATA`).
* **Distances and lengths with thousands separators** (``1,000 m``, ``300/500/1,000 m``): a
  measured length in whole metres (`length_text`), a configured distance as its file gives it
  (`distance_text`, `metres_text`).
* **Settings as their file gives them** (a norm, a capacity, a grid): no trailing zeros, with
  thousands separators (``1.5``, ``1,000``; `setting_text`), never rounded like a measured figure.
* **One precision per kind of figure**, whatever the output: percentages and targets one decimal
  (``100.0``, ``100.0%``), people and things whole (``1,642``), densities and per-capita amounts
  one decimal, areas in km² two (`UNIT_DECIMALS`, `decimals_for`). An amount that is not zero
  never reads as zero: 0.0005 km² is ``<0.01``, never ``0.00`` (`amount_text`; the workbook's
  number formats say the same, `sheet_format`).

Machine tables (CSV, xlsx, GeoPackage, API) keep the full values; only what people read rounds.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from walkcover.engine.coverage import (
    STATUS_BEYOND,
    STATUS_BEYOND_LIMIT,
    STATUS_COVERED,
    STATUS_NO_FACILITIES,
    STATUS_UNREACHABLE,
    STATUS_UNSNAPPED,
)
from walkcover.measures.indicators import NO_FACILITY_REASON

#: What a figure shows where a standard has no facility in reach: no data, not 0%.
NO_DATA_EN = "no data"
NO_DATA_ZH = "无数据"
NO_DATA = f"{NO_DATA_EN} · {NO_DATA_ZH}"
#: Why a district's or a city's figure is `NO_DATA`, said beside it (legends, labels, notes),
#: never in its place: no facility of the standard within reach of it (facilities elsewhere in
#: the city's data may be too far to serve it). The words of the summary's ``no_data_reason``.
NO_FACILITY_WHY = NO_FACILITY_REASON
#: Why a home has no walk to a standard (its ``STATUS_NO_FACILITIES``): the city's data has no
#: facility of the standard at all, so nothing to walk to. Not `NO_FACILITY_WHY`: a district can
#: have none in reach while the city has some.
NO_FACILITY_IN_DATA = "no facility in the data · 数据中无设施"
#: What a figure shows where there is nothing to measure (no residents): not a number.
EMPTY = "—"
#: A walk's status in words (en · zh), never the column value: the ``STATUS_*`` of
#: `walkcover.engine.coverage`, as a home's ``<standard>_status`` and a gap's
#: ``status_at_centre`` hold them.
STATUS_WORDS = {
    STATUS_COVERED: "within the standard · 达标",
    STATUS_BEYOND: "farther than the standard · 超出标准距离",
    STATUS_BEYOND_LIMIT: "beyond the search limit · 超出搜索范围",
    STATUS_UNREACHABLE: "no walk reaches it · 步行不可达",
    STATUS_UNSNAPPED: "too far from any street · 距街道过远",
    STATUS_NO_FACILITIES: NO_FACILITY_IN_DATA,
}

#: Decimals people read, by kind of figure (every output: terminal, reports, maps, workbook).
PERCENT_DECIMALS = 1
COUNT_DECIMALS = 0
AMOUNT_DECIMALS = 1
#: Decimals by a figure's unit (``district_indicators``' ``unit``); any other unit (densities
#: ``per km²``, ``m² per resident``, per 1,000 residents) has `AMOUNT_DECIMALS`.
UNIT_DECIMALS = {"count": COUNT_DECIMALS, "%": PERCENT_DECIMALS, "km²": 2}
#: Decimals of a longitude or latitude (about 0.1 m).
COORDINATE_DECIMALS = 6

#: Decimals the machine tables keep (`walkcover.presentation.tables.tidy_numbers`).
STORED_DECIMALS = 9


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas NA
    except (TypeError, ValueError):
        return True


def round_figure(value: Any, decimals: int = 1) -> float:
    """`value` rounded for people: half to even at `decimals`, on its stored decimal digits.

    NaN (and None) stay NaN; infinities stay as they are.
    """
    if _missing(value):
        return math.nan
    x = float(value)
    if not math.isfinite(x):
        return x
    stored = Decimal(repr(round(x, STORED_DECIMALS)))
    shown = stored.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    return float(shown) + 0.0  # -0.0 shows as 0.0


def round_figures(values: Any, decimals: int = 1) -> np.ndarray:
    """`round_figure` over an array (the figures of a map's districts or hexagons)."""
    arr = np.asarray(values, dtype=float)
    return np.array([round_figure(v, decimals) for v in arr.ravel()], dtype=float).reshape(
        arr.shape
    )


def figure_text(value: Any, *, decimals: int = 1, unit: str = "") -> str:
    """A figure as text (``94.9``, ``94.9%`` with ``unit="%"``); `EMPTY` when there is none."""
    x = round_figure(value, decimals)
    if math.isnan(x):
        return EMPTY
    return f"{x:.{decimals}f}{unit}"


def pct_text(value: Any, *, no_data: bool = False, unit: str = "") -> str:
    """A share in percent for people: one decimal (`figure_text`), and never none nor whole
    where it is not.

    Parameters
    ----------
    value
        The share in percent (0–100); NaN or None has none.
    no_data
        Whether the standard has no facility in reach: `NO_DATA`, whatever `value` is.
    unit
        Text after the number (``"%"`` where no column header says it), kept on a bound too.

    Returns
    -------
    str
        ``94.9%``; ``<0.1%`` for a share above zero that rounds to ``0.0``, ``>99.9%`` for one
        below 100 that rounds to ``100.0`` (both as stored, `STORED_DECIMALS`); `EMPTY` where
        there is no figure.

    Examples
    --------
    >>> pct_text(0.03, unit="%"), pct_text(99.97, unit="%"), pct_text(100.0, unit="%")
    ('<0.1%', '>99.9%', '100.0%')
    """
    if no_data:
        return NO_DATA
    x = round_figure(value, PERCENT_DECIMALS)
    if math.isfinite(x):
        stored = round(float(value), STORED_DECIMALS)
        step = 10.0**-PERCENT_DECIMALS
        if x == 0 and stored > 0:
            return f"<{step:.{PERCENT_DECIMALS}f}{unit}"
        if x == 100 and stored < 100:
            return f">{100 - step:.{PERCENT_DECIMALS}f}{unit}"
    return figure_text(value, decimals=PERCENT_DECIMALS, unit=unit)


def count_text(value: Any) -> str:
    """A count of people or homes for people: whole, with thousands separators (``1,642``)."""
    x = round_figure(value, 0)
    if math.isnan(x):
        return EMPTY
    return f"{x:,.0f}"


def decimals_for(unit: str) -> int:
    """The decimals people read of a figure in `unit`.

    Parameters
    ----------
    unit
        The figure's unit as the tables name it (``count``, ``%``, ``km²``, ``per km²`` …).

    Returns
    -------
    int
        `UNIT_DECIMALS` of the unit; `AMOUNT_DECIMALS` for any other (densities, per capita).
    """
    return UNIT_DECIMALS.get(str(unit).strip(), AMOUNT_DECIMALS)


def amount_text(value: Any, *, decimals: int = AMOUNT_DECIMALS, unit: str = "") -> str:
    """A measured amount for people (a density, an area, an amount per resident).

    Rounded like every figure (`round_figure`), with thousands separators; an amount that is
    not zero but rounds to zero says so (``<0.01``, ``>-0.01``) instead of reading as zero.

    Parameters
    ----------
    value
        The amount; NaN or None has no figure.
    decimals
        Decimals shown (`decimals_for` gives them by unit).
    unit
        Text after the number (``" km²"``), kept on a "less than" too.

    Returns
    -------
    str
        ``2.3``, ``1,234.5``, ``<0.01``; `EMPTY` where there is no figure.

    Examples
    --------
    >>> amount_text(0.0005, decimals=2)
    '<0.01'
    >>> amount_text(21.75330, unit=" per km²")
    '21.8 per km²'
    """
    x = round_figure(value, decimals)
    if math.isnan(x):
        return EMPTY
    if x == 0 and round(float(value), STORED_DECIMALS) != 0:  # as stored: as the CSV has it
        step = f"{10.0**-decimals:.{decimals}f}"
        return (f"<{step}" if float(value) > 0 else f">-{step}") + unit
    return f"{x:,.{decimals}f}{unit}"


def value_text(value: Any, *, unit: str) -> str:
    """A figure in `unit` for people: counts whole (`count_text`), percentages at one decimal
    (`figure_text`), any other amount by `decimals_for` (`amount_text`).

    Parameters
    ----------
    value
        The figure; NaN or None has none.
    unit
        Its unit as the tables name it (``count``, ``%``, ``km²``, ``per km²`` …); it is not
        written after the number (a table gives it in its own column).

    Returns
    -------
    str
        The figure as text; `EMPTY` where there is none.
    """
    unit = str(unit).strip()
    if unit == "count":
        return count_text(value)
    if unit == "%":
        return figure_text(value, decimals=PERCENT_DECIMALS)
    return amount_text(value, decimals=decimals_for(unit))


def target_text(value: Any, *, unit: str = "") -> str:
    """A target percentage for people, as every percentage: one decimal (``100.0``, or
    ``100.0%`` with ``unit="%"``), never ``100`` in one output and ``100%`` in another.

    Parameters
    ----------
    value
        The target in percent; NaN or None has none.
    unit
        Text after the number (``"%"`` where no column header says it).

    Returns
    -------
    str
        The target as text; `EMPTY` where there is none.
    """
    return figure_text(value, decimals=PERCENT_DECIMALS, unit=unit)


def length_text(metres: Any) -> str:
    """A length in whole metres for people, with its unit (``1,000 m``; a scale bar, a walk).

    Parameters
    ----------
    metres
        The length in metres; NaN or None has none.

    Returns
    -------
    str
        ``1,000 m``; `EMPTY` where there is none.
    """
    text = count_text(metres)
    return text if text == EMPTY else f"{text} m"


def walk_text(dist_m: Any, *, status: Any = None, unit: bool = True) -> str:
    """A walk for people, or why there is none (a gap's walk at its centre, a home's walk).

    Parameters
    ----------
    dist_m
        The walk in metres; NaN or None where there is none.
    status
        Why the walk is what it is (a ``STATUS_*`` of `walkcover.engine.coverage`, as
        ``status_at_centre`` or ``<standard>_status`` hold it); said where there is no walk.
    unit
        Whether the walk ends in ``m`` (``790 m``; without: ``790``, under a heading in metres).

    Returns
    -------
    str
        ``790 m`` (`count_text`); where there is no walk, its status in words (`STATUS_WORDS`:
        beyond the search limit, no walk reaches it, too far from any street, no facility in the
        data), or `EMPTY` where the status is none of them (a record written before it was kept).
    """
    if not _missing(dist_m):
        return length_text(dist_m) if unit else count_text(dist_m)
    return STATUS_WORDS.get(status, EMPTY) if isinstance(status, str) else EMPTY


def coordinate_text(degrees: Any) -> str:
    """A longitude or latitude for people: `COORDINATE_DECIMALS` decimals (about 0.1 m), no
    thousands separator (``24.948964``); `EMPTY` where there is none."""
    if _missing(degrees):
        return EMPTY
    return f"{float(degrees):.{COORDINATE_DECIMALS}f}"


def sheet_format(decimals: int, *, small: bool = False, separators: bool = True) -> str:
    """The workbook's number format that shows a cell as this module's text shows its figure.

    Parameters
    ----------
    decimals
        Decimals shown (``0``: ``#,##0``; ``2``: ``#,##0.00``).
    small
        Whether a non-zero amount that rounds to zero shows ``<0.01`` as `amount_text` has it
        (an Excel format with conditions: for amounts that are never negative, such as areas
        and densities).
    separators
        Whether thousands are separated (``#,##0.0``; percentages, never past 100 or so, have
        ``0.0``).

    Returns
    -------
    str
        An Excel number format.
    """
    shown = ("#,##0" if separators else "0") + (f".{'0' * decimals}" if decimals > 0 else "")
    if not small or decimals <= 0:
        return shown
    half = f"{0.5 * 10.0**-decimals:.{decimals + 1}f}"
    step = f"{10.0**-decimals:.{decimals}f}"
    return f'[=0]{shown};[<={half}]"<{step}";{shown}'


def setting_text(value: Any) -> str:
    """A configured setting for people (a norm, a default capacity, a grid's cell, a decay's
    σ), as its file gives it: no trailing zeros, thousands separated, never rounded like a
    measured figure (a norm of 1.25 is ``1.25``, of 1000 ``1,000``).

    Parameters
    ----------
    value
        The setting; NaN or None has none.

    Returns
    -------
    str
        ``1.25``, ``1,000``; `EMPTY` where there is none.

    Examples
    --------
    >>> setting_text(1000.0), setting_text(0.75), setting_text(12.5)
    ('1,000', '0.75', '12.5')
    """
    if _missing(value):
        return EMPTY
    x = float(value)
    if not math.isfinite(x):
        return str(x)
    exact = Decimal(repr(round(x, STORED_DECIMALS) + 0.0)).normalize()
    return f"{exact:,f}"


def metres_text(metres: Any) -> str:
    """A configured distance for people, with its unit (``1,000 m``, ``12.5 m``): `setting_text`
    (a measured length rounds to whole metres instead, `length_text`)."""
    text = setting_text(metres)
    return text if text == EMPTY else f"{text} m"


#: `count_text` in a browser (a JavaScript function expression of a number): whole, with the
#: same thousands separators (``1,642``), for the counts a map's script prints itself (the
#: facilities in a marker cluster).
COUNT_JS = "function (n) { return Math.round(n).toLocaleString('en-US'); }"


def distance_text(std: Any, *, compact: bool = False) -> str:
    """A standard's walking distance for a label (``500 m``, ``1,000 m``: `setting_text`); a
    rule per street context gives each of its distances (the toilets: ``300/500/800 m``), never
    the default alone; `compact` (a terminal's narrow column) gives their range (``300–800 m``)."""
    return distances_text([std], compact=compact)


def distances_text(standards: Any, *, compact: bool = False) -> str:
    """Every walking distance of `standards` (one standard as each city of a region's standards
    file has it) for a label, as `distance_text` says one standard's: ``300/500/800 m``."""
    found: set[float] = set()
    for std in standards:
        contexts = list((getattr(std, "context_thresholds_m", None) or {}).values())
        found.update(float(v) for v in (contexts or [std.threshold_m]))
    values = sorted(found)
    if not values:
        return EMPTY
    if compact and len(values) > 2:
        return f"{setting_text(values[0])}–{metres_text(values[-1])}"
    return "/".join(setting_text(v) for v in values) + " m"


def meets_text(meets: Any, *, no_data: bool = False) -> str:
    """Whether a figure meets its target: ``✓`` / ``✗``; `NO_DATA` or `EMPTY` when it cannot say."""
    if no_data:
        return NO_DATA
    if _missing(meets):
        return EMPTY
    return "✓" if bool(meets) else "✗"


#: Column names that notes may name, and the words a planner reads instead (maps and reports).
COLUMN_WORDS = {
    "area_covered_euclid_pct": "the official figure (straight-line circles on land)",
    "area_covered_pct": "the share of land within walking distance",
    "residents_covered_pct": "the share of residents within walking distance",
    "residents_covered_safe_pct": "the share of residents with a safe route",
    "residents_on_land_pct": "the share of residents on the official land",
    "detour_loss_pp": "the detour loss",
    "facilities_in_reach": "the facilities serving the district",
    "residents_choice_pct": "the share of residents with two or more facilities within reach",
    "access_mean_per_1000": "the capacity per 1,000 residents (E2SFCA)",
    "residents_below_norm_pct": "the share of residents below the per-capita norm",
}


def columns_in_words(text: str) -> str:
    """`text` with every column name of `COLUMN_WORDS` said in words ("the residents_covered_pct"
    → "the share of residents within walking distance"; a name in brackets just after the
    same words is dropped)."""
    import re

    for col, words in COLUMN_WORDS.items():
        text = re.sub(r"\s*\(" + re.escape(col) + r"\)", "", text)  # said in words just before
        text = re.sub(r"\b(?:the )?" + re.escape(col) + r"\b", words, text)
    return text
