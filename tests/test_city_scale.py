"""The S city (`scripts/make_city.py`: the real Helsinki extract repeated 2 × 2 over central
Zhengzhou, four districts reached, eight not) end to end: every district run alone gives what the
whole-city run gives, districts with no data included, and a district cut from the city's cache
entry is what reading the file for it gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

import walkcover as wc
from conftest import run_python
from walkcover.measures.gaps import district_gaps, district_service_areas

ROOT = Path(__file__).resolve().parents[1]
FIGURES = [
    "residents",
    "residents_covered_pct",
    "area_covered_pct",
    "area_covered_euclid_pct",
    "facilities_in_reach",
]


@pytest.fixture(scope="module")
def s_city(tmp_path_factory):
    """The S city's file, its cache and its whole-city results."""
    tmp = tmp_path_factory.mktemp("s-city")
    pbf = tmp / "city-S.osm.pbf"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_city.py"), "--size", "S", "--out", str(pbf)],
        check=True,
        capture_output=True,
    )
    cache = tmp / "cache"
    return pbf, cache, wc.assess("zhengzhou", source=pbf, cache_dir=cache)


def _same_district(alone, whole, did: str) -> None:
    a = alone.demand.set_index("osm_id").sort_index()
    b = whole.demand[whole.demand["district_id"] == did].set_index("osm_id").sort_index()
    assert list(a.index) == list(b.index)
    for std in alone.assessment.standards:
        np.testing.assert_allclose(
            a[f"{std.id}_dist_m"], b[f"{std.id}_dist_m"], rtol=0, atol=1e-6, err_msg=std.id
        )
        assert list(a[f"{std.id}_status"]) == list(b[f"{std.id}_status"]), std.id
    s1 = alone.summary[FIGURES].reset_index(drop=True)
    s2 = whole.summary[whole.summary["district_id"] == did][FIGURES].reset_index(drop=True)
    pd.testing.assert_frame_equal(s1, s2, check_exact=False, atol=1e-9)
    sa1 = district_service_areas(alone.assessment, did)
    sa2 = district_service_areas(whole.assessment, did)
    assert list(sa1["area_m2"]) == list(sa2["area_m2"])
    diff = shapely.symmetric_difference(sa1.geometry.to_numpy(), sa2.geometry.to_numpy())
    assert shapely.area(diff).max() < 1e-6
    g1, g2 = district_gaps(alone.assessment, did), district_gaps(whole.assessment, did)
    assert list(g1["residents_uncovered"]) == list(g2["residents_uncovered"])
    np.testing.assert_allclose(g1["area_m2"], g2["area_m2"], rtol=0, atol=1e-6)


def test_s_city_districts_alone_equal_the_whole_city(s_city):
    pbf, cache, whole = s_city
    ids = list(whole.districts["district_id"])
    assert len(ids) == 12
    homes = whole.demand.groupby("district_id").size()
    reached = [d for d in ids if homes.get(d, 0) > 0]
    assert 2 <= len(reached) < len(ids)  # districts with homes and districts with no data
    for did in ids:
        alone = wc.assess("zhengzhou", district=did, source=pbf, cache_dir=cache)
        _same_district(alone, whole, did)
        if did not in reached:
            assert len(alone.demand) == 0
            rows = alone.summary
            assert rows["residents"].fillna(0).eq(0).all()
            assert rows["residents_covered_pct"].isna().all()  # no data, never 0% covered
            assert sum(district_service_areas(alone.assessment, did)["area_m2"]) == 0


def test_a_district_cut_from_the_city_cache_equals_reading_the_file(s_city, tmp_path):
    pbf, cache, whole = s_city
    did = next(
        d for d in whole.districts["district_id"] if (whole.demand["district_id"] == d).sum()
    )
    cut = wc.assess("zhengzhou", district=did, source=pbf, cache_dir=cache)
    read = wc.assess("zhengzhou", district=did, source=pbf, cache=False)
    _same_district(cut, read, did)
    a, b = cut.assessment, read.assessment
    assert list(a.features["osm_id"]) == list(b.features["osm_id"]) and len(a.features) > 100
    assert len(a.network.edges) == len(b.network.edges) > 1000
    for col in ("u_idx", "v_idx", "length_m", "osm_id"):
        np.testing.assert_array_equal(a.network.edges[col], b.network.edges[col])
    # and the run's files are written for every district, the empty ones too
    files = whole.save(tmp_path / "out", maps=False)
    written = {p.parent.name for p in files.written if p.name == "coverage.gpkg"}
    assert len(written) == 12


