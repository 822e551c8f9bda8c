"""How completely a district's homes are mapped, and so whether its buildings can carry its residents.

OSM building completeness is under 20% in most Chinese urban centres. Scaling a district's residents
onto the few buildings that are mapped puts thousands of people in each and measures only the mapped
part. Two estimates, each in % and capped at 100:

- **against the land**: the mapped footprint on residential land ÷ that land, against the footprint
  share a built-up residential area has (``demand.expected_footprint_share``, 25% by default: Chinese
  residential compounds are built at 20–30% 建筑密度, GB 50180-2018 table 4.0.2);
- **against the residents**: the residents the mapped floor area houses ÷ the district's known total
  (where the city has totals, e.g. Zhengzhou's census bulletin).

The district's completeness is the lower of the two it has (NaN when it has neither: no residential
land mapped and no known total).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

COMPLETENESS_COLUMNS = [
    "district_id",
    "footprint_km2",
    "residential_land_km2",
    "footprint_share_pct",
    "buildings_vs_land_pct",
    "modelled_residents",
    "known_residents",
    "buildings_vs_residents_pct",
    "building_completeness_pct",
]


def building_completeness(
    buildings: gpd.GeoDataFrame,
    land: shapely.Geometry,
    districts: gpd.GeoDataFrame,
    *,
    expected_footprint_share: float,
    known_totals: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Per district, how complete its mapped residential buildings look (see the module docstring).

    Parameters
    ----------
    buildings
        Demand units from buildings (projected) with ``district_id`` and ``residents`` (floor area
        ÷ m² per person, before any scaling).
    land
        The union of residential land (projected).
    districts
        Districts (projected) with ``district_id``.
    expected_footprint_share
        The footprint share (0–1) of fully mapped residential land.
    known_totals
        Known residents per district id, where the city has them.

    Returns
    -------
    pandas.DataFrame
        One row per district, columns `COMPLETENESS_COLUMNS`.
    """
    totals = known_totals or {}
    ids = districts["district_id"].astype(str).to_numpy()
    b_did = buildings["district_id"].astype(str).to_numpy() if len(buildings) else np.array([])
    geoms = buildings.geometry.to_numpy()
    footprint = pd.Series(shapely.area(geoms), index=b_did).groupby(level=0).sum()
    residents = (
        pd.Series(buildings["residents"].to_numpy(float), index=b_did).groupby(level=0).sum()
    )
    # footprint on residential land, by the building's district
    parts = shapely.get_parts(land)
    on_land = pd.Series(dtype=float)
    if len(parts) and len(geoms):
        b_idx, p_idx = shapely.STRtree(parts).query(geoms, predicate="intersects")
        if len(b_idx):
            hit = geoms[b_idx]
            bad = ~shapely.is_valid(hit)  # OSM outlines may cross themselves
            hit[bad] = shapely.make_valid(hit[bad])
            area = shapely.area(shapely.intersection(hit, parts[p_idx]))
            on_land = pd.Series(area, index=b_did[b_idx]).groupby(level=0).sum()
    land_area = {}
    if len(parts):
        tree = shapely.STRtree(parts)
        for did, dgeom in zip(ids, districts.geometry.to_numpy()):
            cand = parts[tree.query(dgeom, predicate="intersects")]
            land_area[did] = float(shapely.area(shapely.intersection(cand, dgeom)).sum())
    rows = []
    for did in ids:
        fp = float(footprint.get(did, 0.0))
        la = land_area.get(did, 0.0)
        share = 100.0 * float(on_land.get(did, 0.0)) / la if la > 0 else np.nan
        vs_land = min(100.0, share / expected_footprint_share) if la > 0 else np.nan
        modelled = float(residents.get(did, 0.0))
        known = totals.get(did)
        vs_res = min(100.0, 100.0 * modelled / known) if known else np.nan
        have = [v for v in (vs_land, vs_res) if v == v]
        rows.append(
            {
                "district_id": did,
                "footprint_km2": fp / 1e6,
                "residential_land_km2": la / 1e6,
                "footprint_share_pct": share,
                "buildings_vs_land_pct": vs_land,
                "modelled_residents": modelled,
                "known_residents": float(known) if known else np.nan,
                "buildings_vs_residents_pct": vs_res,
                "building_completeness_pct": min(have) if have else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=COMPLETENESS_COLUMNS)


__all__ = ["COMPLETENESS_COLUMNS", "building_completeness"]
