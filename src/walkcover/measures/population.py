"""Residents per demand unit: from a population raster, and scaled to known district totals."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover._errors import ConfigError, SourceError

if TYPE_CHECKING:
    from affine import Affine


#: More people per hectare than a raster cell can hold (the densest blocks on Earth hold about
#: 1,000 per ha): a raster above it holds something else, and is refused.
MAX_PEOPLE_PER_HA = 10_000


def _window(src, bounds: np.ndarray, *, path: Path, max_cells: int, label: str):
    """The raster window over `bounds` (in the raster's CRS): every cell the bounds touch, so every
    cell whose centre lies in them, refused when it misses the raster or is too many cells to read.

    The window is the range of cell indices of rasterio's fractional window
    (`rasterio.windows.from_bounds`), its start floored and its end ceiled. Flooring the start but
    rounding the length to the nearest (``round_offsets().round_lengths()``) ends the window short
    by the start's fraction: at about half the alignments it dropped the last column or row, and
    the residents of the cells along the districts' east or south edge. A cell too many on an edge
    is harmless: cells count by their centres."""
    import rasterio.windows
    from rasterio.errors import WindowError

    x0, y0, x1, y1 = bounds
    r = src.bounds
    if x1 < r.left or x0 > r.right or y1 < r.bottom or y0 > r.top:
        raise SourceError(
            f"{label} {str(path)!r} does not cover the districts: it spans "
            f"{r.left:.6g}, {r.bottom:.6g} to {r.right:.6g}, {r.top:.6g} in {src.crs.to_string()}, the "
            f"districts {x0:.6g}, {y0:.6g} to {x1:.6g}, {y1:.6g} in that CRS. Pass the raster of "
            "this city, or fix its CRS if it is labelled wrong"
        )
    try:
        fraction = rasterio.windows.from_bounds(x0, y0, x1, y1, transform=src.transform)
        (row0, row1), (col0, col1) = fraction.toranges()
        row0, col0 = math.floor(row0), math.floor(col0)  # may be negative: clipped below
        touched = rasterio.windows.Window(
            col0, row0, math.ceil(col1) - col0, math.ceil(row1) - row0
        )
        window = touched.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
    except WindowError as exc:
        raise SourceError(
            f"{label} {str(path)!r} does not overlap the districts ({exc}); check its CRS"
        ) from None
    cells = int(window.width) * int(window.height)
    if cells > max_cells:
        cx, cy = abs(src.transform.a), abs(src.transform.e)
        raise SourceError(
            f"{label} {str(path)!r} has cells of {cx:g} × {cy:g} ({src.crs.to_string()}): "
            f"{cells:,} cells over the districts, about {cells * 8 / 1e9:.0f} GB to read. Population "
            "rasters are 30–1,000 m (WorldPop 100 m); resample it first, e.g. "
            "gdalwarp -tr 100 100 -r sum in.tif out.tif"
        )
    return window


def _epsg(crs: object) -> int | None:
    """`crs`'s EPSG code, or None. A GeoTIFF's own code first (rasterio's CRS keeps the one it was
    written with; pyproj, identifying the WKT rasterio gives it, finds none for EPSG:3067)."""
    import pyproj

    own = getattr(crs, "to_epsg", None)
    code = own() if callable(own) else pyproj.CRS.from_user_input(crs).to_epsg()
    return int(code) if code is not None else None


def _same_crs(a: object, b: object) -> bool:
    """Whether two CRSs (rasterio's, pyproj's, or anything pyproj reads) are the same: by EPSG code
    where both have one, else by pyproj's comparison of the two, axis order aside."""
    import pyproj

    ea, eb = _epsg(a), _epsg(b)
    if ea is not None and eb is not None:
        return ea == eb
    ca, cb = pyproj.CRS.from_user_input(a), pyproj.CRS.from_user_input(b)
    return bool(ca.equals(cb, ignore_axis_order=True))


def _crs_name(crs: object) -> str:
    """A CRS as a reader knows it: ``EPSG:3067 (EUREF-FIN / TM35FIN(E,N))``."""
    import pyproj

    name = pyproj.CRS.from_user_input(crs).name
    epsg = _epsg(crs)
    return f"EPSG:{epsg} ({name})" if epsg is not None else name


def allocate_raster(
    units: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    raster_path: str | Path,
    *,
    weight: np.ndarray,
    max_cells: int = 100_000_000,
    cells_as_units: Iterable[str] = (),
    units_per: Literal["people", "per_ha"] = "people",
    label: str = "population raster",
    notes: list[str] | None = None,
) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Allocate a population raster (GeoTIFF, any CRS, e.g. WorldPop) to demand units.

    Each raster cell whose centre lies in a district gives its people to the units of that district
    whose representative point falls in the cell, in proportion to `weight` (floor area); a cell with
    people but no unit gives them to the nearest unit of the same district. So the units of a district
    hold exactly the raster's people of that district: the sum of its cells whose centres lie in it.

    A raster in another CRS than the units' (the working CRS) is not resampled: the districts and
    the units' points are projected onto its grid, each of its cells counts whole by its centre, and
    `notes` says so.

    Parameters
    ----------
    units
        Demand units (projected) with ``district_id``.
    districts
        The districts (any CRS) with ``district_id``.
    raster_path
        The population raster; nodata, non-finite and negative cells count as 0. A raster holding
        only nodata over the districts is refused.
    weight
        Per unit, its share key within a cell (e.g. floor area); non-positive weights become 1.
    max_cells
        Refuse a raster whose window over the districts holds more cells than this (a 0.1 m
        raster over a city would need hundreds of GB); population rasters are 30–1,000 m.
    units_per
        What a cell holds: ``people``, or persons ``per_ha`` (multiplied by each cell's area: on
        the ellipsoid for a raster in degrees).
    cells_as_units
        Districts whose buildings are too incomplete to carry the raster's people: there a cell
        with people but no unit is returned as a place of its own instead of being given to the
        nearest unit.
    label
        What the raster is to the user (the option or config key that named it), for messages:
        ``population raster``, ``population.groups.over_65 raster``.
    notes
        Where to append what a planner must know about the raster (its CRS is not the working
        CRS); None: not said.

    Returns
    -------
    (numpy.ndarray, geopandas.GeoDataFrame)
        Residents per unit, and the cells returned as places of their own (``people``,
        ``district_id``, ``row``, ``col`` in the whole raster, the cell polygon in the raster's CRS).

    Raises
    ------
    SourceError
        When the raster is missing, unreadable, has no CRS, misses the districts, has too many
        cells over them, or holds only nodata there.
    """
    import rasterio
    import rasterio.windows
    from rasterio.errors import RasterioIOError

    path = Path(raster_path)
    if not path.is_file():
        raise SourceError(f"{label} {str(path)!r} does not exist; pass an existing GeoTIFF")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise SourceError(f"{label} {str(path)!r} could not be read: {exc}") from exc
    with src:
        if src.crs is None:
            raise SourceError(
                f"{label} {str(path)!r} has no CRS; walkcover cannot place it. Set it, e.g. "
                f"gdal_edit.py -a_srs EPSG:4326 {path.name}"
            )
        d_r = districts.to_crs(src.crs)
        window = _window(src, d_r.total_bounds, path=path, max_cells=max_cells, label=label)
        read = src.read(1, window=window, masked=True)
        transform = src.window_transform(window)
        crs = src.crs
        nodata = src.nodata
    empty = np.ma.getmaskarray(read) | ~np.isfinite(read.data)
    if empty.size and empty.all():
        said = f"nodata {nodata:g}" if nodata is not None else "masked or NaN"
        raise SourceError(
            f"{label} {str(path)!r} holds only nodata over the districts ({empty.size:,} cells, "
            f"all {said}): it has no residents to give. Pass a raster with people over this "
            f"city, or fix its nodata value if it is set wrong (gdal_edit.py -a_nodata VALUE "
            f"{path.name})"
        )
    data = np.where(empty, 0.0, read.data.astype(float))
    data[data < 0] = 0.0
    if notes is not None and units.crs is not None and not _same_crs(crs, units.crs):
        notes.append(
            f"{label} {path.name} is in {_crs_name(crs)}, not the working CRS "
            f"{_crs_name(units.crs)}: the districts and homes were projected onto its grid, and "
            "each of its cells counts whole, in the district holding its centre (not resampled: "
            "its people are kept)"
        )
    if not (data > 0).any():
        raise SourceError(
            f"{label} {str(path)!r} holds no positive count over the districts (every cell is 0 "
            "or negative, and negatives count as 0): it has no residents to give. Pass a raster "
            f"with people over this city, or set its nodata value (gdal_edit.py -a_nodata VALUE "
            f"{path.name})"
        )
    area_ha = cell_area_ha(transform, crs, data.shape[0])[:, None]
    per_ha = data if units_per == "per_ha" else data / np.where(area_ha > 0, area_ha, np.inf)
    if float(per_ha.max()) > MAX_PEOPLE_PER_HA:
        raise SourceError(
            f"{label} {str(path)!r} has cells of {float(per_ha.max()):.3g} people per hectare, more "
            f"than any place holds (the densest city blocks: about 1,000; refused above "
            f"{MAX_PEOPLE_PER_HA:,}): its values are not residents (a scale factor, a nodata value "
            "not declared as such, or per_ha read as people?); fix the raster or "
            "population.raster_units"
        )
    if units_per == "per_ha":
        data *= area_ha
    cells = _populated_cells(data, transform, crs, d_r)
    # Which cell of the window each unit's representative point is in; -1 outside it (a row-major
    # index of a point beyond the last column would name the next row's first cell).
    pts = gpd.GeoSeries(units.geometry.representative_point(), crs=units.crs).to_crs(crs)
    inv = ~transform
    ucol, urow = inv @ (shapely.get_x(pts.to_numpy()), shapely.get_y(pts.to_numpy()))
    n_rows, n_cols = data.shape
    within = np.isfinite(ucol) & np.isfinite(urow)
    within &= (ucol >= 0) & (ucol < n_cols) & (urow >= 0) & (urow < n_rows)
    ucell = np.full(len(units), -1, dtype=np.int64)
    at_row, at_col = np.floor(urow[within]), np.floor(ucol[within])
    ucell[within] = at_row.astype(np.int64) * n_cols + at_col.astype(np.int64)
    w = np.where(np.asarray(weight, dtype=float) > 0, weight, 1.0)
    u = pd.DataFrame(
        {
            "unit": np.arange(len(units)),
            "cell": ucell,
            "w": w,
            "district_id": units["district_id"].to_numpy(),
        }
    )
    out = np.zeros(len(units))
    orphans = _share_within_cells(cells, u, out)
    own = orphans["district_id"].astype(str).isin(set(map(str, cells_as_units))).to_numpy()
    _give_to_nearest(orphans[~own], u, pts.to_numpy(), out)
    places = orphans[own]
    width = data.shape[1]
    row, col = places["cell"].to_numpy() // width, places["cell"].to_numpy() % width
    x0, y0 = transform * (col, row)
    x1, y1 = transform * (col + 1, row + 1)
    return out, gpd.GeoDataFrame(
        {
            "people": places["people"].to_numpy(),
            "district_id": places["district_id"].to_numpy(),
            "row": row + int(window.row_off),
            "col": col + int(window.col_off),
        },
        geometry=shapely.box(
            np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)
        ),
        crs=crs,
    )


def cell_area_ha(transform: Affine, crs: object, n_rows: int) -> np.ndarray:
    """Area (ha) of a cell in each of the `n_rows` rows of a north-up raster: |a·e| in a projected
    CRS (in its unit: metres, or feet × 0.3048² …), the ellipsoidal area of the row's cell in a
    geographic one."""
    import pyproj

    c = pyproj.CRS.from_user_input(crs)
    if not c.is_geographic:
        axes = c.axis_info
        m_per_unit = axes[0].unit_conversion_factor if axes else 1.0
        m_per_unit = m_per_unit if m_per_unit and m_per_unit > 0 else 1.0
        return np.full(n_rows, abs(transform.a * transform.e) * m_per_unit**2 / 1e4)
    geod = c.get_geod() or pyproj.Geod(ellps="WGS84")
    x0, dx = transform.c, transform.a
    top = transform.f + transform.e * np.arange(n_rows)
    bottom = top + transform.e
    out = np.empty(n_rows)
    for i, (t, b) in enumerate(zip(top, bottom)):  # one polygon per row, not per cell
        area, _ = geod.polygon_area_perimeter([x0, x0 + dx, x0 + dx, x0], [b, b, t, t])
        out[i] = abs(area) / 1e4
    return out


def allocate_groups(
    units: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    groups: dict[str, tuple[list[Path], Literal["people", "per_ha"]]],
    *,
    weight: np.ndarray,
    notes: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """People of each group per unit: each of the group's rasters allocated like the total raster
    (`allocate_raster`: in any CRS, cells without a unit to the nearest unit of the district),
    summed.

    Parameters
    ----------
    units, districts, weight
        As `allocate_raster`.
    groups
        Per group, its rasters and what their cells hold (``people`` or ``per_ha``).
    notes
        Where to append what a planner must know about each raster (a CRS other than the working
        CRS); None: not said.

    Returns
    -------
    dict
        Per group, its people per unit.

    Raises
    ------
    SourceError
        When a group's raster is missing, unreadable, misses the districts or holds only nodata
        over them; the message names the group (``population.groups.<name>``) and the file.
    """
    out = {}
    for name, (paths, per) in groups.items():
        total = np.zeros(len(units))
        for path in paths:
            got, _ = allocate_raster(
                units,
                districts,
                path,
                weight=weight,
                units_per=per,
                label=f"population.groups.{name} raster",
                notes=notes,
            )
            total += got
        out[name] = total
    return out


def _populated_cells(
    data: np.ndarray, transform: Affine, crs: object, districts: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """The raster cells with people, as centre points, each with its district (centre inside)."""
    import rasterio.transform

    rows, cols = np.nonzero(data > 0)
    xs, ys = rasterio.transform.xy(transform, rows, cols, offset="center")
    cells = gpd.GeoDataFrame(
        {"people": data[rows, cols], "cell": rows * data.shape[1] + cols},
        geometry=shapely.points(np.asarray(xs), np.asarray(ys)),
        crs=crs,
    )
    cells = gpd.sjoin(
        cells, districts[["district_id", "geometry"]], predicate="within", how="inner"
    )
    return cells[~cells.index.duplicated()]


def _share_within_cells(
    cells: gpd.GeoDataFrame, units: pd.DataFrame, out: np.ndarray
) -> gpd.GeoDataFrame:
    """Add each cell's people to the units of its district inside it, by weight; return the cells
    that hold no such unit."""
    joined = cells[["cell", "people", "district_id"]].merge(
        units, on=["cell", "district_id"], how="left"
    )
    has = joined["unit"].notna()
    housed = joined[has].copy()
    housed["share"] = housed["w"] / housed.groupby("cell")["w"].transform("sum")
    np.add.at(
        out,
        housed["unit"].to_numpy(dtype=np.int64),
        (housed["people"] * housed["share"]).to_numpy(),
    )
    return cells[cells["cell"].isin(joined.loc[~has, "cell"])]


def _give_to_nearest(
    orphans: gpd.GeoDataFrame, units: pd.DataFrame, unit_points: np.ndarray, out: np.ndarray
) -> None:
    """Add the people of cells without a unit to the nearest unit of the same district."""
    for did, group in orphans.groupby("district_id"):
        mine = np.flatnonzero(units["district_id"].to_numpy() == did)
        if not len(mine):
            continue  # a district with people but no demand unit: reported by the caller
        tree = shapely.STRtree(unit_points[mine])
        nearest = tree.nearest(group.geometry.to_numpy())
        np.add.at(out, mine[nearest], group["people"].to_numpy())


def scale_to_totals(
    residents: np.ndarray, district_ids: np.ndarray, totals: dict[str, float]
) -> np.ndarray:
    """Scale residents so each district listed in `totals` sums to its known total exactly.

    Raises
    ------
    ConfigError
        When a district with a known total has no residents to scale.
    """
    out = np.asarray(residents, dtype=float).copy()
    ids = np.asarray(district_ids).astype(str)
    for did, total in totals.items():
        mask = ids == str(did)
        have = out[mask].sum()
        if not mask.any():
            continue
        if have <= 0:
            raise ConfigError(
                f"district {did}: its known total is {total:g} residents but no unit holds anyone to scale"
            )
        out[mask] *= total / have
    return out


def read_totals(
    path: str | Path, *, id_field: str, value_field: str, multiplier: float
) -> dict[str, float]:
    """District totals from a CSV: ``{district_id: value × multiplier}`` for rows with an id."""
    frame = pd.read_csv(path, dtype={id_field: str})
    missing = [c for c in (id_field, value_field) if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"population totals {str(path)!r} lack column(s) {missing}; it has {list(frame.columns)}"
        )
    frame = frame[frame[id_field].notna() & (frame[id_field].str.strip() != "")]
    return {
        str(k).strip().removesuffix(".0"): float(v) * multiplier
        for k, v in zip(frame[id_field], frame[value_field])
    }
