"""Interactive folium maps: one per district (a layer per standard) and one per city.

Every map is a single self-contained HTML file: Leaflet's JavaScript and CSS are inlined from the
copy shipped in ``walkcover/_assets`` (folium links CDNs by default, which are slow or blocked in
mainland China and absent offline), and the base tile layer is optional: without it the map still
shows every layer on a plain background.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.elements import MacroElement
from folium.template import Template

from walkcover._atomic import write_atomic
from walkcover._errors import WalkcoverError
from walkcover._escape import html_text, js_value
from walkcover.assessment import DEMAND_NOTE, OFFICIAL_LAND_NOTE, Assessment, can_serve
from walkcover.config.crs import frame_to_lonlat
from walkcover.engine import coverage as cov
from walkcover.measures.bands import distance_band
from walkcover.measures.gaps import SERVICE_AREA_CELL_M
from walkcover.presentation.figures import round_figures
from walkcover.presentation.palette import (
    BANDS,
    FACILITY_COLOUR,
    GAP_COLOUR,
    SERVICE_AREA_COLOUR,
    SITE_COLOUR,
    SITE_OUTLINE,
    ramp,
)

ASSETS = Path(__file__).resolve().parents[1] / "_assets"
_LEAFLET_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
_LEAFLET_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"
_JQUERY_JS = "https://code.jquery.com/jquery-3.7.1.min.js"
_LOCAL = {
    _LEAFLET_JS: ASSETS / "leaflet" / "leaflet.js",
    _LEAFLET_CSS: ASSETS / "leaflet" / "leaflet.css",
    _JQUERY_JS: ASSETS / "jquery" / "jquery.min.js",  # folium's popups call $()
}


class MapOptionError(WalkcoverError, ValueError):
    """A map option (such as ``tiles``) that walkcover does not know."""


TILES = {"osm": ("OpenStreetMap", "© OpenStreetMap contributors")}
#: Where each online base map loads its tiles from (allowed by the maps' Content-Security-Policy).
TILE_ORIGINS = {"osm": "https://tile.openstreetmap.org"}


# Text from OSM, planners' files or shared configs never becomes HTML or JavaScript source on a map:
# it travels as GeoJSON properties or JSON (`js_value`) and `walkcoverTable` puts it on the page with
# textContent. folium's own Popup and Tooltip place their text inside a JavaScript template literal
# (where `${...}` runs and `\u` breaks the script) and GeoJsonTooltip/GeoJsonPopup set property
# values as innerHTML, so walkcover does not use them for data.
_TABLE_JS = """
function walkcoverTable(p, spec) {
  var div = document.createElement('div');
  div.className = 'walkcover-info';
  function text(v) {
    if (v === null || v === undefined || (typeof v === 'number' && isNaN(v))) return spec.missing || '—';
    return String(v);
  }
  if (spec.title) {
    var b = document.createElement('b');
    b.textContent = text(p[spec.title]);
    div.appendChild(b);
  }
  (spec.lines || []).forEach(function (f) {
    var line = document.createElement('div');
    line.textContent = text(p[f]);
    div.appendChild(line);
  });
  if (spec.osm_link && /^(node|way|relation)\\/[0-9]+$/.test(String(p.osm_id))) {
    var a = document.createElement('a');
    a.href = 'https://www.openstreetmap.org/' + p.osm_id;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.textContent = p.osm_id;
    div.appendChild(a);
  } else if (spec.osm_link) {
    var id = document.createElement('div');
    id.textContent = text(p.osm_id);
    div.appendChild(id);
  }
  if (spec.caption) {
    var c = document.createElement('div');
    c.textContent = spec.caption;
    div.appendChild(c);
  }
  var t = document.createElement('table');
  (spec.fields || []).forEach(function (f, i) {
    var tr = t.insertRow();
    if (spec.swatches) {
      var s = tr.insertCell();
      s.textContent = '\u25a0';
      s.style.color = spec.swatches[i];
    }
    if (spec.aliases) {
      var th = document.createElement('th');
      th.textContent = spec.aliases[i];
      th.style.textAlign = 'left';
      tr.appendChild(th);
    }
    tr.insertCell().textContent = text(p[f]);
  });
  if (t.rows.length) div.appendChild(t);
  return div;
}
"""


_TABLE_CSS = (
    "<style>.walkcover-info{font:12px/1.45 sans-serif}.walkcover-info table{border-collapse:collapse;"
    "margin-top:2px}.walkcover-info th{font-weight:normal;color:#444;padding:0 8px 0 0}"
    ".walkcover-info td{padding:0 4px 0 0;text-align:right}</style>"
)


class PropertyTable(MacroElement):
    """A tooltip or popup for every feature of the parent `folium.GeoJson`, built from its
    properties with ``textContent`` (see `_TABLE_JS`), so no property can run as script.

    Parameters
    ----------
    fields, aliases
        Properties shown as table rows, and their labels.
    kind
        ``"tooltip"`` or ``"popup"``.
    title, lines
        A property shown in bold first, and properties shown as lines under it.
    caption
        A fixed line above the table.
    swatches
        A colour per row, drawn as a square before its label.
    osm_link
        Add a link to the feature's ``osm_id`` on openstreetmap.org (when it is an OSM id).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.{{ this.method }}(function (layer) {
            return walkcoverTable(layer.feature.properties, {{ this.spec }});
        }, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        fields: list[str] = (),  # type: ignore[assignment]
        aliases: list[str] | None = None,
        *,
        kind: str = "tooltip",
        title: str | None = None,
        lines: list[str] = (),  # type: ignore[assignment]
        caption: str | None = None,
        swatches: list[str] | None = None,
        osm_link: bool = False,
        missing: str = "—",
    ) -> None:
        super().__init__()
        self._name = "PropertyTable"
        self.method = {"tooltip": "bindTooltip", "popup": "bindPopup"}[kind]
        self.spec = js_value(
            {
                "fields": list(fields),
                "aliases": list(aliases) if aliases else None,
                "title": title,
                "lines": list(lines),
                "caption": caption,
                "swatches": swatches,
                "osm_link": osm_link,
                "missing": missing,
            }
        )
        self.options = js_value({"sticky": True} if kind == "tooltip" else {"maxWidth": 340})

    def render(self, **kwargs: Any) -> Any:
        figure = _figure(self)
        if "walkcover_table_js" not in figure.script._children:
            figure.script.add_child(folium.Element(_TABLE_JS), name="walkcover_table_js", index=0)
            figure.header.add_child(folium.Element(_TABLE_CSS), name="walkcover_table_css")
        super().render(**kwargs)


