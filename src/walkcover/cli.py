"""The ``walkcover`` command line: parse, call the library, write, print."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import logging
import os
import re
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from walkcover._atomic import check_writable_folder, missing_folders, remove_empty_folders
from walkcover._errors import (
    ConfigError,
    DistrictNotFoundError,
    RunIncompleteError,
    WalkcoverError,
)
from walkcover._escape import terminal
from walkcover._lock import output_lock
from walkcover._paths import bundle_root
from walkcover._paths import cache_dir as default_cache_dir
from walkcover._version import __version__
from walkcover.presentation.figures import (
    EMPTY,
    NO_DATA,
    count_text,
    distance_text,
    meets_text,
    pct_text,
    setting_text,
    target_text,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from walkcover.api import Results, Study
    from walkcover.assessment import Assessment
    from walkcover.config.study_area import City
    from walkcover.siting import DistrictSiting

app = typer.Typer(
    help="Measure a city's walking-distance service standards per district over OpenStreetMap.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Markup off: a district called "[/b]" or "[north]" is printed as it is, not read as a Rich tag.
# Text from data also goes through `terminal`, which shows control characters instead of obeying them.
out_console = Console(markup=False)
err_console = Console(stderr=True, markup=False)
_state = {"verbose": 0, "quiet": 0}
log = logging.getLogger("walkcover.cli")
#: The options of the command being run, as parsed (`_guarded` fills it).
_given: dict[str, Any] = {}
F = TypeVar("F", bound=Callable[..., Any])


#: Loggers of the libraries walkcover runs on: they pass only warnings unless ``-v`` is given
#: (several set their own level when imported, e.g. ``distributed``, so the root's is not enough).
LIBRARY_LOGGERS = (
    "asyncio",
    "dask",
    "distributed",
    "filelock",
    "fiona",
    "fontTools",
    "fsspec",
    "h5py",
    "matplotlib",
    "numba",
    "numexpr",
    "osmium",
    "osmnx",
    "PIL",
    "pyogrio",
    "pyproj",
    "pyrosm",
    "rasterio",
    "shapely",
    "tornado",
    "urllib3",
    "weasyprint",
)


def log_levels(*, verbose: int, quiet: bool) -> tuple[int, int]:
    """The levels of walkcover's own loggers and of every other library, for ``-v`` counted
    `verbose` times (or ``-q``).

    ==========  ==========  ==========
    flags       walkcover   libraries
    ==========  ==========  ==========
    ``-q``      ERROR       ERROR
    (none)      WARNING     WARNING
    ``-v``      INFO        INFO
    ``-vv``     DEBUG       INFO
    ``-vvv``    DEBUG       DEBUG
    ==========  ==========  ==========

    Returns
    -------
    tuple of int
        ``(walkcover_level, library_level)``.
    """
    if quiet:
        return logging.ERROR, logging.ERROR
    ours = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    libraries = (logging.WARNING, logging.INFO, logging.INFO, logging.DEBUG)[min(verbose, 3)]
    return ours, libraries


class _TerminalLogHandler(logging.Handler):
    """Log records as one line each on stderr (the console of the moment, so a test runner's
    capture sees them), with control characters made visible (`walkcover._escape.terminal`)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err_console.print(terminal(self.format(record)), soft_wrap=True, highlight=False)
        except Exception:  # a log line must never end a run
            self.handleError(record)


_log_handler = _TerminalLogHandler()
_log_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def _configure_logging(ctx: typer.Context, *, verbose: int, quiet: bool) -> None:
    """Set the levels of `log_levels` and print log records through `_log_handler`, until the
    command ends (then the previous levels come back: a test runner calling the app many times in
    one process, or a notebook, is left as it was)."""
    ours, libraries = log_levels(verbose=verbose, quiet=quiet)
    root = logging.getLogger()
    loggers = [root, logging.getLogger("walkcover"), *map(logging.getLogger, LIBRARY_LOGGERS)]
    before = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(ours if logger.name == "walkcover" else libraries)
    added = _log_handler not in root.handlers
    if added:
        root.addHandler(_log_handler)
    # GDAL prints its own errors (SQL statements of several KB when a disk fills up) before
    # walkcover says what failed in one line: they go to the null device unless -v (or the user's
    # own CPL_LOG) asks for them. GDAL opens its log at its first error, once per process.
    quiet_gdal = not verbose and "CPL_LOG" not in os.environ
    if quiet_gdal:
        os.environ["CPL_LOG"] = os.devnull

    def restore() -> None:
        for logger, level in before:
            logger.setLevel(level)
        if added:
            root.removeHandler(_log_handler)
        if quiet_gdal:
            os.environ.pop("CPL_LOG", None)

    ctx.call_on_close(restore)


def _print_version(value: bool) -> None:
    if value:
        out_console.print(f"walkcover {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="More log output: -v walkcover's and the libraries' INFO, -vv walkcover's DEBUG, "
            "-vvv the libraries' DEBUG too.",
        ),
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print walkcover's version and exit.",
        ),
    ] = False,
) -> None:
    """walkcover: where people cannot reach the services their city promised them."""
    _state["verbose"] = verbose
    _state["quiet"] = int(quiet)
    out_console.quiet = quiet  # -q: nothing but errors (they go to stderr)
    _configure_logging(ctx, verbose=verbose, quiet=quiet)
    _check_tmpdir()


def _check_tmpdir() -> None:
    """Say so when the user's ``TMPDIR`` cannot be written: Python then puts temporary files
    (the PBF reader's text, half a gigabyte on a city) in another folder, without a word."""
    import tempfile

    given = os.environ.get("TMPDIR")
    if not given:
        return
    used = tempfile.gettempdir()
    if os.path.realpath(used) != os.path.realpath(given):
        log.warning(
            "TMPDIR %r cannot be written (full, read-only or missing): temporary files go to %r "
            "instead",
            given,
            used,
        )


