"""The safe-route network's cells and edge ends, placed by coordinates, equal the straightforward
way (a shapely point per node, R-trees of points and of ring segments), kept here as the reference:
on the Helsinki sample, and on hand-made cells with points exactly on their boundaries (shells,
holes, the study area's edge) and exactly at the probe distance from them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import X0, Y0, build_network, streets
from walkcover.engine import barriers as bar
from walkcover.engine.network import Network, components, symmetric_min_adjacency

# --- the reference: the way safe_network placed edge ends before it read coordinates ---------


def ref_cells(lines: np.ndarray, extent: shapely.Geometry, *, edge_gap_m: float = 100.0):
    if len(lines) == 0:
        return np.array([extent], dtype=object)
    boundary = shapely.boundary(extent)
    parts = shapely.get_parts(shapely.line_merge(shapely.union_all(lines)))
    ends = np.concatenate([shapely.get_point(parts, 0), shapely.get_point(parts, -1)])
    xy = shapely.get_coordinates(ends).round(6)
    _, inverse, counts = np.unique(xy, axis=0, return_inverse=True, return_counts=True)
    loose = ends[counts[inverse.ravel()] == 1]
    near = loose[shapely.distance(loose, boundary) <= edge_gap_m]
    links = shapely.shortest_line(near, boundary) if len(near) else np.array([], dtype=object)
    noded = shapely.union_all([*parts, *links, boundary])
    polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    polys = polys[shapely.area(polys) > 0]
    return polys if len(polys) else np.array([extent], dtype=object)


def ref_cell_of(tree: shapely.STRtree, points: np.ndarray) -> np.ndarray:
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) and len(tree.geometries):
        c, p = shapely.STRtree(points).query(tree.geometries, predicate="contains")
        out[p] = c
    return out


def ref_near(tree: shapely.STRtree, points: np.ndarray, distance: float) -> np.ndarray:
    """Points within `distance` of a segment of a cell's ring (an R-tree of segment lines)."""
    ring_xy, ring = shapely.get_coordinates(shapely.get_rings(tree.geometries), return_index=True)
    same = ring[1:] == ring[:-1]
    bounds = shapely.linestrings(np.stack([ring_xy[:-1][same], ring_xy[1:][same]], axis=1))
    close = np.zeros(len(points), dtype=bool)
    near, _ = shapely.STRtree(bounds).query(points, predicate="dwithin", distance=distance)
    close[near] = True
    return close


def ref_end_cells(network: Network, tree: shapely.STRtree, length: np.ndarray):
    e = network.edges
    geoms = e.geometry.to_numpy()
    u, v = e["u_idx"].to_numpy(), e["v_idx"].to_numpy()
    xy = shapely.get_coordinates(geoms)
    last = np.cumsum(shapely.get_num_coordinates(geoms)) - 1
    first = np.r_[0, last[:-1] + 1]
    node_xy = np.zeros((network.n_nodes, 2))
    node_xy[u], node_xy[v] = xy[first], xy[last]
    nodes = shapely.points(node_xy)
    node_cell = ref_cell_of(tree, nodes)
    close = ref_near(tree, nodes, bar._PROBE_M * (1 + 1e-9))
    c_u, c_v = node_cell[u], node_cell[v]
    probe = np.minimum(bar._PROBE_M, length / 2)
    at_u, at_v = np.flatnonzero(close[u]), np.flatnonzero(close[v])
    c_u[at_u] = ref_cell_of(tree, shapely.line_interpolate_point(geoms[at_u], probe[at_u]))
    c_v[at_v] = ref_cell_of(
        tree, shapely.line_interpolate_point(geoms[at_v], length[at_v] - probe[at_v])
    )
    return c_u, c_v


def ref_sides(geoms: np.ndarray, length: np.ndarray, tree: shapely.STRtree):
    if not len(geoms):
        return []
    mid = shapely.line_interpolate_point(geoms, 0.5, normalized=True)
    ahead = shapely.line_interpolate_point(geoms, np.minimum(length / 2 + 0.5, length))
    dx = shapely.get_x(ahead) - shapely.get_x(mid)
    dy = shapely.get_y(ahead) - shapely.get_y(mid)
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0
    out = []
    for sign in (1.0, -1.0):
        px = shapely.get_x(mid) - sign * dy / norm * bar._SIDE_M
        py = shapely.get_y(mid) + sign * dx / norm * bar._SIDE_M
        out.append(ref_cell_of(tree, shapely.points(px, py)))
    return out


