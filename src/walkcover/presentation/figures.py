"""The one place a figure is made into text for people: the terminal, maps, reports, index pages.

A planner quotes a number from one output and finds it in every other, so every output formats
through here, with one rule:

* **Round half to even at one decimal, never truncate.** The value is first taken to the nine
  decimals the CSV and workbook store (so a figure read back from ``summary.csv`` formats the same
  as the one in memory), then rounded on its decimal digits: 99.99999999999997 → ``100.0``,
  98.45 → ``98.4``, 98.55 → ``98.6``.
* **"no data" where a standard has no facility** in reach of the district: never 0%. The machine
  tables leave such a row's figures empty and give the reason (``no_data_reason``).
* The same words in Chinese and English (`NO_DATA`).

Machine tables (CSV, xlsx, GeoPackage, API) keep the full values; only what people read rounds.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

#: What a figure shows where a standard has no facility in the data: no data, not 0%.
NO_DATA = "no data · 无数据"
NO_DATA_EN = "no data"
NO_DATA_ZH = "无数据"
#: What a figure shows where there is nothing to measure (no residents): not a number.
EMPTY = "—"

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
    """A percentage for people: `NO_DATA` where the standard has no facility, else
    `figure_text` at one decimal."""
    if no_data:
        return NO_DATA
    return figure_text(value, decimals=1, unit=unit)


def count_text(value: Any) -> str:
    """A count of people or homes for people: whole, with thousands separators (``1,642``)."""
    x = round_figure(value, 0)
    if math.isnan(x):
        return EMPTY
    return f"{x:,.0f}"


def distance_text(std: Any, *, compact: bool = False) -> str:
    """A standard's walking distance for a label (``500 m``); a rule per street context gives
    each of its distances (the toilets: ``300/500/800 m``), never the default alone; `compact`
    (a terminal's narrow column) gives their range (``300–800 m``)."""
    values = sorted(set((getattr(std, "context_thresholds_m", None) or {}).values()))
    if not values:
        values = [std.threshold_m]
    if compact and len(values) > 2:
        values = [values[0], values[-1]]
        return f"{values[0]:g}–{values[1]:g} m"
    return "/".join(f"{v:g}" for v in values) + " m"


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
