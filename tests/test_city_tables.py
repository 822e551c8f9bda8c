"""The city tables: every cell stays in its cell and is never a formula, the workbook keeps any name
exactly, the region merge keeps ids as text, and the same tables give the same bytes (issues "Trust
no file walkcover did not just write" and "One set of figures")."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from conftest import write_region
from hostile import DISTRICT_NAME, FORMULA_NAME, SCRIPT_NAME
from walkcover._escape import FORMULA_START, csv_cell, csv_unescape_frame
from walkcover.presentation.record import RunRecordError, read_city_table
from walkcover.presentation.tables import (
    CityTables,
    merged_rows,
    read_earlier_rows,
    read_table_parquet,
    write_city_set,
    write_city_tables,
    write_csv,
)

#: Names that end a row, break a quote, run as a formula or lose an apostrophe on the way back.
NAMES = [
    "a\rb",
    "=1+1",
    "'=already quoted",
    "''=twice",
    "'plain apostrophe",
    'x"y\nz',
    "c\r\nd",
    "\r=1+1",
    "tail\r",
    "@SUM(A1)",
    "+1 555",
    "-1+2",
    "\uff1d1+1",
    "_x000D_ literal",
    FORMULA_NAME,
    DISTRICT_NAME,
    SCRIPT_NAME,
]


def summary_table(names: list[str] = NAMES, *, scale: float = 1.0) -> pd.DataFrame:
    n = len(names)
    return pd.DataFrame(
        {
            "district": [f"4102{i:02d}" for i in range(n)],  # slugs that look like numbers
            "district_id": [f"4102{i:02d}" for i in range(n)],
            "district_name": names,
            "district_name_en": [f"D{i}" for i in range(n)],
            "standard": ["toilet"] * n,
            "standard_name": ["公厕 =toilet"] * n,
            "threshold_m": [300.0] * n,
            "facilities": np.arange(n, dtype="int64"),
            "facilities_in_reach": np.arange(n, dtype="int64"),
            "residents": np.linspace(10.5, 99.25, n) * scale,
            "residents_covered": np.linspace(1.0, 50.0, n) * scale,
            "residents_covered_pct": np.linspace(-12.5, 100.0, n),
            "land_km2": np.linspace(0.5, 2.0, n),
            "area_covered_euclid_pct": np.linspace(0.0, 100.0, n),
            "area_covered_pct": np.linspace(0.0, 90.0, n),
            "target_pct": [100.0] * n,
            "meets_target": [i % 2 == 0 for i in range(n)],
            "citation": ["§3 =plan"] * n,
        }
    )


def indicator_table(names: list[str] = NAMES) -> pd.DataFrame:
    n = len(names)
    return pd.DataFrame(
        {
            "district": [f"4102{i:02d}" for i in range(n)],
            "district_id": [f"4102{i:02d}" for i in range(n)],
            "district_name": names,
            "indicator": ["toilets_per_km2"] * n,
            "value": np.linspace(0.0, 5.0, n),
            "note": ["=HYPERLINK(1)", *[""] * (n - 1)],
        }
    )


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def formula_like(cell: str) -> bool:
    """A cell a spreadsheet would run (a plain number is data)."""
    try:
        float(cell)
    except ValueError:
        return cell.startswith(FORMULA_START)
    return False


def test_csv_cells_keep_cr_lf_quotes_and_never_run(tmp_path):
    table = summary_table()
    path = write_csv(tmp_path / "summary.csv", table)
    rows = csv_rows(path)
    # one row per district: no CR or LF ended a row early
    assert len(rows) == len(table) + 1
    names = [r[rows[0].index("district_name")] for r in rows[1:]]
    assert names == [csv_cell(n) for n in NAMES]
    assert not [c for r in rows for c in r if formula_like(c)]
    # un-escaped, every name is exactly what was written
    back = csv_unescape_frame(pd.DataFrame({"n": names}))["n"].tolist()
    assert back == NAMES
    # walkcover's own readers give the table back: names exact, ids as text, numbers as numbers
    for got in (read_earlier_rows(path, like=table), read_city_table(tmp_path, "summary.csv")):
        assert got is not None
        assert got["district_name"].tolist() == NAMES
        assert got["district_id"].tolist() == table["district_id"].tolist()
        assert got["district"].map(type).eq(str).all()
        np.testing.assert_allclose(got["residents"].to_numpy(float), table["residents"], rtol=1e-12)
    typed = read_earlier_rows(path, like=table)
    assert typed is not None
    assert typed["facilities"].dtype == np.int64 and typed["meets_target"].dtype == bool


def test_every_formula_like_text_cell_is_escaped_whatever_its_column(tmp_path):
    """Categorical columns, column names, mixed object columns and the groups' table: no cell a
    spreadsheet would run, numbers aside."""
    table = pd.DataFrame(
        {
            "district": pd.Categorical(["=1+1", "b"]),
            "=header": ["x", "y"],
            "mixed": [-3.5, "=2+2"],
            "number": [-1.0, -2.0],
            "text_number": ["-12.5", "-1\n"],
            "spaced": [" =1+1", "\u3000+cmd|' /C calc'!A0"],
        }
    )
    rows = csv_rows(write_csv(tmp_path / "t.csv", table))
    cells = [c for r in rows for c in r]
    assert not [c for c in cells if formula_like(c.lstrip(" \u3000"))], cells
    assert "'=1+1" in cells and "'=header" in cells and "'=2+2" in cells
    assert "' =1+1" in cells  # a spreadsheet that trims spaces on import would run it
    assert "-1.0" in cells and "-3.5" in cells and "-12.5" in cells  # numbers stay numbers
    groups = pd.DataFrame({"group": ["=grp"], "standard": ["toilet"], "residents": [1.0]})
    write_city_tables(
        tmp_path / "set",
        CityTables(summary_table(), indicator_table(), groups),
    )
    for name in ("summary.csv", "district_indicators.csv", "group_summary.csv"):
        rows = csv_rows(tmp_path / "set" / name)
        assert not [c for r in rows for c in r if formula_like(c)], name


def test_workbook_gives_every_name_back_exactly(tmp_path):
    import openpyxl

    folder = tmp_path / "set"
    write_city_tables(folder, CityTables(summary_table(), indicator_table()))
    wb = openpyxl.load_workbook(folder / "summary.xlsx")
    for sheet in ("summary", "district_indicators"):
        ws = wb[sheet]
        header = [c.value for c in ws[1]]
        cells = [row[header.index("district_name")] for row in ws.iter_rows(min_row=2)]
        assert [c.value for c in cells] == NAMES, sheet
        assert all(c.data_type == "s" for c in cells)
        ids = [row[header.index("district_id")].value for row in ws.iter_rows(min_row=2)]
        assert ids == summary_table()["district_id"].tolist()  # text, not numbers
    ws = wb["summary"]
    header = [c.value for c in ws[1]]
    assert all(
        isinstance(row[header.index("residents")].value, float) for row in ws.iter_rows(min_row=2)
    )


def test_the_same_tables_give_the_same_bytes(tmp_path):
    tables = CityTables(
        summary_table(),
        indicator_table(),
        pd.DataFrame({"group": ["g"], "standard": ["toilet"], "residents": [1.0 / 3]}),
    )
    write_city_tables(tmp_path / "a", tables)
    time.sleep(1.1)  # a date stamped in the workbook would differ now
    write_city_tables(tmp_path / "b", tables)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "summary.xlsx" in names and "summary.parquet" in names
    for name in names:
        a, b = (tmp_path / d / name for d in ("a", "b"))
        assert a.read_bytes() == b.read_bytes(), name
    # and the manifest of a whole set too
    write_city_set(tmp_path / "c", tables)
    time.sleep(1.1)
    write_city_set(tmp_path / "d", tables)
    for name in sorted(p.name for p in (tmp_path / "c").iterdir()):
        assert (tmp_path / "c" / name).read_bytes() == (tmp_path / "d" / name).read_bytes(), name


def test_rows_of_an_earlier_run_are_typed_as_the_table(tmp_path):
    earlier = summary_table(["=old", "'=old quoted"])
    earlier["meets_target"] = earlier["meets_target"].astype(object)
    earlier.loc[1, "meets_target"] = None
    write_csv(tmp_path / "summary.csv", earlier)
    new = summary_table(["fresh"], scale=2.0)
    new["district"] = ["410201"]  # replaces the earlier row of 410201
    old = read_earlier_rows(tmp_path / "summary.csv", like=new)
    assert old is not None
    merged = merged_rows(new, old, ["410201"])
    assert merged["district"].tolist() == ["410200", "410201"]
    assert merged["district_name"].tolist() == ["=old", "fresh"]
    assert merged["facilities"].dtype == np.int64
    assert merged["district_id"].map(type).eq(str).all()
    # text where the table has numbers: refused, naming the file
    bad = earlier.astype({"residents": object})
    bad.loc[0, "residents"] = "lots"
    write_csv(tmp_path / "bad.csv", bad)
    with pytest.raises(RunRecordError, match=r"bad\.csv: column residents holds 'lots'"):
        read_earlier_rows(tmp_path / "bad.csv", like=new)


def test_parquet_copy_is_typed_by_its_schema(tmp_path):
    from walkcover.presentation.tables import write_table_parquet

    table = summary_table()
    table.loc[0, "district_id"] = None
    back = read_table_parquet(write_table_parquet(tmp_path / "s.parquet", table))
    assert back["district_name"].tolist() == NAMES
    assert back["district_id"].tolist() == [None, *table["district_id"].tolist()[1:]]
    assert back["facilities"].dtype == np.int64 and back["meets_target"].dtype == bool


# --- the region merge ----------------------------------------------------------------------------


def two_city_region(tmp_path: Path):
    """A region of two cities: 410100, whose district's folder is ``410102-zhongyuan``, and 410200,
    whose district has no English name, so its folder (and summary row) is ``410202``; the names
    are text that CSV readers take for a formula and a number."""
    from walkcover.config.region import load_region

    cfg = write_region(
        tmp_path,
        region="henantest",
        name="河南",
        name_en="Henan",
        cities={"code": ["410100", "410200"], "name": ["郑州市", "开封市"]},
        districts={
            "code": ["410102", "410202"],
            "name": ["'=already quoted", "0410202"],  # a name that reads as a number
            "name_en": ["Zhongyuan District", "410202"],
            "city": ["410100", "410200"],
        },
        geoms=[box(113.6, 34.7, 113.7, 34.8), box(114.3, 34.7, 114.4, 34.8)],
    )
    return load_region(cfg)


def test_region_merge_keeps_district_ids_as_text(tmp_path):
    from walkcover.batch import CityOutcome
    from walkcover.config.region import region_city
    from walkcover.presentation.region import write_region

    region = two_city_region(tmp_path)
    base = tmp_path / "out" / region.id
    cities = {cid: region_city(region, cid) for cid in ("410100", "410200")}
    for city in cities.values():
        d = city.districts.iloc[0]
        summary = summary_table([str(d["name"])])
        summary["district"], summary["district_id"] = [d["slug"]], [d["district_id"]]
        ind = indicator_table([str(d["name"])])
        ind["district"], ind["district_id"] = [d["slug"]], [d["district_id"]]
        write_city_set(base / city.id, CityTables(summary, ind))
    assert cities["410200"].districts["slug"].tolist() == ["410202"]
    outcomes = [CityOutcome(c, c, "done") for c in cities]
    summary, _ = write_region(base, region, cities, outcomes=outcomes)
    assert summary["district"].tolist() == ["410102-zhongyuan", "410202"]
    assert summary.geometry.notna().all()
    geo = gpd.read_parquet(base / "region_summary.parquet")
    for col in ("city", "district", "district_id"):
        assert geo[col].map(type).eq(str).all(), col
    assert geo["district"].tolist() == ["410102-zhongyuan", "410202"]
    assert geo["district_name"].tolist() == ["'=already quoted", "0410202"]
    rows = csv_rows(base / "region_summary.csv")
    assert [r[rows[0].index("district")] for r in rows[1:]] == ["410102-zhongyuan", "410202"]
    assert (base / "index.html").is_file()


# --- run.json that is no run record --------------------------------------------------------------


@pytest.mark.parametrize("text", ["[1, 2]", '"run"', "{}", '{"standards": 3}', "{"])
def test_recorded_standards_of_a_record_that_is_no_object_is_one_line(tmp_path, text):
    from walkcover.presentation.outputs import recorded_standards

    rec = tmp_path / "city" / "d1" / "run.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(text, encoding="utf-8")
    with pytest.raises(RunRecordError) as err:
        recorded_standards(tmp_path, "city", ["d1"])
    message = str(err.value)
    assert str(rec) in message and "walkcover run --overwrite" in message
    assert "\n" not in message


def test_city_files_manifest_lists_each_file_with_its_digest(tmp_path):
    built = write_city_set(tmp_path, CityTables(summary_table(), indicator_table()))
    manifest = json.loads((tmp_path / "city_files.json").read_text(encoding="utf-8"))
    assert sorted(manifest["files"]) == sorted(p.name for p in built.written)
    for name, entry in manifest["files"].items():
        data = (tmp_path / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_the_workbook_is_built_without_the_temporary_folder(tmp_path, monkeypatch):
    """``summary.xlsx`` is built in memory: a full or missing temporary folder cannot fail the city
    files (xlsxwriter wrote temporary files there, and the --out folder was blamed)."""
    import tempfile

    from walkcover.presentation.tables import write_workbook

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    table = pd.DataFrame({"district_id": ["1"], "standard": ["toilet"], "residents": [3.0]})
    path = write_workbook(tmp_path / "summary.xlsx", {"summary": table})
    back = pd.read_excel(path, sheet_name="summary", dtype={"district_id": str})
    assert list(back["district_id"]) == ["1"] and list(back["residents"]) == [3.0]