def ref_safe_network(network, street_tags, barriers, crossing_node_ids, *, extent):
    e = network.edges
    geoms = e.geometry.to_numpy()
    tree = shapely.STRtree(ref_cells(barriers, extent))
    length = e["length_m"].to_numpy()
    c_u, c_v = ref_end_cells(network, tree, length)
    is_barrier = street_tags["is_barrier"].to_numpy(dtype=bool)
    may_cross = bar._is_yes(street_tags, "bridge") | bar._is_yes(street_tags, "tunnel")
    may_cross |= (
        street_tags["footway"].astype("string").eq("crossing").fillna(False).to_numpy(dtype=bool)
    )
    idx = np.flatnonzero(~is_barrier & ((c_u == c_v) | may_cross))
    rows_u, rows_v = [e["u_idx"].to_numpy()[idx]], [e["v_idx"].to_numpy()[idx]]
    cells_u, cells_v, orig = [c_u[idx]], [c_v[idx]], [idx]
    bidx = np.flatnonzero(is_barrier)
    for side in ref_sides(geoms[bidx], length[bidx], tree):
        rows_u.append(e["u_idx"].to_numpy()[bidx])
        rows_v.append(e["v_idx"].to_numpy()[bidx])
        cells_u.append(side)
        cells_v.append(side)
        orig.append(bidx)
    u, v = np.concatenate(rows_u), np.concatenate(rows_v)
    cu, cv, orig_e = np.concatenate(cells_u), np.concatenate(cells_v), np.concatenate(orig)
    span = int(max(cu.max(initial=-1), cv.max(initial=-1))) + 2
    key = np.concatenate([u, v]).astype(np.int64) * span + (np.concatenate([cu, cv]) + 1)
    uniq, codes = np.unique(key, return_inverse=True)
    nu, nv = codes[: len(u)], codes[len(u) :]
    copy_node = uniq // span
    lu, lv = bar._crossing_links(network.node_osm_ids[copy_node], crossing_node_ids, copy_node)
    adjacency = symmetric_min_adjacency(
        np.concatenate([nu, lu]),
        np.concatenate([nv, lv]),
        np.concatenate([length[orig_e], np.zeros(len(lu))]),
        len(copy_node),
    )
    edges = gpd.GeoDataFrame(
        {"u_idx": nu, "v_idx": nv, "length_m": length[orig_e], "orig_edge": orig_e, "cell": cu},
        geometry=geoms[orig_e],
        crs=e.crs,
    )
    safe = Network(
        edges=edges,
        node_osm_ids=network.node_osm_ids[copy_node],
        adjacency=adjacency,
        component=components(adjacency),
        snappable=np.arange(len(edges)),
        given_tree=network.tree,
    )
    return safe, tree


# --- comparisons -------------------------------------------------------------------------------


def assert_same_arrays(got, want) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def assert_same_cells(got: np.ndarray, want: np.ndarray) -> None:
    """The same polygons, vertex for vertex, in the same order."""
    assert len(got) == len(want)
    assert shapely.equals_identical(got, want).all()


def assert_same_safe_network(got, want) -> None:
    (net, tree), (ref, ref_tree) = got, want
    assert_same_cells(tree.geometries, ref_tree.geometries)
    assert list(net.edges.columns) == list(ref.edges.columns)
    for col in ("u_idx", "v_idx", "length_m", "orig_edge", "cell"):
        assert_same_arrays(net.edges[col].to_numpy(), ref.edges[col].to_numpy())
    assert shapely.equals_identical(
        net.edges.geometry.to_numpy(), ref.edges.geometry.to_numpy()
    ).all()
    for a, b in zip(net.adjacency[:3], ref.adjacency[:3]):
        assert_same_arrays(a, b)
    assert net.adjacency.n == ref.adjacency.n
    assert_same_arrays(net.component, ref.component)
    assert_same_arrays(net.node_osm_ids, ref.node_osm_ids)
    assert_same_arrays(net.snappable, ref.snappable)


