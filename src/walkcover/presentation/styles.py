"""QGIS styles stored in a GeoPackage (its ``layer_styles`` table), so the layers open coloured.

QGIS reads the table when a layer is added and applies the style marked ``useAsDefault``; the
demand layer gets one style per standard (coloured by that standard's distance band, as the web
and printed maps are), the first the
default, the others a right-click away (Styles ▸ …).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from xml.sax.saxutils import quoteattr

from walkcover.presentation.palette import (
    BANDS,
    FACILITY_COLOUR,
    GAP_COLOUR,
    SERVICE_AREA_COLOUR,
    rgb,
)

#: Band → (RGB, label) for homes: the web maps' and the printed maps' bands, from one palette.
BAND_STYLE = {band: (rgb(colour), label) for band, (colour, label) in BANDS.items()}
FACILITY_RGB = rgb(FACILITY_COLOUR[0])
SERVICE_AREA_RGB = rgb(SERVICE_AREA_COLOUR)
GAP_RGB = rgb(GAP_COLOUR)


def _rgba(rgb: tuple[int, int, int], alpha: int = 255) -> str:
    return ",".join(map(str, (*rgb, alpha)))


def _options(**opts: object) -> str:
    return "".join(
        f'<Option name={quoteattr(k)} value={quoteattr(str(v))} type="QString"/>'
        for k, v in opts.items()
    )


def _symbol(kind: str, name: str, rgb: tuple[int, int, int], *, alpha: int = 255) -> str:
    """A QGIS symbol: a filled polygon, a round marker or a dashed outline (``gap``)."""
    if kind == "marker":
        layer = _options(
            name="circle", color=_rgba(rgb, alpha), outline_color="255,255,255,255", size="2.4",
            outline_width="0.2",
        )  # fmt: skip
        cls, typ = "SimpleMarker", "marker"
    elif kind == "gap":
        layer = _options(
            color="0,0,0,0", style="no", outline_color=_rgba(rgb), outline_style="dash",
            outline_width="0.6",
        )  # fmt: skip
        cls, typ = "SimpleFill", "fill"
    else:
        layer = _options(
            color=_rgba(rgb, alpha),
            style="solid",
            outline_color="60,60,60,255",
            outline_width="0.1",
        )
        cls, typ = "SimpleFill", "fill"
    return (
        f'<symbol type="{typ}" name={quoteattr(name)} alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="{cls}" enabled="1" locked="0" pass="0"><Option type="Map">{layer}'
        "</Option></layer></symbol>"
    )


def _qml(renderer: str) -> str:
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
        f'<qgis version="3.28" styleCategories="Symbology">{renderer}</qgis>'
    )


def categorized_qml(field: str, kind: str) -> str:
    """Homes coloured by `field` (a standard's distance band), as the maps colour them."""
    cats = "".join(
        f'<category symbol="{i}" value={quoteattr(v)} label={quoteattr(lab)} render="true"/>'
        for i, (v, (_, lab)) in enumerate(BAND_STYLE.items())
    )
    syms = "".join(
        _symbol(kind, str(i), c, alpha=200) for i, (c, _) in enumerate(BAND_STYLE.values())
    )
    return _qml(
        f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(field)} symbollevels="0" '
        f'enableorderby="0" forceraster="0"><categories>{cats}</categories>'
        f"<symbols>{syms}</symbols></renderer-v2>"
    )


def single_qml(kind: str, rgb: tuple[int, int, int], *, alpha: int = 255) -> str:
    """One symbol for every feature."""
    return _qml(
        '<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">'
        f"<symbols>{_symbol(kind, '0', rgb, alpha=alpha)}</symbols></renderer-v2>"
    )


def layer_styles(layers: dict[str, tuple[str, list[str]]]) -> list[tuple[str, str, str, bool]]:
    """The styles of a run's layers: ``(layer, style name, QML, default)``.

    Parameters
    ----------
    layers
        Layer name → (geometry family: ``point``, ``polygon``, ``line``; the standards whose
        ``<id>_band`` columns it has, for the demand layers).
    """
    out = []
    for name, (family, standards) in layers.items():
        marker = "marker" if family == "point" else "fill"
        if name.startswith("demand") and standards:
            for i, sid in enumerate(standards):
                out.append((name, sid, categorized_qml(f"{sid}_band", marker), i == 0))
        elif name.startswith("facilit"):
            out.append((name, "facilities", single_qml(marker, FACILITY_RGB, alpha=90), True))
        elif name == "service_areas":
            out.append((name, name, single_qml("fill", SERVICE_AREA_RGB, alpha=90), True))
        elif name == "gaps":
            out.append((name, name, single_qml("gap", GAP_RGB), True))
    return out


#: The time stamped in a GeoPackage's ``gpkg_contents.last_change`` and ``layer_styles``: fixed, so
#: that the same inputs give the same file, byte for byte (``run.json`` says when a run was made).
STAMP = "2000-01-01T00:00:00.000Z"


def write_layer_styles(gpkg: Path, styles: list[tuple[str, str, str, bool]]) -> None:
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
            "update_time) VALUES ('', '', ?, ?, ?, ?, '', ?, 'walkcover', '', ?)",
            [(t, geom.get(t, "geom"), n, q, int(d), STAMP) for t, n, q, d in styles if t in geom],
        )
        con.execute("UPDATE gpkg_contents SET last_change = ?", (STAMP,))
        con.commit()
    finally:
        con.close()


__all__ = ["layer_styles", "write_layer_styles"]