def entry() -> None:
    """The ``walkcover`` console script: `app`, with ``SIGTERM`` turned into an orderly exit so that
    staging folders and temporary files are removed (a ``SIGKILL`` leaves them for the next run's
    lock holder to clean, see `walkcover._atomic.recover`)."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    app(args=hoist_global_flags(sys.argv[1:]), prog_name="walkcover")


#: Options of the ``walkcover`` group that people also type after the command (``run … -q``).
GLOBAL_FLAGS = ("-q", "--quiet", "-v", "-vv", "-vvv", "--verbose")


def hoist_global_flags(args: list[str]) -> list[str]:
    """`args` with ``-q``/``-v`` given after the command moved before it, where the group reads
    them (``walkcover run --city x -q`` works as ``walkcover -q run --city x``)."""
    flags = [a for a in args if a in GLOBAL_FLAGS]
    return [*flags, *(a for a in args if a not in GLOBAL_FLAGS)]


def _guarded(command: F) -> F:
    """Every failure of a command becomes one line on stderr and exit code 2 (with ``-v``, also
    the traceback); nothing but `typer.Exit` escapes as a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _given.clear()
        _given.update(kwargs)  # what `_fail` looks at to suggest a fix for a mistyped name
        try:
            with warnings.catch_warnings():
                # walkcover's own warnings (a repaired boundary, repeated import rows) are shown
                # every time, as one line each
                warnings.filterwarnings("always", category=UserWarning, module=r"walkcover(\.|$)")
                warnings.showwarning = _show_warning
                return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print(
                "interrupted: finished outputs are complete; nothing half-written was kept"
            )
            raise typer.Exit(code=130) from None
        except Exception as exc:
            _fail(exc)

    return wrapper  # type: ignore[return-value]


def _show_warning(message: Warning | str, *_args: object, **_kwargs: object) -> None:
    err_console.print(
        Text.assemble(("warning: ", "yellow"), terminal(" ".join(str(message).split())))
    )


def _preflight(
    *, out: Path | None = None, cache: Path | None = None, tiles: str | None = None
) -> None:
    """Check the folders and options a command will need, before any computation. A refused
    command leaves no trace: an --out folder made for the check is taken away again."""
    made = missing_folders(out) if out is not None else []
    try:
        if out is not None:
            check_writable_folder(out, option="--out")
        if cache is not None:  # (given with --cache-dir, or the default one)
            check_writable_folder(
                cache,
                option="cache folder",
                fix="choose another with --cache-dir DIR, or pass --no-cache to read the source "
                "without caching it",
            )
        if tiles is not None:
            from walkcover.presentation.web_map import check_tiles

            check_tiles(tiles)
    except BaseException:
        remove_empty_folders(made)
        raise


#: Stands in an option's help for the ids of the bundled standards, filled in when help is shown.
STANDARD_IDS = "{standard_ids}"


@functools.cache
def standard_ids_text() -> str:
    """The ids of the standards walkcover ships (its default standards file), for help texts."""
    from walkcover.config.standards import load_standards

    try:
        rules = load_standards()
    except WalkcoverError as exc:  # a broken install still shows its help
        return terminal(f"(the bundled standards could not be read: {' '.join(str(exc).split())})")
    return terminal(
        f"{', '.join(rules.standards)} (bundled {rules.id}; a --standards file has its own)"
    )


class StandardHelpCommand(typer.core.TyperCommand):
    """A command whose options' help lists the bundled standard ids (read from the standards file
    when the help is shown, not when the command line is imported)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            help_text = getattr(param, "help", None)
            if (
                isinstance(param, typer.core.TyperOption)
                and help_text
                and STANDARD_IDS in help_text
            ):
                param.help = help_text.replace(STANDARD_IDS, standard_ids_text())
        super().format_help(ctx, formatter)


CityOpt = Annotated[str, typer.Option(help="City name (zhengzhou, helsinki-sample) or YAML file.")]
DistrictOpt = Annotated[
    str,
    typer.Option(help="District: Chinese or English name, code, a comma-separated list, or 'all'."),
]
StandardsOpt = Annotated[
    Path | None,
    typer.Option(
        help="A standards YAML file of your own, or a bundled one by name: zhengzhou-2018 "
        "(the default), gb50180-2018 (the national life circles)."
    ),
]
SourceOpt = Annotated[Path | None, typer.Option(help="OSM data: .osm.pbf or .osm file.")]
RasterOpt = Annotated[
    Path | None,
    typer.Option(help="Population GeoTIFF (any CRS, e.g. WorldPop) to allocate residents."),
]
CacheOpt = Annotated[Path | None, typer.Option(help="Cache folder for parsed OSM data.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the cache.")]
BoundariesOpt = Annotated[
    Path | None, typer.Option(help="Your own district boundaries (any vector file, any CRS).")
]
NameFieldOpt = Annotated[
    str | None, typer.Option(help="Field of --boundaries holding each district's name or code.")
]
BomOpt = Annotated[
    bool,
    typer.Option(
        "--bom/--no-bom",
        help="CSV as UTF-8 with a BOM, so Excel opens Chinese text right (default); --no-bom for scripts.",
    ),
]
TilesOpt = Annotated[
    str | None, typer.Option(help="Add an online base map ('osm'); maps work without it, offline.")
]


def _study(
    city: str,
    district: str,
    standard: str,
    standards: Path | None,
    source: Path | None,
    population_raster: Path | None,
    cache: Path | None,
    *,
    boundaries: Path | None = None,
    name_field: str | None = None,
) -> Study:
    """`walkcover.api.study` of the command line's options (`cache` None: no cache)."""
    from walkcover import api

    return api.study(
        city,
        district=district,
        standard=standard,
        standards=standards,
        source=source,
        population_raster=population_raster,
        boundaries=boundaries,
        name_field=name_field,
        cache=cache is not None,
        cache_dir=cache,
    )


