"""A region's files (``region_summary.csv`` and GeoParquet, ``batch_status.csv``, the region map
and ranking page) from its cities' typed results, and a city measured one district at a time put
back together (`merge_district_parts`). Ids stay text end to end; nothing is read back through
CSV.

The region's files are one set (`REGION_SET`, `walkcover.presentation.file_set`): built in a staging
folder and put in place together, ``region_files.json`` last, so that a batch that fails or is
killed while writing them leaves the previous batch's files or the new ones, never a mix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from walkcover._atomic import staged_folder, write_atomic
from walkcover._paths import inside
from walkcover.config.region import Region, city_standards
from walkcover.config.standards import Standard, load_standards
from walkcover.config.study_area import City
from walkcover.measures.indicators import group_summary
from walkcover.presentation.file_set import SetKind, file_set, recover_set
from walkcover.presentation.outputs import recover_city_files
from walkcover.presentation.record import (
    ID_COLUMNS,
    RunRecordError,
)
from walkcover.presentation.tables import (
    CityTables,
    merged_rows,
    read_earlier_rows,
    read_table_parquet,
    write_city_set,
    write_csv,
)

__all__ = [
    "REGION_FILES",
    "REGION_SET",
    "merge_district_parts",
    "read_city_summary",
    "write_batch_status",
    "write_region",
]

log = logging.getLogger(__name__)


def read_city_summary(folder: Path) -> pd.DataFrame:
    """A city's summary as its run wrote it, typed: ``summary.parquet`` (ids as text, numbers as
    numbers); for a folder written before Parquet copies, ``summary.csv`` read as text, un-escaped
    and typed by its values, ids as text.

    Raises
    ------
    RunRecordError
        Neither file is there, or the one read is damaged.
    """
    folder = Path(folder)
    parquet = folder / "summary.parquet"
    if parquet.exists() or parquet.is_symlink():
        return read_table_parquet(parquet)
    log.warning("%s has no summary.parquet (an earlier walkcover): reading summary.csv", folder)
    table = read_earlier_rows(folder / "summary.csv")
    if table is None:
        raise RunRecordError(f"{folder / 'summary.parquet'} is missing: run the city again")
    return table


def _ids_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its id columns as text (None where missing), whatever they were read as."""
    from walkcover.presentation.tables import _text

    for col in ID_COLUMNS:
        if col in frame.columns:
            frame[col] = pd.Series(
                [_text(v) for v in frame[col].to_numpy(dtype=object)],
                index=frame.index, dtype=object, name=col,
            )  # fmt: skip
    return frame


#: The region files `write_region` writes into ``OUT/<region>/``.
REGION_FILES = (
    "region_summary.csv",
    "region_summary.parquet",
    "batch_status.csv",
    "map.html",
    "index.html",
)
#: The region files as one set.
REGION_SET = SetKind(
    what="region files",
    names=REGION_FILES,
    manifest="region_files.json",
    prefix=".walkcover-regionset-",
    fix="run `walkcover batch` with the same --out again",
)


def write_batch_status(folder: Path, outcomes: list) -> Path:
    """``batch_status.csv`` into `folder` (a `REGION_SET` staging folder): each city's outcome
    (status, why, seconds, the worker's peak MB)."""
    table = pd.DataFrame(
        {
            "city": [o.city_id for o in outcomes],
            "city_name": [o.name for o in outcomes],
            "status": [o.status for o in outcomes],
            "reason": [o.reason for o in outcomes],
            "seconds": [round(o.seconds, 1) for o in outcomes],
            "worker_peak_mb": [round(o.peak_mb) for o in outcomes],
        }
    )
    return write_csv(inside(folder, Path(folder) / "batch_status.csv", what="batch status"), table)


def write_region(
    base: Path, region: Region, cities: dict[str, City], *, outcomes: list
) -> tuple[gpd.GeoDataFrame, list[Path]]:
    """The region's files from its complete cities' outputs, as one set (`REGION_SET`):
    ``region_summary.csv`` (one row per city × district × standard, the columns of ``summary.csv``
    after ``city, city_name``), the same as GeoParquet with the district polygons,
    ``batch_status.csv`` (each city's outcome), the region ``map.html`` and the ranking page
    ``index.html``. With no complete city, only ``batch_status.csv``, which says why each is
    missing (the previous batch's other files go: they would be another batch's figures).

    A set an earlier batch left half in place is completed or removed first (the caller holds the
    output folder's lock).

    Returns
    -------
    (geopandas.GeoDataFrame, list of Path)
        The region summary and the files in place.
    """
    for done in recover_set(base, REGION_SET):
        log.warning("%s: %s", base, done)
    frames, geoms = [], []
    names = dict(zip(region.cities["city_id"], region.cities["name"]))
    for cid, city in cities.items():
        table = _ids_as_text(read_city_summary(base / city.id))  # typed: never through CSV
        table.insert(0, "city", str(cid))
        table.insert(1, "city_name", str(names[cid]))
        frames.append(table)
        polys = city.districts.set_index("district_id").geometry
        polys.index = polys.index.astype(str)
        geoms.append(polys.reindex(table["district_id"]).to_numpy())
    if frames:
        merged = _ids_as_text(pd.concat(frames, ignore_index=True))
        summary = gpd.GeoDataFrame(merged, geometry=np.concatenate(geoms), crs=4326)
    else:
        summary = gpd.GeoDataFrame({"city": [], "city_name": []}, geometry=[], crs=4326)
    with file_set(base, REGION_SET) as built:
        write_batch_status(built.folder, outcomes)
        if cities:
            _write_region_set(built.folder, region, cities, summary, outcomes)
    return summary, built.written


