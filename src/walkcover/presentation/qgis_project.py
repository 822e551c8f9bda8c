"""A district's QGIS project (``coverage.qgz``): every layer of the ``coverage.gpkg`` beside it,
styled, in map order, over an optional OpenStreetMap base map.

A ``.qgz`` is a zip holding one ``.qgs`` (XML) file. Its layers point at the GeoPackage by a
relative path (``./coverage.gpkg|layername=demand``), so the folder can be moved or shared whole.
Each layer carries its default style from ``layer_styles`` (`walkcover.presentation.styles`), and
the homes the other standards' styles too (Styles ▸ … in the layer's context menu). The XML is
built with `xml.etree.ElementTree` (every name and title escaped) and zipped with a fixed date,
so the same layers give the same bytes.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyproj import CRS

from walkcover._atomic import write_atomic
from walkcover.presentation.styles import DOCTYPE, QGIS_VERSION, LayerStyle, xml_text

#: The OpenStreetMap standard tiles as QGIS's XYZ source (``wms`` provider, ``type=xyz``).
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
OSM_COPYRIGHT = "https://www.openstreetmap.org/copyright"
BASE_MAP_NAME = "OpenStreetMap"
#: The date of the zip entry: fixed, so the same project gives the same bytes.
ZIP_DATE = (2000, 1, 1, 0, 0, 0)
#: Map order, top to bottom: proposed sites over facilities over gaps over homes over the land
#: within walking distance; layers not named here go above the homes, in the order given.
LAYER_ORDER = (
    "proposed_sites",
    "facilities",
    "facility_lines",
    "facility_areas",
    "gaps",
    "demand_points",
    "demand_lines",
    "demand",
    "service_areas",
)
_GEOMETRY = {"point": "Point", "line": "Line", "polygon": "Polygon"}


@dataclass(frozen=True)
class ProjectLayer:
    """One layer of the GeoPackage, as the project shows it.

    Attributes
    ----------
    name
        The layer's name in the GeoPackage.
    family
        ``point``, ``line`` or ``polygon``.
    geometry_type
        Its geometry type as GDAL names it (``MultiPolygon``, ``Point`` …).
    extent
        ``(xmin, ymin, xmax, ymax)`` in the project's CRS; None when it has no feature.
    styles
        Its styles, the default first (`walkcover.presentation.styles.layer_styles`).
    """

    name: str
    family: str
    geometry_type: str
    extent: tuple[float, float, float, float] | None = None
    styles: Sequence[LayerStyle] = field(default_factory=tuple)


def layer_id(name: str) -> str:
    """A layer's id in the project: its name and a digest of it, as QGIS makes ids (name and a
    unique suffix), the same on every run."""
    return f"{name}_{hashlib.sha256(name.encode('utf-8')).hexdigest()[:12]}"


def _in_order(layers: Sequence[ProjectLayer]) -> list[ProjectLayer]:
    known = {n: i for i, n in enumerate(LAYER_ORDER)}
    homes = known["demand_points"]

    def rank(item: tuple[int, ProjectLayer]) -> tuple[int, int]:
        i, layer = item
        return (known.get(layer.name, homes), i)

    return [layer for _, layer in sorted(enumerate(layers), key=rank)]


def _text(parent: ET.Element, tag: str, text: object) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = xml_text(text)
    return el


def _srs(parent: ET.Element, crs: CRS) -> None:
    """``<spatialrefsys>`` as QGIS 3 reads it: by its WKT (no QGIS-internal ``srsid``), with the
    authority code and name beside it."""
    srs = ET.SubElement(parent, "spatialrefsys", nativeFormat="Wkt")
    _text(srs, "wkt", crs.to_wkt())
    auth = crs.to_authority()
    if auth is not None:
        if auth[0] == "EPSG":
            _text(srs, "srid", auth[1])
        _text(srs, "authid", f"{auth[0]}:{auth[1]}")
    _text(srs, "description", crs.name)
    _text(srs, "geographicflag", "true" if crs.is_geographic else "false")


def _extent(
    parent: ET.Element, box: tuple[float, float, float, float], tag: str = "extent"
) -> None:
    el = ET.SubElement(parent, tag)
    for name, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
        _text(el, name, repr(float(v)))


def _source(gpkg_name: str, layer: str) -> str:
    return f"./{gpkg_name}|layername={layer}"


def _style_root(qml: str) -> ET.Element:
    """The ``<qgis>`` element of a QML style."""
    return ET.fromstring(qml.removeprefix(DOCTYPE))


def _vector_layer(parent: ET.Element, layer: ProjectLayer, *, gpkg_name: str, crs: CRS) -> None:
    ml = ET.SubElement(
        parent,
        "maplayer",
        type="vector",
        geometry=_GEOMETRY.get(layer.family, "Polygon"),
        wkbType=layer.geometry_type,
        hasScaleBasedVisibilityFlag="0",
        minScale="100000000",
        maxScale="0",
        readOnly="0",
        styleCategories="AllStyleCategories",
    )
    if layer.extent is not None:
        _extent(ml, layer.extent)
    _text(ml, "id", layer_id(layer.name))
    _text(ml, "datasource", _source(gpkg_name, layer.name))
    _text(ml, "layername", layer.name)
    _srs(ET.SubElement(ml, "srs"), crs)
    _text(ml, "provider", "ogr").set("encoding", "UTF-8")
    styles = list(layer.styles)
    default = next((s for s in styles if s.default), styles[0] if styles else None)
    manager = ET.SubElement(
        ml, "map-layer-style-manager", current="" if default is None else xml_text(default.name)
    )
    for style in styles:
        entry = ET.SubElement(manager, "map-layer-style", name=xml_text(style.name))
        if style is not default:  # the current style is the layer's own (below)
            entry.append(_style_root(style.qml))
    if default is not None:
        for child in _style_root(default.qml):
            ml.append(child)


def _base_map(parent: ET.Element) -> None:
    ml = ET.SubElement(
        parent,
        "maplayer",
        type="raster",
        hasScaleBasedVisibilityFlag="0",
        minScale="100000000",
        maxScale="0",
        styleCategories="AllStyleCategories",
    )
    half = 20037508.342789244
    _extent(ml, (-half, -half, half, half))
    _text(ml, "id", layer_id(BASE_MAP_NAME))
    _text(ml, "datasource", base_map_source())
    _text(ml, "layername", BASE_MAP_NAME)
    _srs(ET.SubElement(ml, "srs"), CRS.from_epsg(3857))
    meta = ET.SubElement(ml, "resourceMetadata")
    _text(meta, "title", "OpenStreetMap tiles")
    _text(meta, "rights", OSM_ATTRIBUTION)
    _text(ml, "provider", "wms")
    _text(ml, "attribution", OSM_ATTRIBUTION).set("href", OSM_COPYRIGHT)
    pipe = ET.SubElement(ml, "pipe")
    ET.SubElement(
        pipe,
        "rasterrenderer",
        type="singlebandcolordata",
        band="1",
        opacity="1",
        alphaBand="-1",
        nodataColor="",
    )
    _text(ml, "blendMode", "0")


def base_map_source() -> str:
    """The OpenStreetMap tiles as a QGIS XYZ data source (the URL's braces percent-encoded, as
    QGIS writes them)."""
    url = OSM_TILES.replace("{", "%7B").replace("}", "%7D")
    return f"type=xyz&url={url}&zmax=19&zmin=0"


def project_xml(
    *,
    gpkg_name: str,
    layers: Sequence[ProjectLayer],
    crs: CRS | str | int,
    title: str,
    base_map: bool = True,
) -> bytes:
    """The ``.qgs`` document of `write_qgis_project` (UTF-8 bytes)."""
    crs = CRS.from_user_input(crs)
    ordered = _in_order(layers)
    root = ET.Element("qgis", projectname=xml_text(title), version=QGIS_VERSION)
    ET.SubElement(root, "homePath", path="")
    _text(root, "title", title)
    ET.SubElement(root, "transaction", mode="Disabled")
    ET.SubElement(root, "projectFlags", set="")
    _srs(ET.SubElement(root, "projectCrs"), crs)
    tree = ET.SubElement(root, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    ids = []
    for layer in ordered:
        lid = layer_id(layer.name)
        ids.append(lid)
        node = ET.SubElement(
            tree,
            "layer-tree-layer",
            id=lid,
            name=layer.name,
            source=_source(gpkg_name, layer.name),
            providerKey="ogr",
            checked="Qt::Checked",
            expanded="1" if layer.name.startswith("demand") else "0",
            legend_exp="",
        )
        ET.SubElement(node, "customproperties")
    if base_map:
        lid = layer_id(BASE_MAP_NAME)
        ids.append(lid)
        node = ET.SubElement(
            tree,
            "layer-tree-layer",
            id=lid,
            name=BASE_MAP_NAME,
            source=base_map_source(),
            providerKey="wms",
            checked="Qt::Unchecked",  # the tiles come from the internet: the planner's choice
            expanded="0",
            legend_exp="",
        )
        ET.SubElement(node, "customproperties")
    order = ET.SubElement(tree, "custom-order", enabled="0")
    for lid in ids:
        _text(order, "item", lid)

    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    _text(canvas, "units", "meters" if not crs.is_geographic else "degrees")
    boxes = [layer.extent for layer in ordered if layer.extent is not None]
    boxes = [b for b in boxes if all(math.isfinite(v) for v in b)]
    if boxes:
        box = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        _extent(canvas, box)
    _text(canvas, "rotation", "0")
    _srs(ET.SubElement(canvas, "destinationsrs"), crs)
    _text(canvas, "rendermaptile", "0")

    project_layers = ET.SubElement(root, "projectlayers")
    for layer in ordered:
        _vector_layer(project_layers, layer, gpkg_name=gpkg_name, crs=crs)
    if base_map:
        _base_map(project_layers)
    layer_order = ET.SubElement(root, "layerorder")
    for lid in ids:
        ET.SubElement(layer_order, "layer", id=lid)

    props = ET.SubElement(root, "properties")
    paths = ET.SubElement(props, "Paths")
    _text(paths, "Absolute", "false").set("type", "bool")
    measure = ET.SubElement(props, "Measurement")
    _text(measure, "DistanceUnits", "meters").set("type", "QString")
    _text(measure, "AreaUnits", "m2").set("type", "QString")
    srs_props = ET.SubElement(props, "SpatialRefSys")
    _text(srs_props, "ProjectionsEnabled", "1").set("type", "int")
    ET.indent(root, space=" ")
    return (DOCTYPE + "\n" + ET.tostring(root, encoding="unicode") + "\n").encode("utf-8")


def write_qgis_project(
    path: Path,
    *,
    gpkg_name: str,
    layers: Sequence[ProjectLayer],
    crs: CRS | str | int,
    title: str,
    base_map: bool = True,
) -> Path:
    """Write a QGIS project (``.qgz``) that opens `layers` of the GeoPackage `gpkg_name` beside it.

    Parameters
    ----------
    path
        The ``.qgz`` to write (atomically; the same arguments give the same bytes).
    gpkg_name
        The GeoPackage's file name, in the same folder as `path`.
    layers
        Its layers (`ProjectLayer`); shown in map order (`LAYER_ORDER`), each with its styles.
    crs
        The layers' CRS (anything `pyproj.CRS.from_user_input` takes), also the project's.
    title
        The project's title (QGIS shows it in its title bar).
    base_map
        Add the OpenStreetMap tiles as the bottom layer, unticked (they are fetched from the
        internet only once ticked).

    Returns
    -------
    pathlib.Path
        `path`.
    """
    path = Path(path)
    data = project_xml(gpkg_name=gpkg_name, layers=layers, crs=crs, title=title, base_map=base_map)
    info = zipfile.ZipInfo(f"{path.stem}.qgs", date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.create_system = 3  # Unix, on every platform: the same bytes

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w") as z:
            z.writestr(info, data)

    return write_atomic(path, write)


__all__ = ["ProjectLayer", "layer_id", "project_xml", "write_qgis_project"]
