"""A hand-made city whose names are hostile: script in every form a name can smuggle it, Rich
markup, spreadsheet formulas, backslashes. Shared by the hostile-input tests."""

from __future__ import annotations

import json

import numpy as np
import pyproj
import shapely
from shapely.geometry import box, mapping

from conftest import LOCAL_CRS, box_way, write_city

#: Would run as script if a map put it in a template literal (`${…}`), in HTML (`<img onerror>`),
#: or in an attribute; would break a JavaScript string (`\u` not followed by hex digits).
SCRIPT_NAME = '${document.title+=1}<img src=x onerror="window.__pwned=1">\'"`'
BACKSLASH_NAME = "C:\\users\\new\\x41 \\u"
FORMULA_NAME = '=HYPERLINK("https://example.invalid","点我")'
DISTRICT_NAME = "[/b][north] 区 $\\frac{1}{"
DISTRICT_NAME_EN = "<script>window.__pwned=2</script> ${document.title+=2} [/b]\x1b[31mred"


def hostile_city(tmp_path):
    """Two districts: ``d1`` (homes, streets and two toilets with hostile names) and ``d2`` (no data
    at all). Returns (city config path, osm path)."""
    nodes: dict = {
        1: (0, 0),
        2: (200, 0),
        3: (400, 0),
        4: (200, -100),
        5: (200, 100),
        6: (100, 5, {"amenity": "toilets", "name": SCRIPT_NAME}),
        7: (350, -5, {"amenity": "toilets", "name": BACKSLASH_NAME}),
    }
    ways = [
        (100, [1, 2, 3], {"highway": "residential", "name": FORMULA_NAME}),
        (101, [4, 2, 5], {"highway": "footway"}),
        box_way(200, 10, 40, 10, 60, 30, {"building": "apartments"}, nodes),
        box_way(
            201, 20, 300, 10, 320, 30, {"building": "apartments", "building:levels": "4"}, nodes
        ),
        box_way(202, 30, 140, -60, 160, -40, {"building": "house"}, nodes),
    ]
    cfg, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-50, -150, 450, 150))
    inv = pyproj.Transformer.from_crs(LOCAL_CRS, 4326, always_xy=True)

    def wgs(g):
        return shapely.transform(g, lambda xy: np.column_stack(inv.transform(xy[:, 0], xy[:, 1])))

    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"id": "d1", "name": DISTRICT_NAME, "name_en": DISTRICT_NAME_EN},
             "geometry": mapping(wgs(box(-50, -150, 450, 150)))},
            {"type": "Feature", "properties": {"id": "d2", "name": FORMULA_NAME, "name_en": "Empty"},
             "geometry": mapping(wgs(box(2000, 2000, 2200, 2200)))},
        ],
    }  # fmt: skip
    (tmp_path / "districts.geojson").write_text(
        json.dumps(fc, ensure_ascii=False), encoding="utf-8"
    )
    return cfg, osm


def tree_digest(folder):
    """Every entry under `folder` and `folder` itself: files by content hash and mode, links by
    their targets (never followed), folders as such. Equal digests: nothing there changed."""
    import hashlib

    out = {}
    for p in sorted([folder, *folder.rglob("*")]):
        key = str(p.relative_to(folder))
        if p.is_symlink():
            out[key] = "link:" + str(p.readlink())
        elif p.is_file():
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest() + f":{p.stat().st_mode:o}"
        else:
            out[key] = "dir"
    return out


def plant_canary(victim):
    """A planner's own folder beside ``--out`` (``maps/mine.png``, ``report.html``,
    ``d1/coverage.gpkg``) that nothing walkcover does may touch: compare `tree_digest` after."""
    (victim / "maps").mkdir(parents=True)
    (victim / "maps" / "mine.png").write_bytes(b"\x89PNG planner's own file")
    (victim / "report.html").write_text("the planner's own page", encoding="utf-8")
    (victim / "d1").mkdir()
    (victim / "d1" / "coverage.gpkg").write_bytes(b"the planner's own GeoPackage")
    return victim
