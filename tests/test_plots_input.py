"""A planners' plots file for ``site`` that holds nothing usable is one line naming --plots."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import box

from walkcover._errors import ConfigError
from walkcover.siting import plot_candidates


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ({"type": "FeatureCollection", "features": []}, "holds no plot with a geometry"),
        (
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"n": 1}, "geometry": None}],
            },
            "holds no plot with a geometry",
        ),
        (b"\x00\x01 not a GIS file", "cannot be read as a GIS file"),
    ],
    ids=["empty", "no-geometry", "garbage"],
)
def test_a_plots_file_without_plots_is_named(tmp_path, content, needle):
    path = tmp_path / "plots.geojson"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        plot_candidates(path, box(0, 0, 1000, 1000), "EPSG:3067")
    text = str(e.value)
    assert text.startswith(f"--plots {str(path)!r}") and needle in text and "nan" not in text