def test_a_county_with_no_data_loads_no_graph_code(s_city, tmp_path):
    """A county the city never reaches, cut from the city's cache in a fresh interpreter, runs
    and writes its files without importing the engine's scipy (0.3 s of a run that should take
    about a second) or the rasters' affine and rasterio: it has no network to search and no land
    to rasterise."""
    pbf, cache, whole = s_city
    empty = "登封市"  # 60 km from the centre; the districts next to the city have its streets
    d = whole.districts.set_index("name").loc[empty, "district_id"]
    assert not whole.demand["district_id"].eq(d).any()
    child = (
        "import sys, walkcover as wc\n"
        "graph = ('scipy.sparse', 'scipy.spatial', 'scipy.ndimage', 'affine', 'rasterio')\n"
        "assert not [m for m in sys.modules if m.startswith(graph)], 'walkcover imports them'\n"
        f"res = wc.assess('zhengzhou', district={empty!r}, source={str(pbf)!r}, "
        f"cache_dir={str(cache)!r})\n"
        f"files = res.save({str(tmp_path / 'out')!r}, maps=False)\n"
        "assert len(res.demand) == 0 and len(files.written) > 3\n"
        "print(sorted({m for m in sys.modules if m.startswith(graph)}))"
    )
    assert run_python(child) == "[]"


def test_a_county_with_no_data_searches_for_one_transformation(s_city, tmp_path):
    """pyproj makes its transformers per thread, and each thread's first projection searches
    PROJ's database again (about 60 ms for EPSG:4326 to EPSG:4547, a tenth of a run that should
    take under a second). The measuring and writing threads project nothing themselves, and the
    study area and the maps go back to EPSG:4326 by the projection's inverse
    (`config.crs.to_lonlat`, made at once on any thread): a county with no data, maps and all,
    searches once, on the main thread."""
    pbf, cache, _ = s_city
    child = (
        "import threading, pyproj.transformer as T, walkcover as wc\n"
        "made = []\n"
        "make = T.TransformerFromCRS.__call__\n"
        "def spy(self):\n"
        "    made.append((threading.current_thread().name, self.crs_from.decode()[:9],\n"
        "                 self.crs_to.decode()[:9]))\n"
        "    return make(self)\n"
        "T.TransformerFromCRS.__call__ = spy\n"
        f"res = wc.assess('zhengzhou', district='登封市', source={str(pbf)!r}, "
        f"cache_dir={str(cache)!r})\n"
        f"res.save({str(tmp_path / 'out')!r}, maps=True)\n"
        "print(made)"
    )
    made = eval(run_python(child))  # (thread, from, to) per transformer made
    searched = [
        (t, a, b) for t, a, b in made if b.startswith("EPSG:")
    ]  # not a projection's inverse
    assert searched == [("MainThread", "EPSG:4326", "EPSG:4547")], made


def test_gb50180_runs_on_the_s_city(s_city):
    """GB 50180's file end to end on the S city, from its cache: every district × standard has a
    row, each district's life circles equal its homes' complete flags weighed by residents, and a
    tier no home completes names the facility missing."""
    pbf, cache, _ = s_city
    r = wc.assess("zhengzhou", source=pbf, cache_dir=cache, standards="gb50180-2018")
    a = r.assessment
    tiers = a.rules.life_circle_tiers()
    assert set(tiers) == {5, 10, 15}
    assert len(r.summary) == len(a.districts) * len(a.standards)
    table = r.life_circles()
    d = a.demand
    res = d["residents"].to_numpy(dtype=float)
    lived = table[table["residents"] > 0]
    assert len(lived) >= 3  # the districts the S city reaches, where a tier has all its facilities
    for row in lived.itertuples():
        ok = pd.array(d[f"life_circle_{row.tier_min}min_complete"], dtype="boolean")
        mine = (d["district_id"] == row.district_id).to_numpy() & ~np.asarray(ok.isna())
        done = ok.fillna(False).to_numpy(dtype=bool)
        assert row.complete_pct == pytest.approx(
            100 * res[mine & done].sum() / res[mine].sum(), abs=1e-9
        )
        if row.complete_pct == 0:
            assert row.most_missing in tiers[row.tier_min]
    # the synthetic city (Helsinki's streets) has parks and bus stops but no kindergarten: its
    # 5-minute circle has no figure anywhere (never 0%), and says which facility has no data
    five = table[table["tier_min"] == 5]
    assert five["complete_pct"].isna().all() and five["no_data"].str.contains("kindergarten").all()
    assert (lived.loc[lived["tier_min"] == 10, "complete_pct"] > 0).any()
