"""Interactive folium maps: one per district (a layer per standard) and one per city.

Every map is a single self-contained HTML file: Leaflet's JavaScript and CSS are inlined from the
copy shipped in ``walkcover/_assets`` (folium links CDNs by default, which are slow or blocked in
mainland China and absent offline), and the base tile layer is optional: without it the map still
shows every layer on a plain background.
"""

from __future__ import annotations

import html
import itertools
import re
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover import coverage as cov
from walkcover.gaps import district_service_areas, gap_polygons

ASSETS = Path(__file__).resolve().parent / "_assets"
_LEAFLET_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
_LEAFLET_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"
_JQUERY_JS = "https://code.jquery.com/jquery-3.7.1.min.js"
_LOCAL = {
    _LEAFLET_JS: ASSETS / "leaflet" / "leaflet.js",
    _LEAFLET_CSS: ASSETS / "leaflet" / "leaflet.css",
    _JQUERY_JS: ASSETS / "jquery" / "jquery.min.js",  # folium's popups call $()
}

#: Distance bands: within the standard, up to 1.5 × it, beyond, not measured.
BANDS = {
    "within": ("#1a9850", "within the standard · 达标"),
    "near": ("#fdae61", "up to 1.5 × the distance · 1.5倍以内"),
    "beyond": ("#d73027", "farther · 超出1.5倍"),
    "unknown": ("#9e9e9e", "not reached or not snapped · 未连通/未匹配"),
}
TILES = {"osm": ("OpenStreetMap", "© OpenStreetMap contributors")}


def distance_band(dist_m: np.ndarray, threshold_m: np.ndarray | float) -> np.ndarray:
    """The band of each distance: ``within``, ``near`` (≤ 1.5 ×), ``beyond`` or ``unknown`` (NaN)."""
    d = np.asarray(dist_m, dtype=float)
    t = np.broadcast_to(np.asarray(threshold_m, dtype=float), d.shape)
    out = np.full(d.shape, "beyond", dtype=object)
    out[d <= 1.5 * t] = "near"
    out[d <= t] = "within"
    out[np.isnan(d)] = "unknown"
    return out


class WalkMap(folium.Map):
    """A folium map that also shows offline in Jupyter: its notebook view inlines Leaflet too."""

    def _repr_html_(self, **kwargs) -> str:
        page = html.escape(render_html(self), quote=True)
        return (
            f'<iframe srcdoc="{page}" style="width:100%;height:600px;border:none" '
            'sandbox="allow-scripts allow-popups"></iframe>'
        )


def _base_map(bounds_4326: np.ndarray, tiles: str | None) -> folium.Map:
    x0, y0, x1, y1 = bounds_4326
    m = WalkMap(
        location=[(y0 + y1) / 2, (x0 + x1) / 2], tiles=None, control_scale=True, prefer_canvas=True
    )
    m.default_js = [("leaflet", _LEAFLET_JS), ("jquery", _JQUERY_JS)]
    m.default_css = [("leaflet_css", _LEAFLET_CSS)]
    if tiles is not None:
        if tiles not in TILES:
            raise ValueError(f"tiles {tiles!r}: choose one of {sorted(TILES)} or none")
        name, attribution = TILES[tiles]
        folium.TileLayer(name, attr=attribution, name=f"{name} (online)", control=True).add_to(m)
    m.fit_bounds([[y0, x0], [y1, x1]])
    return m


def _geojson(gdf: gpd.GeoDataFrame, *, simplify_m: float = 0.5) -> dict:
    g = gdf.copy()
    g["geometry"] = g.geometry.simplify(simplify_m)
    g = g.to_crs(4326)
    g["geometry"] = shapely.transform(g.geometry.to_numpy(), lambda xy: np.round(xy, 6))  # ~0.1 m
    for c in g.columns:
        if c != "geometry" and g[c].dtype.kind == "f":
            g[c] = g[c].round(1)
    return g.__geo_interface__


