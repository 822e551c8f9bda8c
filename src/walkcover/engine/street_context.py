"""Street contexts: main street, ordinary road or riverside park, for standards whose radius
depends on where a person is (the toilet rule of 三、(九): 300 / 500 / 800 m)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.config.standards import Standard, StreetContexts, features_matching
from walkcover.engine import coverage as cov
from walkcover.engine.network import MIDPOINT_CHUNK, Network

MAIN_STREET = "main_street"
ORDINARY_ROAD = "ordinary_road"
RIVERSIDE_PARK = "riverside_park"


def riverside_parks(features: gpd.GeoDataFrame, rules: StreetContexts) -> gpd.GeoDataFrame:
    """Park polygons with water (river, canal, water body) within ``rules.water_within_m``."""
    parks = features_matching(features, rules.parks)
    parks = parks[parks.geom_type.isin(["Polygon", "MultiPolygon"])]
    water = features_matching(features, rules.water)
    if not len(parks) or not len(water):
        return parks.iloc[:0]
    tree = shapely.STRtree(water.geometry.to_numpy())
    hit = tree.query(parks.geometry.to_numpy(), predicate="dwithin", distance=rules.water_within_m)[
        0
    ]
    return parks.iloc[np.unique(hit)]


def unit_context(context: np.ndarray, snaps: cov.Snaps, std: Standard) -> np.ndarray:
    """The context of each snapped item's street: its nearest one when it is attached to several
    (`coverage.snap` lists that first), the standard's default context when unsnapped."""
    out = np.full(snaps.n_items, std.default_context or "", dtype=object)
    first = cov.run_starts(snaps.item)
    out[snaps.item[first]] = context[snaps.edge[first]]
    return out


def context_radii(std: Standard, contexts: np.ndarray) -> np.ndarray:
    """The standard's radius for each street context (its one threshold for an unknown context)."""
    out = np.full(len(contexts), std.threshold_m, dtype=float)
    for context, radius in std.context_thresholds_m.items():
        out[np.asarray(contexts == context, dtype=bool)] = radius
    return out


def unit_thresholds(
    std: Standard, context: np.ndarray | None, snaps: cov.Snaps
) -> np.ndarray | float:
    """Each item's radius: the radius of its street's context, or the standard's one threshold."""
    if context is None or not std.context_thresholds_m:
        return std.threshold_m
    return context_radii(std, unit_context(context, snaps, std))


def snap_radii(std: Standard, edge_radii: np.ndarray, snaps: cov.Snaps) -> np.ndarray:
    """`unit_thresholds` from each edge's radius (``context_radii`` of the edges' contexts, made
    once): numbers gathered, no context string per item (a lattice has millions, and an array of
    strings holds the interpreter lock throughout)."""
    out = np.full(snaps.n_items, std.threshold_m)  # unsnapped: the default context's radius
    first = cov.run_starts(snaps.item)
    out[snaps.item[first]] = edge_radii[snaps.edge[first]]
    return out


def classify_edges(
    network: Network, streets_tags: pd.DataFrame, features: gpd.GeoDataFrame, rules: StreetContexts
) -> np.ndarray:
    """The context of every network edge.

    Main streets are the listed highway classes and the sidewalks and crossings mapped beside them
    (``footway=sidewalk|crossing`` within ``rules.sidewalk_within_m``); riverside park paths are edges
    whose middle lies inside a riverside park; every other edge is an ordinary road. A main street
    through a riverside park stays a main street (the stricter radius).

    Parameters
    ----------
    network
        The walk network (projected).
    streets_tags
        Per network edge, the ``highway`` and ``footway`` tags (aligned with ``network.edges``).
    features
        Projected OSM features (parks and water).
    rules
        The standards file's ``street_contexts``.
    """
    n = len(network.edges)
    ctx = np.full(n, ORDINARY_ROAD, dtype=object)
    if n == 0:
        return ctx
    geoms = network.edges.geometry.to_numpy()
    mid = network.midpoints
    parks = riverside_parks(features, rules)
    if len(parks):
        tree = shapely.STRtree(parks.geometry.to_numpy())
        for s in range(0, n, MIDPOINT_CHUNK):  # points a chunk at a time, never a city's at once
            pts = shapely.points(mid[s : s + MIDPOINT_CHUNK])
            ctx[s + np.unique(tree.query(pts, predicate="within")[0])] = RIVERSIDE_PARK
    hw = streets_tags["highway"].astype("string")
    main = hw.isin(rules.main_street_highways).fillna(False).to_numpy(dtype=bool)
    footway = streets_tags["footway"].astype("string")
    side = footway.isin(["sidewalk", "crossing"]).fillna(False).to_numpy(dtype=bool).copy()

    side &= ~main
    if side.any() and main.any():
        tree = shapely.STRtree(geoms[main])
        near = tree.query(
            shapely.points(mid[side]), predicate="dwithin", distance=rules.sidewalk_within_m
        )[0]
        side_idx = np.flatnonzero(side)[np.unique(near)]
        ctx[side_idx] = MAIN_STREET
    ctx[main] = MAIN_STREET
    return ctx
