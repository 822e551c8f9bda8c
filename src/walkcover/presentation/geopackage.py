"""The GeoPackage a district's layers are written to: one geometry type per layer, QGIS styles in
its ``layer_styles`` table, written atomically."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import shapely

from walkcover._atomic import storage_errors, write_atomic

#: Where a layer's features of each geometry family go: one geometry type per layer, so QGIS and
#: ArcGIS open each as one layer (a mixed layer splits into sub-layers). The first name always
#: exists; the others only when the run has such features.
SPLIT_LAYERS = {
    "facilities": {"point": "facilities", "polygon": "facility_areas", "line": "facility_lines"},
    "demand": {"polygon": "demand", "point": "demand_points", "line": "demand_lines"},
}
_FAMILY = {0: "point", 4: "point", 1: "line", 2: "line", 5: "line", 3: "polygon", 6: "polygon"}


def single_type_layers(name: str, frame: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """`frame` as layers of one geometry type each (`SPLIT_LAYERS`); polygons and lines promoted
    to their multi types so a layer never mixes Polygon and MultiPolygon."""
    routes = SPLIT_LAYERS.get(name)
    if routes is None:
        return {name: frame}
    geoms = frame.geometry.to_numpy()
    family = np.array([_FAMILY.get(int(t), "other") for t in shapely.get_type_id(geoms)])
    out: dict[str, gpd.GeoDataFrame] = {}
    first = next(iter(routes.values()))
    for fam, layer in routes.items():
        mask = family == fam
        if not mask.any() and layer != first:
            continue
        part = frame[mask].reset_index(drop=True)
        if fam != "point" and len(part):
            parts, idx = shapely.get_parts(part.geometry.to_numpy(), return_index=True)
            multi = shapely.multipolygons if fam == "polygon" else shapely.multilinestrings
            part = part.set_geometry(multi(parts, indices=idx))
        out[layer] = part
    return out


#: Rows from which a layer is written through Arrow (pyogrio's ``use_arrow``): faster for large
#: layers (3,000 homes: 32 against 55 ms), slower for small ones, and by 15-20 ms for the first
#: layer a process writes (pyarrow's pandas conversion loads then). Both write the same fields,
#: types and values.
ARROW_ROWS = 500


@dataclass(frozen=True)
class Written:
    """What the styles and the project need to know of a layer once written."""

    columns: tuple[str, ...]
    standards: tuple[str, ...]
    geometry_type: str
    bounds: tuple[float, float, float, float] | None
    crs: Any


@dataclass(frozen=True)
class Kept:
    """A layer kept, written, in a GeoPackage of its own (`walkcover.presentation.layer_store`):
    ``start(tmp)`` makes the GeoPackage being written at `tmp` holding that layer alone (a copy of
    the kept file) and says what it wrote."""

    start: Callable[[Path], Written]


#: A layer given whole, or in parts (frames of the same columns and geometry type, put end to end:
#: each part is written, then let go, before the next is made), or kept (`Kept`).
Layer: TypeAlias = gpd.GeoDataFrame | Iterator[gpd.GeoDataFrame] | Kept


def _describe(frame: gpd.GeoDataFrame) -> Written:
    present = (
        tuple(str(v) for v in frame["standard"].dropna().unique()) if "standard" in frame else ()
    )
    return Written(
        tuple(str(c) for c in frame.columns if c != frame.geometry.name),
        present,
        _geometry_type(frame),
        _bounds(frame),
        frame.crs,
    )


def write_layers(
    path: Path,
    layers: Mapping[str, Layer],
    *,
    project: Path | None = None,
    title: str = "walkcover",
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Write `layers` (name → frame, or an iterator of its parts) into one GeoPackage,
    atomically: one geometry type per layer (`single_type_layers`) and QGIS styles in its
    ``layer_styles`` table (`styles`).

    Parameters
    ----------
    path
        The GeoPackage to write.
    layers
        Layer name → frame; homes (``demand``) first, as their ``<standard>_band`` columns give
        the standards' order every layer's styles follow. A layer too large to hold at once
        (a district's streets) may come in parts: frames with the same columns and one geometry
        type, written one after the other through Arrow into one layer (`ARROW_ROWS` does not
        apply), each made only when the one before is written. One layer may be `Kept` (a
        district's streets, from the cache): the file then begins as its copy, and the others
        are added to it; the styles and the project still list the layers in the order given.
    project
        Also write a QGIS project there (``coverage.qgz``, in the same folder as `path`) that
        opens every layer with its styles (`walkcover.presentation.qgis_project`).
    title
        The project's title.
    labels
        Standard id → its name in the styles' legends (e.g. "Public toilet · 公厕").

    Returns
    -------
    pathlib.Path
        `path`.
    """
    from walkcover.presentation.styles import LayerKind, layer_styles, write_layer_styles

    families = {n: f for routes in SPLIT_LAYERS.values() for f, n in routes.items()}
    written: dict[str, Written] = {}

    def kinds() -> dict[str, LayerKind]:
        # the run's standards, in its order: the homes' band columns (not those after new sites)
        order = [
            c.removesuffix("_band")
            for w in written.values()
            for c in w.columns
            if c.endswith("_band") and not c.endswith("_after_band")
        ]
        out = {}
        for name, w in written.items():
            # every standard of the run, so that a standard keeps its symbol (and its place in
            # the legend) on every layer and in every district; then any other the layer holds
            run = list(dict.fromkeys(order)) if "standard" in w.columns else []
            out[name] = LayerKind(
                families.get(name, "polygon"),
                w.columns,
                tuple(run + [s for s in w.standards if s not in run]),
            )
        return out

    def write(tmp: Path) -> None:
        written.clear()
        kept = {name: k for name, k in layers.items() if isinstance(k, Kept)}
        if len(kept) > 1:
            raise ValueError(
                f"layers {', '.join(map(repr, kept))} are all kept: a file starts as one copy"
            )
        fresh = not kept
        for name, k in kept.items():  # the file begins as the kept layer's copy
            written[name] = k.start(tmp)
        order: list[str] = []
        for name, given in layers.items():
            if isinstance(given, Kept):
                order.append(name)
                continue
            split = (
                single_type_layers(name, given)
                if isinstance(given, gpd.GeoDataFrame)
                else {name: given}
            )
            for layer_name, layer in split.items():
                written[layer_name] = write_layer(tmp, layer_name, layer, first=fresh)
                order.append(layer_name)
                fresh = False
        # the styles and the project list the layers in the order given, a kept one too
        ordered = {name: written[name] for name in order}
        written.clear()
        written.update(ordered)
        write_layer_styles(tmp, layer_styles(kinds(), labels=labels))

    with _gdal_date_fixed(), storage_errors(path):
        write_atomic(path, write)
    crs = next((w.crs for w in written.values() if w.crs is not None), None)
    if project is not None and crs is not None:
        from walkcover.presentation.qgis_project import ProjectLayer, write_qgis_project

        styles = layer_styles(kinds(), labels=labels)
        project_layers = [
            ProjectLayer(
                name,
                kind.family,
                written[name].geometry_type,
                written[name].bounds,
                [s for s in styles if s.layer == name],
            )
            for name, kind in kinds().items()
        ]
        write_qgis_project(
            project, gpkg_name=Path(path).name, layers=project_layers, crs=crs, title=title
        )
    return Path(path)


