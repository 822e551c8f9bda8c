"""Capacity-aware access (E2SFCA), capacities from OSM tags and district figures (issue #29).

E2SFCA is checked against values worked out by hand on a small network, and against PySAL
``access`` (``enhanced_two_stage_fca``) fed the same walking distances on the Helsinki sample.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from conftest import build_network, shift, streets
from walkcover.engine import choice
from walkcover.engine import coverage as cov
from walkcover.measures import access as acc

# --- three kindergartens on one street, worked out by hand ---------------------------------------
#
# A street along y = 0 from x = 0 to 1000 (two edges, joined at x = 500), and an island street far
# away. Everything stands on its street (access legs 0), so walking distance = |x − x'|.
#
#   kindergarten   x     places        home   x      residents
#   K0             100   30            H0     0      100
#   K1             500   60            H1     300    200
#   K2             900   20            H2     600    300
#                                      H3     1000   50
#                                      H4     on the island: no kindergarten within reach
#                                      H5     far from every street: unsnapped
#
# Within the 300 m catchment:  H0–K0 100 · H1–K0 200 · H1–K1 200 · H2–K1 100 · H2–K2 300 ·
# H3–K2 100 (every other pair is 500 m or more).
KX = [100.0, 500.0, 900.0]
PLACES = np.array([30.0, 60.0, 20.0])
HX = [0.0, 300.0, 600.0, 1000.0]
RESIDENTS = np.array([100.0, 200.0, 300.0, 50.0, 80.0, 40.0])
STEPS = acc.Decay(kind="steps", threshold_m=300, steps=((100, 1.0), (200, 0.5), (300, 0.25)))
GAUSS = acc.Decay(kind="gaussian", threshold_m=300, sigma_m=150)


@pytest.fixture(scope="module")
def kindergartens():
    net = build_network(
        streets(
            [
                (1, 2, [(0, 0), (500, 0)]),
                (2, 3, [(500, 0), (1000, 0)]),
                (10, 11, [(0, 5000), (100, 5000)]),
            ]
        )
    )
    homes = [shift(Point(x, 0)) for x in HX] + [shift(Point(50, 5000)), shift(Point(0, 9000))]
    dem = cov.snap(net, np.array(homes, dtype=object), max_snap_m=50)
    kg = cov.snap(net, np.array([shift(Point(x, 0)) for x in KX], dtype=object), max_snap_m=50)
    return choice.facility_pairs(net, dem, kg, limit_m=300)


def test_hand_pairs(kindergartens):
    p = kindergartens
    got = sorted(zip(p.home.tolist(), p.facility.tolist(), p.dist_m.tolist()))
    assert got == [(0, 0, 100), (1, 0, 200), (1, 1, 200), (2, 1, 100), (2, 2, 300), (3, 2, 100)]
    assert p.unsnapped.tolist() == [5]


def test_e2sfca_steps_by_hand(kindergartens):
    # W: 1 within 100 m, 0.5 within 200 m, 0.25 within 300 m.
    # Step 1, residents in each catchment weighted by W:
    #   K0: H0 100·1 + H1 200·0.5      = 200  → R0 = 30 / 200 = 0.15
    #   K1: H1 200·0.5 + H2 300·1      = 400  → R1 = 60 / 400 = 0.15
    #   K2: H2 300·0.25 + H3 50·1      = 125  → R2 = 20 / 125 = 0.16
    # Step 2, places per resident, × 1,000:
    #   H0: R0·1               = 0.15 → 150
    #   H1: R0·0.5 + R1·0.5    = 0.15 → 150
    #   H2: R1·1 + R2·0.25     = 0.19 → 190
    #   H3: R2·1               = 0.16 → 160
    #   H4: nothing within reach → 0; H5 unsnapped → NaN
    r = acc.e2sfca(kindergartens, population=RESIDENTS, supply=PLACES, decay=STEPS)
    np.testing.assert_allclose(r.catchment_residents, [200, 400, 125], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.ratio, [0.15, 0.15, 0.16], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.access_per_1000[:5], [150, 150, 190, 160, 0], rtol=0, atol=1e-9)
    assert np.isnan(r.access_per_1000[5])
    # every place is shared out: Σ residents × access = all places (30 + 60 + 20 = 110)
    assert np.nansum(RESIDENTS * r.access_per_1000) / 1000 == pytest.approx(110, abs=1e-9)


def test_e2sfca_gaussian_by_hand(kindergartens):
    # W(d) = exp(−d² / (2·150²)): W(100) = e^(−2/9) = a, W(200) = e^(−8/9) = b, W(300) = e^(−2) = c
    a, b, c = math.exp(-2 / 9), math.exp(-8 / 9), math.exp(-2)
    d0 = 100 * a + 200 * b  # K0: H0 at 100 m, H1 at 200 m
    d1 = 200 * b + 300 * a  # K1: H1 at 200 m, H2 at 100 m
    d2 = 300 * c + 50 * a  # K2: H2 at 300 m, H3 at 100 m
    r0, r1, r2 = 30 / d0, 60 / d1, 20 / d2
    expect = [r0 * a, r0 * b + r1 * b, r1 * a + r2 * c, r2 * a, 0.0]
    r = acc.e2sfca(kindergartens, population=RESIDENTS, supply=PLACES, decay=GAUSS)
    np.testing.assert_allclose(r.catchment_residents, [d0, d1, d2], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.ratio, [r0, r1, r2], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.access_per_1000[:5], np.array(expect) * 1000, rtol=0, atol=1e-9)
    assert np.isnan(r.access_per_1000[5])


def test_e2sfca_edge_cases(kindergartens):
    p = kindergartens
    # a kindergarten whose catchment holds nobody: no ratio, and it adds to nobody's access
    nobody = RESIDENTS.copy()
    nobody[3] = 0.0  # H3 is K2's only home at ≤ 100 m; H2 still weighs in at 300 m
    r = acc.e2sfca(p, population=nobody, supply=PLACES, decay=STEPS)
    assert r.ratio[2] == pytest.approx(20 / 75, abs=1e-12)
    nobody[2] = 0.0
    r = acc.e2sfca(p, population=nobody, supply=PLACES, decay=STEPS)
    assert np.isnan(r.ratio[2]) and r.catchment_residents[2] == 0
    assert r.access_per_1000[3] == 0 and np.isfinite(r.access_per_1000[:5]).all()
    with pytest.raises(ValueError, match="one value for each of the 6 homes"):
        acc.e2sfca(p, population=RESIDENTS[:3], supply=PLACES, decay=STEPS)
    with pytest.raises(ValueError, match="finite"):
        acc.e2sfca(p, population=RESIDENTS, supply=[30, np.nan, 20], decay=STEPS)
    wide = acc.Decay(kind="gaussian", threshold_m=500, sigma_m=100)
    with pytest.raises(ValueError, match="short of the catchment"):
        acc.e2sfca(p, population=RESIDENTS, supply=PLACES, decay=wide)


def test_decay_weights_and_validation():
    d = np.array([0, 100, 100.5, 200, 250, 300, 300.01, np.nan])
    np.testing.assert_array_equal(STEPS.weight(d), [1, 1, 0.5, 0.5, 0.25, 0.25, 0, 0])
    g = GAUSS.weight(d)
    assert g[0] == 1 and g[1] == pytest.approx(math.exp(-2 / 9)) and g[6] == 0 and g[7] == 0
    assert acc.Decay.from_mapping({"kind": "steps", "steps": [[100, 1], [300, 0.5]]}) == acc.Decay(
        kind="steps", threshold_m=300, steps=((100.0, 1.0), (300.0, 0.5))
    )
    assert acc.Decay.from_mapping({"threshold_m": 300, "sigma_m": 150}) == GAUSS
    for bad, msg in [
        ({"kind": "gaussian", "threshold_m": 300}, "sigma_m"),
        ({"kind": "gaussian", "threshold_m": 300, "sigma_m": 0}, "sigma_m"),
        ({"kind": "steps", "threshold_m": 400, "steps": [[100, 1], [300, 0.5]]}, "threshold"),
        ({"kind": "steps", "steps": [[200, 1], [100, 0.5]]}, "increasing"),
        ({"kind": "steps", "steps": [[100, -1]]}, "0 or more"),
        ({"kind": "linear", "threshold_m": 300}, "kind"),
        ({"kind": "gaussian", "threshold_m": -1, "sigma_m": 5}, "positive"),
        ({"kind": "gaussian", "threshold_m": 300, "sigma": 5}, "unknown"),
    ]:
        with pytest.raises(ValueError, match=msg):
            acc.Decay.from_mapping(bad)


# --- PySAL access, fed the same walking distances ------------------------------------------------


@pytest.fixture(scope="module")
def helsinki_pairs(helsinki_green_space):
    net, dem, src = helsinki_green_space
    return choice.facility_pairs(net, dem, src, limit_m=500)


@pytest.mark.parametrize(
    "decay",
    [
        acc.Decay(kind="gaussian", threshold_m=400, sigma_m=180),
        acc.Decay(kind="steps", threshold_m=400, steps=((150, 1.0), (300, 0.68), (400, 0.22))),
    ],
    ids=["gaussian", "steps"],
)
def test_e2sfca_equals_pysal_access(helsinki_pairs, decay):
    import access as access_lib  # PySAL access, a test-only dependency

    p = helsinki_pairs
    rng = np.random.default_rng(29)
    residents = rng.integers(1, 200, p.n_homes).astype(float)
    places = rng.integers(10, 300, p.n_facilities).astype(float)
    ours = acc.e2sfca(p, population=residents, supply=places, decay=decay)

    if decay.kind == "gaussian":
        weight_fn = access_lib.weights.gaussian(decay.sigma_m)
    else:
        weight_fn = access_lib.weights.step_fn(dict(decay.steps))
    cost = pd.DataFrame({"origin": p.home, "dest": p.facility, "cost": p.dist_m})
    model = access_lib.Access(
        demand_df=pd.DataFrame({"geoid": np.arange(p.n_homes), "pop": residents}),
        demand_index="geoid",
        demand_value="pop",
        supply_df=pd.DataFrame({"geoid": np.arange(p.n_facilities), "places": places}),
        supply_index="geoid",
        supply_value="places",
        cost_df=cost,
        cost_origin="origin",
        cost_dest="dest",
        cost_name="cost",
    )
    theirs = model.enhanced_two_stage_fca(
        name="e2sfca", max_cost=decay.threshold_m, weight_fn=weight_fn
    )["e2sfca_places"].reindex(np.arange(p.n_homes))
    theirs = theirs.to_numpy() * acc.PER_RESIDENTS
    reached = ~np.isnan(theirs)
    assert reached.sum() > 300 and len(np.unique(p.facility)) > 20
    np.testing.assert_allclose(ours.access_per_1000[reached], theirs[reached], rtol=1e-9, atol=1e-9)
    # homes PySAL leaves out have no facility within the catchment: 0, or NaN if unsnapped
    rest = ours.access_per_1000[~reached]
    assert np.all((rest == 0) | np.isnan(rest))
    assert np.isnan(ours.access_per_1000[p.unsnapped]).all()


# --- capacities from OSM tags --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("40", 40),
        (" 35 ", 35),
        ("approx. 40", 40),
        ("approx.40", 40),
        ("~40", 40),
        ("约40人", 40),
        ("４０", 40),  # full-width digits, as Chinese data writes them
        ("50-60", 50),  # a range: its first number
        ("50 - 60", 50),
        ("50;60", 50),  # OSM's list separator
        ("1,200", 1200),  # thousands
        ("40.5", 40.5),
        ("40.", 40),
        (120, 120),
        (np.int64(7), 7),
    ],
)
def test_parse_capacity_reads_first_number(value, expect):
    assert acc.parse_capacity(value) == expect


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (float("nan"), "empty"),
        (None, "no number"),
        (True, "no number"),
        ("yes", "no number"),
        ("NaN", "no number"),
        ("inf", "no number"),
        ("...", "no number"),
        ("12,5", "ambiguous"),  # a decimal comma, or a list of two
        ("1.200.000", "ambiguous"),
        ("-5", "negative"),
        ("approx. -5", "negative"),
        ("−5", "negative"),  # a typographic minus
        ("0", "not a positive"),
        (0, "not a positive"),
        (-3.0, "not a positive"),
        ("1e9", "exponent"),
        ("999999999", "implausibly large"),
        (float("inf"), "finite"),
    ],
)
def test_parse_capacity_refuses_with_reason(value, reason):
    with pytest.raises(acc.CapacityError, match=reason):
        acc.parse_capacity(value)
    with pytest.raises(ValueError):  # a CapacityError is a ValueError
        acc.parse_capacity(value)


def test_facility_capacities_tag_then_default():
    tags = [
        {"capacity": "50-60"},
        {"capacity": "lots", "beds": "12"},
        {"school:capacity": "300", "name": "小学"},
        None,
        {"capacity": ""},
        {"beds": "-1", "school:capacity": "abc"},
    ]
    got = acc.facility_capacities(tags, default=90)
    assert got["capacity"].tolist() == [50, 12, 300, 90, 90, 90]
    assert got["source"].tolist() == [
        "capacity",
        "beds",
        "school:capacity",
        "default",
        "default",
        "default",
    ]
    assert got["used_default"].tolist() == [False, False, False, True, True, True]
    assert got["note"].tolist() == [
        "",
        "capacity: no number in 'lots'",
        "",
        "",
        "capacity: empty",
        "beds: negative number in '-1'; school:capacity: no number in 'abc'",
    ]
    # keys in the standard's own order
    beds_first = acc.facility_capacities(
        [{"capacity": "50", "beds": "12"}], default=1, keys=["beds"]
    )
    assert beds_first["capacity"].tolist() == [12]
    with pytest.raises(ValueError, match="default"):
        acc.facility_capacities(tags, default=float("nan"))


# --- district figures ----------------------------------------------------------------------------


def test_district_access_by_hand():
    # district A: access 100 / 200 / 300 per 1,000 for 5 / 30 / 65 residents, and 5 unmeasured
    #   mean = (100·5 + 200·30 + 300·65) / 100 = 260
    #   10th percentile: 10 % of 100 residents = 10; running residents 5, 35 → 200
    #   below a norm of 150: 5 of 100 = 0.05
    # district B: access 50 for nobody, 0 for 20 residents: mean 0, p10 0, all below the norm
    # district C: only unmeasured homes: no figures
    access = [200, 100, np.nan, 300, 50, 0, np.nan]
    residents = [30, 5, 5, 65, 0, 20, 7]
    district = ["A", "A", "A", "A", "B", "B", "C"]
    got = acc.district_access(access, residents, district, norm_per_1000=150)
    assert got.index.tolist() == ["A", "B", "C"]
    assert got["residents"].tolist() == [105, 20, 7]
    assert got["residents_unmeasured"].tolist() == [5, 0, 7]
    np.testing.assert_allclose(got["mean_per_1000"].to_numpy()[:2], [260, 0], atol=1e-12)
    np.testing.assert_array_equal(got["p10_per_1000"].to_numpy()[:2], [200, 0])
    np.testing.assert_allclose(got["share_below_norm"].to_numpy()[:2], [0.05, 1.0], atol=1e-12)
    assert got.loc["C", ["mean_per_1000", "p10_per_1000", "share_below_norm"]].isna().all()


def test_district_p10_at_exact_tenth():
    # ten homes of 10 residents, access 1..10: the 10th percentile is the first home's (10 %)
    got = acc.district_access(np.arange(1.0, 11.0), np.full(10, 10.0), ["x"] * 10, norm_per_1000=3)
    assert got.loc["x", "p10_per_1000"] == 1
    assert got.loc["x", "share_below_norm"] == pytest.approx(0.2)
