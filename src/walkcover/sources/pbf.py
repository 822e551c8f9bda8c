"""Read an ``.osm.pbf`` extract with pyrosm."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyrosm

from walkcover._errors import SourceError
from walkcover.sources._layers import (
    STREET_TAGS,
    OSMLayers,
    OSMQuery,
    empty_features,
    empty_streets,
    merge_duplicate_features,
    tag_column,
    tag_dicts,
)

_META = {
    "id",
    "osm_type",
    "tags",
    "geometry",
    "visible",
    "version",
    "timestamp",
    "changeset",
    "lon",
    "lat",
    "u",
    "v",
    "length",
    "nodes",
    "members",
}


def resolve_pbf(path: str | Path) -> Path:
    """A PBF path, where ``pyrosm:NAME`` names a file bundled with pyrosm (e.g. ``helsinki_pbf``)."""
    text = str(path)
    if text.startswith("pyrosm:"):
        return Path(pyrosm.get_data(text.removeprefix("pyrosm:")))
    return Path(path)


def read_pbf(path: str | Path, query: OSMQuery) -> OSMLayers:
    """Read streets and tagged features inside ``query.polygon`` from an ``.osm.pbf`` file.

    Raises
    ------
    SourceError
        If the file is missing, empty or not a readable PBF.
    """
    path = resolve_pbf(path)
    if not path.is_file():
        raise SourceError(f"--source {str(path)!r} does not exist; pass an existing .osm.pbf file")
    if path.stat().st_size == 0:
        raise SourceError(f"--source {str(path)!r} is empty (0 bytes); download it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyrosm's pandas deprecations, not actionable
            osm = pyrosm.OSM(str(path), bounding_box=query.polygon, complete_relations=True)
            _nodes, edges = osm.get_network(network_type="all", nodes=True)
            features = [
                osm.get_pois(custom_filter=_pyrosm_filter(query.feature_tags))
                if query.feature_tags
                else None,
                osm.get_buildings(),
            ]
    except SourceError:
        raise
    except Exception as exc:  # pyrosm raises many kinds on a damaged file
        raise SourceError(
            f"--source {str(path)!r} could not be read as an .osm.pbf file "
            f"({type(exc).__name__}: {exc}); download it again or check the file"
        ) from exc
    return OSMLayers(streets=_streets(edges), features=_features(features), source=str(path))


def _pyrosm_filter(tags: dict[str, bool | list[str]]) -> dict[str, bool | list[str]]:
    return {k: (True if v is True else list(v or [])) for k, v in tags.items()}


def _streets(edges: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    if edges is None or len(edges) == 0:
        return empty_streets()
    blobs = edges.get("tags")
    # the few tags a street needs, column by column (not a dict of every tag per edge)
    out = gpd.GeoDataFrame(
        {
            "u": edges["u"].astype("int64").to_numpy(),
            "v": edges["v"].astype("int64").to_numpy(),
            "osm_id": ("way/" + edges["id"].astype("int64").astype(str)).to_numpy(),
            **{k: tag_column(edges, k, json_tags=blobs) for k in STREET_TAGS},
        },
        geometry=edges.geometry.to_numpy(),
        crs=4326,
    )
    return out[out.geometry.geom_type == "LineString"].reset_index(drop=True)


def _features(frames: list[gpd.GeoDataFrame | None]) -> gpd.GeoDataFrame:
    parts = []
    for gdf in frames:
        if gdf is None or len(gdf) == 0:
            continue
        dicts = tag_dicts(
            gdf.drop(columns="geometry"),
            json_tags=gdf.get("tags"),
            skip=_META,
        )
        osm_type = gdf["osm_type"].astype(str).to_numpy()
        ids = gdf["id"].astype("int64").astype(str).to_numpy()
        parts.append(
            gpd.GeoDataFrame(
                {
                    "osm_id": [f"{t}/{i}" for t, i in zip(osm_type, ids)],
                    "osm_type": osm_type,
                    "name": [t.get("name") for t in dicts],
                    "tags": dicts,
                },
                geometry=gdf.geometry.to_numpy(),
                crs=4326,
            )
        )
    if not parts:
        return empty_features()
    return merge_duplicate_features(pd.concat(parts, ignore_index=True))
