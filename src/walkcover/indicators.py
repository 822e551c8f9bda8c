"""Per-district indicators from per-unit coverage results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from walkcover import coverage as cov
from walkcover.standards import Standard

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
    "demand_units",
    "residents",
    "residents_covered",
    "residents_covered_pct",
    "units_covered_pct",
    "target_pct",
    "meets_target",
    "unsnapped_units",
    "unreachable_units",
    "beyond_search_units",
    "demand_model",
    "citation",
]


def district_summary(
    demand: pd.DataFrame,
    *,
    district: pd.Series,
    standard: Standard,
    facilities_in_district: int,
    facilities_in_reach: int,
    demand_model: str,
) -> dict:
    """One summary row: coverage of `standard` among the demand units of one district.

    Parameters
    ----------
    demand
        That district's demand units with ``residents`` and ``<id>_dist_m/_covered/_status``.
    district
        The district's row (``slug, district_id, name, name_en, is_sample``).
    facilities_in_district
        Facilities inside the district polygon.
    facilities_in_reach
        Snapped facilities inside the district or within the search limit of it: the ones that
        can serve its residents (facilities across a border count).
    """
    sid = standard.id
    residents = float(demand["residents"].sum())
    covered_mask = demand[f"{sid}_covered"].to_numpy(dtype=bool)
    covered = float(demand["residents"].to_numpy()[covered_mask].sum())
    status = demand[f"{sid}_status"]
    n = len(demand)
    return {
        "district": district["slug"],
        "district_id": district["district_id"],
        "district_name": district["name"],
        "district_name_en": district["name_en"],
        "is_sample": bool(district["is_sample"]),
        "standard": sid,
        "standard_name": standard.name,
        "threshold_m": standard.threshold_m,
        "context_applied": standard.context_applied,
        "facilities": facilities_in_district,
        "facilities_in_reach": facilities_in_reach,
        "demand_units": n,
        "residents": round(residents, 1),
        "residents_covered": round(covered, 1),
        "residents_covered_pct": 100.0 * covered / residents if residents > 0 else np.nan,
        "units_covered_pct": 100.0 * covered_mask.sum() / n if n else np.nan,
        "target_pct": standard.target_pct,
        "meets_target": (100.0 * covered / residents >= standard.target_pct)
        if residents > 0
        else None,
        "unsnapped_units": int((status == cov.STATUS_UNSNAPPED).sum()),
        "unreachable_units": int((status == cov.STATUS_UNREACHABLE).sum()),
        "beyond_search_units": int((status == cov.STATUS_BEYOND_LIMIT).sum()),
        "demand_model": demand_model,
        "citation": f"{standard.citation.section} {standard.citation.text}".strip(),
    }
