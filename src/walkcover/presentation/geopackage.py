"""The GeoPackage a district's layers are written to: one geometry type per layer, QGIS styles in
its ``layer_styles`` table, written atomically."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from walkcover._atomic import write_atomic

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


def write_layers(
    path: Path,
    layers: dict[str, gpd.GeoDataFrame],
    *,
    project: Path | None = None,
    title: str = "walkcover",
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Write `layers` (name → frame) into one GeoPackage, atomically: one geometry type per layer
    (`single_type_layers`) and QGIS styles in its ``layer_styles`` table (`styles`).

    Parameters
    ----------
    path
        The GeoPackage to write.
    layers
        Layer name → frame; homes (``demand``) first, as their ``<standard>_band`` columns give
        the standards' order every layer's styles follow.
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

    split: dict[str, gpd.GeoDataFrame] = {}
    for name, frame in layers.items():
        split.update(single_type_layers(name, frame))
    families = {n: f for routes in SPLIT_LAYERS.values() for f, n in routes.items()}
    # the run's standards, in its order: the homes' band columns (not those after new sites)
    order = [
        c.removesuffix("_band")
        for frame in layers.values()
        for c in frame.columns
        if c.endswith("_band") and not c.endswith("_after_band")
    ]
    kinds = {}
    for name, frame in split.items():
        present = (
            [str(v) for v in frame["standard"].dropna().unique()] if "standard" in frame else []
        )
        # every standard of the run, so that a standard keeps its symbol (and its place in the
        # legend) on every layer and in every district; then any other the layer holds
        run = list(dict.fromkeys(order)) if "standard" in frame else []
        kinds[name] = LayerKind(
            families.get(name, "polygon"),
            tuple(str(c) for c in frame.columns if c != frame.geometry.name),
            tuple(run + [s for s in present if s not in run]),
        )
    styles = layer_styles(kinds, labels=labels)

    def write(tmp: Path) -> None:
        for i, (name, layer) in enumerate(split.items()):
            # GeoPackage 1.2: GDAL before 3.7 (QGIS 3.28 LTR, Debian 12's ogrinfo) warns on every
            # open of the 1.4 files newer GDAL writes by default; nothing here needs 1.4
            first = {"VERSION": "1.2"} if i == 0 else {}
            # through Arrow from `ARROW_ROWS`: the same layers and types, written in half the time
            layer.to_file(
                tmp,
                layer=name,
                driver="GPKG",
                mode="w" if i == 0 else "a",
                use_arrow=len(layer) >= ARROW_ROWS,
                **first,
            )
        write_layer_styles(tmp, styles)

    write_atomic(path, write)
    if project is not None:
        from walkcover.presentation.qgis_project import ProjectLayer, write_qgis_project

        crs = next((f.crs for f in split.values() if f.crs is not None), None)
        if crs is not None:
            project_layers = [
                ProjectLayer(
                    name,
                    kinds[name].family,
                    _geometry_type(frame),
                    _bounds(frame),
                    [s for s in styles if s.layer == name],
                )
                for name, frame in split.items()
            ]
            write_qgis_project(
                project, gpkg_name=Path(path).name, layers=project_layers, crs=crs, title=title
            )
    return Path(path)


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
