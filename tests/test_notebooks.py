"""The notebooks run top to bottom on the sample city, and are stored without outputs."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_use_only_the_public_api_in_three_lines():
    assert [p.name for p in NOTEBOOKS] == [
        "01_explore_district.ipynb",
        "02_compare_districts.ipynb",
    ]
    for path in NOTEBOOKS:
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        first = [line for line in code[0].splitlines() if line.strip()]
        assert first[0] == "import walkcover as wc" and "wc.assess(" in first[1] and len(first) <= 3
        for cell in code:
            assert "from walkcover" not in cell and "import walkcover." not in cell, cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "store notebooks without outputs"
    )
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        + str(o.get("data", {}).get("text/html", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )  # fmt: skip
    # the results show their summary; what each notebook prints comes from the measured figures
    assert "residents_covered_pct" in text
    if path.name.startswith("01"):
        assert "found by amenity=toilets" in text and "Facilities" in text
        assert re.search(r"\d+\.\d% → \d+\.\d% \((optimal|greedy|HiGHS)", text), text[-2000:]
    else:
        assert "residents_uncovered" in text and "sample-nw" in text
    # a cell shows a map, self-contained: Leaflet inlined, nothing fetched from a CDN
    shown = [str(o.get("data", {}).get("text/html", ""))
             for c in nb.cells if c.cell_type == "code" for o in c.outputs]  # fmt: skip
    assert any("leaflet" in h.lower() and "srcdoc" in h for h in shown)
    assert not any("cdn.jsdelivr" in h for h in shown)
    # indicators are shown by their names (as the library's tables have them), never by their ids
    tables = "\n".join(
        str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" and "district_rows" in c.source
        for o in c.outputs
    )  # fmt: skip
    assert not re.search(r"\b[a-z_]+\.(density|per_capita|coverage)\b", tables), tables
    if path.name.startswith("02"):
        assert "Public toilets per km²" in tables and "Park green space per resident" in tables


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_a_guided_analysis(path):
    """Every code cell follows a markdown cell that says, in words, what the step is for; charts of
    homes weighted by residents say so on their axis."""
    cells = nbformat.read(path, as_version=4).cells
    for before, cell in itertools.pairwise(cells):
        if cell.cell_type == "code":
            assert before.cell_type == "markdown", cell.source
            words = re.sub(r"^#+ .*$", "", before.source, flags=re.M).split()
            assert len(words) >= 12, before.source
    for cell in cells:
        if "weights=" in cell.source and ".hist(" in cell.source:
            assert 'set_ylabel("residents · 居民")' in cell.source, cell.source
