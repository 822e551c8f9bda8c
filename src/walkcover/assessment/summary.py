"""The summary table: one row per district × standard (`summary_table`), and the notes on
residents the official land figure leaves out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.assessment.model import OFFICIAL_LAND_NOTE, OFFICIAL_LAND_WARN_PCT, Note, can_serve
from walkcover.assessment.study import MeasuredStandard, StudyState, measure_threads
from walkcover.config.standards import Standard
from walkcover.measures.indicators import (
    CONTEXTS,
    SUMMARY_COLUMNS,
    DistrictFacts,
    FacilityCounts,
    LandCover,
    ResidentGroups,
    StreetCover,
    district_summary,
)


def summary_table(
    study: StudyState,
    standards: list[Standard],
    measured: dict[str, MeasuredStandard],
    facilities: gpd.GeoDataFrame,
    on_land: dict[str, np.ndarray],
) -> pd.DataFrame:
    """One row per district × standard (`indicators.district_summary`)."""
    demand, counts = study.demand, facilities["counts"].to_numpy(dtype=bool)
    _warn_off_land(study, on_land)
    complete = study.completeness.set_index("district_id")["building_completeness_pct"]
    groups = {s.id: _groups(study, s) for s in standards}

    # each standard's facilities picked out once, not once per district
    fac_in = facilities["in_district"].to_numpy(dtype=object)
    per_std = {}
    for std in standards:
        mine = (facilities["standard"] == std.id).to_numpy()
        fac = facilities[mine & counts]
        per_std[std.id] = (
            mine,
            fac.geometry,
            fac["snapped"].to_numpy(bool),
            fac["in_district"].to_numpy(dtype=object),
            (fac["capacity_source"] == "default").to_numpy(dtype=bool),
        )

    context_masks = None if study.context is None else {c: study.context == c for c in CONTEXTS}
    length_m = study.network.edges["length_m"].to_numpy()

    def one(drow: pd.Series, dgeom: shapely.Geometry) -> tuple[list[dict], list[Note]]:
        rows, notes = [], []
        did = drow["district_id"]
        mask = (demand["district_id"] == did).to_numpy()
        homes = demand[mask]  # the district's homes, taken once for every standard
        edge_in = study.lands.edge_district(did, dgeom)
        for std in standards:
            limit = study.limits[std.id]
            mine, fac_geoms, fac_snapped, fac_district, by_default = per_std[std.id]
            near = can_serve(fac_geoms, dgeom, limit) & fac_snapped
            excluded = mine & ~counts & (fac_in == did)
            edge_cover = measured[std.id].edge_cover
            rows.append(
                district_summary(
                    homes,
                    district=drow,
                    standard=std,
                    facilities=FacilityCounts(
                        in_district=int((fac_district == did).sum()),
                        in_reach=int(near.sum()),
                        excluded=int(excluded.sum()),
                        default_capacity=(
                            None if std.access is None else int((near & by_default).sum())
                        ),
                    ),
                    land=LandCover(
                        areas=measured[std.id].areas.get(did, {}),
                        on_land=on_land[std.denominator][mask],
                    ),
                    streets=(
                        None
                        if edge_cover is None or context_masks is None or edge_in is None
                        else StreetCover(edge_cover, edge_in, length_m, context_masks)
                    ),
                    groups=ResidentGroups(*groups[std.id]),
                    facts=DistrictFacts(
                        demand_model=study.models[did],
                        population_model=study.population_model,
                        building_completeness_pct=float(complete.get(did, np.nan)),
                    ),
                )
            )
            if int(near.sum()) == 0:
                # no facility in the data: no figure (never 0%), whether or not there are homes
                outcome = (
                    "so its figures read no data (not 0%): map them or import the bureau's list "
                    "(walkcover import)"
                    if mask.any()
                    else "and no homes to cover (no data)"
                )
                notes.append(
                    Note(
                        f"{drow['slug']}: no {std.id} facilities found in the district or within "
                        f"{limit:g} m of it, {outcome}",
                        district=drow["slug"],
                        standard=std.id,
                    )
                )
        return rows, notes

    # districts two at a time (each its own outline: no prepared geometry is shared), rows and
    # notes kept in district order
    drows = [drow for _, drow in study.districts.iterrows()]
    with ThreadPoolExecutor(max_workers=measure_threads(study.network)) as pool:
        done = list(pool.map(one, drows, list(study.d_proj.geometry)))
    rows = [row for district_rows, _ in done for row in district_rows]
    for _, notes in done:
        study.notes.extend(notes)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _groups(study: StudyState, std: Standard) -> tuple[str | None, str | None]:
    """The population group and report group `std` can use: those the city has rasters for; a
    note for each it names but cannot use."""
    out: list[str | None] = []
    for what, name in (
        ("population_group", std.population_group),
        ("report_group", std.report_group),
    ):
        if name and f"residents_{name}" not in study.demand:
            study.notes.append(
                Note(
                    f"{std.id}: its {what} {name!r} has no raster in the city config "
                    f"(population.groups); "
                    + (
                        "all residents are counted"
                        if what == "population_group"
                        else "not reported"
                    ),
                    standard=std.id,
                )
            )
            name = None
        out.append(name)
    return out[0], out[1]


def homes_on_land(study: StudyState, standards: list[Standard]) -> dict[str, np.ndarray]:
    """Per denominator land, which homes touch it (those the official figure counts)."""
    homes = study.demand.geometry.to_numpy()
    return {k: study.lands.homes_on(k, homes) for k in sorted({s.denominator for s in standards})}


def _warn_off_land(study: StudyState, on_land: dict[str, np.ndarray]) -> None:
    """A note per district and denominator land where under `OFFICIAL_LAND_WARN_PCT` of the
    modelled residents live on that land (the official area figure then speaks for few of them)."""
    res = study.demand["residents"].to_numpy(dtype=float)
    did_of = study.demand["district_id"].to_numpy()
    for _, d in study.districts.iterrows():
        mine = did_of == d["district_id"]
        total = float(res[mine].sum())
        if total <= 0:
            continue
        for kind, mask in sorted(on_land.items()):
            pct = 100.0 * float(res[mine & mask].sum()) / total
            if pct < OFFICIAL_LAND_WARN_PCT:
                study.notes.append(
                    Note(
                        f"{d['slug']}: only {pct:.1f}% of its residents live on "
                        f"{kind.replace('_', ' ')}, the land the official figure "
                        "(area_covered_euclid_pct) divides; that figure speaks for few of them, "
                        "read residents_covered_pct",
                        district=d["slug"],
                        kind=OFFICIAL_LAND_NOTE,
                    )
                )
