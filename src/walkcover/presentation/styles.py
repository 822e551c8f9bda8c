"""QGIS styles stored in a GeoPackage (its ``layer_styles`` table), so the layers open coloured.

QGIS reads the table when a layer is added and applies the style marked ``useAsDefault``. Every
layer has one:

* homes (``demand``, ``demand_points``, ``demand_lines``): one style per standard, coloured by
  that standard's distance band (``<standard>_band``) in the web and printed maps' colours
  (`walkcover.presentation.palette.BANDS`); the first standard's is the default, the others a
  right-click away (Styles ▸ …, or Properties ▸ Style ▸ Load Style ▸ From database);
* facilities, facility areas and lines, gaps, service areas and proposed sites: a rule per
  standard (``"standard" = '<id>'``), each with its own marker shape, fill pattern or dash, so
  the nine standards never pile up in one symbol. As the web map shows one standard at a time,
  only the first standard's rule is ticked for facilities, gaps and service areas (tick the
  others in the layer's legend); every proposed site shows.

Each style also names every field in English and Chinese (QML ``<aliases>``) and carries an SLD
(OGC Symbology Encoding 1.1) of the same classes beside the QML (``styleSLD``), for GeoServer and
other readers. Both are built with `xml.etree.ElementTree`, which escapes every name and value.
"""

from __future__ import annotations

import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from walkcover.presentation.palette import (
    BANDS,
    FACILITY_COLOUR,
    GAP_COLOUR,
    NO_DATA_GREY,
    SERVICE_AREA_COLOUR,
    SITE_COLOUR,
    SITE_OUTLINE,
    rgb,
)

#: Band → (RGB, label) for homes: the web maps' and the printed maps' bands, from one palette.
BAND_STYLE = {band: (rgb(colour), label) for band, (colour, label) in BANDS.items()}
FACILITY_RGB = rgb(FACILITY_COLOUR[0])
SERVICE_AREA_RGB = rgb(SERVICE_AREA_COLOUR)
GAP_RGB = rgb(GAP_COLOUR)
SITE_RGB = rgb(SITE_COLOUR)
SITE_OUTLINE_RGB = rgb(SITE_OUTLINE)
_HOME_OUTLINE = (60, 60, 60)
_WHITE = (255, 255, 255)

#: The QGIS release the styles and projects are written for (the LTR Debian 12 and most offices
#: run); later releases read them as they are.
QGIS_VERSION = "3.28.0-Firenze"
DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"

#: What tells one standard from the next when several are shown, in the standards' order (then
#: again from the start): marker shapes, fill patterns (QGIS brush styles) and outline dashes.
MARKER_SHAPES = (
    "circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross_fill",
    "octagon",
)  # fmt: skip
#: Proposed sites: diamonds first, as the printed maps draw them.
SITE_SHAPES = ("diamond", *(s for s in MARKER_SHAPES if s != "diamond"))
FILL_PATTERNS = (
    "solid", "b_diagonal", "f_diagonal", "horizontal", "vertical", "cross", "diagonal_x",
    "dense4", "dense6",
)  # fmt: skip
DASHES = ("dash", "solid", "dot", "dash dot", "dash dot dot")
#: QGIS marker shapes as SLD well-known names (SLD knows fewer; the rest drawn as the nearest).
_SLD_SHAPES = {"diamond": "square", "pentagon": "star", "hexagon": "circle", "cross_fill": "cross",
               "octagon": "circle"}  # fmt: skip
_SLD_DASHES = {"solid": None, "dash": "4 2", "dot": "1 2", "dash dot": "4 2 1 2",
               "dash dot dot": "4 2 1 2 1 2"}  # fmt: skip

