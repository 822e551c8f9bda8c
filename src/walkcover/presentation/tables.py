"""The city's tables (CSV, Excel, Parquet) and the city-level files as one set.

* CSVs are written with the csv module's full quoting rules and RFC 4180 line ends (``\\r\\n``), so
  a CR, LF or quote in a name always stays inside its cell, and every formula-like text cell gets
  OWASP's leading ``'`` (`walkcover._escape.csv_frame`); numbers stay numbers.
* ``summary.xlsx`` is written from the tables in memory, text as text with no escape at all: any
  name comes back from the workbook exactly as it is.
* ``summary.parquet`` and ``district_indicators.parquet`` hold the same tables typed by an explicit
  schema (ids as text, numbers as numbers): what programs (the region merge, the merge of a city
  measured one district at a time) read, never the CSVs.
* The city-level files are one set (`city_set`): they are built in a staging folder, and once all
  are complete a manifest (``city_files.json``: each file's SHA-256 and size) is sealed into it;
  the files are then renamed into place and the manifest last. A kill before the seal leaves the
  previous set; after it, `recover_city_set` (run at the next start) completes the new one.
  `check_city_set` tells a reader whether the folder holds one complete set.

Rows of districts outside a run are read back only from a file of an earlier run
(`read_earlier_rows`): typed as the new table's columns, ids as text, text un-escaped.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from walkcover._atomic import write_atomic
from walkcover._escape import csv_frame, csv_unescape_frame
from walkcover.presentation.figures import (
    AMOUNT_DECIMALS,
    COUNT_DECIMALS,
    PERCENT_DECIMALS,
    decimals_for,
    sheet_format,
)
from walkcover.presentation.file_set import (
    FileSet,
    FileSetError,
    SetKind,
    check_set,
    file_set,
    recover_set,
    reseal_set,
)
from walkcover.presentation.record import (
    MAX_TABLE_BYTES,
    TEXT_COLUMNS,
    RunRecordError,
)

__all__ = [
    "CITY_FILES",
    "CITY_MANIFEST",
    "CitySet",
    "CitySetError",
    "CityTables",
    "check_city_set",
    "city_set",
    "merged_rows",
    "read_earlier_rows",
    "read_table_parquet",
    "recover_city_set",
    "reseal_city_set",
    "write_city_tables",
    "write_csv",
    "write_table_parquet",
    "write_workbook",
]

log = logging.getLogger(__name__)

#: The city-level files that make one set (those a run writes; ``index.html`` only where the
#: merge of a city measured one district at a time writes it).
CITY_FILES = (
    "summary.csv",
    "district_indicators.csv",
    "group_summary.csv",
    "summary.xlsx",
    "summary.parquet",
    "district_indicators.parquet",
    "map.html",
    "index.html",
)
#: Written last: which files make the set, with their SHA-256 and size.
CITY_MANIFEST = "city_files.json"
#: The folder a new set is built in, inside the city folder (`SetKind.prefix`).
SET_PREFIX = ".walkcover-cityset-"
#: Pages other commands also write into the city folder (``walkcover report``'s ``index.html``):
#: a page that is no set's own is not a mix.
_SHARED_PAGES = ("index.html",)

#: The date ``summary.xlsx`` says it was made: fixed, so the same tables give the same bytes.
WORKBOOK_DATE = datetime(2000, 1, 1, tzinfo=UTC)
#: The sheets of ``summary.xlsx``, one per table (those that exist).
WORKBOOK_SHEETS = ("summary", "district_indicators", "group_summary")

_FIX = "run `walkcover run --overwrite` with the same --out again"


#: The city folder does not hold one complete set of city files (mixed, partial or damaged).
CitySetError = FileSetError


# --- CSV ------------------------------------------------------------------------------------------


def tidy_numbers(table: pd.DataFrame) -> pd.DataFrame:
    """Floats rounded to 9 decimals and -0 written as 0: float noise (100.00000000000001,
    -1.4e-14) is not a figure anyone measured."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = out[col].round(9) + 0.0  # + 0.0 turns -0.0 into 0.0
    return out


