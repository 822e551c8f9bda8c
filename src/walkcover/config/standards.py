"""Coverage standards: what facility, within what walking distance, by which plan section.

A standards file (``configs/standards/*.yaml``) is validated on load; every problem is reported at
once with its YAML path, the value found and what is allowed.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from walkcover import _paths
from walkcover._config import read_yaml_file, validate
from walkcover._errors import ConfigError
from walkcover.config.study_area import MAIN_ROAD_HIGHWAYS
from walkcover.config.tags import tag_column

TagValue = str | list[str] | bool
Selector = dict[str, TagValue]

#: Standard ids the plan defines; a planner's own file may add others.
PLAN_STANDARD_IDS = (
    "toilet",
    "kindergarten",
    "primary_school",
    "middle_school",
    "green_space",
    "park",
    "bus_stop",
    "fitness",
    "clinic",
)


class Citation(BaseModel):
    """Where a standard comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    section: str = Field(min_length=1)
    text: str = ""
    national: str = ""


class PlanTarget(BaseModel):
    """How many new facilities the plan orders, to compare with what the standard would take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: Annotated[int, Field(ge=0)]
    scope: str
    section: str = ""


#: The widths a Gaussian decay may take: narrower than a metre weighs every facility at nothing,
#: wider than 10 km weighs every facility in reach the same (use steps of weight 1 then).
MIN_SIGMA_M = 1.0
MAX_SIGMA_M = 10_000.0
#: No planning norm asks for more than this per 1,000 residents (places, beds, m²).
MAX_NORM_PER_1000 = 100_000.0


class DecayRule(BaseModel):
    """How access falls with walking distance inside a standard's catchment (E2SFCA).

    ``kind: gaussian`` takes ``sigma_m`` (``W(d) = exp(-d² / 2σ²)``); ``kind: steps`` takes
    ``steps``, ``[upper bound m, weight]`` pairs with increasing bounds, the last one the
    standard's ``threshold_m`` (checked on the standard, which knows it).
    `walkcover.measures.access.Decay` computes the weights; `as_mapping` hands it this rule.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["gaussian", "steps"]
    sigma_m: float | None = None
    steps: list[tuple[float, float]] = []

    @model_validator(mode="after")
    def _check_shape(self) -> DecayRule:
        if self.kind == "gaussian":
            s = self.sigma_m
            if s is None or not (math.isfinite(s) and MIN_SIGMA_M <= s <= MAX_SIGMA_M):
                raise ValueError(
                    f"decay.sigma_m: found {s!r}; a gaussian decay needs sigma_m from "
                    f"{MIN_SIGMA_M:g} to {MAX_SIGMA_M:g}, its width in metres, e.g. sigma_m: 150 "
                    "(or use kind: steps)"
                )
            if self.steps:
                raise ValueError(
                    f"decay.steps: found {self.steps!r}; a gaussian decay takes sigma_m, not "
                    "steps: remove steps (or use kind: steps without sigma_m)"
                )
            return self
        if not self.steps:
            raise ValueError(
                "decay.steps: found []; a stepped decay needs [upper bound m, weight] pairs, "
                "e.g. steps: [[100, 1.0], [200, 0.68], [300, 0.22]]"
            )
        if self.sigma_m is not None:
            raise ValueError(
                f"decay.sigma_m: found {self.sigma_m!r}; a stepped decay takes steps, not "
                "sigma_m: remove sigma_m"
            )
        bounds = [b for b, _ in self.steps]
        weights = [w for _, w in self.steps]
        if any(not (math.isfinite(b) and b > 0) for b in bounds) or any(
            b2 <= b1 for b1, b2 in itertools.pairwise(bounds)
        ):
            raise ValueError(
                f"decay.steps: bounds {[f'{b:g}' for b in bounds]} must be positive metres in "
                "increasing order; sort the steps and drop repeated or non-positive bounds"
            )
        if any(not (math.isfinite(w) and 0 <= w <= 1) for w in weights) or max(weights) == 0:
            raise ValueError(
                f"decay.steps: weights {[f'{w:g}' for w in weights]} must be from 0 to 1, not all "
                "0; a step weighs a facility at that distance (1.0 = fully, 0 = not at all)"
            )
        if any(w2 > w1 for w1, w2 in itertools.pairwise(weights)):
            raise ValueError(
                f"decay.steps: weights {[f'{w:g}' for w in weights]} rise with distance; a "
                "farther facility never weighs more than a nearer one: make them decrease"
            )
        return self

    def as_mapping(self, threshold_m: float) -> dict[str, Any]:
        """The settings `walkcover.measures.access.Decay.from_mapping` takes, for a catchment of
        `threshold_m` (the standard's ``threshold_m``)."""
        out: dict[str, Any] = {"kind": self.kind, "threshold_m": float(threshold_m)}
        if self.kind == "gaussian":
            out["sigma_m"] = self.sigma_m
        else:
            out["steps"] = [[float(b), float(w)] for b, w in self.steps]
            out["steps"][-1][0] = float(threshold_m)  # equal to it within rounding (checked)
        return out