#: Field → "English · 中文" as QGIS shows it (attribute table, identify, forms). A per-standard
#: field ``<standard>_<base>`` is named "<standard>: <alias of base>".
FIELD_ALIASES = {
    "fid": "feature id · 要素编号",
    "osm_id": "OSM id · OSM编号",
    "kind": "kind · 类型",
    "building": "building type · 建筑类型",
    "levels": "levels · 层数",
    "levels_from": "levels from · 层数来源",
    "floor_area_m2": "floor area (m²) · 建筑面积（平方米）",
    "residents": "residents · 居民数",
    "standard": "standard · 标准",
    "name": "name · 名称",
    "matched_by": "matched by · 匹配依据",
    "counts": "counts · 计入",
    "reason": "reason · 原因",
    "snapped": "on a street · 已接入路网",
    "entrances": "entrances · 出入口数",
    "reached_by": "reached by · 到达方式",
    "enclosed_pct": "enclosed (%) · 围合比例（%）",
    "capacity": "capacity (places, beds) · 容量（学位、床位）",
    "capacity_source": "capacity from · 容量来源",
    "in_district": "in the district · 位于本区",
    "rank": "rank · 排序",
    "residents_uncovered": "residents not covered · 未覆盖居民",
    "units_uncovered": "homes not covered · 未覆盖住宅",
    "area_m2": "area (m²) · 面积（平方米）",
    "dist_m_at_centre": "walk at centre (m) · 中心步行距离（米）",
    "status_at_centre": "status at centre · 中心状态",
    "centre_x_m": "centre x (m) · 中心X（米）",
    "centre_y_m": "centre y (m) · 中心Y（米）",
    "centre_lon": "centre longitude · 中心经度",
    "centre_lat": "centre latitude · 中心纬度",
    "threshold_m": "distance standard (m) · 服务半径（米）",
    "residents_newly_covered": "residents newly covered · 新增覆盖居民",
    "cumulative_coverage_pct": "coverage after (%) · 累计覆盖率（%）",
    "candidate_source": "candidate from · 候选来源",
    "node_osm_id": "street node (OSM) · 路网节点",
    "method": "method · 方法",
    "mip_gap": "optimality gap · 最优间隙",
}
#: Per-standard fields of homes: ``<standard>_<base>`` → alias of base.
STANDARD_FIELD_ALIASES = {
    "dist_m": "walking distance (m) · 步行距离（米）",
    "covered": "covered · 已覆盖",
    "status": "status · 状态",
    "band": "distance band · 距离分级",
    "context": "street context · 街道类型",
    "safe_dist_m": "safe walking distance (m) · 安全步行距离（米）",
    "safe_covered": "covered, safe route · 安全路线覆盖",
    "safe_status": "status, safe route · 安全路线状态",
    "nearest2_m": "walk to the 2nd nearest (m) · 第二近设施步行距离（米）",
    "nearest3_m": "walk to the 3rd nearest (m) · 第三近设施步行距离（米）",
    "n_within": "facilities within the standard · 服务半径内设施数",
    "access": "capacity per 1,000 residents (E2SFCA) · 千人拥有量（E2SFCA）",
    "after_dist_m": "walking distance after new sites (m) · 新增设施后步行距离（米）",
    "after_status": "status after new sites · 新增设施后状态",
    "after_band": "distance band after new sites · 新增设施后距离分级",
}
_AFTER = "_after"


@dataclass(frozen=True)
class LayerKind:
    """What a layer's style depends on.

    Attributes
    ----------
    family
        Geometry family: ``point``, ``line`` or ``polygon``.
    fields
        The layer's fields (its columns but geometry), in order.
    standards
        The standards a rule is made for (layers with a ``standard`` field): the run's, in its
        order, then any other the layer holds.
    """

    family: str
    fields: tuple[str, ...]
    standards: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerStyle:
    """One style of one layer, as a row of ``layer_styles``."""

    layer: str
    name: str
    qml: str
    sld: str
    default: bool


# --- QML ------------------------------------------------------------------------------------------


def _rgba(colour: tuple[int, int, int], alpha: int = 255) -> str:
    return ",".join(map(str, (*colour, alpha)))


def _option_map(parent: ET.Element, opts: dict[str, str]) -> None:
    m = ET.SubElement(parent, "Option", type="Map")
    for k, v in opts.items():
        ET.SubElement(m, "Option", name=k, value=v, type="QString")


