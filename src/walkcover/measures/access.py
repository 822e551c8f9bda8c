"""Capacity-aware access: the enhanced two-step floating catchment area (E2SFCA).

A kindergarten 200 m away whose places are all taken serves a home less than its distance says.
E2SFCA (Luo & Qi 2009) weighs each facility's capacity against everyone who can walk to it:

1. each facility's supply-to-demand ratio ``R_j = S_j / Σ_i P_i · W(d_ij)`` over the homes within
   the catchment (``d_ij ≤ threshold``), where ``S_j`` is its capacity (places, beds) and ``P_i``
   the residents of home i;
2. each home's access ``A_i = Σ_j R_j · W(d_ij)`` over the facilities within the catchment,
   reported per 1,000 residents (places per 1,000 residents, comparable with a planning norm).

``W`` is a distance decay within the threshold (`Decay`): Gaussian or stepped. The distances are the
engine's walking distances, as a sparse list of (home, facility) pairs within reach
(`walkcover.engine.choice.facility_pairs`): the same method as PySAL ``access``'s
``enhanced_two_stage_fca`` without its dense cost table.

Capacities come from OSM tags (`facility_capacities`): ``capacity``, ``beds``,
``school:capacity``, read as the first number of the value or refused with the reason, else a
per-standard default, and each facility says which it used.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from walkcover.config.standards import MAX_SIGMA_M, MIN_SIGMA_M
from walkcover.engine.choice import Pairs

#: E2SFCA access is reported per this many residents.
PER_RESIDENTS = 1000.0

#: The OSM tags a capacity is read from, in order of preference.
CAPACITY_KEYS = ("capacity", "beds", "school:capacity")

#: A capacity above this is refused as implausible for one facility (a typo, a phone number).
MAX_CAPACITY = 100_000.0


@dataclass(frozen=True)
class Decay:
    """A distance decay ``W(d)`` within a catchment of `threshold_m`, zero beyond it.

    Parameters
    ----------
    kind
        ``"gaussian"``: ``W(d) = exp(−d² / (2 σ²))`` (PySAL ``access.weights.gaussian(σ)``);
        ``"steps"``: ``W(d)`` is the weight of the first step whose upper bound is at least ``d``
        (PySAL ``access.weights.step_fn``), e.g. Luo & Qi's ``1, 0.68, 0.22`` in three bands.
    threshold_m
        The catchment: the standard's walking distance. For steps, the last step's bound.
    sigma_m
        The Gaussian's width (``kind="gaussian"``).
    steps
        ``(upper bound in metres, weight)`` pairs with increasing bounds (``kind="steps"``).

    Examples
    --------
    >>> steps = Decay(kind="steps", threshold_m=300, steps=((100, 1), (200, 0.68), (300, 0.22)))
    >>> steps.weight(np.array([50.0, 150.0, 300.0, 301.0])).tolist()
    [1.0, 0.68, 0.22, 0.0]
    """

    kind: Literal["gaussian", "steps"]
    threshold_m: float
    sigma_m: float | None = None
    steps: tuple[tuple[float, float], ...] = field(default=())

    def __post_init__(self) -> None:
        thr = float(self.threshold_m)
        if not (math.isfinite(thr) and thr > 0):
            raise ValueError(f"threshold_m must be a positive distance, not {self.threshold_m!r}")
        if self.kind == "gaussian":
            s = self.sigma_m
            if s is None or not (
                math.isfinite(float(s)) and MIN_SIGMA_M <= float(s) <= MAX_SIGMA_M
            ):
                raise ValueError(
                    f"a Gaussian decay needs sigma_m from {MIN_SIGMA_M:g} to {MAX_SIGMA_M:g} m "
                    f"(its width), not {s!r}"
                )
            if self.steps:
                raise ValueError("a Gaussian decay takes sigma_m, not steps")
        elif self.kind == "steps":
            if not self.steps:
                raise ValueError(
                    "a stepped decay needs steps, e.g. ((100, 1.0), (200, 0.68), (300, 0.22))"
                )
            bounds = [float(b) for b, _ in self.steps]
            weights = [float(w) for _, w in self.steps]
            if any(not math.isfinite(b) or b <= 0 for b in bounds) or any(
                b2 <= b1 for b1, b2 in itertools.pairwise(bounds)
            ):
                raise ValueError(f"step bounds must be positive and increasing, not {bounds}")
            if any(not math.isfinite(w) or w < 0 for w in weights):
                raise ValueError(f"step weights must be 0 or more, not {weights}")
            if not math.isclose(bounds[-1], thr, rel_tol=1e-9, abs_tol=1e-6):
                raise ValueError(
                    f"the last step's bound ({bounds[-1]:g} m) must be the threshold "
                    f"({thr:g} m): the catchment ends where the steps do"
                )
            if self.sigma_m is not None:
                raise ValueError("a stepped decay takes steps, not sigma_m")
        else:
            raise ValueError(f"kind must be 'gaussian' or 'steps', not {self.kind!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Decay:
        """A decay from configuration data, e.g. ``{"kind": "gaussian", "threshold_m": 300,
        "sigma_m": 150}`` or ``{"kind": "steps", "steps": [[100, 1.0], [300, 0.5]]}`` (the
        threshold defaults to the last step's bound)."""
        unknown = set(data) - {"kind", "threshold_m", "sigma_m", "steps"}
        if unknown:
            raise ValueError(f"unknown decay settings: {sorted(unknown)}")
        steps = tuple((float(b), float(w)) for b, w in data.get("steps", ()))
        thr = data.get("threshold_m", steps[-1][0] if steps else None)
        if thr is None:
            raise ValueError("a decay needs threshold_m, the catchment in metres")
        sigma = data.get("sigma_m")
        return cls(
            kind=data.get("kind", "gaussian"),
            threshold_m=float(thr),
            sigma_m=None if sigma is None else float(sigma),
            steps=steps,
        )

    def weight(self, dist_m: np.ndarray) -> np.ndarray:
        """``W(d)`` of each distance: zero beyond the threshold and for NaN."""
        d = np.asarray(dist_m, dtype=float)
        inside = d <= self.threshold_m
        if self.kind == "gaussian":
            assert self.sigma_m is not None
            w = np.exp(-d * d / (2.0 * float(self.sigma_m) ** 2))
        else:
            bounds = np.array([b for b, _ in self.steps], dtype=float)
            weights = np.array([w for _, w in self.steps], dtype=float)
            at = np.searchsorted(bounds, np.where(inside, d, 0.0), side="left")
            w = weights[np.minimum(at, len(weights) - 1)]
        out: np.ndarray = np.where(inside, w, 0.0)
        return out


@dataclass(frozen=True)
class E2SFCA:
    """E2SFCA results.

    Attributes
    ----------
    access_per_1000
        Each home's access ``A_i`` × 1,000: capacity (places, beds) per 1,000 residents within
        walking reach. 0 where no facility is within the threshold; NaN for unsnapped homes,
        which were not measured.
    ratio
        Each facility's ``R_j``: capacity per resident of its catchment (decay-weighted). NaN where
        the catchment holds no residents (the facility adds to nobody's access).
    catchment_residents
        Each facility's ``Σ_i P_i · W(d_ij)``.
    """

    access_per_1000: np.ndarray
    ratio: np.ndarray
    catchment_residents: np.ndarray


def e2sfca(
    pairs: Pairs,
    *,
    population: np.ndarray | Sequence[float],
    supply: np.ndarray | Sequence[float],
    decay: Decay,
) -> E2SFCA:
    """The enhanced two-step floating catchment area access of every home.

    Parameters
    ----------
    pairs
        Walking distances of the (home, facility) pairs within reach
        (`walkcover.engine.choice.facility_pairs`), searched at least as far as the threshold.
    population
        Residents of each home (``pairs.n_homes`` values, 0 or more).
    supply
        Capacity of each facility (``pairs.n_facilities`` values, 0 or more; `facility_capacities`).
    decay
        The distance decay and the catchment's threshold.

    Returns
    -------
    E2SFCA
    """
    pop = _values(population, pairs.n_homes, "population", "homes")
    sup = _values(supply, pairs.n_facilities, "supply", "facilities")
    if pairs.limit_m < decay.threshold_m:
        raise ValueError(
            f"the pairs were searched to {pairs.limit_m:g} m, short of the catchment "
            f"({decay.threshold_m:g} m): search with limit_m at least the threshold"
        )
    inside = pairs.dist_m <= decay.threshold_m
    home, fac = pairs.home[inside], pairs.facility[inside]
    w = decay.weight(pairs.dist_m[inside])
    # step 1: each facility's residents within its catchment, weighted by the decay
    demand = np.bincount(fac, weights=pop[home] * w, minlength=pairs.n_facilities)
    ratio = np.full(pairs.n_facilities, np.nan)
    served = demand > 0
    ratio[served] = sup[served] / demand[served]
    # step 2: each home's sum of the ratios within its catchment, weighted by the same decay
    contrib = np.where(served[fac], np.nan_to_num(ratio[fac]) * w, 0.0)
    access = np.bincount(home, weights=contrib, minlength=pairs.n_homes) * PER_RESIDENTS
    access[pairs.unsnapped] = np.nan
    return E2SFCA(access, ratio, demand)


def _values(values: np.ndarray | Sequence[float], n: int, what: str, of: str) -> np.ndarray:
    out = np.asarray(values, dtype=float)
    if out.shape != (n,):
        raise ValueError(f"{what} needs one value for each of the {n} {of}, not shape {out.shape}")
    if not np.isfinite(out).all() or (out < 0).any():
        raise ValueError(f"{what} must be finite and 0 or more: fill missing values first")
    return out


def district_access(
    access_per_1000: np.ndarray | Sequence[float],
    residents: np.ndarray | Sequence[float],
    district: np.ndarray | Sequence[object],
    *,
    norm_per_1000: float,
) -> pd.DataFrame:
    """District figures of E2SFCA access, weighted by residents.

    Parameters
    ----------
    access_per_1000
        Each home's access (`E2SFCA.access_per_1000`); NaN homes (unsnapped) are left out and
        counted in ``residents_unmeasured``.
    residents
        Residents of each home.
    district
        Each home's district id.
    norm_per_1000
        The planning norm (e.g. kindergarten places per 1,000 residents).

    Returns
    -------
    pandas.DataFrame
        One row per district (index ``district``, sorted): ``residents``, ``residents_unmeasured``,
        ``mean_per_1000`` (residents-weighted mean), ``p10_per_1000`` (residents-weighted 10th
        percentile: the lowest access such that at least 10 % of the measured residents have at
        most that much), ``share_below_norm`` (share of the measured residents whose access is
        below the norm). NaN where a district has no measured residents.
    """
    acc = np.asarray(access_per_1000, dtype=float)
    pop = np.asarray(residents, dtype=float)
    dist_id = pd.Index(np.asarray(district, dtype=object))
    if not (len(acc) == len(pop) == len(dist_id)):
        raise ValueError("access, residents and district need one value per home each")
    codes, names = pd.factorize(dist_id, sort=True)
    m = len(names)
    measured = ~np.isnan(acc) & (codes >= 0)
    total = np.bincount(codes[codes >= 0], weights=pop[codes >= 0], minlength=m)
    unmeasured = np.bincount(
        codes[~measured & (codes >= 0)], weights=pop[~measured & (codes >= 0)], minlength=m
    )
    c, a, p = codes[measured], acc[measured], pop[measured]
    weight = np.bincount(c, weights=p, minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(c, weights=a * p, minlength=m) / weight
        below = np.bincount(c, weights=p * (a < norm_per_1000), minlength=m) / weight
    # weighted 10th percentile: homes by district, then access; the first whose running share of
    # its district's residents reaches 10 %
    o = np.lexsort((a, c))
    c, a, p = c[o], a[o], p[o]
    run = pd.Series(p).groupby(c).cumsum().to_numpy()
    whole = np.zeros(m)
    whole[c] = run  # each district's last running sum: its total, summed in the same order
    reach = run >= 0.1 * whole[c]
    first = reach & np.concatenate([[True], (c[1:] != c[:-1]) | (reach[1:] != reach[:-1])])
    p10 = np.full(m, np.nan)
    p10[c[first]] = a[first]
    has = weight > 0
    return pd.DataFrame(
        {
            "residents": total,
            "residents_unmeasured": unmeasured,
            "mean_per_1000": np.where(has, mean, np.nan),
            "p10_per_1000": np.where(has, p10, np.nan),
            "share_below_norm": np.where(has, below, np.nan),
        },
        index=pd.Index(names, name="district"),
    )


class CapacityError(ValueError):
    """A capacity tag whose value is not a usable number; the message says why."""


_NUMBER_RUN = re.compile(r"[\d.,]*\d[\d.,]*")
_PLAIN = re.compile(r"\d+(\.\d+)?")
_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+")
_EXPONENT = re.compile(r"[eE][+-]?\d")


def parse_capacity(value: object) -> float:
    """The capacity an OSM tag value gives: its first number.

    ``"40"``, ``"approx. 40"``, ``"约40人"``, ``"50-60"`` (a range: its first number), ``"50;60"``
    and ``"1,200"`` (thousands) are read; an empty value, no number, ``"12,5"`` (a decimal comma
    or a list: ambiguous), ``"-5"``, ``"0"``, ``"1e9"`` and implausibly large numbers are refused.

    Raises
    ------
    CapacityError
        With the reason the value was refused.
    """
    if value is None or isinstance(value, bool):
        raise CapacityError(f"no number in {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if math.isnan(number):
            raise CapacityError("empty")
        return _checked(number, repr(value))
    text = str(value).strip()
    if not text:
        raise CapacityError("empty")
    found = _NUMBER_RUN.search(text)
    if found is None:
        raise CapacityError(f"no number in {text!r}")
    token = found.group().strip(".,")
    if _EXPONENT.match(text, found.end()):
        raise CapacityError(f"exponent notation in {text!r}")
    if _PLAIN.fullmatch(token):
        number = float(token)
    elif _THOUSANDS.fullmatch(token):
        number = float(token.replace(",", ""))
    else:
        raise CapacityError(f"ambiguous number {token!r} in {text!r} (a decimal comma or a list?)")
    start = found.start() + found.group().index(token[0])
    if start > 0 and text[start - 1] in "-−":
        before = text[: start - 1].rstrip()
        if not before or not before[-1].isdigit():  # "-5", "approx. -5"; not "50-60"
            raise CapacityError(f"negative number in {text!r}")
    return _checked(number, repr(text))


def _checked(number: float, shown: str) -> float:
    if not math.isfinite(number):
        raise CapacityError(f"not a finite number: {shown}")
    if number <= 0:
        raise CapacityError(f"not a positive number: {shown}")
    if number > MAX_CAPACITY:
        raise CapacityError(f"implausibly large ({number:g} > {MAX_CAPACITY:g}): {shown}")
    return number


def facility_capacities(
    tags: Iterable[Mapping[str, object] | None],
    *,
    default: float,
    keys: Sequence[str] = CAPACITY_KEYS,
) -> pd.DataFrame:
    """Each facility's capacity from its OSM tags, else the standard's default.

    Parameters
    ----------
    tags
        Each facility's OSM tags (a mapping, or None).
    default
        The capacity a facility without a usable tag is given (the standard's typical size).
    keys
        The tags read, in order of preference: the first with a usable number decides.

    Returns
    -------
    pandas.DataFrame
        One row per facility: ``capacity``, ``source`` (the tag used, or ``"default"``),
        ``used_default`` (bool) and ``note`` (why tags that were present were refused, "" if none).
    """
    if not (math.isfinite(default) and default >= 0):
        raise ValueError(f"default capacity must be a number 0 or more, not {default!r}")
    capacity, source, note = [], [], []
    for t in tags:
        t = t if isinstance(t, Mapping) else {}
        refused: list[str] = []
        got: tuple[float, str] | None = None
        for key in keys:
            if key not in t:
                continue
            try:
                got = (parse_capacity(t[key]), key)
                break
            except CapacityError as err:
                refused.append(f"{key}: {err}")
        capacity.append(got[0] if got else float(default))
        source.append(got[1] if got else "default")
        note.append("; ".join(refused))
    src = np.array(source, dtype=object)
    return pd.DataFrame(
        {
            "capacity": np.array(capacity, dtype=float),
            "source": src,
            "used_default": src == "default",
            "note": np.array(note, dtype=object),
        }
    )
