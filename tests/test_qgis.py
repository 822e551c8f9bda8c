"""QGIS: a district's GeoPackage opens styled as the web map is (homes by distance band, in its
colours), every layer has a default style with English and Chinese field names and an SLD, the
standards are told apart, and ``coverage.qgz`` opens every layer of the GeoPackage beside it, in
map order, over an unticked OpenStreetMap base map (issue #31, part 3)."""

from __future__ import annotations

import re
import sqlite3
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from pyproj import CRS
from shapely.geometry import Point

from walkcover.presentation.geopackage import write_layers
from walkcover.presentation.layers import demand_layer, facilities_layer
from walkcover.presentation.palette import BANDS, rgb

SLD = "{http://www.opengis.net/sld}"
SE = "{http://www.opengis.net/se}"
OGC = "{http://www.opengis.net/ogc}"
CJK = re.compile(r"[\u4e00-\u9fff]")
TITLE = "样例区 <b>&amp; \x1b[31m"


def _layers(assessment, district_id: str) -> dict[str, gpd.GeoDataFrame]:
    """A district's layers as `walkcover.presentation.outputs.write_district_files` makes them,
    with two proposed sites (rows as `walkcover.siting.proposed_sites` makes them)."""
    demand = demand_layer(assessment, district_id)
    first, second = (s.id for s in assessment.standards[:2])
    at = demand.geometry.representative_point()
    sites = gpd.GeoDataFrame(
        {
            "standard": [first, second],
            "rank": [1, 1],
            "residents_newly_covered": [12.5, 3.0],
            "cumulative_coverage_pct": [80.0, 55.5],
            "candidate_source": ["street_node", "street_node"],
            "node_osm_id": ["node/1", "node/2"],
            "method": ["greedy", "greedy"],
            "mip_gap": [0.0, 0.0],
        },
        geometry=[Point(at.iloc[0].x, at.iloc[0].y), Point(at.iloc[-1].x, at.iloc[-1].y)],
        crs=demand.crs,
    )
    return {
        "demand": demand,
        "facilities": facilities_layer(assessment, assessment.district_geometry(district_id)),
        "gaps": assessment.gaps(district_id),
        "service_areas": assessment.service_areas(district_id),
        "proposed_sites": sites,
    }


def _labels(assessment) -> dict[str, str]:
    return {s.id: f"{s.name} · {s.name_zh or s.id}" for s in assessment.standards}


@pytest.fixture(scope="module")
def written(sample_results, tmp_path_factory):
    """One district's GeoPackage and project, written twice into two folders."""
    a = sample_results.assessment
    did = str(a.districts["district_id"].iloc[0])
    folders = [tmp_path_factory.mktemp(n) for n in ("qgis-a", "qgis-b")]
    for folder in folders:
        write_layers(
            folder / "coverage.gpkg",
            _layers(a, did),
            project=folder / "coverage.qgz",
            title=TITLE,
            labels=_labels(a),
        )
    return a, folders


