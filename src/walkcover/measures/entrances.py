"""Where people get into a park or a square: along its outline, or only at its public entrances.

A facility is *enclosed* when fences, walls or hedges run along most of its outline (or its own
outline is tagged as one). An open space (a square, a park without a fence) is entered anywhere
along its outline. An enclosed one is entered only at its public entrances: a gate or entrance
node on its outline that is open to the public (``access`` not no/private, not ``locked=yes``),
or a place where a walkable path crosses the outline (away from a locked gate). A building's door
on the outline (the library beside a square) is not a way into the square. An enclosed facility
whose every mapped gate is locked, with no path through its fence, is closed to the public.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.config.standards import ENCLOSING_BARRIERS, GATE_BARRIERS, features_matching
from walkcover.config.tags import tag_column, tag_values
from walkcover.engine.network import Network, locked_gates

#: An outline is enclosed when at least this share of it runs along enclosing barriers.
ENCLOSED_SHARE = 0.75
#: How far from the outline a fence, gate or door may be mapped and still be on it.
ON_OUTLINE_M = 5.0
#: A node this close to a building's outline is that building's door.
DOOR_M = 0.5

REACHED_OUTLINE = "outline"
REACHED_ENTRANCES = "entrances"
REACHED_FENCED_OUTLINE = "outline (fenced; no entrance mapped)"
REACHED_POINT = "point"
CLOSED_REASON = "fenced; no public entrance (every mapped gate is locked or private)"


@dataclass(frozen=True)
class Access:
    """How each facility (by position) is reached.

    Attributes
    ----------
    geoms
        Access geometries indexed by facility position: a facility's own geometry (reached along
        its outline), or one point per public entrance.
    entrances
        Number of public entrances each facility is reached through (0 when along its outline).
    reached_by
        ``outline``, ``entrances``, ``outline (fenced; no entrance mapped)``, ``point``, or
        ``closed`` for an enclosure with no public way in.
    enclosed_pct
        Share of each facility's outline that runs along fences, walls or hedges (NaN for points).
    """

    geoms: gpd.GeoSeries
    entrances: np.ndarray
    reached_by: np.ndarray
    enclosed_pct: np.ndarray


def enclosed_share(
    facilities: gpd.GeoDataFrame, features: gpd.GeoDataFrame, *, within_m: float = ON_OUTLINE_M
) -> np.ndarray:
    """Share (0–1) of each polygon facility's outline within `within_m` of a fence, wall or hedge;
    1 where the facility's own outline is tagged ``barrier=fence|wall|…``; NaN for points and lines."""
    geoms = facilities.geometry.to_numpy()
    is_area = shapely.get_type_id(geoms) >= 3
    out = np.where(is_area, 0.0, np.nan)
    if not is_area.any():
        return out
    own = _own_tag(facilities, features, "barrier").isin(list(ENCLOSING_BARRIERS)).to_numpy()
    out[is_area & own] = 1.0
    walls = features_matching(features, [{"barrier": list(ENCLOSING_BARRIERS)}])
    todo = np.flatnonzero(is_area & ~own)
    if not len(walls) or not len(todo):
        return out
    lines = shapely.boundary(walls.geometry.to_numpy())  # polygons → rings; lines → their ends
    lines = np.where(
        shapely.get_type_id(walls.geometry.to_numpy()) >= 3, lines, walls.geometry.to_numpy()
    )
    outline = shapely.boundary(geoms[todo])
    tree = shapely.STRtree(lines)
    f_idx, w_idx = tree.query(outline, predicate="dwithin", distance=within_m)
    if not len(f_idx):
        return out
    zones = shapely.buffer(lines[w_idx], within_m)
    pieces = shapely.intersection(outline[f_idx], zones)
    along = pd.Series(pieces).groupby(f_idx).agg(lambda g: shapely.union_all(g.to_numpy()))
    length = shapely.length(along.to_numpy()) / shapely.length(outline[along.index.to_numpy()])
    out[todo[along.index.to_numpy()]] = np.minimum(length, 1.0)
    return out


