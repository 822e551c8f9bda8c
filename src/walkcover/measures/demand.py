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
from walkcover.config.tags import tag_column

MODEL_FLOOR_AREA = "floor_area"
MODEL_RESIDENTIAL_LAND = "residential_land"

_NON_RESIDENTIAL_KEYS = ("amenity", "office", "tourism", "leisure", "healthcare", "man_made")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _first_number(text: str | None) -> float | None:
    if text is None:
        return None
    m = _NUMBER.search(str(text).replace(",", "."))
    return float(m.group()) if m else None


def _first_numbers(values: pd.Series) -> np.ndarray:
    """`_first_number` of each value (NaN for none), computed once per distinct value: a
    city's ``building:levels`` or ``height`` take a few hundred."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    numbers = np.array([_first_number(u) for u in uniques] + [None], dtype=float)
    return numbers[codes]  # the sentinel -1 takes the last: None, NaN


def residential_buildings(features: gpd.GeoDataFrame, config: DemandConfig) -> gpd.GeoDataFrame:
    """Building polygons that may house residents (not tagged as a non-residential type or use)."""
    building = tag_column(features, "building")
    keep = building.notna().to_numpy() & (building != "no").to_numpy(dtype=bool)
    keep &= ~building.isin(list(config.non_residential_buildings)).to_numpy(dtype=bool)
    keep &= features.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy(dtype=bool)
    for key in _NON_RESIDENTIAL_KEYS:
        keep &= tag_column(features, key).isna().to_numpy()
    return features[keep]


def demand_from_buildings(buildings: gpd.GeoDataFrame, config: DemandConfig) -> gpd.GeoDataFrame:
    """Demand units from building polygons (projected, metres), with residents by floor area.

    Levels come from ``building:levels``, else ``height`` ÷ 3 m, else the default for the building
    type (``config.levels_by_type``), else ``config.default_levels``.
    """
    require_metres(buildings, what="buildings")
    building = tag_column(buildings, "building")
    given = _first_numbers(tag_column(buildings, "building:levels"))
    height = _first_numbers(tag_column(buildings, "height"))
    by_type = building.map(config.levels_by_type).to_numpy(dtype=float, na_value=np.nan)
    # the first rule that gives a number decides: levels, height, the building's type, default
    with np.errstate(invalid="ignore"):
        from_levels = given > 0
        from_height = ~from_levels & (height > 0)
    from_type = ~from_levels & ~from_height & np.isfinite(by_type)
    levels_arr = np.full(len(buildings), float(config.default_levels))
    levels_arr[from_type] = by_type[from_type]
    levels_arr[from_height] = np.maximum(1.0, np.round(height[from_height] / 3.0))
    levels_arr[from_levels] = given[from_levels]
    how = np.full(len(buildings), "default", dtype=object)
    how[from_type] = "building type"
    how[from_height] = "height"
    how[from_levels] = "building:levels"
    floor = buildings.geometry.area.to_numpy() * levels_arr
    return gpd.GeoDataFrame(
        {
            "osm_id": buildings["osm_id"].to_numpy(),
            "kind": "building",
            "building": building.array,
            "levels": levels_arr,
            "levels_from": list(how),
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
    out = features[(tag_column(features, "landuse") == "residential").to_numpy(dtype=bool)]
    return out[out.geom_type.isin(["Polygon", "MultiPolygon"])]


def assign_districts(units: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> pd.Series:
    """The ``district_id`` holding each unit's representative point (NaN outside every district)."""
    pts = gpd.GeoDataFrame(geometry=units.geometry.representative_point(), crs=units.crs)
    joined = gpd.sjoin(pts, districts[["district_id", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined["district_id"].reindex(units.index)
