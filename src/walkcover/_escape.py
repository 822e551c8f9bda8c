"""One escaping path for text from outside (OSM names, planners' files, shared configs).

Each function is right for one place text lands:

* `html_text`: HTML text and quoted attribute values (``&<>"'`` escaped).
* `js_value`: a value inside a ``<script>`` (JSON with ``<``, ``>``, ``&``, ``'`` and the two
  JavaScript line separators escaped, so neither ``</script>`` nor a quote can end it). Data reaches
  the maps' JavaScript only this way, as GeoJSON properties or JSON literals, and is put on the page
  with ``textContent``: never inside a template literal, where ``${…}`` and ``\\u`` are live.
* `csv_frame`: cells of a CSV or spreadsheet (OWASP's rule against formula injection).
* `terminal`: text printed to a terminal (control characters, ANSI escape sequences and bidirectional
  overrides made visible instead of obeyed). The command line's consoles also print with Rich
  markup off, so ``[/b]`` in a district name is text, not a tag.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pandas as pd

#: A spreadsheet treats a cell beginning with one of these as a formula (OWASP, CSV injection; line
#: feed as CR; the full-width forms, which spreadsheets in East Asian locales read as the ASCII ones).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: Spaces a spreadsheet may trim before a cell's text: ASCII, no-break and ideographic.
_LEADING_SPACE = " \u00a0\u3000"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# C0 and C1 controls (but newline and tab), DEL, and the Unicode bidirectional controls that can make
# a terminal line read differently from what it holds ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def html_text(value: object) -> str:
    """`value` as HTML text or a quoted attribute value."""
    return html.escape(str(value), quote=True)


def js_value(value: Any) -> str:
    """`value` as a JavaScript literal that is safe inside an HTML ``<script>`` element."""
    return (
        json.dumps(value, ensure_ascii=False, allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _formula_like(text: str) -> bool:
    """Whether `text`, after any leading ``'``, begins as a formula would (a plain number such as
    ``-12.5`` does not: it is data, and a spreadsheet reads it as a number)."""
    # spaces first do not stop it: a spreadsheet that trims cells on import (LibreOffice's
    # "trim spaces") reads `` =1+1`` as a formula
    core = text.lstrip("'").lstrip(_LEADING_SPACE)
    return core.startswith(FORMULA_START) and _NUMBER.fullmatch(core) is None


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula gets a leading ``'``; others as they are.

    Numbers written as text (``-12.5``) are left alone: they are data, and a spreadsheet reads them
    as numbers, not formulas. Text that already begins with ``'`` before a formula (``'=x``) gets
    one more, so that `csv_unescape_frame` gives back exactly what was written: the escape is undone
    only where it was made.
    """
    if isinstance(value, str) and _formula_like(value):
        return "'" + value
    return value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells (and column names) are safe to open in a spreadsheet.

    Every text cell is checked, whatever its column's dtype (object, string or categorical); values
    of a numeric dtype are numbers and are left as they are.
    """
    out = _cells_mapped(frame, csv_cell)
    out.columns = [csv_cell(str(c)) for c in out.columns]
    return out


def _csv_uncell(value: object) -> object:
    """`csv_cell` undone: the ``'`` before formula-like text taken off (only there)."""
    if isinstance(value, str) and value.startswith("'") and _formula_like(value[1:]):
        return value[1:]
    return value


def csv_unescape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` read back from a CSV `csv_frame` wrote: the ``'`` put before formula-like text
    taken off again (only there: a name that starts with ``'`` itself is left alone)."""
    out = _cells_mapped(frame, _csv_uncell)
    out.columns = [str(_csv_uncell(c)) for c in out.columns]
    return out


def _cells_mapped(frame: pd.DataFrame, cell: Any) -> pd.DataFrame:
    """A copy of `frame` with `cell` applied to its text columns' values; a column none of whose
    values it changes is not set again (most are not: a column set back costs more than reading it,
    a city's CSVs have dozens). A categorical column is mapped value by value too (its categories
    are text like any other), and comes back as an object column where a value changed."""
    out = frame.copy()
    for col in out.columns:
        dtype = out[col].dtype
        categorical = isinstance(dtype, pd.CategoricalDtype)
        if (
            pd.api.types.is_object_dtype(dtype)
            or categorical
            or pd.api.types.is_string_dtype(dtype)
        ):
            values = out[col].to_numpy(dtype=object)
            mapped = [cell(v) for v in values]
            if any(m is not v for m, v in zip(mapped, values, strict=True)):
                kept = object if categorical else dtype
                out[col] = pd.Series(mapped, index=out.index, dtype=kept, name=col)
    return out


def terminal(value: object) -> str:
    """`value` for a terminal: control characters shown as ``\\xNN`` or ``\\uNNNN``."""

    def show(m: re.Match[str]) -> str:
        c = ord(m.group(0))
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _CONTROL.sub(show, str(value))
