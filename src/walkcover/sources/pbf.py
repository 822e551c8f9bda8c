"""Read an ``.osm.pbf`` extract: the street segments with pyosmium, the tagged features with
pyrosm."""

from __future__ import annotations

import warnings
from array import array
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import shapely

from walkcover._errors import SourceError
from walkcover.sources._layers import (
    STREET_TAGS,
    OSMLayers,
    OSMQuery,
    empty_features,
    empty_streets,
    merge_duplicate_features,
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
            streets = read_street_segments(path, query.polygon)
            # progress=False: pyrosm's own bar (or, without a terminal, its "Reading … took"
            # line) would land in the middle of walkcover's progress and output
            osm = pyrosm.OSM(
                str(path), bounding_box=query.polygon, complete_relations=True, progress=False
            )
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
    return OSMLayers(
        streets=streets,
        features=_features(features),
        source=str(path),
        data_date=pbf_data_date(path),
    )


def pbf_data_date(path: str | Path) -> str:
    """When the OSM data of an ``.osm.pbf`` file was current, from its header (the replication
    timestamp Geofabrik and planet extracts carry, else the header's ``timestamp``), as
    ISO 8601 in UTC; "" when the header states none. Never the file's modification time: that is
    when it was downloaded or copied, not how old its data is. (pyrosm does not read the header;
    libosmium reads only the header here, no data.)"""
    import osmium

    from walkcover.sources._layers import iso_timestamp

    try:
        reader = osmium.io.Reader(str(resolve_pbf(path)), osmium.osm.osm_entity_bits.NOTHING)
    except RuntimeError:
        return ""
    try:
        header = reader.header()
        for key in ("osmosis_replication_timestamp", "timestamp"):
            date = iso_timestamp(header.get(key, ""))
            if date:
                return date
        return ""
    finally:
        reader.close()


#: Highway values that are no street (the ways pyrosm's and OSMnx's "all" network leaves out,
#: with ``area=yes``); `walkcover.engine.network.walkable_streets` then keeps the walkable ones.
NOT_STREETS = frozenset(
    {
        "abandoned",
        "construction",
        "no",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "rest_area",
        "services",
    }
)


def read_street_segments(path: str | Path, polygon: shapely.Geometry) -> gpd.GeoDataFrame:
    """Every street way's node-to-node segments with a node inside `polygon` (EPSG:4326), with the
    way's `STREET_TAGS`: the segments pyrosm's ``get_network("all", nodes=True)`` gives,
    in the same order, with the same coordinates.

    libosmium reads the file (its C++ key filter keeps the ways tagged ``highway``; its location
    index gives every node's coordinates); Python touches each street way once and each of its
    node references once, and the segments are cut with array operations. pyrosm assembled them
    per way in Python: 14 s against 2 s on the M city.
    """
    import osmium

    ids: list[int] = []
    tags: dict[str, list[str | None]] = {k: [] for k in STREET_TAGS}
    refs, lon, lat, count = array("q"), array("d"), array("d"), array("q")
    nan = float("nan")
    ways = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in ways:
        if not isinstance(way, osmium.osm.Way):  # nodes tagged highway (crossings, stops)
            continue
        t = way.tags
        if t.get("highway") in NOT_STREETS or t.get("area") == "yes":
            continue
        n = 0
        for node in way.nodes:
            loc = node.location
            refs.append(node.ref)
            if loc.valid():  # a node the extract does not hold has no location
                lon.append(loc.lon)
                lat.append(loc.lat)
            else:
                lon.append(nan)
                lat.append(nan)
            n += 1
        count.append(n)
        ids.append(way.id)
        for k in STREET_TAGS:
            tags[k].append(t.get(k))
    if not ids:
        return empty_streets()
    x, y = np.frombuffer(lon, dtype=float), np.frombuffer(lat, dtype=float)
    way_of = np.repeat(np.arange(len(ids)), np.frombuffer(count, dtype=np.int64))
    known = np.isfinite(x)
    inside = known.copy()
    area = shapely.from_wkb(shapely.to_wkb(polygon))  # prepared on a copy
    shapely.prepare(area)
    inside[known] = shapely.contains_xy(area, x[known], y[known])
    # a segment: two consecutive nodes of one way, both in the file and one at least inside (a
    # street leaving the area keeps its segment across the edge, as pyrosm's complete ways do)
    a = np.flatnonzero(
        (way_of[1:] == way_of[:-1]) & known[:-1] & known[1:] & (inside[:-1] | inside[1:])
    )
    b = a + 1
    node_ids = np.frombuffer(refs, dtype=np.int64)
    owner = way_of[a]
    lines = shapely.linestrings(
        np.stack([np.column_stack([x[a], y[a]]), np.column_stack([x[b], y[b]])], axis=1)
    )
    osm_id = np.array([f"way/{i}" for i in ids], dtype=object)
    return gpd.GeoDataFrame(
        {
            "u": node_ids[a],
            "v": node_ids[b],
            "osm_id": osm_id[owner],
            **{k: np.array(tags[k], dtype=object)[owner] for k in STREET_TAGS},
        },
        geometry=lines,
        crs=4326,
    )


def _pyrosm_filter(tags: dict[str, bool | list[str]]) -> dict[str, bool | list[str]]:
    return {k: (True if v is True else list(v or [])) for k, v in tags.items()}


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