def write_layer(tmp: Path, name: str, layer: Layer, *, first: bool) -> Written:
    """Write `layer` (one geometry type: `single_type_layers`) as layer `name` of GeoPackage `tmp`,
    which it makes when `first` (else adds the layer to it); what the styles and the project
    need to know of it. A file that cannot be written raises `OSError` (`storage_errors`)."""
    with storage_errors(tmp):
        return _write_layer(tmp, name, layer, first=first)


def _write_layer(tmp: Path, name: str, layer: Layer, *, first: bool) -> Written:
    if isinstance(layer, Kept):
        raise TypeError(f"layer {name!r} is kept: `write_layers` starts its file with it")
    # GeoPackage 1.2: GDAL before 3.7 (QGIS 3.28 LTR, Debian 12's ogrinfo) warns on every open of
    # the 1.4 files newer GDAL writes by default; nothing here needs 1.4
    options = {"VERSION": "1.2"} if first else {}
    if isinstance(layer, gpd.GeoDataFrame):
        # through Arrow from `ARROW_ROWS`: the same layers and types, written in half the time
        layer.to_file(
            tmp,
            layer=name,
            driver="GPKG",
            mode="w" if first else "a",
            use_arrow=len(layer) >= ARROW_ROWS,
            **options,
        )
        return _describe(layer)
    return _write_parts(tmp, name, layer, append=not first, **options)


_date_lock = threading.Lock()
_date_writers = 0
_date_before: str | None = None