def _assess(
    plan: Study,
    *,
    before: Callable[[City, gpd.GeoDataFrame], None] | None = None,
    also: Callable[[City, gpd.GeoDataFrame], list[str]] | None = None,
    boundaries: Path | None = None,
) -> Results:
    """Show what the `boundaries` changed in the `plan` (`_study`), run `before` (a check that
    must refuse before any computation), add the standards `also` names, then
    `walkcover.api.measure` with a progress bar."""
    from walkcover import api

    if plan.boundary_changes is not None and boundaries is not None:
        table = Table(
            title=terminal(f"Boundaries from {boundaries.name} against the bundled ones"),
            title_justify="left",
        )
        for col in plan.boundary_changes.columns:
            table.add_column(col, overflow="fold")  # wrapped, never cut with "…"
        for r in plan.boundary_changes.itertuples(index=False):
            table.add_row(*["" if v != v else terminal(v) for v in r])
        err_console.print(table)
    if before is not None:
        before(plan.city, plan.districts)
    if also is not None:
        have = [s.id for s in plan.standards]
        more = [s for s in also(plan.city, plan.districts) if s not in have]
        if more:
            wanted = {*have, *more}  # in the standards file's order, as a run lists them
            plan = dataclasses.replace(
                plan, standards=[s for s in plan.rules.select("all") if s.id in wanted]
            )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=bool(_state["quiet"]),
    ) as bar:
        task = bar.add_task("starting", total=4 + len(plan.standards))

        def step(label: str) -> None:
            reading = label.startswith("reading OSM data")  # one step, however it is read
            bar.update(task, description=label, advance=0 if reading else 1)

        return api.measure(plan, progress=step)