@dataclass(frozen=True)
class _Look:
    """One symbol: its geometry kind and how it is drawn (for QML and SLD alike)."""

    kind: str  # marker, fill, line
    fill: tuple[int, int, int] | None
    alpha: int = 255
    outline: tuple[int, int, int] = _HOME_OUTLINE
    outline_mm: float = 0.1
    shape: str = "circle"
    size_mm: float = 2.4
    pattern: str = "solid"
    dash: str = "solid"


def _symbol(parent: ET.Element, name: str, look: _Look) -> None:
    """A QGIS symbol (``<symbol>``) for `look`."""
    typ = {"marker": "marker", "fill": "fill", "line": "line"}[look.kind]
    sym = ET.SubElement(
        parent, "symbol", type=typ, name=name, alpha="1", clip_to_extent="1", force_rhr="0"
    )
    if look.kind == "marker":
        cls = "SimpleMarker"
        opts = {
            "name": look.shape,
            "color": _rgba(look.fill or _WHITE, look.alpha),
            "outline_color": _rgba(look.outline),
            "outline_style": "solid",
            "outline_width": str(look.outline_mm),
            "size": str(look.size_mm),
        }
    elif look.kind == "line":
        cls = "SimpleLine"
        opts = {
            "line_color": _rgba(look.outline, look.alpha),
            "line_style": look.dash,
            "line_width": str(look.outline_mm),
        }
    else:
        cls = "SimpleFill"
        opts = {
            "color": _rgba(look.fill, look.alpha) if look.fill else "0,0,0,0",
            "style": look.pattern if look.fill else "no",
            "outline_color": _rgba(look.outline),
            "outline_style": look.dash,
            "outline_width": str(look.outline_mm),
        }
    layer = ET.SubElement(sym, "layer", {"class": cls, "enabled": "1", "locked": "0", "pass": "0"})
    _option_map(layer, opts)


def _qgis_root() -> ET.Element:
    return ET.Element(
        "qgis", version=QGIS_VERSION, styleCategories="Symbology|Fields|AttributeTable"
    )


def _aliases(root: ET.Element, fields: tuple[str, ...]) -> None:
    """``<aliases>``: every field named in English and Chinese (``fid`` first, as QGIS lists a
    GeoPackage's fields)."""
    el = ET.SubElement(root, "aliases")
    for i, f in enumerate(("fid", *fields)):
        ET.SubElement(el, "alias", field=f, index=str(i), name=field_alias(f))


def field_alias(field: str) -> str:
    """The English · Chinese name QGIS shows for `field` (the field itself if it has none)."""
    if field in FIELD_ALIASES:
        return FIELD_ALIASES[field]
    # the longest base first: ``<id>_safe_dist_m`` is a safe walk, not a walk of ``<id>_safe``
    for base in sorted(STANDARD_FIELD_ALIASES, key=len, reverse=True):
        if field.endswith(f"_{base}") and len(field) > len(base) + 1:
            return f"{field[: -len(base) - 1]}: {STANDARD_FIELD_ALIASES[base]}"
    if field.startswith("residents_"):
        group = field.removeprefix("residents_")
        return f"residents, {group} · 居民（{group}）"
    tier = re.fullmatch(r"life_circle_(5|10|15)min_(complete|found)", field)
    if tier:
        minutes, what = tier.groups()
        zh = {"5": "五", "10": "十", "15": "十五"}[minutes]
        return (
            f"{minutes}-minute life circle complete · {zh}分钟生活圈配套完整"
            if what == "complete"
            else f"{minutes}-minute life circle: required facilities found · "
            f"{zh}分钟生活圈已具备配套数"
        )
    return field


def _qml(renderer: ET.Element, fields: tuple[str, ...]) -> str:
    root = _qgis_root()
    root.append(renderer)
    _aliases(root, fields)
    return DOCTYPE + ET.tostring(root, encoding="unicode")


def _renderer(typ: str, **attrs: str) -> ET.Element:
    return ET.Element(
        "renderer-v2",
        {"type": typ, **attrs, "symbollevels": "0", "enableorderby": "0", "forceraster": "0"},
    )


def _band_look(kind: str, colour: tuple[int, int, int]) -> _Look:
    if kind == "line":
        return _Look("line", None, outline=colour, outline_mm=0.8)
    return _Look(kind, colour, alpha=200 if kind == "fill" else 255,
                 outline=_WHITE if kind == "marker" else _HOME_OUTLINE)  # fmt: skip


