"""The layers of a district's GeoPackage as tables: each home with its per-standard results, and
the facilities that can serve the district. Selections of the results model, never measured here."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import shapely

from walkcover.assessment import FACILITY_OUTPUT_COLUMNS, Assessment, search_limit_m
from walkcover.engine.network import EdgeCoords, Network

_PER_STANDARD = (
    "dist_m",
    "covered",
    "status",
    "band",
    "context",
    "safe_dist_m",
    "safe_covered",
    "safe_status",
    "nearest2_m",
    "nearest3_m",
    "n_within",
    "access",
)


def demand_layer(assessment: Assessment, district_id: str) -> gpd.GeoDataFrame:
    """The ``demand`` layer of one district: geometry, ``osm_id``, residents and per-standard results."""
    d = assessment.demand
    cols = ["osm_id", "kind", "building", "levels", "levels_from", "floor_area_m2", "residents"]
    cols += [c for c in d.columns if c.startswith("residents_")]  # groups by age
    for s in assessment.standards:
        cols += [
            c
            for c in d.columns
            if c.startswith(f"{s.id}_") and c.removeprefix(f"{s.id}_") in _PER_STANDARD
        ]
    cols += [c for c in d.columns if c.startswith("life_circle_")]  # GB 50180's tiers
    sub = d.loc[d["district_id"] == district_id, [*cols, "geometry"]]
    return gpd.GeoDataFrame(sub.reset_index(drop=True), geometry="geometry", crs=d.crs)


def facilities_layer(assessment: Assessment, district_geom) -> gpd.GeoDataFrame:
    """Facilities inside the district or within reach of it (those that can serve it, as the
    assessment decides: `Assessment.facilities_serving`)."""
    f = assessment.facilities
    reach = assessment.facilities_serving(district_geom)
    sub = f.loc[reach, [*FACILITY_OUTPUT_COLUMNS, "geometry"]]
    return gpd.GeoDataFrame(sub.reset_index(drop=True), geometry="geometry", crs=f.crs)


#: Each street edges frame's bounding boxes as float32, rounded outwards (`edges_in_box`), by the
#: frame's identity, dropped with the frame.
_EDGE_BOXES: dict[int, np.ndarray] = {}
_EDGE_BOXES_LOCK = threading.Lock()


def _edge_boxes(edges: gpd.GeoDataFrame) -> np.ndarray:
    """The ``(n, 4)`` float32 boxes of `edges`' geometries, each holding its float64 box."""
    key = id(edges)
    with _EDGE_BOXES_LOCK:  # two districts' writers ask at once: made once
        boxes = _EDGE_BOXES.get(key)
        if boxes is None:
            exact = shapely.bounds(edges.geometry.to_numpy())
            boxes = exact.astype(np.float32)
            low, high = boxes[:, :2], boxes[:, 2:]  # views: rounded outwards in place
            low[:] = np.where(low > exact[:, :2], np.nextafter(low, np.float32(-np.inf)), low)
            high[:] = np.where(high < exact[:, 2:], np.nextafter(high, np.float32(np.inf)), high)
            _EDGE_BOXES[key] = boxes
            weakref.finalize(edges, _EDGE_BOXES.pop, key, None)
    return boxes


def warm_edge_tables(network: Network) -> None:
    """Make the network's box table (`edges_in_box`) and coordinates (`Network.edge_coords`) now:
    before a writer process is forked, so both writers share them instead of each making its own."""
    _edge_boxes(network.edges)
    _ = network.edge_coords


def edges_in_box(
    edges: gpd.GeoDataFrame,
    box: tuple[float, float, float, float],
    *,
    coords: EdgeCoords | None = None,
) -> np.ndarray:
    """Positions (ascending) of the `edges` whose bounding boxes meet `box` (``xmin, ymin, xmax,
    ymax``, edges included): what a spatial index's query by a box gives, from a float32 table of
    the boxes (22 MB for a city's 1.4 million edges, where an R-tree of them took about 100 MB
    and a second to build), then each candidate checked on its exact box: from `coords` (the
    network's `edge_coords`) where given, touching none of the edges' shapely objects, else from
    their geometries."""
    x0, y0, x1, y1 = box
    b = _edge_boxes(edges)
    near = np.flatnonzero((b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0))
    if coords is not None:
        if not len(near):
            return near
        idx, counts = coords.vertices(near)
        xy = coords.xy[idx]
        at = np.cumsum(counts) - counts
        exact = np.column_stack(
            [np.minimum.reduceat(xy, at, axis=0), np.maximum.reduceat(xy, at, axis=0)]
        )
    else:
        exact = shapely.bounds(edges.geometry.to_numpy()[near])
    hit = (exact[:, 0] <= x1) & (exact[:, 2] >= x0) & (exact[:, 1] <= y1) & (exact[:, 3] >= y0)
    return near[hit]


