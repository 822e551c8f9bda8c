"""Write a run's files: per-district GeoPackages and the city summary CSV, atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pandas as pd

from walkcover._errors import OutputExistsError
from walkcover.assessment import FACILITY_OUTPUT_COLUMNS, Assessment, search_limit_m
from walkcover.gaps import district_gaps, district_service_areas
from walkcover.indicators import group_summary


def district_dir(out: Path, city_id: str, slug: str) -> Path:
    return Path(out) / city_id / slug


def planned_outputs(out: Path, city_id: str, slugs: list[str]) -> list[Path]:
    """Every file a run over `slugs` writes."""
    files = [district_dir(out, city_id, s) / "coverage.gpkg" for s in slugs]
    return [
        *files,
        Path(out) / city_id / "summary.csv",
        Path(out) / city_id / "district_indicators.csv",
    ]


def check_outputs(paths: list[Path], *, overwrite: bool) -> None:
    """Refuse to start when outputs exist and `overwrite` is off, before any work is done."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        shown = ", ".join(str(p) for p in existing[:3]) + (" …" if len(existing) > 3 else "")
        raise OutputExistsError(
            f"--out already holds results ({shown}); pass --overwrite to replace them or choose "
            "another --out folder"
        )


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final`, renamed onto it only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as GDAL want to create the file themselves
    try:
        yield tmp
        tmp.replace(final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(final: Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp)``, then move the finished file onto `final`."""
    with atomic_path(final) as tmp:
        writer(tmp)
    return Path(final)


_PER_STANDARD = (
    "dist_m",
    "covered",
    "status",
    "context",
    "safe_dist_m",
    "safe_covered",
    "safe_status",
)


def demand_layer(assessment: Assessment, district_id: str) -> gpd.GeoDataFrame:
    """The ``demand`` layer of one district: geometry, ``osm_id``, residents and per-standard results."""
    d = assessment.demand
    cols = ["osm_id", "kind", "building", "levels", "levels_from", "floor_area_m2", "residents"]
    for s in assessment.standards:
        cols += [
            c
            for c in d.columns
            if c.startswith(f"{s.id}_") and c.removeprefix(f"{s.id}_") in _PER_STANDARD
        ]
    sub = d.loc[d["district_id"] == district_id, [*cols, "geometry"]]
    return gpd.GeoDataFrame(sub.reset_index(drop=True), geometry="geometry", crs=d.crs)


def facilities_layer(assessment: Assessment, district_geom) -> gpd.GeoDataFrame:
    """Facilities inside the district or within reach of it (those that can serve it)."""
    f = assessment.facilities
    limit = {s.id: search_limit_m(s, assessment.city) for s in assessment.standards}
    reach = f.geometry.distance(district_geom).to_numpy() <= f["standard"].map(limit).to_numpy(
        float
    )
    sub = f.loc[reach, [*FACILITY_OUTPUT_COLUMNS, "geometry"]]
    return gpd.GeoDataFrame(sub.reset_index(drop=True), geometry="geometry", crs=f.crs)


def read_proposed(out: Path, city_id: str, slug: str) -> gpd.GeoDataFrame | None:
    """The ``proposed_sites`` layer an earlier ``walkcover site`` wrote for a district, if any."""
    import pyogrio

    gpkg = district_dir(out, city_id, slug) / "coverage.gpkg"
    if not gpkg.exists() or "proposed_sites" not in {n for n, _ in pyogrio.list_layers(gpkg)}:
        return None
    return gpd.read_file(gpkg, layer="proposed_sites")


def write_maps(assessment: Assessment, out: Path, *, tiles: str | None = None) -> list[Path]:
    """``map.html`` per district (with earlier proposed sites) and the city ``map.html``."""
    from walkcover.maps import city_map, district_map, save_map

    city_id = assessment.city.id
    written = []
    for _, drow in assessment.districts.iterrows():
        proposed = read_proposed(out, city_id, drow["slug"])
        m = district_map(assessment, drow["district_id"], proposed=proposed, tiles=tiles)
        written.append(save_map(m, district_dir(out, city_id, drow["slug"]) / "map.html"))
    written.append(save_map(city_map(assessment, tiles=tiles), Path(out) / city_id / "map.html"))
    return written


def write_outputs(
    assessment: Assessment, out: Path, *, overwrite: bool, excel: bool = False
) -> list[Path]:
    """Write ``<out>/<city>/<district>/coverage.gpkg`` per district and ``<out>/<city>/summary.csv``.

    Rows of `summary.csv` for districts outside this run are kept, so districts can be run one by
    one. Every file is written to a temporary file and renamed into place.
    """
    city_id = assessment.city.id
    slugs = list(assessment.districts["slug"])
    check_outputs(planned_outputs(out, city_id, slugs), overwrite=overwrite)
    written = []
    d_proj = assessment.districts.to_crs(assessment.crs)
    for (_, drow), geom in zip(assessment.districts.iterrows(), d_proj.geometry):
        path = district_dir(out, city_id, drow["slug"]) / "coverage.gpkg"
        demand = demand_layer(assessment, drow["district_id"])
        facilities = facilities_layer(assessment, geom)
        proposed = read_proposed(out, city_id, drow["slug"])  # an earlier `site` proposal is kept
        gaps = district_gaps(assessment, drow["district_id"])
        areas = district_service_areas(assessment, drow["district_id"])

        def write(
            tmp: Path,
            demand=demand,
            facilities=facilities,
            proposed=proposed,
            gaps=gaps,
            areas=areas,
        ) -> None:
            demand.to_file(tmp, layer="demand", driver="GPKG")
            facilities.to_file(tmp, layer="facilities", driver="GPKG", mode="a")
            gaps.to_file(tmp, layer="gaps", driver="GPKG", mode="a")
            areas.to_file(tmp, layer="service_areas", driver="GPKG", mode="a")
            if proposed is not None:
                proposed.to_file(tmp, layer="proposed_sites", driver="GPKG", mode="a")

        written.append(write_atomic(path, write))
    for name, table in (
        ("summary.csv", assessment.summary),
        ("district_indicators.csv", assessment.district_rows),
    ):
        written.append(_merge_csv(Path(out) / city_id / name, table, slugs, excel=excel))
    groups = assessment.city.config.groups
    if groups:
        summary = pd.read_csv(
            Path(out) / city_id / "summary.csv", dtype={"district_id": str}, encoding="utf-8-sig"
        )
        table = group_summary(summary, groups)
        if len(table):
            written.append(write_csv(Path(out) / city_id / "group_summary.csv", table, excel=excel))
    return written


def write_csv(path: Path, table: pd.DataFrame, *, excel: bool = False) -> Path:
    """A CSV written atomically; with `excel`, UTF-8 with BOM so Chinese Excel opens it right."""
    enc = "utf-8-sig" if excel else "utf-8"
    return write_atomic(path, lambda tmp: table.to_csv(tmp, index=False, encoding=enc))


def _merge_csv(path: Path, table: pd.DataFrame, slugs: list[str], *, excel: bool = False) -> Path:
    """Write `table`, keeping the rows of districts outside this run from an existing file."""
    if path.exists():
        old = pd.read_csv(path, dtype={"district_id": str}, encoding="utf-8-sig")
        old = old[~old["district"].isin(slugs)]
        if len(old):
            table = pd.concat([old.astype(object), table.astype(object)], ignore_index=True)
    return write_csv(path, table, excel=excel)


def write_proposed_sites(
    assessment: Assessment,
    district: pd.Series,
    sites: gpd.GeoDataFrame,
    out: Path,
    *,
    overwrite: bool,
) -> list[Path]:
    """Add the ``proposed_sites`` of one standard to the district's ``coverage.gpkg`` and
    ``proposed_sites.csv``, replacing that standard's earlier proposal only with `overwrite`.

    The GeoPackage is rebuilt in a temporary file (its other layers copied) and renamed into place;
    without an earlier ``run`` it also gets the ``demand`` and ``facilities`` layers.
    """
    import pyogrio

    folder = district_dir(out, assessment.city.id, district["slug"])
    gpkg, csv = folder / "coverage.gpkg", folder / "proposed_sites.csv"
    standard = str(sites["standard"].iloc[0]) if len(sites) else ""
    layers: dict[str, gpd.GeoDataFrame] = {}
    if gpkg.exists():
        for name, _ in pyogrio.list_layers(gpkg):
            layers[name] = gpd.read_file(gpkg, layer=name)
    else:
        geom = (
            assessment.districts.to_crs(assessment.crs)
            .set_index("district_id")
            .geometry[district["district_id"]]
        )
        layers["demand"] = demand_layer(assessment, district["district_id"])
        layers["facilities"] = facilities_layer(assessment, geom)
    old = layers.get("proposed_sites")
    if old is not None and len(old):
        if (old["standard"] == standard).any() and not overwrite:
            raise OutputExistsError(
                f"{gpkg} already holds proposed sites for {standard}; pass --overwrite to replace them"
            )
        sites = pd.concat(
            [old[old["standard"] != standard].to_crs(sites.crs), sites], ignore_index=True
        )
    layers["proposed_sites"] = gpd.GeoDataFrame(sites, geometry="geometry", crs=sites.crs)

    def write(tmp: Path) -> None:
        for i, (name, layer) in enumerate(layers.items()):
            layer.to_file(tmp, layer=name, driver="GPKG", mode="w" if i == 0 else "a")

    written = [write_atomic(gpkg, write)]
    table = pd.DataFrame(layers["proposed_sites"].drop(columns="geometry"))
    pts = layers["proposed_sites"].geometry.to_crs(4326)
    table["lon"], table["lat"] = pts.x.round(7), pts.y.round(7)
    written.append(write_atomic(csv, lambda tmp: table.to_csv(tmp, index=False)))
    return written
