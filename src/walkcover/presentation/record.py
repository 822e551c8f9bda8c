"""The record of a run: what ``walkcover run`` (and ``site``) leave in a district folder, read back
so that reports are made from it without measuring again.

A district folder holds ``coverage.gpkg`` (homes with their walks, facilities, gaps, service areas,
proposed sites) and ``run.json``: the standards as measured, the notes, how the numbers were made.
With the city's ``summary.csv`` and ``district_indicators.csv`` that is everything a report shows.
`district_run` builds the same record from an assessment in memory, so the two paths draw the same
pages.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from walkcover._errors import WalkcoverError
from walkcover._escape import csv_unescape_frame
from walkcover._version import __version__
from walkcover.assessment import Assessment, Note
from walkcover.config.standards import Standard
from walkcover.engine.coverage import STATUS_BEYOND_LIMIT, STATUS_COVERED
from walkcover.engine.street_context import context_radii
from walkcover.measures.bands import BAND_NAMES

#: The record's file in each district folder, written with the district's other files as one set.
RECORD_FILE = "run.json"
RECORD_VERSION = 1


class RunRecordError(WalkcoverError, FileNotFoundError):
    """A district's run outputs are missing or unreadable: `report` cannot be made from them."""


# --- the record's schema -------------------------------------------------------------------------
# A run folder is mailed, edited by hand and put back: ``run.json`` is untrusted input. Its size is
# checked before it is read, its nesting while it is parsed, and every field's type and length by
# the schema below. No path, folder name or URL is ever taken from it: a district's folder and the
# links to it come from the city config (`district_dir`), the base map from walkcover's own list.

#: ``run.json`` larger than this is refused before it is read (a city district's record, with its
#: boundary to the centimetre, is well under 1 MB; Zhengzhou's largest county about 0.3 MB).
MAX_RECORD_BYTES = 32 * 1024 * 1024
#: ``run.json`` without its boundary (standards, notes, methods, CRS) is a few tens of kilobytes; one
#: this large is refused before its fields are validated.
MAX_RECORD_TEXT_CHARS = 1_000_000
#: Notes and lines of methods a record may hold, and their characters together: a real district has
#: a few dozen notes; a report of more pages than these make is not one walkcover wrote.
MAX_NOTES = 2_000
MAX_METHODS = 200
MAX_NOTES_CHARS = 200_000
#: A boundary coordinate farther from the origin than this (metres) lies beyond any projected CRS
#: (Gauss-Krüger eastings carry their zone in the millions); a district wider than
#: `MAX_DISTRICT_SPAN_M` is none on Earth.
MAX_COORDINATE_M = 1e8
MAX_DISTRICT_SPAN_M = 2_000_000.0

#: Locked gates a record may list (`Assessment.locked_gates`): a city's mapped gates number in the
#: hundreds or thousands; a list this long is not one walkcover wrote. Each id takes at most
#: `_GATE_ID_CHARS` characters of the file as written (an indented line of up to 19 digits).
MAX_LOCKED_GATES = 100_000
_GATE_ID_CHARS = 24
#: The largest OSM id a record may name (OSM ids are positive 64-bit integers).
MAX_OSM_ID = 2**63 - 1
#: Features left out a record may list, over all its standards (`Assessment.left_out`): a city's
#: features tagged disused or abandoned number in the tens or hundreds. Each id takes at most
#: `_LEFT_OUT_ID_CHARS` characters of the file as written (an indented, quoted
#: ``relation/`` and 19 digits, and its comma).
MAX_LEFT_OUT = 100_000
_LEFT_OUT_ID_CHARS = 40

_Text = Annotated[str, Field(max_length=2_000)]
_Id = Annotated[str, Field(min_length=1, max_length=200)]


def _no_folder(name: str) -> str:
    if name in (".", ".."):
        raise ValueError(f"{name!r} names a folder, not a file")
    return name


def _osm_id_in_range(ref: str) -> str:
    if int(ref.partition("/")[2]) > MAX_OSM_ID:
        raise ValueError(f"its id is larger than any OSM id ({MAX_OSM_ID})")
    return ref


#: A file's name alone: no folder (nor ``.`` or ``..``), no separator, no control character (C0,
#: DEL or C1), never used as a path.
_FileName = Annotated[
    str,
    Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f\x7f-\x9f]+$"),
    AfterValidator(_no_folder),
]
_Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_OsmNodeId = Annotated[int, Field(ge=1, le=MAX_OSM_ID)]
#: An OSM element as walkcover names it: ``node/21``, ``way/302``, ``relation/7`` (ids up to
#: `MAX_OSM_ID`, as the locked gates').
_OsmRef = Annotated[
    str,
    Field(pattern=r"^(node|way|relation)/[1-9][0-9]{0,18}$"),
    AfterValidator(_osm_id_in_range),
]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class _CityRecord(_Part):
    id: _Id
    name: _Text
    name_en: _Text


class _DistrictRecord(_Part):
    district_id: _Id
    slug: _Id
    name: _Text
    name_en: _Text
    is_sample: bool


class _NoteRecord(_Part):
    text: Annotated[str, Field(max_length=20_000)]
    district: _Id | None = None
    standard: _Id | None = None
    kind: Annotated[str, Field(max_length=100)] = ""


class StandardsFileRecord(_Part):
    """Which standards file a run read: the set's own id and document, the file's name (never its
    folder) and the SHA-256 of its bytes (null where the standards were built in memory)."""

    id: _Id
    title: _Text = ""
    document: _Text = ""
    issued: _Text = ""
    file: _FileName | None = None
    bundled: bool = False
    sha256: _Sha256 | None = None


