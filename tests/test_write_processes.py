"""A large run's districts are written by the run and by one forked writer process (issue 27): the
files are the ones threads write, byte for byte; a failure in the child is reported as in the run;
a child that dies fails only the district it was writing. And the streets both writers draw come
from the network's coordinates (`Network.edge_coords`), never from its shapely objects."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import shapely

from walkcover._errors import RunIncompleteError
from walkcover.presentation import outputs


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "run.json"  # (its `written` time differs, see below)
    }


@pytest.fixture
def forked(monkeypatch):
    """Districts written by the run and a forked writer, whatever the run's size."""
    monkeypatch.setattr(outputs, "WRITE_PROCESS_EDGES", 0)
    monkeypatch.setattr(outputs, "WRITE_THREADS", 2)


def _who_writes(monkeypatch, tmp_path: Path, action=None) -> Path:
    """Record which process writes each district's map (a line ``pid district`` in a log), then
    do `action(district_id)` there."""
    import walkcover.presentation.maps as maps

    log = tmp_path / "writers.log"
    real = maps.district_map

    def recorded(result, district_id, **kw):
        with log.open("a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {district_id}\n")
        if action is not None:
            action(district_id)
        return real(result, district_id, **kw)

    monkeypatch.setattr(maps, "district_map", recorded)
    return log


def _a_previous_run(results, tmp_path: Path) -> tuple[Path, Path, dict[str, dict[str, str]]]:
    """A complete run in ``tmp_path/out``: the folder, the city's folder and each district's files
    with their digests."""
    out = tmp_path / "out"
    results.save(out, overwrite=True, maps=True)
    city = out / results.assessment.city.id
    return out, city, {d.name: digest(d) for d in city.iterdir() if d.is_dir()}


def _writers(log: Path) -> dict[str, int]:
    return {d: int(p) for p, d in (line.split() for line in log.read_text().splitlines())}


def test_a_forked_writer_writes_the_files_threads_write(sample_results, tmp_path, monkeypatch):
    res = sample_results
    res.save(tmp_path / "threads", overwrite=True, maps=True)
    monkeypatch.setattr(outputs, "WRITE_PROCESS_EDGES", 0)
    monkeypatch.setattr(outputs, "WRITE_THREADS", 2)
    log = _who_writes(monkeypatch, tmp_path)
    res.save(tmp_path / "forked", overwrite=True, maps=True)
    pids = set(_writers(log).values())
    assert os.getpid() in pids and len(pids) == 2  # the run wrote some, its child the others
    a, b = digest(tmp_path / "threads"), digest(tmp_path / "forked")
    assert len(a) > 10 and a == b


def test_a_failure_in_the_forked_writer_is_reported_and_keeps_the_previous_set(
    sample_results, tmp_path, forked, monkeypatch
):
    out, city, before = _a_previous_run(sample_results, tmp_path)
    run = os.getpid()

    def full_disk_in_the_child(district_id):
        if os.getpid() != run:
            raise OSError(28, "No space left on device")

    log = _who_writes(monkeypatch, tmp_path, full_disk_in_the_child)
    with pytest.raises(RunIncompleteError) as err:
        sample_results.save(out, overwrite=True, maps=True)
    by_child = {d for d, p in _writers(log).items() if p != run}
    assert by_child and len(by_child) < len(before)
    failed = {slug for slug, _, _ in err.value.files.failures}
    d = sample_results.assessment.districts
    slugs = dict(zip(d["district_id"], d["slug"]))
    assert failed == {slugs[d] for d in by_child}
    for slug, step, exc in err.value.files.failures:
        assert step == "map.html" and isinstance(exc, OSError) and exc.errno == 28
        assert digest(city / slug) == before[slug]  # its previous set, untouched
    assert "the disk is full" in str(err.value)


