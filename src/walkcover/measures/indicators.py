"""Per-district indicators: the three coverage figures per standard, and counts and densities."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.config.standards import Standard, StandardSet, features_matching
from walkcover.engine import coverage as cov
from walkcover.measures.access import district_access
from walkcover.measures.facilities import out_of_service_tags
from walkcover.measures.land import area_within, overlap_pieces

CONTEXTS = ("main_street", "ordinary_road", "riverside_park")

#: The summary's choice and capacity figures (issue 29: a run before them wrote none); NaN / ""
#: for a standard that measures neither.
CHOICE_ACCESS_COLUMNS = (
    "residents_choice_pct",
    "access_mean_per_1000",
    "access_p10_per_1000",
    "access_norm_per_1000",
    "residents_below_norm_pct",
    "capacity_unit",
    "facilities_default_capacity",
)

SUMMARY_COLUMNS = [
    "district",
    "district_id",
    "district_name",
    "district_name_en",
    "is_sample",
    "standard",
    "standard_name",
    "threshold_m",
    "context_applied",
    "facilities",
    "facilities_in_reach",
    "facilities_excluded",
    "demand_units",
    "residents_group",
    "residents",
    "residents_covered",
    "residents_covered_pct",
    "no_data_reason",
    "report_group",
    "report_group_residents",
    "report_group_covered_pct",
    "units_covered_pct",
    "denominator",
    "land_km2",
    "residents_on_land_pct",
    "area_covered_euclid_pct",
    "area_covered_pct",
    "detour_loss_pp",
    "residents_covered_safe_pct",
    *CHOICE_ACCESS_COLUMNS,
    "target_pct",
    "meets_target",
    "meets_target_official",
    "unsnapped_units",
    "unreachable_units",
    "beyond_search_units",
    *[f"street_km_{c}" for c in CONTEXTS],
    *[f"street_covered_pct_{c}" for c in CONTEXTS],
    "demand_model",
    "building_completeness_pct",
    "population_model",
    "citation",
]

DISTRICT_COLUMNS = [
    "district",
    "district_id",
    "district_name",
    "indicator",
    "name",
    "value",
    "unit",
    "target",
    "meets_target",
    "basis",
    "note",
    "section",
]


def _keys(selectors: list) -> set[str]:
    """Every key the selectors test (for lifecycle prefixes on those keys)."""
    return {k for sel in selectors for k in sel}


def _pct(num: float, den: float) -> float:
    return 100.0 * num / den if den > 0 else float("nan")


#: Percentage points of rounding a share may fall short of its target by and still meet it: an
#: area share of land wholly within the circles is 100 ± 1e-13 (areas of clipped polygons), and a
#: planner reading "100.0 %" must not see "target not met".
TARGET_TOL_PP = 1e-9


def meets(pct: float | np.ndarray, target_pct: float | np.ndarray) -> bool | np.ndarray:
    """Whether a share meets its target, up to `TARGET_TOL_PP` of rounding."""
    return np.asarray(pct) >= np.asarray(target_pct) - TARGET_TOL_PP


@dataclass(frozen=True)
class FacilityCounts:
    """A standard's facilities as one district's summary counts them.

    ``in_district``: facilities inside the district polygon that count. ``in_reach``: snapped
    facilities inside the district or within the search limit of it, the ones that can serve its
    residents (facilities across a border count); 0 means no figure. ``excluded``: candidates in
    the district that do not count (too small, private, other school level).
    """

    in_district: int
    in_reach: int
    excluded: int = 0
    #: Of those in reach, how many are given the standard's default capacity (no usable tag);
    #: None where the standard has no access rule.
    default_capacity: int | None = None


@dataclass(frozen=True)
class LandCover:
    """The standard's denominator land in one district: ``areas`` (``land_km2``,
    ``area_covered_euclid_pct`` (official, straight-line), ``area_covered_pct`` (walking),
    ``detour_loss_pp``), and ``on_land``, which of the district's homes lie on that land (how many
    residents the official figure speaks for)."""

    areas: Mapping[str, float] = field(default_factory=dict)
    on_land: np.ndarray | None = None


@dataclass(frozen=True)
class StreetCover:
    """For the share of each street context's length that is covered: covered length per edge
    (``edge_cover``), which edges lie in the district, each edge's context and length, and
    ``{c: context == c}`` per context of `CONTEXTS`, made once for every district (a comparison of
    1.8 million strings takes 20 ms)."""

    edge_cover: np.ndarray
    edge_in_district: np.ndarray
    length_m: np.ndarray
    context_masks: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class ResidentGroups:
    """The population group the residents figures count (column ``residents_<group>``; None: all
    residents), and a group whose coverage is reported beside them."""

    group: str | None = None
    report_group: str | None = None


@dataclass(frozen=True)
class DistrictFacts:
    """How the district's residents were modelled and how complete its mapped buildings look
    (`completeness.building_completeness`)."""

    demand_model: str = ""
    population_model: str = ""
    building_completeness_pct: float = float("nan")


def district_summary(
    demand: pd.DataFrame,
    *,
    district: pd.Series,
    standard: Standard,
    facilities: FacilityCounts,
    land: LandCover | None = None,
    streets: StreetCover | None = None,
    groups: ResidentGroups | None = None,
    facts: DistrictFacts | None = None,
) -> dict:
    """One summary row: the figures of `standard` for one district.

    Parameters
    ----------
    demand
        That district's demand units with ``residents`` and ``<id>_dist_m/_covered/_status``.
    district
        The district's row (``slug, district_id, name, name_en, is_sample``).
    facilities
        The standard's facilities counted for the district (`FacilityCounts`).
    land
        Its denominator land's figures (`LandCover`); NaN where not given.
    streets
        Street lengths by context and what is covered (`StreetCover`); NaN where not given.
    groups
        The population groups the figures count (`ResidentGroups`; default all residents).
    facts
        How its residents were modelled (`DistrictFacts`).
    """
    land = land or LandCover()
    groups = groups or ResidentGroups()
    facts = facts or DistrictFacts()
    group, report_group, on_land = groups.group, groups.report_group, land.on_land
    sid = standard.id
    res = demand[f"residents_{group}" if group else "residents"].to_numpy(dtype=float)
    residents = float(res.sum())
    covered_mask = demand[f"{sid}_covered"].to_numpy(dtype=bool)
    covered = float(res[covered_mask].sum())
    status = demand[f"{sid}_status"]
    n = len(demand)
    areas = land.areas
    euclid = areas.get("area_covered_euclid_pct", float("nan"))
    walk = areas.get("area_covered_pct", float("nan"))
    resid_pct = _pct(covered, residents)
    row = {
        "district": district["slug"],
        "district_id": district["district_id"],
        "district_name": district["name"],
        "district_name_en": district["name_en"],
        "is_sample": bool(district["is_sample"]),
        "standard": sid,
        "standard_name": standard.name,
        "threshold_m": standard.threshold_m,
        "context_applied": standard.context_applied,
        "facilities": facilities.in_district,
        "facilities_in_reach": facilities.in_reach,
        "facilities_excluded": facilities.excluded,
        "demand_units": n,
        "residents_group": group or "all",
        "residents": round(residents, 1),
        "residents_covered": round(covered, 1),
        "residents_covered_pct": resid_pct,
        "units_covered_pct": 100.0 * covered_mask.sum() / n if n else np.nan,
        "denominator": standard.denominator,
        "land_km2": areas.get("land_km2", float("nan")),
        "area_covered_euclid_pct": euclid,
        "residents_on_land_pct": (
            _pct(float(res[on_land].sum()), residents) if on_land is not None else float("nan")
        ),
        "area_covered_pct": walk,
        "detour_loss_pp": areas.get("detour_loss_pp", euclid - walk),
        "residents_covered_safe_pct": float("nan"),
        "target_pct": standard.target_pct,
        "meets_target": bool(meets(resid_pct, standard.target_pct)) if residents > 0 else None,
        "meets_target_official": (
            bool(meets(euclid, standard.target_pct)) if euclid == euclid else None
        ),
        "unsnapped_units": int((status == cov.STATUS_UNSNAPPED).sum()),
        "unreachable_units": int((status == cov.STATUS_UNREACHABLE).sum()),
        "beyond_search_units": int((status == cov.STATUS_BEYOND_LIMIT).sum()),
        "demand_model": facts.demand_model,
        "building_completeness_pct": facts.building_completeness_pct,
        "population_model": facts.population_model,
        "citation": f"{standard.citation.section} {standard.citation.text}".strip(),
    }
    row["report_group"] = report_group or ""
    row["report_group_residents"] = float("nan")
    row["report_group_covered_pct"] = float("nan")
    if report_group:
        rg = demand[f"residents_{report_group}"].to_numpy(dtype=float)
        row["report_group_residents"] = round(float(rg.sum()), 1)
        row["report_group_covered_pct"] = _pct(float(rg[covered_mask].sum()), float(rg.sum()))
    if f"{sid}_safe_covered" in demand:
        safe = demand[f"{sid}_safe_covered"].to_numpy(dtype=bool)
        row["residents_covered_safe_pct"] = _pct(float(res[safe].sum()), residents)
    row.update(_choice_access(demand, standard, res, residents, facilities))
    for c in CONTEXTS:
        row[f"street_km_{c}"] = float("nan")
        row[f"street_covered_pct_{c}"] = float("nan")
    if streets is not None:
        for c in CONTEXTS:
            m = streets.edge_in_district & streets.context_masks[c]
            total = float(streets.length_m[m].sum())
            row[f"street_km_{c}"] = total / 1000.0
            row[f"street_covered_pct_{c}"] = _pct(float(streets.edge_cover[m].sum()), total)
    row["no_data_reason"] = ""
    if facilities.in_reach == 0:
        # no facility of the standard can serve the district: the data has none, so there is no
        # figure to give (never 0%), and no target met or missed
        row["no_data_reason"] = NO_FACILITY_REASON
        for col in NO_DATA_FIGURES:
            row[col] = float("nan")
        for c in CONTEXTS:
            row[f"street_covered_pct_{c}"] = float("nan")
        row["meets_target"] = None
        row["meets_target_official"] = None
    return row


#: Why a summary row has no figures: no facility of its standard within reach of the district
#: (the city's data may hold some, too far to serve it), and why a city has none (no facility in
#: reach of any of its districts). The maps and reports say the same words
#: (`walkcover.presentation.figures.NO_FACILITY_WHY`); a home's status ``no_facilities`` means
#: more: no facility of the standard in the data at all.
NO_FACILITY_REASON = "no facility in reach in the data · 数据中无可服务设施"
#: The figures a row without a facility in reach leaves empty (NaN), never 0.
NO_DATA_FIGURES = (
    "residents_covered",
    "residents_covered_pct",
    "report_group_covered_pct",
    "units_covered_pct",
    "area_covered_euclid_pct",
    "area_covered_pct",
    "detour_loss_pp",
    "residents_covered_safe_pct",
    "residents_choice_pct",
    "access_mean_per_1000",
    "access_p10_per_1000",
    "residents_below_norm_pct",
)


def _choice_access(
    demand: pd.DataFrame,
    standard: Standard,
    res: np.ndarray,
    residents: float,
    facilities: FacilityCounts,
) -> dict[str, object]:
    """The choice and capacity figures of one summary row (NaN where the standard measures
    neither): the share of residents with two or more facilities within the threshold, and their
    E2SFCA access weighed by residents (`walkcover.measures.access.district_access`)."""
    sid, rule = standard.id, standard.access
    out: dict[str, object] = {
        "residents_choice_pct": float("nan"),
        "access_mean_per_1000": float("nan"),
        "access_p10_per_1000": float("nan"),
        "access_norm_per_1000": float("nan"),
        "residents_below_norm_pct": float("nan"),
        "capacity_unit": "",
        "facilities_default_capacity": pd.NA,
    }
    if f"{sid}_n_within" in demand:
        n = pd.array(demand[f"{sid}_n_within"], dtype="Int64").fillna(0).to_numpy(dtype=int)
        out["residents_choice_pct"] = _pct(float(res[n >= 2].sum()), residents)
    if rule is not None and f"{sid}_access" in demand:
        norm = rule.norm_per_1000
        fig = district_access(
            demand[f"{sid}_access"].to_numpy(dtype=float),
            res,
            np.zeros(len(res), dtype=np.int64),
            norm_per_1000=norm if norm is not None else float("nan"),
        )
        if len(fig):
            first = fig.iloc[0]
            out["access_mean_per_1000"] = float(first["mean_per_1000"])
            out["access_p10_per_1000"] = float(first["p10_per_1000"])
            if norm is not None:
                out["access_norm_per_1000"] = float(norm)
                out["residents_below_norm_pct"] = 100.0 * float(first["share_below_norm"])
        out["capacity_unit"] = rule.capacity_unit
        if facilities.default_capacity is not None:
            out["facilities_default_capacity"] = int(facilities.default_capacity)
    return out


#: The land unions `district_indicators` reads: built-up land, green land, parks.
INDICATOR_LANDS = ("built_up", "green", "park_green")


def district_indicators(
    features: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    districts_proj: gpd.GeoDataFrame,
    demand: pd.DataFrame,
    rules: StandardSet,
    land_union: Callable[[str], shapely.Geometry],
) -> pd.DataFrame:
    """Counts, densities and per-capita rows per district (``district_indicators.csv``).

    A row whose features OSM does not map anywhere in the study area has value NaN and says so:
    missing data is not zero.
    """
    rows = []
    built, green, park = (land_union(kind) for kind in INDICATOR_LANDS)
    green_built = overlap_pieces(green, built)  # once for the city, not per district
    pts = features.geometry.representative_point()
    # each count's features (the same for every district): their rows in `features`, or None
    # when OSM maps none in the study area
    counted: dict[str, np.ndarray | None] = {}
    for rule in rules.counts:
        hits = features_matching(features, rule.selectors)
        keys = _keys(rule.selectors)
        retired = out_of_service_tags(hits["tags"], [keys] * len(hits))
        hits = hits[np.array([r is None for r in retired], dtype=bool)]
        counted[rule.id] = features.index.get_indexer(hits.index) if len(hits) else None
    for (_, d), dgeom in zip(districts.iterrows(), districts_proj.geometry):
        base = {"district": d["slug"], "district_id": d["district_id"], "district_name": d["name"]}
        area_km2 = shapely.area(dgeom) / 1e6
        built_km2 = area_within(built, dgeom) / 1e6
        shapely.prepare(dgeom)
        inside = shapely.contains(dgeom, pts.to_numpy())
        residents = float(demand.loc[demand["district_id"] == d["district_id"], "residents"].sum())

        def add(
            indicator, name, value, unit, target, basis, note="", section="", op=">=", base=base
        ):
            meets = None
            if target is not None and value == value:
                meets = bool(value >= target) if op == ">=" else bool(value <= target)
            rows.append(
                {
                    **base,
                    "indicator": indicator,
                    "name": name,
                    "value": value,
                    "unit": unit,
                    "target": target,
                    "meets_target": meets,
                    "basis": basis,
                    "note": note,
                    "section": section,
                }
            )

        add("area", "District area", area_km2, "km²", None, "district polygon")
        add(
            "built_up_area",
            "Built-up area (OSM land use)",
            built_km2,
            "km²",
            None,
            "land.built_up selectors",
        )
        for rule in rules.counts:
            rows_at = counted[rule.id]
            missing = rows_at is None
            n_in = 0 if rows_at is None else int(inside[rows_at].sum())
            note = (
                "no such features mapped in OSM in the study area: missing data, not zero"
                if missing
                else ""
            )
            if rule.measure == "per_km2":
                v1 = float("nan") if missing else n_in / area_km2 if area_km2 > 0 else float("nan")
                v2 = float("nan") if missing or built_km2 <= 0 else n_in / built_km2
                add(
                    rule.id + ".district_area",
                    f"{rule.name} (per km² of district area)",
                    v1,
                    "per km²",
                    rule.target,
                    f"{n_in} mapped ÷ {area_km2:.2f} km²",
                    note,
                    rule.section,
                )
                add(
                    rule.id + ".built_up_area",
                    f"{rule.name} (per km² of built-up area)",
                    v2,
                    "per km²",
                    rule.target,
                    f"{n_in} mapped ÷ {built_km2:.2f} km² built-up",
                    note,
                    rule.section,
                )
            else:
                add(
                    rule.id,
                    rule.name,
                    float("nan") if missing else float(n_in),
                    "count",
                    rule.target,
                    "mapped in OSM",
                    note,
                    rule.section,
                )
        park_m2 = area_within(park, dgeom)
        t = rules.land_indicators
        add(
            "park.per_capita",
            "Park green space per resident",
            park_m2 / residents if residents > 0 else float("nan"),
            "m² per resident",
            t.park_per_capita_m2.target,
            f"{park_m2 / 1e4:.1f} ha of parks ÷ {residents:,.0f} modelled residents",
            "" if park_m2 > 0 else "no parks mapped in the district",
            t.park_per_capita_m2.section,
        )
        green_in_built = area_within(green_built, dgeom) / 1e6
        add(
            "green.coverage",
            "Green land share of built-up area (OSM-mapped green land; proxy for 绿化覆盖率, "
            "which counts tree canopy)",
            100.0 * green_in_built / built_km2 if built_km2 > 0 else float("nan"),
            "%",
            t.green_share_pct.target,
            f"{green_in_built:.3f} km² green ÷ {built_km2:.3f} km² built-up",
            "" if built_km2 > 0 else "no built-up land mapped",
            t.green_share_pct.section,
        )
    return pd.DataFrame(rows, columns=DISTRICT_COLUMNS)


def group_summary(summary: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """Per group of districts (e.g. 市内五区) and standard: residents covered over the group's
    residents, land figures weighted by each district's land, facilities summed."""
    rows = []
    for group, ids in groups.items():
        part = summary[summary["district_id"].astype(str).isin([str(i) for i in ids])]
        if part.empty:
            continue
        for sid, s in part.groupby("standard", sort=False):
            res = float(s["residents"].sum())
            land = s["land_km2"].fillna(0.0)

            def weighted(col: str, land=land, s=s) -> float:
                ok = s[col].notna() & (land > 0)
                return (
                    float((s.loc[ok, col] * land[ok]).sum() / land[ok].sum())
                    if ok.any()
                    else float("nan")
                )

            euclid, walk = weighted("area_covered_euclid_pct"), weighted("area_covered_pct")
            none = _no_facility(s)
            rows.append(
                {
                    "group": group,
                    "districts": len(s),
                    "standard": sid,
                    "threshold_m": s["threshold_m"].iloc[0],
                    "facilities": int(s["facilities"].sum()),
                    "residents": round(res, 1),
                    "residents_covered_pct": residents_covered_pct(s),
                    "no_data_reason": NO_FACILITY_REASON if none else "",
                    "area_covered_euclid_pct": euclid,
                    "area_covered_pct": walk,
                    "detour_loss_pp": euclid - walk,
                    "target_pct": s["target_pct"].iloc[0],
                }
            )
    return pd.DataFrame(rows)