def _figure(element: folium.Element) -> folium.Figure:
    """The page (`folium.Figure`) an element is drawn on."""
    root = element.get_root()
    if not isinstance(root, folium.Figure):
        raise TypeError(f"{type(element).__name__} is not on a page; add it to a folium.Map first")
    return root


def _layer_name(text: str) -> str:
    """A layer control label: Leaflet sets it as HTML, so it is escaped here."""
    return html_text(text)


class MetricScale(MacroElement):
    """A metric scale bar (no feet or miles) at the bottom right, clear of the legend."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, metric: true, position: "bottomright"})
            .addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


class WalkMap(folium.Map):
    """A folium map that also shows offline in Jupyter: its notebook view inlines Leaflet too."""

    def _repr_html_(self, **kwargs) -> str:
        page = html_text(render_html(self))
        return (
            f'<iframe srcdoc="{page}" style="width:100%;height:600px;border:none" '
            'sandbox="allow-scripts allow-popups"></iframe>'
        )


def check_tiles(tiles: str) -> str:
    """Refuse an unknown base map name (before any work is done).

    Raises
    ------
    MapOptionError
        Naming the value and the choices.
    """
    if tiles not in TILES:
        raise MapOptionError(
            f"--tiles {tiles!r} is not a base map walkcover knows; choose {', '.join(sorted(TILES))}, "
            "or leave --tiles out for a map without one (it works offline)"
        )
    return tiles


#: The layer control made compact, so the map keeps its room on a laptop screen: smaller type,
#: tighter rows, a scroll bar past 60% of the map's height; on a small map (a notebook cell) it
#: folds into Leaflet's layers button and opens under the mouse.
_COMPACT_CSS = """<style>
.leaflet-control-layers-expanded{padding:3px 8px 3px 6px;font:12px/1.25 sans-serif;
  max-height:60vh;overflow-y:auto}
.leaflet-control-layers-expanded label{margin:0}
.leaflet-control-layers-separator{margin:3px -8px 3px -6px}
@media (max-width:1000px),(max-height:560px){
  .leaflet-control-layers-expanded{padding:0!important}
  .leaflet-control-layers-expanded .leaflet-control-layers-toggle{display:block!important}
  .leaflet-control-layers-expanded .leaflet-control-layers-list{display:none!important}
  .leaflet-control-layers-expanded:hover{padding:3px 8px 3px 6px!important}
  .leaflet-control-layers-expanded:hover .leaflet-control-layers-toggle{display:none!important}
  .leaflet-control-layers-expanded:hover .leaflet-control-layers-list{display:block!important}
  #walkcover-legend{max-width:300px!important}
}
</style>"""


#: Screen pixels left round the district (or city) when a map opens.
FIT_PADDING_PX = (24, 24)


def _base_map(bounds_4326: np.ndarray, tiles: str | None) -> folium.Map:
    x0, y0, x1, y1 = bounds_4326
    m = WalkMap(
        location=[(y0 + y1) / 2, (x0 + x1) / 2],
        tiles=None,
        control_scale=False,
        prefer_canvas=True,
        # quarter zoom steps: with whole steps, the margin below often cost a whole level and
        # the district filled half the window
        zoom_snap=0.25,
    )
    MetricScale().add_to(m)
    _figure(m).header.add_child(folium.Element(_COMPACT_CSS))
    m.default_js = [("leaflet", _LEAFLET_JS), ("jquery", _JQUERY_JS)]
    m.default_css = [("leaflet_css", _LEAFLET_CSS)]
    if tiles is not None:
        check_tiles(tiles)
        name, attribution = TILES[tiles]
        # an overlay (a checkbox): the standards are the base layers, one shown at a time
        folium.TileLayer(
            name, attr=attribution, name=f"{name} (online)", control=True, overlay=True
        ).add_to(m)
    # a margin of screen pixels round the bounds: a district's outline is seen whole, not cut
    # by the window's edges
    m.fit_bounds([[y0, x0], [y1, x1]], padding=FIT_PADDING_PX)
    return m


def _geojson(gdf: gpd.GeoDataFrame, *, simplify_m: float = 0.5) -> dict:
    g = gdf.copy()
    g["geometry"] = g.geometry.simplify(simplify_m)
    g = frame_to_lonlat(g)
    g["geometry"] = shapely.transform(g.geometry.to_numpy(), lambda xy: np.round(xy, 6))  # ~0.1 m
    for c in g.columns:
        if c != "geometry" and g[c].dtype.kind == "f":
            g[c] = g[c].round(1)
    return g.__geo_interface__


def _completeness_line(result: Assessment, district_id: str) -> str:
    """How complete the district's mapped buildings look, in words for the legend."""
    comp = result.completeness
    if comp is None or district_id not in set(comp["district_id"]):
        return ""
    pct = comp.set_index("district_id").loc[district_id, "building_completeness_pct"]
    if pct != pct:
        return "Buildings mapped: completeness unknown (no residential land or known total)"
    return f"Buildings mapped: ≈ {pct:.0f}% complete · 建筑物完整度约 {pct:.0f}%"


