"""The results model of one run: `Assessment` (everything measured, immutable once made), its
notes and standard passes, and the rules every layer shares for which facilities can serve a
district and how far a study reaches."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from walkcover.config.crs import to_lonlat
from walkcover.config.standards import Standard, StandardSet
from walkcover.config.study_area import City, working_crs
from walkcover.engine import coverage as cov
from walkcover.engine.network import Network
from walkcover.engine.street_context import (
    context_radii,
    snap_radii,
)
from walkcover.measures.gaps import DistrictLayers
from walkcover.measures.hexagons import HexCoverage
from walkcover.measures.land import DenominatorLand
from walkcover.sources import OSMQuery

#: Columns of ``Assessment.facilities`` (besides geometry): every candidate, whether it counts and
#: why not, whether it reaches a street, how it is reached (along its outline or through how many
#: public entrances; how much of its outline is fenced) and its district.
FACILITY_OUTPUT_COLUMNS = [
    "osm_id",
    "standard",
    "name",
    "matched_by",
    "counts",
    "reason",
    "snapped",
    "entrances",
    "reached_by",
    "enclosed_pct",
    "capacity",
    "capacity_source",
    "in_district",
]


Progress = Callable[[str], None]


@dataclass(frozen=True)
class Note:
    """Something a planner must know about the figures, and the district (slug) and standard it
    concerns (None: every one)."""

    text: str
    district: str | None = None
    standard: str | None = None
    #: What the note warns of, for pages that show only some kinds ("official_land": the official
    #: figure's land holds few residents).
    kind: str = ""

    def __str__(self) -> str:
        return self.text

    def concerns(self, district: str, standard: str) -> bool:
        """Whether the note bears on `district` (slug) × `standard`."""
        return self.district in (None, district) and self.standard in (None, standard)


@dataclass(frozen=True)
class StandardPass:
    """One standard's engine pass, kept for gaps, service areas, maps and siting."""

    counted: gpd.GeoDataFrame  # the facilities that count
    access: gpd.GeoSeries  # where they are reached (index: position in `counted`)
    snaps: cov.Snaps  # `access` snapped onto the network
    node_dist: np.ndarray  # distance from every node to the nearest facility (inf beyond limit_m)
    limit_m: float
    #: Per home (demand row), its nearest counted facility by walking: a position in `counted`,
    #: -1 where none is within `limit_m`. Taken in the measuring pass, so maps and popups need no
    #: shortest path of their own.
    nearest: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Each network edge's radius for the standard where it depends on the street's context
    #: (`context_radii`), made once by the pass; None where the standard has one radius.
    edge_radii: np.ndarray | None = None


