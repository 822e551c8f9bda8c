"""The report of a run that measures capacity (E2SFCA), choice and GB 50180's life circles: the
"Capacity and choice" section and the "Life circles" page give the run's own figures (the
summary's and ``district_indicators.csv``'s), formatted by `walkcover.presentation.figures`; an
older run folder without those columns still reports, a tampered one is refused in one line."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from test_choice_run import DEFAULT_BEDS, NORM, SID, _standards_file
from test_run_record_tamper import one_line_error, reseal
from walkcover.cli import app
from walkcover.config.standards import load_standards
from walkcover.measures.indicators import CHOICE_ACCESS_COLUMNS
from walkcover.presentation.figures import (
    NO_DATA,
    count_text,
    figure_text,
    metres_text,
    pct_text,
    setting_text,
)

runner = CliRunner()
CITY = "helsinki-sample"
#: The new figures of summary.csv (issue 29): a run before them wrote none.
NEW_SUMMARY_COLUMNS = list(CHOICE_ACCESS_COLUMNS)


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def tables_in(page: str, heading: str, until: str = "</section>") -> list[list[list[str]]]:
    """The tables of the section that opens with `heading` in a report page, as rows of cell
    texts (header rows too, the lines of a header joined by a space)."""
    start = page.index(heading)
    part = page[start : page.index(until, start)]
    out = []
    for table in re.findall(r"<table class=\"t[^\"]*\">(.*?)</table>", part, flags=re.S):
        rows = []
        for tr in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
            cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, flags=re.S)
            # a cell's own markup (a line break, the span keeping 无数据 on one line) is not text
            cells = [re.sub(r"<[^>]*>", "", re.sub(r"<br>", " ", c)) for c in cells]
            rows.append([html.unescape(c).strip() for c in cells])
        out.append(rows)
    return out


def section(page: str, heading: str) -> str:
    start = page.index(heading)
    return html.unescape(page[start : page.index("</section>", start)])


@pytest.fixture(scope="module")
def gb_report(tmp_path_factory, sample_cache):
    """``walkcover run --standards gb50180-2018`` for one sample district, then its report."""
    out = tmp_path_factory.mktemp("gb-report")
    common = ["--city", CITY, "--out", str(out), "--district", "sample-ne"]
    res = cli("run", *common, "--standards", "gb50180-2018", "--no-maps",
              "--cache-dir", str(sample_cache))  # fmt: skip
    assert res.exit_code == 0, res.output
    res = cli("report", *common)
    assert res.exit_code == 0, res.output
    return out / CITY


@pytest.fixture(scope="module")
def clinic_run(tmp_path_factory, sample_cache):
    """The Zhengzhou clinics with choice and an access rule (and two small life circles), run for
    one district with maps off; the report is made by each test that needs it."""
    tmp = tmp_path_factory.mktemp("clinic-report")
    path = _standards_file(tmp, tiers=True)
    out = tmp / "out"
    res = cli("run", "--city", CITY, "--out", str(out), "--district", "sample-se",
              "--standards", str(path), "--standard", f"{SID},toilet,green_space,park",
              "--no-maps", "--cache-dir", str(sample_cache))  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def read_table(city: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(city / name, dtype={"district_id": str}, encoding="utf-8-sig")


def test_life_circle_page_gives_the_indicator_figures(gb_report):
    city = gb_report
    page = (city / "sample-ne" / "report.html").read_text(encoding="utf-8")
    assert "Life circles · 生活圈 (GB 50180-2018)" in page
    text = section(page, "Life circles · 生活圈")
    ind = read_table(city, "district_indicators.csv")
    summary = read_table(city, "summary.csv")
    summary = summary[summary["district_id"] == "sample-ne"].set_index("standard")
    tables = tables_in(page, "Life circles · 生活圈")
    rules = load_standards("gb50180-2018")
    tiers = rules.life_circle_tiers()
    assert len(tables) == len(tiers) == 3
    for (tier, ids), table in zip(sorted(tiers.items()), tables, strict=True):
        row = ind[
            (ind["district_id"] == "sample-ne")
            & (ind["indicator"] == f"life_circle_{tier}min_complete_pct")
        ].iloc[0]
        if row["note"].startswith("no data: "):  # a required facility has none in reach
            assert row["value"] != row["value"]  # no figure, never 0%
            assert f"{tier}-minute life circle · {NO_DATA} complete" in text
            assert f"No data: {row['note'].removeprefix('no data: ')}." in text
        else:
            share = pct_text(row["value"], unit="%")
            assert f"{tier}-minute life circle · {share} complete" in text
            assert (
                f"{share} of the residents live where every one of the {len(ids)} facilities"
                in text
            )
            missing = row["note"].removeprefix("most often missing: ")
            assert f"Most often missing: {missing}." in text
        # each required facility with its coverage, as the summary has it
        body = table[1:]
        assert len(body) == len(ids)
        for sid, cells in zip(ids, body, strict=True):
            std = rules.standards[sid]
            r = summary.loc[sid]
            none = r["facilities_in_reach"] == 0
            assert cells[0] == f"{std.name_zh} {std.name}"
            assert cells[1] == f"≤ {metres_text(std.threshold_m)}"
            assert cells[2] == pct_text(r["residents_covered_pct"], no_data=none, unit="%")
            assert cells[3] == count_text(r["facilities_in_reach"])
    # the shares are on their page, not again (to two decimals) among the counts
    counts = section(page, "Counts and densities")
    assert "life circle complete" not in counts


def test_life_circle_page_prints_whole(gb_report):
    """The PDF has the page, its figures as the HTML has them, and no table runs off it."""
    pdf = gb_report / "sample-ne" / "report.pdf"
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = text.split("\f")
    life = [p for p in pages if "Life circles · 生活圈" in p or "-minute life circle ·" in p]
    assert life and "十分钟生活圈 10-minute life circle" in "\n".join(life)
    ind = read_table(gb_report, "district_indicators.csv")
    ten = ind[(ind["district_id"] == "sample-ne")
              & (ind["indicator"] == "life_circle_10min_complete_pct")].iloc[0]  # fmt: skip
    assert f"{pct_text(ten['value'], unit='%')} complete" in "\n".join(life)
    cap = next(p for p in pages if "Capacity and choice · 容量与选择" in p)
    assert "Kindergarten" in cap and "no capacity or choice figure" in cap  # none in the sample


def test_capacity_section_gives_the_summary_figures(clinic_run, tmp_path):
    out = _old_run(clinic_run, tmp_path)  # a copy: the run's folder stays without reports
    res = cli("report", "--city", CITY, "--out", str(out), "--district", "sample-se")
    assert res.exit_code == 0, res.output
    city = out / CITY
    page = (city / "sample-se" / "report.html").read_text(encoding="utf-8")
    row = read_table(city, "summary.csv")
    row = row[(row["district_id"] == "sample-se") & (row["standard"] == SID)].iloc[0]
    text = " ".join(section(page, "Capacity and choice · 容量与选择").split())
    mean = figure_text(row["access_mean_per_1000"])
    low = figure_text(row["access_p10_per_1000"])
    below = pct_text(row["residents_below_norm_pct"], unit="%")
    choice = pct_text(row["residents_choice_pct"], unit="%")
    n_default = count_text(row["facilities_default_capacity"])
    n_reach = count_text(row["facilities_in_reach"])
    assert f"Residents have on average {mean} beds per 1,000 residents" in text
    assert f"the lowest-served 10% have {low} or less" in text
    assert f"The norm is {setting_text(NORM)} beds per 1,000 residents (test norm); {below}" in text
    assert f"{choice} of residents have two or more facilities within 1,000 m" in text
    flagged = (
        f"{n_default} of {n_reach} facilities serving the district use the default of "
        f"{setting_text(DEFAULT_BEDS)} beds (five beds (test))"
    )
    assert flagged in text and row["facilities_default_capacity"] > 0
    assert re.search(r'<li class="flag">' + re.escape(html.escape(flagged, quote=False)), page)
    (table,) = tables_in(page, "Capacity and choice · 容量与选择")
    header, *body = table
    assert header[:2] == ["standard 标准", "mean per 1,000 每千人平均"]
    assert body == [
        ["社区门诊 Community clinic", mean, low, setting_text(NORM), "beds · 容量", below, choice,
         f"{n_default} of {n_reach}"],
    ]  # fmt: skip
    # the standards without access or choice have no row
    assert "公厕 Public toilet" not in " ".join(" ".join(r) for r in body)


def _old_run(clinic_run: Path, tmp_path: Path) -> Path:
    """A copy of the run's ``--out``, to change or report into."""
    out = tmp_path / "out"
    shutil.copytree(clinic_run, out, symlinks=True)
    return out