def _styles(gpkg: Path) -> list[tuple[str, str, int, str, str]]:
    con = sqlite3.connect(gpkg)
    try:
        return con.execute(
            "SELECT f_table_name, styleName, useAsDefault, styleQML, styleSLD FROM layer_styles "
            "ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def _qml(text: str) -> ET.Element:
    assert text.startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>")
    return ET.fromstring(text.split("'SYSTEM'>", 1)[1])


def _symbol_colours(renderer: ET.Element) -> dict[str, tuple[int, ...]]:
    out = {}
    for sym in renderer.iter("symbol"):
        opts = {o.get("name"): o.get("value") for o in sym.iter("Option") if o.get("name")}
        colour = opts.get("color") or opts.get("line_color")
        assert colour is not None
        out[sym.get("name")] = tuple(int(v) for v in colour.split(",")[:3])
    return out


def _data_layers(gpkg: Path) -> list[str]:
    return [str(n) for n, _ in pyogrio.list_layers(gpkg) if n != "layer_styles"]


def test_homes_are_coloured_by_the_web_maps_bands(written):
    """The default style of ``demand`` is the first standard's distance bands, each band's value,
    label and colour those of the web map (`palette.BANDS`), in the QML and in the SLD; every
    other standard is a further named style."""
    a, (folder, _) = written
    standards = [s.id for s in a.standards]
    demand = [s for s in _styles(folder / "coverage.gpkg") if s[0] == "demand"]
    assert [s[1] for s in demand] == standards
    assert [s[2] for s in demand] == [1] + [0] * (len(standards) - 1)
    for _, sid, _, qml, sld in demand:
        renderer = _qml(qml).find("renderer-v2")
        assert renderer is not None
        assert renderer.get("type") == "categorizedSymbol"
        assert renderer.get("attr") == f"{sid}_band"
        cats = renderer.findall("categories/category")
        assert [c.get("value") for c in cats] == list(BANDS)
        assert [c.get("label") for c in cats] == [label for _, label in BANDS.values()]
        colours = _symbol_colours(renderer)
        assert [colours[c.get("symbol")] for c in cats] == [rgb(c) for c, _ in BANDS.values()]
        # the SLD: a rule per band, filtered on the same field, in the same colours
        rules = ET.fromstring(sld.encode("utf-8")).iter(f"{SE}Rule")
        got = [
            (
                r.find(f"{OGC}Filter/{OGC}PropertyIsEqualTo/{OGC}PropertyName").text,
                r.find(f"{OGC}Filter/{OGC}PropertyIsEqualTo/{OGC}Literal").text,
                r.find(f".//{SE}Fill/{SE}SvgParameter[@name='fill']").text,
            )
            for r in rules
        ]
        assert got == [(f"{sid}_band", band, colour) for band, (colour, _) in BANDS.items()]


def test_every_layer_has_a_default_style_with_aliases_and_sld(written):
    _, (folder, _) = written
    gpkg = folder / "coverage.gpkg"
    styles = _styles(gpkg)
    layers = _data_layers(gpkg)
    assert {"demand", "facilities", "gaps", "service_areas", "proposed_sites"} <= set(layers)
    assert sorted({s[0] for s in styles}) == sorted(layers)
    for layer in layers:
        mine = [s for s in styles if s[0] == layer]
        assert [s[2] for s in mine].count(1) == 1, layer
        fields = list(pyogrio.read_info(gpkg, layer=layer)["fields"])
        for _, name, _, qml, sld in mine:
            root = _qml(qml)
            aliases = {x.get("field"): x.get("name") for x in root.iter("alias")}
            assert set(fields) <= set(aliases), (layer, name)
            for f in fields:
                # named in English and Chinese, never only by the machine name
                alias = aliases[f]
                assert " · " in alias and CJK.search(alias) and alias != f, (layer, f, alias)
            sld_root = ET.fromstring(sld.encode("utf-8"))
            assert sld_root.tag == f"{SLD}StyledLayerDescriptor"
            assert sld_root.get("version") == "1.1.0"
            assert len(list(sld_root.iter(f"{SE}Rule"))) >= 1
    # per-standard fields of homes are named by their standard
    qml = next(s[3] for s in styles if s[0] == "demand" and s[2])
    aliases = {x.get("field"): x.get("name") for x in _qml(qml).iter("alias")}
    assert aliases["toilet_dist_m"] == "toilet: walking distance (m) · 步行距离（米）"
    safe = "primary_school: safe walking distance (m) · 安全步行距离（米）"
    assert aliases["primary_school_safe_dist_m"] == safe


@pytest.mark.parametrize("layer", ["facilities", "gaps", "service_areas", "proposed_sites"])
def test_a_rule_and_a_symbol_per_standard(written, layer):
    """Facilities, gaps, service areas and proposed sites: a rule per standard of the run (in
    its order), each drawn differently, so that nine standards never pile up in one symbol; as
    the web map, only the first standard shows until another is ticked (every proposed site
    shows)."""
    a, (folder, _) = written
    standards = [s.id for s in a.standards]
    (style,) = [s for s in _styles(folder / "coverage.gpkg") if s[0] == layer]
    renderer = _qml(style[3]).find("renderer-v2")
    assert renderer is not None and renderer.get("type") == "RuleRenderer"
    rules = renderer.findall("rules/rule")
    assert [r.get("filter") for r in rules] == [f"\"standard\" = '{s}'" for s in standards]
    # the legend names each standard as the reports do
    assert [r.get("label") for r in rules] == [_labels(a)[s] for s in standards]
    shown = [r.get("checkstate") for r in rules]
    if layer == "proposed_sites":
        assert set(shown) == {"1"}
    else:
        assert shown == ["1"] + ["0"] * (len(standards) - 1)
    looks = set()
    for r in rules:
        (sym,) = [s for s in renderer.iter("symbol") if s.get("name") == r.get("symbol")]
        opts = {o.get("name"): o.get("value") for o in sym.iter("Option") if o.get("name")}
        looks.add(tuple(sorted(opts.items())))
    assert len(looks) == len(rules) == len(standards)
    # the SLD has the same rules
    sld_rules = ET.fromstring(style[4].encode("utf-8")).iter(f"{SE}Rule")
    assert [r.find(f".//{OGC}Literal").text for r in sld_rules] == standards


def _canonical(el: ET.Element | None) -> str:
    assert el is not None
    return ET.canonicalize(ET.tostring(el, encoding="unicode"), strip_text=True)


def _project(folder: Path) -> ET.Element:
    with zipfile.ZipFile(folder / "coverage.qgz") as z:
        names = z.namelist()
        assert names == ["coverage.qgs"]
        assert z.getinfo("coverage.qgs").date_time == (2000, 1, 1, 0, 0, 0)
        text = z.read("coverage.qgs").decode("utf-8")
    assert text.startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>")
    return ET.fromstring(text.split("'SYSTEM'>", 1)[1])


def test_the_project_opens_every_layer_of_the_geopackage(written):
    a, (folder, other) = written
    gpkg = folder / "coverage.gpkg"
    root = _project(folder)
    assert root.tag == "qgis" and root.get("version", "").startswith("3.")
    # the title as given, escaped; the control character shown, not written raw
    assert root.findtext("title") == "样例区 <b>&amp; \\x1b[31m"
    assert root.find("properties/Paths/Absolute").text == "false"  # relative paths
    layers = _data_layers(gpkg)
    tree = root.findall("layer-tree-group/layer-tree-layer")
    names = [t.get("name") for t in tree]
    # map order: proposed sites over facilities over gaps over homes, the base map last
    expected = [
        n
        for n in (
            "proposed_sites", "facilities", "facility_lines", "facility_areas", "gaps",
            "demand_points", "demand_lines", "demand", "service_areas",
        )
        if n in layers
    ] + ["OpenStreetMap"]  # fmt: skip
    assert names == expected
    assert sorted(names[:-1]) == sorted(layers)
    assert [t.get("checked") for t in tree] == ["Qt::Checked"] * len(layers) + ["Qt::Unchecked"]
    maplayers = {m.findtext("id"): m for m in root.iter("maplayer")}
    assert [t.get("id") for t in tree] == list(maplayers)
    assert [x.get("id") for x in root.findall("layerorder/layer")] == list(maplayers)
    styles = _styles(gpkg)
    crs = CRS.from_user_input(pyogrio.read_info(gpkg, layer="demand")["crs"])
    assert CRS.from_wkt(root.findtext("projectCrs/spatialrefsys/wkt")) == crs
    for node in tree[:-1]:
        ml = maplayers[node.get("id")]
        source = ml.findtext("datasource")
        assert source == node.get("source")
        path, layer = re.fullmatch(r"\./(.+)\|layername=(.+)", source).groups()
        # resolves, relative to the project, to a layer of the GeoPackage beside it
        target = (folder / path).resolve()
        assert target == gpkg.resolve() and layer in layers and layer == node.get("name")
        assert ml.findtext("provider") == "ogr"
        assert ml.get("type") == "vector"
        info = pyogrio.read_info(target, layer=layer)
        assert ml.get("wkbType") == info["geometry_type"]
        assert CRS.from_wkt(ml.findtext("srs/spatialrefsys/wkt")) == CRS(info["crs"])
        assert ml.findtext("srs/spatialrefsys/authid") == CRS(info["crs"]).to_string()
        # the layer's own style is its default style in the GeoPackage
        default = next(s for s in styles if s[0] == layer and s[2])
        want = _canonical(_qml(default[3]).find("renderer-v2"))
        assert _canonical(ml.find("renderer-v2")) == want
        assert ml.find("aliases") is not None
        mgr = ml.find("map-layer-style-manager")
        assert mgr.get("current") == default[1]
        assert [s.get("name") for s in mgr] == [s[1] for s in styles if s[0] == layer]
    # the homes' other standards: a right-click away, each with its own style
    demand = next(m for m in maplayers.values() if m.findtext("layername") == "demand")
    others = demand.findall("map-layer-style-manager/map-layer-style")
    assert len(others) == len(a.standards)
    assert others[1].find("qgis/renderer-v2").get("attr") == f"{a.standards[1].id}_band"
    # the base map: OpenStreetMap's tiles, credited
    osm = maplayers[tree[-1].get("id")]
    assert osm.get("type") == "raster" and osm.findtext("provider") == "wms"
    src = osm.findtext("datasource")
    assert src.startswith("type=xyz&url=https://tile.openstreetmap.org/%7Bz%7D/%7Bx%7D/%7By%7D.png")
    assert osm.findtext("attribution") == "© OpenStreetMap contributors"
    # the same layers give the same bytes
    assert (folder / "coverage.qgz").read_bytes() == (other / "coverage.qgz").read_bytes()
    assert (folder / "coverage.gpkg").read_bytes() == (other / "coverage.gpkg").read_bytes()