def _facility_popup(row: pd.Series, counts: dict[str, int]) -> str:
    raw = row.get("name")
    name = html.escape(
        "(no name · 无名称)" if raw is None or pd.isna(raw) or not str(raw) else str(raw)
    )
    osm = html.escape(str(row["osm_id"]))
    kind = html.escape(str(row["matched_by"]))
    link = f"https://www.openstreetmap.org/{osm}"
    bands = "".join(
        f"<tr><td style='color:{BANDS[b][0]}'>■</td><td>{html.escape(BANDS[b][1])}</td><td>{counts.get(b, 0)}</td></tr>"
        for b in ("within", "near", "beyond")
    )
    return (
        f"<b>{name}</b><br>{kind}<br><a href='{link}' target='_blank'>{osm}</a>"
        f"<br>homes for which it is the nearest · 以其为最近设施的住宅:<table>{bands}</table>"
    )


def _legend(result, district_label: str, with_sites: bool) -> str:
    rows = "".join(
        f"<div><span style='background:{c};display:inline-block;width:12px;height:12px;margin-right:4px'></span>"
        f"{html.escape(label)}</div>"
        for c, label in BANDS.values()
    )
    stds = "".join(
        f"<div><b>{html.escape(s.name_zh)} {html.escape(s.name)}</b>: {s.threshold_m:g} m"
        + (
            f" ({', '.join(f'{k} {v:g} m' for k, v in s.context_thresholds_m.items())})"
            if s.context_thresholds_m
            else ""
        )
        + f" — {html.escape(s.citation.section)} {html.escape(s.citation.text)}</div>"
        for s in result.standards
    )
    extra = (
        "<div><span style='color:#1f78b4'>●</span> facility · 设施 &nbsp;"
        "<span style='background:#1f78b4;opacity:.25;display:inline-block;width:12px;height:12px'></span> within walking distance · 步行可达 &nbsp;"
        "<span style='border:2px dashed #b2182b;display:inline-block;width:10px;height:10px'></span> gap · 缺口"
        + (
            " &nbsp;<span style='color:#6a3d9a'>●</span> proposed site · 建议选址"
            if with_sites
            else ""
        )
        + "</div>"
    )
    sample = (
        " · SAMPLE district, not an administrative unit · 样例区"
        if result.districts["is_sample"].any()
        else ""
    )
    return (
        "<div id='walkcover-legend' style='position:fixed;bottom:12px;left:12px;z-index:9999;background:white;"
        "padding:8px 10px;border:1px solid #999;border-radius:4px;font:12px/1.4 sans-serif;max-width:460px;"
        "max-height:45%;overflow:auto'>"
        f"<div style='font-weight:bold;margin-bottom:4px'>{html.escape(district_label)}{sample}</div>"
        f"{rows}{extra}<details open style='margin-top:4px'><summary>standards and plan citations · 标准与依据</summary>{stds}</details>"
        "<div style='color:#555;margin-top:4px'>Walking distance over OpenStreetMap streets · 沿街道步行距离；"
        f"{html.escape(result.rules.document)} {html.escape(result.rules.title)}</div></div>"
    )


