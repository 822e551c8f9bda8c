"""GB 50180-2018 as a second plan: the bundled life-circle file, and the access, choice and
life-circle fields of the standards schema (refused with the YAML path, the value and the fix)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from walkcover import ConfigError
from walkcover._paths import config_file
from walkcover.config.standards import (
    PLAN_STANDARD_IDS,
    AccessRule,
    DecayRule,
    Standard,
    load_standards,
)
from walkcover.measures.access import Decay


@pytest.fixture(scope="module")
def gb():
    return load_standards("gb50180-2018")


def _raw(name: str) -> dict:
    return yaml.safe_load(config_file("standards", name).read_text(encoding="utf-8"))


def test_bundled_by_name_like_zhengzhou(gb):
    path = config_file("standards", "gb50180-2018")
    assert path.name == "gb50180-2018.yaml" and path.parent.name == "standards"
    assert gb.id == "gb50180-2018" and gb.document == "GB 50180-2018"
    # the CLI's --standards hands a Path: a bare name still finds the bundled file
    assert load_standards(Path("gb50180-2018")) == gb
    assert load_standards(path) == gb
    with pytest.raises(ConfigError, match=r"gb50180-2018.*zhengzhou-2018"):
        load_standards("gb50180")
    assert gb.city is None  # a national standard: no city's own figures


def test_every_standard_has_a_tier_a_distance_and_a_citation(gb):
    raw = _raw("gb50180-2018")["standards"]
    assert list(gb.standards) == list(raw)  # nothing dropped or renamed on the way
    for sid, std in gb.standards.items():
        assert std.life_circle in (5, 10, 15), sid
        assert std.citation.section.strip() and std.citation.text.strip(), sid
        assert std.target_basis.strip(), sid
        # a tier's facility is never farther than the 15-minute walk (1000 m)
        assert 0 < std.threshold_m <= 1000, sid
    # every radius the printed standard was not checked for says so
    unverified = [s for s in gb.standards.values() if "verify" in s.citation.text]
    assert len(unverified) >= len(gb.standards) - 2


def test_life_circle_tiers_list_every_standard_once_in_file_order(gb):
    tiers = gb.life_circle_tiers()
    assert list(tiers) == [5, 10, 15]
    listed = [sid for ids in tiers.values() for sid in ids]
    assert sorted(listed) == sorted(gb.standards)
    for tier, ids in tiers.items():
        in_file = [s for s, std in gb.standards.items() if std.life_circle == tier]
        assert ids == in_file, tier
    assert "kindergarten" in tiers[5] and "primary_school" in tiers[10]
    assert "middle_school" in tiers[15] and "health_centre" in tiers[15]
    # parks by tier, larger for the larger circles (表4.0.4)
    parks = [gb.standards[f"park_{t}min"] for t in (5, 10, 15)]
    assert [p.life_circle for p in parks] == [5, 10, 15]
    assert parks[0].min_area_m2 < parks[1].min_area_m2 < parks[2].min_area_m2


def test_choice_and_access_where_the_plan_asks(gb):
    assert {s for s, std in gb.standards.items() if std.choice} == {
        "kindergarten",
        "primary_school",
        "health_centre",
    }
    assert {s for s, std in gb.standards.items() if std.access} == {"kindergarten", "health_centre"}
    for sid in ("kindergarten", "health_centre"):
        rule = gb.standards[sid].access
        assert rule.capacity_basis.strip() and rule.capacity_unit in {"places", "beds"}
        if rule.norm_per_1000 is not None:
            assert rule.norm_basis.strip()
    k = gb.standards["kindergarten"]
    assert k.access.norm_per_1000 is not None
    # the stepped decay is the one walkcover.measures.access computes, ending at 300 m
    decay = Decay.from_mapping(k.access.decay.as_mapping(k.threshold_m))
    assert decay.threshold_m == k.threshold_m
    w = decay.weight(np.array([50.0, 150.0, 250.0, k.threshold_m, k.threshold_m + 1]))
    assert w.tolist() == [1.0, 0.68, 0.22, 0.22, 0.0]
    h = gb.standards["health_centre"]
    gauss = Decay.from_mapping(h.access.decay.as_mapping(h.threshold_m))
    sigma = h.access.decay.sigma_m
    assert gauss.weight(np.array([sigma]))[0] == pytest.approx(np.exp(-0.5))


def test_zhengzhou_loads_unchanged():
    z = load_standards("zhengzhou-2018")
    assert tuple(z.standards) == PLAN_STANDARD_IDS
    assert z.life_circle_tiers() == {}
    raw = _raw("zhengzhou-2018")["standards"]
    for sid, std in z.standards.items():
        assert std.life_circle is None, sid
        assert std.threshold_m == raw[sid]["threshold_m"], sid
    # kindergartens alone are measured for choice and places (the same rule as GB 50180's file)
    asks = {sid for sid, std in z.standards.items() if std.choice or std.access is not None}
    assert asks == {"kindergarten"}
    kg, gb = z.standards["kindergarten"].access, load_standards("gb50180-2018")
    assert kg is not None and kg.decay == gb.standards["kindergarten"].access.decay
    assert kg.norm_per_1000 == 30 and kg.default_capacity == 270
    assert load_standards() == z  # still the default


KG_ACCESS = {
    "decay": {"kind": "steps", "steps": [[100, 1.0], [200, 0.68], [300, 0.22]]},
    "default_capacity": 270,
    "capacity_unit": "places",
    "capacity_basis": "9 classes × 30 places",
    "norm_per_1000": 30,
    "norm_basis": "a provincial rule",
}


def _load_with(tmp_path, **access_changes):
    """The Zhengzhou file with an access rule on its kindergarten (300 m), changed as given."""
    data = _raw("zhengzhou-2018")
    rule = copy.deepcopy(KG_ACCESS)
    for key, value in access_changes.items():
        if value is None:
            rule.pop(key, None)
        else:
            rule[key] = value
    data["standards"]["kindergarten"]["access"] = rule
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_standards(path)


def test_a_good_access_rule_loads(tmp_path):
    rule = _load_with(tmp_path).standards["kindergarten"].access
    assert rule.decay.steps[-1] == (300.0, 0.22) and rule.default_capacity == 270


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # the catchment ends where the steps do: the last bound must be threshold_m
        (
            {"decay": {"kind": "steps", "steps": [[100, 1.0], [250, 0.5]]}},
            r"kindergarten\.access: found .*access\.decay\.steps: the last step's bound is 250 m but threshold_m "
            r"is 300 m.*make the last bound 300",
        ),
        (
            {"decay": {"kind": "gaussian"}},
            r"kindergarten\.access\.decay: .*decay\.sigma_m: found None; a gaussian decay needs "
            r"sigma_m from 1 to 10000",
        ),
        (
            {"decay": {"kind": "gaussian", "sigma_m": -10}},
            r"decay\.sigma_m: found -10(\.0)?; a gaussian decay needs sigma_m from 1 to 10000",
        ),
        (
            {"decay": {"kind": "gaussian", "sigma_m": 150, "steps": [[300, 1.0]]}},
            r"decay\.steps: .*a gaussian decay takes sigma_m, not steps",
        ),
        (
            {"decay": {"kind": "steps", "steps": [[200, 1.0], [100, 0.5], [300, 0.2]]}},
            r"decay\.steps: bounds \['200', '100', '300'\] must be positive metres in increasing",
        ),
        (
            {"decay": {"kind": "steps", "steps": [[100, 1.0], [300, -0.5]]}},
            r"decay\.steps: weights \['1', '-0.5'\] must be from 0 to 1, not all 0",
        ),
        # found by the hostile sweep: settings that validated but broke the figures
        (
            {"decay": {"kind": "gaussian", "sigma_m": 1e300}},
            r"decay\.sigma_m: found 1e\+300; a gaussian decay needs sigma_m from 1 to 10000",
        ),
        (
            {"decay": {"kind": "gaussian", "sigma_m": 1e-200}},
            r"decay\.sigma_m: found 1e-200; a gaussian decay needs sigma_m from 1",
        ),
        (
            {"decay": {"kind": "steps", "steps": [[150, 1e308], [300, 1e308]]}},
            r"decay\.steps: weights .* must be from 0 to 1",
        ),
        (
            {"decay": {"kind": "steps", "steps": [[150, 0], [300, 0]]}},
            r"decay\.steps: weights \['0', '0'\] must be from 0 to 1, not all 0",
        ),
        (
            {"decay": {"kind": "steps", "steps": [[150, 0.5], [300, 1]]}},
            r"decay\.steps: weights \['0.5', '1'\] rise with distance",
        ),
        ({"default_capacity": True}, r"access\.default_capacity: found True; .*valid number"),
        ({"norm_per_1000": float("inf")}, r"access\.norm_per_1000: found inf; .*finite"),
        ({"norm_per_1000": 1e308}, r"access\.norm_per_1000: found 1e\+308; .*100000"),
        (
            {"decay": {"kind": "exponential", "sigma_m": 100}},
            r"access\.decay\.kind: found 'exponential'",
        ),
        ({"norm_basis": None}, r"access: .*norm_basis: found '' with norm_per_1000 30; cite"),
        ({"norm_basis": "  "}, r"norm_basis: found '  ' with norm_per_1000 30"),
        ({"default_capacity": -5}, r"access\.default_capacity: found -5; .*greater than 0"),
        ({"default_capacity": 0}, r"access\.default_capacity: found 0; .*greater than 0"),
        ({"default_capacity": 1e9}, r"access\.default_capacity: found 1000000000(\.0)?; .*100000"),
        ({"capacity_basis": None}, r"access\.capacity_basis: missing"),
        ({"capacity_basis": " "}, r"capacity_basis: found ' '; write where default_capacity"),
        ({"capacity_unit": ""}, r"access\.capacity_unit: found ''"),
        ({"norm_per_1000": -3}, r"access\.norm_per_1000: found -3"),
        ({"colour": "red"}, r"access\.colour: found 'red'; Extra inputs are not permitted"),
    ],
)
def test_bad_access_rules_are_refused_naming_the_field(tmp_path, change, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        _load_with(tmp_path, **change)
    assert "standards.kindergarten" in str(err.value)


def test_a_threshold_in_minutes_meets_the_last_step_within_rounding(tmp_path):
    """7 min × 60 × 1.1 m/s is 462.00000000000006 m: steps ending at 462 are that threshold."""
    data = _raw("zhengzhou-2018")
    kg = data["standards"]["kindergarten"]
    kg.pop("threshold_m")
    kg.update(threshold_min=7, walk_speed_mps=1.1)
    kg["access"] = {**KG_ACCESS, "decay": {"kind": "steps", "steps": [[200, 1.0], [462, 0.5]]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    std = load_standards(path).standards["kindergarten"]
    assert std.threshold_m != 462 and std.threshold_m == pytest.approx(462)
    from walkcover.measures.access import Decay

    decay = Decay.from_mapping(std.access.decay.as_mapping(std.threshold_m))
    assert decay.weight(np.array([std.threshold_m, 300.0])).tolist() == [0.5, 0.5]


def test_bad_tier_and_choice_are_refused(tmp_path):
    data = _raw("zhengzhou-2018")
    data["standards"]["kindergarten"]["life_circle"] = 20
    data["standards"]["park"]["choice"] = "sometimes"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_standards(path)
    msg = str(err.value)
    assert "standards.kindergarten.life_circle: found 20; Input should be 5, 10 or 15" in msg
    assert "standards.park.choice: found 'sometimes'" in msg


def test_the_models_check_themselves_outside_a_file():
    """The lead's code builds rules in Python too: the same checks hold there."""
    with pytest.raises(ValueError, match="sigma_m"):
        DecayRule(kind="gaussian")
    with pytest.raises(ValueError, match="norm_basis"):
        AccessRule(**{**KG_ACCESS, "norm_basis": ""})
    std = load_standards("gb50180-2018").standards["kindergarten"]
    data = std.model_dump()
    data["access"]["decay"]["steps"] = [[100, 1.0], [400, 0.1]]
    with pytest.raises(ValueError, match="last step's bound is 400 m but threshold_m is 300 m"):
        Standard.model_validate(data)
    # the rule as a mapping round-trips through the engine's Decay
    assert DecayRule(kind="gaussian", sigma_m=150).as_mapping(300) == {
        "kind": "gaussian",
        "threshold_m": 300.0,
        "sigma_m": 150,
    }