def _way_lines(coords: EdgeCoords, edges: np.ndarray, way: np.ndarray) -> np.ndarray:
    """One multi-line per way of `edges` (positions, grouped by their way codes `way`, 0, 1, …,
    each way's in network order): a way's consecutive segments, where one starts at the vertex
    the one before ends, make one line (a way's segments come in its own order, so an unbroken
    way is one line; a way cut by the study area or by a gap in the network keeps one line per
    piece). Built from the edges' coordinates, not their shapely objects."""
    if not len(edges):
        return np.array([], dtype=object)
    start, end = coords.start[edges], coords.start[edges + 1] - 1
    joined = np.zeros(len(edges), dtype=bool)
    joined[1:] = (way[1:] == way[:-1]) & (coords.xy[start[1:]] == coords.xy[end[:-1]]).all(axis=1)
    idx, counts = coords.vertices(edges, skip_first=joined)
    piece = np.cumsum(~joined) - 1
    lines = shapely.linestrings(coords.xy[idx], indices=np.repeat(piece, counts))
    return shapely.multilinestrings(lines, indices=way[~joined])


def way_lines(network: Network, edges: np.ndarray) -> np.ndarray:
    """One multi-line per OSM way among `edges` (positions), in the order the ways first appear:
    its segments joined into one line wherever one starts where the one before ends (`_way_lines`;
    a network of multi-part edges keeps its geometries, one part each)."""
    import pandas as pd

    e = network.edges
    at, _ = pd.factorize(pd.Series(e["osm_id"].array[edges]).astype(str), sort=False)
    order = np.argsort(at, kind="stable")
    rows, way = edges[order], at[order]
    if network.edge_coords.lines_only:
        return _way_lines(network.edge_coords, rows, way)
    return shapely.multilinestrings(
        shapely.get_parts(e.geometry.to_numpy()[rows]), indices=_part_ways(e, rows, way)
    )


def _part_ways(edges: gpd.GeoDataFrame, rows: np.ndarray, way: np.ndarray) -> np.ndarray:
    """The way of each part of `rows`' geometries (`shapely.get_parts` order)."""
    return np.repeat(way, shapely.get_num_geometries(edges.geometry.to_numpy()[rows]))


#: Ways per part of a district's ``streets`` layer (`streets_layer`): a part's multi-lines exist
#: while it is written, never a large district's 300,000 at once (about 300 MB each on L).
STREET_WAYS_PER_PART = 20_000


def streets_box(assessment: Assessment, district_geom) -> tuple[float, float, float, float]:
    """The box a district's ``streets`` layer holds the streets of (`streets_layer`): the
    district's, grown by the largest search limit of the run's standards."""
    margin_m = max((search_limit_m(s, assessment.city) for s in assessment.standards), default=0.0)
    x0, y0, x1, y1 = (float(v) for v in shapely.bounds(district_geom))
    return (x0 - margin_m, y0 - margin_m, x1 + margin_m, y1 + margin_m)


def streets_layer(
    assessment: Assessment, district_geom, *, ways_per_part: int | None = None
) -> Iterator[gpd.GeoDataFrame]:
    """The ``streets`` layer, in parts of at most `ways_per_part` rows: the walkable streets a
    printed map of the district draws, within its box grown by the largest search limit (so the
    facilities serving it from outside have their streets too), one row per OSM way (its segments
    as one line: a city's district holds hundreds of thousands of segments, and a way is what a
    planner knows), with its ``highway`` class.

    The ways come in the order their first segments hold in the network, whatever
    `ways_per_part`: the parts, put end to end, are the layer. A district without streets gives
    one empty part. `ways_per_part` defaults to `STREET_WAYS_PER_PART`."""
    import pandas as pd

    if ways_per_part is None:
        ways_per_part = STREET_WAYS_PER_PART
    if ways_per_part < 1:
        raise ValueError(f"ways_per_part must be at least 1, got {ways_per_part!r}")
    e = assessment.network.edges
    coords = assessment.network.edge_coords
    near = edges_in_box(e, streets_box(assessment, district_geom), coords=coords)
    if not len(near):
        yield gpd.GeoDataFrame({"osm_id": [], "highway": []}, geometry=[], crs=e.crs)
        return
    # only the columns the layer shows, for the segments in the box (not a copy of every column)
    highway = e["highway"].array[near] if "highway" in e else None
    # ways by hashing, not sorting their ids (a district's box holds ~10⁵ segments)
    at, ways = pd.factorize(pd.Series(e["osm_id"].array[near]).astype(str), sort=False)
    order = np.argsort(at, kind="stable")
    at_sorted = at[order]
    first = np.zeros(len(ways), dtype=np.int64)
    first[at_sorted[::-1]] = order[::-1]  # a row of each way, for its class
    ways = np.asarray(ways, dtype=object)
    for w0 in range(0, len(ways), ways_per_part):
        w1 = min(w0 + ways_per_part, len(ways))
        lo, hi = np.searchsorted(at_sorted, [w0, w1])
        rows, way = near[order[lo:hi]], at_sorted[lo:hi] - w0
        if coords.lines_only:
            lines = _way_lines(coords, rows, way)
        else:  # edges of several parts: each way's as they are, one part each
            lines = shapely.multilinestrings(
                shapely.get_parts(e.geometry.to_numpy()[rows]), indices=_part_ways(e, rows, way)
            )
        yield gpd.GeoDataFrame(
            {
                "osm_id": ways[w0:w1],
                "highway": highway[first[w0:w1]] if highway is not None else None,
            },
            geometry=lines,
            crs=e.crs,
        )