def categorized_qml(field: str, kind: str, fields: tuple[str, ...] = ()) -> str:
    """Homes coloured by `field` (a standard's distance band), as the maps colour them.

    Parameters
    ----------
    field
        The ``<standard>_band`` field.
    kind
        ``marker``, ``fill`` or ``line``: the homes' symbols.
    fields
        The layer's fields, for their aliases.
    """
    r = _renderer("categorizedSymbol", attr=field)
    cats = ET.SubElement(r, "categories")
    syms = ET.SubElement(r, "symbols")
    for i, (value, (colour, label)) in enumerate(BAND_STYLE.items()):
        ET.SubElement(cats, "category", symbol=str(i), value=value, label=label, render="true")
        _symbol(syms, str(i), _band_look(kind, colour))
    return _qml(r, fields)


def _expression_text(value: str) -> str:
    """`value` as a QGIS expression string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _standard_filter(sid: str) -> str:
    return f'"standard" = {_expression_text(sid)}'


def rule_qml(looks: list[tuple[str, str, _Look, bool]], fields: tuple[str, ...]) -> str:
    """A rule per standard: ``(standard, legend label, symbol, shown)``; a rule not `shown` is
    unticked in the legend (one click shows it)."""
    r = _renderer("RuleRenderer")
    rules = ET.SubElement(r, "rules", key="{walkcover-root}")
    syms = ET.SubElement(r, "symbols")
    for i, (sid, label, look, shown) in enumerate(looks):
        ET.SubElement(
            rules,
            "rule",
            key=f"{{walkcover-{i}}}",
            filter=_standard_filter(sid),
            symbol=str(i),
            label=xml_text(label),
            checkstate="1" if shown else "0",
        )
        _symbol(syms, str(i), look)
    return _qml(r, fields)


def single_qml(look: _Look, fields: tuple[str, ...]) -> str:
    """One symbol for every feature (a layer with no standard)."""
    r = _renderer("singleSymbol")
    _symbol(ET.SubElement(r, "symbols"), "0", look)
    return _qml(r, fields)


# --- SLD ------------------------------------------------------------------------------------------

_SLD = "http://www.opengis.net/sld"
_SE = "http://www.opengis.net/se"
_OGC = "http://www.opengis.net/ogc"
_XLINK = "http://www.w3.org/1999/xlink"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
for _prefix, _uri in (("sld", _SLD), ("se", _SE), ("ogc", _OGC), ("xlink", _XLINK), ("xsi", _XSI)):
    ET.register_namespace(_prefix, _uri)


def _se(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{_SE}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _sld_param(parent: ET.Element, name: str, value: str) -> None:
    _se(parent, "SvgParameter", value, name=name)


def _sld_stroke(
    parent: ET.Element, colour: tuple[int, int, int], width_mm: float, dash: str, alpha: int = 255
) -> None:
    stroke = _se(parent, "Stroke")
    _sld_param(stroke, "stroke", _hex(colour))
    if alpha < 255:
        _sld_param(stroke, "stroke-opacity", f"{alpha / 255:.2f}")
    _sld_param(stroke, "stroke-width", f"{width_mm * 3.78:.2f}")  # mm → pixels at 96 dpi
    pattern = _SLD_DASHES.get(dash)
    if pattern:
        _sld_param(stroke, "stroke-dasharray", pattern)


def _sld_fill(parent: ET.Element, colour: tuple[int, int, int], alpha: int) -> None:
    fill = _se(parent, "Fill")
    _sld_param(fill, "fill", _hex(colour))
    _sld_param(fill, "fill-opacity", f"{alpha / 255:.2f}")


def _sld_symbolizer(rule: ET.Element, look: _Look) -> None:
    if look.kind == "marker":
        graphic = _se(_se(rule, "PointSymbolizer"), "Graphic")
        mark = _se(graphic, "Mark")
        _se(mark, "WellKnownName", _SLD_SHAPES.get(look.shape, look.shape))
        _sld_fill(mark, look.fill or _WHITE, look.alpha)
        _sld_stroke(mark, look.outline, look.outline_mm, "solid")
        _se(graphic, "Size", f"{look.size_mm * 3.78:.1f}")
    elif look.kind == "line":
        _sld_stroke(
            _se(rule, "LineSymbolizer"), look.outline, look.outline_mm, look.dash, look.alpha
        )
    else:
        sym = _se(rule, "PolygonSymbolizer")
        if look.fill:
            _sld_fill(sym, look.fill, look.alpha)
        _sld_stroke(sym, look.outline, look.outline_mm, look.dash)


def _sld(layer: str, rules: Sequence[tuple[str, str | None, str | None, _Look]]) -> str:
    """An SLD 1.1 of `rules`: ``(title, field, value, look)``, a rule per class (filtered by
    ``field = value``; none: every feature)."""
    root = ET.Element(
        f"{{{_SLD}}}StyledLayerDescriptor",
        {"version": "1.1.0",
         f"{{{_XSI}}}schemaLocation": "http://www.opengis.net/sld "
         "http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd"},
    )  # fmt: skip
    named = ET.SubElement(root, f"{{{_SLD}}}NamedLayer")
    _se(named, "Name", layer)
    style = ET.SubElement(named, f"{{{_SLD}}}UserStyle")
    _se(style, "Name", layer)
    fts = _se(style, "FeatureTypeStyle")
    for title, field, value, look in rules:
        rule = _se(fts, "Rule")
        _se(rule, "Name", title)
        _se(_se(rule, "Description"), "Title", title)
        if field is not None and value is not None:
            flt = ET.SubElement(rule, f"{{{_OGC}}}Filter")
            eq = ET.SubElement(flt, f"{{{_OGC}}}PropertyIsEqualTo")
            ET.SubElement(eq, f"{{{_OGC}}}PropertyName").text = field
            ET.SubElement(eq, f"{{{_OGC}}}Literal").text = value
        _sld_symbolizer(rule, look)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


# --- Styles of a run's layers ---------------------------------------------------------------------


def _kind(family: str) -> str:
    return {"point": "marker", "line": "line"}.get(family, "fill")


def _standard_look(layer: str, kind: str, i: int) -> _Look:
    """The symbol of the `i`-th standard on `layer`."""
    shape = MARKER_SHAPES[i % len(MARKER_SHAPES)]
    pattern = FILL_PATTERNS[i % len(FILL_PATTERNS)]
    dash = DASHES[i % len(DASHES)]
    # past the dashes, the same dashes drawn wider: ten standards told apart by outline alone
    wider = 0.4 * ((i // len(DASHES)) % 2)
    if layer == "proposed_sites":
        return _Look("marker", SITE_RGB, outline=SITE_OUTLINE_RGB, outline_mm=0.4,
                     shape=SITE_SHAPES[i % len(SITE_SHAPES)], size_mm=4.0)  # fmt: skip
    if layer == "gaps":
        if kind != "fill":
            return _Look(
                kind, GAP_RGB, outline=GAP_RGB, outline_mm=0.6 + wider, dash=dash, shape=shape
            )
        return _Look("fill", None, outline=GAP_RGB, outline_mm=0.6 + wider, dash=dash)
    if layer == "service_areas":
        if kind != "fill":
            return _Look(
                kind, SERVICE_AREA_RGB, outline=SERVICE_AREA_RGB, outline_mm=0.6 + wider,
                dash=dash, shape=shape,
            )  # fmt: skip
        return _Look("fill", SERVICE_AREA_RGB, alpha=90, outline=SERVICE_AREA_RGB,
                     outline_mm=0.2, pattern=pattern)  # fmt: skip
    # facilities: points, areas, lines
    if kind == "marker":
        return _Look("marker", FACILITY_RGB, outline=_WHITE, outline_mm=0.3, shape=shape,
                     size_mm=3.0)  # fmt: skip
    if kind == "line":
        return _Look("line", None, outline=FACILITY_RGB, outline_mm=0.8 + wider, dash=dash)
    return _Look("fill", FACILITY_RGB, alpha=90, outline=FACILITY_RGB, outline_mm=0.3,
                 pattern=pattern)  # fmt: skip


def _is_home_layer(name: str) -> bool:
    return name.startswith("demand")


def layer_styles(
    layers: dict[str, LayerKind], *, labels: Mapping[str, str] | None = None
) -> list[LayerStyle]:
    """The styles of a run's layers, every layer at least one (its default first).

    Parameters
    ----------
    layers
        Layer name → what its style depends on (`LayerKind`).
    labels
        Standard id → its name in the legends (e.g. "Public toilet · 公厕"); the id where none.

    Returns
    -------
    list of LayerStyle
        Homes: one style per standard, by its distance band (``<id>_band``; after proposed
        sites, ``<id>_after_band``), the first the default. Other layers: one style, a rule per
        standard (``standard`` field), or a single symbol where the layer has no standard.
    """
    out: list[LayerStyle] = []
    for name, k in layers.items():
        kind = _kind(k.family)
        if _is_home_layer(name):
            bands = [f for f in k.fields if f.endswith("_band")]
            for i, field in enumerate(bands):
                sid = field.removesuffix("_band")
                rules = [
                    (label, field, value, _band_look(kind, colour))
                    for value, (colour, label) in BAND_STYLE.items()
                ]
                out.append(
                    LayerStyle(
                        name,
                        sid,
                        categorized_qml(field, kind, k.fields),
                        _sld(f"{name} · {sid}", rules),
                        i == 0,
                    )
                )
            if bands:
                continue
            # homes with no standard measured: grey, as homes with no figure are on the maps
            look = _band_look(kind, rgb(NO_DATA_GREY))
            sld = _sld(name, [(name, None, None, look)])
            out.append(LayerStyle(name, name, single_qml(look, k.fields), sld, True))
            continue
        if k.standards and "standard" in k.fields:
            looks = [
                (
                    sid,
                    (labels or {}).get(sid, sid),
                    _standard_look(name, kind, i),
                    name == "proposed_sites" or i == 0,
                )
                for i, sid in enumerate(k.standards)
            ]
            qml = rule_qml(looks, k.fields)
            sld = _sld(name, [(label, "standard", sid, look) for sid, label, look, _ in looks])
        else:
            look = _standard_look(name, kind, 0)
            qml = single_qml(look, k.fields)
            sld = _sld(name, [(name, None, None, look)])
        out.append(LayerStyle(name, name, qml, sld, True))
    return out


#: The time stamped in a GeoPackage's ``gpkg_contents.last_change`` and ``layer_styles``: fixed, so
#: that the same inputs give the same file, byte for byte (``run.json`` says when a run was made).
STAMP = "2000-01-01T00:00:00.000Z"
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: object) -> str:
    """`value` as text XML 1.0 can hold: a control character is shown as ``\\x1b`` (as in the
    terminal), never written raw (no XML reader would open the file)."""
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def write_layer_styles(gpkg: Path, styles: list[LayerStyle]) -> None:
    """Store `styles` in the GeoPackage's ``layer_styles`` table (made as QGIS makes it, and
    registered as an attribute table), and set its time stamps to `STAMP`."""
    con = sqlite3.connect(gpkg)
    try:
        if not styles:
            con.execute("UPDATE gpkg_contents SET last_change = ?", (STAMP,))
            con.commit()
            return
        geom = dict(
            con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall()
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
            "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
            "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
            "update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
        )
        con.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles')"
        )
        con.executemany(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
            "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner, "
            "update_time) VALUES ('', '', ?, ?, ?, ?, ?, ?, 'walkcover', '', ?)",
            [
                (s.layer, geom.get(s.layer, "geom"), s.name, s.qml, s.sld, int(s.default), STAMP)
                for s in styles
                if s.layer in geom
            ],
        )
        con.execute("UPDATE gpkg_contents SET last_change = ?", (STAMP,))
        con.commit()
    finally:
        con.close()


__all__ = [
    "FIELD_ALIASES",
    "LayerKind",
    "LayerStyle",
    "field_alias",
    "layer_styles",
    "write_layer_styles",
    "xml_text",
]
