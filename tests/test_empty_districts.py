"""Districts with nothing to measure: no residents, no facilities, residents but no streets. Each
says so in the notes and the summary (no figure, never a made-up 0 %), and nothing crashes."""

from __future__ import annotations

import numpy as np
from shapely.geometry import box

import walkcover as wc
from conftest import box_way, write_city


def test_residents_without_streets(tmp_path):
    nodes: dict = {}
    ways = [
        box_way(200, 10, 0, 0, 20, 20, {"building": "apartments", "building:levels": "2"}, nodes),
        box_way(201, 20, 50, 0, 70, 20, {"building": "apartments", "building:levels": "2"}, nodes),
    ]
    nodes[99] = (30, 30, {"amenity": "toilets"})
    cfg, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-100, -100, 200, 200))
    a = wc.assess(cfg, standard="toilet", source=osm, cache=False)
    row = a.summary.iloc[0]
    assert row["demand_units"] == 2 and row["residents"] == 2 * 400 * 2 / 40
    # the toilet cannot be snapped either (no street): no facility can serve the district, so
    # there is no figure (NaN and its reason), never a made-up 0 %
    assert row["unsnapped_units"] == 2 and np.isnan(row["residents_covered_pct"])
    assert row["facilities_in_reach"] == 0 and "no facility" in row["no_data_reason"]
    assert set(a.demand["toilet_status"]) == {"unsnapped"}
    assert a.demand["toilet_dist_m"].isna().all()  # NaN with a status, never a sentinel
    texts = [n.text for n in a.notes]
    assert any("no walkable streets were found" in t for t in texts), texts
    assert any("lie farther than 200 m from any walkable street" in t for t in texts), texts


def test_no_residents_and_no_facilities(tmp_path):
    from hostile import hostile_city

    cfg, osm = hostile_city(tmp_path)
    a = wc.assess(cfg, district="d2", standard="toilet,park", source=osm, cache=False)
    s = a.summary.set_index("standard")
    assert (s["demand_units"] == 0).all() and (s["residents"] == 0).all()
    assert s["residents_covered_pct"].isna().all()  # no residents: no figure, not 0 %
    assert (s["facilities_in_reach"] == 0).all()
    texts = [str(n) for n in a.notes if n.district == "d2"]
    assert any("no residential buildings mapped" in t for t in texts)
    assert any("no toilet facilities found" in t for t in texts)
    # no homes: the note says there is nothing to cover, not that coverage is 0 %
    toilet = [t for t in texts if "no toilet facilities found" in t]
    assert all("no data" in t and "0%" not in t for t in toilet), toilet
    out = a.save(tmp_path / "out")  # maps, the city map and the GeoPackage of an empty district
    assert not out.failures and (tmp_path / "out" / "handmade" / "d2" / "map.html").exists()


def test_a_group_with_no_residents_reads_n_a_not_nan(tmp_path):
    """The terminal's group table says "—" for a group of districts with no homes, as the district
    table and every other output do (`walkcover.presentation.figures`); never a bare "nan"."""
    import yaml
    from typer.testing import CliRunner

    from hostile import hostile_city
    from walkcover.cli import app

    cfg, osm = hostile_city(tmp_path)
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    data["groups"] = {"empty group": ["d2"]}
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    res = CliRunner().invoke(
        app,
        ["run", "--city", str(cfg), "--district", "d2", "--standard", "toilet", "--source",
         str(osm), "--out", str(tmp_path / "out"), "--no-cache", "--no-maps"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Groups of districts" in res.output and "empty group" in res.output
    assert "nan" not in res.output.lower().replace("nanning", "")
    assert "—" in res.output