@dataclass(frozen=True)
class Assessment:
    """Everything one run measured.

    ``demand`` (projected) has ``osm_id, district_id, residents, …`` and, per standard,
    ``<id>_dist_m``, ``<id>_covered``, ``<id>_status`` (plus ``<id>_context`` where the radius depends
    on the street, and ``<id>_safe_*`` for the safe-route figure). ``facilities`` has every candidate
    with ``counts`` and ``reason``. ``summary`` has one row per district × standard
    (`indicators.SUMMARY_COLUMNS`); ``district_rows`` the per-district counts and densities.
    """

    city: City
    districts: gpd.GeoDataFrame
    standards: list[Standard]
    rules: StandardSet
    crs: pyproj.CRS
    network: Network
    demand: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    summary: pd.DataFrame
    district_rows: pd.DataFrame
    features: gpd.GeoDataFrame
    notes: list[Note] = field(default_factory=list)
    source: str = ""
    #: When the OSM data was current (`walkcover.sources.OSMLayers.data_date`); "" unknown.
    data_date: str = ""
    population_model: str = ""
    passes: dict[str, StandardPass] = field(default_factory=dict)
    context: np.ndarray | None = None  # street context of every network edge, where classified
    lands: DenominatorLand | None = None  # per-district denominator land, its snapped grid cells
    demand_snaps: cov.Snaps | None = None  # every home snapped once, for maps, reports and siting
    #: How complete each district's mapped buildings look (`completeness.COMPLETENESS_COLUMNS`).
    completeness: pd.DataFrame | None = None
    #: ``districts`` in ``crs``, projected once by the thread that measured: pyproj makes its
    #: transformers per thread, and a worker thread's first projection searches PROJ's database
    #: again (about 60 ms for EPSG:4326 to EPSG:4547), which a small district's run feels.
    districts_proj: gpd.GeoDataFrame | None = None
    #: Per district id, its gaps and service areas (`walkcover.measures.gaps.DistrictLayers`),
    #: measured with the run (`assess_layers`), before any output is written.
    district_layers: Mapping[str, DistrictLayers] = field(default_factory=dict)
    #: The residents' coverage aggregated to H3 hexagons (`walkcover.measures.hexagons`), at the
    #: resolution that keeps the study area's hexagons few enough for the city map.
    hexagons: HexCoverage | None = None
    #: GB 50180's life circles per district and tier (`walkcover.measures.life_circles.
    #: district_life_circles`): None when the standards file has no tiers (``life_circle``).
    life_circles: pd.DataFrame | None = None
    #: The OSM node ids (ascending) of every locked gate that cuts a walked path in the study
    #: area (`walkcover.engine.network.locked_gates` on a street of the walk network): the whole
    #: list, which the note of kind `LOCKED_GATES_NOTE` only counts.
    locked_gates: tuple[int, ...] = ()
    #: Per standard id, the OSM ids (``node/…``, ``way/…``, ``relation/…``, in the facilities'
    #: order) of every feature tagged disused or abandoned that the standard left out
    #: (`walkcover.measures.facilities.OUT_OF_SERVICE`): the whole list, which the note of kind
    #: `LEFT_OUT_NOTE` only counts. A standard with none has no entry.
    left_out: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.districts_proj is None:  # made here, once, never later by a reader's thread
            object.__setattr__(self, "districts_proj", self.districts.to_crs(self.crs))

    def thresholds(self, standard: Standard, snaps: cov.Snaps) -> np.ndarray | float:
        """Each snapped item's radius for `standard` (its street's context radius where it has one):
        the edges' radii, made once by the standard's pass, gathered for `snaps`."""
        if self.context is None or not standard.context_thresholds_m:
            return standard.threshold_m
        p = self.passes.get(standard.id)
        radii = p.edge_radii if p is not None else None
        if radii is None:
            radii = context_radii(standard, self.context)
        return snap_radii(standard, radii, snaps)

    def gaps(self, district_id: str, standard_id: str | None = None) -> gpd.GeoDataFrame:
        """One district's gap polygons (`walkcover.measures.gaps.GAP_COLUMNS`), of one standard
        where given, as the run measured them (a copy: the run's own stays as measured).

        Raises
        ------
        KeyError
            `district_id` is not one of the run's districts.
        """
        gaps = self._layers(district_id).gaps
        if standard_id is not None:
            gaps = gaps[gaps["standard"] == standard_id].reset_index(drop=True)
        return gaps.copy()

    def service_areas(self, district_id: str) -> gpd.GeoDataFrame:
        """One district's service areas, a row per standard, as the run measured them (a copy)."""
        return self._layers(district_id).service_areas.copy()

    def _layers(self, district_id: str) -> DistrictLayers:
        try:
            return self.district_layers[district_id]
        except KeyError:
            raise KeyError(
                f"district {district_id!r} was not measured in this run; measured: "
                f"{', '.join(map(str, self.district_layers)) or 'none'}"
            ) from None

    def district_demand(self, district_id: str) -> tuple[gpd.GeoDataFrame, cov.Snaps]:
        """One district's homes (renumbered from 0) and their snaps, reused from the run."""
        mask = (self.demand["district_id"] == district_id).to_numpy()
        homes = self.demand[mask].reset_index(drop=True)
        if self.demand_snaps is None:  # an assessment built by hand
            net_cfg = self.city.config.network
            return homes, cov.snap(
                self.network, homes.geometry, max_snap_m=net_cfg.max_snap_m, tie_m=net_cfg.tie_m
            )
        return homes, self.demand_snaps.take(np.flatnonzero(mask))

    def district_nearest(self, standard_id: str, district_id: str) -> np.ndarray:
        """Each of one district's homes' (in `district_demand` order) nearest counted facility of
        a standard: a position in its pass's ``counted``, -1 where none is within the limit.

        Taken by the measuring pass; an assessment built by hand (without it) takes it here.
        """
        p = self.passes[standard_id]
        mask = (self.demand["district_id"] == district_id).to_numpy()
        if len(p.nearest) == len(self.demand):
            return p.nearest[mask]
        _, snaps = self.district_demand(district_id)
        rows = cov.nearest_sources(self.network, snaps, p.snaps, limit_m=p.limit_m)
        out = np.full(len(rows), -1, dtype=np.int64)
        found = rows >= 0
        out[found] = p.access.index.to_numpy()[p.snaps.item[rows[found]]]
        return out

    def facilities_serving(self, district: shapely.Geometry) -> np.ndarray:
        """Which of ``facilities`` can serve a district (`can_serve`, each at its standard's
        search limit): the one decision the summary, the layers, maps and reports share."""
        f = self.facilities
        limit = {s.id: search_limit_m(s, self.city) for s in self.standards}
        return can_serve(f.geometry, district, f["standard"].map(limit).to_numpy(float))

    def residents_column(self, standard_id: str) -> str:
        """The demand column a standard's residents figures count: its population group's where
        the city has a raster for it, else ``residents``."""
        group = self.standard(standard_id).population_group
        return (
            f"residents_{group}" if group and f"residents_{group}" in self.demand else "residents"
        )

    def district_geometry(self, district_id: str) -> shapely.Geometry:
        """One district's boundary in ``crs``.

        Raises
        ------
        KeyError
            `district_id` is not one of the run's districts.
        """
        proj = self.districts_proj
        assert proj is not None  # set by __post_init__
        return proj.set_index("district_id").geometry[district_id]

    def district_notes(self, slug: str, *, kind: str | None = None) -> list[Note]:
        """The notes that bear on district `slug` (its own and the city's), of `kind` if given."""
        return [
            n for n in self.notes if n.district in (None, slug) and (kind is None or n.kind == kind)
        ]

    def standard(self, standard_id: str) -> Standard:
        for s in self.standards:
            if s.id == standard_id:
                return s
        import difflib

        from walkcover._errors import StandardNotMeasuredError

        ids = [s.id for s in self.standards]
        close = difflib.get_close_matches(str(standard_id), ids, n=1)
        hint = f" (closest: {close[0]!r})" if close else ""
        raise StandardNotMeasuredError(
            f"standard {standard_id!r} was not measured in this run{hint}; it measured: "
            f"{', '.join(ids)} (measure it with standard=… / --standard)"
        )


