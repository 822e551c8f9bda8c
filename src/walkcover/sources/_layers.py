"""The common shape every source produces."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from walkcover.config.tags import TAG_DTYPE, merge_tag_texts, tag_texts, tag_values

STREET_COLUMNS = [
    "u",
    "v",
    "osm_id",
    "highway",
    "access",
    "foot",
    "area",
    "tunnel",
    "indoor",
    "geometry",
]
#: The way tags kept on street segments.
STREET_TAGS = ("highway", "access", "foot", "area", "tunnel", "indoor", "bridge", "footway")
FEATURE_COLUMNS = ["osm_id", "osm_type", "name", "tags", "geometry"]


def iso_timestamp(value: object) -> str:
    """An OSM timestamp (``2024-05-01T20:21:56Z``) as ISO 8601 in UTC, or "" when `value` is
    none (empty, not text, not a date): never a guess, never the file's own date."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return ""
    text = value.strip()
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:  # OSM's timestamps are UTC
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class OSMQuery:
    """What to read from a source: the area, the street classes and the feature tags."""

    polygon: BaseGeometry  # EPSG:4326
    walk_highways: tuple[str, ...]
    feature_tags: dict[str, bool | list[str]] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        """A JSON-able description that changes whenever the query does."""
        return {
            "polygon": self.polygon.normalize().wkt,
            "walk_highways": sorted(self.walk_highways),
            "feature_tags": {k: self.feature_tags[k] for k in sorted(self.feature_tags)},
        }


#: Rows from which `OSMLayers.to_crs` projects the streets on a second thread. Below, one thread:
#: pyproj makes its transformers per thread, and the second thread's search of PROJ's database
#: (about 60 ms) would cost more than it saves.
PROJECT_APART_ROWS = 200_000


@dataclass(frozen=True)
class OSMLayers:
    """Streets (one row per node-to-node segment) and tagged features, both EPSG:4326 as read.

    ``streets``: ``u, v`` (OSM node ids), ``osm_id`` ("way/123"), ``highway``, ``access``, ``foot``,
    ``area``, ``tunnel``, ``indoor``, ``bridge``, ``footway``, geometry. ``features``: ``osm_id``,
    ``osm_type``, ``name``, ``tags``, geometry; facilities, buildings and residential land alike.
    ``tags`` is each feature's tags as canonical JSON text in a ``str`` (Arrow) column, never a
    dict per feature: read keys with `walkcover.config.tags.tag_values` (or `tag_column`), whole
    dicts of a few rows with `tag_dicts`.
    """

    streets: gpd.GeoDataFrame
    features: gpd.GeoDataFrame
    source: str
    #: When the OSM data was current, as an ISO 8601 date or date-time (UTC): the PBF header's
    #: replication timestamp, the Overpass response's ``osm3s.timestamp_osm_base``; "" unknown.
    data_date: str = ""
    #: What these layers are, for what a run keeps in the cache (`walkcover.assessment.
    #: standard_store`): a SHA-256 of the cache entry they were read from (named by the source's
    #: SHA-256 and the query; its files' sizes and times), the area they were cut to and their
    #: CRS (`walkcover.sources.cache.load_osm`). "" when they come from no cache entry: then
    #: whoever keeps results of them hashes their contents.
    digest: str = ""

    def to_crs(self, crs: Any) -> OSMLayers:
        """Both layers in `crs` (metres for measuring). Rebinding the name to the result lets the
        EPSG:4326 geometries go: on a city that is a third of the memory the layers take."""
        from concurrent.futures import ThreadPoolExecutor

        if len(self.streets) + len(self.features) < PROJECT_APART_ROWS:
            return OSMLayers(
                self.streets.to_crs(crs), self.features.to_crs(crs), self.source, self.data_date
            )
        # the two layers side by side (pyproj's transformers are per thread; a city's streets
        # and features: 3.5 -> 3.0 s on two cores, the rest holds the GIL)
        with ThreadPoolExecutor(max_workers=2) as pool:
            streets = pool.submit(self.streets.to_crs, crs)
            features = self.features.to_crs(crs)
            return OSMLayers(streets.result(), features, self.source, self.data_date)


