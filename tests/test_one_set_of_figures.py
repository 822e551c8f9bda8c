"""One set of figures: `run`, `site --k 3` and `report` on the sample, then every figure shown for
a district and standard collected from every output (summary.csv, summary.xlsx, the terminal table,
the city map, index.html, the HTML and PDF reports, the proposed sites' CSV, layer and popups).
All equal after the one rounding rule (`walkcover.presentation.figures`), "no data" rows
included, and the "after proposed sites" figures too."""

from __future__ import annotations

import html
import json
import re
import subprocess

import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from walkcover.cli import app
from walkcover.presentation.figures import (
    EMPTY,
    NO_DATA,
    count_text,
    figure_text,
    pct_text,
    target_text,
    value_text,
)

runner = CliRunner()
CITY = "helsinki-sample"
SITED = "sample-sw"


@pytest.fixture(scope="module")
def made(tmp_path_factory, sample_cache):
    out = tmp_path_factory.mktemp("figures")
    common = ["--city", CITY, "--out", str(out), "--cache-dir", str(sample_cache)]
    wide = {"COLUMNS": "250"}  # the terminal's tables unwrapped, to read them back
    run = runner.invoke(app, ["run", *common], env=wide, catch_exceptions=False)
    assert run.exit_code == 0, run.output
    site = runner.invoke(
        app,
        ["site", *common, "--district", SITED, "--standard", "toilet", "--k", "3"],
        env=wide,
        catch_exceptions=False,
    )
    assert site.exit_code == 0, site.output
    rep = runner.invoke(app, ["report", "--city", CITY, "--out", str(out)], catch_exceptions=False)
    assert rep.exit_code == 0, rep.output
    return out / CITY, run.output, site.output


@pytest.fixture(scope="module")
def truth(made):
    """What every output must show, from the stored figures: the rule applied, or "no data"."""
    city, _, _ = made
    s = pd.read_csv(city / "summary.csv", dtype={"district": str, "district_id": str})
    return {
        (r.district, r.standard): NO_DATA
        if r.facilities_in_reach == 0
        else pct_text(r.residents_covered_pct)
        for r in s.itertuples()
    }


def shown(value) -> str:
    """A figure as an output stored it (a number, or text), under the one rule."""
    if isinstance(value, str):
        return NO_DATA if "no data" in value else value.rstrip("%").strip()
    return pct_text(value)


def test_the_csv_holds_no_figure_where_there_is_no_facility(made, truth):
    city, _, _ = made
    s = pd.read_csv(city / "summary.csv", dtype={"district": str})
    none = s["facilities_in_reach"] == 0
    assert none.any() and s.loc[none, "residents_covered_pct"].isna().all()
    assert s.loc[none, "meets_target"].isna().all() and (s.loc[none, "no_data_reason"] != "").all()
    assert sum(v == NO_DATA for v in truth.values()) == none.sum()


def test_the_workbook_agrees(made, truth):
    city, _, _ = made
    wb = openpyxl.load_workbook(city / "summary.xlsx", read_only=True)
    try:
        rows = list(wb["summary"].iter_rows(values_only=True))
    finally:
        wb.close()  # a read-only workbook holds its file open until closed
    head, rows = list(rows[0]), rows[1:]
    at = {c: head.index(c) for c in ("district", "standard", "residents_covered_pct")}
    reach = head.index("facilities_in_reach")
    got = {}
    for r in rows:
        value = NO_DATA if r[reach] == 0 else shown(r[at["residents_covered_pct"]])
        got[(str(r[at["district"]]), r[at["standard"]])] = value
    assert got == truth


def _terminal_rows(out: str) -> dict[tuple[str, str], list[str]]:
    """The cells of each (district, standard) row of the terminal's tables in `out`."""
    rows, district = {}, None
    for line in out.splitlines():
        m = re.search(r"\((sample-[a-z]+)\): [\d,]+ demand units", line)
        if m:
            district = m.group(1)
            continue
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if district and len(cells) == 7 and re.fullmatch(r"[a-z_]+", cells[0]):
            rows[(district, cells[0])] = cells
    return rows


def test_the_terminal_agrees(made, truth):
    _, out, _ = made
    got = {k: shown(re.sub(r" [✓✗]$", "", c[4])) for k, c in _terminal_rows(out).items()}
    assert got == truth


def _geojson_blobs(page: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(r"_add\((\{.*?\})\);\n", page, flags=re.DOTALL)]


def test_the_city_map_agrees(made, truth):
    """Each standard's layer of the city map: the district polygons' figures (in standard order)."""
    city, _, _ = made
    page = (city / "map.html").read_text(encoding="utf-8")
    summary = pd.read_csv(city / "summary.csv", dtype={"district": str})
    standards = list(dict.fromkeys(summary["standard"]))
    label = {f"{r.district_name} / {r.district_name_en}": r.district for r in summary.itertuples()}
    layers = [
        b
        for b in _geojson_blobs(page)
        if b["features"] and "label" in b["features"][0]["properties"]
    ]
    assert len(layers) == len(standards)
    got = {}
    for sid, layer in zip(standards, layers):
        for f in layer["features"]:
            p = f["properties"]
            value = NO_DATA if "no facility" in p["note"] else shown(p["pct"])
            got[(label[p["label"]], sid)] = value
    assert got == truth


