"""Measure a city's standards per district: sources → network → facilities, demand → coverage →
indicators. One run gives every figure the outputs, maps and reports need."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from walkcover.config.crs import to_lonlat
from walkcover.config.standards import Standard, StandardSet, features_matching
from walkcover.config.study_area import City, working_crs
from walkcover.engine import coverage as cov
from walkcover.engine.barriers import barrier_lines, remap_snaps, safe_network
from walkcover.engine.network import Network, build_network, locked_gates, walkable_streets
from walkcover.engine.street_context import (
    classify_edges,
    context_radii,
    snap_radii,
    unit_context,
    unit_thresholds,
)
from walkcover.measures.bands import distance_band
from walkcover.measures.completeness import building_completeness
from walkcover.measures.demand import (
    MODEL_FLOOR_AREA,
    MODEL_RESIDENTIAL_LAND,
    assign_districts,
    demand_from_buildings,
    demand_from_land,
    residential_buildings,
    residential_land,
)
from walkcover.measures.entrances import CLOSED_REASON, Access, facility_access
from walkcover.measures.facilities import OUT_OF_SERVICE, select_facilities
from walkcover.measures.facility_files import imported_facilities, merge_sources
from walkcover.measures.gaps import DistrictLayers, measure_district_layers
from walkcover.measures.indicators import (
    CONTEXTS,
    SUMMARY_COLUMNS,
    DistrictFacts,
    FacilityCounts,
    LandCover,
    ResidentGroups,
    StreetCover,
    district_indicators,
    district_summary,
)
from walkcover.measures.land import DenominatorLand, land_union
from walkcover.measures.population import (
    allocate_groups,
    allocate_raster,
    read_totals,
    scale_to_totals,
)
from walkcover.sources import OSMLayers, OSMQuery

log = logging.getLogger(__name__)

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
        raise KeyError(f"standard {standard_id!r} was not measured in this run")


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


@dataclass
class _Study:
    """What every step of one assessment shares: the inputs in the working CRS, the network, the
    residents and their snaps, the street contexts, the land, the notes so far."""

    city: City
    districts: gpd.GeoDataFrame
    d_proj: gpd.GeoDataFrame
    rules: StandardSet
    crs: pyproj.CRS
    query: OSMQuery
    limits: dict[str, float]
    features: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    network: Network
    demand: gpd.GeoDataFrame
    models: dict[str, str]
    population_model: str
    demand_snaps: cov.Snaps
    edge_tags: pd.DataFrame
    context: np.ndarray | None
    lands: DenominatorLand
    notes: list[Note]
    completeness: pd.DataFrame
    #: The area read (`query`'s polygon) in `crs`, projected here and not by the measuring
    #: thread that first needs it: a thread's first projection searches PROJ's database again.
    extent: shapely.Geometry
    safe: SafeRoute | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class _Measured:
    """One standard measured: its facilities (all candidates), its pass, its land figures, the
    demand columns it adds and its notes (both taken in standard order by `assess_layers`)."""

    facilities: gpd.GeoDataFrame
    passed: StandardPass
    edge_cover: np.ndarray | None
    areas: dict[str, dict[str, float]]
    columns: dict[str, np.ndarray]
    notes: list[Note]


#: Standards measured at a time. Their passes share only read-only inputs (the network, the
#: homes' snaps, the land cells, each computed once under a lock), and their heavy steps (KD-tree
#: and R-tree queries, shapely, the shortest paths) release the GIL, so two cores share the work;
#: the columns and notes are added in standard order, so the results do not depend on it.
MEASURE_THREADS = min(2, os.cpu_count() or 1)

#: Network edges from which a run measures on `MEASURE_THREADS` threads. Below, one thread is the
#: faster: the passes are short and mostly Python, and two threads take turns on the interpreter
#: lock (the Helsinki sample, 6,300 edges: 1.08 -> 1.03 s; a county with no data: 20 ms less),
#: where the S city's 金水 (25,200 edges) gains from two (0.91 -> 0.80 s).
THREADS_FROM_EDGES = 10_000


def _threads(network: Network) -> int:
    """How many threads measure on `network` (see `THREADS_FROM_EDGES`)."""
    return MEASURE_THREADS if len(network.edges) >= THREADS_FROM_EDGES else 1


def assess_layers(
    city: City,
    districts: gpd.GeoDataFrame,
    rules: StandardSet,
    standards: list[Standard],
    layers: OSMLayers,
    *,
    population_raster: str | Path | None = None,
    progress: Progress | None = None,
) -> Assessment:
    """Measure `standards` for `districts` of `city` on OSM layers already read (from any source,
    or built for a benchmark): network, residents, one pass per standard, figures per district."""
    step = progress or (lambda _label: None)
    study = _prepare(city, districts, rules, standards, layers, population_raster, step)
    measured: dict[str, _Measured] = {}
    with ThreadPoolExecutor(max_workers=_threads(study.network)) as pool:
        futures: list[Future[Any]] = [
            pool.submit(_measure_standard, study, std) for std in standards
        ]
        # Then, by whichever thread is free first while the other finishes the last standards,
        # what needs no standard's result: the district indicators (counts, densities, land per
        # resident), the edges' midpoints and the homes on each denominator land.
        indicators = pool.submit(
            district_indicators,
            study.features,
            districts,
            study.d_proj,
            study.demand,
            rules,
            study.lands.union,
        )
        midpoints = pool.submit(study.lands.edge_midpoints)
        on_land = pool.submit(_homes_on_land, study, standards)
        futures += [indicators, midpoints, on_land]
        try:
            for std, fut in zip(standards, futures):
                step(f"measuring {std.id}")
                measured[std.id] = fut.result()
            district_rows = indicators.result()
            midpoints.result()
            homes_on = on_land.result()
        except BaseException:
            for fut in futures:  # a failure (or Ctrl-C) does not wait for the standards queued
                fut.cancel()
            raise
    # added once every pass is done: the passes read the homes while they run
    for m in measured.values():
        for col, values in m.columns.items():
            study.demand[col] = values
        study.notes.extend(m.notes)
    facilities = _concat_facilities([m.facilities for m in measured.values()], study.crs)
    summary = _summary(study, standards, measured, facilities, homes_on)
    measured_run = Assessment(
        city=city,
        districts=districts,
        standards=standards,
        rules=rules,
        crs=study.crs,
        network=study.network,
        demand=study.demand,
        facilities=facilities,
        summary=summary,
        district_rows=district_rows,
        features=study.features,
        notes=study.notes,
        source=layers.source,
        data_date=layers.data_date,
        population_model=study.population_model,
        passes={sid: m.passed for sid, m in measured.items()},
        context=study.context,
        lands=study.lands,
        demand_snaps=study.demand_snaps,
        completeness=study.completeness,
        districts_proj=study.d_proj,
    )
    # the gaps and service areas, with the distances at hand: the run's results are complete
    # before any output is written, and no output measures
    step("gaps and service areas")
    ids = [str(d) for d in districts["district_id"]]
    homes = study.demand["district_id"].value_counts().to_dict()
    return replace(
        measured_run, district_layers=measure_district_layers(measured_run, ids, homes=homes)
    )


def _prepare(
    city: City,
    districts: gpd.GeoDataFrame,
    rules: StandardSet,
    standards: list[Standard],
    layers: OSMLayers,
    population_raster: str | Path | None,
    step: Progress,
) -> _Study:
    """The steps every standard shares: the walk network, the residents, their snaps, the street
    contexts and the denominator land."""
    cfg = city.config
    crs = working_crs(city)
    query = study_query(city, districts, rules, standards)
    # layers read for a run are in its CRS already (`walkcover.sources.load_osm`): no copy
    features = _in_crs(layers.features, crs)
    streets = _in_crs(layers.streets, crs)

    d_proj = districts.to_crs(crs)
    notes: list[Note] = []
    with ThreadPoolExecutor(max_workers=1) as side:
        # The residents come from the features, the network from the streets: the residents are
        # estimated on a second thread while this one builds the network.
        people = side.submit(_residents, city, features, d_proj, rules, population_raster)
        step("building the walk network")
        walk = walkable_streets(streets, walk_highways=query.walk_highways)
        gates = locked_gates(features)
        network = build_network(walk, min_island_m=cfg.network.min_island_m, cut_nodes=gates)
        ends = np.concatenate([walk["u"], walk["v"]]).astype(np.int64)
        on_paths = np.unique(ends[pd.Series(ends).isin(gates).to_numpy()])  # hashed, no sort
        if len(on_paths):
            ids = ", ".join(f"node/{g}" for g in on_paths[:5])
            ids += " …" if len(on_paths) > 5 else ""
            notes.append(
                Note(
                    f"{len(on_paths)} locked gate(s) (access=no|private or locked=yes) cut the "
                    f"paths through them ({ids})"
                )
            )
        if len(network.edges) == 0:
            notes.append(
                Note("no walkable streets were found in the study area; every unit is unsnapped")
            )
        edge_tags = _edge_tags(network)
        # the street contexts on the second thread once the residents are done, while this one
        # snaps the homes
        contexts = None
        if any(s.context_thresholds_m for s in standards):
            contexts = side.submit(
                classify_edges, network, edge_tags, features, rules.street_contexts
            )
        step("estimating residents")
        demand, models, pop_model, completeness, res_land, resident_notes = people.result()
        notes += resident_notes  # after the network's, as when they were made one after the other

        step("snapping demand units")
        snap_m = cfg.network.max_snap_m
        demand_snaps = cov.snap(
            network, demand.geometry, max_snap_m=snap_m, tie_m=cfg.network.tie_m
        )
        context = contexts.result() if contexts is not None else None
    return _Study(
        city=city,
        districts=districts,
        d_proj=d_proj,
        rules=rules,
        crs=crs,
        query=query,
        limits={s.id: search_limit_m(s, city) for s in standards},
        features=features,
        streets=streets,
        network=network,
        demand=demand,
        models=models,
        population_model=pop_model,
        demand_snaps=demand_snaps,
        edge_tags=edge_tags,
        context=context,
        lands=DenominatorLand(
            features,
            d_proj,
            rules,
            network,
            snap_m=snap_m,
            context=context,
            unions={"residential_land": res_land},
        ),
        notes=notes,
        completeness=completeness,
        extent=gpd.GeoSeries([query.polygon], crs=4326).to_crs(crs).iloc[0],
    )


def _residents(
    city: City,
    features: gpd.GeoDataFrame,
    d_proj: gpd.GeoDataFrame,
    rules: StandardSet,
    population_raster: str | Path | None,
) -> tuple[gpd.GeoDataFrame, dict[str, str], str, pd.DataFrame, shapely.Geometry, list[Note]]:
    """The homes and their residents: ``(demand, demand models, population model, building
    completeness, residential land, notes)``."""
    cfg = city.config
    notes: list[Note] = []
    demand, models = _demand(features, d_proj, cfg, notes)
    totals = _known_totals(city, d_proj)
    res_land = land_union(features, rules.land.residential_land)
    completeness = building_completeness(
        demand[(demand["kind"] == "building").to_numpy()],
        res_land,
        d_proj,
        expected_footprint_share=cfg.demand.expected_footprint_share,
        known_totals=totals,
    )
    demand, pop_model = _population(
        city, demand, d_proj, population_raster, models, notes, completeness, totals, res_land
    )
    return demand, models, pop_model, completeness, res_land, notes


def _standard_facilities(study: _Study, std: Standard, notes: list[Note]) -> gpd.GeoDataFrame:
    """The standard's candidate facilities: from OSM, planners' imports, or both (city config);
    a missing import is said in `notes`."""
    fac = select_facilities(study.features, std)
    fsrc = study.city.config.facilities.get(std.id)
    if fsrc is None or fsrc.source == "osm":
        return fac
    files = imported_facilities(study.city.id, std.id, study.crs)
    if files is None:
        notes.append(
            Note(
                f"{std.id}: the city config takes facilities from {fsrc.source} but nothing was "
                f"imported; run walkcover import --city {study.city.id} --standard {std.id} FILE",
                standard=std.id,
            )
        )
    return merge_sources(fac, files, source=fsrc.source, merge_within_m=fsrc.merge_within_m)


def _in_crs(frame: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    """`frame` in `crs`: itself when it is in it already (``to_crs`` would copy every column)."""
    if frame.crs is not None and frame.crs.is_exact_same(pyproj.CRS.from_user_input(crs)):
        return frame
    return frame.to_crs(crs)


def _measure_standard(study: _Study, std: Standard) -> _Measured:
    """One engine pass for `std`: every home's distance, status and (for safe-route standards) the
    safe-route distance go into ``study.demand``; the facilities are marked snapped or not."""
    sid, network = std.id, study.network
    snap_m = study.city.config.network.max_snap_m
    columns: dict[str, np.ndarray] = {}
    notes: list[Note] = []
    fac = _standard_facilities(study, std, notes)
    counted, acc = _reachable(fac, study.features, network, std)
    access, n_entr = acc.geoms, acc.entrances
    fac_snaps = cov.snap(network, access, max_snap_m=snap_m, reach_polygon_edges=True)
    # one pass gives each node's distance and the facility it comes from: the homes' nearest
    # facility is taken here, with their distances, never by a second pass while drawing
    nodes = cov.node_sources(network, fac_snaps, limit_m=study.limits[sid])
    node_dist = nodes.dist_m
    rows = cov.nearest_sources(
        network, study.demand_snaps, fac_snaps, limit_m=study.limits[sid], nodes=nodes
    )
    nearest = np.full(len(rows), -1, dtype=np.int64)
    if len(fac_snaps.item):
        found = rows >= 0
        nearest[found] = access.index.to_numpy()[fac_snaps.item[rows[found]]]
    thr = unit_thresholds(std, study.context, study.demand_snaps)
    result = cov.measure(
        network,
        study.demand_snaps,
        fac_snaps,
        threshold_m=thr,
        limit_m=study.limits[sid],
        node_dist=node_dist,
    )
    for col in ("dist_m", "covered", "status"):
        columns[f"{sid}_{col}"] = result[col].to_numpy()
    # each home's band, decided here with its distance: every output colours by it
    columns[f"{sid}_band"] = distance_band(
        result["dist_m"].to_numpy(), thr, result["status"].to_numpy()
    )
    if study.context is not None and std.context_thresholds_m:
        columns[f"{sid}_context"] = unit_context(study.context, study.demand_snaps, std)
    if std.safe_route:
        sres = _safe_route(study).measure(fac_snaps, access, std, study.limits[sid])
        for col in ("dist_m", "covered", "status"):
            columns[f"{sid}_safe_{col}"] = sres[col].to_numpy()
    _mark_snapped(fac, counted, access, fac_snaps, n_entr)
    counted_rows = fac.index[fac["counts"].to_numpy(dtype=bool)]
    fac["reached_by"] = ""
    fac.loc[counted_rows, "reached_by"] = acc.reached_by
    fac["enclosed_pct"] = np.nan
    fac.loc[counted_rows, "enclosed_pct"] = acc.enclosed_pct
    fac["in_district"] = assign_districts(fac, study.d_proj).to_numpy() if len(fac) else []
    retired = fac["reason"].astype(str).str.startswith(OUT_OF_SERVICE).to_numpy()
    if retired.any():
        ids = ", ".join(fac["osm_id"].astype(str).to_numpy()[retired][:5])
        more = " …" if retired.sum() > 5 else ""
        notes.append(
            Note(
                f"{sid}: {int(retired.sum())} feature(s) tagged disused or abandoned left out "
                f"({ids}{more})",
                standard=sid,
            )
        )
    unsnapped_fac = int(len(counted) - fac["snapped"].sum())
    if unsnapped_fac:
        notes.append(
            Note(
                f"{sid}: {unsnapped_fac} facilit(y/ies) lie farther than {snap_m:g} m from any "
                "walkable street and serve no one",
                standard=sid,
            )
        )
    return _Measured(
        facilities=fac,
        passed=StandardPass(
            counted,
            access,
            fac_snaps,
            node_dist,
            study.limits[sid],
            nearest,
            edge_radii=(
                context_radii(std, study.context)
                if study.context is not None and std.context_thresholds_m
                else None
            ),
        ),
        edge_cover=_edge_cover(network, fac_snaps, node_dist, std, study.context),
        areas=study.lands.figures(std, counted.geometry.to_numpy(), fac_snaps, node_dist),
        columns=columns,
        notes=notes,
    )


def _safe_route(study: _Study) -> SafeRoute:
    """The study's safe-route network, built once by the first standard that asks for it."""
    with study.lock:
        if study.safe is None:
            study.safe = SafeRoute.build(
                study.network,
                study.streets,
                study.features,
                study.edge_tags,
                study.rules,
                study.demand,
                study.demand_snaps,
                study.extent,
            )
        return study.safe


