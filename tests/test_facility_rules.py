"""Facility rules: park and green-space sizes, private areas, entrances, school levels."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from conftest import features, shift, streets
from walkcover.config.standards import load_standards
from walkcover.engine import coverage as cov
from walkcover.engine.network import build_network
from walkcover.measures.facilities import access_geometries, classify_school, select_facilities

STD = load_standards().standards


@pytest.mark.parametrize(
    ("tags", "levels"),
    [
        ({"isced:level": "1"}, {"primary"}),
        ({"isced:level": "2;3"}, {"middle"}),
        ({"isced:level": "1-2"}, {"primary", "middle"}),
        ({"school:level": "primary"}, {"primary"}),
        ({"school:level": "secondary"}, {"middle"}),
        ({"grades": "1-9"}, {"primary", "middle"}),
        ({"grades": "7-9"}, {"middle"}),
        ({"name": "金水区实验小学"}, {"primary"}),
        ({"name": "郑州外国语中学"}, {"middle"}),
        ({"name": "郑州市第四十七初级中学"}, {"middle"}),
        ({"name": "郑州一中高中部"}, {"middle"}),
        ({"name": "郑州中学附属小学"}, {"primary"}),  # the last level word decides
        ({"name": "中原区九年一贯制学校"}, {"primary", "middle"}),
        ({"name": "Kaisaniemen ala-aste"}, {"primary"}),
        ({"name": "Kruununhaan yläasteen koulu"}, {"middle"}),
    ],
)
def test_school_levels_from_each_tag_form(tags, levels):
    assert classify_school({"amenity": "school", **tags}) == frozenset(levels)


def test_unclassified_school_is_reported_not_guessed():
    assert classify_school({"amenity": "school", "name": "郑州市育才学校"}) is None
    f = features(({"amenity": "school", "name": "郑州市育才学校"}, box(0, 0, 50, 50)),
                 ({"amenity": "school", "name": "实验小学"}, box(100, 0, 150, 50)))  # fmt: skip
    prim = select_facilities(f, STD["primary_school"])
    assert list(prim["counts"]) == [False, True]
    assert "school level not tagged" in prim["reason"].iloc[0]
    mid = select_facilities(f, STD["middle_school"])
    assert list(mid["counts"]) == [False, False] and mid["reason"].iloc[1] == "primary school"


def test_park_size_and_private_rules():
    f = features(
        ({"leisure": "park"}, box(0, 0, 40, 100)),  # 4,000 m²: green space yes (≥ 2,000), park no
        ({"leisure": "park"}, box(100, 0, 160, 100)),  # 6,000 m²: both
        ({"leisure": "park", "access": "private"}, box(200, 0, 260, 100)),  # 6,000 m² but private
        ({"leisure": "park"}, Point(300, 0)),  # a point: size unknown
        ({"leisure": "garden"}, box(400, 0, 420, 50)),  # 1,000 m² garden: too small for green space
    )
    park = select_facilities(f, STD["park"])
    assert list(park["counts"]) == [False, True, False, False]
    assert park["reason"].iloc[0] == "smaller than 5000 m²"
    assert park["reason"].iloc[2].startswith("excluded (access=")
    assert park["reason"].iloc[3].startswith("size unknown")
    green = select_facilities(f, STD["green_space"])
    assert list(green["counts"]) == [True, True, False, False, False]


def test_park_reached_through_its_entrance_where_mapped():
    # A 200 × 100 m park north of a street; its only gate is at the east end (200, 0).
    net = build_network(streets([(1, 2, [(-100, -10), (400, -10)])]))
    park = box(0, 0, 200, 100)
    f = features(
        ({"leisure": "park"}, park),
        ({"entrance": "yes", "barrier": "gate"}, Point(200, 0)),
        prefix="node",
    )
    std = STD["park"]
    counted = select_facilities(f, std)
    counted = counted[counted["counts"]].reset_index(drop=True)
    access, n_entr = access_geometries(counted, f, std)
    assert list(n_entr) == [1] and list(access.geom_type) == ["Point"]
    house = gpd.GeoSeries([shift(Point(0, -20))], crs=counted.crs)
    res = cov.measure(
        net,
        cov.snap(net, house, max_snap_m=100),
        cov.snap(net, access, max_snap_m=100, reach_polygon_edges=True),
        threshold_m=500,
        limit_m=1000,
    )
    # house (0,-20): leg 10 to (0,-10); walk east 200 m; gate leg 10 → 220 m. Without the gate
    # rule the park edge right above the house would give 10 + 10 = 20 m.
    assert res["dist_m"].iloc[0] == pytest.approx(220.0, abs=1e-9)
    no_gate = features(({"leisure": "park"}, park))
    access2, _ = access_geometries(counted, no_gate, std)
    res2 = cov.measure(
        net,
        cov.snap(net, house, max_snap_m=100),
        cov.snap(net, access2, max_snap_m=100, reach_polygon_edges=True),
        threshold_m=500,
        limit_m=1000,
    )
    assert res2["dist_m"].iloc[0] == pytest.approx(20.0, abs=1e-9)


def test_columnar_tag_matching_equals_matching_each_feature(helsinki_layers):
    """features_matching (column by column) selects exactly the features that matches_any
    (feature by feature) does, for every selector of the standards file, regexes included."""
    from walkcover.config.standards import features_matching, load_standards, matches_any

    _, _, layers = helsinki_layers
    feats = layers.features
    rules = load_standards()
    groups = [list(s.selectors) for s in rules.standards.values()]
    groups += [c.selectors for c in rules.counts]
    groups += [rules.land.built_up, rules.land.green, rules.safe_route.crossing_nodes]
    groups += [[{"name": "~(?i)park|puisto"}], [{"amenity": True, "name": "~kirjasto"}]]
    hits = 0
    for selectors in groups:
        got = features_matching(feats, list(selectors)).index
        want = feats.index[[matches_any(t, list(selectors)) for t in feats["tags"]]]
        assert list(got) == list(want), selectors
        hits += len(want)
    assert hits > 200