def search_limit_m(standard: Standard, city: City) -> float:
    """How far the search for `standard`'s facilities runs: its largest radius × the search factor."""
    return standard.max_threshold_m * city.config.network.search_factor


def study_margin_m(city: City, standards: list[Standard]) -> float:
    """How far around the districts to read: the largest search limit plus the snap distance, so a
    facility across the border that can serve a home is read, and so is the street it snaps to."""
    return max(search_limit_m(s, city) for s in standards) + city.config.network.max_snap_m


def can_serve(
    facilities: gpd.GeoSeries, district: shapely.Geometry, limit_m: float | np.ndarray
) -> np.ndarray:
    """Which facilities can serve a district: inside it or within the search limit of its edge.

    The one rule for "facilities near the district" (the summary's ``facilities_in_reach``, the
    ``facilities`` layer, the maps and the reports).
    """
    geoms = np.asarray(
        facilities.to_numpy() if hasattr(facilities, "to_numpy") else facilities, dtype=object
    )
    if not len(geoms):
        return np.zeros(0, dtype=bool)
    # the district prepared once (on a copy): "within the limit" is answered by its prepared
    # index, not by a full distance computation against its every vertex for each facility
    area = shapely.from_wkb(shapely.to_wkb(district))
    shapely.prepare(area)
    return np.asarray(shapely.dwithin(area, geoms, limit_m), dtype=bool)


def study_polygon(districts: gpd.GeoDataFrame, *, crs: pyproj.CRS, margin_m: float):
    """The districts' union grown by `margin_m`, in EPSG:4326: facilities across a border count."""
    grown = districts.to_crs(crs).union_all().buffer(margin_m)
    return to_lonlat(grown, crs)


def study_query(
    city: City, districts: gpd.GeoDataFrame, rules: StandardSet, standards: list[Standard]
) -> OSMQuery:
    """What to read for `districts`: their area grown by the search limit, the walk classes, the tags."""
    return OSMQuery(
        polygon=study_polygon(
            districts, crs=working_crs(city), margin_m=study_margin_m(city, standards)
        ),
        walk_highways=tuple(city.config.network.walk_highways),
        feature_tags=rules.feature_tags(standards),
    )


#: Below this share of residents on the official figure's land, the summary warns that the
#: official figure speaks for few of them.
OFFICIAL_LAND_WARN_PCT = 50.0


OFFICIAL_LAND_NOTE = "official_land"


#: Notes on where the residents come from (buildings too incomplete to carry them).
DEMAND_NOTE = "demand"


#: The note counting the locked gates that cut walked paths (`Assessment.locked_gates` lists
#: them all).
LOCKED_GATES_NOTE = "locked_gates"
#: Where that note sends its reader for the gates' ids (its last words).
LOCKED_GATES_LISTED = " (every gate's OSM node id: locked_gates in run.json)"


#: The note counting a standard's features tagged disused or abandoned, left out
#: (`Assessment.left_out` lists them all).
LEFT_OUT_NOTE = "left_out"
#: Where that note sends its reader for the features' ids (its last words).
LEFT_OUT_LISTED = " (every feature's OSM id: left_out in run.json)"


def left_out_note(standard_id: str, count: int) -> Note:
    """The note counting `count` features of `standard_id` tagged disused or abandoned and left
    out: short, whatever the count (the ids are in `Assessment.left_out`, run.json and the
    report's appendix)."""
    return Note(
        f"{standard_id}: {count} feature(s) tagged disused or abandoned left out" + LEFT_OUT_LISTED,
        standard=standard_id,
        kind=LEFT_OUT_NOTE,
    )


def locked_gates_note(count: int) -> Note:
    """The note counting `count` locked gates that cut walked paths: short, whatever the count
    (the ids are in `Assessment.locked_gates`, run.json and the report's appendix)."""
    return Note(
        f"{count} locked gate(s) (access=no|private or locked=yes) cut the paths through them"
        + LOCKED_GATES_LISTED,
        kind=LOCKED_GATES_NOTE,
    )
