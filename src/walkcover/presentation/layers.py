"""The layers of a district's GeoPackage as tables: each home with its per-standard results, and
the facilities that can serve the district. Selections of the results model, never measured here."""

from __future__ import annotations

import geopandas as gpd

from walkcover.assessment import FACILITY_OUTPUT_COLUMNS, Assessment, search_limit_m

_PER_STANDARD = (
    "dist_m",
    "covered",
    "status",
    "band",
    "context",
    "safe_dist_m",
    "safe_covered",
    "safe_status",
    "nearest2_m",
    "nearest3_m",
    "n_within",
    "access",
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
    cols += [c for c in d.columns if c.startswith("life_circle_")]  # GB 50180's tiers
    sub = d.loc[d["district_id"] == district_id, [*cols, "geometry"]]
    return gpd.GeoDataFrame(sub.reset_index(drop=True), geometry="geometry", crs=d.crs)


def facilities_layer(assessment: Assessment, district_geom) -> gpd.GeoDataFrame:
    """Facilities inside the district or within reach of it (those that can serve it, as the
    assessment decides: `Assessment.facilities_serving`)."""
    f = assessment.facilities
    reach = assessment.facilities_serving(district_geom)
    sub = f.loc[reach, [*FACILITY_OUTPUT_COLUMNS, "geometry"]]
    return gpd.GeoDataFrame(sub.reset_index(drop=True), geometry="geometry", crs=f.crs)


def streets_layer(assessment: Assessment, district_geom) -> gpd.GeoDataFrame:
    """The ``streets`` layer: the walkable streets a printed map of the district draws, within its
    box grown by the largest search limit (so the facilities serving it from outside have their
    streets too), one row per OSM way (its segments as one line: a city's district holds hundreds
    of thousands of segments, and a way is what a planner knows), with its ``highway`` class."""
    import numpy as np
    import pandas as pd
    import shapely

    margin_m = max((search_limit_m(s, assessment.city) for s in assessment.standards), default=0.0)
    e = assessment.network.edges
    x0, y0, x1, y1 = shapely.bounds(district_geom)
    near = e.iloc[
        e.sindex.query(shapely.box(x0 - margin_m, y0 - margin_m, x1 + margin_m, y1 + margin_m))
    ]
    if not len(near):
        return gpd.GeoDataFrame({"osm_id": [], "highway": []}, geometry=[], crs=e.crs)
    # ways by hashing, not sorting their ids (a district's box holds ~10⁵ segments); each way's
    # segments as one multi-line (a merge into one line would cost more than the writing)
    at, ways = pd.factorize(near["osm_id"].astype(str), sort=False)
    order = np.argsort(at, kind="stable")
    lines = shapely.multilinestrings(near.geometry.to_numpy()[order], indices=at[order])
    first = np.zeros(len(ways), dtype=np.int64)
    first[at[order][::-1]] = order[::-1]  # a row of each way, for its class
    highway = near["highway"].to_numpy()[first] if "highway" in near else None
    return gpd.GeoDataFrame(
        {"osm_id": np.asarray(ways, dtype=object), "highway": highway},
        geometry=lines,
        crs=e.crs,
    )
