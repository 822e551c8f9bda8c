"""Facilities of a standard, found in OSM features by the standard's rules.

Every candidate the selectors find is kept in the output with ``counts`` (whether it serves the
standard) and ``reason`` (why not: too small, not public, a school of another or unknown level), so
a planner sees what was left out and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.config.standards import Selector, Standard, selector_masks
from walkcover.config.tags import tag_dicts, texts_matching

PRIMARY, MIDDLE = "primary", "middle"

# Names: the *last* level word decides (郑州中学附属小学 is a primary school); 一贯制 means both.
_BOTH_NAME = re.compile(
    r"九年一贯|十二年一贯|一贯制|九年制|peruskoulu|grundskola|comprehensive", re.I
)
_LEVEL_WORDS = re.compile(
    r"(小学|中学|初中|初级中学|高中|高级中学|primary|elementary|ala-?aste|alakoulu|"
    r"secondary|middle school|high school|junior high|yläaste|yläkoulu|lukio|gymnasium)",
    re.I,
)
_PRIMARY_WORDS = {"小学", "primary", "elementary", "ala-aste", "alaaste", "alakoulu"}

#: OSM lifecycle words: a feature carrying one (``disused=yes``, ``abandoned:amenity=toilets``)
#: is no longer in service, whatever its other tags say.
LIFECYCLE_WORDS = ("disused", "abandoned", "demolished", "razed", "removed", "was")
#: Reasons that start with this mark a feature left out because it is no longer in service.
OUT_OF_SERVICE = "out of service"


def classify_school(tags: dict[str, str]) -> frozenset[str] | None:
    """The levels a school serves, from ``isced:level``, ``school:level``/``grades``, or its name.

    Returns
    -------
    frozenset or None
        ``{"primary"}``, ``{"middle"}``, both (nine-year schools), or None when the tags do not say.
    """
    levels: set[str] = set()
    isced = tags.get("isced:level")
    if isced:
        for num in re.findall(r"\d", isced):
            if num == "1":
                levels.add(PRIMARY)
            elif num in {"2", "3"}:
                levels.add(MIDDLE)
        if levels:
            return frozenset(levels)
    level = (tags.get("school:level") or tags.get("school") or "").lower()
    if level:
        if re.search(r"primary|elementary|小学", level):
            levels.add(PRIMARY)
        if re.search(r"secondary|middle|high|中学|初中|高中", level):
            levels.add(MIDDLE)
        if levels:
            return frozenset(levels)
    grades = tags.get("grades")
    if grades:
        nums = [int(n) for n in re.findall(r"\d+", grades)]
        if nums:
            lo, hi = min(nums), max(nums)
            if lo <= 6:
                levels.add(PRIMARY)
            if hi >= 7:
                levels.add(MIDDLE)
            return frozenset(levels)
    for key in ("name", "name:zh", "official_name", "name:en"):
        name = tags.get(key)
        if not name:
            continue
        if _BOTH_NAME.search(name):
            return frozenset({PRIMARY, MIDDLE})
        words = _LEVEL_WORDS.findall(name)
        if words:
            last = words[-1].lower()
            return frozenset({PRIMARY if last in _PRIMARY_WORDS else MIDDLE})
    return None


def select_facilities(features: gpd.GeoDataFrame, standard: Standard) -> gpd.GeoDataFrame:
    """Candidates matching any of `standard`'s selectors, each marked whether it counts and why not.

    Parameters
    ----------
    features
        Normalised OSM features (``osm_id``, ``name``, ``tags`` text, geometry), projected to
        metres when `standard` has a size rule.
    standard
        The standard whose selectors and rules apply.

    Returns
    -------
    geopandas.GeoDataFrame
        ``osm_id, standard, name, matched_by`` (the selector that matched, as ``k=v`` text),
        ``counts`` (bool), ``reason`` ("" when it counts), geometry.
    """
    # each feature's first matching selector, from one array mask per selector
    first = np.full(len(features), -1)
    for j, mask in reversed(list(enumerate(selector_masks(features, standard.selectors)))):
        first[mask] = j
    rows = np.flatnonzero(first >= 0)
    matched = [describe(standard.selectors[j]) for j in first[rows]]
    keys = [tuple(standard.selectors[j]) for j in first[rows]]
    picked = features.iloc[rows]
    ok = picked.geometry.notna().to_numpy() & ~picked.geometry.is_empty.to_numpy()
    ok &= picked.geom_type.isin(
        ["Point", "Polygon", "MultiPolygon", "LineString", "MultiLineString"]
    ).to_numpy()
    picked = picked[ok]
    matched = [m for m, k in zip(matched, ok) if k]
    keys = [m for m, k in zip(keys, ok) if k]
    reasons = _reasons(picked, standard, keys)
    return gpd.GeoDataFrame(
        {
            "osm_id": picked["osm_id"].to_numpy(),
            "standard": standard.id,
            "name": picked["name"].to_numpy(),
            "matched_by": matched,
            "counts": np.array([r == "" for r in reasons], dtype=bool),
            "reason": reasons,
        },
        geometry=picked.geometry.to_numpy(),
        crs=features.crs,
    )


def out_of_service(tags: dict[str, str], keys: Iterable[str] = ()) -> str | None:
    """The lifecycle tag that says a feature is no longer in service, as ``k=v`` text, or None.

    ``disused=yes`` or ``abandoned=yes`` retire the whole feature; a prefixed key
    (``disused:highway=bus_stop``) retires it only for a key among `keys` (those the standard's
    selector matched on): a school that was once a shop (``disused:shop=*``) is still a school.
    """
    wanted = set(keys)
    for key, value in tags.items():
        word, _, rest = key.partition(":")
        if word not in LIFECYCLE_WORDS:
            continue
        if rest:
            if rest in wanted and str(value).lower() not in ("no", "false", "0"):
                return f"{key}={value}"
        elif str(value).lower() not in ("no", "false", "0"):
            return f"{key}={value}"
    return None


#: Finds every tag text with a key that starts with a lifecycle word (and a few more: a value
#: may hold the same text), so that only those rows are read whole.
_LIFECYCLE_KEY = '"(?:' + "|".join(LIFECYCLE_WORDS) + ')[:"]'


def out_of_service_tags(tags: pd.Series, keys: Sequence[Iterable[str]]) -> list[str | None]:
    """`out_of_service` of each row of a tag text column, `keys` per row (the keys its selector
    matched on); only the rows whose text may hold a lifecycle key are read whole."""
    out: list[str | None] = [None] * len(tags)
    rows = np.flatnonzero(texts_matching(tags, _LIFECYCLE_KEY))
    for i, found in zip(rows.tolist(), tag_dicts(tags.iloc[rows]), strict=True):
        out[i] = out_of_service(found or {}, keys[i])
    return out


def _reasons(
    picked: gpd.GeoDataFrame, standard: Standard, keys: Sequence[Iterable[str]]
) -> list[str]:
    """Why each candidate does not count ("" when it does): out of service, excluded, too
    small or of unknown size, a school of another or unknown level; the first that applies."""
    n = len(picked)
    reasons = np.full(n, "", dtype=object)
    open_ = np.ones(n, dtype=bool)  # no reason yet
    for i, lifecycle in enumerate(out_of_service_tags(picked["tags"], keys)):
        if lifecycle is not None:
            reasons[i] = f"{OUT_OF_SERVICE} ({lifecycle})"
            open_[i] = False
    for sel, mask in zip(standard.exclude, selector_masks(picked, standard.exclude), strict=True):
        hit = open_ & mask
        reasons[hit] = f"excluded ({describe(sel)})"
        open_ &= ~hit
    geoms = picked.geometry.to_numpy()
    if standard.min_area_m2 is not None:
        areal = np.isin(shapely.get_type_id(geoms), (3, 6))
        unknown = open_ & ~areal
        reasons[unknown] = "size unknown (mapped as a point or line)"
        open_ &= ~unknown
        small = open_ & (shapely.area(geoms) < standard.min_area_m2)
        reasons[small] = f"smaller than {standard.min_area_m2:g} m²"
        open_ &= ~small
    if standard.school_level is not None:
        rows = np.flatnonzero(open_)
        for i, school in zip(rows.tolist(), tag_dicts(picked["tags"].iloc[rows]), strict=True):
            levels = classify_school(school or {})
            if levels is None:
                reasons[i] = "school level not tagged (isced:level, school:level, grades or name)"
            elif standard.school_level not in levels:
                reasons[i] = f"{'/'.join(sorted(levels))} school"
    return reasons.tolist()


def describe(selector: Selector) -> str:
    """A selector as ``k=v & k2=v2|v3`` text."""
    parts = []
    for key, want in selector.items():
        if want is True:
            parts.append(f"{key}=*")
        elif isinstance(want, list):
            parts.append(f"{key}={'|'.join(want)}")
        else:
            parts.append(f"{key}={want}")
    return " & ".join(parts)