def _reachable(
    fac: gpd.GeoDataFrame, features: gpd.GeoDataFrame, network: Network, std: Standard
) -> tuple[gpd.GeoDataFrame, Access]:
    """The counted facilities and how each is reached; an enclosure with no public way in
    (`entrances.CLOSED_REASON`) stops counting, with that reason, in `fac`."""
    counts = fac["counts"].to_numpy(dtype=bool)
    counted = fac[counts].reset_index(drop=True)
    acc = facility_access(counted, features, network, use_entrances=std.use_entrances)
    closed = acc.reached_by == "closed"
    if closed.any():
        rows = fac.index[np.flatnonzero(counts)[closed]]
        fac.loc[rows, "counts"] = False
        fac.loc[rows, "reason"] = CLOSED_REASON
        counted = counted[~closed].reset_index(drop=True)
        acc = facility_access(counted, features, network, use_entrances=std.use_entrances)
    return counted, acc


def _mark_snapped(
    fac: gpd.GeoDataFrame,
    counted: gpd.GeoDataFrame,
    access: gpd.GeoSeries,
    fac_snaps: cov.Snaps,
    n_entr: np.ndarray,
) -> None:
    """Columns ``snapped`` (some access point reaches a street) and ``entrances`` of `fac`."""
    fac["snapped"] = False
    fac["entrances"] = 0
    if not len(counted):
        return
    snapped_access = np.isin(np.arange(len(access)), fac_snaps.item)
    owner = access.index.to_numpy()  # access rows carry their facility's position
    snapped_fac = np.unique(owner[snapped_access])
    counted_pos = np.flatnonzero(fac["counts"].to_numpy(dtype=bool))
    fac.loc[fac.index[counted_pos[snapped_fac]], "snapped"] = True
    fac.loc[fac.index[counted_pos], "entrances"] = n_entr