def district_map(
    result,
    district_id: str,
    *,
    proposed: gpd.GeoDataFrame | None = None,
    tiles: str | None = None,
    max_footprints: int = 3_000,
    max_units: int = 15_000,
    service_cell_m: float = 10.0,
) -> folium.Map:
    """The interactive map of one district: a toggleable layer per standard.

    Each standard's layer shows the homes coloured by distance band, the gaps, the land within
    walking distance, the facilities (popup: name, kind, ``osm_id``, how many homes have it as their
    nearest, by band) and, where given, the proposed sites. Homes are drawn as footprints up to
    `max_footprints`, as dots up to `max_units`, and beyond that as H3 hexagons (resolution 9, about
    350 m across) coloured by the band most of their residents fall in, so the page stays light:
    each standard's layer repeats them (measured: a 144 km² district with 29,000 homes gives a
    14 MB page; docs/benchmarks.md).
    """
    d_row = result.districts.set_index("district_id").loc[district_id]
    dgeom = result.districts.to_crs(result.crs).set_index("district_id").geometry[district_id]
    d4326 = result.districts.set_index("district_id").geometry[district_id]
    m = _base_map(np.asarray(d4326.bounds), tiles)
    label = f"{d_row['name']} / {d_row['name_en']}"
    demand = result.demand[(result.demand["district_id"] == district_id).to_numpy()].reset_index(
        drop=True
    )
    snap_m = result.city.config.network.max_snap_m
    dsnaps = cov.snap(result.network, demand.geometry, max_snap_m=snap_m)
    areas = district_service_areas(result, district_id, cell_m=service_cell_m).set_index("standard")
    for i, std in enumerate(result.standards):
        sid = std.id
        group = folium.FeatureGroup(
            name=f"{std.name_zh} {std.name} ({std.threshold_m:g} m)", show=(i == 0)
        )
        p = result.passes[sid]
        sa = areas.geometry[sid]
        if not shapely.is_empty(sa):
            folium.GeoJson(
                _geojson(
                    gpd.GeoDataFrame(geometry=[sa], crs=result.crs), simplify_m=service_cell_m
                ),
                name=f"{sid} service area",
                style_function=lambda _f: {
                    "fillColor": "#1f78b4",
                    "fillOpacity": 0.18,
                    "weight": 0,
                },
                tooltip=f"within walking distance · 步行{std.threshold_m:g}米可达",
            ).add_to(group)
        thr = result.thresholds(std, dsnaps)
        band = distance_band(demand[f"{sid}_dist_m"].to_numpy(), thr)
        units = gpd.GeoDataFrame(
            {"osm_id": demand["osm_id"], "residents": demand["residents"].round(0),
             "dist_m": demand[f"{sid}_dist_m"].round(0), "band": band, "status": demand[f"{sid}_status"]},
            geometry=demand.geometry, crs=result.crs,
        )  # fmt: skip
        if len(units) > max_units:
            units = _hexes(units, resolution=9)
        elif len(units) > max_footprints:
            units = units.assign(geometry=units.geometry.representative_point())
        if len(units):
            dots = bool((units.geom_type == "Point").all())
            folium.GeoJson(
                _geojson(units),
                marker=folium.CircleMarker(radius=3, weight=0.5, fill=True) if dots else None,
                style_function=lambda f: {
                    "fillColor": BANDS[f["properties"]["band"]][0],
                    "color": BANDS[f["properties"]["band"]][0],
                    "weight": 0.5,
                    "fillOpacity": 0.75,
                },
                tooltip=folium.GeoJsonTooltip(
                    fields=["osm_id", "residents", "dist_m", "status"],
                    aliases=["OSM", "residents 居民", "walk m 步行米", "status 状态"],
                ),
            ).add_to(group)
        gaps = gap_polygons(result, sid, district_id).head(200)
        if len(gaps):
            folium.GeoJson(
                _geojson(
                    gaps[
                        ["rank", "residents_uncovered", "area_m2", "dist_m_at_centre", "geometry"]
                    ],
                    simplify_m=result.rules.land.cell_m,
                ),
                style_function=lambda _f: {
                    "color": "#b2182b",
                    "weight": 2,
                    "dashArray": "5,4",
                    "fillOpacity": 0.05,
                },
                tooltip=folium.GeoJsonTooltip(
                    fields=["rank", "residents_uncovered", "area_m2", "dist_m_at_centre"],
                    aliases=[
                        "gap rank 缺口排名",
                        "residents 未覆盖居民",
                        "area m² 面积",
                        "walk m at centre 中心步行米",
                    ],
                ),
            ).add_to(group)
        _add_facilities(group, result, sid, p, demand, dsnaps, thr, dgeom)
        if proposed is not None and len(proposed):
            mine = proposed[proposed["standard"] == sid]
            for _, s in mine.to_crs(4326).iterrows():
                folium.CircleMarker(
                    [s.geometry.y, s.geometry.x], radius=9, color="#3f007d", weight=3, fill=True,
                    fill_color="#6a3d9a", fill_opacity=0.9,
                    tooltip=f"proposed site #{int(s['rank'])} · 建议选址: +{s['residents_newly_covered']:.0f} residents, "
                    f"coverage {s['cumulative_coverage_pct']:.1f}%",
                ).add_to(group)  # fmt: skip
        group.add_to(m)
    folium.GeoJson(
        _geojson(
            gpd.GeoDataFrame({"name": [label]}, geometry=[dgeom], crs=result.crs), simplify_m=1.0
        ),
        name="District boundary · 区界",
        style_function=lambda _f: {"color": "#000", "weight": 2.5, "fill": False},
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    with_sites = proposed is not None and len(proposed) > 0
    m.get_root().html.add_child(folium.Element(_legend(result, label, with_sites)))
    return m


def _add_facilities(group, result, sid, p, demand, dsnaps, thr, dgeom) -> None:
    counted = p.counted
    if not len(counted):
        return
    rows = cov.nearest_sources(result.network, dsnaps, p.snaps, limit_m=p.limit_m)
    fac_of_unit = np.where(
        rows >= 0, p.access.index.to_numpy()[p.snaps.item[np.maximum(rows, 0)]], -1
    )
    band = distance_band(demand[f"{sid}_dist_m"].to_numpy(), thr)
    near = counted.geometry.distance(dgeom).to_numpy() <= p.limit_m
    for pos in np.flatnonzero(near):
        row = counted.iloc[pos]
        mine = band[fac_of_unit == pos]
        counts = {b: int((mine == b).sum()) for b in ("within", "near", "beyond")}
        popup = folium.Popup(_facility_popup(row, counts), max_width=320)
        geom = gpd.GeoSeries([row.geometry], crs=result.crs).to_crs(4326).iloc[0]
        if geom.geom_type == "Point":
            folium.CircleMarker([geom.y, geom.x], radius=6, color="#08306b", weight=1.5, fill=True,
                                fill_color="#1f78b4", fill_opacity=0.95, popup=popup).add_to(group)  # fmt: skip
        else:
            folium.GeoJson(
                _geojson(gpd.GeoDataFrame(geometry=[row.geometry], crs=result.crs)),
                style_function=lambda _f: {
                    "color": "#08306b",
                    "weight": 1.5,
                    "fillColor": "#1f78b4",
                    "fillOpacity": 0.35,
                },
                popup=popup,
            ).add_to(group)


def _hexes(units: gpd.GeoDataFrame, *, resolution: int) -> gpd.GeoDataFrame:
    """Aggregate units to H3 cells: residents summed, the band of the residents' majority."""
    import h3

    pts = units.geometry.representative_point().to_crs(4326)
    cells = [h3.latlng_to_cell(y, x, resolution) for x, y in zip(pts.x, pts.y)]
    frame = pd.DataFrame({"cell": cells, "band": units["band"], "residents": units["residents"]})
    agg = frame.groupby(["cell", "band"])["residents"].sum().reset_index()
    top = agg.sort_values("residents", ascending=False).drop_duplicates("cell")
    tot = frame.groupby("cell")["residents"].sum()
    polys = [
        shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in top["cell"]
    ]
    out = gpd.GeoDataFrame(
        {"osm_id": top["cell"].to_numpy(), "residents": tot.reindex(top["cell"]).round(0).to_numpy(),
         "dist_m": np.nan, "band": top["band"].to_numpy(), "status": "H3 hexagon"},
        geometry=polys, crs=4326,
    )  # fmt: skip
    return out.to_crs(units.crs)


def _ramp(pct: float) -> str:
    """Red (0%) → yellow (50%) → green (100%)."""
    if pct != pct:
        return "#9e9e9e"
    stops = [(0, (215, 48, 39)), (50, (254, 224, 139)), (100, (26, 152, 80))]
    for (p0, c0), (p1, c1) in itertools.pairwise(stops):
        if pct <= p1:
            t = (pct - p0) / (p1 - p0)
            r, g, b = (round(a + (b - a) * t) for a, b in zip(c0, c1))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#1a9850"


def city_map(result, *, tiles: str | None = None, h3_resolution: int | None = None) -> folium.Map:
    """The city map: districts coloured by residents covered, with a standard picker, and the
    residents' coverage aggregated to H3 hexagons so the page stays fast at city scale."""
    import h3

    m = _base_map(np.asarray(result.districts.total_bounds), tiles)
    d = result.districts
    area_km2 = float(d.to_crs(result.crs).area.sum()) / 1e6
    res = h3_resolution or (9 if area_km2 < 50 else 8 if area_km2 < 2000 else 7)
    pts = result.demand.geometry.representative_point().to_crs(4326)
    cells = np.array([h3.latlng_to_cell(y, x, res) for x, y in zip(pts.x, pts.y)])
    for i, std in enumerate(result.standards):
        sid = std.id
        group = folium.FeatureGroup(
            name=f"{std.name_zh} {std.name} ({std.threshold_m:g} m)", overlay=False, show=(i == 0)
        )
        rows = result.summary[result.summary["standard"] == sid].set_index("district_id")
        polys = d.assign(pct=rows["residents_covered_pct"].reindex(d["district_id"]).to_numpy())
        hx = pd.DataFrame({"cell": cells, "res": result.demand["residents"].to_numpy(),
                           "cov": result.demand["residents"].to_numpy() * result.demand[f"{sid}_covered"].to_numpy()})  # fmt: skip
        agg = hx.groupby("cell")[["res", "cov"]].sum()
        agg = agg[agg["res"] > 0]
        hexes = gpd.GeoDataFrame(
            {"cell": agg.index, "residents": agg["res"].round(0).to_numpy(),
             "pct": (100 * agg["cov"] / agg["res"]).round(1).to_numpy()},
            geometry=[shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in agg.index],
            crs=4326,
        )  # fmt: skip
        if len(hexes):
            folium.GeoJson(
                hexes.__geo_interface__,
                style_function=lambda f: {
                    "fillColor": _ramp(f["properties"]["pct"]),
                    "weight": 0,
                    "fillOpacity": 0.7,
                },
                tooltip=folium.GeoJsonTooltip(
                    fields=["residents", "pct"], aliases=["residents 居民", "covered % 覆盖率"]
                ),
            ).add_to(group)
        polys = polys.assign(
            label=polys["name"] + " / " + polys["name_en"], pct=polys["pct"].round(1)
        )
        folium.GeoJson(
            polys[["label", "pct", "geometry"]].__geo_interface__,
            style_function=lambda f: {
                "color": "#222",
                "weight": 2,
                "fillColor": _ramp(f["properties"]["pct"]),
                "fillOpacity": 0.25,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["label", "pct"], aliases=["district 区", "residents covered % 居民覆盖率"]
            ),
        ).add_to(group)
        group.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    ramp = "".join(
        f"<span style='background:{_ramp(v)};display:inline-block;width:22px;height:12px'></span>"
        for v in range(0, 101, 10)
    )
    legend = (
        "<div id='walkcover-legend' style='position:fixed;bottom:12px;left:12px;z-index:9999;background:white;"
        "padding:8px 10px;border:1px solid #999;border-radius:4px;font:12px/1.4 sans-serif'>"
        f"<b>{html.escape(result.city.config.name)} / {html.escape(result.city.config.name_en)}</b>: residents within walking "
        f"distance · 步行范围内居民比例 (pick a standard top right · 右上角选择标准)<br>{ramp}<br>"
        f"0% <span style='float:right'>100%</span><br>hexagons: H3 resolution {res}</div>"
    )
    m.get_root().html.add_child(folium.Element(legend))
    return m


def render_html(m: folium.Map) -> str:
    """The map as one self-contained HTML page: Leaflet inlined, no other outside script or style."""
    page = m.get_root().render()

    def script(match: re.Match) -> str:
        url = match.group(1)
        if url not in _LOCAL:
            raise RuntimeError(
                f"map needs an outside script {url!r}; walkcover maps must work offline"
            )
        return "<script>" + _LOCAL[url].read_text(encoding="utf-8") + "</script>"

    def style(match: re.Match) -> str:
        url = match.group(1)
        if url not in _LOCAL:
            raise RuntimeError(
                f"map needs an outside stylesheet {url!r}; walkcover maps must work offline"
            )
        return "<style>" + _LOCAL[url].read_text(encoding="utf-8") + "</style>"

    page = re.sub(r'<script src="([^"]+)"></script>', script, page)
    page = re.sub(r'<link rel="stylesheet" href="([^"]+)"\s*/>', style, page)
    return page


def save_map(m: folium.Map, path: Path) -> Path:
    """Write the self-contained page atomically."""
    from walkcover.outputs import write_atomic

    page = render_html(m)
    return write_atomic(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"))
