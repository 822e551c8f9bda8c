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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from walkcover._errors import WalkcoverError
from walkcover._escape import csv_unescape_frame
from walkcover._version import __version__
from walkcover.assessment import Assessment, Note
from walkcover.config.standards import Standard
from walkcover.engine.coverage import STATUS_BEYOND_LIMIT
from walkcover.engine.street_context import context_radii

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

_Text = Annotated[str, Field(max_length=2_000)]
_Id = Annotated[str, Field(min_length=1, max_length=200)]


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


class RunRecord(_Part):
    """The schema of ``run.json`` (version 1); unknown keys are ignored."""

    record_version: Literal[1]
    walkcover: Annotated[str, Field(max_length=100)]
    written: Annotated[str, Field(max_length=100)]
    city: _CityRecord
    district: _DistrictRecord
    crs: Annotated[str, Field(max_length=100_000)]
    boundary_wkt: Annotated[str, Field(max_length=MAX_RECORD_BYTES)] | None = None
    standards: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=200)]
    limits_m: Annotated[dict[_Id, float], Field(max_length=200)]
    notes: Annotated[list[_NoteRecord], Field(max_length=100_000)]
    methods: Annotated[list[Annotated[str, Field(max_length=20_000)]], Field(max_length=1_000)]
    population_model: Annotated[str, Field(max_length=20_000)]
    tiles: Annotated[str, Field(max_length=100)] | None = None


def load_record(path: Path) -> RunRecord:
    """Read and validate a district's ``run.json``.

    Raises
    ------
    RunRecordError
        The file is too large, not UTF-8 JSON, nested too deep, not an object, or breaks the schema
        (a missing key, a wrong type, a string too long, a number that is not finite); the message
        names the file, the first problem and the fix.
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
    if data.get("record_version") != RECORD_VERSION:
        got = data.get("record_version")
        shown = repr(got) if len(repr(got)) < 40 else repr(got)[:37] + "…"
        raise RunRecordError(
            f"{path} has record_version {shown}; this walkcover reads version {RECORD_VERSION}: "
            f"{fix}"
        )
    try:
        record = RunRecord.model_validate(data)
        for i, std in enumerate(record.standards):
            try:
                Standard.model_validate(std)
            except ValidationError as exc:
                raise ValueError(f"standards.{i}: {_first_problem(exc)}") from None
        bad = [k for k, v in record.limits_m.items() if not (math.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(f"limits_m.{bad[0]} must be a positive finite distance in metres")
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
    }


def methods(result: Assessment) -> list[str]:
    """How the numbers were made, line by line."""
    cfg = result.city.config
    src = Path(result.source)
    when = (
        dt.datetime.fromtimestamp(src.stat().st_mtime).date().isoformat()
        if src.is_file()
        else "download time"
    )
    rules = result.rules
    lines = [
        f"Standards: {rules.document} {rules.title} ({rules.issued}); "
        f"ids {', '.join(s.id for s in result.standards)}.",
        # the file's name, never its folder: a record and its reports travel to other machines
        f"Streets and facilities: OpenStreetMap, {src.name or result.source} (file date {when}); "
        "© OpenStreetMap contributors, ODbL.",
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
    from walkcover.measures.gaps import district_gaps
    from walkcover.presentation.layers import demand_layer, facilities_layer

    geom = assessment.district_geometry(district_id)
    demand = demand_layer(assessment, district_id)
    for sid, dist in (after or {}).items():
        demand[f"{sid}_after_dist_m"] = dist
    record = RunRecord.model_validate(json.loads(json.dumps(record_data(assessment, district_id))))
    return _from_record(
        record,
        slug=record.district.slug,
        boundary=geom,
        demand=demand,
        facilities=facilities_layer(assessment, geom),
        gaps=district_gaps(assessment, district_id),
        proposed=proposed,
        summary=assessment.summary[assessment.summary["district_id"] == district_id],
        indicators=assessment.district_rows[assessment.district_rows["district_id"] == district_id],
    )


#: Columns of a city table read back as text whatever they look like ("410202" stays a string).
_TEXT_COLUMNS = (
    "city",
    "city_name",
    "district",
    "district_id",
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


def read_city_table(folder: Path, name: str) -> pd.DataFrame:
    """A city table as written (``summary.csv``, ``district_indicators.csv``): text cells
    un-escaped, ids as text.

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
            dtype=dict.fromkeys(_TEXT_COLUMNS, str),
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
    return csv_unescape_frame(table)


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

    Raises
    ------
    RunRecordError
        The folder holds no complete run (never run, or run by a walkcover without ``run.json``),
        or what it holds is damaged, tampered with, or another district's.
    """
    import pyogrio

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
    try:
        names = {n for n, _ in pyogrio.list_layers(gpkg)}

        def layers(*wanted: str) -> gpd.GeoDataFrame | None:
            frames = [gpd.read_file(gpkg, layer=n) for n in wanted if n in names]
            if not frames:
                return None
            return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)

        demand = layers("demand", "demand_points", "demand_lines")
        facilities = layers("facilities", "facility_areas", "facility_lines")
        gaps = layers("gaps")
        proposed = layers("proposed_sites")
    except Exception as exc:  # GDAL and pyogrio raise several kinds for a damaged file
        raise RunRecordError(
            f"{gpkg} cannot be read as a GeoPackage ({_reason(exc)}): {fix}"
        ) from None
    if demand is None:
        raise RunRecordError(f"{gpkg} has no demand layer: {fix}")
    for std in record.standards:
        sid = std.get("id")
        absent = [
            c
            for c in (f"{sid}_dist_m", f"{sid}_status")
            if not isinstance(sid, str) or c not in demand
        ]
        if absent:
            raise RunRecordError(
                f"{gpkg}: the demand layer lacks {absent[0]} for a standard run.json records: {fix}"
            )
    if record.boundary_wkt:
        try:
            boundary = shapely.from_wkt(record.boundary_wkt)
        except shapely.errors.ShapelyError as exc:
            raise RunRecordError(
                f"{rec}: boundary_wkt is not a geometry ({_reason(exc)}): {fix}"
            ) from None
        if boundary is None or boundary.geom_type not in ("Polygon", "MultiPolygon"):
            raise RunRecordError(f"{rec}: boundary_wkt is not a polygon: {fix}")
    elif isinstance(boundary, gpd.GeoSeries):
        boundary = boundary.to_crs(demand.crs).iloc[0]
    did = str(district_id)
    return _from_record(
        record,
        slug=slug,
        boundary=boundary,
        demand=demand,
        facilities=facilities
        if facilities is not None
        else gpd.GeoDataFrame({"standard": [], "counts": []}, geometry=[], crs=demand.crs),
        gaps=gaps if gaps is not None else gpd.GeoDataFrame(geometry=[], crs=demand.crs),
        proposed=proposed,
        summary=summary[summary["district_id"].astype(str) == did],
        indicators=indicators[indicators["district_id"].astype(str) == did],
    )
