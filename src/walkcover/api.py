"""The public API: measure a city's standards in one call, then look at, site and save the results.

>>> import walkcover as wc
>>> a = wc.assess("helsinki-sample", district="sample-sw")    # doctest: +SKIP
>>> a.summary                       # one row per district × standard
>>> a.gaps("toilet")                # where residents are farther than the plan allows
>>> a.map("toilet")                 # the interactive map (inline in Jupyter, offline too)
>>> print(a.explain("toilet"))      # how the figures were made
>>> a.site("toilet", k=3)           # where three new toilets would cover the most residents
>>> a.save("out")                   # GeoPackages, CSVs and maps, as `walkcover run` writes them

The command line is a thin layer over these functions: `study` resolves what to measure (city,
districts, standards, source), `measure` measures it, `assess` does both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import geopandas as gpd
import pandas as pd

from walkcover._atomic import check_writable_folder
from walkcover._errors import DistrictNotFoundError, WalkcoverError
from walkcover._gc import collector_paused
from walkcover._lock import output_lock
from walkcover._malloc import tune_malloc
from walkcover._paths import cache_dir as default_cache_dir
from walkcover.assessment import Assessment, Note, assess_layers, study_query
from walkcover.config.standards import Standard, StandardSet, load_standards
from walkcover.config.study_area import (
    City,
    load_city,
    replace_boundaries,
    resolve_districts,
    working_crs,
)
from walkcover.sources import SourceKind, load_osm, source_spec
from walkcover.sources.extent import check_source_covers

if TYPE_CHECKING:
    import folium

    from walkcover.presentation.outputs import RunFiles
    from walkcover.scenario import MultiScenario, Scenario
    from walkcover.siting import DistrictSiting, Proposal

__all__ = ["Results", "Study", "assess", "measure", "report", "study"]


@dataclass(frozen=True)
class Study:
    """What a run measures, resolved and checked before anything is read or computed.

    ``boundary_changes`` compares each district's area with the bundled one when planners'
    boundaries replaced them (None otherwise).
    """

    city: City
    districts: gpd.GeoDataFrame
    rules: StandardSet
    standards: list[Standard]
    source_kind: SourceKind
    source: str | None
    population_raster: Path | None
    cache_dir: Path | None
    boundary_changes: pd.DataFrame | None = None


def study(
    city: str | Path | City,
    *,
    district: str = "all",
    standard: str | Sequence[str] = "all",
    standards: str | Path | None = None,
    source: str | Path | None = None,
    population_raster: str | Path | None = None,
    boundaries: str | Path | None = None,
    name_field: str | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> Study:
    """Resolve what to measure; every name is checked and refused with the valid choices.

    Parameters
    ----------
    city
        A bundled city (``zhengzhou``, ``helsinki-sample``), a city YAML file, or a loaded `City`.
    district
        A district's Chinese or English name, code or slug, or ``all``.
    standard
        A standard id, several (a list or ``"toilet,park"``), or ``all``.
    standards
        A standards YAML file (default: the bundled Zhengzhou 2018 plan).
    source
        A local ``.osm.pbf`` or ``.osm`` file; default: the city config's source.
    population_raster
        A population GeoTIFF (any CRS) to allocate residents from.
    boundaries, name_field
        Planners' own district polygons (any vector file, any CRS) and the field naming each.
    cache, cache_dir
        Reuse parsed OSM data (on by default; ``cache_dir`` defaults to ``~/.cache/walkcover``).
    """
    the_city, chosen, changes = _districts(city, district, boundaries, name_field)
    rules = load_standards(standards)
    if isinstance(standard, str):
        wanted: str | list[str] = (
            "all" if standard == "all" else [s.strip() for s in standard.split(",") if s.strip()]
        )
    else:
        wanted = list(standard)
    kind, path = source_spec(Path(source) if source is not None else None, the_city.config.source)
    folder = None
    if cache:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return Study(
        city=the_city,
        districts=chosen,
        rules=rules,
        standards=rules.select(wanted),
        source_kind=kind,
        source=path,
        population_raster=Path(population_raster) if population_raster is not None else None,
        cache_dir=folder,
        boundary_changes=changes,
    )


def _districts(
    city: str | Path | City,
    district: str,
    boundaries: str | Path | None,
    name_field: str | None,
) -> tuple[City, gpd.GeoDataFrame, pd.DataFrame | None]:
    """The city (with planners' boundaries, if given), the districts chosen, and what the
    boundaries changed."""
    the_city = city if isinstance(city, City) else load_city(city)
    changes = None
    if boundaries is not None:
        if name_field is None:
            raise WalkcoverError(
                "boundaries need a name_field (--name-field): the field holding each district's "
                "name or code"
            )
        the_city, changes = replace_boundaries(the_city, boundaries, name_field=name_field)
    return the_city, resolve_districts(the_city, district), changes


def report(
    city: str | Path | City,
    out: str | Path,
    *,
    district: str = "all",
    boundaries: str | Path | None = None,
    name_field: str | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunFiles:
    """Write reports from what ``walkcover run`` (and ``site``) wrote into `out`, measuring
    nothing again: per district ``report.html``, ``report.pdf`` and ``maps/``; with every district,
    the city's ``index.html``. The run's own files are left untouched.

    Parameters
    ----------
    city
        The city of the run (as for `study`).
    out
        The folder `run` wrote to.
    district
        Districts to report (as for `study`).
    boundaries, name_field
        The planners' boundaries the run was made with, if any.
    overwrite
        Replace existing reports (refused otherwise, before anything is read).
    progress
        Called with a line as each district's report and the city page are begun.

    Raises
    ------
    OutputExistsError
        Reports exist and `overwrite` is off.
    walkcover.presentation.record.RunRecordError
        A chosen district has no complete run outputs in `out`.
    """
    import walkcover.presentation.report  # noqa: F401 - fails early, with the install command, without the extra
    from walkcover.presentation.outputs import check_outputs, district_dir, write_report_sets

    the_city, chosen, _ = _districts(city, district, boundaries, name_field)
    out = check_writable_folder(Path(out), option="out (--out)")
    every = len(chosen) == len(the_city.districts)
    with output_lock(out, command="report"):
        paths = [district_dir(out, the_city.id, s) / "report.pdf" for s in chosen["slug"]]
        if every:
            paths.append(Path(out) / the_city.id / "index.html")
        check_outputs(paths, overwrite=overwrite)
        return write_report_sets(the_city, chosen, out, city_pages=every, progress=progress)


def measure(plan: Study, *, progress: Callable[[str], None] | None = None) -> Results:
    """Read the OSM data `plan` names and measure its standards for its districts.

    Parameters
    ----------
    plan
        From `study`.
    progress
        Called with a short label as each step starts.
    """
    if plan.cache_dir is not None:
        check_writable_folder(plan.cache_dir, option="cache_dir (--cache-dir)")
    tune_malloc()  # before the run's threads start: they share what each frees
    with collector_paused():  # millions of tag dicts and geometries: 10% of a city's run
        return _measure(plan, progress=progress)


def _measure(plan: Study, *, progress: Callable[[str], None] | None) -> Results:
    step = progress or (lambda _label: None)
    # the wrong city's file: said before it is read (a warning per district it misses, an error
    # when it misses them all), from the extent its header declares
    check_source_covers(plan.source_kind, plan.source, plan.districts)
    step("reading OSM data")
    query = study_query(plan.city, plan.districts, plan.rules, plan.standards)
    # Some districts of a city: a PBF file is scanned whole however small the area, so its first
    # read covers the whole city and is cached; the other districts are then cut from the cache.
    # (made only when the districts' own area is not cached: the union of a city's districts,
    # grown, takes 25 ms of a small district's run)
    city = None
    if len(plan.districts) < len(plan.city.districts):
        city = partial(study_query, plan.city, plan.city.districts, plan.rules, plan.standards)
    # the reading itself is passed on: the run then holds the only reference to the layers, and
    # lets the street layer go once its network is built
    read = partial(
        load_osm,
        plan.source_kind,
        plan.source,
        query,
        cache_dir=plan.cache_dir,
        wider=city,
        on_wider=lambda: step("reading OSM data for the whole city, once (then cut per district)"),
        crs=working_crs(plan.city),  # as measured (the EPSG:4326 copies are let go on the way)
        progress=step,  # a province-size file is cut to the study area first, and says so
    )
    assessment = assess_layers(
        plan.city,
        plan.districts,
        plan.rules,
        plan.standards,
        read,
        population_raster=plan.population_raster,
        progress=progress,
        cache_dir=plan.cache_dir,  # the run's snaps kept there too
    )
    return Results(assessment=assessment, study=plan)


def assess(
    city: str | Path | City,
    *,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> Results:
    """Measure a city's standards per district over the walk network.

    Takes the options of `study` (``district``, ``standard``, ``standards``, ``source``,
    ``population_raster``, ``boundaries``, ``name_field``, ``cache``, ``cache_dir``).

    Returns
    -------
    Results
        The figures, and methods to look at, site and save them.

    Examples
    --------
    >>> a = assess("helsinki-sample", district="sample-sw", standard="toilet")  # doctest: +SKIP
    >>> a.summary[["standard", "residents_covered_pct"]]  # doctest: +SKIP
    """
    return measure(study(city, **options), progress=progress)


@dataclass(frozen=True)
class Results:
    """What one run measured (`assessment`), and what it was asked (`study`).

    The frames are those `walkcover run` writes: ``summary`` (district × standard), ``demand`` (one
    row per home, with ``<standard>_dist_m``, ``_covered``, ``_status``), ``facilities``,
    ``district_rows`` (counts and densities); ``notes`` say what a planner must know.
    """

    assessment: Assessment
    study: Study

    @property
    def summary(self) -> pd.DataFrame:
        return self.assessment.summary

    @property
    def demand(self) -> gpd.GeoDataFrame:
        return self.assessment.demand

    @property
    def facilities(self) -> gpd.GeoDataFrame:
        return self.assessment.facilities

    @property
    def district_rows(self) -> pd.DataFrame:
        return self.assessment.district_rows

    @property
    def districts(self) -> gpd.GeoDataFrame:
        return self.assessment.districts

    @property
    def notes(self) -> list[Note]:
        return self.assessment.notes

    def district_id(self, district: str | None = None) -> str:
        """The id of `district` (name, code or slug) among the measured ones; None means the only one.

        Raises
        ------
        DistrictNotFoundError
            A name that matches no measured district, or None when several were measured.
        """
        measured = self.assessment.districts
        if district is None:
            if len(measured) == 1:
                return str(measured["district_id"].iloc[0])
            names = ", ".join(measured["slug"])
            raise DistrictNotFoundError(
                f"this run measured several districts ({names}); say which with district=…"
            )
        city = self.assessment.city.model_copy(update={"districts": measured})
        return str(resolve_districts(city, district)["district_id"].iloc[0])

    def gaps(self, standard: str, district: str | None = None) -> gpd.GeoDataFrame:
        """Gap polygons of `standard`, ranked by residents uncovered, for one district (or all
        measured districts when `district` is None and there are several)."""
        self.assessment.standard(standard)  # refuses a standard not measured
        ids = (
            list(self.assessment.districts["district_id"])
            if district is None and len(self.assessment.districts) > 1
            else [self.district_id(district)]
        )
        frames = [self.assessment.gaps(d, standard).assign(district_id=d) for d in ids]
        return gpd.GeoDataFrame(
            pd.concat(frames, ignore_index=True), geometry="geometry", crs=self.assessment.crs
        )

    def access(self, standard: str, district: str | None = None) -> gpd.GeoDataFrame:
        """Each home's choice and capacity for `standard`, where its standards-file entry asks for
        them (``choice: true``, an ``access`` rule): ``osm_id, district_id, residents``, the
        walk to the nearest facility (``<id>_dist_m``), to the 2nd and 3rd within the threshold
        (``<id>_nearest2_m``, ``<id>_nearest3_m``), how many lie within it (``<id>_n_within``)
        and the E2SFCA capacity per 1,000 residents (``<id>_access``); for one district, or every
        measured one when `district` is None.

        Raises
        ------
        ConfigError
            `standard` asks for neither (the message says what to add to the standards file).
        """
        from walkcover._errors import ConfigError

        std = self.assessment.standard(standard)
        if not std.choice and std.access is None:
            raise ConfigError(
                f"standard {standard!r} measures neither choice nor capacity: add `choice: true` "
                "or an `access:` rule to it in the standards file (see docs/standards.md, "
                "configs/standards/gb50180-2018.yaml has examples)"
            )
        d = self.assessment.demand
        if district is not None:
            d = d[(d["district_id"] == self.district_id(district)).to_numpy()]
        cols = ["osm_id", "district_id", "residents", f"{standard}_dist_m", f"{standard}_status"]
        cols += [
            f"{standard}_{c}"
            for c in ("nearest2_m", "nearest3_m", "n_within", "access")
            if f"{standard}_{c}" in d
        ]
        return gpd.GeoDataFrame(d[[*cols, "geometry"]].reset_index(drop=True), crs=d.crs)

    def life_circles(self, district: str | None = None) -> pd.DataFrame:
        """GB 50180's life circles per district and tier (``--standards gb50180-2018``, or any file
        whose standards name their ``life_circle``): ``district_id, tier_min, required,
        residents, complete_pct, most_missing, most_missing_residents, no_data`` (the required
        standards with no facility in reach of the district in the data: then no figure, NaN). Each home's own
        completeness is in ``demand`` (``life_circle_<t>min_complete``, ``_found``).

        Raises
        ------
        ConfigError
            The run measured no life circle (the message says why and how to).
        """
        from walkcover._errors import ConfigError

        table = self.assessment.life_circles
        if table is None:
            tiers = self.assessment.rules.life_circle_tiers()
            raise ConfigError(
                "this run measured no life circle: "
                + (
                    "it left out part of each tier's standards (run them all: standard='all')"
                    if tiers
                    else f"the standards file {self.assessment.rules.id!r} has none; use "
                    "standards='gb50180-2018'"
                )
            )
        if district is not None:
            table = table[(table["district_id"] == self.district_id(district)).to_numpy()]
        return table.reset_index(drop=True)

    def map(
        self, standard: str | None = None, district: str | None = None, *, tiles: str | None = None
    ) -> folium.Map:
        """The interactive map of one district (or, with several measured and no `district`, the
        city map), showing `standard` first. Shows inline in Jupyter, offline too."""
        from walkcover.presentation.city_map import city_map
        from walkcover.presentation.maps import district_map

        if standard is not None:
            self.assessment.standard(standard)
        if district is None and len(self.assessment.districts) > 1:
            return city_map(self.assessment, tiles=tiles, show=standard)
        return district_map(self.assessment, self.district_id(district), tiles=tiles, show=standard)

    def explain(self, standard: str, district: str | None = None) -> str:
        """How the figures of `standard` in one district were made, in words a planner can check."""
        from walkcover.presentation.explanation import explanation

        self.assessment.standard(standard)
        return explanation(self.assessment, self.district_id(district), standard)

    def site(
        self,
        standard: str,
        *,
        k: int | None = None,
        target_pct: float | None = None,
        district: str | None = None,
        plots: str | Path | None = None,
        time_limit_s: float | None = None,
    ) -> list[DistrictSiting]:
        """Where new facilities close the most gap: the best `k` sites, or the fewest reaching
        `target_pct`, per district (all measured ones unless `district` is given). Each answer has
        its ``sites`` layer (rank, residents newly covered, cumulative coverage)."""
        from walkcover.siting import site_districts

        target = self.assessment
        if district is not None:
            did = self.district_id(district)
            target = _only_district(self.assessment, did)
        return site_districts(
            target, standard, k=k, target_pct=target_pct, time_limit_s=time_limit_s, plots=plots
        )

    @overload
    def scenario(
        self,
        standard: list[str] | tuple[str, ...],
        *,
        district: str | None = None,
        name: str = "scenario",
    ) -> MultiScenario: ...

    @overload
    def scenario(
        self, standard: str, *, district: str | None = None, name: str = "scenario"
    ) -> Scenario | MultiScenario: ...

    def scenario(
        self,
        standard: str | list[str] | tuple[str, ...],
        *,
        district: str | None = None,
        name: str = "scenario",
    ) -> Scenario | MultiScenario:
        """A live "what if we build it here?" scenario for one district: add, move and remove
        sites (existing facilities too) and read the figures, each edit measured incrementally
        and equal to a full run with that facility set.

        One standard id (``"toilet"``) gives a `walkcover.scenario.Scenario`; a list
        (``["clinic", "fitness"]``) or a comma-separated string (``"clinic,fitness"``) gives a
        `walkcover.scenario.MultiScenario`, whose sites serve every standard named (duplicates
        dropped), each measured as its own single-standard scenario.

        Raises
        ------
        walkcover.scenario.ScenarioError
            A standard the run did not measure (named, with those it did), an empty list, or a
            name that is not text.
        DistrictNotFoundError
            A district that matches none measured, or none given when several were.
        """
        from walkcover.scenario import scenario, standard_list

        did = self.district_id(district)
        if isinstance(standard, str) and "," in standard:
            standard = standard_list(self.assessment, standard)  # several, checked
        return scenario(self.assessment, standard, district_id=did, name=name)

    def load_scenario(self, path: str | Path) -> Scenario | MultiScenario:
        """A scenario saved with `Scenario.save` (a `Scenario`) or `MultiScenario.save` (a
        `MultiScenario`), its edits replayed on this run."""
        from walkcover.scenario import load_scenario

        return load_scenario(Path(path), self.assessment)

    def save(
        self,
        out: str | Path,
        *,
        overwrite: bool = False,
        maps: bool = True,
        bom: bool = True,
        tiles: str | None = None,
    ) -> RunFiles:
        """Write what `walkcover run` writes into `out`, holding the folder's lock; each district's
        folder is replaced as one set (see `walkcover.presentation.outputs.write_run`)."""
        from walkcover.presentation.outputs import check_outputs, planned_outputs, write_run

        out = check_writable_folder(Path(out), option="out (--out)")
        if maps and tiles is not None:
            from walkcover.presentation.web_map import check_tiles  # folium: only for maps

            check_tiles(tiles)
        a = self.assessment
        with output_lock(out, command="save"):
            slugs = list(a.districts["slug"])
            check_outputs(planned_outputs(out, a.city.id, slugs), overwrite=overwrite)
            return write_run(
                a,
                out,
                overwrite=overwrite,
                bom=bom,
                maps=maps,
                tiles=tiles,
                proposals=earlier_proposals(a, out, overwrite=overwrite),
            )

    def save_sites(
        self, sitings: list[DistrictSiting], out: str | Path, *, overwrite: bool = False
    ) -> list[Path]:
        """Add proposed sites (from `site`) to each district's ``coverage.gpkg`` and
        ``proposed_sites.csv`` in `out`, holding the folder's lock."""
        from walkcover.presentation.outputs import merged_proposed_sites, write_proposed_sites
        from walkcover.siting import proposal

        out = check_writable_folder(Path(out), option="out (--out)")
        a = self.assessment
        rows = a.districts.set_index("district_id", drop=False)
        written: list[Path] = []
        with output_lock(out, command="site"):
            for s in sitings:
                if s.sites is not None:
                    row = rows.loc[s.district_id]
                    sites = merged_proposed_sites(a, row, s.sites, out, overwrite=overwrite)
                    # the homes' walks after the sites, measured here: the writer only draws them
                    walks = proposal(a, s.district_id, sites)
                    written += write_proposed_sites(a, row, walks, out)
        return written

    def export_scenario(
        self, sc: Scenario | MultiScenario, out: str | Path, *, overwrite: bool = False
    ) -> list[Path]:
        """Write a scenario's sites as its district's proposed sites in `out`, as `walkcover
        site` writes them (`save_sites`: ``proposed_sites`` layer of ``coverage.gpkg``, each
        home's walk after them, ``proposed_sites.csv``, the map): `walkcover report` then prints
        the district's before/after pages, the after figure the scenario's. The sites keep their
        names (``name``; ``scenario``: the scenario's); sites of other standards stay. Where
        `out` holds no run of the city yet, this run is written first (`save`, as `walkcover
        run` with the same options would write it), so that the report has its before.

        A `walkcover.scenario.MultiScenario` writes its sites once per standard (each
        standard's rows of the layer, ranked from 1, its after figure that standard's), all in
        one write of the district's files.

        Raises
        ------
        ScenarioError
            `sc` was made on another run, has no site, or closes existing facilities (the
            before/after pages know only sites added; the message names them and the fix).
        OutputExistsError
            The district's outputs hold proposed sites of the standard (of any of a
            multi-standard scenario's, all named) and `overwrite` is off.
        OutputFolderError
            `out` holds a run of the city, but not of the scenario's district (the message says
            the `walkcover run` to make first); or the district's run there was measured with
            other standards (a standard of both runs whose rules differ, its thresholds named:
            the files would mix two standards files' figures).
        walkcover.presentation.record.RunRecordError
            The district's ``run.json`` there cannot be read.
        """
        from walkcover._errors import OutputExistsError, OutputFolderError
        from walkcover.presentation.outputs import (
            district_dir,
            merged_proposed_sites,
            planned_outputs,
            read_proposed,
            write_proposed_sites,
        )
        from walkcover.presentation.record import load_record
        from walkcover.scenario import MultiScenario, ScenarioError
        from walkcover.siting import DistrictSiting, proposal

        if sc.assessment is not self.assessment:
            raise ScenarioError(
                f"scenario {sc.name!r} was made on another run; export it with the Results it "
                "was made from (results.scenario(...) or results.load_scenario(...))"
            )
        sites = sc.proposed_sites()  # refusals first: nothing is written then
        a = self.assessment
        row = a.districts.set_index("district_id", drop=False).loc[sc.district_id]
        slug = str(row["slug"])
        record_path = district_dir(Path(out), a.city.id, slug) / "run.json"
        if record_path.exists() or record_path.is_symlink():
            # the district's run there must rest on the same standards: its files would
            # otherwise hold this run's figures beside the city's tables of the other
            recorded = {
                str(d.get("id")): Standard.model_validate(d)
                for d in load_record(record_path).standards
            }
            this_run = {s.id: s for s in a.standards}
            differ = [sid for sid in this_run if sid in recorded and recorded[sid] != this_run[sid]]
            if differ:

                def rules(sid: str) -> str:
                    from walkcover.presentation.figures import metres_text

                    def radii(s: Standard) -> str:
                        by_context = ", ".join(
                            f"{k} {metres_text(v)}"
                            for k, v in sorted(s.context_thresholds_m.items())
                        )
                        return metres_text(s.threshold_m) + (
                            f" ({by_context})" if by_context else ""
                        )

                    there, here = recorded[sid], this_run[sid]
                    d1, d2 = there.model_dump(mode="json"), here.model_dump(mode="json")
                    fields = [k for k in d2 if d1.get(k) != d2[k]]
                    return (
                        f"{sid} at {radii(there)} there, {radii(here)} in this run "
                        f"(differing: {', '.join(fields[:6])})"
                    )

                shown = "; ".join(rules(sid) for sid in differ[:5])
                raise OutputFolderError(
                    f"{record_path} holds a run measured with other standards than this run's "
                    f"(standards file {a.rules.id!r}): {shown}"
                    f"{' (and others)' if len(differ) > 5 else ''}. Exporting would mix the two "
                    f"in district {slug}'s files: run `walkcover run --city {a.city.id} "
                    f"--district {slug} --standards {a.rules.id} --out <another folder>` and "
                    "export there, or make this run with the same --standards as the run in "
                    f"{out}"
                )
        if not (district_dir(Path(out), a.city.id, slug) / "coverage.gpkg").exists():
            if any(p.exists() for p in planned_outputs(Path(out), a.city.id, [slug])):
                raise OutputFolderError(
                    f"{out} holds a run of {a.city.id} without district {slug}: run `walkcover "
                    f"run --city {a.city.id} --district {slug} --out {out} --overwrite` (with the "
                    "options of this run), then export the scenario again"
                )
            self.save(out)  # no run there yet: this one, as `walkcover run` writes it
        if isinstance(sc, MultiScenario):
            # every standard's sites in one write of the district's files; refused, naming
            # every standard that has sites there, before anything is written
            ours = sc.standard_ids
            out = check_writable_folder(Path(out), option="out (--out)")
            with output_lock(out, command="site"):
                old = read_proposed(out, a.city.id, slug)
                there = [] if old is None else [s for s in ours if (old["standard"] == s).any()]
                if there and not overwrite:
                    raise OutputExistsError(
                        f"{district_dir(out, a.city.id, slug) / 'coverage.gpkg'} already holds "
                        f"proposed sites for {', '.join(there)}; pass overwrite=True to replace "
                        "them"
                    )
                first = sites[(sites["standard"] == ours[0]).to_numpy()]
                kept = merged_proposed_sites(a, row, first, out, overwrite=True)
                kept = kept[~kept["standard"].isin(ours).to_numpy()]
                merged = gpd.GeoDataFrame(
                    pd.concat([kept.to_crs(sites.crs), sites], ignore_index=True),
                    geometry="geometry",
                    crs=sites.crs,
                )
                return write_proposed_sites(a, row, proposal(a, sc.district_id, merged), out)
        summary = a.summary[
            (a.summary["district_id"].astype(str) == sc.district_id).to_numpy()
            & (a.summary["standard"] == sc.standard.id).to_numpy()
        ]
        answer = DistrictSiting(
            district_id=sc.district_id,
            name=str(row["name"]),
            slug=slug,
            before_pct=float(summary["residents_covered_pct"].iloc[0]),
            after_pct=float(sites["cumulative_coverage_pct"].iloc[-1]),
            sites=sites,
            how="scenario",
            mip_gap=float("nan"),
        )
        return self.save_sites([answer], out, overwrite=overwrite)

    def _repr_html_(self) -> str:
        """The summary in a notebook, every figure as the other outputs write it
        (`walkcover.presentation.figures`): percentages and targets at one decimal, "no data"
        where a standard has no facility in reach (never 0%), each distance of a rule by street
        context (the toilets: ``300/500/800``)."""
        from walkcover.presentation.figures import (
            distance_text,
            meets_text,
            pct_text,
            target_text,
            value_text,
        )

        rows = self.summary
        by_id = {s.id: s for s in self.assessment.standards}
        reason = rows["no_data_reason"].fillna("").astype(str).str.strip()
        reach = pd.to_numeric(rows["facilities_in_reach"], errors="coerce")
        none = ((reason != "") | (reach == 0)).tolist()
        table = pd.DataFrame(
            {
                "district": rows["district"].astype(str).tolist(),
                "standard": rows["standard"].astype(str).tolist(),
                "threshold_m": [
                    distance_text(by_id[s]).removesuffix(" m")
                    if s in by_id
                    else value_text(t, unit="count")
                    for s, t in zip(rows["standard"].astype(str), rows["threshold_m"])
                ],
                **{
                    col: [pct_text(v, no_data=n) for v, n in zip(rows[col], none)]
                    for col in ("residents_covered_pct", "area_covered_euclid_pct")
                },
                "target_pct": [target_text(v) for v in rows["target_pct"]],
                "meets_target": [
                    meets_text(None if pd.isna(m) else bool(m), no_data=n)
                    for m, n in zip(rows["meets_target"], none)
                ],
            }
        )
        return str(table.to_html(index=False, escape=True))


def earlier_proposals(assessment: Assessment, out: Path, *, overwrite: bool) -> dict[str, Proposal]:
    """The sites an earlier ``walkcover site`` proposed in `out` for the assessment's districts,
    with each home's walk after them measured on this assessment (`walkcover.siting.proposal`), by
    district id: a new run keeps them. A damaged ``coverage.gpkg`` is, with `overwrite` (it is
    replaced), named in a warning and its proposals dropped; without, a `RunRecordError`."""
    from walkcover.presentation.outputs import read_proposed
    from walkcover.siting import proposal

    found: dict[str, Proposal] = {}
    for did, slug in zip(assessment.districts["district_id"], assessment.districts["slug"]):
        sites = read_proposed(
            Path(out), assessment.city.id, slug, damaged="drop" if overwrite else "raise"
        )
        if sites is not None and len(sites):
            found[str(did)] = proposal(assessment, str(did), sites)
    return found


def _only_district(assessment: Assessment, district_id: str) -> Assessment:
    """The assessment with only one of its districts listed (figures unchanged)."""
    from dataclasses import replace

    keep = assessment.districts["district_id"] == district_id
    return replace(assessment, districts=assessment.districts[keep.to_numpy()])
