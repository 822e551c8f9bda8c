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
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

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
        f"Streets and facilities: OpenStreetMap, {result.source} (file date {when}); "
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
    data: dict,
    *,
    boundary: shapely.Geometry,
    demand: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    proposed: gpd.GeoDataFrame | None,
    summary: pd.DataFrame,
    indicators: pd.DataFrame,
) -> DistrictRun:
    d = data["district"]
    return DistrictRun(
        city_id=data["city"]["id"],
        city_name=data["city"]["name"],
        city_name_en=data["city"]["name_en"],
        district_id=d["district_id"],
        slug=d["slug"],
        name=d["name"],
        name_en=d["name_en"],
        is_sample=bool(d["is_sample"]),
        boundary=boundary,
        crs=demand.crs,
        standards=[Standard.model_validate(s) for s in data["standards"]],
        limits_m={k: float(v) for k, v in data["limits_m"].items()},
        notes=[Note(**n) for n in data["notes"]],
        methods=list(data["methods"]),
        population_model=data["population_model"],
        demand=demand,
        facilities=facilities,
        gaps=gaps,
        proposed=proposed,
        summary=summary.reset_index(drop=True),
        indicators=indicators.reset_index(drop=True),
        written=data["written"],
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
    from walkcover.presentation.outputs import demand_layer, facilities_layer

    geom = assessment.district_geometry(district_id)
    demand = demand_layer(assessment, district_id)
    for sid, dist in (after or {}).items():
        demand[f"{sid}_after_dist_m"] = dist
    return _from_record(
        json.loads(json.dumps(record_data(assessment, district_id))),
        boundary=geom,
        demand=demand,
        facilities=facilities_layer(assessment, geom),
        gaps=district_gaps(assessment, district_id),
        proposed=proposed,
        summary=assessment.summary[assessment.summary["district_id"] == district_id],
        indicators=assessment.district_rows[assessment.district_rows["district_id"] == district_id],
    )


def read_city_table(folder: Path, name: str) -> pd.DataFrame:
    """A city table as written (``summary.csv``, ``district_indicators.csv``): text cells
    un-escaped, district ids as text."""
    path = Path(folder) / name
    if not path.is_file():
        raise RunRecordError(
            f"{path} is missing: run `walkcover run` with the same --out first (reports are made "
            "from its outputs)"
        )
    table = pd.read_csv(path, dtype={"district_id": str}, encoding="utf-8-sig")
    return csv_unescape_frame(table)


def read_district_run(
    folder: Path,
    *,
    boundary: shapely.Geometry,
    summary: pd.DataFrame,
    indicators: pd.DataFrame,
) -> DistrictRun:
    """Read what ``walkcover run`` wrote into a district `folder` (``run.json`` and
    ``coverage.gpkg``), with the district's rows of the city tables. The boundary is the one the
    run recorded; `boundary` (a GeoSeries in any CRS, or a geometry in the run's CRS) stands in
    for a record without one.

    Raises
    ------
    RunRecordError
        The folder holds no complete run (never run, or run by a walkcover without ``run.json``).
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
    try:
        data = json.loads(rec.read_text(encoding="utf-8"))
        if data.get("record_version") != RECORD_VERSION:
            raise ValueError(f"record_version {data.get('record_version')!r}")
    except (ValueError, KeyError) as exc:
        raise RunRecordError(
            f"{rec} cannot be read ({exc}); run `walkcover run --overwrite` for this district again"
        ) from None
    names = {n for n, _ in pyogrio.list_layers(gpkg)}

    def layers(*wanted: str) -> gpd.GeoDataFrame | None:
        frames = [gpd.read_file(gpkg, layer=n) for n in wanted if n in names]
        if not frames:
            return None
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)

    demand = layers("demand", "demand_points", "demand_lines")
    if demand is None:
        raise RunRecordError(f"{gpkg} has no demand layer; run `walkcover run --overwrite` again")
    facilities = layers("facilities", "facility_areas", "facility_lines")
    gaps = layers("gaps")
    if data.get("boundary_wkt"):
        boundary = shapely.from_wkt(data["boundary_wkt"])
    elif isinstance(boundary, gpd.GeoSeries):
        boundary = boundary.to_crs(demand.crs).iloc[0]
    did = data["district"]["district_id"]
    return _from_record(
        data,
        boundary=boundary,
        demand=demand,
        facilities=facilities
        if facilities is not None
        else gpd.GeoDataFrame({"standard": [], "counts": []}, geometry=[], crs=demand.crs),
        gaps=gaps if gaps is not None else gpd.GeoDataFrame(geometry=[], crs=demand.crs),
        proposed=layers("proposed_sites"),
        summary=summary[summary["district_id"].astype(str) == str(did)],
        indicators=indicators[indicators["district_id"].astype(str) == str(did)],
    )
