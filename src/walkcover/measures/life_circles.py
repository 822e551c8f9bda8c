"""GB 50180-2018 life circles: is every facility a tier requires within its distance of a home?

GB 50180-2018 (城市居住区规划设计标准) groups a residential area's facilities by walking time: the
5-, 10- and 15-minute life circles (五分钟、十分钟、十五分钟生活圈居住区), each with the facilities
it requires and each facility's service distance. A home's circle of a tier is *complete* when
every required facility of that tier covers it (is within that facility's own distance); the
tiers are not nested (the standard's own explanation: a higher tier's facilities do not stand in
for a lower tier's), so each tier is judged on its own list.

The coverage itself is measured elsewhere, one standard at a time; this module only combines the
per-standard ``covered`` arrays, per home (`home_life_circles`) and per district, weighted by
residents (`district_life_circles`). Pure numpy/pandas, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: The columns of `district_life_circles` and their dtypes.
_COLUMNS = {
    "district_id": object,
    "tier_min": np.int64,
    "required": np.int64,
    "residents": float,
    "complete_pct": float,
    "most_missing": object,
    "most_missing_residents": float,
}


def _complete_col(tier: int) -> str:
    return f"life_circle_{int(tier)}min_complete"


def _found_col(tier: int) -> str:
    return f"life_circle_{int(tier)}min_found"


def _as_bool(values: object, n: int, sid: str) -> np.ndarray:
    """A standard's coverage as a plain bool array of `n` homes (NA counts as not covered)."""
    try:
        arr = pd.array(values, dtype="boolean")
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"covered[{sid!r}] must hold each home's coverage as True/False ({exc})"
        ) from None
    if len(arr) != n:
        raise ValueError(
            f"covered[{sid!r}] has {len(arr)} values but there are {n} homes (measured has "
            f"{n}): give one value per home, in the same order"
        )
    out: np.ndarray = arr.fillna(False).to_numpy(dtype=bool)
    return out


def _checked_tiers(
    covered: Mapping[str, object], tiers: Mapping[int, Sequence[str]], n: int
) -> dict[int, dict[str, np.ndarray]]:
    """Each tier's standards (ascending tiers, listed order) with their coverage arrays."""
    out: dict[int, dict[str, np.ndarray]] = {}
    for tier in sorted(tiers):
        ids = list(tiers[tier])
        if not ids:
            raise ValueError(
                f"the {tier}-minute tier lists no standards; list its required standards or "
                "leave the tier out"
            )
        missing = [sid for sid in ids if sid not in covered]
        if missing:
            raise ValueError(
                f"no coverage for {', '.join(map(repr, missing))} of the {tier}-minute tier; "
                "measure those standards (every standard of a tier) or leave the tier out"
            )
        out[int(tier)] = {sid: _as_bool(covered[sid], n, sid) for sid in ids}
    return out