class AccessRule(BaseModel):
    """Capacity-aware access (E2SFCA) for a standard: what a facility offers and the norm.

    A facility's capacity is read from its OSM tags (``capacity``, ``beds`` …); one without a
    usable tag gets `default_capacity`, whose source `capacity_basis` cites. `norm_per_1000` is
    the planning norm the access figures are compared with: capacity per 1,000 residents of the
    standard's population group (all residents when it names none).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    decay: DecayRule
    #: The capacity of a facility with no usable capacity tag (a typical facility's size).
    default_capacity: Annotated[float, Field(gt=0, le=100_000, strict=True)]
    #: What capacity counts, e.g. "places", "beds".
    capacity_unit: str = Field(min_length=1)
    capacity_unit_zh: str = ""
    #: Where `default_capacity` comes from (a citation).
    capacity_basis: str = Field(min_length=1)
    #: The per-capita planning norm: capacity per 1,000 residents of the standard's group.
    norm_per_1000: (
        Annotated[float, Field(gt=0, le=MAX_NORM_PER_1000, allow_inf_nan=False)] | None
    ) = None
    #: Where `norm_per_1000` comes from; required with it.
    norm_basis: str = ""

    @model_validator(mode="after")
    def _check_bases(self) -> AccessRule:
        what = {
            "capacity_unit": "what capacity counts, e.g. places or beds",
            "capacity_basis": "where default_capacity comes from (document, clause)",
        }
        for name, fix in what.items():
            if not getattr(self, name).strip():
                raise ValueError(f"{name}: found {getattr(self, name)!r}; write {fix}")
        if self.norm_per_1000 is not None and not self.norm_basis.strip():
            raise ValueError(
                f"norm_basis: found {self.norm_basis!r} with norm_per_1000 {self.norm_per_1000:g}; "
                "cite where the norm comes from (document, clause), or remove norm_per_1000"
            )
        return self


class Standard(BaseModel):
    """One walking-distance coverage standard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The key it is listed under: it names files (``maps/<id>.png``) and columns (``<id>_dist_m``),
    #: so plain lower-case letters, digits and ``_`` only.
    id: str = Field(default="", pattern=r"^([a-z][a-z0-9_]{0,39})?$")
    name: str = Field(min_length=1)
    name_zh: str = ""
    threshold_m: Annotated[float, Field(gt=0, le=10_000)]
    context_thresholds_m: dict[str, Annotated[float, Field(gt=0, le=10_000)]] = {}
    default_context: str | None = None
    selectors: list[Selector] = Field(min_length=1)
    target_pct: Annotated[float, Field(ge=0, le=100)]
    target_basis: str = ""
    citation: Citation
    #: Facilities smaller than this (polygon area) do not count; points of unknown size do not count.
    min_area_m2: Annotated[float, Field(gt=0)] | None = None
    #: Features matching any of these are left out (e.g. access=private).
    exclude: list[Selector] = []
    #: Reach polygon facilities through their mapped entrances where they have any.
    use_entrances: bool = False
    #: Schools: keep only those classified at this level (a nine-year school serves both).
    school_level: Literal["primary", "middle"] | None = None
    #: Also measure the safe-route figure (no crossing of barrier roads or railways but at crossings).
    safe_route: bool = False
    #: The land an area-based (official) figure divides by.
    denominator: Literal["residential_land", "built_up"] = "residential_land"
    #: New facilities the plan orders (for comparison with what reaching the standard would take).
    plan_new: PlanTarget | None = None
    #: The threshold as a walking time (a "15-minute circle"); threshold_m is then
    #: threshold_min × 60 × walk_speed_mps (give one of the two).
    threshold_min: Annotated[float, Field(gt=0, le=120)] | None = None
    #: Walking speed for threshold_min: 1.2 m/s for adults, 0.9 m/s for the elderly or children.
    walk_speed_mps: Annotated[float, Field(gt=0, le=3)] = 1.2
    #: The population group the residents figures count (e.g. "school_age" for schools), where the
    #: city config gives a raster for it (`population.groups`); otherwise all residents, and a note.
    population_group: str | None = None
    #: A further group whose coverage is reported beside (e.g. "over_65" for toilets and clinics).
    report_group: str | None = None
    #: The GB 50180-2018 life-circle tier (minutes) whose required facilities include this one;
    #: threshold_m is then the facility's service distance in that tier.
    life_circle: Literal[5, 10, 15] | None = None
    #: Also measure each home's 2nd and 3rd nearest facility and how many lie within threshold_m.
    choice: bool = False
    #: Capacity-aware access (E2SFCA) for this standard.
    access: AccessRule | None = None

    @model_validator(mode="before")
    @classmethod
    def _minutes_to_metres(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("threshold_min") is not None:
            if data.get("threshold_m") is not None:
                raise ValueError(
                    "give threshold_m or threshold_min (with walk_speed_mps), not both"
                )
            try:
                speed = float(data.get("walk_speed_mps", 1.2))
                data = {**data, "threshold_m": float(data["threshold_min"]) * 60.0 * speed}
            except (TypeError, ValueError):
                pass  # the field validators say what is wrong with the numbers
        return data

    @field_validator("selectors")
    @classmethod
    def _check_selectors(cls, selectors: list[Selector]) -> list[Selector]:
        for i, sel in enumerate(selectors):
            if not sel:
                raise ValueError(
                    f"selector {i} is empty; give at least one OSM tag, e.g. amenity: toilets"
                )
            for key, value in sel.items():
                if value is False:
                    raise ValueError(
                        f"selector {i} tag {key!r}: false is not allowed; omit the tag"
                    )
                values = value if isinstance(value, list) else [value]
                if isinstance(value, list) and not value:
                    raise ValueError(
                        f"selector {i} tag {key!r}: empty list; list at least one value"
                    )
                for v in values:
                    if isinstance(v, str) and v.startswith("~"):
                        try:
                            re.compile(v[1:])
                        except re.error as exc:
                            raise ValueError(
                                f"selector {i} tag {key!r}: bad regular expression {v!r} ({exc})"
                            ) from None
        return selectors

    @model_validator(mode="after")
    def _check_context(self) -> Standard:
        if self.context_thresholds_m:
            if self.default_context is None:
                raise ValueError(
                    "context_thresholds_m is set but default_context is not; name the context that "
                    f"applies until street contexts are classified, one of {sorted(self.context_thresholds_m)}"
                )
            if self.default_context not in self.context_thresholds_m:
                raise ValueError(
                    f"default_context {self.default_context!r} is not one of "
                    f"{sorted(self.context_thresholds_m)}"
                )
            if self.context_thresholds_m[self.default_context] != self.threshold_m:
                raise ValueError(
                    f"threshold_m ({self.threshold_m:g}) must equal the default context's radius "
                    f"({self.context_thresholds_m[self.default_context]:g})"
                )
        elif self.default_context is not None:
            raise ValueError("default_context is set but context_thresholds_m is empty")
        return self

    @field_validator("access")
    @classmethod
    def _check_access(cls, access: AccessRule | None, info: ValidationInfo) -> AccessRule | None:
        # threshold_m is validated before access (field order); absent when it was refused
        threshold = info.data.get("threshold_m")
        if access is not None and access.decay.kind == "steps" and threshold is not None:
            last = access.decay.steps[-1][0]
            # a threshold given in minutes is a product of floats (7 × 60 × 1.1 = 462.00000000000006)
            if not math.isclose(last, threshold, rel_tol=1e-9, abs_tol=1e-6):
                raise ValueError(
                    f"access.decay.steps: the last step's bound is {last:g} m but threshold_m is "
                    f"{threshold:g} m; the catchment ends where the steps do: make the last "
                    f"bound {threshold:g}"
                )
        return access

    @property
    def context_applied(self) -> str:
        """How the threshold was applied, for outputs: one radius, or one per street context."""
        if self.default_context is None:
            return "all"
        radii = ", ".join(f"{k} {v:g} m" for k, v in self.context_thresholds_m.items())
        return f"by street context ({radii}; other streets {self.default_context})"

    @property
    def max_threshold_m(self) -> float:
        """The largest radius any context of this standard uses."""
        return max([self.threshold_m, *self.context_thresholds_m.values()])


class StreetContexts(BaseModel):
    """How street edges are classified for standards whose radius depends on where a person is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    main_street_highways: list[str] = list(MAIN_ROAD_HIGHWAYS)
    #: footway=sidewalk/crossing ways within this distance of a main street are its pedestrian sides.
    sidewalk_within_m: Annotated[float, Field(ge=0)] = 20.0
    parks: list[Selector] = [{"leisure": "park"}]
    water: list[Selector] = [
        {"natural": "water"},
        {"waterway": ["river", "canal", "riverbank"]},
        {"water": ["river", "canal", "lake", "reservoir", "pond"]},
    ]
    #: A park is riverside when water lies within this distance of it.
    water_within_m: Annotated[float, Field(ge=0)] = 50.0


class LandRules(BaseModel):
    """Which OSM polygons make up each kind of land the indicators divide by or count."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    residential_land: list[Selector] = [{"landuse": "residential"}]
    built_up: list[Selector] = [
        {"landuse": ["residential", "commercial", "retail", "industrial", "construction"]},
        {"amenity": ["school", "university", "college", "hospital", "kindergarten"]},
    ]
    green: list[Selector] = [
        {"leisure": ["park", "garden", "nature_reserve", "playground"]},
        {
            "landuse": [
                "grass",
                "forest",
                "recreation_ground",
                "village_green",
                "meadow",
                "flowerbed",
            ]
        },
        {"natural": ["wood", "scrub", "grassland", "heath"]},
    ]
    park_green: list[Selector] = [{"leisure": "park"}]
    #: Cell size of the grid on which land within *walking* distance is measured.
    cell_m: Annotated[float, Field(gt=0, le=100)] = 10.0


class SafeRoute(BaseModel):
    """What a pupil's walk may not cross except at a mapped crossing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    barrier_highways: list[str] = [
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
    ]
    barrier_railways: list[str] = ["rail", "light_rail", "narrow_gauge"]
    crossing_nodes: list[Selector] = [
        {"highway": ["crossing", "traffic_signals"]},
        {"railway": ["crossing", "level_crossing"]},
        {"crossing": True},
    ]


class CountRule(BaseModel):
    """A per-district count or density rule of the plan (docs/standards.md, second table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    selectors: list[Selector] = Field(min_length=1)
    measure: Literal["count", "per_km2"] = "count"
    target: float | None = None
    section: str = ""


class IndicatorTarget(BaseModel):
    """A per-district indicator's target and the plan section that sets it (None: no target)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: float | None = None
    section: str = ""


class LandIndicators(BaseModel):
    """Targets of the land-based per-district indicators (``district_indicators.csv``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Park green space per resident, m² (三、(六): 人均公园绿地面积).
    park_per_capita_m2: IndicatorTarget = IndicatorTarget()
    #: OSM-mapped green land as a share of built-up land, % (a proxy for 绿化覆盖率).
    green_share_pct: IndicatorTarget = IndicatorTarget()


#: ``barrier`` values of a way through a fence or wall (gates the walk network may pass or not).
GATE_BARRIERS = ("gate", "entrance", "kissing_gate", "turnstile", "swing_gate")
#: ``barrier`` values that close an outline to walkers (a fenced park is entered at its gates).
ENCLOSING_BARRIERS = ("fence", "wall", "hedge", "city_wall")


@dataclass(frozen=True)
class StandardsFile:
    """Which file a `StandardSet` was read from: what a run's figures rest on, recorded with them
    (``run.json``'s ``standards_file``)."""

    #: The file's name, never its folder (a record travels to other machines).
    name: str
    #: The SHA-256 (hex) of its bytes, as read: two runs with the same digest read the same file.
    sha256: str
    #: Whether it is one of walkcover's own (``configs/standards``), named by ``--standards NAME``.
    bundled: bool


class StandardSet(BaseModel):
    """A plan's standards, keyed by id, and the rules the indicators need.

    `file` says which file they were read from (`load_standards`); None for a set built in
    memory. It is no field: a YAML file cannot set it, and it is no part of the rules' dump.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    _file: StandardsFile | None = PrivateAttr(default=None)

    id: str = Field(min_length=1)
    title: str = ""
    document: str = ""
    issued: str = ""
    #: The city whose plan this is (its config id): the plan's own figures (``plan_new``: how many
    #: new facilities it orders) are shown only for that city.
    city: str | None = None
    standards: dict[str, Standard] = Field(min_length=1)
    street_contexts: StreetContexts = StreetContexts()
    land: LandRules = LandRules()
    safe_route: SafeRoute = SafeRoute()
    counts: list[CountRule] = []
    land_indicators: LandIndicators = LandIndicators()

    def feature_tags(self, standards: list[Standard]) -> dict[str, bool | list[str]]:
        """Every OSM tag the run needs: facilities of `standards`, land, water, crossings, counts."""
        sels: list[Selector] = [s for std in standards for s in std.selectors]
        sels += [*self.street_contexts.parks, *self.street_contexts.water]
        land = self.land
        sels += [*land.residential_land, *land.built_up, *land.green, *land.park_green]
        sels += list(self.safe_route.crossing_nodes)
        sels.append({"railway": list(self.safe_route.barrier_railways)})
        sels += [{"entrance": True}, {"barrier": list(GATE_BARRIERS)}]
        if any(s.use_entrances for s in standards):
            sels.append({"barrier": list(ENCLOSING_BARRIERS)})
        sels += [s for c in self.counts for s in c.selectors]
        return query_tags(sels)

    @field_validator("standards", mode="before")
    @classmethod
    def _inject_ids(cls, value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, std in value.items():
                if not isinstance(key, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", key):
                    raise ValueError(
                        f"standard id {key!r} must be lower-case letters, digits and '_', "
                        "starting with a letter"
                    )
                out[key] = {**std, "id": key} if isinstance(std, dict) else std
            return out
        return value

    @property
    def file(self) -> StandardsFile | None:
        """The file these standards were read from (None: built in memory)."""
        return self._file

    def life_circle_tiers(self) -> dict[int, list[str]]:
        """The GB 50180-2018 life-circle tiers: tier (minutes, ascending) → the ids of its
        standards, in file order; empty when no standard names a tier."""
        tiers: dict[int, list[str]] = {}
        for sid, std in self.standards.items():
            if std.life_circle is not None:
                tiers.setdefault(int(std.life_circle), []).append(sid)
        return dict(sorted(tiers.items()))

    def select(self, ids: str | list[str]) -> list[Standard]:
        """The standards named by `ids` ('all' or ids); unknown ids raise with the valid ones."""
        if ids == "all" or ids == ["all"]:
            return list(self.standards.values())
        wanted = [ids] if isinstance(ids, str) else list(ids)
        unknown = [w for w in wanted if w not in self.standards]
        if unknown:
            import difflib

            close = [
                hit[0]
                for w in unknown
                if (hit := difflib.get_close_matches(str(w), list(self.standards), n=1))
            ]
            hint = "".join(f" (closest: {c!r})" for c in close[:1])
            raise ConfigError(
                f"unknown standard {', '.join(map(repr, unknown))}{hint}; "
                f"choose from: all, {', '.join(self.standards)}"
            )
        return [self.standards[w] for w in wanted]


def load_standards(path: str | Path | None = None) -> StandardSet:
    """Load and validate a standards file.

    Parameters
    ----------
    path
        A YAML file, or the name of a bundled file (``zhengzhou-2018``, ``gb50180-2018``); None
        loads the default (``zhengzhou-2018``).

    Returns
    -------
    StandardSet
        The validated standards, with the file's name and the SHA-256 of its bytes
        (`StandardSet.file`).

    Raises
    ------
    ConfigError
        Listing every problem, each with its YAML path, the value found and what is allowed.
    """
    resolved = _paths.config_file("standards", path or "zhengzhou-2018")
    data, sha256 = read_yaml_file(resolved, what="standards")
    rules = validate(StandardSet, data, path=resolved, what="standards")
    bundled = (
        resolved.resolve().parent == (_paths.bundle_root() / "configs" / "standards").resolve()
    )
    rules._file = StandardsFile(name=resolved.name, sha256=sha256, bundled=bundled)
    return rules


def tag_matches(tags: dict[str, Any], selector: Selector) -> bool:
    """Whether an OSM feature's tags match every tag of `selector`."""
    for key, want in selector.items():
        have = tags.get(key)
        if have is None or (isinstance(have, float) and have != have):
            return False
        have = str(have)
        wants = want if isinstance(want, list) else [want]
        if not any(_value_matches(have, w) for w in wants):
            return False
    return True


def _value_matches(have: str, want: str | bool) -> bool:
    if want is True:
        return True
    if isinstance(want, str) and want.startswith("~"):
        return re.search(want[1:], have, flags=re.IGNORECASE) is not None
    return have == str(want)


def selector_keys(standards: list[Standard]) -> dict[str, bool | list[str]]:
    """The OSM tag query (osmnx ``tags`` form) that fetches every feature any selector may match."""
    return query_tags([sel for std in standards for sel in std.selectors])


def query_tags(selectors: list[Selector]) -> dict[str, bool | list[str]]:
    """The OSM tag query (osmnx ``tags`` form) that fetches every feature the selectors may match."""
    out: dict[str, bool | list[str]] = {}
    for sel in selectors:
        key, want = _query_tag(sel)
        if want is True or out.get(key) is True:
            out[key] = True
        else:
            out[key] = sorted({*out.get(key, []), *want})  # type: ignore[misc]
    return out


def matches_any(tags: dict[str, Any], selectors: list[Selector]) -> bool:
    """Whether `tags` match at least one of `selectors`."""
    return any(tag_matches(tags, s) for s in selectors)


def _query_tag(selector: Selector) -> tuple[str, bool | list[str]]:
    """The most selective single tag of a selector that a server-side query can use."""
    for key, want in selector.items():
        values = want if isinstance(want, list) else [want]
        if all(isinstance(v, str) and not v.startswith("~") for v in values):
            return key, [str(v) for v in values]
    return next(iter(selector)), True


def features_matching(features: gpd.GeoDataFrame, selectors: list[Selector]) -> gpd.GeoDataFrame:
    """The features whose tags match any of `selectors` (the rule of `tag_matches`)."""
    mask = np.zeros(len(features), dtype=bool)
    for sel in selector_masks(features, selectors):
        mask |= sel
    return features[mask]


def selector_masks(features: pd.DataFrame, selectors: list[Selector]) -> list[np.ndarray]:
    """Per selector, which features' tags match it (the rule of `tag_matches`).

    Column by column: each tag key a selector names is read out of the ``tags`` text once per
    frame (`walkcover.config.tags.tag_column`, kept for the frame's other rules), and its values
    compared as arrays, instead of matching every feature against every selector in Python.
    """
    n = len(features)
    if not n:  # nothing to match (a county with no data: no pandas passes for nothing)
        return [np.zeros(0, dtype=bool) for _ in selectors]
    masks = []
    for selector in selectors:
        sel = np.ones(n, dtype=bool)
        for key, want in selector.items():
            have = tag_column(features, key)
            present = have.notna().to_numpy()
            hit = np.zeros(n, dtype=bool)
            for w in want if isinstance(want, list) else [want]:
                if w is True:
                    hit |= present
                elif isinstance(w, str) and w.startswith("~"):
                    found = have.str.contains(w[1:], case=False, regex=True, na=False)
                    hit |= found.to_numpy(dtype=bool)
                else:
                    hit |= (have == str(w)).to_numpy(dtype=bool)
            sel &= hit & present
        masks.append(sel)
    return masks
