"""Measuring a run: `assess_layers` prepares the study, runs one engine pass per standard (two at
a time), builds the summary and the districts' gaps and service areas, and returns the
immutable `walkcover.assessment.model.Assessment`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from walkcover._malloc import release_free_memory
from walkcover.assessment import standard_store
from walkcover.assessment.choice import measure_choice
from walkcover.assessment.model import (
    FACILITY_OUTPUT_COLUMNS,
    Assessment,
    Note,
    Progress,
    StandardPass,
    left_out_note,
    locked_gates_note,
    search_limit_m,
    study_query,
)
from walkcover.assessment.population import homes_and_residents
from walkcover.assessment.safe_route import SafeRoute
from walkcover.assessment.study import MeasuredStandard, StudyState, measure_threads
from walkcover.assessment.summary import homes_on_land, summary_table
from walkcover.config.crs import to_lonlat
from walkcover.config.standards import Standard, StandardSet, StreetContexts
from walkcover.config.study_area import City, working_crs
from walkcover.engine import coverage as cov
from walkcover.engine import snap_store
from walkcover.engine.network import (
    Network,
    build_network,
    let_samples_go,
    locked_gates,
    walkable_streets,
)
from walkcover.engine.street_context import (
    classify_edges,
    context_radii,
    unit_context,
    unit_thresholds,
)
from walkcover.measures.bands import distance_band
from walkcover.measures.demand import (
    assign_districts,
)
from walkcover.measures.entrances import CLOSED_REASON, Access, facility_access
from walkcover.measures.facilities import OUT_OF_SERVICE, select_facilities
from walkcover.measures.facility_files import imported_facilities, merge_sources
from walkcover.measures.gaps import (
    LAYER_THREADS,
    DistrictLayers,
    StandardLayers,
    joined_layers,
    measure_layers,
    reached_box,
    service_extent,
)
from walkcover.measures.hexagons import HexCoverage, hex_coverage, hex_resolution
from walkcover.measures.indicators import SUMMARY_COLUMNS, district_indicators
from walkcover.measures.land import DenominatorLand
from walkcover.measures.life_circles import district_life_circles, home_life_circles
from walkcover.sources import OSMLayers


def assess_layers(
    city: City,
    districts: gpd.GeoDataFrame,
    rules: StandardSet,
    standards: list[Standard],
    layers: OSMLayers | Callable[[], OSMLayers],
    *,
    population_raster: str | Path | None = None,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
) -> Assessment:
    """Measure `standards` for `districts` of `city` on OSM layers (from any source, or built for
    a benchmark): network, residents, one pass per standard, figures per district.

    `cache_dir`, when given, keeps the run's snaps (homes, land cells, lattice corners,
    facilities) in its snap store (`walkcover.engine.snap_store`), and takes from it those an
    earlier run over the same streets made: a rerun after changing a threshold or a facility
    list snaps only what is new.

    `layers` are the layers read, or a function that reads them (`walkcover.api.measure` passes
    its read): then the run holds the only reference to them, and the street layer (a city's
    1.6 million segments, about 250 MB beyond what the network keeps of it) is let go once the
    walk network is built."""
    step = progress or (lambda _label: None)
    if callable(layers):
        layers = layers()
    source, data_date = layers.source, layers.data_date
    # handed over: `_prepare` holds the only reference (when the caller kept none), and lets the
    # street layer go as soon as the walk network is built
    handed = [layers]
    del layers
    study = _prepare(
        city, districts, rules, standards, handed, population_raster, step, cache_dir=cache_dir
    )
    study.safe_left = sum(1 for s in standards if s.safe_route)
    measured: dict[str, MeasuredStandard] = {}
    # one standard to measure, every other read back: its pass may use the other thread
    study.spare_thread = measure_threads(study.network) > 1 and _to_measure(study, standards) <= 1
    with ThreadPoolExecutor(max_workers=measure_threads(study.network)) as pool:
        # The safe-route network first, on its own (built inside its first standard's pass, its
        # 330 MB of building, on L, came on top of that pass's snaps and distances and of the
        # other thread's standard: the run's peak), then, on the same thread, the standards
        # that walk it: a thread that took one of them while it was being built sat idle until
        # it was (on L 3.8 s), and one that took them last kept it alive through the other
        # standards (150 MB more at the peak of a network's first run).
        walked = [std for std in standards if std.safe_route]
        safe = pool.submit(_safe_route_standards, study, walked) if walked else None
        # Meanwhile, on the other thread, the edges' midpoints (which the summary places edges
        # by: made first, for a rerun that reads its passes back does little else; a run that
        # classified its street contexts has them already), the other standards, then what
        # needs no standard's result (the district indicators: counts, densities, land per
        # resident; the homes on each denominator land).
        midpoints = pool.submit(study.lands.edge_midpoints)
        by_id: dict[str, Future[Any]] = {
            std.id: pool.submit(_measure_standard, study, std)
            for std in standards
            if not std.safe_route
        }
        indicators = pool.submit(_district_indicators, study)
        on_land = pool.submit(_homes_on_land, study, standards)
        futures: list[Future[Any]] = [*by_id.values(), indicators, midpoints, on_land]
        if safe is not None:
            futures.append(safe)
        try:
            for std in standards:
                step(f"measuring {std.id}")
                if std.safe_route:
                    assert safe is not None
                    measured[std.id] = safe.result()[walked.index(std)]
                else:
                    measured[std.id] = by_id[std.id].result()
            district_rows = indicators.result()
            midpoints.result()
            homes_on = on_land.result()
        except BaseException:
            for fut in futures:  # a failure (or Ctrl-C) does not wait for the standards queued
                fut.cancel()
            raise
    # the safe-route network (a second network, its cells and the homes on it: 150 MB on L) is
    # measured with: it goes before the gaps and service areas, where the run peaks
    study.safe = None
    release_free_memory()
    # added once every pass is done (the passes read the homes while they run), all at once: a
    # column at a time, L's 60 columns took 0.3 s
    added = pd.DataFrame(
        {col: values for m in measured.values() for col, values in m.columns.items()},
        index=study.demand.index,
    )
    study.demand = pd.concat([study.demand, added], axis=1)
    for m in measured.values():
        study.notes.extend(m.notes)
    facilities = _concat_facilities([m.facilities for m in measured.values()], study.crs)
    # the summary and the service extents, which depend on every standard: read back where the
    # store holds them for these passes, else made (and filed once the layers are done)
    run_key = None
    if study.digest is not None and all(s.id in study.keys for s in standards):
        run_key = standard_store.run_key(study.digest, [study.keys[s.id] for s in standards])
    kept = standard_store.kept_run(study, run_key, standards) if run_key else None
    extents: dict[str, shapely.Geometry | None] | None = None
    if kept is not None:
        summary, summary_notes, extents = kept
        study.notes.extend(summary_notes)
    measured_run = Assessment(
        city=city,
        districts=districts,
        standards=standards,
        rules=rules,
        crs=study.crs,
        network=study.network,
        demand=study.demand,
        facilities=facilities,
        # the summary, when not read back, is made beside the layers (which never read it)
        summary=summary if kept is not None else pd.DataFrame(columns=SUMMARY_COLUMNS),
        district_rows=district_rows,
        features=study.features,
        notes=study.notes,
        source=source,
        data_date=data_date,
        population_model=study.population_model,
        passes={sid: m.passed for sid, m in measured.items()},
        context=study.context,
        lands=study.lands,
        demand_snaps=study.demand_snaps,
        completeness=study.completeness,
        districts_proj=study.d_proj,
        locked_gates=study.locked_gates,
        left_out={sid: ids for sid, m in measured.items() if (ids := left_out_ids(m.facilities))},
    )
    # the gaps and service areas, with the distances at hand: the run's results are complete
    # before any output is written, and no output measures
    step("gaps and service areas")
    with ThreadPoolExecutor(max_workers=1) as side:
        # the summary on a thread of its own while the layers are read back or measured (a
        # changed standard: its pass's layers and the other passes' parts read meanwhile). Both
        # only read the study; the summary's notes are the only notes added meanwhile.
        made = None
        if kept is None:
            before = len(study.notes)
            made = side.submit(summary_table, study, standards, measured, facilities, homes_on)
        try:
            per_district, extents = _district_layers(study, measured_run, extents=extents)
        finally:
            if made is not None:
                wait([made])  # (a failure of the layers still lets the summary finish first)
        if made is not None:
            summary = made.result()
            summary_notes = study.notes[before:]
    if run_key is not None and kept is None:
        standard_store.keep_run(
            study, run_key, summary=summary, notes=summary_notes, extents=extents
        )
    # the life circles add their columns to the homes: after the layers, which read them
    circles = _life_circles(study, rules, standards, summary)
    if circles is not None:  # one indicator row per district and tier, beside the counts
        district_rows = pd.concat(
            [district_rows, _life_circle_rows(circles, districts, rules)], ignore_index=True
        )
    measured_run = replace(
        measured_run, summary=summary, district_rows=district_rows, life_circles=circles
    )
    study.read_ahead.clear()  # (parts read ahead for extents the run did not measure)
    hexagons = _hexagons(study, standards)
    # every snap of the run is made: the edge samples go before the outputs are written (no
    # writer measures), and are made again if a site or a scenario snaps
    let_samples_go(study.network)
    release_free_memory()
    if study.network.store_dir is not None:  # the least recently used, past their sizes
        snap_store.prune(study.network.store_dir)
        standard_store.prune(study.network.store_dir)
    return replace(measured_run, district_layers=per_district, hexagons=hexagons)


def _to_measure(study: StudyState, standards: list[Standard]) -> int:
    """How many of `standards` have no pass read ahead from the standard store (a pass read
    ahead is still checked when taken: one that fails is measured after all)."""
    if study.digest is None:
        return len(standards)
    keys = [
        standard_store.standard_key(study.digest, s, limit_m=study.limits[s.id], city=study.city)
        for s in standards
    ]
    return sum(study.read_ahead.get(k) is None for k in keys)


def _district_indicators(study: StudyState) -> pd.DataFrame:
    """The districts' counts, densities and land per resident (`district_indicators`): read back
    from the standard store where the run keeps one and it holds them, else measured and kept
    (they depend on nothing but the study)."""
    kept = standard_store.kept_figures(study, "district indicators")
    if kept is not None and kept[0] is not None:
        return kept[0]
    rows = district_indicators(
        study.features,
        study.districts,
        study.d_proj,
        study.demand,
        study.rules,
        study.lands.union,
    )
    standard_store.keep_figures(study, "district indicators", table=rows)
    return rows


def _homes_on_land(study: StudyState, standards: list[Standard]) -> dict[str, np.ndarray]:
    """`homes_on_land`, read back from the standard store where it holds them, else measured and
    kept."""
    what = "homes on " + ", ".join(sorted({s.denominator for s in standards}))
    kept = standard_store.kept_figures(study, what)
    if kept is not None:
        return kept[1]
    homes = homes_on_land(study, standards)
    standard_store.keep_figures(study, what, homes=homes)
    return homes


def _district_layers(
    study: StudyState,
    measured: Assessment,
    *,
    extents: dict[str, shapely.Geometry | None] | None = None,
) -> tuple[dict[str, DistrictLayers], dict[str, shapely.Geometry | None]]:
    """Every district's gaps and service areas (`walkcover.measures.gaps`), each standard's part
    read back from the standard store where the run keeps one and it holds that part (filed
    under the standard's pass, the district and where its service areas are measured), else
    measured (the districts' parts still to measure, two districts at a time) and filed; and
    where each district's service areas are measured (`service_extent`, unless `extents`, read
    back, say)."""
    ids = [str(d) for d in measured.districts["district_id"]]
    reached: shapely.Geometry | None = None
    if extents is None:
        reached = reached_box(measured)
        extents = {d: service_extent(measured, d, reached=reached) for d in ids}
    parts: dict[tuple[str, str], StandardLayers] = {}
    keys = {
        (d, std.id): standard_store.layers_key(study.keys[std.id], d, extents[d])
        for d in ids
        for std in measured.standards
        if std.id in study.keys
    }

    def look(pair: tuple[str, Standard]) -> StandardLayers | None:
        d, std = pair
        key = keys.get((d, std.id))
        return standard_store.kept_layers(study, std, key) if key else None

    pairs = [(d, std) for d in ids for std in measured.standards]
    with ThreadPoolExecutor(max_workers=LAYER_THREADS) as pool:  # (Parquet reads in parallel)
        found = list(pool.map(look, pairs)) if keys else [None] * len(pairs)
    todo: dict[str, list[Standard]] = {d: [] for d in ids}
    for (d, std), part in zip(pairs, found):
        if part is None:
            todo[d].append(std)
        else:
            parts[d, std.id] = part
    if any(todo.values()):
        if reached is None:  # (extents read back, a part of the layers not)
            reached = reached_box(measured)
        homes = study.demand["district_id"].value_counts().to_dict()
        made = measure_layers(measured, todo, homes=homes, reached=reached, extents=extents)
        for d, by_standard in made.items():
            for sid, part in by_standard.items():
                parts[d, sid] = part
                if (d, sid) in keys:
                    standard_store.keep_layers(study, keys[d, sid], part)
    joined = {d: joined_layers(measured, [parts[d, s.id] for s in measured.standards]) for d in ids}
    return joined, extents


def _life_circles(
    study: StudyState, rules: StandardSet, standards: list[Standard], summary: pd.DataFrame
) -> pd.DataFrame | None:
    """GB 50180's life circles, where the standards file has tiers (``life_circle``): per home,
    whether every required facility of each tier is within its distance (demand columns
    ``life_circle_<t>min_complete`` and ``_found``), and per district and tier the share of
    residents whose circle is complete and the facility most often missing. A tier the run
    measures only part of is left out, with a note naming what is missing."""
    tiers = rules.life_circle_tiers()
    if not tiers:
        return None
    ran = {s.id for s in standards}
    whole: dict[int, list[str]] = {}
    for tier, ids in tiers.items():
        left_out = [i for i in ids if i not in ran]
        if left_out:
            if len(left_out) < len(ids):
                study.notes.append(
                    Note(
                        f"the {tier}-minute life circle is not measured: the run leaves out "
                        f"{', '.join(left_out)} (run all its standards, or --standard all)"
                    )
                )
            continue
        whole[tier] = list(ids)
    if not whole:
        return None
    d = study.demand
    wanted = [i for ids in whole.values() for i in ids]
    covered = {sid: d[f"{sid}_covered"].to_numpy(dtype=bool) for sid in wanted}
    # a district where a required standard has no facility in reach in the data has no figure
    # for the tier (never 0%, as its summary row says "no data"); its homes are not measured
    lacking = summary.loc[summary["facilities_in_reach"] == 0, ["district_id", "standard"]]
    district = d["district_id"].to_numpy(dtype=object)
    parts, no_data = [], {}
    for tier, ids in whole.items():
        measured = np.ones(len(d), dtype=bool)
        for sid in ids:
            status = d[f"{sid}_status"].to_numpy(dtype=object)
            measured &= (status != cov.STATUS_UNSNAPPED) & (status != cov.STATUS_NO_FACILITIES)
        gone = lacking[lacking["standard"].isin(ids)]
        measured &= ~np.isin(district, gone["district_id"].to_numpy(dtype=object))
        for did, rows in gone.groupby("district_id"):
            no_data[(str(did), tier)] = [s for s in ids if s in set(rows["standard"])]
        parts.append(home_life_circles(covered, tiers={tier: ids}, measured=measured))
    homes = pd.concat(parts, axis=1)
    for col in homes.columns:
        d[col] = homes[col].array
    table = district_life_circles(
        homes,
        covered=covered,
        tiers=whole,
        residents=np.nan_to_num(d["residents"].to_numpy(dtype=float), nan=0.0),
        district=district,
    )
    table["no_data"] = [
        ", ".join(no_data.get((str(did), int(t)), []))
        for did, t in zip(table["district_id"], table["tier_min"])
    ]
    return table


def _life_circle_rows(
    circles: pd.DataFrame, districts: gpd.GeoDataFrame, rules: StandardSet
) -> pd.DataFrame:
    """`district_indicators` rows of the life circles: per district and tier, the share of
    residents whose circle is complete (``life_circle_<t>min_complete_pct``), the facility most
    often missing in the note."""
    names = districts.set_index("district_id")
    tiers = rules.life_circle_tiers()
    rows = []
    for r in circles.itertuples(index=False):
        d = names.loc[r.district_id]
        ids = tiers[int(r.tier_min)]
        missing = ""
        if r.no_data:
            lack = [rules.standards[i] for i in r.no_data.split(", ")]
            missing = (
                "no data: no "
                + ", ".join(f"{x.name} · {x.name_zh or x.name}" for x in lack)
                + " in reach in the data (map them or import the bureau's list)"
            )
        elif r.most_missing:
            std = rules.standards[r.most_missing]
            missing = (
                f"most often missing: {std.name} · {std.name_zh or std.name} "
                f"({r.most_missing_residents:,.0f} residents)"
            )
        rows.append(
            {
                "district": d["slug"],
                "district_id": r.district_id,
                "district_name": d["name"],
                "indicator": f"life_circle_{int(r.tier_min)}min_complete_pct",
                "name": f"{int(r.tier_min)}-minute life circle complete (residents)",
                "value": r.complete_pct,
                "unit": "%",
                "target": float("nan"),
                "meets_target": None,
                "basis": "every facility the tier requires within its distance: " + ", ".join(ids),
                "note": missing,
                "section": f"{rules.document or rules.id} life circles",
            }
        )
    return pd.DataFrame(rows)


def _hexagons(study: StudyState, standards: list[Standard]) -> HexCoverage:
    """The homes' coverage per H3 hexagon, at the resolution `hex_resolution` gives the study
    area (the districts' area, not the reach of the data: a county with no homes costs nothing)."""
    d = study.demand
    resolution = hex_resolution(float(study.d_proj.area.sum()) / 1e6)
    if not len(d):
        return hex_coverage(
            np.zeros(0), np.zeros(0), district_ids=np.zeros(0, dtype=object),
            residents=np.zeros(0), covered={s.id: np.zeros(0, dtype=bool) for s in standards},
            resolution=resolution,
        )  # fmt: skip
    xy = shapely.get_coordinates(to_lonlat(d.geometry.representative_point().to_numpy(), d.crs))
    return hex_coverage(
        xy[:, 0],
        xy[:, 1],
        district_ids=d["district_id"].to_numpy(),
        residents=pd.to_numeric(d["residents"], errors="coerce").to_numpy(float),
        covered={s.id: d[f"{s.id}_covered"].fillna(False).to_numpy(dtype=bool) for s in standards},
        resolution=resolution,
    )


def _prepare(
    city: City,
    districts: gpd.GeoDataFrame,
    rules: StandardSet,
    standards: list[Standard],
    handed: list[OSMLayers],
    population_raster: str | Path | None,
    step: Progress,
    *,
    cache_dir: str | Path | None = None,
) -> StudyState:
    """The steps every standard shares: the walk network, the residents, their snaps, the street
    contexts and the denominator land. The layers are taken out of `handed` (one item), so that
    the street layer can go once the network is built."""
    cfg = city.config
    crs = working_crs(city)
    query = study_query(city, districts, rules, standards)
    layers = handed.pop()
    osm = layers.digest if cache_dir is not None else ""  # what they are, if read from the cache
    # layers read for a run are in its CRS already (`walkcover.sources.load_osm`): no copy
    features = _in_crs(layers.features, crs)
    streets = _in_crs(layers.streets, crs)
    del layers

    d_proj = districts.to_crs(crs)
    extent = gpd.GeoSeries([query.polygon], crs=4326).to_crs(crs).iloc[0]
    limits = {s.id: search_limit_m(s, city) for s in standards}
    # of the street layer (1.6 million segments on L) the study keeps the network and the
    # barrier-class streets: the rest, and its copies for the network, go before the homes are
    # snapped and the standards measured (where the run peaks)
    barriers = barrier_streets(streets, rules)
    notes: list[Note] = []
    recipe: bytes | None = None
    with ThreadPoolExecutor(max_workers=2) as side:
        # The residents come from the features, the network from the streets: the residents are
        # estimated on a second thread while this one builds the network; the street contexts
        # on a third, from the moment the network is built.
        # what the standards' kept passes (and the residents) are filed under, hashed while the
        # network is built
        hashed: Future[bytes] | None = None
        if osm:  # read from the cache: named by where from, and so is the network
            hashed = Future()
            hashed.set_result(standard_store.layers_digest(osm, crs))
            recipe = standard_store.network_recipe(
                hashed.result(),
                walk_highways=query.walk_highways,
                min_island_m=cfg.network.min_island_m,
            )
        elif cache_dir is not None:  # else hashed, while the network is built
            hashed = side.submit(standard_store.features_digest, features)
        people = side.submit(
            _residents, city, features, d_proj, rules, population_raster, hashed, cache_dir
        )
        # what the study's digest is made of besides its network and its homes
        parts: dict[str, Any] = {
            "streets": barriers,
            "d_proj": d_proj,
            "districts": districts,
            "extent": extent,
            "crs": crs,
            "city": city,
            "rules": rules,
        }
        # the network named before it is built: the study's digest is made, and the passes
        # kept under it are read, beside the building (on L 1 s of reading, the network 3 s)
        ahead: Future[tuple[bytes, dict[str, Any]]] | None = None
        if recipe is not None and hashed is not None and cache_dir is not None:
            digest_of = partial(
                standard_store.study_digest,
                network=standard_store.recipe_digest(recipe),
                features=hashed.result(),
                **parts,
            )
            ahead = side.submit(
                _read_ahead, people, Path(cache_dir), digest_of, standards=standards, limits=limits
            )
        step("building the walk network")
        walk = walkable_streets(streets, walk_highways=query.walk_highways)
        gates = locked_gates(features)
        network = build_network(walk, min_island_m=cfg.network.min_island_m, cut_nodes=gates)
        if cache_dir is not None:  # its snaps kept and taken from the cache
            network = dataclasses.replace(network, store_dir=Path(cache_dir), recipe=recipe)
        ends = np.concatenate([walk["u"], walk["v"]]).astype(np.int64)
        # (isin hashed, no sort; unique sorts: the ids ascending)
        on_paths = np.unique(ends[pd.Series(ends).isin(gates).to_numpy()])
        if len(on_paths):  # the note counts them; the results list every one
            notes.append(locked_gates_note(len(on_paths)))
        if len(network.edges) == 0:
            notes.append(
                Note("no walkable streets were found in the study area; every unit is unsnapped")
            )
        edge_tags = _edge_tags(network)
        del streets, walk
        release_free_memory()
        # the street contexts while the residents are estimated and the homes snapped (they
        # waited for the residents: the run's snaps kept in the cache left this thread idle)
        contexts = None
        if any(s.context_thresholds_m for s in standards):
            contexts = side.submit(
                _street_contexts, network, edge_tags, features, rules.street_contexts, hashed
            )
        if hashed is not None:  # (hashed while the residents are estimated)
            side.submit(standard_store.network_digest, network)
        step("estimating residents")
        demand, models, pop_model, completeness, res_land, resident_notes = people.result()
        notes += resident_notes  # after the network's, as when they were made one after the other

        step("snapping demand units")
        snap_m = cfg.network.max_snap_m
        demand_snaps = cov.snap(
            network, demand.geometry, max_snap_m=snap_m, tie_m=cfg.network.tie_m
        )
        context = contexts.result() if contexts is not None else None
        features_hash = hashed.result() if hashed is not None else None
        read = ahead.result() if ahead is not None else None
    study = StudyState(
        city=city,
        districts=districts,
        d_proj=d_proj,
        rules=rules,
        crs=crs,
        query=query,
        limits=limits,
        features=features,
        streets=barriers,
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
        extent=extent,
        locked_gates=tuple(int(g) for g in on_paths),
    )
    if read is not None:
        study.digest, study.read_ahead = read
    elif features_hash is not None:
        study.digest = standard_store.study_digest(
            network=standard_store.network_digest(network),
            features=features_hash,
            demand=study.demand,
            **parts,
        )
    return study


def _read_ahead(
    people: Future[standard_store.Residents],
    root: Path,
    digest_of: partial[bytes],
    *,
    standards: list[Standard],
    limits: dict[str, float],
) -> tuple[bytes, dict[str, Any]]:
    """The study's digest (``digest_of(demand=...)``: `standard_store.study_digest` of all but
    the homes, its network named by what it is built from) once the residents are read, and
    every standard's pass filed under it, read (`standard_store.read_ahead`), with the run's
    figures and the districts' layers they point to: made while the walk network is built."""
    digest = digest_of(demand=people.result()[0])
    parts = digest_of.keywords
    crs, city, districts = parts["crs"], parts["city"], parts["districts"]
    read: dict[str, Any] = {}
    keys = []
    for std in standards:
        key = standard_store.standard_key(digest, std, limit_m=limits[std.id], city=city)
        keys.append(key)
        read[key] = standard_store.read_ahead(root, key, crs=crs)
    # the run's figures (the summary, the service extents) and, where they say where each
    # district's service areas are measured, every district's part of every standard's layers
    run = standard_store.run_key(digest, keys)
    read[run] = figures = standard_store.read_ahead_run(root, run)
    # a standard changed: its layers are measured again, the others' filed under the extents
    # the study's last run measured are read (taken if the run's own extents are the same)
    extents = figures[2][2] if figures is not None else standard_store.last_extents(root, digest)
    if extents is not None:
        for d in map(str, districts["district_id"]):
            if d not in extents:  # (filed for other districts: `kept_run` says so)
                break
            for key in keys:
                part = standard_store.layers_key(key, d, extents[d])
                read[part] = standard_store.read_ahead_layers(root, part, crs=crs)
    return digest, read


def _residents(
    city: City,
    features: gpd.GeoDataFrame,
    d_proj: gpd.GeoDataFrame,
    rules: StandardSet,
    population_raster: str | Path | None,
    hashed: Future[bytes] | None,
    cache_dir: str | Path | None,
) -> standard_store.Residents:
    """`homes_and_residents`, read back from the standard store where the run keeps one
    (`hashed`: the features' digest, made meanwhile) and it holds them, else estimated and
    kept."""
    if hashed is None or cache_dir is None:
        return homes_and_residents(city, features, d_proj, rules, population_raster)
    root = Path(cache_dir)
    key = standard_store.residents_key(
        city, hashed.result(), d_proj, rules, population_raster, root
    )
    found = standard_store.kept_residents(root, key, d_proj)
    if found is None:
        found = homes_and_residents(city, features, d_proj, rules, population_raster)
        standard_store.keep_residents(root, key, found)
    return found


def _street_contexts(
    network: Network,
    edge_tags: pd.DataFrame,
    features: gpd.GeoDataFrame,
    rules: StreetContexts,
    hashed: Future[bytes] | None,
) -> np.ndarray:
    """`classify_edges`, read back from the standard store where the run keeps one (`hashed`:
    the features' digest, made meanwhile) and it holds them, else classified and kept."""
    if hashed is None or network.store_dir is None:
        return classify_edges(network, edge_tags, features, rules)
    key = standard_store.contexts_key(network, hashed.result(), rules)
    context = standard_store.kept_contexts(network, key)
    if context is None:
        context = classify_edges(network, edge_tags, features, rules)
        standard_store.keep_contexts(network, key, context)
    return context


def barrier_streets(streets: gpd.GeoDataFrame, rules: StandardSet) -> gpd.GeoDataFrame:
    """The street segments of the classes the safe route treats as barriers
    (``safe_route.barrier_highways``), the only ones its build reads of the street layer."""
    barrier = streets["highway"].astype("string").isin(rules.safe_route.barrier_highways)
    return streets[barrier.fillna(False).to_numpy(dtype=bool)]


def _standard_facilities(study: StudyState, std: Standard, notes: list[Note]) -> gpd.GeoDataFrame:
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


def _measure_standard(study: StudyState, std: Standard) -> MeasuredStandard:
    """`std`'s pass: read back from the standard store when the run keeps one and it holds this
    pass (`standard_store`), else measured (`_measure_one`) and filed there; then what it freed
    given back to the system: a standard's snaps, lattices and land cells are GEOS's and numpy's
    blocks by the hundred thousand, freed but held by the heap, which the next standard (on the
    other thread, in another arena) could not reuse."""
    try:
        key = ""
        if study.digest is not None:
            key = standard_store.standard_key(
                study.digest, std, limit_m=study.limits[std.id], city=study.city
            )
        if key:
            study.keys[std.id] = key
        found = standard_store.kept(study, std, key) if key else None
        if found is not None:
            if std.safe_route:
                _safe_route_measured(study)  # (built only if another was measured)
            return found
        notes: list[Note] = []
        fac = _standard_facilities(study, std, notes)
        measured = _measure_one(study, std, fac, notes)
        if key:
            standard_store.keep(study, std, key, measured)
        return measured
    finally:
        release_free_memory()


def _measure_one(
    study: StudyState, std: Standard, fac: gpd.GeoDataFrame, notes: list[Note]
) -> MeasuredStandard:
    """One engine pass for `std` over its candidate facilities `fac` (`_standard_facilities`,
    which said in `notes` what it lacked): every home's distance, status and (for safe-route
    standards) the safe-route distance go into ``study.demand``; the facilities are marked
    snapped or not."""
    sid, network = std.id, study.network
    snap_m = study.city.config.network.max_snap_m
    if std.safe_route:  # its network built before this pass's snaps and distances (the peak)
        _safe_route(study)
    counted, acc = _reachable(fac, study.features, network, std)
    fac_snaps = cov.snap(network, acc.geoms, max_snap_m=snap_m, reach_polygon_edges=True)
    # one pass gives each node's distance and the facility it comes from: the homes' nearest
    # facility is taken here, with their distances, never by a second pass while drawing
    nodes = cov.node_sources(network, fac_snaps, limit_m=study.limits[sid])
    geoms = counted.geometry.to_numpy()
    figures = partial(study.lands.figures, std, geoms, fac_snaps, nodes.dist_m)
    with ThreadPoolExecutor(max_workers=1) if study.spare_thread else nullcontext() as aside:
        # the land figures need the distances only: beside the rest of the pass where the other
        # measuring thread has nothing to do (every other pass read back), else after it
        areas = aside.submit(figures) if aside is not None else None
        try:
            measured = _measured_pass(study, std, fac, notes, counted, acc, fac_snaps, nodes)
        finally:
            if areas is not None:
                wait([areas])
    return replace(measured, areas=areas.result() if areas is not None else figures())


def _measured_pass(
    study: StudyState,
    std: Standard,
    fac: gpd.GeoDataFrame,
    notes: list[Note],
    counted: gpd.GeoDataFrame,
    acc: Access,
    fac_snaps: cov.Snaps,
    nodes: cov.NodeSources,
) -> MeasuredStandard:
    """`_measure_one` once every node's distance is known (`nodes`): the homes' figures, choice,
    the facilities' marks and the edges' cover; the land figures are `_measure_one`'s."""
    sid, network = std.id, study.network
    snap_m = study.city.config.network.max_snap_m
    columns: dict[str, np.ndarray] = {}
    access = acc.geoms
    n_entr = acc.entrances
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
        _safe_route_measured(study)
    # choice (2nd and 3rd nearest, how many within) and capacity, where the standard asks
    chosen = measure_choice(
        study,
        std,
        counted=counted,
        access=access,
        fac_snaps=fac_snaps,
        threshold_m=thr,
        status=result["status"].to_numpy(),
    )
    columns.update(chosen.columns)
    notes.extend(chosen.notes)
    _mark_snapped(fac, counted, access, fac_snaps, n_entr)
    counted_rows = fac.index[fac["counts"].to_numpy(dtype=bool)]
    fac["reached_by"] = ""
    fac.loc[counted_rows, "reached_by"] = acc.reached_by
    fac["enclosed_pct"] = np.nan
    fac.loc[counted_rows, "enclosed_pct"] = acc.enclosed_pct
    # a planner's file may give capacities (walkcover import); an access rule fills the rest
    given = fac["capacity"] if "capacity" in fac else pd.Series(np.nan, index=fac.index)
    fac["capacity"] = pd.to_numeric(given, errors="coerce").to_numpy(dtype=float)
    fac["capacity_source"] = np.where(np.isfinite(fac["capacity"].to_numpy()), "file", "")
    if chosen.capacity is not None:
        fac.loc[counted_rows, "capacity"] = chosen.capacity
        fac.loc[counted_rows, "capacity_source"] = chosen.capacity_source
    fac["in_district"] = assign_districts(fac, study.d_proj).to_numpy() if len(fac) else []
    retired = left_out_ids(fac)
    if retired:  # the note counts them; the results list every one
        notes.append(left_out_note(sid, len(retired)))
    unsnapped_fac = int(len(counted) - fac["snapped"].sum())
    if unsnapped_fac:
        notes.append(
            Note(
                f"{sid}: {unsnapped_fac} facilit(y/ies) lie farther than {snap_m:g} m from any "
                "walkable street and serve no one",
                standard=sid,
            )
        )
    return MeasuredStandard(
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
        areas={},  # (`_measure_one`'s)
        columns=columns,
        notes=notes,
    )


def _safe_route(study: StudyState) -> SafeRoute:
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


def _safe_route_standards(study: StudyState, walked: list[Standard]) -> list[MeasuredStandard]:
    """The standards in `walked` measured in turn on the safe-route network, built by the first
    that is not read back from the standard store (the last lets it go:
    `_safe_route_measured`)."""
    return [_measure_standard(study, std) for std in walked]


def _safe_route_measured(study: StudyState) -> None:
    """One safe-route standard measured: the last lets the safe-route network go (about 160 MB
    on L), while the other standards are still measured, not after them all."""
    with study.lock:
        study.safe_left -= 1
        if study.safe_left <= 0:
            study.safe = None


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


def _edge_tags(network: Network) -> pd.DataFrame:
    """The edges' ``highway, footway, bridge, tunnel`` tags, for the street contexts and the safe
    route: the columns' own arrays (a city's 1.4 million edges as Python strings took 0.7 s)."""
    e = network.edges
    out = pd.DataFrame(index=e.index)
    for c in ("highway", "footway", "bridge", "tunnel"):
        out[c] = e[c].array if c in e else None
    return out


def _edge_cover(network, fac_snaps, node_dist, std, context):
    if context is None or not std.context_thresholds_m:
        return None
    return cov.covered_length_m(network, fac_snaps, node_dist, context_radii(std, context))


def _concat_facilities(frames: list[gpd.GeoDataFrame], crs) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in FACILITY_OUTPUT_COLUMNS}, geometry=[], crs=crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)


def left_out_ids(facilities: pd.DataFrame) -> tuple[str, ...]:
    """The OSM ids of a standard's features (its facilities frame, with ``reason`` and
    ``osm_id``) tagged disused or abandoned and left out (`OUT_OF_SERVICE`), in the frame's
    order: every one (`Assessment.left_out`)."""
    if not len(facilities) or "reason" not in facilities:
        return ()
    retired = facilities["reason"].astype(str).str.startswith(OUT_OF_SERVICE).to_numpy()
    return tuple(facilities["osm_id"].astype(str).to_numpy()[retired].tolist())