def _legend(
    result: Assessment,
    district_label: str,
    with_sites: bool,
    warnings: Sequence[str] = (),
    facts: Sequence[str] = (),
) -> str:
    warn = "".join(
        f"<div style='color:#b35806;margin:2px 0'>⚠ {html_text(w)}</div>" for w in warnings
    ) + "".join(f"<div style='color:#444;margin:2px 0'>{html_text(f)}</div>" for f in facts if f)
    rows = "".join(
        f"<div><span style='background:{c};display:inline-block;width:12px;height:12px;margin-right:4px'></span>"
        f"{html_text(label)}</div>"
        for c, label in BANDS.values()
    )
    stds = "".join(
        f"<div><b>{html_text(s.name_zh)} {html_text(s.name)}</b>: {s.threshold_m:g} m"
        + (
            f" ({html_text(', '.join(f'{k} {v:g} m' for k, v in s.context_thresholds_m.items()))})"
            if s.context_thresholds_m
            else ""
        )
        + f" — {html_text(s.citation.section)} {html_text(s.citation.text)}</div>"
        for s in result.standards
    )
    extra = (
        f"<div><span style='color:{FACILITY_COLOUR[0]}'>◉</span> facility · 设施 &nbsp;"
        f"<span style='background:{SERVICE_AREA_COLOUR};opacity:.35;display:inline-block;width:12px;height:12px'></span> within walking distance · 步行可达 &nbsp;"
        f"<span style='border:2px dashed {GAP_COLOUR};display:inline-block;width:10px;height:10px'></span> gap · 缺口"
        + (
            f" &nbsp;<span style='color:{SITE_COLOUR}'>●</span> proposed site · 建议选址 (tick "
            "“after proposed sites” to see the homes they would reach · 勾选“建议选址后”查看效果)"
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
    # collapsible (click its title), the plan's citations folded: it leaves the map its room
    return (
        "<div id='walkcover-legend' style='position:fixed;bottom:12px;left:12px;z-index:9999;background:white;"
        "padding:5px 9px;border:1px solid #999;border-radius:4px;font:11px/1.35 sans-serif;max-width:380px;"
        "max-height:40%;overflow:auto'><details open><summary style='font-weight:bold;cursor:pointer'>"
        f"{html_text(district_label)}{sample}</summary>"
        f"{warn}{rows}{extra}<details style='margin-top:4px'><summary>standards and plan citations · 标准与依据</summary>{stds}</details>"
        "<div style='color:#555;margin-top:4px'>Walking distance over OpenStreetMap streets · 沿街道步行距离；"
        f"{html_text(result.rules.document)} {html_text(result.rules.title)}</div></details></div>"
    )


def district_map(
    result: Assessment,
    district_id: str,
    *,
    proposed: gpd.GeoDataFrame | None = None,
    after: dict[str, pd.DataFrame] | None = None,
    tiles: str | None = None,
    max_footprints: int = 3_000,
    max_units: int = 15_000,
    show: str | None = None,
) -> folium.Map:
    """The interactive map of one district: a toggleable layer per standard.

    Each standard's layer shows the homes coloured by distance band, the gaps, the land within
    walking distance, the facilities (popup: name, kind, ``osm_id``, how many homes have it as their
    nearest, by band) and, where given, the proposed sites. With `after` (per standard, each home's
    walk once its proposed sites are built: `walkcover.siting.walks_after`) an overlay, off at
    first, draws the homes again in their bands after the proposed sites. Homes are drawn as footprints up to
    `max_footprints`, as dots up to `max_units`, and beyond that as H3 hexagons (resolution 9, about
    350 m across) coloured by the band most of their residents fall in, so the page stays light:
    each standard's layer repeats them (measured: a 144 km² district with 29,000 homes gives a
    14 MB page; docs/benchmarks.md).
    """
    d_row = result.districts.set_index("district_id").loc[district_id]
    dgeom = result.district_geometry(district_id)
    d4326 = result.districts.set_index("district_id").geometry[district_id]
    m = _base_map(np.asarray(d4326.bounds), tiles)
    label = f"{d_row['name']} / {d_row['name_en']}"
    demand, dsnaps = result.district_demand(district_id)
    areas = result.service_areas(district_id).set_index("standard")
    _add_streets(m, result, dgeom)
    for i, std in enumerate(result.standards):
        group = folium.FeatureGroup(  # one standard at a time: base layers, a radio choice
            name=_layer_name(f"{std.name_zh} {std.name} ({std.threshold_m:g} m)"),
            overlay=False,
            show=(std.id == show) if show else (i == 0),
        )
        _add_service_area(group, result, std, areas.geometry[std.id], cell_m=SERVICE_AREA_CELL_M)
        thr = result.thresholds(std, dsnaps)
        _add_homes(
            group,
            demand,
            std.id,
            thr,
            crs=result.crs,
            max_footprints=max_footprints,
            max_units=max_units,
            limit_m=result.passes[std.id].limit_m,
        )
        row = result.summary[
            (result.summary["district_id"] == district_id) & (result.summary["standard"] == std.id)
        ]
        if len(row) and not row["facilities_in_reach"].iloc[0]:
            # no facility in the data: no data, said so; the whole district is no gap to rank
            _add_no_data(group, [d4326.representative_point()])
        else:
            _add_gaps(group, result, std.id, district_id)
        _add_facilities(
            group, result, std.id, result.passes[std.id], demand, district_id, thr, dgeom
        )
        if proposed is not None and len(proposed):
            _add_proposed(group, proposed[proposed["standard"] == std.id])
        group.add_to(m)
    for std in result.standards:
        walks = (after or {}).get(std.id)
        if walks is None or proposed is None:
            continue
        mine = proposed[proposed["standard"] == std.id]
        # before/after: the homes once the proposed sites are built, over the standard's layer
        group = folium.FeatureGroup(
            name=_layer_name(
                f"{std.name_zh} {std.name}: after {len(mine)} proposed site(s) · 建议选址后"
            ),
            overlay=True,
            show=False,
        )
        later = demand.assign(
            **{
                f"{std.id}_dist_m": walks["dist_m"].to_numpy(),
                f"{std.id}_status": walks["status"].to_numpy(),
                f"{std.id}_band": walks["band"].to_numpy(),
            }
        )
        _add_homes(
            group,
            later,
            std.id,
            result.thresholds(std, dsnaps),
            crs=result.crs,
            max_footprints=max_footprints,
            max_units=max_units,
            limit_m=result.passes[std.id].limit_m,
        )
        _add_proposed(group, mine)
        group.add_to(m)
    # the boundary as a line: as a polygon (even unfilled) it would catch every hover and click
    # inside the district on Leaflet's canvas, and no gap or facility would answer
    folium.GeoJson(
        _geojson(
            gpd.GeoDataFrame({"name": [label]}, geometry=[dgeom.boundary], crs=result.crs),
            simplify_m=1.0,
        ),
        name=_layer_name("District boundary · 区界"),
        style_function=lambda _f: {"color": "#000", "weight": 2.5},
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    with_sites = proposed is not None and len(proposed) > 0
    warnings = [
        n.text
        for kind in (DEMAND_NOTE, OFFICIAL_LAND_NOTE)
        for n in result.district_notes(d_row["slug"], kind=kind)
    ]
    facts = [_completeness_line(result, district_id)]
    _figure(m).html.add_child(folium.Element(_legend(result, label, with_sites, warnings, facts)))
    return m


#: Above this many street edges around a district, its map draws only the street grid.
MAX_STREET_EDGES = 20_000
MINOR_WAYS = ("footway", "path", "steps", "service", "pedestrian", "corridor", "track", "cycleway")


def _add_streets(m: folium.Map, result: Assessment, dgeom: shapely.Geometry) -> None:
    """The walk network around the district as one light line layer, drawn first (under the
    standards, whose homes, gaps and facilities answer hovers before it), so the map reads
    offline, without a base map."""
    edges = result.network.edges
    near = edges.sindex.query(shapely.buffer(dgeom, 300.0), predicate="intersects")
    simplify_m = 2.0
    if len(near) > MAX_STREET_EDGES:
        # a big district: the street grid only (no footways, paths, steps or service roads),
        # simplified more, so the page stays light
        minor = edges["highway"].iloc[near].isin(MINOR_WAYS).to_numpy()
        near, simplify_m = near[~minor], 5.0
    if not len(near):
        return
    lines = shapely.multilinestrings(edges.geometry.to_numpy()[near])
    folium.GeoJson(
        _geojson(gpd.GeoDataFrame(geometry=[lines], crs=result.crs), simplify_m=simplify_m),
        name=_layer_name("Streets · 街道"),
        style_function=lambda _f: {"color": "#8c8c8c", "weight": 1, "opacity": 0.7},
    ).add_to(m)


def _add_service_area(
    group: folium.FeatureGroup, result: Assessment, std, area: shapely.Geometry, *, cell_m: float
) -> None:
    """The land within walking distance of the standard's facilities."""
    if shapely.is_empty(area):
        return
    what = f"within walking distance · 步行{std.threshold_m:g}米可达"
    folium.GeoJson(
        _geojson(
            gpd.GeoDataFrame({"what": [what]}, geometry=[area], crs=result.crs), simplify_m=cell_m
        ),
        name=_layer_name(f"{std.id} service area"),
        style_function=lambda _f: {
            "fillColor": SERVICE_AREA_COLOUR,
            "fillOpacity": 0.22,
            "weight": 0,
        },
    ).add_child(PropertyTable(lines=["what"])).add_to(group)


def _bands(demand: pd.DataFrame, key: str, thr: np.ndarray | float) -> np.ndarray:
    """Each home's band as measured (``<key>_band``); a table without that column (an after-sites
    walk, a hand-built assessment) has its bands taken by the one rule (`distance_band`)."""
    if f"{key}_band" in demand:
        return demand[f"{key}_band"].to_numpy(dtype=object)
    return distance_band(
        demand[f"{key}_dist_m"].to_numpy(dtype=float), thr, demand[f"{key}_status"].to_numpy()
    )


def _add_homes(
    group: folium.FeatureGroup,
    demand: gpd.GeoDataFrame,
    sid: str,
    thr: np.ndarray | float,
    *,
    crs,
    max_footprints: int,
    max_units: int,
    limit_m: float,
) -> None:
    """Homes coloured by distance band: footprints, dots, or H3 hexagons as their number grows.

    A home beyond the search limit (no distance: the search stops at `limit_m`) is "farther", red,
    and its walk reads "> limit"; grey is kept for homes no walk reaches at all."""
    dist = demand[f"{sid}_dist_m"].to_numpy(dtype=float)
    past = demand[f"{sid}_status"].to_numpy() == cov.STATUS_BEYOND_LIMIT
    band = _bands(demand, sid, thr)
    walk = [
        f"> {limit_m:,.0f}" if p else ("—" if d != d else f"{d:,.0f}") for d, p in zip(dist, past)
    ]
    units = gpd.GeoDataFrame(
        {
            "osm_id": demand["osm_id"],
            "residents": demand["residents"].round(0),
            "dist_m": walk,
            "band": band,
            "status": demand[f"{sid}_status"],
        },
        geometry=demand.geometry,
        crs=crs,
    )
    if len(units) > max_units:
        units = _hexes(units, resolution=9)
    elif len(units) > max_footprints:
        units = units.assign(geometry=units.geometry.representative_point())
    if not len(units):
        return
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
    ).add_child(
        PropertyTable(
            ["osm_id", "residents", "dist_m", "status"],
            ["OSM", "residents 居民", "walk m 步行米", "status 状态"],
        )
    ).add_to(group)


def _add_gaps(group: folium.FeatureGroup, result: Assessment, sid: str, district_id: str) -> None:
    """The 200 largest gaps, dashed red, with their rank, residents and distance."""
    gaps = result.gaps(district_id, sid).head(200)
    if not len(gaps):
        return
    fields = ["rank", "residents_uncovered", "area_m2", "dist_m_at_centre"]
    folium.GeoJson(
        _geojson(gaps[[*fields, "geometry"]], simplify_m=result.rules.land.cell_m),
        style_function=lambda _f: {
            "color": GAP_COLOUR,
            "weight": 2,
            "dashArray": "5,4",
            "fillOpacity": 0.05,
        },
    ).add_child(
        PropertyTable(
            fields,
            [
                "gap rank 缺口排名",
                "residents 未覆盖居民",
                "area m² 面积",
                "walk m at centre 中心步行米",
            ],
        )
    ).add_to(group)


#: The label of a district where a standard has no facility in the data: no data, said in words
#: on the map (a grey fill alone reads as 0%), on a hatched ground.
_NO_DATA_HTML = (
    "<div style='transform:translate(-50%,-50%);width:max-content;padding:3px 8px;"
    "font:bold 12px sans-serif;color:#424242;border:1px solid #757575;border-radius:4px;"
    "background:repeating-linear-gradient(45deg,#fff 0 6px,#e0e0e0 6px 9px)'>"
    "no facility in the data · 数据中无设施</div>"
)


def _add_no_data(group: folium.FeatureGroup, points_4326: list[shapely.Point]) -> None:
    """A "no data" label at each point (WGS84), in the standard's layer."""
    for pt in points_4326:
        folium.Marker(
            [pt.y, pt.x],
            icon=folium.DivIcon(
                html=_NO_DATA_HTML, icon_size=(0, 0), class_name="walkcover-nodata"
            ),
            interactive=False,
        ).add_to(group)


def _add_proposed(group: folium.FeatureGroup, sites: gpd.GeoDataFrame) -> None:
    if not len(sites):
        return
    pts = frame_to_lonlat(sites)
    frame = gpd.GeoDataFrame(
        {
            "what": [f"proposed site #{int(r)} · 建议选址" for r in pts["rank"]],
            "gain": pts["residents_newly_covered"].round(0).to_numpy(),
            "cumulative": round_figures(pts["cumulative_coverage_pct"]),
        },
        geometry=pts.geometry.to_numpy(),
        crs=4326,
    )
    folium.GeoJson(
        frame.__geo_interface__,
        marker=folium.CircleMarker(radius=9, weight=3, fill=True),
        style_function=lambda _f: {
            "color": SITE_OUTLINE,
            "fillColor": SITE_COLOUR,
            "fillOpacity": 0.9,
        },
    ).add_child(
        PropertyTable(
            ["gain", "cumulative"],
            ["residents newly covered · 新增覆盖居民", "coverage after % · 覆盖率"],
            title="what",
        )
    ).add_to(group)


def _add_facilities(group, result: Assessment, sid, p, demand, district_id, thr, dgeom) -> None:
    """One layer of the standard's facilities near the district; each popup says its name, kind,
    OSM id and how many homes have it as their nearest facility, by band."""
    counted = p.counted
    if not len(counted):
        return
    # each home's nearest facility, as the measuring pass found it (no shortest path here)
    fac_of_unit = result.district_nearest(sid, district_id)
    band = _bands(demand, sid, thr)
    near = np.flatnonzero(can_serve(counted.geometry, dgeom, p.limit_m))
    if not len(near):
        return
    bands = ("within", "near", "beyond")
    counts = {b: np.zeros(len(counted), dtype=int) for b in bands}
    reached = fac_of_unit >= 0
    for b in bands:
        counts[b] = np.bincount(fac_of_unit[reached & (band == b)], minlength=len(counted))[
            : len(counted)
        ]
    sub = counted.iloc[near]
    names = sub["name"].astype(object).where(sub["name"].notna() & (sub["name"].astype(str) != ""))
    props = {
        "name": names.fillna("(no name · 无名称)").astype(str).to_numpy(),
        "kind": sub["matched_by"].astype(str).to_numpy(),
        "osm_id": sub["osm_id"].astype(str).to_numpy(),
        **{b: counts[b][near] for b in bands},
    }

    def popup() -> PropertyTable:
        return PropertyTable(
            list(bands),
            [BANDS[b][1] for b in bands],
            kind="popup",
            title="name",
            lines=["kind"],
            osm_link=True,
            caption="homes for which it is the nearest · 以其为最近设施的住宅:",
            swatches=[BANDS[b][0] for b in bands],
        )

    style = {"color": FACILITY_COLOUR[0], "weight": 2, "fillColor": FACILITY_COLOUR[1]}
    is_point = (sub.geom_type == "Point").to_numpy()
    if is_point.any():
        pts = gpd.GeoDataFrame(
            {k: v[is_point] for k, v in props.items()},
            geometry=sub.geometry[is_point].to_numpy(),
            crs=result.crs,
        )
        folium.GeoJson(
            _geojson(pts),
            marker=folium.CircleMarker(radius=6, fill=True),
            style_function=lambda _f: {**style, "fillOpacity": 0.95},
        ).add_child(popup()).add_to(group)
    if (~is_point).any():
        polys = gpd.GeoDataFrame(
            {k: v[~is_point] for k, v in props.items()},
            geometry=sub.geometry[~is_point].to_numpy(),
            crs=result.crs,
        )
        folium.GeoJson(
            _geojson(polys),
            style_function=lambda _f: {
                **style,
                "fillColor": FACILITY_COLOUR[0],
                "fillOpacity": 0.15,
            },
        ).add_child(popup()).add_to(group)


def _hexes(units: gpd.GeoDataFrame, *, resolution: int) -> gpd.GeoDataFrame:
    """Aggregate units to H3 cells: residents summed, the band of the residents' majority."""
    import h3

    pts = frame_to_lonlat(units.geometry.representative_point())
    cells = [h3.latlng_to_cell(y, x, resolution) for x, y in zip(pts.x, pts.y)]
    frame = pd.DataFrame({"cell": cells, "band": units["band"], "residents": units["residents"]})
    agg = frame.groupby(["cell", "band"])["residents"].sum().reset_index()
    top = agg.sort_values("residents", ascending=False).drop_duplicates("cell")
    tot = frame.groupby("cell")["residents"].sum()
    polys = [
        shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in top["cell"]
    ]
    out = gpd.GeoDataFrame(
        {
            "osm_id": top["cell"].to_numpy(),
            "residents": tot.reindex(top["cell"]).round(0).to_numpy(),
            "dist_m": np.nan,
            "band": top["band"].to_numpy(),
            "status": "H3 hexagon",
        },
        geometry=polys,
        crs=4326,
    )
    return out.to_crs(units.crs)


def _ramp(pct: float | None) -> str:
    return ramp(pct)


def city_map(
    result: Assessment,
    *,
    tiles: str | None = None,
    h3_resolution: int | None = None,
    show: str | None = None,
) -> folium.Map:
    """The city map: districts coloured by residents covered, with a standard picker, and the
    residents' coverage aggregated to H3 hexagons so the page stays fast at city scale."""
    import h3

    m = _base_map(np.asarray(result.districts.total_bounds), tiles)
    d = result.districts
    area_km2 = float(d.to_crs(result.crs).area.sum()) / 1e6
    res = h3_resolution or (9 if area_km2 < 50 else 8 if area_km2 < 2000 else 7)
    pts = frame_to_lonlat(result.demand.geometry.representative_point())
    cells = np.array([h3.latlng_to_cell(y, x, res) for x, y in zip(pts.x, pts.y)])
    for i, std in enumerate(result.standards):
        sid = std.id
        group = folium.FeatureGroup(
            name=_layer_name(f"{std.name_zh} {std.name} ({std.threshold_m:g} m)"),
            overlay=False,
            show=(sid == show) if show else (i == 0),
        )
        rows = result.summary[result.summary["standard"] == sid].set_index("district_id")
        pct = pd.to_numeric(
            rows["residents_covered_pct"].reindex(d["district_id"]), errors="coerce"
        ).to_numpy(float)
        # no facility of the standard in reach of a district: no data there, not 0%
        none = (
            pd.to_numeric(rows["facilities_in_reach"].reindex(d["district_id"]), errors="coerce")
            .fillna(0)
            .to_numpy()
            == 0
        )
        pct = np.where(none, np.nan, pct)
        nobody = (
            pd.to_numeric(rows["residents"].reindex(d["district_id"]), errors="coerce")
            .fillna(0)
            .to_numpy()
            <= 0
        )
        polys = d.assign(pct=pct)
        measured = ~result.demand["district_id"].isin(set(d["district_id"][none])).to_numpy()
        hx = pd.DataFrame(
            {
                "cell": cells[measured],
                "res": result.demand["residents"].to_numpy()[measured],
                "cov": (
                    result.demand["residents"].to_numpy()
                    * result.demand[f"{sid}_covered"].to_numpy()
                )[measured],
            }
        )
        agg = hx.groupby("cell")[["res", "cov"]].sum()
        agg = agg[agg["res"] > 0]
        hexes = gpd.GeoDataFrame(
            {
                "cell": agg.index,
                "residents": agg["res"].round(0).to_numpy(),
                "pct": round_figures(100 * agg["cov"] / agg["res"]),
            },
            geometry=[
                shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
                for c in agg.index
            ],
            crs=4326,
        )
        polys = polys.assign(
            label=polys["name"] + " / " + polys["name_en"],
            pct=round_figures(polys["pct"]),
            note=np.where(
                nobody,
                "no residents in the data · 数据中无居民",
                np.where(none, "no facility in the data · 数据中无设施", ""),
            ),
        )
        _coverage_layer(
            polys[["label", "pct", "note", "geometry"]].__geo_interface__,
            {"label": "district 区", "pct": "residents covered % 居民覆盖率", "note": ""},
            outline=("#222", 2.0),
            fill_opacity=0.25,
        ).add_to(group)
        # the hexagons above the districts: their values answer where there are homes
        if len(hexes):
            _coverage_layer(
                hexes.__geo_interface__,
                {"residents": "residents 居民", "pct": "covered % 覆盖率"},
                outline=None,
                fill_opacity=0.7,
            ).add_to(group)
        _add_no_data(group, list(d.geometry[none & ~nobody].representative_point()))
        group.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    title = f"{result.city.config.name} / {result.city.config.name_en}"
    legend = _ramp_legend(title, f"hexagons: H3 resolution {res}; grey: no data · 灰色：无数据")
    _figure(m).html.add_child(folium.Element(legend))
    return m


def region_map(summary: gpd.GeoDataFrame, cities: gpd.GeoDataFrame, *, title: str) -> folium.Map:
    """The region map: each city's districts coloured by residents covered, one standard at a time
    (a radio choice), the cities outlined; hovering a district gives its city, figure and target.

    Parameters
    ----------
    summary
        ``region_summary`` rows (EPSG:4326, district polygons) with ``city_name, district_name,
        standard, standard_name, residents_covered_pct, target_pct``.
    cities
        City outlines (EPSG:4326) with ``name``.
    """
    m = _base_map(np.asarray(cities.total_bounds), None)
    for i, (sid, rows) in enumerate(summary.groupby("standard", sort=False)):
        name = str(rows["standard_name"].iloc[0])
        group = folium.FeatureGroup(name=_layer_name(f"{name} ({sid})"), overlay=False, show=i == 0)
        pct = pd.to_numeric(rows["residents_covered_pct"], errors="coerce")
        res = pd.to_numeric(rows["residents"], errors="coerce")
        cov = pd.to_numeric(rows["residents_covered"], errors="coerce")
        by_city = cov.groupby(rows["city_name"]).sum() / res.groupby(rows["city_name"]).sum()
        polys = gpd.GeoDataFrame(
            {
                "label": (rows["city_name"] + " " + rows["district_name"]).to_numpy(),
                "pct": round_figures(pct),
                "city_pct": round_figures(100 * rows["city_name"].map(by_city)),
                "target": pd.to_numeric(rows["target_pct"], errors="coerce").to_numpy(),
            },
            geometry=rows.geometry.to_numpy(),
            crs=4326,
        )
        _coverage_layer(
            _geojson(polys.to_crs(3857), simplify_m=20.0),
            {
                "label": "district 区县",
                "pct": "residents covered % 居民覆盖率",
                "city_pct": "whole city % 全市",
                "target": "target % 目标",
            },
            outline=("#555", 0.5),
            fill_opacity=0.75,
        ).add_to(group)
        group.add_to(m)
    # outlines as lines, not polygons: a polygon (even unfilled) catches every hover inside it
    # on Leaflet's canvas, and the districts' tooltips would never show
    lines = cities[["name", "geometry"]].assign(geometry=cities.geometry.boundary)
    folium.GeoJson(
        _geojson(lines.to_crs(3857), simplify_m=50.0),
        name=_layer_name("Cities · 城市"),
        style_function=lambda _f: {"color": "#111", "weight": 2.5},
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    legend = _ramp_legend(title, "grey: no data · 灰色：无数据")
    _figure(m).html.add_child(folium.Element(legend))
    return m


def _coverage_layer(
    data: dict,
    fields: dict[str, str],
    *,
    outline: tuple[str, float] | None,
    fill_opacity: float,
) -> folium.GeoJson:
    """Polygons (GeoJSON with a ``pct`` property) filled by the share covered (`_ramp`: grey where
    there is no figure), with `outline` (colour, weight) or none, and a tooltip of `fields`
    (property → label)."""
    line = {"color": outline[0], "weight": outline[1]} if outline else {"weight": 0}
    layer = folium.GeoJson(
        data,
        style_function=lambda f: {
            **line,
            "fillColor": _ramp(f["properties"]["pct"]),
            "fillOpacity": fill_opacity,
        },
    )
    layer.add_child(PropertyTable(list(fields), list(fields.values()), missing="no data · 无数据"))
    return layer


def _ramp_legend(title: str, note: str) -> str:
    """The legend of a map coloured by residents covered (red 0% → green 100%)."""
    ramp = "".join(
        f"<span style='background:{_ramp(v)};display:inline-block;width:22px;height:12px'></span>"
        for v in range(0, 101, 10)
    )
    return (
        "<div id='walkcover-legend' style='position:fixed;bottom:12px;left:12px;z-index:9999;background:white;"
        "padding:8px 10px;border:1px solid #999;border-radius:4px;font:12px/1.4 sans-serif'>"
        f"<b>{html_text(title)}</b>: residents within walking distance · 步行范围内居民比例 "
        f"(pick a standard top right · 右上角选择标准)<br>{ramp}<br>0% "
        f"<span style='float:right'>100%</span><br>{html_text(note)}</div>"
    )


def render_html(m: folium.Map) -> str:
    """The map as one self-contained HTML page: Leaflet inlined, no other outside script or style."""
    root = m.get_root()
    page = _stable_ids(root, root.render())

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
    return _with_csp(page)


def _stable_ids(root: object, page: str) -> str:
    """`page` with folium's random element ids (128 random bits each, so the script hashes of
    the Content-Security-Policy changed too) replaced by counters in order of first appearance:
    the same map gives the same bytes, run after run.

    The ids are those of the rendered element tree (elements a render adds included), replaced
    exactly: text from the data is never touched, whatever it looks like.
    """
    ids: set[str] = set()
    stack = [root]
    while stack:
        el = stack.pop()
        if isinstance(getattr(el, "_id", None), str):
            ids.add(el._id)  # type: ignore[attr-defined]
        stack.extend(getattr(el, "_children", {}).values())
    if not ids:
        return page
    order: dict[str, str] = {}

    def stable(match: re.Match) -> str:
        return order.setdefault(match.group(0), f"{len(order) + 1:032x}")

    pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))
    return pattern.sub(stable, page)


def _with_csp(page: str) -> str:
    """Add a Content-Security-Policy that runs only the page's own scripts and loads nothing from
    outside (but tiles of a base map asked for with ``tiles``).

    Each inline script is allowed by its SHA-256 hash, so a script or event handler that text from
    the data might smuggle into the page would not run; no ``eval``, no outside connection.
    """
    hashes = sorted(
        {
            "'sha256-"
            + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            + "'"
            for body in re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
        }
    )
    img = ["data:", "blob:", *sorted({o for o in TILE_ORIGINS.values() if f"{o}/" in page})]
    scripts = " ".join(hashes) or "'none'"
    policy = (
        f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; "
        f"img-src {' '.join(img)}; font-src data:; base-uri 'none'; form-action 'none'"
    )
    meta = f'<meta http-equiv="Content-Security-Policy" content="{html_text(policy)}">'
    head = re.search(r"<head[^>]*>", page)
    if head is None:
        raise RuntimeError("map page has no <head>; cannot add its Content-Security-Policy")
    return page[: head.end()] + meta + page[head.end() :]


def save_map(m: folium.Map, path: Path) -> Path:
    """Write the self-contained page atomically."""
    page = render_html(m)
    return write_atomic(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"))