def _edit_summary(out: Path, change) -> None:
    """Rewrite summary.csv as walkcover writes it (BOM, CRLF, cells as text) and reseal."""
    path = out / CITY / "summary.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    table = change(table)
    path.write_bytes(b"\xef\xbb\xbf" + table.to_csv(index=False, lineterminator="\r\n").encode())
    reseal(out / CITY)


def test_an_older_run_without_the_new_columns_still_reports(clinic_run, tmp_path):
    """A run written before choice and capacity were measured: no such summary columns, no life
    circle rows. Its report is made; those figures are "—", never an error or 0."""
    out = _old_run(clinic_run, tmp_path)
    _edit_summary(out, lambda t: t.drop(columns=NEW_SUMMARY_COLUMNS))
    path = out / CITY / "district_indicators.csv"
    ind = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    ind = ind[~ind["indicator"].str.startswith("life_circle_")]
    path.write_bytes(b"\xef\xbb\xbf" + ind.to_csv(index=False, lineterminator="\r\n").encode())
    reseal(out / CITY)
    res = cli("report", "--city", CITY, "--out", str(out), "--district", "sample-se")
    assert res.exit_code == 0, res.output
    page = (out / CITY / "sample-se" / "report.html").read_text(encoding="utf-8")
    (table,) = tables_in(page, "Capacity and choice · 容量与选择")
    cells = table[1]
    assert cells[1] == cells[2] == cells[5] == cells[6] == "—" and cells[7] == "—"
    assert "nan" not in " ".join(cells).lower() and NO_DATA not in cells
    assert "no capacity or choice figures (written by an earlier walkcover)" in page
    assert "Life circles · 生活圈" not in page  # no tier rows: no page


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("access_mean_per_1000", "-5", "column access_mean_per_1000 holds -5.0"),
        ("access_p10_per_1000", "1e300", "column access_p10_per_1000 holds 1e+300"),
        ("residents_choice_pct", "-5", "column residents_choice_pct holds -5.0"),
        ("residents_below_norm_pct", "1e300", "column residents_below_norm_pct holds 1e+300"),
        ("facilities_default_capacity", "lots", "column facilities_default_capacity holds 'lots'"),
    ],
)
def test_tampered_capacity_figures_are_refused_in_one_line(
    clinic_run, tmp_path, column, value, needle
):
    out = _old_run(clinic_run, tmp_path)

    def change(t):
        t.loc[(t["district_id"] == "sample-se") & (t["standard"] == SID), column] = value
        return t

    _edit_summary(out, change)
    res = runner.invoke(
        app, ["report", "--city", CITY, "--out", str(out), "--district", "sample-se"]
    )
    one_line_error(res, "summary.csv", needle, "walkcover run --overwrite")
    assert not (out / CITY / "sample-se" / "report.pdf").exists()


@pytest.mark.parametrize(
    ("value", "needle"),
    [("-5", "holds -5.0 (row"), ("150", "not a percentage from 0 to 100"),
     ("1e300", "holds 1e+300 (row")],
)  # fmt: skip
def test_a_tampered_life_circle_share_is_refused_in_one_line(clinic_run, tmp_path, value, needle):
    out = _old_run(clinic_run, tmp_path)
    path = out / CITY / "district_indicators.csv"
    ind = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    ind.loc[ind["indicator"] == "life_circle_5min_complete_pct", "value"] = value
    path.write_bytes(b"\xef\xbb\xbf" + ind.to_csv(index=False, lineterminator="\r\n").encode())
    reseal(out / CITY)
    res = runner.invoke(
        app, ["report", "--city", CITY, "--out", str(out), "--district", "sample-se"]
    )
    one_line_error(res, "district_indicators.csv", "column value", needle)
    assert not (out / CITY / "sample-se" / "report.pdf").exists()