def home_life_circles(
    covered: Mapping[str, np.ndarray],
    *,
    tiers: Mapping[int, Sequence[str]],
    measured: np.ndarray,
) -> pd.DataFrame:
    """Each home's life circles: complete or not, and how many required facilities cover it.

    Parameters
    ----------
    covered
        Standard id → each home's coverage by that standard (bool, one value per home; NA
        counts as not covered).
    tiers
        Tier (minutes: 5, 10, 15) → the ids of the standards it requires
        (`walkcover.config.standards.StandardSet.life_circle_tiers`).
    measured
        Each home: whether it was measured (snapped to the walk network for every standard of
        the tiers). Unmeasured homes get <NA>, never False.

    Returns
    -------
    pandas.DataFrame
        One row per home (a fresh ``RangeIndex``), for each tier ``t`` in ascending order:
        ``life_circle_{t}min_complete`` (``"boolean"``: every required standard covers the home)
        and ``life_circle_{t}min_found`` (``"Int64"``: how many of them cover it).

    Raises
    ------
    ValueError
        A tier naming a standard `covered` lacks, an empty tier, or arrays of other lengths.

    Examples
    --------
    Two homes and a 5-minute tier of two standards; the second home lacks the toilet:

    >>> import numpy as np
    >>> covered = {"kindergarten": np.array([True, True]), "toilet": np.array([True, False])}
    >>> h = home_life_circles(covered, tiers={5: ["kindergarten", "toilet"]},
    ...                       measured=np.array([True, True]))
    >>> h["life_circle_5min_complete"].tolist(), h["life_circle_5min_found"].tolist()
    ([True, False], [2, 1])
    """
    ok = np.asarray(measured)
    if ok.ndim != 1 or ok.dtype != bool:
        raise ValueError(f"measured must be a 1-D bool array (one value per home), not {ok.dtype}")
    n = len(ok)
    columns: dict[str, pd.api.extensions.ExtensionArray] = {}
    for tier, by_id in _checked_tiers(covered, tiers, n).items():
        found = np.zeros(n, dtype=np.int64)
        for arr in by_id.values():
            found += arr
        complete = found == len(by_id)
        columns[_complete_col(tier)] = pd.arrays.BooleanArray(complete, ~ok)
        columns[_found_col(tier)] = pd.arrays.IntegerArray(found, ~ok)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def district_life_circles(
    homes: pd.DataFrame,
    *,
    covered: Mapping[str, np.ndarray],
    tiers: Mapping[int, Sequence[str]],
    residents: np.ndarray,
    district: np.ndarray,
) -> pd.DataFrame:
    """Per district and tier: the share of residents whose life circle is complete, and the
    facility the residents of incomplete homes most often lack.

    Parameters
    ----------
    homes
        `home_life_circles` of the same homes (its ``life_circle_{t}min_complete`` columns; <NA>
        marks an unmeasured home, left out of every figure).
    covered
        Standard id → each home's coverage, as given to `home_life_circles`.
    tiers
        Tier → required standard ids, as given to `home_life_circles`.
    residents
        Residents of each home (finite, 0 or more).
    district
        Each home's district id; homes with a missing id (None, NaN) are left out.

    Returns
    -------
    pandas.DataFrame
        One row per district (sorted) × tier (ascending): ``district_id``, ``tier_min``,
        ``required`` (how many standards the tier requires), ``residents`` (measured residents),
        ``complete_pct`` (% of the measured residents whose circle is complete; NaN where the
        district has no measured residents), ``most_missing`` (the standard that the most
        residents of measured, incomplete homes lack; the first listed on a tie; "" when every
        measured home is complete) and ``most_missing_residents`` (those residents; 0 with "").

    Examples
    --------
    Three homes of one district, a 5-minute tier of two standards: home 0 (10 residents) is
    complete, home 1 (30) lacks the toilet, home 2 (5) lacks both. 10 of 45 residents are
    complete (22.2 %); 35 lack the toilet, 5 the kindergarten:

    >>> import numpy as np
    >>> covered = {"kindergarten": np.array([True, True, False]),
    ...            "toilet": np.array([True, False, False])}
    >>> tiers = {5: ["kindergarten", "toilet"]}
    >>> homes = home_life_circles(covered, tiers=tiers, measured=np.ones(3, dtype=bool))
    >>> d = district_life_circles(homes, covered=covered, tiers=tiers,
    ...                           residents=np.array([10.0, 30.0, 5.0]),
    ...                           district=np.array(["a", "a", "a"], dtype=object))
    >>> d[["district_id", "tier_min", "residents", "most_missing", "most_missing_residents"]]
      district_id  tier_min  residents most_missing  most_missing_residents
    0           a         5       45.0       toilet                    35.0
    >>> round(float(d["complete_pct"].iloc[0]), 1)
    22.2
    """
    pop = np.asarray(residents, dtype=float)
    n = len(homes)
    if pop.shape != (n,):
        raise ValueError(f"residents needs one value for each of the {n} homes, not {pop.shape}")
    if not np.isfinite(pop).all() or (pop < 0).any():
        raise ValueError("residents must be finite and 0 or more: fill missing values first")
    dist = np.asarray(district, dtype=object)
    if dist.shape != (n,):
        raise ValueError(f"district needs one value for each of the {n} homes, not {dist.shape}")
    codes, names = pd.factorize(pd.Index(dist), sort=True)
    m = len(names)
    in_district = codes >= 0
    rows: list[pd.DataFrame] = []
    for tier, by_id in _checked_tiers(covered, tiers, n).items():
        col = _complete_col(tier)
        if col not in homes.columns:
            raise ValueError(
                f"homes has no column {col!r}; pass the frame home_life_circles returns"
            )
        state = pd.array(homes[col], dtype="boolean")
        measured = ~np.asarray(state.isna(), dtype=bool) & in_district
        complete = np.asarray(state.fillna(False), dtype=bool) & measured
        incomplete = measured & ~complete
        c = codes[measured]
        total = np.bincount(c, weights=pop[measured], minlength=m)
        done = np.bincount(codes[complete], weights=pop[complete], minlength=m)
        # residents of incomplete homes lacking each standard: districts × standards
        lack = np.column_stack(
            [
                np.bincount(codes[incomplete & ~arr], weights=pop[incomplete & ~arr], minlength=m)
                for arr in by_id.values()
            ]
        )
        worst = lack.argmax(axis=1)
        worst_res = lack[np.arange(m), worst]
        ids = np.array(list(by_id), dtype=object)
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.where(total > 0, 100.0 * done / total, np.nan)
        rows.append(
            pd.DataFrame(
                {
                    "district_id": np.asarray(names, dtype=object),
                    "tier_min": np.full(m, tier, dtype=np.int64),
                    "required": np.full(m, len(by_id), dtype=np.int64),
                    "residents": total,
                    "complete_pct": pct,
                    "most_missing": np.where(worst_res > 0, ids[worst], "").astype(object),
                    "most_missing_residents": np.where(worst_res > 0, worst_res, 0.0),
                }
            )
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _COLUMNS.items()})
    # district by district, each district's tiers in ascending order
    out = pd.concat(rows, ignore_index=True)
    by_district = np.tile(np.arange(m), len(rows))
    return out.iloc[np.argsort(by_district, kind="stable")].reset_index(drop=True)