def write_csv(path: Path, table: pd.DataFrame, *, bom: bool = True) -> Path:
    """A CSV written atomically, UTF-8 with a BOM so that Excel opens Chinese text right (without
    `bom` for scripts that do not expect one).

    Rows end in ``\\r\\n`` (RFC 4180): the csv module quotes a cell holding any character of the
    line end, so with ``\\r\\n`` a bare CR is quoted as well as LF and ``"`` (with pandas' default
    ``\\n`` a bare CR was not, and ended the row). Quoting every text cell would do as much but
    makes every file larger and every diff noisier; this quotes exactly the cells that need it.
    """
    enc = "utf-8-sig" if bom else "utf-8"
    safe = csv_frame(tidy_numbers(table))  # no cell a spreadsheet would run as a formula
    return write_atomic(
        path, lambda tmp: safe.to_csv(tmp, index=False, encoding=enc, lineterminator="\r\n")
    )


def read_earlier_rows(path: Path, like: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """The rows of a city table an earlier run wrote (None when there is no such file): every cell
    read as text and un-escaped, then each column typed as `like`'s column of that name (ids and
    names always text; a column `like` lacks is typed by its values).

    Raises
    ------
    RunRecordError
        The file is a symbolic link, too large, not a CSV, lacks ``district``, or holds text where
        the table has numbers; the message names the file and the fix.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    fix = f"delete {path} and run every district again (`walkcover run --district all --overwrite`)"
    if path.is_symlink() or not path.is_file():
        raise RunRecordError(f"{path} is not a file walkcover wrote (a link or a folder): {fix}")
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise RunRecordError(f"{path} is larger than any table walkcover writes: {fix}")
    try:
        raw = pd.read_csv(
            path, dtype=str, encoding="utf-8-sig", keep_default_na=False, na_values=[""]
        )
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise RunRecordError(f"{path} cannot be read as a CSV table ({reason}): {fix}") from None
    raw = csv_unescape_frame(raw)
    if "district" not in raw.columns:
        raise RunRecordError(
            f"{path} lacks the column district; it was not written by walkcover: {fix}"
        )
    out = {}
    for col in raw.columns:
        model = like[col] if like is not None and col in like.columns else None
        out[col] = _typed(raw[col], model, path=path, fix=fix)
    return pd.DataFrame(out, index=raw.index)


def _typed(text: pd.Series, like: pd.Series | None, *, path: Path, fix: str) -> pd.Series:
    """A column read as text, typed as `like` (or by its values)."""
    name = str(text.name)
    values = text.to_numpy(dtype=object)
    present = [v for v in values if isinstance(v, str)]
    as_text = pd.Series(values, index=text.index, dtype=object, name=text.name)
    if name in TEXT_COLUMNS:
        return as_text
    kind = like.dtype.kind if like is not None else None
    if (
        kind == "b"
        or (like is not None and _boolish(like))
        or (like is None and present and set(present) <= {"True", "False"})
    ):
        bad = [v for v in present if v not in ("True", "False")]
        if bad:
            raise RunRecordError(
                f"{path}: column {name} holds {bad[0][:40]!r} where this table has True or False: "
                f"{fix}"
            )
        flags = [None if not isinstance(v, str) else v == "True" for v in values]
        if all(f is not None for f in flags):
            return pd.Series(flags, index=text.index, dtype=bool, name=text.name)
        return pd.Series(flags, index=text.index, dtype=object, name=text.name)
    numeric = kind in ("i", "u", "f") or (like is not None and kind == "O" and _numberish(like))
    if numeric or like is None:
        numbers = pd.to_numeric(text, errors="coerce")
        lost = text.notna() & numbers.isna() & ~text.isin(["nan", "NaN"])
        if lost.any():
            if not numeric:  # a column the table lacks, holding text
                return as_text
            raise RunRecordError(
                f"{path}: column {name} holds {str(text[lost].iloc[0])[:40]!r} where this table "
                f"has numbers: {fix}"
            )
        if kind in ("i", "u") and numbers.notna().all() and (numbers % 1 == 0).all():
            return numbers.astype(like.dtype if like is not None else "int64")
        return numbers.astype("float64")
    return as_text


def _boolish(s: pd.Series) -> bool:
    vals = [v for v in s.to_numpy(dtype=object) if not _missing(v)]
    return bool(vals) and all(isinstance(v, bool | np.bool_) for v in vals)


def _numberish(s: pd.Series) -> bool:
    vals = [v for v in s.to_numpy(dtype=object) if not _missing(v)]
    return bool(vals) and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
        for v in vals
    )


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def merged_rows(
    table: pd.DataFrame, earlier: pd.DataFrame | None, districts: list[str]
) -> pd.DataFrame:
    """`table` (this run's rows) after the `earlier` rows of districts it does not hold."""
    table = table.reset_index(drop=True)
    if earlier is None:
        return table
    kept = earlier[~earlier["district"].isin([str(d) for d in districts])]
    if not len(kept):
        return table
    return pd.concat([kept, table], ignore_index=True)


# --- Parquet --------------------------------------------------------------------------------------


def _text(v: object) -> str | None:
    """A cell of a text column as text (an id read as a number: ``410202.0`` → ``410202``)."""
    if _missing(v):
        return None
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def arrow_table(frame: pd.DataFrame) -> Any:
    """`frame` as an Arrow table with an explicit schema: ids and names as text, booleans as
    booleans, integers as int64, other numbers as float64, anything else as text."""
    import pyarrow as pa

    fields, arrays = [], []
    for col in frame.columns:
        s, name = frame[col], str(col)
        data: Any
        kind = s.dtype.kind
        if name in TEXT_COLUMNS:
            typ, data = pa.string(), [_text(v) for v in s.to_numpy(dtype=object)]
        elif kind == "b":
            typ, data = pa.bool_(), s.to_numpy(dtype=bool).tolist()
        elif kind in ("i", "u"):
            typ, data = pa.int64(), s.to_numpy(dtype="int64").tolist()
        elif kind == "f":
            typ, data = pa.float64(), s.to_numpy(dtype="float64")
        elif _boolish(s):
            typ = pa.bool_()
            data = [None if _missing(v) else bool(v) for v in s.to_numpy(dtype=object)]
        elif _numberish(s):
            typ = pa.float64()
            data = [None if _missing(v) else float(v) for v in s.to_numpy(dtype=object)]
        else:
            typ, data = pa.string(), [_text(v) for v in s.to_numpy(dtype=object)]
        fields.append(pa.field(name, typ))
        arrays.append(pa.array(data, type=typ, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_table_parquet(path: Path, table: pd.DataFrame) -> Path:
    """`table` as Parquet with an explicit schema (`arrow_table`), atomically."""
    import pyarrow.parquet as pq

    data = arrow_table(tidy_numbers(table))
    return write_atomic(path, lambda tmp: pq.write_table(data, str(tmp)))


def read_table_parquet(path: Path) -> pd.DataFrame:
    """A table `write_table_parquet` wrote: ids as text, numbers as numbers.

    Raises
    ------
    RunRecordError
        The file is missing, a link, too large, not Parquet, or its ids are not text.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_symlink() or not path.is_file():
        raise RunRecordError(f"{path} is missing or not a file walkcover wrote: {_FIX}")
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise RunRecordError(f"{path} is larger than any table walkcover writes: {_FIX}")
    try:
        data = pq.read_table(str(path))
    except (OSError, ValueError, pa.ArrowException) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise RunRecordError(f"{path} cannot be read as Parquet ({reason}): {_FIX}") from None
    wrong = [
        f.name for f in data.schema if f.name in TEXT_COLUMNS and not pa.types.is_string(f.type)
    ]
    if wrong:
        raise RunRecordError(f"{path}: column {wrong[0]} is not text; {_FIX}")
    frame = data.to_pandas()
    for col in frame.columns:
        if col in TEXT_COLUMNS:
            frame[col] = pd.Series(
                [_text(v) for v in frame[col].to_numpy(dtype=object)], index=frame.index,
                dtype=object, name=col,
            )  # fmt: skip
    return frame


# --- Excel ----------------------------------------------------------------------------------------


#: Street contexts of the summary's ``street_km_*`` and ``street_covered_pct_*`` columns.
_CONTEXTS_ZH = {
    "main_street": "主要街道",
    "ordinary_road": "一般道路",
    "riverside_park": "滨河公园",
}

#: Column → "English · 中文", the header a person reads in ``summary.xlsx`` (the cell keeps the
#: machine name the CSVs and Parquet files use; see `write_workbook`).
HEADERS = {
    # summary
    "district": "district · 区",
    "district_id": "district id · 区编号",
    "district_name": "district name · 区名",
    "district_name_en": "district name (English) · 区名（英文）",
    "is_sample": "sample data · 样例数据",
    "standard": "standard · 标准",
    "standard_name": "standard name · 标准名称",
    "threshold_m": "walking distance standard (m) · 服务半径（米）",
    "context_applied": "street context applied · 适用街道类型",
    "facilities": "facilities in the district · 区内设施数",
    "facilities_in_reach": "facilities in reach · 可达设施数",
    "facilities_excluded": "facilities excluded · 排除设施数",
    "demand_units": "homes · 住宅数",
    "residents_group": "residents counted · 统计居民",
    "residents": "residents · 居民数",
    "residents_covered": "residents covered · 覆盖居民数",
    "residents_covered_pct": "residents covered % · 居民覆盖率（%）",
    "no_data_reason": "why no figure · 无数据原因",
    "report_group": "reported group · 报告人群",
    "report_group_residents": "reported group: residents · 报告人群居民数",
    "report_group_covered_pct": "reported group: covered % · 报告人群覆盖率（%）",
    "units_covered_pct": "homes covered % · 住宅覆盖率（%）",
    "denominator": "land counted · 用地口径",
    "land_km2": "land (km²) · 用地面积（平方公里）",
    "residents_on_land_pct": "residents on that land % · 该用地居民占比（%）",
    "area_covered_euclid_pct": "land covered, straight line % · 直线距离覆盖用地（%）",
    "area_covered_pct": "land covered, walking % · 步行覆盖用地（%）",
    "detour_loss_pp": "lost to detours (points) · 绕行损失（百分点）",
    "residents_covered_safe_pct": "residents covered, safe route % · 安全路线居民覆盖率（%）",
    "residents_choice_pct": "residents with 2+ facilities in reach % · 可选两处及以上居民比例（%）",
    "access_mean_per_1000": "capacity per 1,000 residents, mean · 千人拥有量（均值）",
    "access_p10_per_1000": "capacity per 1,000 residents, lowest 10% · 千人拥有量（最低10%）",
    "access_norm_per_1000": "norm per 1,000 residents · 千人指标",
    "residents_below_norm_pct": "residents below the norm % · 低于千人指标居民比例（%）",
    "capacity_unit": "capacity counted in · 容量单位",
    "facilities_default_capacity": "facilities at the default capacity · 采用默认容量设施数",
    "target_pct": "target % · 目标（%）",
    "meets_target": "meets the target · 是否达标",
    "meets_target_official": "meets the target (official figure) · 是否达标（官方口径）",
    "unsnapped_units": "homes not on a street · 未接入路网住宅",
    "unreachable_units": "homes unreachable · 不可达住宅",
    "beyond_search_units": "homes beyond the search limit · 超出搜索范围住宅",
    **{f"street_km_{c}": f"streets, {c.replace('_', ' ')} (km) · {zh}长度（公里）"
       for c, zh in _CONTEXTS_ZH.items()},
    **{f"street_covered_pct_{c}": f"streets covered, {c.replace('_', ' ')} % · {zh}覆盖率（%）"
       for c, zh in _CONTEXTS_ZH.items()},
    "demand_model": "demand model · 需求模型",
    "building_completeness_pct": "buildings mapped % · 建筑数据完整度（%）",
    "population_model": "population model · 人口模型",
    "citation": "plan citation · 规划依据",
    # district_indicators
    "indicator": "indicator · 指标代码",
    "name": "indicator name · 指标名称",
    "value": "value · 数值",
    "unit": "unit · 单位",
    "target": "target · 目标值",
    "basis": "how it is counted · 计算依据",
    "note": "note · 备注",
    "section": "plan section · 规划条款",
    # group_summary
    "group": "group of districts · 区组",
    "districts": "districts · 区数",
}  # fmt: skip

#: Number formats by column: what people read rounds, the cell keeps the exact figure; each
#: shows what `walkcover.presentation.figures` writes of it elsewhere (the same decimals, and an
#: amount that is not zero never reading as zero: ``<0.01`` km²).
PERCENT_FORMAT = sheet_format(PERCENT_DECIMALS, separators=False)
WHOLE_FORMAT = sheet_format(COUNT_DECIMALS)
KM2_FORMAT = sheet_format(decimals_for("km²"), small=True)
#: Densities, amounts per resident or per 1,000, lengths in km.
AMOUNT_FORMAT = sheet_format(AMOUNT_DECIMALS, small=True)
#: Columns of whole things (facilities, homes, districts) and of people.
_WHOLE = {
    "facilities", "facilities_in_reach", "facilities_excluded", "demand_units", "residents",
    "residents_covered", "report_group_residents", "unsnapped_units", "unreachable_units",
    "beyond_search_units", "districts", "facilities_default_capacity",
}  # fmt: skip
#: ``district_indicators``: the format of ``value`` and ``target`` by the row's ``unit`` (any
#: other unit, a density or an amount per resident, `AMOUNT_FORMAT`), as the reports have them.
_UNIT_FORMATS = {"count": WHOLE_FORMAT, "km²": KM2_FORMAT, "%": PERCENT_FORMAT}
_BY_UNIT = ("value", "target")


def column_format(column: str) -> str | None:
    """The number format of `column` in ``summary.xlsx`` (None: as the number is)."""
    col = str(column)
    if col.endswith(("_pct", "_pp")) or "_pct_" in col:  # street_covered_pct_<context>
        return PERCENT_FORMAT
    if col in _WHOLE or (col.startswith("residents_") and col not in HEADERS):
        return WHOLE_FORMAT  # residents by age group
    if col.endswith("_m"):
        return WHOLE_FORMAT  # metres
    if col.endswith("_km2"):
        return KM2_FORMAT
    if col.endswith("_per_1000") or col.startswith("street_km_"):
        return AMOUNT_FORMAT  # one decimal
    return None


def header_label(column: str) -> str:
    """The English · Chinese header of `column` (the name itself where none is known)."""
    col = str(column)
    if col in HEADERS:
        return HEADERS[col]
    if col.startswith("residents_") and col not in HEADERS:
        group = col.removeprefix("residents_")
        return f"residents, {group} · 居民（{group}）"
    return col


def _label_format(label: str) -> str:
    """A number format that shows `label` in place of the text the cell holds (the text section
    of an Excel format: ``;;;"label"``)."""
    return ';;;"' + _sheet_text(label).replace('"', "'") + '"'


def _width(text: str) -> int:
    """The width of `text` in characters of a sheet's column, a Chinese character two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    """An Excel workbook of `sheets` (name → table), written atomically, for people to read.

    * Each header cell holds the column's machine name (that of the CSVs and Parquet files, so
      that programs reading the workbook find the same columns) and shows its English and
      Chinese name (`HEADERS`), through the cell's number format; the header row is frozen and
      every sheet has an autofilter.
    * Numbers keep their exact values and show rounded (`column_format`): percentages to one
      decimal, residents and counts whole; ``district_indicators``' values by their unit.
    * Coverage against the target is coloured (`palette.BANDS`): a met target green, a missed
      one red, on ``meets_target`` and the figure it judges; where a table has no
      ``meets_target`` column, ``residents_covered_pct`` against ``target_pct``.
    * Text is always stored as text, with no escape: a name starting with ``=`` (or ``'=``)
      comes back exactly as it is and is never a formula. Empty cells stand for NaN.
    * The same tables give the same bytes (the workbook's date is fixed).

    XlsxWriter writes it: a fifth of openpyxl's import time (0.03 against 0.13 s), which a run of
    one small district pays in full. openpyxl still reads planners' workbooks.
    """
    import xlsxwriter

    from walkcover.presentation.palette import BANDS

    good, bad = BANDS["within"][0], BANDS["beyond"][0]

    def save(tmp: Path) -> None:
        # no text is turned into a formula, a link or a number: data is data
        wb = xlsxwriter.Workbook(
            str(tmp),
            {
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "nan_inf_to_errors": True,  # an infinite ratio shows as #DIV/0!, never fails
                # built in memory (a few tables), not in temporary files: a full $TMPDIR would
                # otherwise fail the city files with the --out folder blamed
                "in_memory": True,
            },
        )
        wb.set_properties({"created": WORKBOOK_DATE.replace(tzinfo=None)})
        formats: dict[tuple[str | None, bool], Any] = {}

        def fmt(num: str | None, *, header: bool = False) -> Any:
            key = (num, header)
            if key not in formats:
                props: dict[str, Any] = {"num_format": num} if num else {}
                if header:
                    props |= {"bold": True, "text_wrap": True, "valign": "top", "bottom": 1}
                formats[key] = wb.add_format(props) if props else None
            return formats[key]

        met = wb.add_format({"bg_color": good, "font_color": "#ffffff"})
        missed = wb.add_format({"bg_color": bad, "font_color": "#ffffff"})
        for name, table in sheets.items():
            table = tidy_numbers(table)
            ws = wb.add_worksheet(name[:31])
            columns = [str(c) for c in table.columns]
            n_rows = len(table)
            widths = []
            for j, col in enumerate(columns):
                label = header_label(col)
                shown = _label_format(label) if label != col else None
                ws.write_string(0, j, _sheet_text(col), fmt(shown, header=True))
                # the header wraps at the column's width; the figures below set it
                widths.append(min(max(_width(w) for w in label.split(" · ")), 24))
            units = table["unit"].astype(str).tolist() if "unit" in table else None
            for i, row in enumerate(table.itertuples(index=False), start=1):
                for j, value in enumerate(row):
                    cell_fmt = None
                    if units is not None and columns[j] in _BY_UNIT:
                        cell_fmt = fmt(_UNIT_FORMATS.get(units[i - 1], AMOUNT_FORMAT))
                    widths[j] = max(widths[j], _write_cell(ws, i, j, value, cell_fmt=cell_fmt))
            # each column as wide as its longest text (the cells' own formats are set by column,
            # and apply to cells written before with none of their own)
            for j, col in enumerate(columns):
                ws.set_column(j, j, min(widths[j] + 2, 48), fmt(column_format(col)))
            ws.set_row(0, 45)  # three lines of header
            ws.freeze_panes(1, 0)
            ws.autofilter(0, 0, max(n_rows, 1), max(len(columns) - 1, 0))
            if n_rows:
                _colour_targets(ws, columns, n_rows, met=met, missed=missed)
        wb.close()
        _carriage_returns_as_references(tmp)

    return write_atomic(path, save)


def _colour_targets(ws: Any, columns: list[str], n_rows: int, *, met: Any, missed: Any) -> None:
    """Conditional formats: a met target green, a missed one red (`write_workbook`)."""
    from xlsxwriter.utility import xl_col_to_name

    at = {c: j for j, c in enumerate(columns)}

    def cells(j: int) -> str:
        col = xl_col_to_name(j)
        return f"{col}2:{col}{n_rows + 1}"

    def rule(target: list[int], met_when: str, missed_when: str) -> None:
        for j in target:
            for criteria, look in ((met_when, met), (missed_when, missed)):
                ws.conditional_format(
                    cells(j), {"type": "formula", "criteria": criteria, "format": look}
                )

    judged = [c for c in ("residents_covered_pct", "value") if c in at]
    for flag in ("meets_target", "meets_target_official"):
        if flag not in at:
            continue
        f = f"${xl_col_to_name(at[flag])}2"
        # an empty flag (no figure) is neither: ISLOGICAL, as Excel takes an empty cell = FALSE
        on = [at[flag]] + ([at[c] for c in judged] if flag == "meets_target" else [])
        rule(on, f"=AND(ISLOGICAL({f}),{f})", f"=AND(ISLOGICAL({f}),NOT({f}))")
    if "meets_target" not in at and {"residents_covered_pct", "target_pct"} <= set(at):
        v = f"${xl_col_to_name(at['residents_covered_pct'])}2"
        t = f"${xl_col_to_name(at['target_pct'])}2"
        both = f"ISNUMBER({v}),ISNUMBER({t})"
        rule([at["residents_covered_pct"]], f"=AND({both},{v}>={t})", f"=AND({both},{v}<{t})")


#: What a sheet cannot store: control characters other than tab, newline and carriage return
_ILLEGAL_IN_SHEET = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: The escapes of OOXML text (``_xHHHH_``), matched left to right as Excel decodes them.
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _sheet_text(v: object) -> str:
    """Text as a sheet cell holds it (a control character shown as ``\\x1b``, as in the terminal)."""
    return _ILLEGAL_IN_SHEET.sub(lambda m: f"\\x{ord(m.group()):02x}", str(v))


def _write_cell(ws: Any, row: int, col: int, v: object, *, cell_fmt: Any = None) -> int:
    """One cell by its type: nothing for None/NaN, numbers and booleans as such, the rest as text
    (a control character cannot be stored in a sheet: it is shown as ``\\x1b``, as in the
    terminal); a number in `cell_fmt` where given. Returns the length of the text the cell shows
    (0 when empty), for its column's width."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return 0
    if isinstance(v, bool):
        ws.write_boolean(row, col, v)
        return len(str(v).upper())
    if isinstance(v, int | float):
        ws.write_number(row, col, v, cell_fmt)
        return min(len(str(v)), 12)  # shown rounded
    text = _sheet_text(v)
    ws.write_string(row, col, text)
    return _width(text)


def _carriage_returns_as_references(path: Path) -> None:
    """XlsxWriter stores a CR in text as ``_x000D_``, which Excel decodes and openpyxl does not;
    as the XML character reference ``&#13;`` every reader gets the CR back (a raw CR would be read
    as LF). Rewrites the shared strings of the workbook at `path` in place, entries and their
    dates as they were."""
    name = "xl/sharedStrings.xml"
    with zipfile.ZipFile(path) as z:
        if name not in z.namelist():
            return
        xml = z.read(name).decode("utf-8")
        fixed = _OOXML_ESCAPE.sub(
            lambda m: "&#13;" if m.group(1).upper() == "000D" else m.group(0), xml
        )
        if fixed == xml:
            return
        entries = [(info, z.read(info.filename)) for info in z.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info, data in entries:
            out.writestr(info, fixed.encode("utf-8") if info.filename == name else data)
    Path(path).write_bytes(buf.getvalue())


# --- The city tables ------------------------------------------------------------------------------


@dataclass
class CityTables:
    """A city's tables in memory: each written as CSV, Parquet and a sheet of ``summary.xlsx``."""

    summary: pd.DataFrame
    indicators: pd.DataFrame
    groups: pd.DataFrame | None = None


def write_city_tables(folder: Path, tables: CityTables, *, bom: bool = True) -> list[Path]:
    """The city's tables into `folder` (a `city_set` staging folder): ``summary.csv``,
    ``district_indicators.csv``, ``group_summary.csv`` (with groups), their Parquet copies and
    ``summary.xlsx``, all from `tables` (nothing is read back)."""
    folder = Path(folder)
    sheets = {"summary": tables.summary, "district_indicators": tables.indicators}
    written = [
        write_csv(folder / "summary.csv", tables.summary, bom=bom),
        write_csv(folder / "district_indicators.csv", tables.indicators, bom=bom),
    ]
    if tables.groups is not None and len(tables.groups):
        sheets["group_summary"] = tables.groups
        written.append(write_csv(folder / "group_summary.csv", tables.groups, bom=bom))
    written += [
        write_table_parquet(folder / "summary.parquet", tables.summary),
        write_table_parquet(folder / "district_indicators.parquet", tables.indicators),
        write_workbook(folder / "summary.xlsx", sheets),
    ]
    return written


# --- The city files as one set --------------------------------------------------------------------

#: The city files as one set (`walkcover.presentation.file_set`).
CITY_SET = SetKind(
    what="city files",
    names=CITY_FILES,
    manifest=CITY_MANIFEST,
    prefix=SET_PREFIX,
    fix=_FIX,
    shared=_SHARED_PAGES,
)
#: A set of city files being built (`city_set`).
CitySet = FileSet


def city_set(city_dir: Path) -> AbstractContextManager[FileSet]:
    """Build a new set of city files (`CITY_FILES`) in a staging folder, then put it in place
    (`walkcover.presentation.file_set.file_set`). A kill before the seal leaves the previous set
    (and a staging folder `recover_city_set` removes); a kill after it leaves a folder that
    `check_city_set` reports as mixed until `recover_city_set` completes the new set."""
    return file_set(city_dir, CITY_SET)


def recover_city_set(city_dir: Path) -> list[str]:
    """Repair what an interrupted run left of the city files in `city_dir`; return what was done
    (`walkcover.presentation.file_set.recover_set`). Call it only while holding the output
    folder's lock (`walkcover._lock`)."""
    return recover_set(city_dir, CITY_SET)


def check_city_set(city_dir: Path) -> None:
    """Make sure `city_dir` holds one complete set of city files (its manifest,
    ``city_files.json``, says which: `walkcover.presentation.file_set.check_set`).

    Raises
    ------
    CitySetError
        The set is mixed or partial; the message names the first such file and the fix.
    """
    check_set(city_dir, CITY_SET)


def reseal_city_set(city_dir: Path, names: list[str]) -> None:
    """After a command replaced city files `names` of the set in place by itself (``walkcover
    report``'s ``index.html``), write the manifest again with their new digests."""
    reseal_set(city_dir, CITY_SET, names)


def write_city_set(
    city_dir: Path,
    tables: CityTables,
    *,
    bom: bool = True,
    pages: Callable[[Path], object] | None = None,
) -> CitySet:
    """The city's tables (and, with `pages`, what it writes into the staging folder: the city's
    ``map.html``, ``index.html``) as one set (`city_set`)."""
    with city_set(city_dir) as built:
        write_city_tables(built.folder, tables, bom=bom)
        if pages is not None:
            pages(built.folder)
    return built
