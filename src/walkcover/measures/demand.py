"""Demand units: where residents live, with an estimate of how many.

Buildings are the units; residents = footprint area × levels ÷ floor area per person. A district
with no residential buildings falls back to residential land, residents = area × density, and the
summary says so.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd

from walkcover.config.study_area import DemandConfig, require_metres

MODEL_FLOOR_AREA = "floor_area"
MODEL_RESIDENTIAL_LAND = "residential_land"

_NON_RESIDENTIAL_KEYS = ("amenity", "office", "tourism", "leisure", "healthcare", "man_made")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _first_number(text: str | None) -> float | None:
    if text is None:
        return None
    m = _NUMBER.search(str(text).replace(",", "."))
    return float(m.group()) if m else None


def residential_buildings(features: gpd.GeoDataFrame, config: DemandConfig) -> gpd.GeoDataFrame:
    """Building polygons that may house residents (not tagged as a non-residential type or use)."""
    excluded = set(config.non_residential_buildings)
    keep = []
    for tags, geom_type in zip(features["tags"], features.geom_type):
        b = tags.get("building")
        keep.append(
            b is not None
            and b != "no"
            and geom_type in ("Polygon", "MultiPolygon")
            and b not in excluded
            and not any(k in tags for k in _NON_RESIDENTIAL_KEYS)
        )
    return features[np.asarray(keep, dtype=bool)]


def demand_from_buildings(buildings: gpd.GeoDataFrame, config: DemandConfig) -> gpd.GeoDataFrame:
    """Demand units from building polygons (projected, metres), with residents by floor area.

    Levels come from ``building:levels``, else ``height`` ÷ 3 m, else the default for the building
    type (``config.levels_by_type``), else ``config.default_levels``.
    """
    require_metres(buildings, what="buildings")
    levels, how = [], []
    for tags in buildings["tags"]:
        lv = _first_number(tags.get("building:levels"))
        if lv is not None and lv > 0:
            levels.append(lv)
            how.append("building:levels")
            continue
        h = _first_number(tags.get("height"))
        if h is not None and h > 0:
            levels.append(max(1.0, round(h / 3.0)))
            how.append("height")
            continue
        by_type = config.levels_by_type.get(str(tags.get("building")))
        if by_type is not None:
            levels.append(by_type)
            how.append("building type")
            continue
        levels.append(config.default_levels)
        how.append("default")
    levels_arr = np.asarray(levels, dtype=float)
    floor = buildings.geometry.area.to_numpy() * levels_arr
    return gpd.GeoDataFrame(
        {
            "osm_id": buildings["osm_id"].to_numpy(),
            "kind": "building",
            "building": [t.get("building") for t in buildings["tags"]],
            "levels": levels_arr,
            "levels_from": how,
            "floor_area_m2": floor,
            "residents": floor / config.m2_per_person,
        },
        geometry=buildings.geometry.to_numpy(),
        crs=buildings.crs,
    )


def demand_from_land(land: gpd.GeoDataFrame, config: DemandConfig) -> gpd.GeoDataFrame:
    """Demand units from residential land polygons (projected), residents = hectares × density."""
    require_metres(land, what="residential land")
    area = land.geometry.area.to_numpy()
    return gpd.GeoDataFrame(
        {
            "osm_id": land["osm_id"].to_numpy(),
            "kind": "residential_land",
            "building": None,
            "levels": np.nan,
            "levels_from": None,
            "floor_area_m2": np.nan,
            "residents": area / 10_000.0 * config.residents_per_ha_residential_land,
        },
        geometry=land.geometry.to_numpy(),
        crs=land.crs,
    )


def residential_land(features: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Polygons tagged ``landuse=residential``."""
    mask = [t.get("landuse") == "residential" for t in features["tags"]]
    out = features[np.asarray(mask, dtype=bool)]
    return out[out.geom_type.isin(["Polygon", "MultiPolygon"])]


def assign_districts(units: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> pd.Series:
    """The ``district_id`` holding each unit's representative point (NaN outside every district)."""
    pts = gpd.GeoDataFrame(geometry=units.geometry.representative_point(), crs=units.crs)
    joined = gpd.sjoin(pts, districts[["district_id", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined["district_id"].reindex(units.index)