@app.command(cls=StandardHelpCommand)
@_guarded
def run(
    city: CityOpt,
    out: Annotated[Path, typer.Option(help="Output folder.")],
    district: DistrictOpt = "all",
    standard: Annotated[
        str, typer.Option(help=f"Standard id, comma-separated ids, or 'all'. Ids: {STANDARD_IDS}.")
    ] = "all",
    standards: StandardsOpt = None,
    source: SourceOpt = None,
    population_raster: RasterOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    maps: Annotated[bool, typer.Option(help="Also write the interactive maps (map.html).")] = True,
    tiles: TilesOpt = None,
    boundaries: BoundariesOpt = None,
    name_field: NameFieldOpt = None,
    bom: BomOpt = True,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Measure coverage per district and standard; write GeoPackages, summary.csv,
    district_indicators.csv and interactive maps."""
    from walkcover.presentation.outputs import check_outputs, planned_outputs

    def refuse_existing(the_city: City, chosen: gpd.GeoDataFrame) -> None:
        check_outputs(planned_outputs(out, the_city.id, list(chosen["slug"])), overwrite=overwrite)

    cache = None if no_cache else (cache_dir or default_cache_dir())
    _preflight(out=out, cache=cache, tiles=tiles if maps else None)
    with output_lock(out, command="run") as repairs:
        _print_repairs(repairs)
        plan = _study(
            city, district, standard, standards, source, population_raster, cache,
            boundaries=boundaries, name_field=name_field,
        )  # fmt: skip
        result = _assess(plan, before=refuse_existing, boundaries=boundaries)
        try:
            files = result.save(out, overwrite=overwrite, bom=bom, maps=maps, tiles=tiles)
        except RunIncompleteError as exc:
            _print_summary(result.assessment, exc.files.written, removed=exc.files.removed)
            raise
    _print_summary(result.assessment, files.written, removed=files.removed)


@app.command(cls=StandardHelpCommand)
@_guarded
def batch(
    region: Annotated[str, typer.Option(help="A bundled region ('henan') or a region YAML file.")],
    source: Annotated[
        Path, typer.Option(help="The .osm.pbf covering the cities, e.g. henan-latest.osm.pbf.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder; results go to OUT/<region>/.")],
    cities: Annotated[
        str, typer.Option(help="City ids or names, comma-separated, or 'all'.")
    ] = "all",
    standard: Annotated[
        str, typer.Option(help=f"Standard id, comma-separated ids, or 'all'. Ids: {STANDARD_IDS}.")
    ] = "all",
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes of a local Dask cluster (default and most: one per core)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Measure cities again even when complete outputs exist.")
    ] = False,
    maps: Annotated[bool, typer.Option(help="Also write the interactive maps (map.html).")] = True,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard",
            help="Run the local cluster's Dask dashboard on 127.0.0.1 and print its address.",
        ),
    ] = False,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Measure every city of a region on Dask, one task per city (cut to the city plus a halo),
    then write the region's summary, map and ranking page. The cities' cuts are made in one pass
    over the source and kept in the cache (on a cluster, give a --cache-dir every worker sees)."""
    from walkcover.batch import STATUS_EMPTY, STATUS_FAILED, run_batch, worker_count

    if workers is not None and scheduler is not None:
        raise WalkcoverError("give --workers (a local cluster) or --scheduler, not both")
    if dashboard and scheduler is not None:
        raise WalkcoverError(
            "--dashboard runs the dashboard of a local cluster; a --scheduler has its own "
            "(its address is printed): leave --dashboard out"
        )
    if workers is not None:
        worker_count(workers)  # 0 or negative: refused before anything is read
    result = run_batch(
        region,
        source=source,
        out=out,
        cities=cities,
        standard=standard,
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        maps=maps,
        progress=lambda line: err_console.print(terminal(line), soft_wrap=True),
        dashboard=dashboard,
        verbose=bool(_state["verbose"]),
        cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        cache=not no_cache,
    )
    for o in result.outcomes:
        if o.status in (STATUS_EMPTY, STATUS_FAILED):
            err_console.print(
                terminal(f"{o.status}: {o.city_id} {o.name}: {o.reason}"), soft_wrap=True
            )
    _print_written(result.files)
    failed = result.failed()
    if failed:
        raise WalkcoverError(
            f"{len(failed)} of {len(result.outcomes)} cities failed ("
            + ", ".join(f"{o.city_id} {o.name}" for o in failed)
            + "); the others are complete; run the same command again to retry only those"
        )


@app.command()
@_guarded
def report(
    city: CityOpt,
    out: Annotated[Path, typer.Option(help="Output folder (the one `run` and `site` wrote to).")],
    district: DistrictOpt = "all",
    boundaries: BoundariesOpt = None,
    name_field: NameFieldOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing reports.")] = False,
    # what `report` took when it measured again; accepted, so that older scripts still run
    source: Annotated[Path | None, typer.Option(hidden=True)] = None,
    standards: Annotated[Path | None, typer.Option(hidden=True)] = None,
    population_raster: Annotated[Path | None, typer.Option(hidden=True)] = None,
    tiles: Annotated[str | None, typer.Option(hidden=True)] = None,
    cache_dir: Annotated[Path | None, typer.Option(hidden=True)] = None,
    no_cache: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Write per district an HTML report and its PDF (summary against targets, a page per standard
    with its map, the ten largest gaps, proposed sites, methods) and a city index page comparing
    districts, from what `run` and `site` wrote: nothing is measured again and their files are
    left as they are."""
    from walkcover import api

    ignored = [
        flag
        for flag, given in (
            ("--source", source),
            ("--standards", standards),
            ("--population-raster", population_raster),
            ("--tiles", tiles),
            ("--cache-dir", cache_dir),
            ("--no-cache", no_cache or None),
        )
        if given is not None
    ]
    if ignored:
        err_console.print(
            f"note: {', '.join(ignored)} ignored: reports are made from what `run` wrote to --out, "
            "without reading OSM data or measuring again"
        )
    _preflight(out=out)
    started = time.monotonic()
    # progress lines begin once every district's run has been read: a run that cannot be read is
    # one error line, as every refusal is
    with output_lock(out, command="report") as repairs:
        _print_repairs(repairs)
        try:
            with (
                err_console.status("writing the reports (HTML, PDF, maps)", spinner="dots")
                if not _state["quiet"]
                else contextlib.nullcontext()
            ):
                files = api.report(
                    city,
                    out,
                    district=district,
                    boundaries=boundaries,
                    name_field=name_field,
                    overwrite=overwrite,
                    progress=_progress_line,
                )
        except RunIncompleteError as exc:
            _print_written(exc.files.written)
            raise
    reports = sum(p.name == "report.pdf" for p in files.written)
    index = any(p.name == "index.html" for p in files.written)
    _progress_line(
        f"report: {reports} district report(s){' and the city page' if index else ''} "
        f"written in {time.monotonic() - started:.0f} s"
    )
    _print_written(files.written)
    if not any(p.name == "index.html" for p in files.written):
        out_console.print(
            "note: the city page (index.html) compares every district; it is left as it is when "
            "only some are reported (--district all rewrites it)"
        )


@app.command(cls=StandardHelpCommand)
@_guarded
def explain(
    city: CityOpt,
    district: Annotated[str, typer.Option(help="District: Chinese or English name or code.")],
    standard: Annotated[str, typer.Option(help=f"Standard id: {STANDARD_IDS}.")],
    standards: StandardsOpt = None,
    source: SourceOpt = None,
    population_raster: RasterOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Print how one district's figures for one standard were made."""
    from walkcover.presentation.explanation import HEADINGS

    one = district.strip().lower() != "all" and not any(c in district for c in ",，、")
    if not one or standard.strip().lower() == "all" or "," in standard:
        raise WalkcoverError("explain takes one district and one standard, not 'all' or a list")
    cache = None if no_cache else (cache_dir or default_cache_dir())
    _preflight(cache=cache)
    try:
        result = _assess(
            _study(city, district, standard, standards, source, population_raster, cache)
        )
    except DistrictNotFoundError as exc:  # explain takes one district: do not suggest 'all'
        raise DistrictNotFoundError(
            f"--district {district!r} matches no single district; explain takes one of: "
            f"{exc.choices}"
        ) from None
    lines = result.explain(standard).splitlines()
    for i, line in enumerate(lines):
        heading = i == 0 or line in HEADINGS
        out_console.print(Text(terminal(line), style="bold" if heading else ""))


@app.command("site", cls=StandardHelpCommand)
@_guarded
def site_command(
    city: CityOpt,
    district: DistrictOpt,
    standard: Annotated[str, typer.Option(help=f"Standard id: {STANDARD_IDS}.")],
    out: Annotated[Path, typer.Option(help="Output folder (the one `run` wrote to).")],
    target: Annotated[
        float | None, typer.Option(help="Fewest new sites reaching this coverage %.")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", help="Best K new sites.")] = None,
    plots: Annotated[
        Path | None, typer.Option(help="Your own candidate plots (any vector file, any CRS).")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option(help="Seconds HiGHS may search (default: city config).")
    ] = None,
    standards: StandardsOpt = None,
    source: SourceOpt = None,
    population_raster: RasterOpt = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier proposal for this standard.")
    ] = False,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Suggest where new facilities close the most gap: fewest sites for --target, or best --k."""
    if (target is None) == (k is None):
        raise WalkcoverError(
            "give exactly one of --target PCT (fewest new sites) or --k K (best K sites)"
        )
    if standard.strip().lower() == "all" or "," in standard:
        raise WalkcoverError("site takes one standard, e.g. --standard toilet")
    if k is not None and k < 1:
        raise WalkcoverError(f"--k {k}: the number of new sites must be at least 1, e.g. --k 3")
    if target is not None and not 0 < target <= 100:  # NaN fails both comparisons
        raise WalkcoverError(
            f"--target {target:g}: give the coverage to reach as a percentage above 0 and at most "
            "100, e.g. --target 95"
        )
    if time_limit is not None and not time_limit > 0:
        raise WalkcoverError(
            f"--time-limit {time_limit:g}: give the seconds HiGHS may search as a positive number, "
            "e.g. --time-limit 60 (or leave it out for the city config's)"
        )
    cache = None if no_cache else (cache_dir or default_cache_dir())
    _preflight(out=out, cache=cache)
    with output_lock(out, command="site") as repairs:
        _print_repairs(repairs)

        def measured_by_run(the_city: City, chosen: gpd.GeoDataFrame) -> list[str]:
            # the district files are written again whole, with every standard the run measured
            from walkcover.presentation.outputs import recorded_standards

            return recorded_standards(out, the_city.id, list(chosen["slug"]))

        plan = _study(city, district, standard, standards, source, population_raster, cache)
        result = _assess(plan, also=measured_by_run)
        sitings = result.site(
            standard, k=k, target_pct=target, plots=plots, time_limit_s=time_limit
        )
        written = result.save_sites(sitings, out, overwrite=overwrite)
    _print_siting(
        result.assessment, standard, sitings, written, target_given=target is not None, k=k
    )
    # reports written before these sites do not show them: said, with the command that does
    stale = sorted(
        {p.parent.name for p in written if (p.parent / "report.pdf").is_file()}
        | {p.parent.name for p in written if (p.parent / "report.html").is_file()}
    )
    if stale:
        out_console.print(
            terminal(
                f"note: the reports of {', '.join(stale)} were written before these sites; "
                f"`walkcover report --city {city} --out {out} --overwrite` adds them"
            )
        )


@app.command(cls=StandardHelpCommand)
@_guarded
def serve(
    city: CityOpt,
    district: DistrictOpt = "all",
    out: Annotated[
        Path, typer.Option(help="Output folder; scenarios are saved in OUT/scenarios/.")
    ] = Path("out"),
    standard: Annotated[
        str, typer.Option(help=f"Standard id, comma-separated ids, or 'all'. Ids: {STANDARD_IDS}.")
    ] = "all",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8765,
    host: Annotated[
        str, typer.Option(help="Address to listen on; other than 127.0.0.1 needs --allow-remote.")
    ] = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option("--allow-remote", help="Let --host be an address other machines can reach."),
    ] = False,
    standards: StandardsOpt = None,
    source: SourceOpt = None,
    population_raster: RasterOpt = None,
    boundaries: BoundariesOpt = None,
    name_field: NameFieldOpt = None,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Serve a local web app to try sites: add, drag and delete them, close facilities, ask for
    suggestions, save and compare scenarios. Prints the URL to open first, then measures."""
    from walkcover.server import check_host
    from walkcover.server import serve as serve_app

    check_host(host, allow_remote=allow_remote)  # refused before anything is read
    cache = None if no_cache else (cache_dir or default_cache_dir())
    _preflight(out=out, cache=cache)
    plan = _study(
        city, district, standard, standards, source, population_raster, cache,
        boundaries=boundaries, name_field=name_field,
    )  # fmt: skip

    def on_url(url: str) -> None:
        # the first line printed, even with -q: without it the app cannot be opened
        sys.stdout.write(terminal(url) + "\n")
        sys.stdout.flush()
        if host.strip() not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(
                terminal(
                    f"warning: listening on {host}: anyone who can reach it and has the link "
                    "can edit and save scenarios; stop it (Ctrl+C) when done"
                ),
                soft_wrap=True,
            )
        _progress_line("measuring; the page shows the progress (Ctrl+C stops the server)")

    serve_app(
        plan,
        out=out,
        host=host,
        port=port,
        allow_remote=allow_remote,
        on_url=on_url,
        progress=_progress_line,
    )


def _print_siting(
    result: Assessment,
    standard: str,
    rows: list[DistrictSiting],
    written: list[Path],
    *,
    target_given: bool,
    k: int | None = None,
) -> None:
    std = next(s for s in result.standards if s.id == standard)
    table = Table(
        title=terminal(
            f"{std.name} {std.name_zh}: new sites (residents within {distance_text(std)})"
        ),
        title_justify="left",
    )
    # two-line headers and text that wraps instead of "…": the table fits 80 columns
    cols = ("district", "before\n%", "after\n%", "new\nsites", "how", "solver's\noptimality\ngap")
    for col in cols:
        text = col in ("district", "how")
        table.add_column(
            col, justify="left" if text else "right", overflow="fold", no_wrap=not text
        )
    total = 0
    fewer = []
    for r in rows:
        total += r.new_sites
        table.add_row(
            terminal(f"{r.name} ({r.slug})"),
            pct_text(r.before_pct),
            pct_text(r.after_pct),
            count_text(r.new_sites),
            terminal(r.how),
            "" if r.mip_gap != r.mip_gap else f"{100 * r.mip_gap:.2f}%",
        )
        if k is not None and r.sites is not None and r.new_sites < k:
            fewer.append(r)
    out_console.print(table)
    for r in fewer:
        why = (
            "they already reach every resident a new site could"
            if r.after_pct == r.after_pct and r.after_pct >= 100 - 1e-9
            else "no other candidate site adds a resident"
        )
        out_console.print(
            terminal(f"{r.name} ({r.slug}): {r.new_sites} site(s), not the {k} asked: {why}")
        )
    if len(rows) > 1:
        how = (
            "needed to reach the target"
            if target_given
            else "proposed (the best k of each district)"
        )
        out_console.print(f"new {standard} sites {how}, all these districts together: {total}")
    if std.plan_new is not None and result.rules.city == result.city.id:
        p = std.plan_new
        out_console.print(
            terminal(f"the plan orders {count_text(p.count)} ({p.scope}; {p.section})")
        )
    _print_written(written)


@app.command("import", cls=StandardHelpCommand)
@_guarded
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV, Excel, GeoJSON, Shapefile or GeoPackage.")],
    city: CityOpt,
    standard: Annotated[
        str, typer.Option(help=f"Standard the facilities belong to: {STANDARD_IDS}.")
    ],
    coords: Annotated[
        str, typer.Option(help="wgs84, gcj02 (Amap, Tencent), bd09 (Baidu) or EPSG:n.")
    ] = "wgs84",
    name_col: Annotated[
        str | None, typer.Option(help="Name column (default: 名称, name, …).")
    ] = None,
    lon_col: Annotated[
        str | None, typer.Option(help="Longitude / x column (default: 经度, lon, lng, x).")
    ] = None,
    lat_col: Annotated[
        str | None, typer.Option(help="Latitude / y column (default: 纬度, lat, y).")
    ] = None,
    capacity_col: Annotated[
        str | None,
        typer.Option(
            help="Capacity column, places or beds (default: 容量, 学位, 床位, capacity, beds, "
            "seats, places; empty cells take the OSM tag or the standard's default)."
        ),
    ] = None,
    source: SourceOpt = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="Text encoding of a CSV (default: detected; UTF-8, GBK or Windows-1252)."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Check the points against OpenStreetMap for a datum shift.")
    ] = True,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier import for this standard.")
    ] = False,
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Import a planner's facility list (Chinese columns 名称/经度/纬度/地址 recognised), converting
    GCJ-02 or BD-09 exactly; refuse it whole when its coordinates look wrong."""
    from walkcover.config.standards import load_standards
    from walkcover.config.study_area import load_city
    from walkcover.measures import facility_files as ff

    try:
        the_city = load_city(city)
        std = load_standards().select([standard])[0]
        points = ff.read_facility_file(
            file,
            coords=coords,
            name_col=name_col,
            lon_col=lon_col,
            lat_col=lat_col,
            capacity_col=capacity_col,
            encoding=encoding,
        )
        if check:
            ff.check_points(
                points,
                the_city,
                std,
                file_name=file.name,
                source=source,
                coords=coords.strip().lower(),
                cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
            )
        path = ff.write_import(points, the_city.id, std.id, overwrite=overwrite)
    except WalkcoverError as exc:
        _fail(exc)
    src = the_city.config.facilities.get(std.id)
    use = src.source if src else "osm"
    out_console.print(
        terminal(
            f"imported {len(points)} {std.id} facilities from {file.name} ({coords}) into {path}"
        )
    )
    if points.attrs.get("encoding") and not encoding:
        out_console.print(
            terminal(
                f"read {file.name} as {points.attrs['encoding']} text (detected); "
                "pass --encoding to choose another"
            )
        )
    if use == "osm":
        out_console.print(
            f"note: the city config takes {std.id} facilities from OSM only; set facilities.{std.id}.source to "
            "files or both in the city config for run to use this import",
        )


@app.command()
@_guarded
def fetch(
    city: CityOpt,
    district: DistrictOpt = "all",
    url: Annotated[
        str | None, typer.Option(help="Extract to download (default: the city config's).")
    ] = None,
    margin_m: Annotated[
        float | None,
        typer.Option(help="Keep this much around the area (default: the largest search distance)."),
    ] = None,
    cache_dir: CacheOpt = None,
) -> None:
    """Download the city's OSM extract (resumable, checksum-verified) and cut the city or one
    district out of it, so later runs read a small file."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from walkcover.assessment import study_margin_m, study_polygon
    from walkcover.config.standards import load_standards
    from walkcover.config.study_area import load_city, resolve_districts, working_crs
    from walkcover.sources.download import download
    from walkcover.sources.extract import cut_pbf

    try:
        the_city = load_city(city)
        chosen = resolve_districts(the_city, district)
        link = url or the_city.config.source.download_url
        if not link:
            raise WalkcoverError(f"{the_city.id}: no download_url in the city config; pass --url")
        cache = cache_dir or default_cache_dir()
        _preflight(cache=cache)
        with Progress(
            TextColumn("downloading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=err_console,
        ) as bar:
            task = bar.add_task("download", total=None)
            path = download(
                link,
                cache / "downloads",
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        if margin_m is None:
            margin_m = study_margin_m(the_city, list(load_standards().standards.values()))
        polygon = study_polygon(chosen, crs=working_crs(the_city), margin_m=margin_m)
        name = "all" if district.strip().lower() == "all" else "+".join(chosen["slug"])
        with err_console.status(f"cutting {the_city.id} ({name}) out of {path.name}"):
            cut = cut_pbf(path, polygon, cache / "extracts" / f"{the_city.id}-{name}.osm.pbf")
    except WalkcoverError as exc:
        _fail(exc)
    out_console.print(terminal(f"downloaded and verified {path}"))
    out_console.print(terminal(f"cut out {cut} ({cut.stat().st_size / 1e6:.1f} MB)"))
    scope = "" if name == "all" else f" --district {','.join(chosen['slug'])}"
    out_console.print(
        terminal(f"next: walkcover run --city {the_city.id}{scope} --source {cut} --out out")
    )


cache_app = typer.Typer(
    help="See, prune and clear the cache of parsed OSM data, snaps, layers and measured standards.",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(help="The cache folder (default: $WALKCOVER_CACHE, else ~/.cache/walkcover)."),
]


def _cache_folder(cache_dir: Path | None) -> tuple[Path, str]:
    """The cache folder a ``walkcover cache`` command manages, and where it comes from."""
    from walkcover._paths import cache_dir_origin

    if cache_dir is not None:
        return cache_dir, "--cache-dir"
    return default_cache_dir(), cache_dir_origin()


@cache_app.command("info")
@_guarded
def cache_info(cache_dir: CacheDirOpt = None) -> None:
    """Where the cache is, its size by kind, and each cached OSM source with its age."""
    from walkcover import cache_folder

    root, origin = _cache_folder(cache_dir)
    found = cache_folder.contents(root)
    out_console.print(Text(terminal(f"cache: {root} (from {origin})")))
    if not found.exists:
        out_console.print("nothing cached there yet: the first run makes it")
        return
    try:
        cache_folder.check_cache_folder(root, what=origin)
    except cache_folder.CacheFolderError as exc:  # shown all the same: `clear` refuses it
        err_console.print(Text.assemble(("warning: ", "yellow"), terminal(str(exc))))
    out_console.print(f"total: {cache_folder.size_text(found.size_bytes)}")
    table = Table(box=None, pad_edge=False)
    for col in ("kind", "items", "size", "what"):
        table.add_column(col, justify="right" if col in ("items", "size") else "left")
    for kind, size in found.kinds.items():
        what = cache_folder.KINDS[kind]
        if size.is_link:
            what += "; a symbolic link, not followed (runs refuse it; clear removes the link)"
        if size.hidden:
            what += f"; {size.hidden} being written or removed"
        if size.foreign:
            what += f"; {len(size.foreign)} other name(s) walkcover does not make (left alone)"
        table.add_row(kind, str(size.items), cache_folder.size_text(size.size_bytes), what)
    out_console.print(table)
    if not found.osm_entries:
        return
    out_console.print("OSM entries, most recently used first:")
    entries = Table(box=None, pad_edge=False)
    for col in ("entry", "kind", "age", "last used", "size"):
        entries.add_column(col, justify="right" if col in ("age", "last used", "size") else "left")
    entries.add_column("source", overflow="fold")
    for e in found.osm_entries:
        source = e.source or "?"
        if e.damage:
            source += f" (damaged: {e.damage}; parsed again when used)"
        entries.add_row(
            e.key[:12],
            terminal(e.source_kind or "?"),
            cache_folder.age_text(e.age_s),
            cache_folder.age_text(e.used_age_s),
            cache_folder.size_text(e.size_bytes),
            Text(terminal(source)),
        )
    out_console.print(entries)


@cache_app.command("prune")
@_guarded
def cache_prune(
    cache_dir: CacheDirOpt = None,
    max_bytes: Annotated[
        str | None,
        typer.Option(
            metavar="SIZE",
            help="Keep the OSM layers and cuts to this size, e.g. 4GiB or 500MB (default 8GiB); "
            "the snaps, layers and standards keep to their own limits.",
        ),
    ] = None,
) -> None:
    """Remove the least recently used items past each store's limit (what a run used lately stays)."""
    from walkcover import cache_folder

    limit = (
        cache_folder.STORE_MAX_BYTES
        if max_bytes is None
        else cache_folder.parse_size(max_bytes, option="--max-bytes")
    )
    root, origin = _cache_folder(cache_dir)
    cache_folder.check_cache_folder(root, what=origin)
    done = cache_folder.prune(root, osm_max_bytes=limit)
    _print_removal(root, done, in_use_s=cache_folder.IN_USE_S, what="pruned")


@cache_app.command("clear")
@_guarded
def cache_clear(
    cache_dir: CacheDirOpt = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KIND",
            help="Clear only this kind: osm, cuts, snaps, layers, standards, downloads, "
            "extracts (repeat it, or separate kinds with commas; default: all).",
        ),
    ] = None,
    in_use_s: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Keep what a run used in the last this many seconds, as it may be reading it "
            "(default 3600); 0 when no walkcover run is running.",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before removing.")] = False,
) -> None:
    """Remove what the cache holds (all of it, or some kinds); runs then read their sources again."""
    from walkcover import cache_folder

    named = [k.strip() for ks in kind or () for k in ks.split(",") if k.strip()]
    if kind and not named:  # (`--kind ""` or `--kind ,`: asked to clear all, it cleared none)
        raise cache_folder.CacheOptionError(
            f"--kind {', '.join(repr(k)[:40] for k in kind)} names no kind of cached item; choose "
            f"from {', '.join(cache_folder.KINDS)}, or leave --kind out to clear them all"
        )
    kinds = None if not kind else cache_folder.check_kinds(named)
    if in_use_s is None:
        in_use_s = cache_folder.IN_USE_S
    cache_folder.check_in_use_s(in_use_s)
    root, origin = _cache_folder(cache_dir)
    cache_folder.check_cache_folder(root, what=origin)
    found = cache_folder.contents(root)
    if not found.exists:
        out_console.print(Text(terminal(f"nothing cached in {root}")))
        return
    chosen = kinds or list(cache_folder.KINDS)
    size = sum(found.kinds[k].size_bytes for k in chosen)
    if not yes:
        typer.confirm(
            terminal(
                f"remove the cached {', '.join(chosen)} ({cache_folder.size_text(size)}) in {root}?"
            ),
            abort=True,
            err=True,
        )
    done = cache_folder.clear(root, kinds=kinds, in_use_s=in_use_s)
    _print_removal(root, done, in_use_s=in_use_s, what="cleared")


def _print_removal(root: Path, done: Any, *, in_use_s: float, what: str) -> None:
    """What `walkcover.cache_folder.clear` or `prune` did (a `Removal`), in a few lines."""
    from walkcover.cache_folder import size_text

    if done.removed:
        parts = [
            f"{k} {n} ({size_text(done.freed_bytes.get(k, 0))})" for k, n in done.removed.items()
        ]
        freed = size_text(sum(done.freed_bytes.values()))
        out_console.print(
            Text(terminal(f"{what} {root}: removed {', '.join(parts)}; {freed} freed"))
        )
    else:
        out_console.print(Text(terminal(f"{what} {root}: nothing to remove")))
    if done.in_use:
        n = sum(done.in_use.values())
        out_console.print(
            f"kept {n} item(s) used in the last {in_use_s:.0f} s: a run may be using them"
            + ("; --in-use-s 0 removes them when no run is" if what == "cleared" else "")
        )
    if done.left_alone:
        shown = ", ".join(p.name for p in done.left_alone[:5])
        more = " …" if len(done.left_alone) > 5 else ""
        out_console.print(
            Text(
                terminal(
                    f"left alone {len(done.left_alone)} name(s) walkcover does not make: "
                    f"{shown}{more}"
                )
            )
        )


def _fail(exc: BaseException) -> NoReturn:
    """Print `exc` as one error line (a config's list of problems keeps one line per problem)."""
    if _state["verbose"]:
        err_console.print(Text("".join(traceback.format_exception(exc)), style="dim"))
    if isinstance(exc, WalkcoverError):
        message = str(exc)
        if isinstance(exc, ConfigError | DistrictNotFoundError) and "did you mean" not in message:
            message += "".join(f"; did you mean {s}?" for s in suggestions(_given))
    elif isinstance(exc, ImportError):
        message = f"{exc}; install what is missing, e.g. pip install -e '.[report]'"
    elif isinstance(exc, MemoryError):
        message = "out of memory; run fewer districts at a time (--district) or on a larger machine"
    elif isinstance(exc, OSError):
        from walkcover.presentation.outputs import failure_reason

        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        message = f"{where}{failure_reason(exc)}"
    else:
        message = (
            f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}; this is a walkcover "
            "bug: run again with -v and report the traceback"
        )
    err_console.print(Text.assemble(("error: ", "bold red"), terminal(message)), soft_wrap=True)
    raise typer.Exit(code=2) from None


