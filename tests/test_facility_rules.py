"""Facility rules: park and green-space sizes, private areas, entrances, school levels."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from conftest import features, shift, streets
from walkcover.config.standards import load_standards
from walkcover.config.tags import tag_dicts
from walkcover.engine import coverage as cov
from walkcover.engine.network import build_network
from walkcover.measures.entrances import facility_access
from walkcover.measures.facilities import classify_school, select_facilities

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


def park_access(*extra, fenced: bool):
    """A 200 × 100 m park north of a street y=-10; a gate at its east end (200, 0); a fence along
    its whole outline when `fenced`. Returns (network, counted parks, Access)."""
    net = build_network(streets([(1, 2, [(-100, -10), (400, -10)])]))
    park = box(0, 0, 200, 100)
    items = [({"leisure": "park"}, park), ({"barrier": "gate"}, Point(200, 0)), *extra]
    if fenced:
        items.append(({"barrier": "fence"}, park.exterior))
    f = features(*items, prefix="node")
    std = STD["park"]
    counted = select_facilities(f, std)
    counted = counted[counted["counts"]].reset_index(drop=True)
    return net, counted, facility_access(counted, f, net, use_entrances=std.use_entrances)


def park_distance(net, acc) -> float:
    house = gpd.GeoSeries([shift(Point(0, -20))], crs=acc.geoms.crs)
    res = cov.measure(
        net,
        cov.snap(net, house, max_snap_m=100),
        cov.snap(net, acc.geoms, max_snap_m=100, reach_polygon_edges=True),
        threshold_m=500,
        limit_m=1000,
    )
    return float(res["dist_m"].iloc[0])


def test_a_fenced_park_is_reached_through_its_gate():
    # house (0,-20): leg 10 to (0,-10); walk east 200 m; gate leg 10 → 220 m.
    net, _, acc = park_access(fenced=True)
    assert list(acc.entrances) == [1] and list(acc.reached_by) == ["entrances"]
    assert list(acc.geoms.geom_type) == ["Point"] and acc.enclosed_pct[0] == pytest.approx(100)
    assert park_distance(net, acc) == pytest.approx(220.0, abs=1e-9)


def test_an_open_park_is_reached_along_its_outline_whatever_gates_it_has():
    # no fence: the park's edge right above the house, 10 + 10 = 20 m
    net, _, acc = park_access(fenced=False)
    assert list(acc.reached_by) == ["outline"] and list(acc.entrances) == [0]
    assert park_distance(net, acc) == pytest.approx(20.0, abs=1e-9)


def test_locked_gates_and_building_doors_are_not_ways_into_a_park():
    # a locked gate at (0, 0) and a building's door at (100, 0) on the fence line: the only
    # public way in is still the east gate (220 m); the locked gate would give 20 m, the door 120 m
    library = box(80, -8, 120, 0)  # a building whose north wall runs along the park's south side
    net, _, acc = park_access(
        ({"barrier": "gate", "access": "private"}, Point(0, 0)),
        ({"entrance": "main"}, Point(100, 0)),
        ({"building": "library"}, library),
        fenced=True,
    )
    assert list(acc.entrances) == [1]
    assert park_distance(net, acc) == pytest.approx(220.0, abs=1e-9)


def test_an_open_square_is_reached_along_its_outline_not_through_a_library_door():
    # Kansalaistori and Oodi: a 100 × 100 m square north of the street y=-10, a library on its
    # east side whose main door (entrance=main) is on the square's outline at (100, 50). The
    # square has no fence: the house at (0,-20) reaches its edge right above it, 10 + 10 = 20 m
    # (through the door: 10 + 100 + 60 = 170 m)
    net = build_network(streets([(1, 2, [(-100, -10), (400, -10)])]))
    square = box(0, 0, 100, 100)
    f = features(
        ({"place": "square", "name": "Tori"}, square),
        ({"building": "library"}, box(100, 0, 160, 100)),
        ({"entrance": "main"}, Point(100, 50)),
        prefix="node",
    )
    counted = select_facilities(f, STD["green_space"])
    counted = counted[counted["counts"]].reset_index(drop=True)
    acc = facility_access(counted, f, net, use_entrances=True)
    assert list(acc.reached_by) == ["outline"] and acc.enclosed_pct[0] == 0
    assert park_distance(net, acc) == pytest.approx(20.0, abs=1e-9)


def test_a_path_through_the_fence_is_a_way_in():
    # a footway from the street at (60,-10) north into the park crosses the fence at (60, 0):
    # house → (0,-10) → 60 m east → 10 m north = 10 + 60 + 10 = 80 m
    net = build_network(
        streets(
            [(1, 2, [(-100, -10), (60, -10)]), (2, 3, [(60, -10), (400, -10)]),
             (2, 4, [(60, -10), (60, 50)])],
            highway=["residential", "residential", "footway"],
        )
    )  # fmt: skip
    park = box(0, 0, 200, 100)
    f = features(({"leisure": "park"}, park), ({"barrier": "fence"}, park.exterior), prefix="way")
    counted = select_facilities(f, STD["park"])
    acc = facility_access(counted, f, net, use_entrances=True)
    assert list(acc.reached_by) == ["entrances"] and list(acc.entrances) == [1]
    assert park_distance(net, acc) == pytest.approx(80.0, abs=1e-9)


def test_a_fenced_park_with_only_locked_gates_is_closed():
    net = build_network(streets([(1, 2, [(-100, -10), (400, -10)])]))
    f = features(
        ({"leisure": "park"}, box(0, 0, 200, 100)),
        ({"barrier": "gate", "access": "no"}, Point(200, 0)),
        ({"barrier": "wall"}, box(0, 0, 200, 100).exterior),
        prefix="node",
    )
    counted = select_facilities(f, STD["park"])
    acc = facility_access(counted, f, net, use_entrances=True)
    assert list(acc.reached_by) == ["closed"]
    # fenced with no gate mapped at all: reached along the outline, and said so
    f2 = f.drop(index=1)
    acc2 = facility_access(counted, f2, net, use_entrances=True)
    assert list(acc2.reached_by) == ["outline (fenced; no entrance mapped)"]


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
        want = feats.index[[matches_any(t, list(selectors)) for t in tag_dicts(feats["tags"])]]
        assert list(got) == list(want), selectors
        hits += len(want)
    assert hits > 200


def test_each_facility_is_matched_by_its_first_selector(helsinki_layers):
    """select_facilities names, for every feature it picks, the first of the standard's selectors
    that matches it feature by feature (`tag_matches`), and picks nothing else."""
    from walkcover.config.standards import tag_matches
    from walkcover.measures.facilities import describe

    _, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    rules = load_standards()
    several = 0
    for std in rules.standards.values():
        got = select_facilities(feats, std)
        want_ids, want_by = [], []
        dicts = tag_dicts(feats["tags"])
        for osm_id, tags, geom in zip(feats["osm_id"], dicts, feats.geometry, strict=True):
            first = next((s for s in std.selectors if tag_matches(tags, s)), None)
            if first is not None and geom is not None and not geom.is_empty:
                want_ids.append(osm_id)
                want_by.append(describe(first))
        assert list(got["osm_id"]) == want_ids, std.id
        assert list(got["matched_by"]) == want_by, std.id
        several += len(set(want_by)) > 1
    assert several >= 2  # standards whose facilities come from different selectors
