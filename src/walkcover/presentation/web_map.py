"""The shared makings of walkcover's web maps: Leaflet inlined from the shipped copy, the
base map and its tiles, popups, and the page written deterministically with its
Content-Security-Policy.

Every map is a single self-contained HTML file: Leaflet's JavaScript and CSS are inlined from the
copy shipped in ``walkcover/_assets`` (folium links CDNs by default, which are slow or blocked in
mainland China and absent offline), and the base tile layer is optional: without it the map still
shows every layer on a plain background.
"""

import base64
import hashlib
import re
from collections.abc import Callable
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
from walkcover._gc import collector_paused
from walkcover.config.crs import frame_to_lonlat, to_lonlat
from walkcover.presentation.figures import NO_DATA, NO_FACILITY_WHY

ASSETS = Path(__file__).resolve().parents[1] / "_assets"
_LEAFLET_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
_LEAFLET_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"
_JQUERY_JS = "https://code.jquery.com/jquery-3.7.1.min.js"
#: walkcover's own scripts and the vendored plugins, named by a path under ``_assets`` (never
#: fetched: `render_html` inlines them like Leaflet).
CLUSTER_JS = "walkcover-asset:markercluster/leaflet.markercluster.js"
CLUSTER_CSS = "walkcover-asset:markercluster/MarkerCluster.css"
DISTRICT_JS = "walkcover-asset:walkcover/district_map.js"
_LOCAL = {
    _LEAFLET_JS: ASSETS / "leaflet" / "leaflet.js",
    _LEAFLET_CSS: ASSETS / "leaflet" / "leaflet.css",
    _JQUERY_JS: ASSETS / "jquery" / "jquery.min.js",  # folium's popups call $()
    CLUSTER_JS: ASSETS / "markercluster" / "leaflet.markercluster.js",
    CLUSTER_CSS: ASSETS / "markercluster" / "MarkerCluster.css",
    DISTRICT_JS: ASSETS / "walkcover" / "district_map.js",
}


class MapOptionError(WalkcoverError, ValueError):
    """A map option (such as ``tiles``) that walkcover does not know."""


TILES = {"osm": ("OpenStreetMap", "© OpenStreetMap contributors")}
#: The credit every map owes the OpenStreetMap data it draws (ODbL), shown with or without tiles;
#: the same text as the OSM tiles' attribution, so Leaflet shows it once.
OSM_CREDIT = TILES["osm"][1]
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
    var line = document.createElement('div');
    line.appendChild(a);
    div.appendChild(line);
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
    var v = text(p[f]);
    if (spec.aliases && v.length > 24) {
      /* a long value (the toilets' rule per street context): on a line of its own under its
       * name, so the figures of the other rows keep their column */
      tr.insertCell();
      var wide = t.insertRow().insertCell();
      wide.colSpan = tr.cells.length;
      wide.className = 'walkcover-wide';
      wide.textContent = v;
    } else {
      tr.insertCell().textContent = v;
    }
  });
  if (t.rows.length) div.appendChild(t);
  return div;
}
"""


#: (Leaflet's tooltips never wrap: a long value, such as the toilets' rule per street context,
#: wraps within 26em here instead of stretching the tooltip past the screen's edge, where the
#: figures beside it could not be read.)
_TABLE_CSS = (
    "<style>.walkcover-info{font:12px/1.45 sans-serif;white-space:normal;max-width:26em}"
    ".walkcover-info table{border-collapse:collapse;margin-top:2px}.walkcover-info th{font-"
    "weight:normal;color:#444;padding:0 8px 0 0;white-space:nowrap;vertical-align:top}"
    ".walkcover-info td{padding:0 4px 0 0;text-align:right;vertical-align:top;white-space:nowrap}"
    ".walkcover-info td.walkcover-wide{text-align:left;padding:0 0 2px 1em;white-space:normal}"
    "</style>"
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
        add_page_code(self, "walkcover_table", js=_TABLE_JS, css=_TABLE_CSS)
        super().render(**kwargs)


def _figure(element: folium.Element) -> folium.Figure:
    """The page (`folium.Figure`) an element is drawn on."""
    root = element.get_root()
    if not isinstance(root, folium.Figure):
        raise TypeError(f"{type(element).__name__} is not on a page; add it to a folium.Map first")
    return root


def add_page_code(element: folium.Element, name: str, *, js: str, css: str) -> None:
    """Put the script `js` (first among the page's scripts) and the style `css` into the page of
    `element` once, under `name`, however many elements need them."""
    figure = _figure(element)
    if f"{name}_js" not in figure.script._children:
        figure.script.add_child(folium.Element(js), name=f"{name}_js", index=0)
        figure.header.add_child(folium.Element(css), name=f"{name}_css")


def _layer_name(text: str) -> str:
    """A layer control label: Leaflet sets it as HTML, so it is escaped here."""
    return html_text(text)


class MetricScale(MacroElement):
    """A metric scale bar (no feet or miles) at the bottom right, clear of the legend, and the
    OpenStreetMap credit (`OSM_CREDIT`) in the map's attribution, tiles or none."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, metric: true, position: "bottomright"})
            .addTo({{ this._parent.get_name() }});
        if ({{ this._parent.get_name() }}.attributionControl) {
            {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.credit }});
        }
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "MetricScale"
        self.credit = js_value(OSM_CREDIT)


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
.leaflet-control-scale-line{overflow:visible;white-space:nowrap;line-height:1.3;
  font:11px/1.3 sans-serif;box-sizing:content-box}
