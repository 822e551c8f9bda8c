"""The GeoPackage a district's layers are written to: one geometry type per layer, QGIS styles in
its ``layer_styles`` table, written atomically."""

from __future__ import annotations

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


def write_layers(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> Path:
    """Write `layers` (name → frame) into one GeoPackage, atomically: one geometry type per layer
    (`single_type_layers`) and QGIS styles in its ``layer_styles`` table (`styles`)."""
    from walkcover.presentation.styles import layer_styles, write_layer_styles

    split: dict[str, gpd.GeoDataFrame] = {}
    for name, frame in layers.items():
        split.update(single_type_layers(name, frame))
    families = {n: f for routes in SPLIT_LAYERS.values() for f, n in routes.items()}
    kinds = {
        name: (
            families.get(name, "polygon"),
            [c.removesuffix("_band") for c in frame.columns if c.endswith("_band")],
        )
        for name, frame in split.items()
    }

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
        write_layer_styles(tmp, layer_styles(kinds))

    return write_atomic(path, write)