def closest(given: str, choices: dict[str, str]) -> str | None:
    """The choice `given` was most likely meant to be (`difflib`'s closest match, case folded), or
    None when nothing is close. `choices` maps each spelling accepted to what to suggest."""
    folded = {k.casefold(): v for k, v in choices.items()}
    hit = difflib.get_close_matches(given.strip().casefold(), list(folded), n=1, cutoff=0.6)
    return folded[hit[0]] if hit else None


def suggestions(options: dict[str, Any]) -> list[str]:
    """The options of a refused command with a mistyped city id, standard id or district name,
    each given again with the closest valid value, e.g. ``--standard toilet``.

    Only names the library refused are looked at (a bundled city that does not exist, a standard
    id the standards file lacks, a district that matches none), so a valid name is never
    "corrected"; nothing is suggested when nothing is close or the choices cannot be read.
    """
    from walkcover.config.standards import load_standards
    from walkcover.config.study_area import load_city, resolve_districts

    found: list[str] = []
    city = options.get("city")
    if isinstance(city, str) and Path(city).suffix not in {".yaml", ".yml"}:
        bundled = sorted(p.stem for p in (bundle_root() / "configs" / "cities").glob("*.yaml"))
        if city not in bundled and (fix := closest(city, {c: c for c in bundled})):
            found.append(f"--city {fix}")
            city = fix
    standard = options.get("standard")
    if isinstance(standard, str) and standard.strip().lower() != "all":
        try:
            rules = load_standards(options.get("standards"))
        except WalkcoverError:
            rules = None
        if rules is not None:
            ids = {i: i for i in rules.standards}
            names = {n: s.id for s in rules.standards.values() for n in (s.name, s.name_zh) if n}
            items = [i.strip() for i in standard.split(",") if i.strip()]
            fixed = [i if i in ids else closest(i, {**names, **ids}) for i in items]
            if any(f != i for f, i in zip(fixed, items, strict=True)) and all(fixed):
                found.append(f"--standard {','.join(f for f in fixed if f)}")
    district = options.get("district")
    if isinstance(district, str) and isinstance(city, str) and options.get("boundaries") is None:
        try:
            the_city = load_city(city)
        except WalkcoverError:
            return found
        d = the_city.districts
        spellings = {
            str(v): str(r.slug)
            for r in d.itertuples()
            for v in (r.name, r.name_en, r.district_id, r.slug)
            if v == v and str(v)
        }
        items = [i.strip() for i in re.split(r"[,，、]", district) if i.strip()]

        def known(item: str) -> bool:
            try:
                resolve_districts(the_city, item)
            except DistrictNotFoundError:
                return False
            return True

        fixed = [i if known(i) else closest(i, spellings) for i in items]
        if items and any(f != i for f, i in zip(fixed, items, strict=True)) and all(fixed):
            found.append(f"--district {','.join(f for f in fixed if f)}")
    return found