def facility_access(
    facilities: gpd.GeoDataFrame,
    features: gpd.GeoDataFrame,
    network: Network | None,
    *,
    use_entrances: bool,
) -> Access:
    """How each facility of `facilities` is reached (see the module docstring).

    Parameters
    ----------
    facilities
        Counted facilities, in metres.
    features
        The run's OSM features (gates, doors, fences and buildings among them), in the same CRS.
    network
        The walk network, for paths crossing a fence (None: gates only).
    use_entrances
        The standard's ``use_entrances``; without it every facility is reached along its outline.
    """
    geoms = facilities.geometry.to_numpy()
    n = len(facilities)
    is_area = shapely.get_type_id(geoms) >= 3 if n else np.zeros(0, dtype=bool)
    reached = np.where(is_area, REACHED_OUTLINE, REACHED_POINT).astype(object)
    n_entr = np.zeros(n, dtype=int)
    plain = gpd.GeoSeries(geoms, index=np.arange(n), crs=facilities.crs)
    if not use_entrances or not is_area.any():
        return Access(plain, n_entr, reached, np.full(n, np.nan))
    share = enclosed_share(facilities, features)
    enclosed = is_area & (share >= ENCLOSED_SHARE)
    pos = np.flatnonzero(enclosed)
    if not len(pos):
        return Access(plain, n_entr, reached, 100 * share)
    gates = _gates_on_outline(facilities.iloc[pos], features)
    crossings = _path_crossings(facilities.iloc[pos], features, network)
    ways_in = pd.concat([gates[gates["public"]], crossings], ignore_index=True)
    owner = pos[ways_in["facility"].to_numpy(dtype=np.int64)]
    n_entr = np.bincount(owner, minlength=n)
    has_gate = np.zeros(n, dtype=bool)
    has_gate[pos[gates["facility"].to_numpy(dtype=np.int64)]] = True
    reached[enclosed & (n_entr > 0)] = REACHED_ENTRANCES
    reached[enclosed & (n_entr == 0) & has_gate] = "closed"
    reached[enclosed & (n_entr == 0) & ~has_gate] = REACHED_FENCED_OUTLINE
    keep = plain[(reached != REACHED_ENTRANCES) & (reached != "closed")]
    entrance_geoms = gpd.GeoSeries(ways_in.geometry.to_numpy(), index=owner, crs=facilities.crs)
    out = pd.concat([keep, entrance_geoms]).sort_index(kind="stable")
    return Access(gpd.GeoSeries(out, crs=facilities.crs), n_entr, reached, 100 * share)


def _own_tag(facilities: pd.DataFrame, features: pd.DataFrame, key: str) -> pd.Series:
    """Each facility's value of OSM tag `key`, by position (NaN for one without it or imported
    from a planner's file)."""
    ids = facilities["osm_id"].astype(str).to_numpy()
    # the features of those ids only, the first of each (a city's features deduplicated and
    # re-indexed whole, every column copied, took most of this for a few hundred facilities)
    hit = features["osm_id"].isin(ids).to_numpy()
    by_id = pd.Series(features["tags"].array[hit], index=features["osm_id"].array[hit])
    by_id = by_id[~by_id.index.duplicated(keep="first")]
    found = by_id.reindex(ids)
    return tag_values(found, key).reset_index(drop=True)


def _gates_on_outline(enclosures: gpd.GeoDataFrame, features: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Gate and entrance nodes within `ON_OUTLINE_M` of each enclosure's outline (``facility`` is
    the position in `enclosures`), with ``public``: open to walkers and not a building's door."""
    nodes = features_matching(features, [{"entrance": True}, {"barrier": list(GATE_BARRIERS)}])
    nodes = nodes[shapely.get_type_id(nodes.geometry.to_numpy()) == 0]
    empty = gpd.GeoDataFrame({"facility": [], "public": []}, geometry=[], crs=features.crs)
    if not len(nodes):
        return empty
    outline = shapely.boundary(enclosures.geometry.to_numpy())
    n_idx, f_idx = shapely.STRtree(outline).query(
        nodes.geometry.to_numpy(), predicate="dwithin", distance=ON_OUTLINE_M
    )
    if not len(n_idx):
        return empty
    picked = nodes.iloc[n_idx]
    locked = set(locked_gates(picked).tolist())
    node_id = picked["osm_id"].astype(str).str.partition("/")[2]
    is_locked = node_id.isin({str(g) for g in locked}).to_numpy()
    door = _doors(picked, features, enclosures["osm_id"].to_numpy()[f_idx])
    return gpd.GeoDataFrame(
        {"facility": f_idx, "public": ~is_locked & ~door},
        geometry=picked.geometry.to_numpy(),
        crs=features.crs,
    )