class RunRecord(_Part):
    """The schema of ``run.json`` (version 1); unknown keys are ignored.

    Fields added since version 1 was first written have defaults, so that an older record still
    reads (and an older walkcover ignores them): ``data_date``, ``locked_gates``,
    ``standards_file`` and ``left_out`` (None: the record predates them).
    """

    record_version: Literal[1]
    walkcover: Annotated[str, Field(max_length=100)]
    written: Annotated[str, Field(max_length=100)]
    city: _CityRecord
    district: _DistrictRecord
    crs: Annotated[str, Field(max_length=100_000)]
    boundary_wkt: Annotated[str, Field(max_length=MAX_RECORD_BYTES)] | None = None
    standards: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=200)]
    limits_m: Annotated[dict[_Id, float], Field(max_length=200)]
    notes: Annotated[list[_NoteRecord], Field(max_length=MAX_NOTES)]
    methods: Annotated[
        list[Annotated[str, Field(max_length=20_000)]], Field(max_length=MAX_METHODS)
    ]
    population_model: Annotated[str, Field(max_length=20_000)]
    tiles: Annotated[str, Field(max_length=100)] | None = None
    #: When the OSM data was current (the PBF header's or Overpass answer's timestamp, ISO 8601);
    #: "" unknown, and in records written before it was kept.
    data_date: Annotated[str, Field(max_length=100)] = ""
    #: The OSM node ids of every locked gate that cut a walked path in the study area
    #: (`Assessment.locked_gates`): integers only, at most `MAX_LOCKED_GATES`.
    locked_gates: Annotated[list[_OsmNodeId], Field(max_length=MAX_LOCKED_GATES)] | None = None
    #: The standards file the figures were measured with.
    standards_file: StandardsFileRecord | None = None
    #: Per standard id (one the record measured), the OSM ids of every feature tagged disused or
    #: abandoned that it left out (`Assessment.left_out`): at most `MAX_LEFT_OUT` in all.
    left_out: (
        Annotated[
            dict[_Id, Annotated[list[_OsmRef], Field(max_length=MAX_LEFT_OUT)]],
            Field(max_length=200),
        ]
        | None
    ) = None