.leaflet-control-attribution{font:11px/1.4 sans-serif}
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
    # a limit the clustered facilities need (Leaflet.markercluster): the zoom of the OSM tiles
    m.options["maxZoom"] = 19
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
    """`gdf` as GeoJSON in WGS84, simplified by `simplify_m` and its coordinates to about 0.1 m.

    Its other columns travel as they are: what people read is text the callers made with
    `walkcover.presentation.figures` (a number would show as the browser writes it, ``1642``
    for ``1,642``); a number is only for the page to compute with (a colour)."""
    g = gdf.copy()
    g["geometry"] = g.geometry.simplify(simplify_m)
    g = frame_to_lonlat(g)
    g["geometry"] = shapely.transform(g.geometry.to_numpy(), lambda xy: np.round(xy, 6))  # ~0.1 m
    return g.__geo_interface__


#: The label of a district where a standard has no facility in reach: no data, said in words
#: on the map (a grey fill alone reads as 0%), on a hatched ground, in the words of every other
#: output, and why under them.
_NO_DATA_HTML = (
    "<div style='transform:translate(-50%,-50%);width:max-content;padding:3px 8px;"
    "font:bold 12px sans-serif;color:#424242;border:1px solid #757575;border-radius:4px;"
    "background:repeating-linear-gradient(45deg,#fff 0 6px,#e0e0e0 6px 9px)'>"
    f"{html_text(NO_DATA)}<br><span style='font-weight:normal'>{html_text(NO_FACILITY_WHY)}"
    "</span></div>"
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


def render_html(m: folium.Map) -> str:
    """The map as one self-contained HTML page: Leaflet inlined, no other outside script or style.

    The cyclic garbage collector is paused while it renders (`walkcover._gc`): jinja's many
    small objects set off full passes over whatever else the process holds (a city's results)."""
    with collector_paused():
        return _render_html(m)


def _render_html(m: folium.Map) -> str:
    root = m.get_root()
    page = _stable_ids(root, root.render())
    page = _DEFERRED.sub(lambda match: _deferred_data(root)[match.group(0)], page)

    def inlined(tag: str, what: str) -> Callable[[re.Match], str]:
        def put(match: re.Match) -> str:
            url = match.group(1)
            if url not in _LOCAL:
                raise RuntimeError(
                    f"map needs an outside {what} {url!r}; walkcover maps must work offline"
                )
            return f"<{tag}>" + _LOCAL[url].read_text(encoding="utf-8") + f"</{tag}>"

        return put

    page = re.sub(r'<script src="([^"]+)"></script>', inlined("script", "script"), page)
    page = re.sub(
        r'<link rel="stylesheet" href="([^"]+)"\s*/>', inlined("style", "stylesheet"), page
    )
    return _with_csp(page)


def _stable_ids(root: object, page: str) -> str:
    """`page` with folium's random element ids (128 random bits each, so the script hashes of
    the Content-Security-Policy changed too) replaced by counters in order of first appearance:
    the same map gives the same bytes, run after run.

    The ids are those of the rendered element tree (elements a render adds included), replaced
    exactly: text from the data is never touched, whatever it looks like. Every run of 32
    lower-case hex digits (folium's form of an id) is looked up, one pass over the page.
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
    odd = sorted(i for i in ids if not _FOLIUM_ID.fullmatch(i))
    if odd:  # an id of another form (set by hand): the slower exact search
        pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))
    else:
        pattern = _FOLIUM_ID

    def stable(match: re.Match) -> str:
        found = match.group(0)
        if found not in ids:
            return found
        return order.setdefault(found, f"{len(order) + 1:032x}")

    return pattern.sub(stable, page)


_FOLIUM_ID = re.compile("[0-9a-f]{32}")
_DEFERRED = re.compile(r"__walkcover_data_\d+_\d+__")


def defer_data(element: folium.Element, text: str) -> str:
    """A placeholder for `text` (a large JSON literal) in `element`'s script, put in its place by
    `render_html` after the page is rendered: folium compiles each element's rendered script as
    a jinja template, which took seconds for a city district's data (and would read ``{{`` in
    it as template code)."""
    store = element.__dict__.setdefault("_deferred", {})
    key = f"__walkcover_data_{len(store)}_{id(element)}__"
    store[key] = text
    return key


def _deferred_data(root: object) -> dict[str, str]:
    """Every deferred text of the element tree under `root`, by its placeholder."""
    found: dict[str, str] = {}
    stack = [root]
    while stack:
        el = stack.pop()
        found.update(getattr(el, "_deferred", {}))
        stack.extend(getattr(el, "_children", {}).values())
    return found


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
    return save_page(render_html(m), path)


def save_page(page: str, path: Path) -> Path:
    """Write a page `render_html` made, atomically."""
    return write_atomic(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"))


#: Web Mercator's sphere (EPSG:3857, as Leaflet's default CRS draws it), in metres.
_MERCATOR_R = 6378137.0


def _varints(values: np.ndarray) -> str:
    """Unsigned integers as LEB128 varints (7 bits a byte, the high bit says "more"), base64."""
    v = np.asarray(values, dtype=np.uint64).ravel()
    if not len(v):
        return ""
    nbytes = np.ones(len(v), dtype=np.int64)
    for k in range(1, 10):
        nbytes += v >= (np.uint64(1) << np.uint64(7 * k))
    starts = np.concatenate([[0], np.cumsum(nbytes)[:-1]])
    out = np.zeros(int(nbytes.sum()), dtype=np.uint8)
    for k in range(int(nbytes.max())):
        has = nbytes > k
        low = ((v[has] >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        more = (nbytes[has] > k + 1).astype(np.uint8) << np.uint8(7)
        out[starts[has] + k] = low | more
    return base64.b64encode(out.tobytes()).decode("ascii")


def _zigzag(values: np.ndarray) -> np.ndarray:
    """Signed integers as unsigned ones, small magnitudes small (0, -1, 1, -2 → 0, 1, 2, 3)."""
    v = np.asarray(values, dtype=np.int64)
    return ((v << np.int64(1)) ^ (v >> np.int64(63))).view(np.uint64)


def pack_geometry(geoms: Any, crs: Any, *, step_m: float, simplify_m: float = 0.0) -> dict:
    """Geometries of one family (points, lines or polygons) packed for the district map's script
    (``walkcover.unpack`` in ``_assets/walkcover/district_map.js``): a few bytes a vertex where
    GeoJSON takes some twenty.

    Vertices are taken to Web Mercator (the map's own projection) and quantised to `step_m`
    metres of it, stored as the differences between consecutive vertices (zigzag LEB128 varints,
    base64); the counts of parts per feature, rings per part and vertices per ring likewise. A
    polygon's ring leaves out its closing vertex. Deterministic: the same geometries give the
    same text.

    Parameters
    ----------
    geoms
        An array of shapely geometries in `crs` (Polygon with MultiPolygon, LineString with
        MultiLineString, or Point).
    crs
        Their CRS.
    step_m
        The quantisation step, in Web Mercator metres (about 0.8 m on the ground at 35°N per
        metre).
    simplify_m
        Simplify each geometry first by this tolerance (in `crs` units), where above 0.
    """
    values = np.asarray(geoms, dtype=object)
    if not len(values):
        empty = {"kind": "polygon", "origin": [0.0, 0.0], "step": step_m, "xy": ""}
        return {**empty, "parts": "", "rings": "", "verts": ""}
    if simplify_m > 0:  # for drawing: no topology kept (ten times faster on a city's areas)
        simple = shapely.simplify(values, simplify_m, preserve_topology=False)
        values = np.where(shapely.is_empty(simple) & ~shapely.is_empty(values), values, simple)
    lonlat = to_lonlat(values, crs)
    kinds = set(shapely.get_type_id(lonlat).tolist())
    if kinds <= {0}:
        kind = "point"
        coords = shapely.get_coordinates(lonlat)
        offsets: tuple[np.ndarray, ...] = ()
    else:
        kind = "line" if kinds <= {1, 5} else "polygon"
        if kind == "polygon" and not kinds <= {3, 6}:
            raise ValueError(f"cannot pack a mix of geometry types {sorted(kinds)} in one layer")
        _, coords, offsets = shapely.to_ragged_array(lonlat)
    coords = np.asarray(coords, dtype=float).reshape(-1, 2)
    counts: dict[str, np.ndarray] = {}
    if kind == "polygon":
        ring_off, part_off, *geom_off = offsets
        verts = np.diff(ring_off)
        keep = np.ones(len(coords), dtype=bool)
        keep[ring_off[1:] - 1] = False  # each ring's closing vertex
        coords = coords[keep]
        counts["verts"] = np.maximum(verts - 1, 0)
        counts["rings"] = np.diff(part_off)
        counts["parts"] = np.diff(geom_off[0]) if geom_off else np.ones(len(part_off) - 1, int)
    elif kind == "line":
        vert_off, *geom_off = offsets
        counts["verts"] = np.diff(vert_off)
        counts["rings"] = np.ones(len(vert_off) - 1, dtype=int)
        counts["parts"] = np.diff(geom_off[0]) if geom_off else np.ones(len(vert_off) - 1, int)
    x = _MERCATOR_R * np.radians(coords[:, 0])
    y = _MERCATOR_R * np.log(np.tan(np.pi / 4 + np.radians(coords[:, 1]) / 2))
    x0 = float(np.floor(x.min() / step_m) * step_m) if len(x) else 0.0
    y0 = float(np.floor(y.min() / step_m) * step_m) if len(y) else 0.0
    qx = np.rint((x - x0) / step_m).astype(np.int64)
    qy = np.rint((y - y0) / step_m).astype(np.int64)
    deltas = np.column_stack([np.diff(qx, prepend=0), np.diff(qy, prepend=0)]).ravel()
    packed = {
        "kind": kind,
        "origin": [x0, y0],
        "step": step_m,
        "xy": _varints(_zigzag(deltas)),
    }
    for name, value in counts.items():
        packed[name] = _varints(value)
    return packed


class PackedGeoJson(folium.map.Layer):
    """A `folium.GeoJson` whose features travel packed (`pack_geometry`, properties as columns)
    and are unpacked into an ``L.geoJson`` on the page: the same layers, tooltips and popups
    (`PropertyTable`), a tenth of the bytes.

    Parameters
    ----------
    frame
        The features (any projected CRS), their columns `columns` as properties (numbers or
        text: text travels as JSON and is shown with ``textContent``).
    style
        Leaflet path options for every feature.
    radius
        Draw points as circle markers of this radius (pixels).
    step_m, simplify_m
        As `pack_geometry`.
    interactive
        Whether the features answer the mouse (a street grid does not).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = walkcover.lazy({{ this.data }}, {
            interactive: {{ this.interactive }},
            style: function () { return {{ this.style }}; },
            pointToLayer: function (feature, latlng) {
                return L.circleMarker(latlng, L.extend({radius: {{ this.radius }},
                    interactive: {{ this.interactive }}}, {{ this.style }}));
            }
        });
        {% endmacro %}
        """
    )

    def __init__(
        self,
        frame: gpd.GeoDataFrame,
        *,
        columns: list[str] = (),  # type: ignore[assignment]
        style: dict[str, Any],
        radius: float = 6.0,
        step_m: float = 0.5,
        simplify_m: float = 0.0,
        interactive: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, overlay=True, control=False, show=True)
        self._name = "PackedGeoJson"
        packed = pack_geometry(
            frame.geometry.to_numpy(), frame.crs, step_m=step_m, simplify_m=simplify_m
        )
        packed["props"] = {c: _json_column(frame[c]) for c in columns}
        self.data = defer_data(self, js_value(packed))
        self.style = js_value(style)
        self.radius = js_value(float(radius))
        self.interactive = "true" if interactive else "false"

    def render(self, **kwargs: Any) -> Any:
        _need_script(self, DISTRICT_JS)
        super().render(**kwargs)


def _json_column(values: pd.Series) -> list:
    """A column as JSON values: numbers as numbers (NaN as null), everything else as text."""
    if values.dtype.kind in "iub":
        return [int(v) for v in values]
    if values.dtype.kind == "f":
        return [None if v != v else float(v) for v in values]
    return [None if v is None or v != v else str(v) for v in values.astype(object)]


def _need_script(element: folium.Element, url: str, *, css: str | None = None) -> None:
    """Make the page of `element` load (inline) the script `url` and the stylesheet `css`, and
    the popups' `walkcoverTable`, once."""
    figure = _figure(element)
    if url not in figure.header._children:  # after Leaflet's, which the map added first
        figure.header.add_child(folium.JavascriptLink(url), name=url)
    if css is not None and css not in figure.header._children:
        figure.header.add_child(folium.CssLink(css), name=css)
    add_page_code(element, "walkcover_table", js=_TABLE_JS, css=_TABLE_CSS)