def _summary(
    study: _Study,
    standards: list[Standard],
    measured: dict[str, _Measured],
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
            mine, fac_geoms, fac_snapped, fac_district = per_std[std.id]
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
    with ThreadPoolExecutor(max_workers=_threads(study.network)) as pool:
        done = list(pool.map(one, drows, list(study.d_proj.geometry)))
    rows = [row for district_rows, _ in done for row in district_rows]
    for _, notes in done:
        study.notes.extend(notes)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _groups(study: _Study, std: Standard) -> tuple[str | None, str | None]:
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


#: Below this share of residents on the official figure's land, the summary warns that the
#: official figure speaks for few of them.
OFFICIAL_LAND_WARN_PCT = 50.0
OFFICIAL_LAND_NOTE = "official_land"
#: Notes on where the residents come from (buildings too incomplete to carry them).
DEMAND_NOTE = "demand"


def _homes_on_land(study: _Study, standards: list[Standard]) -> dict[str, np.ndarray]:
    """Per denominator land, which homes touch it (those the official figure counts)."""
    homes = study.demand.geometry.to_numpy()
    return {k: study.lands.homes_on(k, homes) for k in sorted({s.denominator for s in standards})}


def _warn_off_land(study: _Study, on_land: dict[str, np.ndarray]) -> None:
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


def _edge_tags(network: Network) -> pd.DataFrame:
    e = network.edges
    out = pd.DataFrame(index=e.index)
    for c in ("highway", "footway", "bridge", "tunnel"):
        out[c] = e[c].to_numpy() if c in e else None
    return out


def _edge_cover(network, fac_snaps, node_dist, std, context):
    if context is None or not std.context_thresholds_m:
        return None
    return cov.covered_length_m(network, fac_snaps, node_dist, context_radii(std, context))


@dataclass(frozen=True)
class SafeRoute:
    """The safe-route network (barrier roads and railways cut, crossings kept), the tree that maps
    places onto its cells, and the demand units snapped onto it."""

    network: Network
    cell_tree: Any
    demand: cov.Snaps

    @classmethod
    def build(
        cls,
        network: Network,
        streets: gpd.GeoDataFrame,
        features: gpd.GeoDataFrame,
        edge_tags: pd.DataFrame,
        rules: StandardSet,
        demand: gpd.GeoDataFrame,
        demand_snaps: cov.Snaps,
        extent: shapely.Geometry,
    ) -> SafeRoute:
        barriers = barrier_lines(streets, features, rules.safe_route)
        tags = edge_tags.copy()
        tags["is_barrier"] = (
            tags["highway"].astype("string").isin(rules.safe_route.barrier_highways).fillna(False)
        )
        tags["is_barrier"] &= ~(tags["bridge"].notna() | tags["tunnel"].notna())
        crossings = features_matching(features, rules.safe_route.crossing_nodes)
        ids = [int(i.split("/")[1]) for i in crossings["osm_id"] if str(i).startswith("node/")]
        net, cell_tree = safe_network(
            network, tags, barriers, np.asarray(ids, dtype=np.int64), extent=extent
        )
        dem = remap_snaps(demand_snaps, net, cell_tree, demand.geometry.to_numpy())
        return cls(net, cell_tree, dem)

    def measure(
        self, fac_snaps: cov.Snaps, access: gpd.GeoSeries, std: Standard, limit_m: float
    ) -> pd.DataFrame:
        """`walkcover.engine.coverage.measure` of `std` on the safe-route network."""
        fac = remap_snaps(fac_snaps, self.network, self.cell_tree, access.to_numpy())
        return cov.measure(
            self.network, self.demand, fac, threshold_m=std.threshold_m, limit_m=limit_m
        )


def _demand(features, districts_proj, cfg, notes):
    model = cfg.population.model
    units = None
    if model != MODEL_RESIDENTIAL_LAND:
        buildings = residential_buildings(features, cfg.demand)
        units = demand_from_buildings(buildings, cfg.demand)
        units["district_id"] = assign_districts(units, districts_proj).to_numpy()
        units = units[units["district_id"].notna()]
    models: dict[str, str] = {}
    frames = [units] if units is not None else []
    land = None
    for _, d in districts_proj.iterrows():
        did = d["district_id"]
        if units is not None and (units["district_id"] == did).any():
            models[did] = MODEL_FLOOR_AREA
            continue
        if land is None:
            land = demand_from_land(residential_land(features), cfg.demand)
            land["district_id"] = assign_districts(land, districts_proj).to_numpy()
        mine = land[land["district_id"] == did]
        frames.append(mine)
        models[did] = MODEL_RESIDENTIAL_LAND
        if model != MODEL_RESIDENTIAL_LAND:
            notes.append(
                Note(
                    f"{d['slug']}: no residential buildings mapped; residents estimated from "
                    f"{len(mine)} residential land polygon(s) at "
                    f"{cfg.demand.residents_per_ha_residential_land:g} per hectare",
                    district=d["slug"],
                )
            )
    demand = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(demand, geometry="geometry", crs=districts_proj.crs), models


def _known_totals(city: City, d_proj: gpd.GeoDataFrame) -> dict[str, float]:
    """Known residents of the districts measured, where the city config names a totals file."""
    t = city.config.population.totals
    if t is None:
        return {}
    totals = read_totals(
        city.resolve(t.path),
        id_field=t.id_field,
        value_field=t.value_field,
        multiplier=t.multiplier,
    )
    return {k: v for k, v in totals.items() if k in set(d_proj["district_id"])}


def _population(
    city: City,
    demand: gpd.GeoDataFrame,
    d_proj: gpd.GeoDataFrame,
    raster: str | Path | None,
    models: dict[str, str],
    notes: list[Note],
    completeness: pd.DataFrame,
    totals: dict[str, float],
    res_land: shapely.Geometry,
) -> tuple[gpd.GeoDataFrame, str]:
    """Apply the raster model and the scaling to known totals; say what was done. Where a district's
    buildings are too incomplete to carry its residents, the raster's cells without a building become
    demand units of their own (placed on residential land where the cell has some); without a raster,
    a note warns that the figures cover only the mapped part."""
    pcfg = city.config.population
    raster = raster or (city.resolve(pcfg.raster) if pcfg.raster else None)
    if pcfg.model == "raster" and raster is None:
        from walkcover._errors import ConfigError

        raise ConfigError(
            "population.model is 'raster' but no raster is given; set population.raster or pass --population-raster"
        )
    slug = dict(zip(d_proj["district_id"], d_proj["slug"]))
    floor = city.config.demand.min_building_completeness_pct
    comp = completeness.set_index("district_id")["building_completeness_pct"]
    incomplete = [
        did
        for did, pct in comp.items()
        if pct == pct and pct < floor and models.get(did) == MODEL_FLOOR_AREA
    ]
    parts = []
    raster_notes: list[str] = []  # a raster in another CRS than the run's, said once each
    if raster is not None:
        weight = demand["floor_area_m2"].fillna(demand.geometry.area).to_numpy()
        residents, cells = allocate_raster(
            demand,
            d_proj,
            raster,
            weight=weight,
            cells_as_units=incomplete,
            units_per=pcfg.raster_units,
            notes=raster_notes,
        )
        demand["residents"] = residents
        parts.append(f"population raster {Path(raster).name} allocated by floor area")
        for did in d_proj["district_id"]:
            models[did] = "raster"
        if len(cells):
            demand = _with_raster_cells(demand, cells, res_land)
        for did in incomplete:
            n_cells = int((cells["district_id"].astype(str) == str(did)).sum())
            models[did] = "raster (buildings incomplete)"
            notes.append(
                Note(
                    f"{slug[did]}: its mapped buildings look {comp[did]:.0f}% complete (under "
                    f"{floor:g}%): residents come from the population raster, and {n_cells} raster "
                    "cell(s) with people but no mapped building are demand units of their own "
                    "(on residential land where the cell has some)",
                    district=slug[did],
                    kind=DEMAND_NOTE,
                )
            )
    else:
        parts.append(
            "floor area ÷ m² per person"
            if pcfg.model != MODEL_RESIDENTIAL_LAND
            else "residential land × density"
        )
        for did in incomplete:
            notes.append(
                Note(
                    f"{slug[did]}: WARNING its mapped buildings look only {comp[did]:.0f}% complete "
                    f"(under {floor:g}%): every figure covers only the mapped part"
                    + (", and its known total is spread over those few buildings" if totals else "")
                    + "; pass a population raster (--population-raster: WorldPop, GHS-POP; see "
                    "docs/population.md)",
                    district=slug[did],
                    kind=DEMAND_NOTE,
                )
            )
    if pcfg.groups:
        weight = demand["floor_area_m2"].fillna(demand.geometry.area).to_numpy()
        wanted = {
            name: ([city.resolve(p) for p in g.rasters], g.units) for name, g in pcfg.groups.items()
        }
        groups = allocate_groups(demand, d_proj, wanted, weight=weight, notes=raster_notes)
        for name, people in groups.items():
            demand[f"residents_{name}"] = people
        parts.append(f"groups by age from rasters: {', '.join(pcfg.groups)}")
    notes.extend(Note(t, kind=DEMAND_NOTE) for t in raster_notes)
    if totals:
        t = pcfg.totals
        assert t is not None
        before = demand["residents"].to_numpy(dtype=float)
        demand["residents"] = scale_to_totals(before, demand["district_id"].to_numpy(), totals)
        factor = np.divide(
            demand["residents"].to_numpy(), before, out=np.ones(len(before)), where=before > 0
        )
        for name in pcfg.groups:  # the groups keep the raster's age structure
            demand[f"residents_{name}"] = demand[f"residents_{name}"].to_numpy() * factor
        parts.append(f"scaled to district totals ({t.label or Path(t.path).name})")
    return demand, "; ".join(parts)


def _with_raster_cells(
    demand: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, res_land: shapely.Geometry
) -> gpd.GeoDataFrame:
    """`demand` plus one unit per raster cell returned by `allocate_raster`: a point on the
    cell's residential land where it has some, else the cell's centre."""
    cells = cells.to_crs(demand.crs)
    boxes = cells.geometry.to_numpy()
    on_land = shapely.intersection(boxes, res_land) if not shapely.is_empty(res_land) else boxes
    has_land = ~shapely.is_empty(on_land) & (shapely.area(on_land) > 0)
    where = np.where(has_land, shapely.point_on_surface(on_land), shapely.centroid(boxes))
    units = gpd.GeoDataFrame(
        {
            "osm_id": [f"raster/{r}/{c}" for r, c in zip(cells["row"], cells["col"])],
            "kind": "raster_cell",
            "building": None,
            "levels": np.nan,
            "levels_from": None,
            "floor_area_m2": np.nan,
            "residents": cells["people"].to_numpy(dtype=float),
            "district_id": cells["district_id"].to_numpy(),
        },
        geometry=where,
        crs=demand.crs,
    )
    return gpd.GeoDataFrame(
        pd.concat([demand, units], ignore_index=True), geometry="geometry", crs=demand.crs
    )


def _concat_facilities(frames: list[gpd.GeoDataFrame], crs) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in FACILITY_OUTPUT_COLUMNS}, geometry=[], crs=crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)


__all__ = [
    "DEMAND_NOTE",
    "FACILITY_OUTPUT_COLUMNS",
    "OFFICIAL_LAND_NOTE",
    "Assessment",
    "Note",
    "StandardPass",
    "assess_layers",
    "can_serve",
    "search_limit_m",
    "study_margin_m",
    "study_polygon",
    "study_query",
]
