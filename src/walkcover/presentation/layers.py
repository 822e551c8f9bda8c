"""The layers of a district's GeoPackage as tables: each home with its per-standard results, and
the facilities that can serve the district. Selections of the results model, never measured here."""

from __future__ import annotations

import geopandas as gpd

from walkcover.assessment import FACILITY_OUTPUT_COLUMNS, Assessment

_PER_STANDARD = (
    "dist_m",
    "covered",
    "status",
    "band",
    "context",
    "safe_dist_m",
    "safe_covered",
    "safe_status",
)


def demand_layer(assessment: Assessment, district_id: str) -> gpd.GeoDataFrame:
    """The ``demand`` layer of one district: geometry, ``osm_id``, residents and per-standard results."""
    d = assessment.demand
    cols = ["osm_id", "kind", "building", "levels", "levels_from", "floor_area_m2", "residents"]
    cols += [c for c in d.columns if c.startswith("residents_")]  # groups by age
    for s in assessment.standards:
        cols += [
            c
            for c in d.columns
            if c.startswith(f"{s.id}_") and c.removeprefix(f"{s.id}_") in _PER_STANDARD
        ]
    sub = d.loc[d["district_id"] == district_id, [*cols, "geometry"]]
    return gpd.GeoDataFrame(sub.reset_index(drop=True), geometry="geometry", crs=d.crs)


def facilities_layer(assessment: Assessment, district_geom) -> gpd.GeoDataFrame:
    """Facilities inside the district or within reach of it (those that can serve it, as the
    assessment decides: `Assessment.facilities_serving`)."""
    f = assessment.facilities
    reach = assessment.facilities_serving(district_geom)
    sub = f.loc[reach, [*FACILITY_OUTPUT_COLUMNS, "geometry"]]
    return gpd.GeoDataFrame(sub.reset_index(drop=True), geometry="geometry", crs=f.crs)
