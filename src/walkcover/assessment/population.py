"""The homes and their residents: demand units from buildings or land, population from known
totals or a raster, as `walkcover.assessment.run` prepares a study."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.assessment.model import DEMAND_NOTE, Note
from walkcover.config.standards import StandardSet
from walkcover.config.study_area import City
from walkcover.measures.completeness import building_completeness
from walkcover.measures.demand import (
    MODEL_FLOOR_AREA,
    MODEL_RESIDENTIAL_LAND,
    assign_districts,
    demand_from_buildings,
    demand_from_land,
    residential_buildings,
    residential_land,
)
from walkcover.measures.land import land_union
from walkcover.measures.population import (
    allocate_groups,
    allocate_raster,
    read_totals,
    scale_to_totals,
)


def homes_and_residents(
    city: City,
    features: gpd.GeoDataFrame,
    d_proj: gpd.GeoDataFrame,
    rules: StandardSet,
    population_raster: str | Path | None,
) -> tuple[gpd.GeoDataFrame, dict[str, str], str, pd.DataFrame, shapely.Geometry, list[Note]]:
    """The homes and their residents: ``(demand, demand models, population model, building
    completeness, residential land, notes)``."""
    cfg = city.config
    notes: list[Note] = []
    demand, models = _demand(features, d_proj, cfg, notes)
    totals = _known_totals(city, d_proj)
    res_land = land_union(features, rules.land.residential_land)
    completeness = building_completeness(
        demand[(demand["kind"] == "building").to_numpy()],
        res_land,
        d_proj,
        expected_footprint_share=cfg.demand.expected_footprint_share,
        known_totals=totals,
    )
    demand, pop_model = _population(
        city, demand, d_proj, population_raster, models, notes, completeness, totals, res_land
    )
    return demand, models, pop_model, completeness, res_land, notes


def _demand(features, districts_proj, cfg, notes):
    model = cfg.population.model
    units = None
    if model != MODEL_RESIDENTIAL_LAND:
        buildings = residential_buildings(features, cfg.demand)
        units = demand_from_buildings(buildings, cfg.demand)
        units["district_id"] = assign_districts(units, districts_proj).to_numpy()
        units = units[units["district_id"].notna()]
    models: dict[str, str] = {}
    frames = [units] if units is not None else []
    land = None
    for _, d in districts_proj.iterrows():
        did = d["district_id"]
        if units is not None and (units["district_id"] == did).any():
            models[did] = MODEL_FLOOR_AREA
            continue
        if land is None:
            land = demand_from_land(residential_land(features), cfg.demand)
            land["district_id"] = assign_districts(land, districts_proj).to_numpy()
        mine = land[land["district_id"] == did]
        frames.append(mine)
        models[did] = MODEL_RESIDENTIAL_LAND
        if model != MODEL_RESIDENTIAL_LAND:
            notes.append(
                Note(
                    f"{d['slug']}: no residential buildings mapped; residents estimated from "
                    f"{len(mine)} residential land polygon(s) at "
                    f"{cfg.demand.residents_per_ha_residential_land:g} per hectare",
                    district=d["slug"],
                )
            )
    demand = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(demand, geometry="geometry", crs=districts_proj.crs), models


def _known_totals(city: City, d_proj: gpd.GeoDataFrame) -> dict[str, float]:
    """Known residents of the districts measured, where the city config names a totals file."""
    t = city.config.population.totals
    if t is None:
        return {}
    totals = read_totals(
        city.resolve(t.path),
        id_field=t.id_field,
        value_field=t.value_field,
        multiplier=t.multiplier,
    )
    return {k: v for k, v in totals.items() if k in set(d_proj["district_id"])}


def _population(
    city: City,
    demand: gpd.GeoDataFrame,
    d_proj: gpd.GeoDataFrame,
    raster: str | Path | None,
    models: dict[str, str],
    notes: list[Note],
    completeness: pd.DataFrame,
    totals: dict[str, float],
    res_land: shapely.Geometry,
) -> tuple[gpd.GeoDataFrame, str]:
    """Apply the raster model and the scaling to known totals; say what was done. Where a district's
    buildings are too incomplete to carry its residents, the raster's cells without a building become
    demand units of their own (placed on residential land where the cell has some); without a raster,
    a note warns that the figures cover only the mapped part."""
    pcfg = city.config.population
    raster = raster or (city.resolve(pcfg.raster) if pcfg.raster else None)
    if pcfg.model == "raster" and raster is None:
        from walkcover._errors import ConfigError

        raise ConfigError(
            "population.model is 'raster' but no raster is given; set population.raster or pass --population-raster"
        )
    slug = dict(zip(d_proj["district_id"], d_proj["slug"]))
    floor = city.config.demand.min_building_completeness_pct
    comp = completeness.set_index("district_id")["building_completeness_pct"]
    incomplete = [
        did
        for did, pct in comp.items()
        if pct == pct and pct < floor and models.get(did) == MODEL_FLOOR_AREA
    ]
    parts = []
    raster_notes: list[str] = []  # a raster in another CRS than the run's, said once each
    if raster is not None:
        weight = demand["floor_area_m2"].fillna(demand.geometry.area).to_numpy()
        residents, cells = allocate_raster(
            demand,
            d_proj,
            raster,
            weight=weight,
            cells_as_units=incomplete,
            units_per=pcfg.raster_units,
            notes=raster_notes,
        )
        demand["residents"] = residents
        parts.append(f"population raster {Path(raster).name} allocated by floor area")
        for did in d_proj["district_id"]:
            models[did] = "raster"
        if len(cells):
            demand = _with_raster_cells(demand, cells, res_land)
        for did in incomplete:
            n_cells = int((cells["district_id"].astype(str) == str(did)).sum())
            models[did] = "raster (buildings incomplete)"
            notes.append(
                Note(
                    f"{slug[did]}: its mapped buildings look {comp[did]:.0f}% complete (under "
                    f"{floor:g}%): residents come from the population raster, and {n_cells} raster "
                    "cell(s) with people but no mapped building are demand units of their own "
                    "(on residential land where the cell has some)",
                    district=slug[did],
                    kind=DEMAND_NOTE,
                )
            )
    else:
        parts.append(
            "floor area ÷ m² per person"
            if pcfg.model != MODEL_RESIDENTIAL_LAND
            else "residential land × density"
        )
        for did in incomplete:
            notes.append(
                Note(
                    f"{slug[did]}: WARNING its mapped buildings look only {comp[did]:.0f}% complete "
                    f"(under {floor:g}%): every figure covers only the mapped part"
                    + (", and its known total is spread over those few buildings" if totals else "")
                    + "; pass a population raster (--population-raster: WorldPop, GHS-POP; see "
                    "docs/population.md)",
                    district=slug[did],
                    kind=DEMAND_NOTE,
                )
            )
    if pcfg.groups:
        weight = demand["floor_area_m2"].fillna(demand.geometry.area).to_numpy()
        wanted = {
            name: ([city.resolve(p) for p in g.rasters], g.units) for name, g in pcfg.groups.items()
        }
        groups = allocate_groups(demand, d_proj, wanted, weight=weight, notes=raster_notes)
        for name, people in groups.items():
            demand[f"residents_{name}"] = people
        parts.append(f"groups by age from rasters: {', '.join(pcfg.groups)}")
    notes.extend(Note(t, kind=DEMAND_NOTE) for t in raster_notes)
    if totals:
        t = pcfg.totals
        assert t is not None
        before = demand["residents"].to_numpy(dtype=float)
        demand["residents"] = scale_to_totals(before, demand["district_id"].to_numpy(), totals)
        factor = np.divide(
            demand["residents"].to_numpy(), before, out=np.ones(len(before)), where=before > 0
        )
        for name in pcfg.groups:  # the groups keep the raster's age structure
            demand[f"residents_{name}"] = demand[f"residents_{name}"].to_numpy() * factor
        parts.append(f"scaled to district totals ({t.label or Path(t.path).name})")
    return demand, "; ".join(parts)


def _with_raster_cells(
    demand: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, res_land: shapely.Geometry
) -> gpd.GeoDataFrame:
    """`demand` plus one unit per raster cell returned by `allocate_raster`: a point on the
    cell's residential land where it has some, else the cell's centre."""
    cells = cells.to_crs(demand.crs)
    boxes = cells.geometry.to_numpy()
    on_land = shapely.intersection(boxes, res_land) if not shapely.is_empty(res_land) else boxes
    has_land = ~shapely.is_empty(on_land) & (shapely.area(on_land) > 0)
    where = np.where(has_land, shapely.point_on_surface(on_land), shapely.centroid(boxes))
    units = gpd.GeoDataFrame(
        {
            "osm_id": [f"raster/{r}/{c}" for r, c in zip(cells["row"], cells["col"])],
            "kind": "raster_cell",
            "building": None,
            "levels": np.nan,
            "levels_from": None,
            "floor_area_m2": np.nan,
            "residents": cells["people"].to_numpy(dtype=float),
            "district_id": cells["district_id"].to_numpy(),
        },
        geometry=where,
        crs=demand.crs,
    )
    return gpd.GeoDataFrame(
        pd.concat([demand, units], ignore_index=True), geometry="geometry", crs=demand.crs
    )
