"""Choice and capacity for the standards that ask for them (``choice: true``, an ``access`` rule in
the standards file): one set of (home, facility) walking distances within the standard's
threshold (`walkcover.engine.choice.facility_pairs`) gives each home its 2nd and 3rd nearest
facility, how many lie within the threshold, and its E2SFCA access
(`walkcover.measures.access.e2sfca`).

A standard without either costs nothing here: the pairs are searched only where asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from walkcover.assessment.model import Note
from walkcover.assessment.study import StudyState
from walkcover.config.standards import Standard
from walkcover.config.tags import tag_dicts
from walkcover.engine import coverage as cov
from walkcover.engine.choice import facility_pairs, nearest_facilities
from walkcover.measures.access import MAX_CAPACITY, Decay, e2sfca, facility_capacities

#: Per standard with ``choice``, the demand columns it adds (after ``<id>_``).
CHOICE_COLUMNS = ("nearest2_m", "nearest3_m", "n_within")
#: Per standard with an ``access`` rule, the demand column it adds (after ``<id>_``).
ACCESS_COLUMNS = ("access",)
#: The facility columns an ``access`` rule fills (NaN / "" for the other standards).
CAPACITY_COLUMNS = ("capacity", "capacity_source")


@dataclass(frozen=True)
class ChoiceResult:
    """What `measure_choice` adds for one standard: demand columns, each counted facility's
    capacity and where it came from (aligned with the counted facilities), and notes."""

    columns: dict[str, Any] = field(default_factory=dict)
    capacity: np.ndarray | None = None
    capacity_source: np.ndarray | None = None
    notes: list[Note] = field(default_factory=list)


def residents_for(study: StudyState, std: Standard) -> np.ndarray:
    """Each home's residents of the standard's population group where the city has a raster for
    it, else all residents (as the summary counts them)."""
    col = f"residents_{std.population_group}" if std.population_group else "residents"
    if col not in study.demand:
        col = "residents"
    return np.nan_to_num(study.demand[col].to_numpy(dtype=float), nan=0.0)


def measure_choice(
    study: StudyState,
    std: Standard,
    *,
    counted: gpd.GeoDataFrame,
    access: gpd.GeoSeries,
    fac_snaps: cov.Snaps,
    threshold_m: np.ndarray | float,
    status: np.ndarray | None = None,
) -> ChoiceResult:
    """The choice and access columns of `std` (nothing when it asks for neither).

    Parameters
    ----------
    study
        The assessment being made (network, homes and their snaps, features' tags).
    std
        The standard; ``std.choice`` and ``std.access`` say what is measured.
    counted
        The facilities that count, in the order the pass numbers them.
    access
        Where they are reached (index: position in `counted`), as snapped in `fac_snaps`.
    fac_snaps
        `access` snapped onto the network.
    threshold_m
        Each home's radius (the street-context radius where the standard has them).
    status
        Each home's status from the coverage pass: where it is ``no_facilities`` (the data holds
        none of the standard's facilities) choice and capacity are unknown (NaN, <NA>), never 0.

    Returns
    -------
    ChoiceResult
        ``<id>_nearest2_m``, ``<id>_nearest3_m`` (NaN where there is no 2nd or 3rd facility
        within the threshold) and ``<id>_n_within`` (facilities within each home's threshold;
        <NA> for homes that could not be snapped, which were not measured) with ``choice``;
        ``<id>_access`` (capacity per 1,000 residents of the group, NaN unmeasured) and each
        facility's capacity with an ``access`` rule.
    """
    rule = std.access
    if not std.choice and rule is None:
        return ChoiceResult()
    sid = std.id
    thr = np.broadcast_to(np.asarray(threshold_m, dtype=float), (study.demand_snaps.n_items,))
    limit_m = float(max(np.max(thr, initial=0.0), std.threshold_m))
    pairs = facility_pairs(
        study.network,
        study.demand_snaps,
        fac_snaps,
        limit_m=limit_m,
        owner=access.index.to_numpy(),
        n_facilities=len(counted),
    )
    columns: dict[str, Any] = {}
    notes: list[Note] = []
    if std.choice:
        near = nearest_facilities(pairs, k=3, threshold_m=thr)
        # a 2nd or 3rd facility counts as a choice only within the home's threshold
        for j in (2, 3):
            d = near[f"dist_{j}_m"].to_numpy(dtype=float)
            columns[f"{sid}_nearest{j}_m"] = np.where(d <= thr, d, np.nan)
        # a count, <NA> for homes that could not be snapped (their status says so)
        columns[f"{sid}_n_within"] = near["n_within"].array
    unknown = (
        np.zeros(len(thr), dtype=bool)
        if status is None
        else np.asarray(status, dtype=object) == cov.STATUS_NO_FACILITIES
    )
    if std.choice and unknown.any():
        columns[f"{sid}_n_within"][unknown] = pd.NA
    capacity = source = None
    if rule is not None:
        caps = facility_capacities(_facility_tags(study, counted), default=rule.default_capacity)
        # copies: a planner's file overwrites some (pandas gives read-only views)
        capacity = caps["capacity"].to_numpy(dtype=float, copy=True)
        source = caps["source"].to_numpy(dtype=object, copy=True)
        if "capacity" in counted:  # planners' files (walkcover import) give their own
            given = pd.to_numeric(counted["capacity"], errors="coerce").to_numpy(dtype=float)
            own = np.isfinite(given) & (given >= 0) & (given <= MAX_CAPACITY)
            capacity[own] = given[own]
            source[own] = "file"
        decay = Decay.from_mapping(rule.decay.as_mapping(std.threshold_m))
        result = e2sfca(pairs, population=residents_for(study, std), supply=capacity, decay=decay)
        columns[f"{sid}_access"] = np.where(unknown, np.nan, result.access_per_1000)
        refused = caps["note"].to_numpy(dtype=object)
        n_default = int((source == "default").sum())
        if n_default:
            notes.append(
                Note(
                    f"{sid}: {n_default} of {len(counted)} facilit(y/ies) have no usable capacity "
                    f"tag and are given the default {rule.default_capacity:g} "
                    f"{rule.capacity_unit} ({rule.capacity_basis})",
                    standard=sid,
                )
            )
        bad = [f"{i}: {r}" for i, r in zip(counted["osm_id"], refused) if r]
        if bad:
            more = " …" if len(bad) > 5 else ""
            notes.append(
                Note(
                    f"{sid}: capacity tags that are not numbers were refused ({'; '.join(bad[:5])}"
                    f"{more})",
                    standard=sid,
                )
            )
    return ChoiceResult(columns, capacity, source, notes)


def _facility_tags(study: StudyState, counted: gpd.GeoDataFrame) -> list[Mapping | None]:
    """Each counted facility's OSM tags (None for a planner's file point, which has none)."""
    # (the tags alone by id: the features' other columns are not copied)
    tags = pd.Series(study.features["tags"].array, index=study.features["osm_id"].array)
    # whole dicts of the counted few: every capacity key a facility has is read
    return list(tag_dicts(tags.reindex(counted["osm_id"].to_numpy())))