def _write_region_set(
    stage: Path, region: Region, cities: dict[str, City], summary: gpd.GeoDataFrame, outcomes: list
) -> None:
    """`write_region`'s files but ``batch_status.csv``, into staging folder `stage`."""
    from walkcover.presentation.city_map import region_map
    from walkcover.presentation.report import region_index_html
    from walkcover.presentation.web_map import save_map

    names = dict(zip(region.cities["city_id"], region.cities["name"]))
    table = pd.DataFrame(summary.drop(columns="geometry"))
    write_csv(stage / "region_summary.csv", table)
    write_atomic(stage / "region_summary.parquet", lambda tmp: summary.to_parquet(tmp))
    title = f"{region.config.name} / {region.config.name_en or region.id}"
    if len(summary):
        outlines = region.cities[region.cities["city_id"].isin(list(cities))]
        # each standard as the cities' own standards files set it (the toilets' distance per
        # street context is in no column of the summary but its words)
        files = dict.fromkeys(city_standards(region, cid) for cid in cities)
        standards = [std for f in files for std in load_standards(f).standards.values()]
        save_map(
            region_map(summary, outlines, title=title, standards=standards), stage / "map.html"
        )
    page = region_index_html(
        title,
        table if len(summary) else summary,
        outcomes,
        city_folders={names[c]: city.id for c, city in cities.items()},
    )
    write_atomic(stage / "index.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))


def merge_district_parts(
    base: Path,
    city: City,
    parts: list[Path],
    *,
    maps: bool,
    standards: Sequence[Standard] = (),
) -> list[Path]:
    """Put the outputs of a city measured one district at a time (each `part` holds a
    ``walkcover run`` of one district) into ``base/<city>``: each district's folder swapped in
    whole, the rows of ``summary.csv`` and ``district_indicators.csv`` merged (other districts'
    rows kept), ``group_summary.csv`` made again; the city's ``map.html`` and ``index.html`` are
    drawn from the merged summary (districts coloured per standard; `standards`, those the
    districts were measured by, give the map's legend every distance of each)."""
    import shutil

    from walkcover.presentation.city_map import region_map
    from walkcover.presentation.report import split_city_index_html
    from walkcover.presentation.web_map import save_map

    city_dir = base / city.id
    recover_city_files(base, city_dir)
    written: list[Path] = []
    tables: dict[str, list[pd.DataFrame]] = {"summary": [], "district_indicators": []}
    slugs = []
    for part in parts:
        src = part / city.id
        for folder in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
            final = inside(base, city_dir / folder.name, what="district folder")
            with staged_folder(final) as stage:
                for item in folder.iterdir():
                    shutil.move(str(item), stage / item.name)
            written.append(city_dir / folder.name)
            slugs.append(folder.name)
        for name in tables:  # the parts' tables as typed Parquet, never their CSVs
            tables[name].append(_ids_as_text(read_table_parquet(src / f"{name}.parquet")))
    merged = {}
    for name, frames in tables.items():
        mine = pd.concat(frames, ignore_index=True)
        earlier = read_earlier_rows(city_dir / f"{name}.csv", like=mine)  # an earlier run's rows
        merged[name] = merged_rows(mine, earlier, slugs)
    summary = merged["summary"]
    groups = city.config.groups
    city_tables = CityTables(
        summary=summary,
        indicators=merged["district_indicators"],
        groups=group_summary(summary, groups) if groups else None,
    )
    polys = city.districts.set_index("district_id").geometry
    polys.index = polys.index.astype(str)
    geo = gpd.GeoDataFrame(
        summary.assign(city_name=city.config.name),
        geometry=polys.reindex(summary["district_id"]).to_numpy(),
        crs=4326,
    )
    page = split_city_index_html(city, summary)

    def pages(stage: Path) -> None:
        if maps:
            outline = gpd.GeoDataFrame(
                {"name": [city.config.name]}, geometry=[city.districts.union_all()], crs=4326
            )
            title = f"{city.config.name} / {city.config.name_en}"
            save_map(region_map(geo, outline, title=title, standards=standards), stage / "map.html")
        write_atomic(stage / "index.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))

    built = write_city_set(city_dir, city_tables, pages=pages)
    return [*written, *built.written]