def empty_streets() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in STREET_COLUMNS[:-1]}, geometry=[], crs=4326)


def empty_features() -> gpd.GeoDataFrame:
    columns: dict[str, Any] = {c: [] for c in FEATURE_COLUMNS[:-1]}
    columns["tags"] = pd.Series([], dtype=TAG_DTYPE)
    return gpd.GeoDataFrame(columns, geometry=[], crs=4326)


def clean_value(value: Any) -> Any:
    """None for the many spellings of a missing tag value."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def tags_from_row(row: dict[str, Any], *, json_tags: Any = None, skip: set[str]) -> dict[str, str]:
    """Merge a row's tag columns and an optional JSON ``tags`` blob into one dict of strings."""
    tags: dict[str, str] = {}
    if isinstance(json_tags, str) and json_tags:
        try:
            extra = json.loads(json_tags)
        except json.JSONDecodeError:
            extra = {}
        if isinstance(extra, dict):
            tags.update(
                {str(k): str(v) for k, v in extra.items() if not isinstance(v, list | dict)}
            )
    elif isinstance(json_tags, dict):
        tags.update(
            {str(k): str(v) for k, v in json_tags.items() if not isinstance(v, list | dict)}
        )
    for key, value in row.items():
        if key in skip:
            continue
        value = clean_value(value)
        if value is None or isinstance(value, list | dict | BaseGeometry):
            continue
        tags[str(key)] = str(value)
    return tags


def row_tag_dicts(
    frame: pd.DataFrame, *, json_tags: pd.Series | None, skip: set[str]
) -> list[dict[str, str]]:
    """`tags_from_row` for every row of `frame` at once, column by column: pyrosm's frames are
    wide and sparse (a column per common key, most cells empty), so only the cells that hold a
    value are visited, never every row × column (the JSON ``tags`` blobs first, then the columns,
    which win, as in `tags_from_row`)."""
    n = len(frame)
    out: list[dict[str, str]] = [{} for _ in range(n)]
    if json_tags is not None:
        blobs = json_tags.to_numpy(dtype=object)
        for i in np.flatnonzero(pd.notna(blobs)):
            out[i] = tags_from_row({}, json_tags=blobs[i], skip=skip)
    for key in frame.columns:
        if key in skip:
            continue
        values = frame[key].to_numpy(dtype=object)
        have = np.flatnonzero(pd.notna(values))
        name = str(key)
        for i in have:
            v = values[i]
            if v is pd.NA or v is pd.NaT or isinstance(v, list | dict | BaseGeometry):
                continue
            out[i][name] = str(v)
    return out


def feature_frame(
    osm_id: Any, osm_type: Any, dicts: list[dict[str, str]], geometry: Any, *, crs: Any = 4326
) -> gpd.GeoDataFrame:
    """A features frame (`FEATURE_COLUMNS`) from a reader's tag dicts (a chunk's, let go after):
    ``tags`` their canonical text, ``name`` read from it."""
    tags = tag_texts(dicts)
    return gpd.GeoDataFrame(
        {
            "osm_id": osm_id,
            "osm_type": osm_type,
            "name": tag_values(tags, "name").array,
            "tags": tags.array,
        },
        geometry=geometry,
        crs=crs,
    )


def merge_duplicate_features(features: pd.DataFrame) -> gpd.GeoDataFrame:
    """One row per OSM element: an element found by several queries keeps the union of its tags
    (its texts merged, `merge_tag_texts`)."""
    first = features.drop_duplicates(subset="osm_id").set_index("osm_id")
    dup = features[features.duplicated(subset="osm_id", keep=False)]
    merged = {i: merge_tag_texts(g["tags"]) for i, g in dup.groupby("osm_id", sort=False)}
    if merged:  # one assignment: each into an Arrow column would copy it
        first.loc[list(merged), "tags"] = list(merged.values())
    out = first.reset_index()[FEATURE_COLUMNS]
    return gpd.GeoDataFrame(out, geometry="geometry", crs=4326)
