"""Turn osmnx graphs and feature frames into `OSMLayers` columns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import geopandas as gpd
import networkx as nx
import osmnx as ox
import pandas as pd

from walkcover.sources._layers import (
    STREET_TAGS,
    empty_features,
    empty_streets,
    feature_frame,
    merge_duplicate_features,
    tags_from_row,
)

_WAY_TAGS = [*STREET_TAGS, "name", "service"]
_SKIP = {"geometry", "nodes", "ways", "members", "element", "id", "osmid"}


@contextmanager
def walk_tags() -> Iterator[None]:
    """Keep the way tags the walk filter reads on osmnx edges, restoring settings afterwards."""
    before = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = sorted({*before, *_WAY_TAGS})
    try:
        yield
    finally:
        ox.settings.useful_tags_way = before


def streets_from_graph(graph: nx.MultiDiGraph) -> gpd.GeoDataFrame:
    """One row per undirected node-to-node street segment of an unsimplified osmnx graph."""
    if graph.number_of_edges() == 0:
        return empty_streets()
    edges = ox.graph_to_gdfs(graph, nodes=False, fill_edge_geometry=True).reset_index()
    lo = edges[["u", "v"]].min(axis=1)
    hi = edges[["u", "v"]].max(axis=1)
    edges = edges.assign(_lo=lo, _hi=hi).drop_duplicates(subset=["_lo", "_hi", "osmid"])

    def col(name: str) -> list[str | None]:
        if name not in edges:
            return [None] * len(edges)
        return [None if pd.isna(x) else str(x) for x in edges[name]]

    out = gpd.GeoDataFrame(
        {
            "u": edges["u"].astype("int64").to_numpy(),
            "v": edges["v"].astype("int64").to_numpy(),
            "osm_id": ["way/" + str(x) for x in edges["osmid"]],
            **{k: col(k) for k in STREET_TAGS},
        },
        geometry=edges.geometry.to_numpy(),
        crs=edges.crs,
    ).to_crs(4326)
    return out.reset_index(drop=True)


def features_from_osmnx(gdf: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Normalise an osmnx features frame (index: element, id; one column per tag)."""
    if gdf is None or len(gdf) == 0:
        return empty_features()
    gdf = gdf.to_crs(4326).reset_index()
    recs = gdf.drop(columns="geometry").to_dict("records")
    out = feature_frame(
        [f"{e}/{i}" for e, i in zip(gdf["element"], gdf["id"])],
        gdf["element"].astype(str).to_numpy(),
        [tags_from_row(r, skip=_SKIP) for r in recs],
        gdf.geometry.to_numpy(),
    )
    return merge_duplicate_features(out)
