"""The notebooks run top to bottom on the sample city, and are stored without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_two_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_explore_district.ipynb",
        "02_compare_districts.ipynb",
    ]


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
    # the last cell shows a map, self-contained: Leaflet inlined, nothing fetched from a CDN
    shown = [str(o.get("data", {}).get("text/html", "")) for o in nb.cells[-1].outputs]
    assert any("leaflet" in h.lower() and "srcdoc" in h for h in shown)
    assert not any("cdn.jsdelivr" in h for h in shown)