def _progress_line(text: str) -> None:
    """One line of progress on stderr (none with ``-q``), its data escaped."""
    if not _state["quiet"]:
        err_console.print(terminal(text), soft_wrap=True, highlight=False)


def _print_repairs(repairs: list[str]) -> None:
    for r in repairs:
        err_console.print(f"note: {terminal(r)}")


def _print_written(paths: list[Path]) -> None:
    for p in paths:
        out_console.print(f"wrote {terminal(p)}", soft_wrap=True)  # paths unbroken, to copy


def _print_summary(
    result: Assessment, written: list[Path], *, removed: list[Path] | None = None
) -> None:
    from walkcover.measures.indicators import group_summary

    city = result.city.config
    sample = (
        " (SAMPLE districts, not administrative units)"
        if result.districts["is_sample"].any()
        else ""
    )
    out_console.print(
        Text.assemble(
            (terminal(f"{city.name} / {city.name_en}"), "bold"),
            f": residents within walking distance{sample}",
        )
    )
    # a rule per street context gives each of its distances (the toilets: 300/500/800)
    within = {s.id: distance_text(s, compact=True).removesuffix(" m") for s in result.standards}
    for district, rows in result.summary.groupby("district", sort=False):
        first = rows.iloc[0]
        table = Table(
            title=terminal(
                f"{first.district_name} / {first.district_name_en} ({district}): "
                f"{count_text(first.demand_units)} demand units, {count_text(first.residents)} residents ({first.demand_model})"
            ),
            title_justify="left",
        )
        # two-line headers: the table fits 80 columns instead of cutting them ("in re…")
        table.add_column("standard", no_wrap=True)
        for col in (
            "within\nm",
            "in\ndistrict",
            "in\nreach",
            "covered\n%",
            "target\n%",
            "un-\nsnapped",
        ):
            # the figure wraps rather than lose its words ("no data · 无数据" on two lines)
            table.add_column(col, justify="right", no_wrap=col != "covered\n%", overflow="fold")
        for r in rows.itertuples():
            if r.facilities_in_reach == 0:
                pct = NO_DATA  # no facility of the standard in reach: no data, never 0%
            elif r.residents_covered_pct != r.residents_covered_pct:
                pct = EMPTY
            else:
                mark = "" if r.meets_target is None else f" {meets_text(r.meets_target)}"
                pct = f"{pct_text(r.residents_covered_pct)}{mark}"
            table.add_row(
                terminal(r.standard),
                within.get(str(r.standard), setting_text(r.threshold_m)),
                count_text(r.facilities),
                count_text(r.facilities_in_reach),
                pct,
                target_text(r.target_pct),
                count_text(r.unsnapped_units),
            )
        out_console.print(table)
    # the groups of districts from the figures in memory, as group_summary.csv has them (never
    # read back from the file this run wrote)
    g = group_summary(result.summary, city.groups) if city.groups else None
    if g is not None and len(g):
        table = Table(title="Groups of districts · 区组", title_justify="left")
        for col in (
            "group",
            "standard",
            "residents",
            "covered\n%",
            "official\n%",
            "target\n%",
        ):
            table.add_column(
                col,
                justify="left" if col in ("group", "standard") else "right",
                no_wrap=col != "group",
                overflow="fold",
            )
        for r in g.itertuples():
            table.add_row(
                terminal(r.group),
                terminal(r.standard),
                count_text(r.residents),
                pct_text(r.residents_covered_pct),
                pct_text(r.area_covered_euclid_pct),
                target_text(r.target_pct),
            )
        out_console.print(table)
    for std in result.standards:
        if std.default_context is not None:
            out_console.print(f"note: {std.id}: {terminal(std.context_applied)}")
    for note in result.notes:
        out_console.print(f"note: {terminal(note)}")
    out_console.print(f"source: {terminal(result.source)}")
    _print_written(written)
    for p in removed or []:
        out_console.print(
            f"removed {terminal(p)} (it described the previous run's figures; "
            "run walkcover report again for new reports)",
            soft_wrap=True,
        )
