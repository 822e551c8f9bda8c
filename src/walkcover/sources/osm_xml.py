"""Read an ``.osm`` XML file with osmnx."""

from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from pathlib import Path

import osmnx as ox
import pandas as pd

from walkcover._errors import SourceError
from walkcover.sources._layers import OSMLayers, OSMQuery, empty_streets, iso_timestamp
from walkcover.sources._osmnx import features_from_osmnx, streets_from_graph, walk_tags


def read_osm_xml(path: str | Path, query: OSMQuery) -> OSMLayers:
    """Read streets and tagged features inside ``query.polygon`` from an ``.osm`` XML file."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"--source {str(path)!r} does not exist; pass an existing .osm file")
    tags: dict[str, bool | str | list[str]] = {**query.feature_tags, "building": True}
    try:
        with walk_tags():
            graph = ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)
        try:
            graph = ox.truncate.truncate_graph_polygon(graph, query.polygon, truncate_by_edge=True)
        except ValueError as exc:  # osmnx: "Found no graph nodes within the requested polygon"
            if "no graph nodes" not in str(exc):
                raise
            graph = None  # no street in the study area: a district with no data, not an error
        try:
            feats = ox.features_from_xml(path, polygon=query.polygon, tags=tags)
        except ox._errors.InsufficientResponseError:
            feats = None
    except Exception as exc:
        raise SourceError(
            f"--source {str(path)!r} could not be read as OSM XML ({type(exc).__name__}: {exc})"
        ) from exc
    if graph is None:
        streets = empty_streets()
    else:
        streets = streets_from_graph(graph)
        streets = streets[pd.notna(streets["highway"])].reset_index(drop=True)
    return OSMLayers(
        streets=streets,
        features=features_from_osmnx(feats),
        source=str(path),
        data_date=xml_data_date(path),
    )


def xml_data_date(path: str | Path) -> str:
    """When the OSM data of an ``.osm`` XML file was current: its ``<meta osm_base=...>`` (an
    Overpass answer) or the ``timestamp`` / ``osm_base`` attribute of its ``<osm>`` element
    (osmium, JOSM); "" when it states none. Only the file's head is read."""
    path = Path(path)
    opener = bz2.open if path.suffix == ".bz2" else open
    try:
        with opener(path, "rb") as fh:
            for depth, (_event, elem) in enumerate(ET.iterparse(fh, events=("start",))):
                for key in ("osm_base", "timestamp"):
                    if elem.tag in ("osm", "meta") and elem.get(key):
                        return iso_timestamp(elem.get(key))
                if elem.tag not in ("osm", "meta", "note", "bounds") or depth > 8:
                    return ""  # the data begins: no date in the head
    except (OSError, ET.ParseError, EOFError):
        return ""
    return ""
