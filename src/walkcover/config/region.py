"""Regions: many cities measured alike (Henan's 18 prefecture-level cities and 157 counties).

A region file names a file of city polygons and a file of district polygons, and the field that
says which city each district belongs to. Each city becomes a `City` whose districts are its
county-level units, with the region's defaults (CRS, demand, network); a city with a richer config
of its own (Zhengzhou) keeps it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from walkcover import _paths
from walkcover._config import read_yaml, validate
from walkcover._errors import ConfigError
from walkcover.config.study_area import (
    City,
    CityConfig,
    DistrictSource,
    LoadedConfig,
    PolygonFile,
    SourceConfig,
    check_unique_slugs,
    district_slug,
    load_city,
    read_polygons,
    repaired_polygons,
)


class RegionDistricts(PolygonFile):
    """The districts file, and the field naming each district's city (its name or its id)."""

    city_field: str


class RegionConfig(BaseModel):
    """A region file (``configs/regions/*.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    name_en: str = ""
    cities: PolygonFile
    districts: RegionDistricts
    #: Working CRS of every city: ``utm`` (each city its own zone) or e.g. ``EPSG:4547``.
    crs: str = "utm"
    #: The standards file every city uses unless `city_standards` names another.
    standards: str | None = None
    city_standards: dict[str, str] = {}
    #: Cities that keep a config of their own (city id → bundled city name or YAML file).
    city_configs: dict[str, str] = {}
    #: Settings every generated city config takes (``demand``, ``network``, ``population``, …).
    defaults: dict[str, Any] = {}
    #: A city whose cut (city and halo) exceeds this many MB of .osm.pbf runs as one task per
    #: district: an L city (1.2 M walk nodes, a 137 MB source) needs 4–5 GB and 5–8 min as one
    #: task (docs/benchmarks.md); 100 MB keeps a task near 3.5 GB.
    split_above_mb: float = Field(default=100.0, ge=0)


class Region(LoadedConfig):
    """A loaded region: its config, cities and districts (EPSG:4326)."""

    config: RegionConfig
    cities: gpd.GeoDataFrame  # city_id, name, name_en, geometry
    districts: gpd.GeoDataFrame  # district_id, name, name_en, city_id, geometry


def load_region(name_or_path: str | Path) -> Region:
    """Load a region file (a bundled name such as ``henan``, or a YAML path) and its polygons."""
    path = _paths.config_file("regions", name_or_path)
    cfg = validate(RegionConfig, read_yaml(path, what="region"), path=path, what="region")
    cities = _units(path, cfg.cities, what="cities")
    districts = _units(path, cfg.districts, what="districts", extra=(cfg.districts.city_field,))
    link = districts.pop("_link").astype(str)
    by_name = dict(zip(cities["name"], cities["city_id"]))
    city_id = np.where(link.isin(set(cities["city_id"])), link, link.map(by_name))
    districts["city_id"] = city_id
    orphans = districts[pd.isna(districts["city_id"])]
    if len(orphans):
        raise ConfigError(
            f"region {cfg.id!r}: {len(orphans)} district(s) name a city that is not in the cities "
            f"file ({', '.join(orphans['name'].head(5))}: {cfg.districts.city_field} = "
            f"{', '.join(link[orphans.index].head(5))})"
        )
    return Region(config=cfg, cities=cities, districts=districts, config_path=path)


def _units(
    region_path: Path, src: PolygonFile, *, what: str, extra: tuple[str, ...] = ()
) -> gpd.GeoDataFrame:
    file = (region_path.parent / src.path).resolve()
    if not file.is_file():
        raise ConfigError(
            f"region file {str(region_path)!r}: {what}.path {str(file)!r} does not exist"
        )
    gdf = read_polygons(file, what=f"{what} file {str(file)!r}")
    fields = [
        src.id_field,
        src.name_field,
        *([src.name_en_field] if src.name_en_field else []),
        *extra,
    ]
    missing = [f for f in fields if f not in gdf.columns]
    if missing:
        raise ConfigError(
            f"{what} file {str(file)!r} lacks field(s) {missing}; it has {list(gdf.columns)}"
        )
    gdf = gdf.to_crs(4326)
    ids = gdf[src.id_field].astype(str).str.removesuffix(".0")
    if what == "cities":  # a city id names its work files and Dask keys: a plain name only
        for value in ids:
            _paths.check_safe_name(
                value, what=f"cities file {str(file)!r}: city id (field {src.id_field!r})"
            )
    if ids.duplicated().any():
        raise ConfigError(
            f"{what} file {str(file)!r} has duplicate ids: {sorted(set(ids[ids.duplicated()]))}"
        )
    names = gdf[src.name_field].astype(str)
    key = "city_id" if what == "cities" else "district_id"
    out = gpd.GeoDataFrame(
        {
            key: ids.to_numpy(),
            "name": names.to_numpy(),
            "name_en": (
                gdf[src.name_en_field].astype(str) if src.name_en_field else ids
            ).to_numpy(),
        },
        geometry=repaired_polygons(gdf.geometry, names=names, file_name=file.name),
        crs=4326,
    )
    for f in extra:
        out["_link"] = gdf[f].astype(str).str.removesuffix(".0").to_numpy()
    return out


def select_cities(region: Region, spec: str | list[str]) -> list[str]:
    """City ids named by `spec` (``all``, or ids / names separated by commas), in region order;
    an unknown one is refused with the valid choices."""
    valid = list(region.cities["city_id"])
    if spec == "all" or spec == ["all"]:
        return valid
    items = [s.strip() for s in (re.split(r"[,，、]", spec) if isinstance(spec, str) else spec)]
    empty = [i for i, s in enumerate(items, start=1) if not s]
    if empty:
        shown = repr(spec) if len(repr(spec)) <= 80 else repr(spec)[:79] + "…"
        raise ConfigError(
            f"--cities {shown} has an empty item (item {empty[0]} of {len(items)}); name each "
            "city once, separated by commas, or use 'all'"
        )
    wanted = items
    by_name = dict(zip(region.cities["name"], region.cities["city_id"]))
    out = []
    for w in wanted:
        cid = w if w in valid else by_name.get(w)
        if cid is None:
            choices = ", ".join(f"{i} {n}" for i, n in zip(valid, region.cities["name"]))
            raise ConfigError(
                f"region {region.id!r} has no city {w!r}; choose from: {choices}, or all"
            )
        if cid not in out:
            out.append(cid)
    return [c for c in valid if c in out]


def region_city(region: Region, city_id: str) -> City:
    """The `City` for one of the region's cities: its own config where the region names one, else
    a config built from the region's defaults, with the city's districts."""
    own = region.config.city_configs.get(city_id)
    if own is not None:
        return load_city(own if not own.endswith((".yaml", ".yml")) else region.resolve(own))
    row = region.cities.set_index("city_id").loc[city_id]
    mine = region.districts[region.districts["city_id"] == city_id]
    if not len(mine):  # a city with no county-level unit of its own (济源市): the city is one
        mine = gpd.GeoDataFrame(
            {"district_id": [city_id], "name": [row["name"]], "name_en": [row["name_en"]]},
            geometry=[row.geometry],
            crs=4326,
        )
    districts = gpd.GeoDataFrame(
        {
            "district_id": mine["district_id"].to_numpy(),
            "name": mine["name"].to_numpy(),
            "name_en": mine["name_en"].to_numpy(),
            "is_sample": False,
        },
        geometry=mine.geometry.to_numpy(),
        crs=4326,
    )
    # without English names (the region files have none) the code is the folder name
    districts["slug"] = [
        district_slug(i, "" if e == i else e)
        for i, e in zip(districts.district_id, districts.name_en)
    ]
    for slug, did in zip(districts["slug"], districts["district_id"]):  # folder and file names
        _paths.check_safe_name(
            slug,
            what=f"districts file {region.config.districts.path!r}: district id {did!r} gives folder",
        )
    check_unique_slugs(districts, file_name=region.config.districts.path)
    src = region.config.districts
    data = {
        "id": f"{region.id}-{city_id}".lower(),
        "name": str(row["name"]),
        "name_en": str(row["name_en"]),
        "crs": region.config.crs,
        "districts": DistrictSource(
            path=src.path, id_field=src.id_field, name_field=src.name_field
        ).model_dump(),
        "source": SourceConfig(kind="pbf").model_dump(),
        **region.config.defaults,
    }
    cfg = validate(CityConfig, data, path=region.config_path, what="region city")
    return City(config=cfg, districts=districts, config_path=region.config_path)


def city_standards(region: Region, city_id: str) -> str | None:
    """The standards file a city of the region uses (None: the bundled default)."""
    name = region.config.city_standards.get(city_id, region.config.standards)
    if name is None or not name.endswith((".yaml", ".yml")):
        return name
    return str(region.resolve(name))


__all__ = [
    "Region",
    "RegionConfig",
    "city_standards",
    "load_region",
    "region_city",
    "select_cities",
]