def assert_same_placement(tree: shapely.STRtree, points: np.ndarray) -> None:
    """`_cell_of` (both of its ways) and `_cell_of_xy` place `points` as the reference does."""
    want = ref_cell_of(tree, points)
    assert_same_arrays(bar._cell_of(tree, points), want)
    cells = bar._prepared_cells(tree)
    assert_same_arrays(bar._cell_of_xy(cells, *bar._point_xy(points)), want)
    # the tree's own cells are left unprepared: threads may share it
    assert not shapely.is_prepared(tree.geometries).any()


# --- hand-made cells ---------------------------------------------------------------------------


def at(*xy: float) -> tuple[float, float]:
    return (X0 + xy[0], Y0 + xy[1])


# A 60 m square cut by a line at x = 30 (drawn beyond the square), a closed loop 5..15 × 35..45
# (a hole in the west cell, and a cell of its own), a diagonal across the north-east corner
# (ending exactly on the square's edge), a line from x = 30 stopping half a metre short of the
# west edge (joined to it), one stopping exactly 2 m short of the east edge, and a short dangling
# line in the east.
EXTENT = shapely.box(*at(0, 0), *at(60, 60))
BARRIERS = np.array(
    [
        shapely.LineString([at(30, -5), at(30, 65)]),
        shapely.LineString([at(5, 35), at(15, 35), at(15, 45), at(5, 45), at(5, 35)]),
        shapely.LineString([at(40, 60), at(60, 40)]),
        shapely.LineString([at(30, 20), at(0.5, 20)]),
        shapely.LineString([at(40, 10), at(45, 12)]),
        shapely.LineString([at(40, 25), at(58, 25)]),
    ]
)


def lattice(step: float, lo: float = -2.0, hi: float = 62.0) -> np.ndarray:
    """Points every `step` metres: many lie exactly on the cells' edges, or exactly
    `_PROBE_M` from them."""
    g = np.arange(lo, hi + step / 2, step)
    x, y = np.meshgrid(X0 + g, Y0 + g)
    return shapely.points(x.ravel(), y.ravel())


@pytest.fixture(scope="module")
def hand_cells():
    polys = bar.cells(BARRIERS, EXTENT, edge_gap_m=2.0)
    assert_same_cells(polys, ref_cells(BARRIERS, EXTENT, edge_gap_m=2.0))
    assert (shapely.get_num_interior_rings(polys) > 0).any()  # the loop is a hole
    return shapely.STRtree(polys)


@pytest.mark.parametrize("gap", [0.0, 2.0, 100.0])
def test_hand_made_cells_equal_the_reference(gap):
    assert_same_cells(
        bar.cells(BARRIERS, EXTENT, edge_gap_m=gap), ref_cells(BARRIERS, EXTENT, edge_gap_m=gap)
    )


def test_points_on_and_beside_boundaries_are_placed_as_the_reference(hand_cells):
    tree = hand_cells
    polys = tree.geometries
    rings = shapely.get_rings(polys)
    on_rings = shapely.points(shapely.get_coordinates(rings))  # every vertex
    mids = shapely.line_interpolate_point(shapely.get_exterior_ring(polys), 0.5, normalized=True)
    hole_points = shapely.points([at(10, 35), at(5, 40), at(10, 45), at(15, 40), at(10, 40)])
    odd = np.array([shapely.Point(), None, shapely.Point(at(-5, 30)), shapely.Point(at(30, 30))])
    points = np.concatenate([lattice(0.25), on_rings, mids, hole_points, odd])
    assert len(points) >= bar._FEW_POINTS  # `_cell_of` takes the coordinates' way
    want = ref_cell_of(tree, points)
    assert (want == -1).sum() > 1000 and len(np.unique(want)) == len(polys) + 1
    assert_same_placement(tree, points)
    # and `_cell_of`'s other way, for few points
    few = points[::37]
    assert_same_arrays(bar._cell_of(tree, few), ref_cell_of(tree, few))


@pytest.mark.parametrize("distance", [0.0, bar._ON_RING_M, bar._PROBE_M * (1 + 1e-9), 2.5])
def test_points_near_the_rings_are_found_as_the_reference_finds_them(hand_cells, distance):
    tree = hand_cells
    points = lattice(0.25)
    want = ref_near(tree, points, distance)
    cells = bar._prepared_cells(tree)
    got = bar._near_segments(bar._grid(*bar._point_xy(points)), *cells.segments, distance)
    assert_same_arrays(got, want)
    if distance == bar._PROBE_M * (1 + 1e-9):
        # points exactly one metre from the line x = 30 count as near; a quarter further do not
        x = shapely.get_x(points) - X0
        y = shapely.get_y(points) - Y0
        inside = (y > 22) & (y < 38)
        assert got[inside & (x == 29)].all() and got[inside & (x == 31)].all()
        assert not got[inside & (x == 28.75)].any()