def load_record(path: Path) -> RunRecord:
    """Read and validate a district's ``run.json``.

    Raises
    ------
    RunRecordError
        The file is too large, not UTF-8 JSON, nested too deep, not an object, not version 1 (the
        integer: ``true`` and ``1.0`` are not), or breaks the schema (a missing key, a wrong type,
        a string or list too long, notes too long together, a number that is not finite); the
        message names the file, the first problem and the fix.
    """
    path = Path(path)
    fix = "run `walkcover run --overwrite` for this district again"
    if path.is_symlink():
        raise RunRecordError(
            f"{path} is a symbolic link; walkcover reads back only the files it wrote: {fix}"
        )
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise RunRecordError(
                f"{path} is {size:,} bytes, more than a run record can be "
                f"({MAX_RECORD_BYTES:,}); it was not written by walkcover: {fix}"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunRecordError(f"{path} cannot be read ({_reason(exc)}): {fix}") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # CPython's parser refuses nesting deeper than its stack allows
        raise RunRecordError(f"{path} nests too deep to be a run record: {fix}") from None
    except ValueError as exc:
        raise RunRecordError(f"{path} is not valid JSON ({_reason(exc)}): {fix}") from None
    if not isinstance(data, dict):
        raise RunRecordError(
            f"{path} holds a JSON {type(data).__name__}, not the object a run record is: {fix}"
        )
    got = data.get("record_version")
    # exactly the int 1: JSON's ``true`` and ``1.0`` equal 1 in Python, and are not version 1
    if type(got) is not int or got != RECORD_VERSION:
        shown = repr(got) if len(repr(got)) < 40 else repr(got)[:37] + "…"
        raise RunRecordError(
            f"{path} has record_version {shown}; this walkcover reads version {RECORD_VERSION}: "
            f"{fix}"
        )
    boundary_wkt = data.get("boundary_wkt")
    gates = data.get("locked_gates")
    if isinstance(gates, list) and len(gates) > MAX_LOCKED_GATES:  # before anything counts them
        raise RunRecordError(
            f"{path} lists {len(gates):,} locked gates, more than a run record can "
            f"({MAX_LOCKED_GATES:,}); it was not written by walkcover: {fix}"
        )
    left_out = data.get("left_out")
    n_left_out = (
        sum(len(v) for v in left_out.values() if isinstance(v, list))
        if isinstance(left_out, dict)
        else 0
    )
    if n_left_out > MAX_LEFT_OUT:  # before anything reads them
        raise RunRecordError(
            f"{path} lists {n_left_out:,} features left out, more than a run record can "
            f"({MAX_LEFT_OUT:,}); it was not written by walkcover: {fix}"
        )
    rest = len(text) - (len(boundary_wkt) if isinstance(boundary_wkt, str) else 0)
    # the gates' and left-out features' ids are counted apart, at the most each takes as written
    rest -= _GATE_ID_CHARS * len(gates) if isinstance(gates, list) else 0
    rest -= _LEFT_OUT_ID_CHARS * n_left_out
    if rest > MAX_RECORD_TEXT_CHARS:
        raise RunRecordError(
            f"{path} holds {rest:,} characters besides its boundary, more than a run record can "
            f"({MAX_RECORD_TEXT_CHARS:,}); it was not written by walkcover: {fix}"
        )
    try:
        record = RunRecord.model_validate(data)
        chars = sum(len(n.text) for n in record.notes) + sum(len(m) for m in record.methods)
        if chars > MAX_NOTES_CHARS:
            raise ValueError(
                f"notes and methods hold {chars:,} characters, more than a report shows "
                f"({MAX_NOTES_CHARS:,})"
            )
        for i, std in enumerate(record.standards):
            try:
                Standard.model_validate(std)
            except ValidationError as exc:
                raise ValueError(f"standards.{i}: {_first_problem(exc)}") from None
        bad = [k for k, v in record.limits_m.items() if not (math.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(f"limits_m.{bad[0]} must be a positive finite distance in metres")
        measured = {s.get("id") for s in record.standards}
        stray = [k for k in record.left_out or {} if k not in measured]
        if stray:
            raise ValueError(f"left_out.{stray[0]} is no standard the record measured")
    except (ValidationError, ValueError) as exc:
        raise RunRecordError(
            f"{path} does not hold a run record ({_first_problem(exc)}): {fix}"
        ) from None
    return record


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "…"


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        return _reason(ValueError(f"{where}: {err['msg']}"))
    return _reason(exc)


@dataclass(frozen=True)
class DistrictRun:
    """One district's measured results, as a report needs them.

    ``demand`` holds one row per home with ``<standard>_dist_m``, ``_covered``, ``_status`` (and
    ``_context`` for standards with street-context radii, ``_after_dist_m`` where sites were
    proposed); ``facilities`` the facilities that can serve the district (points and areas);
    ``gaps`` the ranked gap polygons; ``summary`` and ``indicators`` the district's rows of
    ``summary.csv`` and ``district_indicators.csv``.
    """

    city_id: str
    city_name: str
    city_name_en: str
    district_id: str
    slug: str
    name: str
    name_en: str
    is_sample: bool
    boundary: shapely.Geometry
    crs: object
    standards: list[Standard]
    limits_m: dict[str, float]
    notes: list[Note]
    methods: list[str]
    population_model: str
    demand: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    proposed: gpd.GeoDataFrame | None
    summary: pd.DataFrame
    indicators: pd.DataFrame
    written: str
    #: When the OSM data was current (ISO 8601, UTC); "" unknown.
    data_date: str = ""
    #: The street segments around the district (``streets`` layer of ``coverage.gpkg``), drawn
    #: under the printed maps; None when the run kept none.
    streets: gpd.GeoDataFrame | None = None
    #: The OSM node ids (ascending) of every locked gate that cut a walked path in the study
    #: area; None where the record predates the list (its note named the first few only).
    locked_gates: tuple[int, ...] | None = None
    #: Per standard id, the OSM ids of every feature tagged disused or abandoned that it left
    #: out (a standard with none has no entry); None where the record predates the list (its
    #: notes named the first few only).
    left_out: Mapping[str, tuple[str, ...]] | None = None
    #: The standards file the figures were measured with (``run.json``'s ``standards_file``);
    #: None where the record predates it.
    standards_file: StandardsFileRecord | None = None

    def standard(self, standard_id: str) -> Standard:
        for s in self.standards:
            if s.id == standard_id:
                return s
        raise KeyError(f"standard {standard_id!r} was not measured in this run")

    def thresholds(self, std: Standard) -> np.ndarray:
        """Each home's radius for `std`: its street context's, or the standard's one threshold."""
        col = f"{std.id}_context"
        if std.context_thresholds_m and col in self.demand:
            return context_radii(std, self.demand[col].fillna("").to_numpy())
        return np.full(len(self.demand), std.threshold_m, dtype=float)

    def past_limit(self, standard_id: str) -> np.ndarray:
        """Homes beyond the search limit (no distance, but farther than the standard allows)."""
        return (self.demand[f"{standard_id}_status"] == STATUS_BEYOND_LIMIT).to_numpy()

    def no_facility(self, standard_id: str) -> bool:
        """Whether no facility of the standard can serve the district: no data, not 0%."""
        rows = self.summary[self.summary["standard"] == standard_id]
        return not len(rows) or float(rows["facilities_in_reach"].fillna(0).iloc[0]) == 0


def record_data(assessment: Assessment, district_id: str, *, tiles: str | None = None) -> dict:
    """The contents of a district's ``run.json``: what its figures rest on, as text (and the base
    map its ``map.html`` was drawn with, so that ``site`` draws it again alike)."""
    from walkcover.assessment import search_limit_m

    d = assessment.districts.set_index("district_id").loc[district_id]
    return {
        "record_version": RECORD_VERSION,
        "walkcover": __version__,
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "city": {
            "id": assessment.city.id,
            "name": assessment.city.config.name,
            "name_en": assessment.city.config.name_en,
        },
        "district": {
            "district_id": str(district_id),
            "slug": str(d["slug"]),
            "name": str(d["name"]),
            "name_en": str(d["name_en"]),
            "is_sample": bool(d["is_sample"]),
        },
        "crs": assessment.crs.to_wkt(),
        # the boundary the figures were measured in (planners' own with --boundaries), in the
        # run's CRS to the centimetre: reports draw this one, whatever the city config says now
        "boundary_wkt": shapely.to_wkt(
            assessment.district_geometry(district_id),
            rounding_precision=2,
        ),
        "standards": [s.model_dump(mode="json") for s in assessment.standards],
        "limits_m": {s.id: search_limit_m(s, assessment.city) for s in assessment.standards},
        "notes": [
            {"text": n.text, "district": n.district, "standard": n.standard, "kind": n.kind}
            for n in assessment.district_notes(str(d["slug"]))
        ],
        "methods": methods(assessment),
        "population_model": str(assessment.population_model),
        "tiles": tiles,
        "data_date": osm_date(assessment.data_date),
        # every locked gate's id (the note counts them): the study area's, as the note's count
        "locked_gates": [int(g) for g in assessment.locked_gates],
        # every left-out feature's id (the notes count them), per standard
        "left_out": {sid: list(ids) for sid, ids in assessment.left_out.items()},
        "standards_file": standards_file_data(assessment),
    }


def standards_file_data(assessment: Assessment) -> dict[str, Any]:
    """``run.json``'s ``standards_file``: the standards set's own id, title, document and issue
    date, and the file it was read from: its name (never its folder), whether walkcover bundles
    it, and the SHA-256 of its bytes (null for standards built in memory)."""
    rules = assessment.rules
    file = rules.file
    return {
        "id": rules.id,
        "title": rules.title,
        "document": rules.document,
        "issued": rules.issued,
        "file": file.name if file is not None else None,
        "bundled": bool(file is not None and file.bundled),
        "sha256": file.sha256 if file is not None else None,
    }


def streets_around(
    edges: gpd.GeoDataFrame, geom: shapely.Geometry, *, margin_m: float
) -> gpd.GeoDataFrame:
    """The street segments of `edges` within the box of `geom` grown by `margin_m`: the streets a
    printed map of the district draws (those of the facilities serving it from outside too),
    with their ``highway`` class."""
    x0, y0, x1, y1 = shapely.bounds(geom)
    near = edges.cx[x0 - margin_m : x1 + margin_m, y0 - margin_m : y1 + margin_m]
    cols = [c for c in ("highway",) if c in near]
    return gpd.GeoDataFrame(
        near[cols].reset_index(drop=True), geometry=near.geometry.to_numpy(), crs=edges.crs
    )


def osm_date(value: str) -> str:
    """An OSM data date as ISO 8601 (UTC) text, "" when it is unknown or not a date."""
    from walkcover.sources._layers import iso_timestamp

    return iso_timestamp(value)


def source_name(source: str) -> str:
    """The source as a report names it: a file's name, never its folder (a record and its reports
    travel to other machines, and a path tells them nothing but the author's disk); an Overpass
    server by its host."""
    from urllib.parse import urlsplit

    text = str(source)
    if text.startswith(("http://", "https://")):
        return f"Overpass API ({urlsplit(text).hostname or 'server'})"
    if text.startswith("pyrosm:"):
        return text.removeprefix("pyrosm:")
    return text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or "unnamed source"


def osm_date_text(value: str) -> str:
    """``OSM data as of 2024-05-01`` (UTC), or ``OSM data date unknown``."""
    date = osm_date(value)
    return f"OSM data as of {date[:10]}" if date else "OSM data date unknown"


def methods(result: Assessment) -> list[str]:
    """How the numbers were made, line by line."""
    cfg = result.city.config
    rules = result.rules
    file = rules.file
    lines = [
        f"Standards: {rules.document} {rules.title} ({rules.issued}); "
        f"ids {', '.join(s.id for s in result.standards)}"
        # the file by its name and the SHA-256 of its bytes: which file, whatever it is called
        + (
            f"; file {file.name}{' (bundled)' if file.bundled else ''}, SHA-256 {file.sha256}."
            if file is not None
            else "."
        ),
        # the file's name, never its folder: a record and its reports travel to other machines;
        # the data's own date (the file's header), never the file's modification time
        f"Streets and facilities: OpenStreetMap, {source_name(result.source)} "
        f"({osm_date_text(result.data_date)}); © OpenStreetMap contributors, ODbL.",
        f"Walking network: {len(result.network.edges):,} street segments in "
        f"{result.crs.to_string()}; homes and facilities snap to the nearest street edge within "
        f"{cfg.network.max_snap_m:g} m; distances = access legs + along-edge offsets + shortest path.",
        f"Residents: {result.population_model}; {cfg.demand.m2_per_person:g} m² of floor area per person.",
        "Official figure: straight-line circles ∩ "
        f"{', '.join(sorted({s.denominator for s in result.standards}))} ÷ that land; "
        f"walking land figure on a {rules.land.cell_m:g} m grid.",
    ]
    lines += [
        f"{s.name}: radius by street context ("
        + ", ".join(f"{k.replace('_', ' ')} {v:g} m" for k, v in s.context_thresholds_m.items())
        + ")."
        for s in result.standards
        if s.context_thresholds_m
    ]
    lines.append(f"walkcover {__version__}, run {dt.date.today().isoformat()}.")
    return lines


def write_record(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _from_record(
    record: RunRecord,
    *,
    slug: str,
    boundary: shapely.Geometry,
    demand: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    proposed: gpd.GeoDataFrame | None,
    summary: pd.DataFrame,
    indicators: pd.DataFrame,
    streets: gpd.GeoDataFrame | None = None,
) -> DistrictRun:
    d = record.district
    return DistrictRun(
        city_id=record.city.id,
        city_name=record.city.name,
        city_name_en=record.city.name_en,
        district_id=d.district_id,
        slug=slug,  # the city config's, never the record's: it names folders and links
        name=d.name,
        name_en=d.name_en,
        is_sample=d.is_sample,
        boundary=boundary,
        crs=demand.crs,
        standards=[Standard.model_validate(s) for s in record.standards],
        limits_m=dict(record.limits_m),
        notes=[
            Note(text=n.text, district=n.district, standard=n.standard, kind=n.kind)
            for n in record.notes
        ],
        methods=list(record.methods),
        population_model=record.population_model,
        demand=demand,
        facilities=facilities,
        gaps=gaps,
        proposed=proposed,
        summary=summary.reset_index(drop=True),
        indicators=indicators.reset_index(drop=True),
        written=record.written,
        data_date=osm_date(record.data_date),
        streets=streets,
        # (ascending and once each, whatever order an edited file lists them in)
        locked_gates=(
            tuple(sorted(set(record.locked_gates))) if record.locked_gates is not None else None
        ),
        standards_file=record.standards_file,
        # (once each, in the order written)
        left_out=(
            {sid: tuple(dict.fromkeys(ids)) for sid, ids in record.left_out.items()}
            if record.left_out is not None
            else None
        ),
    )


def district_run(
    assessment: Assessment,
    district_id: str,
    *,
    proposed: gpd.GeoDataFrame | None = None,
    after: dict[str, np.ndarray] | None = None,
) -> DistrictRun:
    """The record of one district of an assessment in memory (what `read_district_run` reads
    back after ``walkcover run``)."""
    from walkcover.presentation.layers import demand_layer, facilities_layer

    geom = assessment.district_geometry(district_id)
    demand = demand_layer(assessment, district_id)
    for sid, dist in (after or {}).items():
        demand[f"{sid}_after_dist_m"] = dist
    record = RunRecord.model_validate(json.loads(json.dumps(record_data(assessment, district_id))))
    return _from_record(
        record,
        streets=streets_around(
            assessment.network.edges, geom, margin_m=max(record.limits_m.values(), default=0.0)
        ),
        slug=record.district.slug,
        boundary=geom,
        demand=demand,
        facilities=facilities_layer(assessment, geom),
        gaps=assessment.gaps(district_id),
        proposed=proposed,
        summary=assessment.summary[assessment.summary["district_id"] == district_id],
        indicators=assessment.district_rows[assessment.district_rows["district_id"] == district_id],
    )


#: Columns of a city table that are text whatever they look like (``410202`` is an id, not a
#: number): read back as text here and by `walkcover.presentation.tables`.
ID_COLUMNS = ("city", "district", "district_id")
TEXT_COLUMNS = (
    *ID_COLUMNS,
    "city_name",
    "district_name",
    "district_name_en",
    "standard",
    "standard_name",
    "name",
    "name_en",
    "group",
    "indicator",
)
#: Columns a city table must hold for a report to be made from it.
_REQUIRED_COLUMNS = {
    "summary.csv": ("district", "district_id", "standard"),
    "district_indicators.csv": ("district_id",),
}
#: A city table larger than this is not one walkcover wrote for a report (Zhengzhou's: ~1 MB).
MAX_TABLE_BYTES = 512 * 1024 * 1024

# --- what reports read, and what it must hold ----------------------------------------------------
# Each figure column a report reads: its kind (the range it must lie in) and whether it may be
# empty. Kinds: "pct" 0–100 (with float noise), "pp" −100–100 (a difference of two percentages),
# "count" 0 or more (residents, facilities, metres, m²), "figure" any size a real figure has, "rank"
# a whole number from 1. Empty cells are "no figure" where a report says "—".
_Figure = tuple[str, bool]
_SUMMARY_FIGURES: dict[str, _Figure] = {
    "threshold_m": ("count", True),
    "facilities_in_reach": ("count", True),
    "residents": ("count", True),
    "beyond_search_units": ("count", True),
    "residents_on_land_pct": ("pct", True),
    "area_covered_euclid_pct": ("pct", True),
    "area_covered_pct": ("pct", True),
    "residents_covered_pct": ("pct", True),
    "detour_loss_pp": ("pp", True),
    "residents_covered_safe_pct": ("pct", True),
    "target_pct": ("pct", False),
    "building_completeness_pct": ("pct", True),
}
#: Figures of ``summary.csv`` a report reads that runs before choice and capacity (issue 29) did
#: not write: checked like the others where present; where absent, empty ("no figure"), so an
#: older run folder still gives its report.
_SUMMARY_FIGURES_ADDED: dict[str, _Figure] = {
    "residents_choice_pct": ("pct", True),
    "access_mean_per_1000": ("count", True),
    "access_p10_per_1000": ("count", True),
    "access_norm_per_1000": ("count", True),
    "residents_below_norm_pct": ("pct", True),
    "facilities_default_capacity": ("count", True),
}
_SUMMARY_TEXT_ADDED = ("capacity_unit",)
_SUMMARY_TEXT = ("district", "district_id", "district_name", "standard", "demand_model")
_INDICATOR_FIGURES: dict[str, _Figure] = {"value": ("figure", True), "target": ("figure", True)}
#: Indicator rows whose value is a share of residents (GB 50180's life circles): 0–100.
_INDICATOR_PCT = re.compile(r"life_circle_\d+min_complete_pct")
_INDICATOR_TEXT = ("district_id", "name", "unit", "note")
_DEMAND_STATUSES = frozenset(
    {
        "covered",
        "beyond_threshold",
        STATUS_BEYOND_LIMIT,
        "unreachable",
        "unsnapped",
        "no_facilities",
    }
)
_GAP_FIGURES: dict[str, _Figure] = {
    "rank": ("rank", False),
    "residents_uncovered": ("count", False),
    "area_m2": ("count", False),
    # empty: no walk at the gap's centre (``status_at_centre`` says why)
    "dist_m_at_centre": ("count", True),
}
#: A gap's centre (`walkcover.measures.gaps.GAP_CENTRE_COLUMNS`), which runs before it was kept
#: with the gap did not write: checked like the others where present; where absent, empty (the
#: report's "—"), so an older run folder still gives its report.
_GAP_FIGURES_ADDED: dict[str, _Figure] = {
    "centre_lon": ("lon", False),
    "centre_lat": ("lat", False),
}
#: Why a gap's centre has the walk it has (a home's statuses); absent in older runs' gaps.
_GAP_STATUS = "status_at_centre"
#: The statuses a gap's centre may have: a home's, but never within the standard (a gap is where
#: no one is; `walkcover.measures.gaps.centre_picks` takes an uncovered home's or cell's walk).
_GAP_STATUSES = _DEMAND_STATUSES - {STATUS_COVERED}
_PROPOSED_FIGURES: dict[str, _Figure] = {
    "rank": ("rank", False),
    "residents_newly_covered": ("count", False),
    "cumulative_coverage_pct": ("pct", False),
}
#: No figure a report shows is this large (a district's residents, m², metres, densities).
_MAX_FIGURE = 1e12
#: Float noise a percentage may carry past 0 or 100.
_PCT_NOISE = 1e-6
_RANGES = {
    "pct": (-_PCT_NOISE, 100 + _PCT_NOISE, "a percentage from 0 to 100"),
    "pp": (-100 - _PCT_NOISE, 100 + _PCT_NOISE, "percentage points from -100 to 100"),
    "count": (0.0, _MAX_FIGURE, "a number from 0 up"),
    "figure": (-_MAX_FIGURE, _MAX_FIGURE, "a finite number"),
    "rank": (1.0, _MAX_FIGURE, "a whole number from 1 up"),
    "lon": (-180.0, 180.0, "a longitude from -180 to 180"),
    "lat": (-90.0, 90.0, "a latitude from -90 to 90"),
}


@contextmanager
def _quiet() -> Iterator[None]:
    """Library warnings (GDAL's through pyogrio, shapely's, numpy's) silenced while a run's files
    are read: a damaged file ends in walkcover's one line, never in their lines before it.
    `read_district_run` reads on the main thread, where ``catch_warnings`` is safe."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


def _shown(value: object) -> str:
    if isinstance(value, np.generic):  # as the cell reads: 1e+308, not np.float64(1e+308)
        value = value.item()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _check_columns(frame: pd.DataFrame, columns: tuple[str, ...], *, where: str, fix: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RunRecordError(
            f"{where} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} a "
            f"report reads: {fix}"
        )


def _check_figures(
    frame: pd.DataFrame, figures: dict[str, _Figure], *, where: str, fix: str
) -> pd.DataFrame:
    """`frame` with each of `figures` present and a number in its range (empty only where
    allowed), as numbers; otherwise one line naming `where`, the column, the cell and `fix`."""
    _check_columns(frame, tuple(figures), where=where, fix=fix)
    frame = frame.copy()
    for col, (kind, may_be_empty) in figures.items():
        raw = frame[col]
        try:
            values = pd.to_numeric(raw, errors="coerce").astype(float)
        except (TypeError, ValueError):
            values = pd.Series(np.nan, index=raw.index)
        low, high, what = _RANGES[kind]
        empty = raw.isna().to_numpy()
        v = values.to_numpy()
        with np.errstate(invalid="ignore"):
            bad = (~empty & np.isnan(v)) | (~np.isnan(v) & ~((v >= low) & (v <= high)))
            if kind == "rank":
                bad |= ~np.isnan(v) & (np.mod(v, 1) != 0)
        if not may_be_empty:
            bad |= np.isnan(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            cell = raw.iloc[i]
            got = "an empty cell" if empty[i] or cell is None else _shown(cell)
            raise RunRecordError(
                f"{where}: column {col} holds {got} (row {i + 1}), not {what}: {fix}"
            )
        frame[col] = values
    return frame


def _table_path(table: pd.DataFrame, fallback: Path) -> Path:
    path = table.attrs.get("path")
    return Path(path) if isinstance(path, str) else fallback


def read_city_table(folder: Path, name: str) -> pd.DataFrame:
    """A city table as written (``summary.csv``, ``district_indicators.csv``): text cells
    un-escaped, ids as text.

    The table's path is kept in ``attrs["path"]``, for `read_district_run` to name it.

    Raises
    ------
    RunRecordError
        The table is missing, a symbolic link, not a CSV walkcover wrote, or lacks a column a
        report needs; the message names the file and the fix.
    """
    path = Path(folder) / name
    fix = "run `walkcover run --overwrite` with the same --out again"
    if path.is_symlink():
        raise RunRecordError(
            f"{path} is a symbolic link; walkcover reads back only the files it wrote: {fix}"
        )
    if not path.is_file():
        raise RunRecordError(
            f"{path} is missing: run `walkcover run` with the same --out first (reports are made "
            "from its outputs)"
        )
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise RunRecordError(f"{path} is larger than any table walkcover writes: {fix}")
    try:
        table = pd.read_csv(
            path,
            dtype=dict.fromkeys(TEXT_COLUMNS, str),
            encoding="utf-8-sig",
            keep_default_na=False,
            na_values=[""],
        )
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as exc:
        raise RunRecordError(
            f"{path} cannot be read as a CSV table ({_reason(exc)}): {fix}"
        ) from None
    missing = [c for c in _REQUIRED_COLUMNS.get(name, ()) if c not in table.columns]
    if missing:
        raise RunRecordError(
            f"{path} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; it "
            f"was not written by walkcover: {fix}"
        )
    table = csv_unescape_frame(table)
    table.attrs["path"] = str(path)
    return table


def _check_meets(frame: pd.DataFrame, *, where: str, fix: str) -> None:
    """``meets_target``: True, False or empty (a report marks ✓, ✗ or —)."""
    _check_columns(frame, ("meets_target",), where=where, fix=fix)
    cells = frame["meets_target"]
    ok = cells.isna() | cells.map(lambda v: v is True or v is False or v in ("True", "False"))
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy())[0])
        raise RunRecordError(
            f"{where}: column meets_target holds {_shown(cells.iloc[i])} (row {i + 1}), not "
            f"True, False or empty: {fix}"
        )


def _check_summary(summary: pd.DataFrame, *, where: str, fix: str) -> pd.DataFrame:
    _check_columns(summary, _SUMMARY_TEXT, where=where, fix=fix)
    _check_meets(summary, where=where, fix=fix)
    absent = [c for c in (*_SUMMARY_FIGURES_ADDED, *_SUMMARY_TEXT_ADDED) if c not in summary]
    if absent:  # written before choice and capacity were measured: no such figures
        summary = summary.assign(**dict.fromkeys(absent, np.nan))
    return _check_figures(
        summary, {**_SUMMARY_FIGURES, **_SUMMARY_FIGURES_ADDED}, where=where, fix=fix
    )


def _check_indicators(indicators: pd.DataFrame, *, where: str, fix: str) -> pd.DataFrame:
    _check_columns(indicators, _INDICATOR_TEXT, where=where, fix=fix)
    _check_meets(indicators, where=where, fix=fix)
    indicators = _check_figures(indicators, _INDICATOR_FIGURES, where=where, fix=fix)
    if "indicator" in indicators:
        shares = indicators["indicator"].map(
            lambda v: isinstance(v, str) and _INDICATOR_PCT.fullmatch(v) is not None
        )
        if shares.any():  # a share of residents: checked as one (rows numbered as in the file)
            probe = pd.DataFrame({"value": indicators["value"].where(shares.astype(bool))})
            _check_figures(probe, {"value": ("pct", True)}, where=where, fix=fix)
    return indicators


def _check_geometry(frame: gpd.GeoDataFrame, *, where: str, fix: str) -> None:
    """Every row a geometry with finite coordinates: a map draws each."""
    if not len(frame):
        return
    geoms = frame.geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RunRecordError(f"{where}: row {i + 1} has no geometry (null or empty): {fix}")
    with _quiet():
        bounds = shapely.bounds(geoms)
    if not np.isfinite(bounds).all() or np.abs(bounds).max() > MAX_COORDINATE_M:
        i = int(np.flatnonzero(~(np.isfinite(bounds) & (np.abs(bounds) <= MAX_COORDINATE_M)))[0])
        raise RunRecordError(
            f"{where}: row {i // 4 + 1} has coordinates that are not finite or lie beyond any "
            f"projected CRS: {fix}"
        )


def _check_text(frame: pd.DataFrame, col: str, allowed: frozenset[str], *, where: str, fix: str,
                may_be_empty: bool = True) -> None:  # fmt: skip
    cells = frame[col]
    ok = cells.map(lambda v: v in allowed if isinstance(v, str) else False)
    if may_be_empty:
        ok |= cells.isna()
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy())[0])
        raise RunRecordError(
            f"{where}: column {col} holds {_shown(cells.iloc[i])} (row {i + 1}), not one of "
            f"{', '.join(sorted(allowed))}: {fix}"
        )


def _check_flags(frame: pd.DataFrame, col: str, *, where: str, fix: str) -> pd.DataFrame:
    """`col` as booleans: True/False (or 1/0, "True"/"False"), never empty."""
    truth: dict[object, bool] = {True: True, False: False, "True": True, "False": False}

    def flag(v: object) -> bool | None:
        try:
            return truth.get(v)
        except TypeError:  # unhashable
            return None

    flags = frame[col].map(flag)
    if flags.isna().any():
        i = int(np.flatnonzero(flags.isna().to_numpy())[0])
        raise RunRecordError(
            f"{where}: column {col} holds {_shown(frame[col].iloc[i])} (row {i + 1}), not True or "
            f"False: {fix}"
        )
    frame = frame.copy()
    frame[col] = flags.astype(bool)
    return frame


def _record_crs(record: RunRecord, *, rec: Path, fix: str) -> pyproj.CRS:
    try:
        crs = pyproj.CRS.from_user_input(record.crs)
    except pyproj.exceptions.CRSError as exc:
        raise RunRecordError(
            f"{rec}: crs is not a coordinate reference system ({_reason(exc)}): {fix}"
        ) from None
    if not crs.is_projected:
        raise RunRecordError(
            f"{rec}: crs is not a projected CRS in metres (a run measures in one): {fix}"
        )
    return crs


def _record_boundary(
    wkt: str, *, rec: Path, fix: str, demand: gpd.GeoDataFrame, gpkg: Path
) -> shapely.Geometry:
    """The record's boundary: a polygon of finite coordinates within a projected CRS's range,
    repaired if it crosses itself, and holding the district's homes (if it has any)."""
    with _quiet():
        try:
            boundary = shapely.from_wkt(wkt)
        except shapely.errors.ShapelyError as exc:
            raise RunRecordError(
                f"{rec}: boundary_wkt is not a geometry ({_reason(exc)}): {fix}"
            ) from None
    if boundary is None or boundary.geom_type not in ("Polygon", "MultiPolygon"):
        raise RunRecordError(f"{rec}: boundary_wkt is not a polygon: {fix}")
    if boundary.is_empty:
        raise RunRecordError(f"{rec}: boundary_wkt is an empty polygon: {fix}")
    xy = shapely.get_coordinates(boundary)
    if not np.isfinite(xy).all():
        raise RunRecordError(f"{rec}: boundary_wkt has coordinates that are not numbers: {fix}")
    if np.abs(xy).max() > MAX_COORDINATE_M:
        raise RunRecordError(
            f"{rec}: boundary_wkt has a coordinate of {np.abs(xy).max():.3g} m, beyond any "
            f"projected CRS: {fix}"
        )
    x0, y0, x1, y1 = boundary.bounds
    if max(x1 - x0, y1 - y0) > MAX_DISTRICT_SPAN_M:
        raise RunRecordError(
            f"{rec}: boundary_wkt spans {max(x1 - x0, y1 - y0) / 1000:,.0f} km, wider than any "
            f"district: {fix}"
        )
    if not boundary.is_valid:
        with _quiet():
            parts = shapely.get_parts(shapely.make_valid(boundary))
            polys = [g for g in parts if g.geom_type in ("Polygon", "MultiPolygon")]
            boundary = shapely.union_all(polys) if polys else shapely.Polygon()
    if boundary.is_empty or not boundary.area > 0:
        raise RunRecordError(f"{rec}: boundary_wkt encloses no area, even repaired: {fix}")
    if len(demand):
        homes = shapely.box(*demand.total_bounds)
        if not boundary.intersects(homes):
            raise RunRecordError(
                f"{rec}: boundary_wkt does not hold the district's homes (the demand layer of "
                f"{gpkg.name}): it is not this run's boundary: {fix}"
            )
    return boundary


def _read_layers(gpkg: Path, *, crs: pyproj.CRS, fix: str) -> tuple[gpd.GeoDataFrame | None, ...]:
    """The demand, facilities, gaps and proposed-sites layers of `gpkg` (None where absent), each
    in `crs`, read with library warnings silenced."""
    import pyogrio

    with _quiet():
        try:
            names = {n for n, _ in pyogrio.list_layers(gpkg)}
        except Exception as exc:  # GDAL and pyogrio raise several kinds for a damaged file
            raise RunRecordError(
                f"{gpkg} cannot be read as a GeoPackage ({_reason(exc)}): {fix}"
            ) from None

        def layers(*wanted: str) -> gpd.GeoDataFrame | None:
            frames = []
            for n in wanted:
                if n not in names:
                    continue
                try:
                    frame = gpd.read_file(gpkg, layer=n)
                except Exception as exc:  # as above
                    raise RunRecordError(
                        f"{gpkg} cannot be read as a GeoPackage (layer {n}: {_reason(exc)}): {fix}"
                    ) from None
                if not isinstance(frame, gpd.GeoDataFrame):
                    raise RunRecordError(f"{gpkg}: layer {n} has no geometry: {fix}")
                try:
                    same = frame.crs is not None and pyproj.CRS.from_user_input(frame.crs) == crs
                except pyproj.exceptions.CRSError:
                    same = False
                if not same:
                    shown = frame.crs.to_string() if frame.crs is not None else "no CRS"
                    raise RunRecordError(
                        f"{gpkg}: layer {n} is in {_reason(ValueError(shown))}, not the run's CRS "
                        f"(run.json's crs): {fix}"
                    )
                frames.append(frame)
            if not frames:
                return None
            return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)

        return (
            layers("demand", "demand_points", "demand_lines"),
            layers("facilities", "facility_areas", "facility_lines"),
            layers("gaps"),
            layers("proposed_sites"),
            layers("streets"),
        )


def read_district_run(
    folder: Path,
    *,
    district_id: str,
    slug: str,
    boundary: shapely.Geometry,
    summary: pd.DataFrame,
    indicators: pd.DataFrame,
) -> DistrictRun:
    """Read what ``walkcover run`` wrote into a district `folder` (``run.json`` and
    ``coverage.gpkg``), with the district's rows of the city tables. The boundary is the one the
    run recorded; `boundary` (a GeoSeries in any CRS, or a geometry in the run's CRS) stands in
    for a record without one.

    `district_id` and `slug` are the city config's: the record must be this district's, and its
    own slug is never used (folders and links are named from the config alone).

    Everything a report reads is checked first: the record's boundary (a polygon in range that
    holds the district's homes), every layer in the record's CRS with the columns and types a
    report reads and a geometry on every row, and the city tables' columns (numbers finite and in
    range) with one row of ``summary.csv`` per standard the record measured.

    Raises
    ------
    RunRecordError
        The folder holds no complete run (never run, or run by a walkcover without ``run.json``),
        or what it holds is damaged, tampered with, or another district's; one line naming the
        file (and the layer or column) and the fix.
    """
    folder = Path(folder)
    rec, gpkg = folder / RECORD_FILE, folder / "coverage.gpkg"
    if not rec.is_file() or not gpkg.is_file():
        missing = rec if not rec.is_file() else gpkg
        raise RunRecordError(
            f"{missing} is missing: run `walkcover run` for this district with the same --out "
            "first (reports are made from its outputs, without measuring again)"
        )
    fix = "run `walkcover run --overwrite` for this district again"
    record = load_record(rec)
    if record.district.district_id != str(district_id):
        raise RunRecordError(
            f"{rec} records district {record.district.district_id!r}, not {district_id!r} whose "
            f"folder it is in: {fix}"
        )
    if gpkg.is_symlink():
        raise RunRecordError(
            f"{gpkg} is a symbolic link; walkcover reads back only the files it wrote: {fix}"
        )
    crs = _record_crs(record, rec=rec, fix=fix)
    demand, facilities, gaps, proposed, streets = _read_layers(gpkg, crs=crs, fix=fix)
    if demand is None:
        raise RunRecordError(f"{gpkg} has no demand layer: {fix}")
    sids = [std.get("id") for std in record.standards]
    where = f"{gpkg}: the demand layer"
    for sid in sids:
        absent = [
            c
            for c in (f"{sid}_dist_m", f"{sid}_status")
            if not isinstance(sid, str) or c not in demand
        ]
        if absent:
            raise RunRecordError(
                f"{where} lacks {absent[0]} for a standard run.json records: {fix}"
            )
    _check_geometry(demand, where=where, fix=fix)
    figures: dict[str, _Figure] = {}
    for sid in sids:
        figures[f"{sid}_dist_m"] = ("count", True)  # empty: no walk (see its status)
        if f"{sid}_after_dist_m" in demand:
            figures[f"{sid}_after_dist_m"] = ("count", True)
        _check_text(demand, f"{sid}_status", _DEMAND_STATUSES, where=where, fix=fix)
        for band in (f"{sid}_band", f"{sid}_after_band"):
            if band in demand:
                _check_text(
                    demand, band, frozenset(BAND_NAMES), where=where, fix=fix, may_be_empty=False
                )
    demand = _check_figures(demand, figures, where=where, fix=fix)

    if facilities is None:
        facilities = gpd.GeoDataFrame(
            {"standard": pd.Series([], dtype=object), "counts": pd.Series([], dtype=bool)},
            geometry=[],
            crs=demand.crs,
        )
    else:
        where = f"{gpkg}: the facilities layer"
        _check_columns(facilities, ("standard", "name", "counts"), where=where, fix=fix)
        _check_geometry(facilities, where=where, fix=fix)
        facilities = _check_flags(facilities, "counts", where=where, fix=fix)
    if gaps is None:
        gaps = gpd.GeoDataFrame(geometry=[], crs=demand.crs)
    elif len(gaps):
        where = f"{gpkg}: the gaps layer"
        _check_columns(gaps, ("standard",), where=where, fix=fix)
        _check_geometry(gaps, where=where, fix=fix)
        gaps = _check_figures(gaps, _GAP_FIGURES, where=where, fix=fix)
        added = {c: kind for c, kind in _GAP_FIGURES_ADDED.items() if c in gaps}
        gaps = _check_figures(gaps, added, where=where, fix=fix)
        if _GAP_STATUS in gaps:
            _check_text(gaps, _GAP_STATUS, _GAP_STATUSES, where=where, fix=fix,
                        may_be_empty=False)  # fmt: skip
    if len(gaps):  # written before the centre and its status were kept with the gap: none
        absent = [c for c in (*_GAP_FIGURES_ADDED, _GAP_STATUS) if c not in gaps]
        gaps = gaps.assign(**dict.fromkeys(absent, np.nan))
    if proposed is not None:
        where = f"{gpkg}: the proposed_sites layer"
        _check_columns(proposed, ("standard", "method"), where=where, fix=fix)
        _check_geometry(proposed, where=where, fix=fix)
        proposed = _check_figures(proposed, _PROPOSED_FIGURES, where=where, fix=fix)

    if streets is not None:
        _check_geometry(streets, where=f"{gpkg}: the streets layer", fix=fix)
        if "highway" in streets:
            streets["highway"] = streets["highway"].where(
                streets["highway"].map(lambda v: isinstance(v, str)), None
            )

    if record.boundary_wkt:
        boundary = _record_boundary(record.boundary_wkt, rec=rec, fix=fix, demand=demand, gpkg=gpkg)
    elif isinstance(boundary, gpd.GeoSeries):
        boundary = boundary.to_crs(demand.crs).iloc[0]

    table_fix = "run `walkcover run --overwrite` with the same --out again"
    summary_path = _table_path(summary, folder.parent / "summary.csv")
    summary = _check_summary(summary, where=str(summary_path), fix=table_fix)
    indicators_path = _table_path(indicators, folder.parent / "district_indicators.csv")
    indicators = _check_indicators(indicators, where=str(indicators_path), fix=table_fix)
    did = str(district_id)
    rows = summary[summary["district_id"].astype(str) == did]
    measured = rows["standard"].tolist()
    for sid in sids:
        if sid not in measured:
            raise RunRecordError(
                f"{summary_path} has no row for district {did!r} and standard {sid!r}, which "
                f"{rec.name} records: {fix}"
            )
        if measured.count(sid) > 1:
            raise RunRecordError(
                f"{summary_path} has {measured.count(sid)} rows for district {did!r} and standard "
                f"{sid!r}, not one: {fix}"
            )
    stray = [s for s in measured if s not in sids]
    if stray:
        raise RunRecordError(
            f"{summary_path} has a row for district {did!r} and standard {_shown(stray[0])}, "
            f"which {rec.name} does not record: {fix}"
        )
    return _from_record(
        record,
        slug=slug,
        boundary=boundary,
        demand=demand,
        facilities=facilities,
        gaps=gaps,
        proposed=proposed,
        summary=rows,
        indicators=indicators[indicators["district_id"].astype(str) == did],
        streets=streets,
    )
