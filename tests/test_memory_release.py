"""What a run holds on to: the street layer goes once the walk network is built, and the maps and
GeoPackages pick a district's streets from a table of boxes, not from a second R-tree of a city's
edges (issue 27, memory)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd
import shapely

from walkcover.presentation.layers import edges_in_box


def test_edges_in_box_equals_an_rtree_query(helsinki_network):
    """Every box gives the edges an R-tree query by the box gives (boxes meeting, edges
    included), in ascending order; boxes that touch an edge's box at a side or a corner count."""
    edges = helsinki_network.edges
    geoms = edges.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    rng = np.random.default_rng(27)
    boxes = [(x0, y0, x1, y1), (x1 + 1, y1 + 1, x1 + 2, y1 + 2)]
    for _ in range(40):
        ax, bx = np.sort(rng.uniform(x0 - 50, x1 + 50, 2))
        ay, by = np.sort(rng.uniform(y0 - 50, y1 + 50, 2))
        boxes.append((float(ax), float(ay), float(bx), float(by)))
    b = shapely.bounds(geoms)
    for i in (0, 7, 123):  # exactly on an edge's box: its right side, its top, a corner
        boxes += [
            (b[i, 2], b[i, 1], b[i, 2] + 5, b[i, 3]),
            (b[i, 0], b[i, 3], b[i, 2], b[i, 3] + 5),
            (b[i, 2], b[i, 3], b[i, 2] + 1, b[i, 3] + 1),
            (b[i, 0] - 1, b[i, 1] - 1, np.nextafter(b[i, 0], -np.inf), b[i, 3]),  # just short
        ]
    hits = 0
    for box in boxes:
        got = edges_in_box(edges, box)
        want = np.sort(tree.query(shapely.box(*box)))
        np.testing.assert_array_equal(got, want)
        hits += len(got)
    assert hits > 0


def test_a_run_lets_the_street_layer_go(sample_cache):
    """Given a read instead of the layers, the run holds the only reference to them: the street
    layer is freed once the network is built, and the figures are those of a run given the layers
    themselves."""
    import walkcover as wc
    from walkcover.assessment import assess_layers, study_query
    from walkcover.config.study_area import working_crs
    from walkcover.sources import load_osm

    plan = wc.study(
        "helsinki-sample", district="sample-sw", standard="toilet", cache_dir=sample_cache
    )
    query = study_query(plan.city, plan.districts, plan.rules, plan.standards)

    def read():
        return load_osm(
            plan.source_kind, plan.source, query, cache_dir=plan.cache_dir,
            crs=working_crs(plan.city),
        )  # fmt: skip

    streets_seen: list[weakref.ref] = []
    seen_at_measuring: list[bool] = []

    def reading():
        layers = read()
        streets_seen.append(weakref.ref(layers.streets))
        return layers

    def progress(label: str) -> None:
        if label.startswith("measuring") and streets_seen and not seen_at_measuring:
            gc.collect()
            seen_at_measuring.append(streets_seen[0]() is None)

    args = (plan.city, plan.districts, plan.rules, plan.standards)
    given_read = assess_layers(*args, reading, progress=progress)
    assert seen_at_measuring == [True], "the street layer was still held while measuring"
    kept = read()
    given_layers = assess_layers(*args, kept)
    pd.testing.assert_frame_equal(given_read.summary, given_layers.summary)
    assert (given_read.source, given_read.data_date) == (kept.source, kept.data_date)
    assert len(given_read.summary) and given_read.summary["residents"].sum() > 0