def hand_network():
    """Streets every 3 m over the square and a little beyond (nodes at -2, 1, 4, ... 61: a metre
    from the square's edge, from the line x = 30, from the loop and the line y = 20), crossing the
    barriers; the primary road x = 30 itself with its nodes, joined to the streets beside it by
    2 m and 1 m links (probed half-way); diagonal footways; some ways bridges or crossing ways,
    some nodes mapped crossings."""
    g = np.arange(-2.0, 62.0, 3.0)
    n = len(g)
    node = {}

    def nid(x: float, y: float) -> int:
        return node.setdefault((x, y), len(node))

    segs, highway = [], []

    def way(a: tuple[float, float], b: tuple[float, float], kind: str) -> None:
        segs.append((nid(*a), nid(*b), [a, b]))
        highway.append(kind)

    for i in range(n):
        for j in range(n):
            if i + 1 < n:
                way((g[i], g[j]), (g[i + 1], g[j]), "residential")
            if j + 1 < n:
                way((g[i], g[j]), (g[i], g[j + 1]), "residential")
            if i + 1 < n and j + 1 < n and (i + j) % 2 == 0:
                way((g[i], g[j]), (g[i + 1], g[j + 1]), "footway")
    for j in range(n):
        if j + 1 < n:
            way((30.0, g[j]), (30.0, g[j + 1]), "primary")
        way((28.0, g[j]), (30.0, g[j]), "service")
        way((30.0, g[j]), (31.0, g[j]), "service")
    m = len(segs)
    s = streets(
        segs,
        highway=highway,
        bridge=[("yes" if k % 11 == 0 else None) for k in range(m)],
        footway=[("crossing" if k % 13 == 0 else None) for k in range(m)],
    )
    net = build_network(s)
    e = net.edges
    tags = pd.DataFrame(
        {
            "highway": e["highway"].to_numpy(),
            "bridge": e["bridge"].to_numpy(),
            "tunnel": None,
            "footway": e["footway"].to_numpy(),
        }
    )
    tags["is_barrier"] = tags["highway"].eq("primary") & tags["bridge"].isna()
    return net, tags, net.node_osm_ids[::7]


def test_hand_made_edge_ends_and_sides_equal_the_reference(hand_cells):
    net, tags, _ = hand_network()
    tree = hand_cells
    length = net.edges["length_m"].to_numpy()
    got, want = bar._end_cells(net, tree, length), ref_end_cells(net, tree, length)
    for g, w in zip(got, want):
        assert_same_arrays(g, w)
    assert (want[0] != want[1]).sum() > 50 and (want[0] == -1).sum() > 50
    geoms = net.edges.geometry.to_numpy()
    barrier = tags["is_barrier"].to_numpy()
    for g, w in zip(
        bar._sides(geoms[barrier], length[barrier], tree),
        ref_sides(geoms[barrier], length[barrier], tree),
    ):
        assert_same_arrays(g, w)


def test_hand_made_safe_network_equals_the_reference():
    net, tags, crossings = hand_network()
    barriers = BARRIERS
    got = bar.safe_network(net, tags, barriers, crossings, extent=EXTENT)
    want = ref_safe_network(net, tags, barriers, crossings, extent=EXTENT)
    assert_same_safe_network(got, want)
    assert len(got[0].node_osm_ids) > net.n_nodes  # nodes on the barriers have copies


