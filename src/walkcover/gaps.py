"""Where the gaps are: uncovered residential areas as polygons, and the land within walking distance.

Gap polygons are the denominator land's grid cells that are not within walking distance, joined with
the footprints of the uncovered homes, dissolved into connected areas. Service areas are built from
the covered pieces of the street edges, each grown only by the distance still left at its far end,
so they never include land beyond the walking distance.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine

from walkcover import coverage as cov

#: Uncovered homes and land closer than this are drawn as one gap.
MERGE_M = 10.0
GAP_COLUMNS = [
    "standard",
    "rank",
    "residents_uncovered",
    "units_uncovered",
    "area_m2",
    "dist_m_at_centre",
    "geometry",
]


def _cells_to_polygons(
    points: np.ndarray, mask: np.ndarray, cell_m: float
) -> list[shapely.Geometry]:
    """Polygons of the grid cells (centres `points`) where `mask` is true."""
    from rasterio.features import shapes

    if not mask.any():
        return []
    x, y = shapely.get_x(points[mask]), shapely.get_y(points[mask])
    col = np.floor(x / cell_m).astype(np.int64)
    row = np.floor(y / cell_m).astype(np.int64)
    c0, r1 = col.min(), row.max()
    grid = np.zeros((r1 - row.min() + 1, col.max() - c0 + 1), dtype=np.uint8)
    grid[r1 - row, col - c0] = 1
    transform = Affine(cell_m, 0, c0 * cell_m, 0, -cell_m, (r1 + 1) * cell_m)
    return [
        shapely.geometry.shape(g)
        for g, v in shapes(grid, mask=grid == 1, transform=transform)
        if v == 1
    ]


def gap_polygons(result, standard_id: str, district_id: str) -> gpd.GeoDataFrame:
    """The uncovered residential areas of one district for one standard, ranked by residents.

    Parameters
    ----------
    result
        A finished `walkcover.assessment.Assessment`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``standard, rank, residents_uncovered, units_uncovered, area_m2, dist_m_at_centre``
        (walking distance from the polygon's centre to the nearest facility; NaN beyond the search
        limit), geometry (working CRS).
    """
    std = result.standard(standard_id)
    p = result.passes[standard_id]
    net = result.network
    _, pts, cells = result.lands.district_cells(std.denominator, district_id)
    parts: list[shapely.Geometry] = []
    if cells.n_items:
        dist = cov.demand_distances(net, cells, p.snaps, p.node_dist)
        uncovered = ~(dist <= result.thresholds(std, cells))
        parts += _cells_to_polygons(pts, uncovered, result.rules.land.cell_m)
    d = result.demand
    mine = d[(d["district_id"] == district_id).to_numpy()]
    miss = mine[~mine[f"{standard_id}_covered"].to_numpy(dtype=bool)]
    parts += list(shapely.make_valid(miss.geometry.to_numpy()))
    if not parts:
        return gpd.GeoDataFrame({c: [] for c in GAP_COLUMNS[:-1]}, geometry=[], crs=result.crs)
    # Homes a few metres apart form one area: close gaps narrower than MERGE_M (a closing, which
    # leaves a convex block exactly as it is).
    grown = shapely.buffer(shapely.union_all(parts), MERGE_M / 2)
    merged = shapely.get_parts(shapely.buffer(grown, -MERGE_M / 2))
    merged = merged[shapely.get_type_id(merged) == 3]  # polygons (drop slivers of lower dimension)
    tree = shapely.STRtree(merged)
    rep = shapely.point_on_surface(miss.geometry.to_numpy())
    hit_unit, hit_gap = tree.query(rep, predicate="within")
    res = np.zeros(len(merged))
    units = np.zeros(len(merged), dtype=np.int64)
    np.add.at(res, hit_gap, miss["residents"].to_numpy(dtype=float)[hit_unit])
    np.add.at(units, hit_gap, 1)
    centre = shapely.point_on_surface(merged)
    cs = cov.snap(net, centre, max_snap_m=result.city.config.network.max_snap_m)
    cdist = cov.demand_distances(net, cs, p.snaps, p.node_dist)
    cdist = np.where(cdist <= p.limit_m, cdist, np.nan)
    out = gpd.GeoDataFrame(
        {
            "standard": standard_id,
            "residents_uncovered": np.round(res, 1),
            "units_uncovered": units,
            "area_m2": np.round(shapely.area(merged), 1),
            "dist_m_at_centre": np.round(cdist, 1),
        },
        geometry=merged,
        crs=result.crs,
    )
    out = out.sort_values(["residents_uncovered", "area_m2"], ascending=False, kind="mergesort")
    out.insert(1, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)[GAP_COLUMNS]


def service_area(
    result, standard_id: str, *, within: shapely.Geometry | None = None, step_m: float = 10.0
):
    """The land within walking distance of the standard's facilities, as one (multi)polygon.

    Each edge is cut into pieces of at most `step_m`; a piece whose walking distance is at most
    ``d`` everywhere (bounded by the distances at its ends) is grown by ``threshold − d``, the
    straight access leg still allowed. So every point of the area is within the walking distance;
    the facilities' own polygons are added. Only edges near `within` are used when given.
    """
    std = result.standard(standard_id)
    p = result.passes[standard_id]
    net = result.network
    e = net.edges
    length = e["length_m"].to_numpy()
    thr_edge = (
        np.array([std.context_thresholds_m.get(c, std.threshold_m) for c in result.context])
        if result.context is not None and std.context_thresholds_m
        else np.full(len(e), std.threshold_m)
    )
    du, dv = p.node_dist[e["u_idx"].to_numpy()], p.node_dist[e["v_idx"].to_numpy()]
    has_src = np.zeros(len(e), dtype=bool)
    has_src[p.snaps.edge] = True
    keep = (np.minimum(du, dv) < thr_edge) | has_src
    if within is not None:
        keep &= shapely.dwithin(e.geometry.to_numpy(), within, thr_edge)
    idx = np.flatnonzero(keep)
    pieces = []
    if len(idx):
        geoms = shapely.segmentize(e.geometry.to_numpy()[idx], step_m)
        xy, owner = shapely.get_coordinates(geoms, return_index=True)
        edge = idx[owner]
        seg = np.hypot(np.diff(xy[:, 0]), np.diff(xy[:, 1]))
        same = owner[1:] == owner[:-1]
        off = np.zeros(len(xy))
        step = np.where(same, seg, 0.0)
        off[1:] = np.cumsum(step)
        first = np.r_[True, ~same]
        off -= np.maximum.accumulate(np.where(first, off, 0.0))
        # Offsets were measured along the (projected) geometry; scale to the edge length used by the engine.
        total = pd.Series(off).groupby(owner).transform("max").to_numpy()
        off = np.where(total > 0, off * length[edge] / np.where(total > 0, total, 1), 0.0)
        d = np.minimum(du[edge] + off, dv[edge] + length[edge] - off)
        if len(p.snaps.item):
            vs = pd.DataFrame({"v": np.arange(len(xy)), "edge": edge, "off": off}).merge(
                pd.DataFrame(
                    {
                        "edge": p.snaps.edge,
                        "lo": p.snaps.lo_m,
                        "hi": p.snaps.hi_m,
                        "leg": p.snaps.leg_m,
                    }
                ),
                on="edge",
            )
            if len(vs):
                a = vs["leg"] + np.maximum(
                    0.0, np.maximum(vs["lo"] - vs["off"], vs["off"] - vs["hi"])
                )
                m = a.groupby(vs["v"]).min()
                d[m.index.to_numpy()] = np.minimum(d[m.index.to_numpy()], m.to_numpy())
        a_i = np.flatnonzero(same)
        b_i = a_i + 1
        seglen = off[b_i] - off[a_i]
        bound = (
            d[a_i] + d[b_i] + np.abs(seglen)
        ) / 2.0  # walking distance is 1-Lipschitz along the edge
        room = thr_edge[edge[a_i]] - bound
        ok = np.isfinite(room) & (room > 0)
        lines = (
            shapely.linestrings(np.stack([xy[a_i[ok]], xy[b_i[ok]]], axis=1))
            if ok.any()
            else np.array([], dtype=object)
        )
        pieces = list(shapely.buffer(lines, room[ok], quad_segs=4)) if ok.any() else []
    polys = p.counted.geometry.to_numpy()
    pieces += [g for g in polys if shapely.get_type_id(g) in (3, 6)]
    if not pieces:
        return shapely.Polygon()
    area = shapely.union_all(pieces)
    return (
        shapely.intersection(area, within.buffer(std.max_threshold_m))
        if within is not None
        else area
    )