def _no_facility(rows: pd.DataFrame) -> bool:
    """Whether no district of `rows` (one standard) has a facility in reach: no data."""
    return bool((pd.to_numeric(rows["facilities_in_reach"], errors="coerce") == 0).all())


def residents_covered_pct(rows: pd.DataFrame) -> float:
    """The residents covered (%) of several districts' summary rows of one standard: their
    residents covered over all their residents, the one rule of every figure for more than one
    district (a group, a city, a region's city). NaN when no district has a facility in reach (no
    data, never 0%) or there are no residents."""
    res = float(pd.to_numeric(rows["residents"], errors="coerce").sum())
    if res <= 0 or _no_facility(rows):
        return float("nan")
    return 100.0 * float(pd.to_numeric(rows["residents_covered"], errors="coerce").sum()) / res


def city_figures(summary: pd.DataFrame) -> pd.DataFrame:
    """Each city's figure per standard from its districts' rows of a region summary (``city,
    city_name, standard, standard_name, residents, residents_covered, facilities_in_reach,
    target_pct``; `residents_covered_pct`), against the standard's target, ranked within the
    standard: what the region page ranks and the region map labels."""
    rows = []
    for (sid, city, name), s in summary.groupby(["standard", "city", "city_name"], sort=False):
        pct = residents_covered_pct(s)
        target = float(pd.to_numeric(s["target_pct"], errors="coerce").iloc[0])
        rows.append(
            {
                "standard": sid,
                "city": city,
                "city_name": name,
                "standard_name": s["standard_name"].iloc[0],
                "residents": float(pd.to_numeric(s["residents"], errors="coerce").sum()),
                "target_pct": target,
                "residents_covered_pct": pct,
                # a standard with no facility in reach of any of the city's districts: no data,
                # for the reason each of its districts' rows gives
                "note": NO_FACILITY_REASON if _no_facility(s) else "",
                "meets_target": meets(pct, target) if pct == pct else None,
            }
        )
    out = pd.DataFrame(
        rows,
        columns=[
            "standard",
            "city",
            "city_name",
            "standard_name",
            "residents",
            "target_pct",
            "residents_covered_pct",
            "note",
            "meets_target",
        ],
    )
    out["rank"] = out.groupby("standard")["residents_covered_pct"].rank(
        ascending=False, method="min"
    )
    return out
