"""Measure a city's standards per district: sources → network → facilities, demand → coverage."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from walkcover import coverage as cov
from walkcover.demand import (
    MODEL_FLOOR_AREA,
    MODEL_RESIDENTIAL_LAND,
    assign_districts,
    demand_from_buildings,
    demand_from_land,
    residential_buildings,
    residential_land,
)
from walkcover.facilities import select_facilities
from walkcover.indicators import SUMMARY_COLUMNS, district_summary
from walkcover.network import Network, network_from_streets
from walkcover.sources import OSMQuery, load_osm
from walkcover.standards import Standard, selector_keys
from walkcover.study_area import City, working_crs

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Assessment:
    """Everything one run measured.

    ``demand`` (projected) has ``osm_id, district_id, residents, …`` and, per standard,
    ``<id>_dist_m``, ``<id>_covered``, ``<id>_status``. ``facilities`` has ``osm_id, standard, name,
    matched_by, in_district`` (the district holding it, or None for one across the border).
    ``summary`` has one row per district × standard (`indicators.SUMMARY_COLUMNS`).
    """

    city: City
    districts: gpd.GeoDataFrame
    standards: list[Standard]
    crs: pyproj.CRS
    network: Network
    demand: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    summary: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    source: str = ""


def search_limit_m(standard: Standard, city: City) -> float:
    """How far the search for `standard`'s facilities runs: its largest radius × the search factor."""
    return standard.max_threshold_m * city.config.network.search_factor


def study_polygon(districts: gpd.GeoDataFrame, *, crs: pyproj.CRS, margin_m: float):
    """The districts' union grown by `margin_m`, in EPSG:4326: facilities across a border count."""
    grown = districts.to_crs(crs).union_all().buffer(margin_m)
    return gpd.GeoSeries([grown], crs=crs).to_crs(4326).iloc[0]


def assess(
    city: City,
    districts: gpd.GeoDataFrame,
    standards: list[Standard],
    *,
    source_kind: str,
    source: str | None,
    cache_dir: Path | None,
    progress: Progress | None = None,
) -> Assessment:
    """Measure `standards` for `districts` of `city` over the walk network.

    Parameters
    ----------
    city
        The loaded city.
    districts
        Rows of ``city.districts`` to measure (`study_area.resolve_districts`).
    standards
        The standards to measure.
    source_kind, source
        ``pbf`` / ``xml`` with a file path, or ``overpass``.
    cache_dir
        Where parsed sources are cached (None: no cache).
    progress
        Called with a short label as each step starts.

    Returns
    -------
    Assessment
    """
    step = progress or (lambda _label: None)
    cfg = city.config
    crs = working_crs(city)
    limits = {s.id: search_limit_m(s, city) for s in standards}
    margin_m = max(limits.values()) + cfg.network.max_snap_m
    polygon = study_polygon(districts, crs=crs, margin_m=margin_m)
    query = OSMQuery(
        polygon=polygon,
        walk_highways=tuple(cfg.network.walk_highways),
        feature_tags=selector_keys(standards),
    )

    step("reading OSM data")
    layers = load_osm(source_kind, source, query, cache_dir=cache_dir)  # type: ignore[arg-type]
    features = layers.features.to_crs(crs)

    step("building the walk network")
    network = network_from_streets(
        layers.streets,
        crs=crs,
        walk_highways=query.walk_highways,
        min_island_m=cfg.network.min_island_m,
    )
    notes: list[str] = []
    if len(network.edges) == 0:
        notes.append("no walkable streets were found in the study area; every unit is unsnapped")

    step("estimating residents")
    d_proj = districts.to_crs(crs)
    demand, models = _demand(features, d_proj, cfg, notes)

    step("snapping demand units")
    demand_snaps = cov.snap(network, demand.geometry, max_snap_m=cfg.network.max_snap_m)

    fac_frames = []
    for std in standards:
        step(f"measuring {std.id}")
        fac = select_facilities(features, std)
        fac_snaps = cov.snap(
            network, fac.geometry, max_snap_m=cfg.network.max_snap_m, reach_polygon_edges=True
        )
        result = cov.measure(
            network, demand_snaps, fac_snaps, threshold_m=std.threshold_m, limit_m=limits[std.id]
        )
        demand[f"{std.id}_dist_m"] = result["dist_m"].to_numpy()
        demand[f"{std.id}_covered"] = result["covered"].to_numpy()
        demand[f"{std.id}_status"] = result["status"].to_numpy()
        fac = fac.assign(snapped=~np.isin(np.arange(len(fac)), fac_snaps.unsnapped))
        fac["in_district"] = assign_districts(fac, d_proj).to_numpy() if len(fac) else []
        fac_frames.append(fac)
        if fac_snaps.unsnapped.size:
            notes.append(
                f"{std.id}: {fac_snaps.unsnapped.size} facilit(y/ies) lie farther than "
                f"{cfg.network.max_snap_m:g} m from any walkable street and serve no one"
            )

    facilities = _concat_facilities(fac_frames, crs)
    rows = []
    for (_, drow), dgeom in zip(districts.iterrows(), d_proj.geometry):
        mask = (demand["district_id"] == drow["district_id"]).to_numpy()
        for std in standards:
            fac = facilities[facilities["standard"] == std.id]
            n_in = int((fac["in_district"] == drow["district_id"]).sum())
            near = fac.geometry.dwithin(dgeom, limits[std.id]).to_numpy() & fac["snapped"].to_numpy(
                bool
            )
            in_reach = int(near.sum())
            row = district_summary(
                demand[mask],
                district=drow,
                standard=std,
                facilities_in_district=n_in,
                facilities_in_reach=in_reach,
                demand_model=models[drow["district_id"]],
            )
            rows.append(row)
            if in_reach == 0:
                notes.append(
                    f"{drow['slug']}: no {std.id} facilities found in the district or within "
                    f"{limits[std.id]:g} m of it; its coverage is 0%"
                )
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return Assessment(
        city=city,
        districts=districts,
        standards=standards,
        crs=crs,
        network=network,
        demand=demand,
        facilities=facilities,
        summary=summary,
        notes=notes,
        source=layers.source,
    )


def _demand(features, districts_proj, cfg, notes):
    buildings = residential_buildings(features, cfg.demand)
    units = demand_from_buildings(buildings, cfg.demand)
    units["district_id"] = assign_districts(units, districts_proj).to_numpy()
    units = units[units["district_id"].notna()]
    models: dict[str, str] = {}
    frames = [units]
    land = None
    for _, d in districts_proj.iterrows():
        did = d["district_id"]
        if (units["district_id"] == did).any():
            models[did] = MODEL_FLOOR_AREA
            continue
        if land is None:
            land = demand_from_land(residential_land(features), cfg.demand)
            land["district_id"] = assign_districts(land, districts_proj).to_numpy()
        mine = land[land["district_id"] == did]
        frames.append(mine)
        models[did] = MODEL_RESIDENTIAL_LAND
        notes.append(
            f"{d['slug']}: no residential buildings mapped; residents estimated from "
            f"{len(mine)} residential land polygon(s) at "
            f"{cfg.demand.residents_per_ha_residential_land:g} per hectare"
        )
    demand = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(demand, geometry="geometry", crs=districts_proj.crs), models


def _concat_facilities(frames: list[gpd.GeoDataFrame], crs) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame(
            {
                "osm_id": [],
                "standard": [],
                "name": [],
                "matched_by": [],
                "snapped": [],
                "in_district": [],
            },
            geometry=[],
            crs=crs,
        )
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)
