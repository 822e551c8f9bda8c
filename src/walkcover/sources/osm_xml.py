"""Read an ``.osm`` XML file with osmnx."""

from __future__ import annotations

from pathlib import Path

import osmnx as ox
import pandas as pd

from walkcover._errors import SourceError
from walkcover.sources._layers import OSMLayers, OSMQuery, empty_streets
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
    return OSMLayers(streets=streets, features=features_from_osmnx(feats), source=str(path))