def test_node_copies_are_numbered_as_unique_numbers_them():
    rng = np.random.default_rng(7)
    n_nodes = 500
    node = rng.integers(0, n_nodes - 20, 5000)  # some nodes listed nowhere
    cell = np.where(rng.random(5000) < 0.8, node % 9, rng.integers(-1, 40, 5000))
    code, copy_node = bar._node_copies(node, cell, n_nodes)
    span = 42
    uniq, want = np.unique(node * span + cell + 1, return_inverse=True)
    assert_same_arrays(code, want)
    assert_same_arrays(copy_node, uniq // span)


# --- the Helsinki sample ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helsinki_safe_inputs(helsinki_layers, helsinki_network):
    """The sample's safe-route inputs as a run makes them (`SafeRoute.build`) and its study area."""
    from walkcover.assessment import study_polygon
    from walkcover.config.standards import features_matching, load_standards

    city, crs, layers = helsinki_layers
    rules = load_standards().safe_route
    net = helsinki_network
    lines = bar.barrier_lines(layers.streets.to_crs(crs), layers.features.to_crs(crs), rules)
    tags = net.edges[["highway", "bridge", "tunnel", "footway"]].copy()
    tags["is_barrier"] = tags["highway"].astype("string").isin(rules.barrier_highways).fillna(False)
    tags["is_barrier"] &= ~(tags["bridge"].notna() | tags["tunnel"].notna())
    crossings = features_matching(layers.features, rules.crossing_nodes)
    mapped = [int(i.split("/")[1]) for i in crossings["osm_id"] if str(i).startswith("node/")]
    # the sample's features hold few mapped crossings, if any: every 40th node is one too
    ids = np.union1d(np.asarray(mapped, dtype=np.int64), net.node_osm_ids[::40])
    area = gpd.GeoSeries([study_polygon(city.districts, crs=crs, margin_m=2200)], crs=4326)
    extent = area.to_crs(crs).iloc[0]
    return net, tags, lines, ids, extent


@pytest.mark.parametrize("area", ["streets", "study", "smaller"])
def test_helsinki_safe_network_equals_the_reference(helsinki_safe_inputs, area):
    net, tags, lines, ids, extent = helsinki_safe_inputs
    # the streets' bounding box, the study area, and a smaller one that leaves streets outside
    if area == "streets":
        extent = shapely.box(*shapely.total_bounds(net.edges.geometry.to_numpy()))
    elif area == "smaller":
        xmin, ymin, xmax, ymax = shapely.total_bounds(net.edges.geometry.to_numpy())
        middle = shapely.Point((xmin + xmax) / 2, (ymin + ymax) / 2)
        extent = extent.intersection(middle.buffer(0.3 * max(xmax - xmin, ymax - ymin)))
    assert len(lines) > 50 and len(ids) > 10
    tree = shapely.STRtree(bar.cells(lines, extent))
    ref_tree = shapely.STRtree(ref_cells(lines, extent))
    assert_same_cells(tree.geometries, ref_tree.geometries)
    assert len(tree.geometries) > (10 if area == "streets" else 4)
    length = net.edges["length_m"].to_numpy()
    want = ref_end_cells(net, tree, length)
    for g, w in zip(bar._end_cells(net, tree, length), want):
        assert_same_arrays(g, w)
    assert (want[0] != want[1]).sum() > 20  # edges that cross a barrier
    if area == "smaller":
        assert (want[0] == -1).sum() > 100  # streets outside the study area
    # every vertex of the cells (on their boundaries), the edges' vertices and midpoints, and
    # points every 4 m
    xmin, ymin, xmax, ymax = shapely.total_bounds(net.edges.geometry.to_numpy())
    gx, gy = np.meshgrid(np.arange(xmin, xmax, 4.0), np.arange(ymin, ymax, 4.0))
    points = np.concatenate(
        [
            shapely.points(gx.ravel(), gy.ravel()),
            shapely.points(shapely.get_coordinates(tree.geometries)),
            shapely.points(shapely.get_coordinates(net.edges.geometry.to_numpy())),
            shapely.line_interpolate_point(net.edges.geometry.to_numpy(), 0.5, normalized=True),
        ]
    )
    assert len(points) >= bar._FEW_POINTS
    assert_same_placement(tree, points)
    got = bar.safe_network(net, tags, lines, ids, extent=extent)
    assert_same_safe_network(got, ref_safe_network(net, tags, lines, ids, extent=extent))


def test_the_reference_tells_a_wrong_placement(hand_cells):
    """The comparisons can fail: a placement that takes points on a hole's ring as inside the
    cell around the hole (or a probe distance short by a nanometre) differs from the reference."""
    tree = hand_cells
    points = lattice(0.25)
    want = ref_cell_of(tree, points)
    polys = tree.geometries
    loose = np.full(len(points), -1)
    c, p = shapely.STRtree(points).query(polys, predicate="covers")
    loose[p] = c
    assert (loose != want).any()
    short = ref_near(tree, points, bar._PROBE_M * (1 - 1e-9))
    assert (short != ref_near(tree, points, bar._PROBE_M * (1 + 1e-9))).any()