def test_a_writer_that_dies_fails_only_its_district(sample_results, tmp_path, forked, monkeypatch):
    out, city, before = _a_previous_run(sample_results, tmp_path)
    run = os.getpid()

    def killed_in_the_child(district_id):
        if os.getpid() != run:
            os._exit(9)  # as the kernel's out-of-memory killer would leave it: no word back

    log = _who_writes(monkeypatch, tmp_path, killed_in_the_child)
    with pytest.raises(RunIncompleteError) as err:
        sample_results.save(out, overwrite=True, maps=True)
    writers = _writers(log)
    dead = [d for d, p in writers.items() if p != run]
    assert len(dead) == 1  # the child took one district and died; the run wrote every other
    assert set(writers) == set(sample_results.assessment.districts["district_id"])
    ((slug, _, exc),) = err.value.files.failures
    assert "stopped before it finished" in str(exc) and "previous files are kept" in str(exc)
    assert digest(city / slug) == before[slug]
    others = [d for d in before if d != slug]
    assert all((city / d / "map.html").is_file() for d in others)
    assert not [p for p in city.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_failure_that_cannot_be_pickled_keeps_its_type_and_message():
    class OddError(Exception):
        def __init__(self, a, b):  # pickling calls OddError(msg): a missing argument
            super().__init__(f"{a}/{b}")

    sent = outputs._sendable(OddError("x", "y"))
    assert "OddError: x/y" in str(sent)
    err = OSError(28, "No space left on device")
    assert outputs._sendable(err) is err


def test_way_lines_join_only_segments_that_meet():
    """Hand-made: way 0 is three segments end to end (one line of four vertices); way 1 has a gap
    (two lines); way 2 is one edge of three vertices then one that turns back from its end."""
    from walkcover.engine.network import EdgeCoords
    from walkcover.presentation.layers import _way_lines

    lines = [
        [(0, 0), (1, 0)], [(1, 0), (2, 0)], [(2, 0), (2, 1)],  # way 0
        [(5, 0), (6, 0)], [(7, 0), (8, 0)],  # way 1: a gap between 6 and 7
        [(0, 5), (1, 5), (1, 6)], [(1, 6), (0, 6)],  # way 2
    ]  # fmt: skip
    geoms = np.array([shapely.LineString(c) for c in lines])
    _, xy, (start,) = shapely.to_ragged_array(geoms)
    coords = EdgeCoords(xy, start.astype(np.int64))
    assert shapely.equals_exact(coords.lines(np.arange(7)), geoms, 0).all()
    got = _way_lines(coords, np.arange(7), np.array([0, 0, 0, 1, 1, 2, 2]))
    want = shapely.from_wkt(
        [
            "MULTILINESTRING ((0 0, 1 0, 2 0, 2 1))",
            "MULTILINESTRING ((5 0, 6 0), (7 0, 8 0))",
            "MULTILINESTRING ((0 5, 1 5, 1 6, 0 6))",
        ]
    )
    assert shapely.equals_exact(got, want, 0).all()
    # a subset, out of the network's order within no way: each edge is its own way
    got = _way_lines(coords, np.array([4, 1]), np.array([0, 1]))
    assert [shapely.get_num_geometries(g) for g in got] == [1, 1]
    assert shapely.equals_exact(got[1], shapely.from_wkt("MULTILINESTRING ((1 0, 2 0))"), 0)


def test_streets_of_a_network_without_edges_or_with_multi_part_edges():
    """No edges: empty coordinates and an empty layer. An edge of two parts (a network built from
    a planner's multi-lines): the layer takes the geometries as they are, each part a line."""
    from types import SimpleNamespace

    import geopandas as gpd

    from conftest import CRS_M, X0, Y0, streets
    from walkcover.engine.network import build_network
    from walkcover.presentation.layers import streets_layer

    frame = streets([(1, 2, [(0, 0), (100, 0)]), (2, 3, [(100, 0), (200, 0)])])
    two = shapely.MultiLineString(
        [[(X0 + 100, Y0), (X0 + 150, Y0)], [(X0 + 150, Y0), (X0 + 200, Y0)]]
    )
    frame.loc[1, "geometry"] = two
    net = build_network(frame)
    assert not net.edge_coords.lines_only and net.edge_coords.start[-1] == 6
    a = SimpleNamespace(network=net, standards=[], city=None)
    (layer,) = streets_layer(a, shapely.box(X0 - 10, Y0 - 10, X0 + 210, Y0 + 10))
    assert shapely.equals(
        shapely.union_all(layer.geometry.to_numpy()), shapely.union_all(net.edges.geometry)
    )
    assert shapely.get_num_geometries(layer.geometry.to_numpy()).sum() == 3

    empty = build_network(gpd.GeoDataFrame({"u": [], "v": [], "osm_id": [], "highway": []},
                                           geometry=[], crs=CRS_M))  # fmt: skip
    assert empty.edge_coords.xy.shape == (0, 2) and list(empty.edge_coords.start) == [0]
    (layer,) = streets_layer(
        SimpleNamespace(network=empty, standards=[], city=None), shapely.box(0, 0, 1, 1)
    )
    assert len(layer) == 0


def test_without_memory_to_spare_the_districts_are_written_by_threads(
    sample_results, tmp_path, forked, monkeypatch
):
    assert outputs._room_to_fork()  # (this machine has memory to spare for the sample)
    monkeypatch.setattr(outputs, "FORK_MEMORY_SHARE", 1e9)  # as if every byte were taken
    assert not outputs._room_to_fork()
    log = _who_writes(monkeypatch, tmp_path)
    sample_results.save(tmp_path / "out", overwrite=True, maps=True)
    assert set(_writers(log).values()) == {os.getpid()}


def test_a_control_groups_limit_bounds_the_room_to_fork(tmp_path):
    """A container's limit, not the host's free memory, decides (cgroup v2, then v1)."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("3221225472\n")
    (v2 / "memory.current").write_text("3000000000\n")
    assert outputs._cgroup_room_kib(v2) == (3221225472 - 3000000000) // 1024
    (v2 / "memory.max").write_text("max\n")
    assert outputs._cgroup_room_kib(v2) is None
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # no limit
    (v1 / "memory.usage_in_bytes").write_text("4576940032\n")
    assert outputs._cgroup_room_kib(tmp_path / "v1") is None
    (v1 / "memory.limit_in_bytes").write_text("4000000000\n")  # over the limit already
    assert outputs._cgroup_room_kib(tmp_path / "v1") == 0
    assert outputs._cgroup_room_kib(tmp_path / "none") is None


def test_a_writer_stopped_by_sigterm_fails_only_its_district(
    sample_results, tmp_path, forked, monkeypatch
):
    """The console script turns SIGTERM into SystemExit, in the forked writer too: the district it
    was writing fails, naming why, and the run writes the rest (no district is left out)."""
    out = tmp_path / "out"
    run = os.getpid()

    def stopped_in_the_child(district_id):
        if os.getpid() != run:
            raise SystemExit(143)

    log = _who_writes(monkeypatch, tmp_path, stopped_in_the_child)
    with pytest.raises(RunIncompleteError) as err:
        sample_results.save(out, overwrite=True, maps=True)
    ((slug, _, exc),) = err.value.files.failures
    assert "stopped before it finished (stopped: SystemExit)" in str(exc)
    writers = _writers(log)
    assert set(writers) == set(sample_results.assessment.districts["district_id"])
    city = out / sample_results.assessment.city.id
    assert sorted(p.name for p in city.iterdir() if (p / "map.html").is_file()) == sorted(
        d for d in sample_results.assessment.districts["slug"] if d != slug
    )


def test_a_forked_writer_writes_proposed_sites_as_threads_do(sample_results, tmp_path, monkeypatch):
    """Sites `site` proposed reach the forked writer with the run (no file read again there):
    the same files, the homes' walks after the sites included."""
    from walkcover.api import earlier_proposals
    from walkcover.presentation.outputs import write_run

    r, out = sample_results, tmp_path / "out"
    r.save(out, maps=False)
    r.save_sites(r.site("toilet", k=2), out)
    proposals = earlier_proposals(r.assessment, out, overwrite=True)
    assert proposals
    write_run(r.assessment, out, overwrite=True, maps=True, proposals=proposals)
    by_threads = digest(out)
    monkeypatch.setattr(outputs, "WRITE_PROCESS_EDGES", 0)
    monkeypatch.setattr(outputs, "WRITE_THREADS", 2)
    log = _who_writes(monkeypatch, tmp_path)
    write_run(r.assessment, out, overwrite=True, maps=True, proposals=proposals)
    assert len(set(_writers(log).values())) == 2
    assert digest(out) == by_threads
    assert any("proposed" in name for name in by_threads)


def test_the_maps_street_lines_are_the_ways_of_the_edges(sample_results):
    """`way_lines` (the district map's streets): one multi-line per way, in the order the ways
    first appear, covering exactly that way's segments, with fewer vertices than the segments."""
    import pandas as pd

    from walkcover.presentation.layers import way_lines

    net = sample_results.assessment.network
    near = np.arange(0, len(net.edges), 3)  # every third edge: ways broken into pieces too
    got = way_lines(net, near)
    osm = pd.Series(net.edges["osm_id"].to_numpy()[near])
    assert len(got) == osm.nunique()
    segs = net.edges.geometry.to_numpy()[near]
    for i, way in enumerate(osm.unique()):
        assert shapely.equals(got[i], shapely.multilinestrings(segs[(osm == way).to_numpy()]))
    assert shapely.get_num_coordinates(got).sum() <= shapely.get_num_coordinates(segs).sum()
    whole = way_lines(net, np.arange(len(net.edges)))
    assert (
        shapely.get_num_coordinates(whole).sum()
        < shapely.get_num_coordinates(net.edges.geometry.to_numpy()).sum()
    )


def test_a_fork_that_fails_leaves_the_writing_to_threads(
    sample_results, tmp_path, forked, monkeypatch, caplog
):
    """No writer process to be had (the system refuses the fork): the run writes every district
    on its own threads, says so, and fails nothing."""

    def no_fork():
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", no_fork)
    log = _who_writes(monkeypatch, tmp_path)
    with caplog.at_level("WARNING", logger="walkcover.presentation.outputs"):
        files = sample_results.save(tmp_path / "out", overwrite=True, maps=True)
    assert not files.failures
    assert set(_writers(log).values()) == {os.getpid()}
    assert set(_writers(log)) == set(sample_results.assessment.districts["district_id"])
    assert "no writer process" in caplog.text and "Cannot allocate memory" in caplog.text