def _doors(
    nodes: gpd.GeoDataFrame, features: gpd.GeoDataFrame, owner_ids: np.ndarray
) -> np.ndarray:
    """Which entrance nodes are doors of a building other than the facility they sit beside: an
    ``entrance=*`` node that is not a gate, on a building's outline."""
    not_gate = ~tag_column(nodes, "barrier").isin(list(GATE_BARRIERS)).to_numpy(dtype=bool)
    out = np.zeros(len(nodes), dtype=bool)
    blds = features_matching(features, [{"building": True}])
    blds = blds[shapely.get_type_id(blds.geometry.to_numpy()) >= 3]
    if not not_gate.any() or not len(blds):
        return out
    walls = shapely.boundary(blds.geometry.to_numpy())
    cand = np.flatnonzero(not_gate)
    n_idx, b_idx = shapely.STRtree(walls).query(
        nodes.geometry.to_numpy()[cand], predicate="dwithin", distance=DOOR_M
    )
    other = blds["osm_id"].to_numpy()[b_idx] != owner_ids[cand[n_idx]]
    out[cand[n_idx[other]]] = True
    return out


def _path_crossings(
    enclosures: gpd.GeoDataFrame, features: gpd.GeoDataFrame, network: Network | None
) -> gpd.GeoDataFrame:
    """Points where a walkable path (not a bridge or tunnel over or under it) crosses each
    enclosure's outline, away from locked gates: openings in the fence that no gate marks."""
    empty = gpd.GeoDataFrame({"facility": []}, geometry=[], crs=features.crs)
    if network is None or not len(network.edges):
        return empty
    edges = network.edges
    level = np.ones(len(edges), dtype=bool)
    for col in ("bridge", "tunnel"):
        if col in edges:
            v = edges[col].astype("string").str.lower()
            level &= (v.isna() | v.isin(["no"])).fillna(True).to_numpy(dtype=bool)
    lines = edges.geometry.to_numpy()[level]
    outline = shapely.boundary(enclosures.geometry.to_numpy())
    f_idx, e_idx = shapely.STRtree(lines).query(outline, predicate="intersects")
    if not len(f_idx):
        return empty
    hits = shapely.intersection(outline[f_idx], lines[e_idx])
    pts, part_of = shapely.get_parts(hits, return_index=True)
    keep = shapely.get_type_id(pts) == 0  # a path running along the outline is not a way in
    pts, owner = pts[keep], f_idx[part_of[keep]]
    gates = features_matching(features, [{"barrier": list(GATE_BARRIERS)}])
    locked = locked_gates(gates)
    if len(locked) and len(pts):
        ids = gates["osm_id"].astype(str).str.slice(5)
        lg = gates[ids.isin({str(g) for g in locked}).to_numpy()].geometry.to_numpy()
        near = shapely.STRtree(lg).query(pts, predicate="dwithin", distance=ON_OUTLINE_M)[0]
        ok = np.ones(len(pts), dtype=bool)
        ok[near] = False
        pts, owner = pts[ok], owner[ok]
    frame = gpd.GeoDataFrame({"facility": owner}, geometry=pts, crs=features.crs)
    # one opening per place: a path split into segments at the fence crosses it twice
    rounded = np.round(shapely.get_coordinates(pts), 2)
    dup = pd.DataFrame({"f": owner, "x": rounded[:, 0], "y": rounded[:, 1]}).duplicated()
    return frame[~dup.to_numpy()].reset_index(drop=True)


__all__ = [
    "CLOSED_REASON",
    "ENCLOSED_SHARE",
    "Access",
    "enclosed_share",
    "facility_access",
]