@contextmanager
def _gdal_date_fixed() -> Iterator[None]:
    """GDAL's ``OGR_CURRENT_DATE`` set to `styles.STAMP` while any GeoPackage is being written.

    GDAL stamps a layer's ``last_change`` when it makes it and again as it closes it, that second
    time in a transaction of its own only when the clock has moved on: whether it has decides the
    file's SQLite change counter (one run in four on a small layer), so two runs differed in
    their header. With the date fixed GDAL commits the same transactions every time. The option
    is process-wide: it is set when the first writer starts and the value before it is put back
    when the last one ends (two districts are written at once)."""
    global _date_writers, _date_before
    from pyogrio import get_gdal_config_option, set_gdal_config_options

    from walkcover.presentation.styles import STAMP

    with _date_lock:
        if _date_writers == 0:
            _date_before = get_gdal_config_option("OGR_CURRENT_DATE")
            set_gdal_config_options({"OGR_CURRENT_DATE": STAMP})
        _date_writers += 1
    try:
        yield
    finally:
        with _date_lock:
            _date_writers -= 1
            if _date_writers == 0:
                set_gdal_config_options({"OGR_CURRENT_DATE": _date_before})


def _write_parts(
    tmp: Path, name: str, parts: Iterator[gpd.GeoDataFrame], *, append: bool, **options: str
) -> Written:
    """Write the frames `parts` end to end as layer `name` of GeoPackage `tmp`, in one pass of
    GDAL through an Arrow stream: each part is made when GDAL asks for it, and let go once
    written (one part, or none with rows, is written as a frame). Returns what the styles and
    the project need to know of the layer."""
    import pandas as pd
    import pyarrow as pa
    from pyogrio.raw import write_arrow

    it = iter(parts)
    head = next(it, None)
    if head is None:
        raise ValueError(f"layer {name!r}: no parts were given (give one empty frame for none)")
    second = next(it, None)
    if second is None or not len(head):
        frame = head if second is None else pd.concat([head, second, *it], ignore_index=True)
        return write_layer(tmp, name, frame, first=not append)
    geometry_name = head.geometry.name
    columns = [c for c in head.columns if c != geometry_name]
    geometry_type = _geometry_type(head)
    crs = head.crs
    boxes: list[tuple[float, float, float, float]] = []
    standards: dict[str, None] = {}

    def table(part: gpd.GeoDataFrame) -> pd.DataFrame:
        if [c for c in part.columns if c != part.geometry.name] != columns:
            raise ValueError(f"layer {name!r}: a part's columns differ from the first part's")
        kind = _geometry_type(part)
        if kind not in (geometry_type, "Unknown"):
            raise ValueError(f"layer {name!r}: a part of {kind}, after parts of {geometry_type}")
        box = _bounds(part)
        if box is not None:
            boxes.append(box)
        if "standard" in part:
            standards.update(dict.fromkeys(str(v) for v in part["standard"].dropna().unique()))
        out = pd.DataFrame({c: part[c] for c in columns})
        out[geometry_name] = shapely.to_wkb(part.geometry.to_numpy())  # as pyogrio writes frames
        return out

    first = pa.RecordBatch.from_pandas(table(head), preserve_index=False)
    # GDAL has no null type: a column without a value in the first part is text (as pyogrio
    # writes a frame's)
    schema = pa.schema(
        [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in first.schema]
    ).remove_metadata()
    del head

    failed: list[BaseException] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield first.cast(schema) if first.schema != schema else first
            for part in itertools.chain([second], it):
                yield pa.RecordBatch.from_pandas(table(part), schema=schema, preserve_index=False)
        except BaseException as exc:  # GDAL says only that the stream failed: this says why
            failed.append(exc)
            raise

    epsg = crs.to_epsg() if crs is not None else None
    try:
        write_arrow(
            pa.RecordBatchReader.from_batches(schema, batches()),
            tmp,
            layer=name,
            driver="GPKG",
            geometry_name=geometry_name,
            geometry_type=geometry_type,
            crs=f"EPSG:{epsg}" if epsg else (crs.to_wkt("WKT1_GDAL") if crs is not None else None),
            append=append,
            **options,
        )
    except Exception as exc:
        if failed:
            raise failed[0] from exc
        raise
    bounds = None
    if boxes:
        b = np.array(boxes)
        bounds = (
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        )
    return Written(tuple(columns), tuple(standards), geometry_type, bounds, crs)


def _geometry_type(frame: gpd.GeoDataFrame) -> str:
    """The layer's geometry type as GDAL writes it (one per layer: `single_type_layers`)."""
    types = frame.geometry.dropna().geom_type.unique()
    return str(types[0]) if len(types) else "Unknown"


def _bounds(frame: gpd.GeoDataFrame) -> tuple[float, float, float, float] | None:
    if frame.empty:
        return None
    xmin, ymin, xmax, ymax = (float(v) for v in frame.total_bounds)
    if not all(np.isfinite((xmin, ymin, xmax, ymax))):
        return None
    return (xmin, ymin, xmax, ymax)