def test_the_city_index_agrees(made, truth):
    city, _, _ = made
    page = (city / "index.html").read_text(encoding="utf-8")
    table = page[page.index("<table") : page.index("</table>")]
    head = re.findall(r"<th[^>]*>(.*?)</th>", table.split("</thead>")[0], flags=re.DOTALL)
    standards = [re.sub(r"<.*?>", "", h).strip() for h in head[2:]]
    got = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], flags=re.DOTALL):
        cells = [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for sid, cell in zip(standards, cells[2:]):
            got[(cells[1], sid)] = shown(cell)
    assert got == truth


def _report_figures(page: str) -> tuple[dict[str, str], list[str]]:
    """The summary table's residents figure per standard, and each standard page's."""
    table = page[page.index('<section class="summary">') :]
    table = table[: table.index("</table>")]
    summary = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], flags=re.DOTALL):
        cells = [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        summary[cells[0]] = shown(cells[8])
    pages = re.findall(r"residents within reach · 步行范围内居民</th><td>(.*?)</td>", page)
    return summary, [shown(p) for p in pages]


def test_each_html_report_agrees_with_itself_and_the_table(made, truth):
    city, _, _ = made
    for district in ("sample-nw", "sample-ne", "sample-sw", "sample-se"):
        page = (city / district / "report.html").read_text(encoding="utf-8")
        summary, pages = _report_figures(page)
        want = {sid: v for (d, sid), v in truth.items() if d == district}
        assert summary == want, district
        assert pages == list(want.values()), district


def test_each_pdf_report_prints_the_same_figures(made, truth):
    """pdftotext of the PDF: each standard's page says the figure the table has, and no figure
    a truncation would print."""
    city, _, _ = made
    for district in ("sample-sw", "sample-nw"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(city / district / "report.pdf"), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        flat = " ".join(text.split())
        for (d, _sid), value in truth.items():
            if d != district:
                continue
            if value == NO_DATA:
                assert "no data" in flat
            else:
                assert f"{value}%" in flat, (district, _sid, value)


def test_the_after_sites_figures_agree_everywhere(made):
    """The coverage after the proposed sites: the site layer, its CSV, the terminal, the report
    (page and table) and the map's popups show one figure (100.0, never a truncated 99.9)."""
    city, _, site_out = made
    folder = city / SITED
    layer = pyogrio.read_dataframe(folder / "coverage.gpkg", layer="proposed_sites")
    csv = pd.read_csv(folder / "proposed_sites.csv")
    last = float(layer["cumulative_coverage_pct"].iloc[-1])
    want = figure_text(last)
    assert want == figure_text(csv["cumulative_coverage_pct"].iloc[-1])
    assert np.allclose(layer["cumulative_coverage_pct"], csv["cumulative_coverage_pct"])
    row = next(line for line in site_out.splitlines() if "样例区" in line and "│" in line)
    assert [c.strip() for c in row.strip().strip("│").split("│")][2] == want
    page = (folder / "report.html").read_text(encoding="utf-8")
    after = re.findall(r"after 3 proposed site\(s\) · 建议选址后</th><td>(.*?)</td>", page)
    assert after == [f"{want}%"]
    table = page[page.index("coverage after %") :]
    cells = [figure_text(v) for v in layer["cumulative_coverage_pct"]]
    for cell in cells:
        assert f"<td>{cell}</td>" in table
    popups = [
        f["properties"]["cumulative"]
        for b in _geojson_blobs((folder / "map.html").read_text(encoding="utf-8"))
        for f in b["features"]
        if "cumulative" in f["properties"]
    ]
    # each site's popup (the sites are drawn in the standard's layer and its "after" overlay)
    assert popups and sorted(set(popups)) == sorted(
        {pct_text(v) for v in layer["cumulative_coverage_pct"]}
    )
    assert want == "100.0" and "99.9%" not in page


def _table_after(page: str, heading: str) -> list[list[str]]:
    """The rows (cell texts, markup stripped) of the first table after `heading` in a page."""
    part = page[page.index(heading) :]
    table = part[part.index("<tbody>") : part.index("</table>")]
    return [
        [
            html.unescape(re.sub(r"<[^>]*>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)
        ]
        for tr in re.findall(r"<tr>(.*?)</tr>", table, flags=re.DOTALL)
    ]


def test_residents_newly_covered_agree_everywhere(made):
    """Each proposed site's residents newly covered: kept as measured in the layer and its CSV
    (machine tables keep full values), shown whole in the report's table, its PDF and the map's
    popups (never 133.7 in one, 134.0 in another)."""
    city, _, _ = made
    folder = city / SITED
    layer = pyogrio.read_dataframe(folder / "coverage.gpkg", layer="proposed_sites")
    csv = pd.read_csv(folder / "proposed_sites.csv")
    gains = layer["residents_newly_covered"].to_numpy(float)
    assert np.allclose(gains, csv["residents_newly_covered"], rtol=0, atol=1e-9)
    # as measured, not rounded to a tenth first (rounding twice can move the whole number)
    assert any(abs(v - round(v, 1)) > 1e-6 for v in gains), gains
    want = [count_text(v) for v in gains]
    page = (folder / "report.html").read_text(encoding="utf-8")
    rows = _table_after(page, "Proposed sites · 建议选址")
    assert [r[2] for r in rows] == want
    popups = [
        f["properties"]["gain"]
        for b in _geojson_blobs((folder / "map.html").read_text(encoding="utf-8"))
        for f in b["features"]
        if "gain" in f["properties"]
    ]
    assert popups and set(popups) == set(want)
    text = subprocess.run(
        ["pdftotext", "-layout", str(folder / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    printed = [
        ln.split()[2] for ln in text.splitlines() if re.match(r"\s*toilet\s+\d+\s+\S+\s+\d", ln)
    ]
    assert printed[-len(want) :] == want


def test_targets_agree_everywhere(made):
    """A target reads as every percentage does (``100.0``): the terminal, the report's summary
    table and standard pages, and the city map, never 100 in one and 100% in another."""
    city, out, _ = made
    s = pd.read_csv(city / "summary.csv", dtype={"district": str, "district_id": str})
    truth = {(r.district, r.standard): target_text(r.target_pct) for r in s.itertuples()}
    got = {k: c[5] for k, c in _terminal_rows(out).items()}
    assert got == truth
    for district in ("sample-nw", "sample-se"):
        page = (city / district / "report.html").read_text(encoding="utf-8")
        rows = _table_after(page, '<section class="summary">')
        want = {sid: t for (d, sid), t in truth.items() if d == district}
        assert {r[0]: r[11] for r in rows} == want
        pages = re.findall(r"<th>target · 目标</th><td>(.*?)</td>", page)
        assert pages == [f"{t}%" for t in want.values()]
    targets = {
        f["properties"]["target"]
        for b in _geojson_blobs((city / "map.html").read_text(encoding="utf-8"))
        for f in b["features"]
        if "target" in f["properties"] and "label" in f["properties"]
    }
    assert targets == {f"{t}%" for t in truth.values()}


def test_counts_and_densities_agree_with_the_workbook(made):
    """The report's counts and densities: each value at the decimals of its unit, as the
    workbook's number format shows it (densities one decimal, counts whole, areas two)."""
    city, _, _ = made
    ind = pd.read_csv(city / "district_indicators.csv", dtype={"district_id": str})
    ind = ind[ind["district_id"] == "sample-nw"]
    ind = ind[~ind["indicator"].str.startswith("life_circle_")]
    page = (city / "sample-nw" / "report.html").read_text(encoding="utf-8")
    rows = _table_after(page, "Counts and densities · 数量与密度")
    assert [r[1] for r in rows] == [
        value_text(v, unit=u) for v, u in zip(ind["value"], ind["unit"])
    ]
    # (a count the data has none of shows "—", its target beside)
    densities = [r[1] for r in rows if r[2] == "per km²" and r[1] != EMPTY]
    assert densities and all(re.fullmatch(r"[0-9,]+\.\d", v) for v in densities)
    counts = [r[1] for r in rows if r[2] == "count" and r[1] != EMPTY]
    assert counts and all(re.fullmatch(r"[0-9,]+", v) for v in counts)
    targets = [r[3] for r in rows if r[2] == "count" and r[3] != EMPTY]
    assert targets and all(re.fullmatch(r"[0-9,]+", v) for v in targets)  # 10, never 10.0


def test_the_notebook_table_agrees(sample_results):
    """``Results._repr_html_`` (a notebook's table) writes each figure by the one rule: the
    residents' and the official figure at one decimal (half to even on the stored digits, never
    pandas' ``round``), "no data" where no facility is in reach (never 0% or blank), targets at
    one decimal, the toilets' every distance by street context."""
    from bs4 import BeautifulSoup

    from walkcover.presentation.figures import distance_text, meets_text

    s = sample_results.summary
    soup = BeautifulSoup(sample_results._repr_html_(), "html.parser")
    head = [th.get_text() for th in soup.select("thead th")]
    cells = [[td.get_text() for td in tr.select("td")] for tr in soup.select("tbody tr")]
    got = pd.DataFrame(cells, columns=head)
    assert len(got) == len(s)
    none = (s["facilities_in_reach"] == 0).to_numpy()
    assert none.any() and (~none).any()
    for col in ("residents_covered_pct", "area_covered_euclid_pct"):
        want = [pct_text(v, no_data=n) for v, n in zip(s[col], none)]
        assert got[col].tolist() == want, col
    assert got["target_pct"].tolist() == [target_text(v) for v in s["target_pct"]]
    assert got["meets_target"].tolist() == [
        meets_text(m, no_data=n) for m, n in zip(s["meets_target"], none)
    ]
    by_id = {std.id: std for std in sample_results.assessment.standards}
    assert got["threshold_m"].tolist() == [
        distance_text(by_id[sid]).removesuffix(" m") for sid in s["standard"]
    ]
    assert "300/500/800" in set(got["threshold_m"])
