"""The faster paths of `walkcover.measures.land` give what the plain computations they replace give,
to the last bit: GEOS's circles, the district's land cut from the whole union, the snaps of every
cell, the straight-line share by GEOS, and the official share (100 % exactly where the circles
cover the land)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from conftest import X0, Y0, shift
from walkcover.engine import coverage as cov
from walkcover.engine.street_context import unit_thresholds
from walkcover.measures import land as landmod

SNAP_FIELDS = ("item", "edge", "lo_m", "hi_m", "leg_m", "unsnapped")


def assert_same_snaps(got: cov.Snaps, want: cov.Snaps) -> None:
    """Every array of the two snaps the same, dtype and values, and the same number of items."""
    assert got.n_items == want.n_items
    for f in SNAP_FIELDS:
        a, b = getattr(got, f), getattr(want, f)
        assert a.dtype == b.dtype, f
        assert np.array_equal(a, b), f


def test_moved_circles_are_geos_circles():
    rng = np.random.default_rng(3)
    xy = np.column_stack([X0 + rng.uniform(-9000, 9000, 300), Y0 + rng.uniform(-9000, 9000, 300)])
    plain = shapely.points(xy)
    odd = [
        Point(0.0, Y0),  # on an axis: buffered by GEOS
        Point(-1234.5, -987.25),
        Point(),  # empty
        Point(X0, Y0, 12.0),  # with a z
        shift(box(0, 0, 40, 25)),
        shift(Polygon([(0, 0), (60, 0), (30, 45)])),
    ]
    geoms = np.concatenate([plain[:150], np.array(odd, dtype=object), plain[150:]])
    for radius in (300.0, 500.0, 1000.0, 37.7):
        want = shapely.buffer(geoms, radius, quad_segs=32)
        got = landmod.official_circles(geoms, radius)
        assert shapely.equals_identical(got, want).all()
        reach = landmod.official_reach(geoms, radius)
        assert shapely.equals_identical(reach, shapely.union_all(want))
        # the points' circles really are moved, not drawn by GEOS
        moved = landmod.moved_circles(xy, radius, check=plain)
        assert moved is not None
        assert shapely.equals_identical(moved, shapely.buffer(plain, radius, quad_segs=32)).all()
    # circles that GEOS would draw otherwise (here: round other points) are refused
    assert landmod.moved_circles(xy + 1e-6, 500.0, check=plain) is None
    assert landmod.moved_circles(xy, 0.0, check=plain) is None  # no circle at all


def test_straight_share_from_coordinates_is_geos_share(monkeypatch):
    rng = np.random.default_rng(11)
    # whole metres: a stop's 3-4-5 cells below are exactly on its radius
    stops = np.column_stack([X0 + rng.integers(0, 3000, 40), Y0 + rng.integers(0, 3000, 40)])
    cells = np.column_stack(
        [X0 + rng.uniform(-500, 3500, 6000), Y0 + rng.uniform(-500, 3500, 6000)]
    )
    # cells exactly 500 m and 300 m from a stop (3-4-5 triangles): on the radius, GEOS decides
    edge = np.concatenate([np.add(stops[:10], (300.0, 400.0)), stops[10:20] - (180.0, 240.0)])
    cells = np.concatenate([cells, edge])
    ground = np.array([shift(box(1000, 1000, 1200, 1100)), shift(box(2500, 200, 2600, 900))])
    points = shapely.points(stops)
    radii = rng.choice([300.0, 500.0, 800.0], len(cells))
    radii[-20:-10], radii[-10:] = 500.0, 300.0
    for facilities in (points, np.concatenate([points[:20], ground, points[20:]]), ground):
        for radius in (500.0, radii):
            r = np.broadcast_to(np.asarray(radius, dtype=float), (len(cells),))
            rmax = float(r.max())
            want = landmod._near_geos(shapely.points(cells), facilities, r, rmax)
            got = landmod._near_xy(cells, facilities, r, rmax)
            assert np.array_equal(got, want)
            assert landmod.straight_covered_share(cells, facilities, radius) == (
                landmod.straight_covered_share(shapely.points(cells), facilities, radius)
            )
    # the cells on the radius are near, and were left to GEOS
    asked = []
    geos = landmod._near_geos
    monkeypatch.setattr(
        landmod, "_near_geos", lambda c, *args: asked.append(len(c)) or geos(c, *args)
    )
    assert landmod._near_xy(edge, points, radii[-20:], 500.0).all()
    assert len(asked) == 1 and 0 < asked[0] <= len(edge)  # (some have a nearer stop)


def _blocks() -> np.ndarray:
    """A dissolved land: blocks, pairs touching at a corner (one part each side), a block with a
    courtyard and one in it, and a far block."""
    geoms = [
        shift(box(x, y, x + 80, y + 60)) for x in range(0, 2000, 130) for y in range(0, 1500, 95)
    ]
    geoms += [shift(box(2100, 0, 2200, 100)), shift(box(2200, 100, 2300, 200))]  # corner to corner
    yard = Polygon(
        [(2400, 0), (2700, 0), (2700, 300), (2400, 300)], [[(2500, 100), (2600, 100), (2600, 200)]]
    )
    geoms += [shift(yard), shift(box(2520, 120, 2560, 140)), shift(box(9000, 9000, 9100, 9100))]
    return landmod.dissolve(np.array(geoms, dtype=object))


def test_district_land_from_the_parts_that_meet_it():
    parts = _blocks()
    union = shapely.multipolygons(parts)
    tree = shapely.STRtree(parts)
    districts = [
        shift(Polygon([(-50, -50), (1300, 40), (1050, 1700), (-20, 900)])),
        shift(
            Polygon(
                [(1200, -100), (2650, -100), (2650, 1600), (1200, 1600)],
                [[(1500, 300), (1800, 300), (1800, 700), (1500, 700)]],
            )
        ),
        shift(box(2150, 50, 2250, 150)),  # through the corner two parts touch at
        shift(box(2450, 50, 2650, 250)),  # round the courtyard
        shapely.MultiPolygon(
            [shift(box(5000, 5000, 6000, 6000)), shift(box(8950, 8950, 9050, 9050))]
        ),
        shift(box(5000, 5000, 6000, 6000)),  # no land
        shift(box(3000, -500, 8000, 8000)),  # in the land's box, meeting none of it
    ]
    for district in districts:
        want = shapely.intersection(union, district)
        assert shapely.equals_identical(landmod.land_in(parts, tree, district), want)


def test_district_cells_of_the_sample_are_the_plain_ones(sample_results):
    a = sample_results.assessment
    lands = a.lands
    cell_m = a.rules.land.cell_m
    shared = 0
    for kind in ("residential_land", "built_up"):  # the run cut residential land first
        union = lands.union(kind)
        for did, dgeom in zip(a.districts_proj["district_id"], a.districts_proj.geometry):
            land, pts, snaps = lands.district_cells(kind, did)
            want = shapely.intersection(union, dgeom)
            assert shapely.equals_identical(land, want)
            assert np.array_equal(pts, landmod.grid_cells(want, cell_m=cell_m))
            assert_same_snaps(snaps, cov.snap_xy(a.network, pts, max_snap_m=lands.snap_m))
            if kind == "built_up":
                other = lands.district_cells("residential_land", did)[1]
                shared += len(landmod.same_points(pts, other, cell_m=cell_m)[0])
    assert shared > 500  # the built-up cells did take the residential cells' snaps


def test_edges_of_a_district_are_those_whose_midpoint_it_contains(sample_results):
    """The midpoints outside a district's box are not tested (nor counted): the edges are those
    of the plain test over every midpoint, and an empty outline holds none."""
    a = sample_results.assessment
    mid = a.lands.edge_midpoints()
    outside_some_box = 0
    for did, dgeom in zip(a.districts_proj["district_id"], a.districts_proj.geometry):
        want = shapely.contains_xy(dgeom, mid[:, 0], mid[:, 1])
        got = a.lands.edge_district(did, dgeom)
        assert got.dtype == bool and np.array_equal(got, want)
        assert 0 < got.sum() < len(mid)
        x0, y0, x1, y1 = dgeom.bounds
        outside_some_box += int(
            ((mid[:, 0] < x0) | (mid[:, 0] > x1) | (mid[:, 1] < y0) | (mid[:, 1] > y1)).sum()
        )
    assert outside_some_box > 0
    assert not a.lands.edge_district("none", Polygon()).any()


def test_cells_snapped_in_pieces_are_snapped_whole(helsinki_network):
    net = helsinki_network
    x0, y0, x1, y1 = net.edges.total_bounds
    xy = landmod.grid_cells(box(x0, y0, (x0 + x1) / 2, (y0 + y1) / 2), cell_m=25.0)
    first = np.flatnonzero(np.arange(len(xy)) % 3 == 0)
    for tie_m in (0.0, 5.0):  # one row per cell, and several (ties)
        whole = cov.snap_xy(net, xy, max_snap_m=60.0, tie_m=tie_m)
        rest = np.setdiff1d(np.arange(len(xy)), first)
        pieces = [
            (first, whole.take(first)),
            (rest, cov.snap_xy(net, xy[rest], max_snap_m=60.0, tie_m=tie_m)),
        ]
        assert_same_snaps(landmod.joined_snaps(pieces, len(xy)), whole)
    assert len(whole.unsnapped) and len(whole.item) > len(xy) - len(whole.unsnapped)
    # the same cells found by their bits, whatever the order of either grid
    for a, b in ((xy[first], xy[::-1]), (xy[::-1], xy[first])):
        at, j = landmod.same_points(a, b, cell_m=25.0)
        assert len(at) == len(first) and np.array_equal(a[at], b[j])
    assert not len(landmod.same_points(xy, xy + 1e-7, cell_m=25.0)[0])


def test_official_share_exactly_whole_where_the_circles_cover_the_land():
    land = shapely.multipolygons(_blocks()[:40])
    x0, y0, x1, y1 = shapely.bounds(land)
    gx, gy = np.meshgrid(np.arange(x0, x1 + 200, 200), np.arange(y0, y1 + 200, 200))
    stops = shapely.points(gx.ravel(), gy.ravel())
    reach = landmod.official_reach(stops, 300.0)
    cut = shapely.clip_by_rect(reach, x0, y0, x1, y1)
    assert shapely.covers(cut, land)
    for given in (None, reach):
        got = landmod.euclid_covered_share(land, stops, 300.0, reach=given)
        assert got == 100.0 and isinstance(got, np.float64)
    # partly covered: the overlay's figure, to the last bit
    few = stops[::7]
    reach = landmod.official_reach(few, 300.0)
    want = (
        100.0
        * shapely.area(shapely.intersection(land, shapely.clip_by_rect(reach, x0, y0, x1, y1)))
        / shapely.area(land)
    )
    assert 0 < want < 100
    assert landmod.euclid_covered_share(land, few, 300.0, reach=reach) == want


def test_sample_figures_are_the_plain_computation(sample_results):
    a = sample_results.assessment
    lands = a.lands
    summary = a.summary.set_index(["standard", "district_id"])
    checked_straight = 0
    for std in a.standards:
        p = a.passes[std.id]
        fac = p.counted.geometry.to_numpy()
        figures = lands.figures(std, fac, p.snaps, p.node_dist)
        reach = shapely.union_all(shapely.buffer(fac, std.threshold_m, quad_segs=32))
        for did, row in figures.items():
            land, pts, snaps = lands.district_cells(std.denominator, did)
            if std.context_thresholds_m and len(pts):  # straight line against walking, by GEOS
                thr = unit_thresholds(std, lands.context, snaps)
                straight = landmod.straight_covered_share(shapely.points(pts), fac, thr)
                detour = straight - row["area_covered_pct"]
                assert row["detour_loss_pp"] == (0.0 if abs(detour) < 1e-9 else detour)
                checked_straight += 1
            if shapely.area(land) <= 0:
                assert np.isnan(row["area_covered_euclid_pct"])
                continue
            cut = shapely.clip_by_rect(reach, *shapely.bounds(land))
            plain = 100.0 * shapely.area(shapely.intersection(land, cut)) / shapely.area(land)
            if len(fac) and shapely.covers(cut, land):
                assert row["area_covered_euclid_pct"] == 100.0
                assert plain == pytest.approx(100.0, rel=1e-12)  # the overlay's rounding
            else:
                assert row["area_covered_euclid_pct"] == (plain if len(fac) else 0.0)
            if len(fac):  # (the summary leaves a standard without facilities blank)
                got = summary.loc[(std.id, did), "area_covered_euclid_pct"]
                assert got == row["area_covered_euclid_pct"]
    # the sample has land both covered whole and partly
    euclid = summary["area_covered_euclid_pct"].dropna()
    assert (euclid == 100.0).any() and ((euclid > 0) & (euclid < 100)).any()
    assert checked_straight  # (the toilets' radius depends on the street)


def test_no_land_at_all_is_cut_as_the_empty_union():
    district = shift(box(0, 0, 100, 100))
    none = np.array([], dtype=object)
    got = landmod.land_in(none, shapely.STRtree(none), district)
    assert shapely.equals_identical(got, shapely.intersection(shapely.Polygon(), district))
