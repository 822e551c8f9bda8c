"""Life circles (GB 50180-2018): a home's circle is complete only when every facility its tier
requires covers it; unmeasured homes are <NA> and left out; districts weigh by residents."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

from walkcover.measures import life_circles
from walkcover.measures.life_circles import district_life_circles, home_life_circles

TIERS = {5: ["kindergarten", "toilet", "park_5min"], 10: ["primary_school", "bus_stop"]}

# Five homes. 0: everything. 1: every 5-minute facility but the toilet. 2: everything, but not
# measured (unsnapped). 3: lacks the kindergarten and the toilet. 4: lacks the kindergarten and
# the park, and the bus stop.
T, F = True, False
COVERED = {
    "kindergarten": np.array([T, T, T, F, F]),
    "toilet": np.array([T, F, T, F, T]),
    "park_5min": np.array([T, T, T, T, F]),
    "primary_school": np.array([T, T, T, T, T]),
    "bus_stop": np.array([T, T, T, T, F]),
}
MEASURED = np.array([T, T, F, T, T])
#            home:  0     1     2      3     4
RESIDENTS = np.array([10.0, 30.0, 100.0, 40.0, 20.0])
DISTRICT = np.array(["a", "a", "b", "b", "a"], dtype=object)


def test_all_but_one_is_incomplete_and_adding_it_completes_the_circle():
    h = home_life_circles(COVERED, tiers=TIERS, measured=MEASURED)
    assert list(h.columns) == [
        "life_circle_5min_complete",
        "life_circle_5min_found",
        "life_circle_10min_complete",
        "life_circle_10min_found",
    ]
    assert h["life_circle_5min_complete"].dtype == "boolean"
    assert h["life_circle_5min_found"].dtype == "Int64"
    assert h["life_circle_5min_complete"].tolist() == [True, False, pd.NA, False, False]
    assert h["life_circle_5min_found"].tolist() == [3, 2, pd.NA, 1, 1]
    assert h["life_circle_10min_complete"].tolist() == [True, True, pd.NA, True, False]
    # home 1 had all but the toilet: a toilet within 300 m completes its circle
    toilet = COVERED["toilet"].copy()
    toilet[1] = True
    after = home_life_circles({**COVERED, "toilet": toilet}, tiers=TIERS, measured=MEASURED)
    assert after["life_circle_5min_complete"].tolist() == [True, True, pd.NA, False, False]
    assert after["life_circle_5min_found"].tolist() == [3, 3, pd.NA, 1, 1]
    # the 10-minute tier did not depend on the toilet
    pd.testing.assert_series_equal(
        after["life_circle_10min_complete"], h["life_circle_10min_complete"]
    )


def test_unmeasured_homes_are_na_never_false():
    h = home_life_circles(COVERED, tiers=TIERS, measured=np.zeros(5, dtype=bool))
    assert h.isna().all().all()
    covered_na = {**COVERED, "toilet": pd.array([True, pd.NA, True, False, True], "boolean")}
    h = home_life_circles(covered_na, tiers={5: ["toilet"]}, measured=MEASURED)
    assert h["life_circle_5min_complete"].tolist() == [True, False, pd.NA, False, True]


def test_district_figures_weighted_by_residents_by_hand():
    h = home_life_circles(COVERED, tiers=TIERS, measured=MEASURED)
    d = district_life_circles(
        h, covered=COVERED, tiers=TIERS, residents=RESIDENTS, district=DISTRICT
    )
    assert list(d.columns) == [
        "district_id",
        "tier_min",
        "required",
        "residents",
        "complete_pct",
        "most_missing",
        "most_missing_residents",
    ]
    assert list(zip(d["district_id"], d["tier_min"])) == [("a", 5), ("a", 10), ("b", 5), ("b", 10)]
    assert d["required"].tolist() == [3, 2, 3, 2]
    a5, a10, b5, b10 = (r for _, r in d.iterrows())
    # district a: homes 0 (10, complete), 1 (30, lacks toilet), 4 (20, lacks kindergarten, park)
    assert a5["residents"] == 10 + 30 + 20
    assert a5["complete_pct"] == pytest.approx(100 * 10 / 60)
    # by residents the toilet (30) is lacked most; by homes it would tie with the others (1 each)
    assert (a5["most_missing"], a5["most_missing_residents"]) == ("toilet", 30)
    # 10 minutes: only home 4 (20) lacks the bus stop
    assert a10["complete_pct"] == pytest.approx(100 * 40 / 60)
    assert (a10["most_missing"], a10["most_missing_residents"]) == ("bus_stop", 20)
    # district b: home 2 (100 residents) was not measured and counts nowhere; home 3 (40) lacks
    # the kindergarten and the toilet: a tie, the first listed wins
    assert b5["residents"] == 40
    assert b5["complete_pct"] == 0
    assert (b5["most_missing"], b5["most_missing_residents"]) == ("kindergarten", 40)
    assert b10["complete_pct"] == 100
    assert (b10["most_missing"], b10["most_missing_residents"]) == ("", 0)


def test_a_district_with_no_measured_residents_has_no_figure():
    h = home_life_circles(COVERED, tiers=TIERS, measured=MEASURED)
    district = DISTRICT.copy()
    district[2] = "c"  # the unmeasured home alone
    d = district_life_circles(
        h, covered=COVERED, tiers={5: TIERS[5]}, residents=RESIDENTS, district=district
    )
    c = d[d["district_id"] == "c"].iloc[0]
    assert c["residents"] == 0 and np.isnan(c["complete_pct"])
    assert (c["most_missing"], c["most_missing_residents"]) == ("", 0)
    # and district b lost nothing it had counted
    b = d[d["district_id"] == "b"].iloc[0]
    assert b["residents"] == 40 and b["complete_pct"] == 0


def test_homes_without_a_district_are_left_out():
    h = home_life_circles(COVERED, tiers=TIERS, measured=MEASURED)
    district = DISTRICT.copy()
    district[0] = None
    d = district_life_circles(
        h, covered=COVERED, tiers={5: TIERS[5]}, residents=RESIDENTS, district=district
    )
    assert d["district_id"].tolist() == ["a", "b"]
    assert d.loc[0, "residents"] == 30 + 20 and d.loc[0, "complete_pct"] == 0


def test_mistakes_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="no coverage for 'toilet' of the 5-minute tier"):
        home_life_circles(
            {"kindergarten": COVERED["kindergarten"]}, tiers={5: ["kindergarten", "toilet"]},
            measured=MEASURED,
        )  # fmt: skip
    with pytest.raises(ValueError, match="covered\\['toilet'\\] has 3 values but there are 5"):
        home_life_circles({"toilet": np.ones(3, bool)}, tiers={5: ["toilet"]}, measured=MEASURED)
    with pytest.raises(ValueError, match="the 5-minute tier lists no standards"):
        home_life_circles(COVERED, tiers={5: []}, measured=MEASURED)
    h = home_life_circles(COVERED, tiers=TIERS, measured=MEASURED)
    with pytest.raises(ValueError, match="residents must be finite"):
        district_life_circles(
            h, covered=COVERED, tiers=TIERS, residents=np.full(5, np.nan), district=DISTRICT
        )
    with pytest.raises(ValueError, match="homes has no column 'life_circle_5min_complete'"):
        district_life_circles(
            h.drop(columns="life_circle_5min_complete"),
            covered=COVERED,
            tiers=TIERS,
            residents=RESIDENTS,
            district=DISTRICT,
        )


def test_no_tiers_no_rows():
    h = home_life_circles(COVERED, tiers={}, measured=MEASURED)
    assert h.shape == (5, 0)
    d = district_life_circles(h, covered=COVERED, tiers={}, residents=RESIDENTS, district=DISTRICT)
    assert d.empty and "complete_pct" in d.columns


def test_docstring_examples_hold():
    result = doctest.testmod(life_circles)
    assert result.attempted >= 2 and result.failed == 0
