"""The interactive map of one district: every home drawn once, coloured by the standard the
planner picks (`district_map`).

What makes it light at city scale (measured on a 240 km² district of 28,000 homes: 22 MB and 19 s
to write before, see docs/benchmarks.md): the homes' footprints travel once, packed
(`web_map.pack_geometry`), with a byte per home and standard for its band and status and an
index into a short table of walks written by `figures`; a canvas layer (``L.WalkcoverHomes`` in
``_assets/walkcover/district_map.js``) draws them and recolours them when another standard is
picked. Facilities, gaps, service areas and streets travel packed too, and facilities are
clustered where there are hundreds.

Beyond the standards, the layer control offers views of the same homes: for a standard with an
``access`` rule its capacity per 1,000 residents against the norm (E2SFCA, a class per home), and
for a standards file with GB 50180's life circles each tier's completeness (complete, or how many
of its facilities are missing). Each is a byte per home and its own legend; a home's popup gives
a standard's 2nd and 3rd nearest facility and how many are within (``choice: true``).
"""

from collections.abc import Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.elements import MacroElement
from folium.template import Template

from walkcover._escape import html_text, js_value
from walkcover._gc import collector_paused
from walkcover.assessment import DEMAND_NOTE, OFFICIAL_LAND_NOTE, Assessment, can_serve
from walkcover.config.crs import frame_to_lonlat
from walkcover.config.standards import Standard
from walkcover.engine import coverage as cov
from walkcover.measures.bands import distance_band
from walkcover.measures.gaps import SERVICE_AREA_CELL_M
from walkcover.presentation.figures import (
    COUNT_JS,
    EMPTY,
    NO_DATA,
    NO_FACILITY_WHY,
    STATUS_WORDS,
    columns_in_words,
    coordinate_text,
    count_text,
    distance_text,
    figure_text,
    meets_text,
    metres_text,
    pct_text,
    round_figures,
    setting_text,
    target_text,
    walk_text,
)
from walkcover.presentation.layer_store import packed_homes, packed_streets
from walkcover.presentation.layers import edges_in_box, way_lines
from walkcover.presentation.palette import (
    ACCESS_COLOURS,
    BANDS,
    FACILITY_COLOUR,
    GAP_COLOUR,
    LIFE_CIRCLE_COLOURS,
    SERVICE_AREA_COLOUR,
    SITE_COLOUR,
    SITE_OUTLINE,
)
from walkcover.presentation.web_map import (
    CLUSTER_CSS,
    CLUSTER_JS,
    DISTRICT_JS,
    FIT_PADDING_PX,
    PackedGeoJson,
    PropertyTable,
    _add_no_data,
    _base_map,
    _figure,
    _geojson,
    _layer_name,
    _need_script,
    _varints,
    defer_data,
    pack_geometry,
)

#: The bands in the order of their codes on the page (a home's code & 3).
BAND_KEYS = tuple(BANDS)
#: A street context in words.
CONTEXT_WORDS = {
    "main_street": "main street · 主要街道",
    "ordinary_road": "ordinary road · 一般道路",
    "riverside_park": "riverside park · 滨河公园",
}
#: Above this many facilities of a standard around a district, they are drawn in clusters.
CLUSTER_FACILITIES = 300
#: The quantisation step of homes, facilities and gaps, and of streets and service areas
#: (Web Mercator metres; `web_map.pack_geometry`).
FINE_STEP_M = 0.5
COARSE_STEP_M = 2.0
#: The tolerance the homes' footprints are simplified by for drawing (in the study's metres).
HOMES_SIMPLIFY_M = 0.5

_WORDS = {
    "residents": "residents · 居民",
    "walk": "walk · 步行",
    "rule": "standard here · 此处标准",
    "band": "band · 分级",
    "status": "status · 状态",
    "after": "after the proposed sites · 建议选址后",
    "every": "walk to the nearest facility of each standard · 各标准最近设施步行距离:",
}
#: The words of a standard's choice and of the views (capacity, life circles), on a page with them.
_MORE_WORDS = {
    "choice": {
        "second": "2nd nearest · 第二近",
        "third": "3rd nearest · 第三近",
        "within": "facilities within reach · 步行范围内设施数",
    },
    "views": {
        "level": "against the norm · 与标准相比",
        "circle": "life circle · 生活圈",
        "missing": "missing · 缺少",
        "tier_every": "walk to each facility the circle requires · 各必配设施步行距离:",
    },
}
#: The life-circle tiers of GB 50180-2018 by name (minutes → 中文).
TIER_ZH = {5: "五分钟生活圈", 10: "十分钟生活圈", 15: "十五分钟生活圈"}
#: A home's life circle of a tier, by class (`LIFE_CIRCLE_COLOURS`).
TIER_CLASSES = (
    "complete · 齐全",
    "1 missing · 缺1项",
    "2 missing · 缺2项",
    "3 or more missing · 缺3项及以上",
    "not measured · 未计算",
)
#: Where a facility's capacity came from (``capacity_source``), in words.
CAPACITY_FROM = {
    "capacity": "OSM tag capacity · OSM容量标签",
    "beds": "OSM tag beds · OSM床位标签",
    "school:capacity": "OSM tag school:capacity · OSM学校容量标签",
    "file": "planners' file · 规划数据文件",
    "default": "DEFAULT: no capacity tagged, the standard's typical size · 默认值：未标注容量",
}


def _in_words(text: str, slug: str) -> str:
    """A note as a planner reads it: no leading district slug, column names in words."""
    import re

    plain = re.sub(r"^\s*" + re.escape(slug) + r":\s*", "", text)
    return " ".join(columns_in_words(plain).split())


def _completeness_line(result: Assessment, district_id: str) -> str:
    """How complete the district's mapped buildings look, in words for the legend."""
    comp = result.completeness
    if comp is None or district_id not in set(comp["district_id"]):
        return ""
    pct = comp.set_index("district_id").loc[district_id, "building_completeness_pct"]
    if pct != pct:
        return "Buildings mapped: completeness unknown (no residential land or known total)"
    shown = figure_text(pct, decimals=0)
    return f"Buildings mapped: ≈ {shown}% complete · 建筑物完整度约 {shown}%"


def _rule_text(std: Standard) -> str:
    """The standard's distance rule in words: per street context where it has them."""
    if std.context_thresholds_m:
        parts = " · ".join(
            f"{metres_text(v)} {CONTEXT_WORDS.get(k, k.replace('_', ' '))}"
            for k, v in std.context_thresholds_m.items()
        )
        return f"{parts} (by the street a home stands on · 按住宅所在街道)"
    return f"≤ {metres_text(std.threshold_m)}"


def _context_rule(std: Standard, context: str) -> str:
    radius = std.context_thresholds_m.get(context, std.threshold_m)
    return f"≤ {metres_text(radius)} ({CONTEXT_WORDS.get(context, context.replace('_', ' '))})"


def _whole(values: np.ndarray) -> np.ndarray:
    """Values rounded to whole units as `figures` rounds them (half to even on the stored
    digits): numpy's rint, and `round_figures` itself wherever a value lies near a half."""
    v = np.asarray(values, dtype=float)
    out = np.rint(v)
    near = np.abs(v - np.floor(v) - 0.5) < 1e-6
    if near.any():
        out[near] = round_figures(v[near], 0)
    return out


def _lookup(texts: np.ndarray) -> dict[str, Any]:
    """Text per item as a table of its distinct values and an index into it per item."""
    table, index = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    return {"table": table.tolist(), "index": _varints(index)}


def _walk_lookup(dist: np.ndarray, status: np.ndarray, limit_m: float) -> dict[str, Any]:
    """Each home's walk as text: whole metres (`figures.count_text`), "> limit" beyond the
    search limit, `EMPTY` where no walk is known; as a table and an index per home."""
    whole = _whole(dist)
    key = np.where(np.isnan(whole), -1.0, whole)
    past = status == cov.STATUS_BEYOND_LIMIT
    values, index = np.unique(key, return_inverse=True)
    table = [EMPTY if v < 0 else f"{count_text(v)} m" for v in values]
    index = index.astype(np.int64)
    if past.any():
        index[past] = len(table)
        table.append(f"> {count_text(limit_m)} m")
    return {"table": table, "index": _varints(index)}


def _codes(band: np.ndarray, status: np.ndarray) -> str:
    """A byte per home: its band's code (`BAND_KEYS`) and its status's (`STATUS_WORDS`) × 4."""
    import base64

    b = pd.Categorical(band, categories=BAND_KEYS).codes
    s = pd.Categorical(status, categories=list(STATUS_WORDS)).codes
    b = np.where(b < 0, BAND_KEYS.index("unknown"), b)
    s = np.where(s < 0, 0, s)
    return base64.b64encode((b | (s << 2)).astype(np.uint8).tobytes()).decode("ascii")


def _bands(demand: pd.DataFrame, key: str, thr: np.ndarray | float) -> np.ndarray:
    """Each home's band as measured (``<key>_band``); a table without that column (an after-sites
    walk, a hand-built assessment) has its bands taken by the one rule (`distance_band`)."""
    if f"{key}_band" in demand:
        return demand[f"{key}_band"].to_numpy(dtype=object)
    return distance_band(
        demand[f"{key}_dist_m"].to_numpy(dtype=float), thr, demand[f"{key}_status"].to_numpy()
    )


def _bytes(codes: np.ndarray) -> str:
    """A byte per home, base64 (``walkcover.bytes`` on the page)."""
    import base64

    return base64.b64encode(np.asarray(codes, dtype=np.uint8).tobytes()).decode("ascii")


def _text_lookup(values: np.ndarray, text: Any) -> dict[str, Any]:
    """Per home a text made by `text` from its value (NaN: `EMPTY`), as a table of the distinct
    texts and an index per home (`_lookup`); `text` is called once per distinct value."""
    v = np.asarray(values, dtype=float)
    key = np.where(np.isnan(v), -np.inf, v)
    distinct, index = np.unique(key, return_inverse=True)
    table = [EMPTY if not np.isfinite(d) else text(float(d)) for d in distinct]
    return {"table": table, "index": _varints(index.astype(np.int64))}


def _capacity_words(std: Standard) -> tuple[str, str]:
    """The unit of a standard's access rule in English and Chinese (``places``, ``学位``;
    ``容量``, capacity, where the standards file gives no Chinese word)."""
    rule = std.access
    assert rule is not None
    return rule.capacity_unit, rule.capacity_unit_zh or "容量"


def _access_reference(std: Standard, row: pd.Series | None) -> tuple[float, bool]:
    """What a home's capacity per 1,000 residents is held against: the standard's norm, or (a
    standard with none) the district's mean; and whether it is the norm."""
    rule = std.access
    assert rule is not None
    if rule.norm_per_1000 is not None:
        return float(rule.norm_per_1000), True
    return _summary_figure(row, "access_mean_per_1000"), False


def _access_codes(values: np.ndarray, reference: float) -> np.ndarray:
    """A class per home (`ACCESS_COLOURS`): 0 at or above `reference` (the norm), 1 below it,
    2 below half of it, 3 no capacity within reach (0), 4 not measured (NaN). A home is below
    the norm exactly where the summary counts it so (``access < norm``)."""
    v = np.asarray(values, dtype=float)
    ok = ~np.isnan(v)
    ref = reference if np.isfinite(reference) else 0.0
    with np.errstate(invalid="ignore"):
        return np.select([~ok, v <= 0, v >= ref, v >= ref / 2], [4, 3, 0, 1], default=2).astype(
            np.uint8
        )


def _access_labels(std: Standard, reference: float, is_norm: bool) -> list[str]:
    """The access classes in words (`_access_codes`), with the bounds they stand for."""
    unit, unit_zh = _capacity_words(std)
    if is_norm:
        full, half = setting_text(reference), setting_text(reference / 2)
        return [
            f"at or above the norm (≥ {full}) · 达到标准",
            f"below the norm ({half}–{full}) · 低于标准",
            f"below half the norm (< {half}) · 不足标准一半",
            f"no {unit} within reach · 步行范围内无{unit_zh}",
            "not measured (no street within reach) · 未计算",
        ]
    full = figure_text(reference)
    return [
        f"at or above the district's mean (≥ {full}) · 不低于本区平均",
        "below the district's mean · 低于本区平均",
        "below half the district's mean · 不足本区平均一半",
        f"no {unit} within reach · 步行范围内无{unit_zh}",
        "not measured (no street within reach) · 未计算",
    ]


def _tiers(result: Assessment, demand: pd.DataFrame) -> dict[int, list[Standard]]:
    """The life-circle tiers the run measured (GB 50180-2018): tier → its required standards."""
    by_id = {s.id: s for s in result.standards}
    out: dict[int, list[Standard]] = {}
    for tier, ids in sorted(result.rules.life_circle_tiers().items()):
        if f"life_circle_{tier}min_complete" in demand and all(i in by_id for i in ids):
            out[int(tier)] = [by_id[i] for i in ids]
    return out


def _tier_name(tier: int) -> str:
    return f"{TIER_ZH.get(tier, f'{tier}分钟生活圈')} {tier}-minute life circle (GB 50180-2018)"


def _tier_data(demand: pd.DataFrame, tier: int, required: list[Standard]) -> dict[str, Any]:
    """A life-circle view: a class per home (`LIFE_CIRCLE_COLOURS`: complete, missing 1, 2, 3 or
    more, not measured) from ``life_circle_<t>min_complete`` and ``_found``; the state in words
    and the required facilities its home lacks (``<id>_covered``), as lookups."""
    n = len(required)
    complete = pd.array(demand[f"life_circle_{tier}min_complete"], dtype="boolean")
    found = pd.array(demand[f"life_circle_{tier}min_found"], dtype="Int64")
    measured = ~np.asarray(complete.isna(), dtype=bool)
    missing = n - found.fillna(n).to_numpy(dtype=np.int64)
    done = complete.fillna(False).to_numpy(dtype=bool)
    codes = np.where(~measured, 4, np.where(done, 0, np.clip(missing, 1, 3))).astype(np.uint8)
    state = np.where(~measured, -1, np.where(done, 0, np.maximum(missing, 1)))

    def state_text(k: float) -> str:
        if k == 0:
            return f"complete ({n} of {n}) · 齐全（{n}项）"
        return f"missing {int(k)} of {n} · 缺{int(k)}项（共{n}项）"

    mask = np.zeros(len(demand), dtype=np.int64)
    for j, std in enumerate(required):
        lacks = ~demand[f"{std.id}_covered"].fillna(False).to_numpy(dtype=bool)
        mask |= lacks.astype(np.int64) << j
    mask = np.where(measured & ~done, mask, -1)

    def lacking(m: float) -> str:
        names = [f"{s.name_zh} {s.name}".strip() for j, s in enumerate(required) if int(m) >> j & 1]
        return "; ".join(names) or EMPTY

    return {
        "kind": "tier",
        "name": _tier_name(tier),
        "codes": _bytes(codes),
        "colours": list(LIFE_CIRCLE_COLOURS),
        "labels": list(TIER_CLASSES),
        "state": _text_lookup(np.where(state < 0, np.nan, state), state_text),
        "missing": _text_lookup(np.where(mask < 0, np.nan, mask), lacking),
    }


def _choice_data(demand: pd.DataFrame, std: Standard) -> dict[str, Any] | None:
    """A standard's choice (``choice: true``) per home: its 2nd and 3rd nearest facility within
    the standard (whole metres, "none" where there is none) and how many lie within, as lookups."""
    sid = std.id
    cols = [f"{sid}_nearest2_m", f"{sid}_nearest3_m", f"{sid}_n_within"]
    if not std.choice or not all(c in demand for c in cols):
        return None
    within = pd.array(demand[f"{sid}_n_within"], dtype="Int64")
    measured = ~np.asarray(within.isna(), dtype=bool)

    def nearest(col: str) -> dict[str, Any]:
        d = _whole(demand[col].to_numpy(dtype=float))
        # -1: measured, and no such facility within the standard's distance
        d = np.where(np.isnan(d) & measured, -1.0, d)
        return _text_lookup(
            d, lambda v: "none within reach · 步行范围内无" if v < 0 else f"{count_text(v)} m"
        )

    return {
        "second": nearest(f"{sid}_nearest2_m"),
        "third": nearest(f"{sid}_nearest3_m"),
        "within": _text_lookup(within.to_numpy(dtype=float, na_value=np.nan), count_text),
    }


def _access_data(demand: pd.DataFrame, std: Standard) -> dict[str, Any] | None:
    """A standard's capacity per 1,000 residents per home (an ``access`` rule), as a lookup of
    its figures (`figures.figure_text`), and the label that names its unit."""
    if std.access is None or f"{std.id}_access" not in demand:
        return None
    unit, unit_zh = _capacity_words(std)
    return {
        "label": f"{unit} per 1,000 residents · 每千人{unit_zh}",
        "value": _text_lookup(demand[f"{std.id}_access"].to_numpy(dtype=float), figure_text),
    }


def _served(summary: pd.DataFrame | None, sid: str) -> bool:
    """Whether a facility of the standard can serve the district (its summary row says so): where
    none can, its choice and capacity are no data, never "none within reach" or 0."""
    if summary is None:
        return True
    if sid not in summary.index:
        return False
    return bool(_summary_figure(summary.loc[sid], "facilities_in_reach") > 0)


def _views(
    result: Assessment,
    demand: pd.DataFrame,
    standards: list[Standard],
    summary: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """The views beyond the standards, in the order of their keys (after the standards'): each
    standard's capacity per 1,000 residents (an ``access`` rule; where a facility of it can serve
    the district, `_served`), then each life-circle tier."""
    views: list[dict[str, Any]] = []
    for k, std in enumerate(standards):
        if std.access is not None and f"{std.id}_access" in demand and _served(summary, std.id):
            unit, unit_zh = _capacity_words(std)
            views.append(
                {
                    "kind": "access",
                    "of": k,
                    "std": std,
                    "name": f"{std.name_zh} {std.name}: {unit} per 1,000 residents · "
                    f"每千人{unit_zh}",
                }
            )
    for tier, required in _tiers(result, demand).items():
        views.append({"kind": "tier", "tier": tier, "required": required, "name": _tier_name(tier)})
    return views


class HomesLayer(MacroElement):
    """Every home of the district once, as ``L.WalkcoverHomes`` (see the module's notes)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = new L.WalkcoverHomes({{ this.data }});
        walkcover.homes = {{ this.get_name() }};
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__()
        self._name = "WalkcoverHomes"
        self.data = defer_data(self, js_value(data))

    def render(self, **kwargs: Any) -> Any:
        _need_script(self, DISTRICT_JS)
        super().render(**kwargs)


class _StandardSwitch(MacroElement):
    """When its standard's layer (or a view's: a standard's capacity, a life circle) is shown:
    recolour the homes, show its legend, and keep its facilities and sites over the homes
    (`walkcover.show`). `shared` layers of another standard's layer are added to its own (a
    Leaflet layer in two groups of the radio choice is on the map while either is)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        walkcover.front[{{ this.k }}] = [{{ this.front }}];
        {% if this.shared %}
        [{{ this.shared }}].forEach(function (l) { {{ this._parent.get_name() }}.addLayer(l); });
        {% endif %}
        {{ this._parent.get_name() }}.on('add', function () { walkcover.show({{ this.k }}); });
        {% endmacro %}
        """
    )

    def __init__(
        self,
        k: int,
        front: Sequence[folium.Element],
        shared: Sequence[folium.Element] = (),
    ) -> None:
        super().__init__()
        self._name = "StandardSwitch"
        self.k = k
        self._front = list(front)
        self._shared = list(shared)

    def render(self, **kwargs: Any) -> Any:
        self.front = ", ".join(e.get_name() for e in self._front)
        self.shared = ", ".join(e.get_name() for e in self._shared)
        super().render(**kwargs)


class _AfterSwitch(MacroElement):
    """A standard's "after proposed sites" box: ticked, the homes take their walk after the
    sites, but only while that standard is shown (`walkcover.after`)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.on('add', function () { walkcover.after({{ this.k }}, true); });
        {{ this._parent.get_name() }}.on('remove', function () { walkcover.after({{ this.k }}, false); });
        {% endmacro %}
        """
    )

    def __init__(self, k: int) -> None:
        super().__init__()
        self._name = "AfterSwitch"
        self.k = k


class FacilityClusters(folium.map.Layer):
    """An ``L.markerClusterGroup`` (vendored Leaflet.markercluster) holding its child layers'
    markers: a count in a small circle where they crowd, each facility from zoom 17 on."""

    # the count as `count_text` writes it (thousands separated: `COUNT_JS`), in a circle wide
    # enough for "1,234"
    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.markerClusterGroup({
            animate: false, showCoverageOnHover: false, spiderfyOnMaxZoom: false,
            disableClusteringAtZoom: 17, maxClusterRadius: 60, removeOutsideVisibleBounds: true,
            iconCreateFunction: function (cluster) {
                var n = cluster.getChildCount(),
                    size = n < 10 ? 18 : n < 100 ? 22 : n < 1000 ? 26 : 34;
                return L.divIcon({html: '<div>' + ({{ this.count_js }})(n) + '</div>',
                                  className: 'walkcover-cluster', iconSize: L.point(size, size)});
            }
        });
        {{ this.get_name() }}.once('add', function () {
            {{ this.get_name() }}.addLayers([{{ this.points }}.walkcoverFill()]);
        });
        {% endmacro %}
        """
    )

    def __init__(self, points: PackedGeoJson) -> None:
        super().__init__(name=None, overlay=True, control=False, show=True)
        self._name = "FacilityClusters"
        # the points' layer is made (its script and popups) but added to no map: the clusters
        # take its markers when they are first shown
        points.show = False
        self.add_child(points)
        self.points = points.get_name()
        self.count_js = COUNT_JS

    def render(self, **kwargs: Any) -> Any:
        figure = _figure(self)
        _need_script(self, CLUSTER_JS, css=CLUSTER_CSS)
        if "walkcover_cluster_css" not in figure.header._children:
            figure.header.add_child(folium.Element(_CLUSTER_CSS), name="walkcover_cluster_css")
        super().render(**kwargs)


_CLUSTER_CSS = (
    f"<style>.walkcover-cluster div{{width:100%;height:100%;border-radius:50%;"
    f"background:rgba(255,255,255,.85);border:2px solid {FACILITY_COLOUR[0]};"
    f"color:{FACILITY_COLOUR[0]};font:bold 10px/1 sans-serif;display:flex;align-items:center;"
    "justify-content:center;box-sizing:border-box}</style>"
)


def district_map(
    result: Assessment,
    district_id: str,
    *,
    proposed: gpd.GeoDataFrame | None = None,
    after: dict[str, pd.DataFrame] | None = None,
    tiles: str | None = None,
    show: str | None = None,
) -> folium.Map:
    """The interactive map of one district: a standard at a time, picked in the layer control.

    Every home is drawn once, by its footprint (a small square where it would be too small to
    see), coloured by its distance band under the standard shown; its tooltip gives its walk and
    the rule that applies to it (per street context for toilets), its popup the walk of every
    standard. Each standard's layer adds the land within walking distance, the 200 largest gaps,
    the facilities (clustered where there are hundreds; popup: name, kind, ``osm_id``, how many
    homes have it as their nearest, by band) and, where given, the proposed sites. With `after`
    (per standard, each home's walk once its proposed sites are built:
    `walkcover.siting.walks_after`) a box, off at first, paints the homes by that walk while its
    standard is shown. The legend follows the standard shown: its rule, plan clause, the
    district's figure and target.

    A standard with an ``access`` rule has a second layer, its capacity per 1,000 residents: the
    homes painted at or above the norm, below it, below half of it, with none within reach, or
    not measured, under the standard's facilities (their popups give each one's capacity and
    where it came from, the default flagged); its legend states the norm, its unit and basis, the
    district's figures and how many facilities use the default capacity. A standards file with
    life circles (GB 50180-2018) has a layer per tier: each home complete, or missing 1, 2, or 3
    or more of the tier's facilities (its popup names them), with the district's share complete.

    The cyclic garbage collector is paused while the map is built (`walkcover._gc`): its passes
    over a city's results, set off by the many small objects folium makes, cost more than the map.
    """
    with collector_paused():
        return _district_map(
            result, district_id, proposed=proposed, after=after, tiles=tiles, show=show
        )


def _district_map(
    result: Assessment,
    district_id: str,
    *,
    proposed: gpd.GeoDataFrame | None,
    after: dict[str, pd.DataFrame] | None,
    tiles: str | None,
    show: str | None,
) -> folium.Map:
    d_row = result.districts.set_index("district_id").loc[district_id]
    dgeom = result.district_geometry(district_id)
    d4326 = result.districts.set_index("district_id").geometry[district_id]
    bounds = np.asarray(d4326.bounds)
    m = _base_map(bounds, tiles)
    # the district is fitted once, clear of the legend (`_Opening`), not first by the base map's
    # animated fit, whose zoom would end after it
    for name, child in list(m._children.items()):
        if isinstance(child, folium.map.FitBounds):
            del m._children[name]
    label = f"{d_row['name']} / {d_row['name_en']}"
    demand, _ = result.district_demand(district_id)
    areas = result.service_areas(district_id).set_index("standard")
    standards = list(result.standards)
    initial = next((k for k, s in enumerate(standards) if s.id == show), 0)
    _add_streets(m, result, dgeom)
    summary = result.summary[result.summary["district_id"] == district_id].set_index("standard")
    views = _views(result, demand, standards, summary)
    view_key = {id(v): len(standards) + j for j, v in enumerate(views)}
    homes = HomesLayer(
        _homes_data(
            result,
            demand,
            standards,
            initial=initial,
            proposed=proposed,
            after=after,
            views=views,
            summary=summary,
        )
    )
    sites_of: dict[str, int] = {}
    for k, std in enumerate(standards):
        group = folium.FeatureGroup(  # one standard at a time: base layers, a radio choice
            name=_layer_name(f"{std.name_zh} {std.name} ({distance_text(std)})"),
            overlay=False,
            show=k == initial,
        )
        _add_service_area(group, result, std, areas.geometry[std.id])
        row = summary.loc[std.id] if std.id in summary.index else None
        if row is not None and not row["facilities_in_reach"]:
            # no facility in reach: no data, said so; the whole district is no gap to rank
            _add_no_data(group, [d4326.representative_point()])
        else:
            _add_gaps(group, result, std, district_id)
        front, drawn = _add_facilities(group, result, std, demand, district_id, dgeom)
        facilities_front = list(front)
        if proposed is not None and len(proposed):
            mine = proposed[proposed["standard"] == std.id]
            sites_of[std.id] = len(mine)
            front += _add_proposed(group, mine)
        group.add_child(_StandardSwitch(k, front))
        group.add_to(m)
        for view in views:
            if view["kind"] == "access" and view["of"] == k:
                # its capacity per 1,000 residents: the homes painted against the norm, under the
                # same facilities (shared with the standard's layer, drawn once)
                shown = folium.FeatureGroup(
                    name=_layer_name(view["name"]), overlay=False, show=False
                )
                shown.add_child(_StandardSwitch(view_key[id(view)], facilities_front, drawn))
                shown.add_to(m)
    for view in views:
        if view["kind"] == "tier":  # each life circle: the homes painted by its completeness
            shown = folium.FeatureGroup(name=_layer_name(view["name"]), overlay=False, show=False)
            shown.add_child(_StandardSwitch(view_key[id(view)], []))
            shown.add_to(m)
    for k, std in enumerate(standards):
        if (after or {}).get(std.id) is None or proposed is None:
            continue
        # before/after: the homes once the proposed sites are built, while the standard is shown
        group = folium.FeatureGroup(
            name=_layer_name(
                f"{std.name_zh} {std.name}: after {sites_of.get(std.id, 0)} proposed site(s)"
                " · 建议选址后"
            ),
            overlay=True,
            show=False,
        )
        group.add_child(_AfterSwitch(k))
        group.add_to(m)
    homes.add_to(m)  # after the standards' layers: over their gaps, which homes answer before
    # the boundary as a line: as a polygon (even unfilled) it would catch every hover and click
    # inside the district on Leaflet's canvas, and no gap or facility would answer
    folium.GeoJson(
        _geojson(
            gpd.GeoDataFrame({"name": [label]}, geometry=[dgeom.boundary], crs=result.crs),
            simplify_m=1.0,
        ),
        name=_layer_name("District boundary · 区界"),
        style_function=lambda _f: {"color": "#000", "weight": 2.5},
        interactive=False,
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    warnings = [
        _in_words(n.text, str(d_row["slug"]))
        for n in result.district_notes(d_row["slug"], kind=DEMAND_NOTE)
    ]
    # the official figure's land holds few residents: said with the standards that divide by it
    land_warnings = [
        _in_words(n.text, str(d_row["slug"]))
        for n in result.district_notes(d_row["slug"], kind=OFFICIAL_LAND_NOTE)
    ]
    facts = [_completeness_line(result, district_id)]
    figure = _figure(m)
    figure.html.add_child(
        folium.Element(
            _legend(
                result,
                label,
                summary,
                initial,
                sites_of,
                warnings=warnings,
                land_warnings=land_warnings,
                facts=facts,
                views=views,
                district_id=district_id,
            )
        )
    )
    m.add_child(_Opening(initial, bounds))
    return m


class _Opening(MacroElement):
    """The opening view: the first standard's legend and colours, the district fitted clear of
    the legend (`walkcover.fit`)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        walkcover.show({{ this.k }});
        walkcover.fit({{ this._parent.get_name() }}, {{ this.bounds }}, {{ this.pad }});
        {% endmacro %}
        """
    )

    def __init__(self, k: int, bounds: np.ndarray) -> None:
        super().__init__()
        self._name = "Opening"
        self.k = k
        x0, y0, x1, y1 = (float(v) for v in bounds)
        self.bounds = js_value([[y0, x0], [y1, x1]])
        self.pad = FIT_PADDING_PX[0]


def _homes_data(
    result: Assessment,
    demand: gpd.GeoDataFrame,
    standards: list[Standard],
    *,
    initial: int,
    proposed: gpd.GeoDataFrame | None,
    after: dict[str, pd.DataFrame] | None,
    views: Sequence[dict[str, Any]] = (),
    summary: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """What ``L.WalkcoverHomes`` draws: the footprints once, and per standard a byte per home
    (band and status) and its walk as text, with its choice (2nd and 3rd nearest, how many
    within) and capacity per 1,000 residents where it measures them; per view (`_views`) a byte
    per home (its class) and, for a life circle, its state and what it lacks as text."""
    data: dict[str, Any] = {
        "geometry": packed_homes(
            result.network,
            demand.geometry.to_numpy(),
            result.crs,
            (FINE_STEP_M, HOMES_SIMPLIFY_M),
            lambda: pack_geometry(
                demand.geometry.to_numpy(),
                result.crs,
                step_m=FINE_STEP_M,
                simplify_m=HOMES_SIMPLIFY_M,
            ),
        ),
        "initial": initial,
        "colours": [BANDS[b][0] for b in BAND_KEYS],
        "bands": [BANDS[b][1] for b in BAND_KEYS],
        "statuses": list(STATUS_WORDS.values()),
        "words": _WORDS,
        "standards": [],
        "after": {},
    }
    for std in standards:
        sid = std.id
        status = demand[f"{sid}_status"].to_numpy(dtype=object)
        limit = result.passes[sid].limit_m
        entry: dict[str, Any] = {
            "name": f"{std.name_zh} {std.name}",
            "rule": _rule_text(std),
            "codes": _codes(demand[f"{sid}_band"].to_numpy(dtype=object), status),
            "walk": _walk_lookup(demand[f"{sid}_dist_m"].to_numpy(float), status, limit),
            "context": None,
        }
        if std.context_thresholds_m and f"{sid}_context" in demand:
            ctx = (
                demand[f"{sid}_context"]
                .astype(object)
                .where(demand[f"{sid}_context"].notna(), std.default_context)
            )
            rules = {c: _context_rule(std, str(c)) for c in pd.unique(ctx)}
            entry["context"] = _lookup(ctx.map(rules).to_numpy())
        # only where measured and a facility serves the district (else no data, as its layer
        # says): a page of standards without them carries nothing more
        served = _served(summary, sid)
        for key, made in (
            ("choice", _choice_data(demand, std) if served else None),
            ("access", _access_data(demand, std) if served else None),
        ):
            if made is not None:
                entry[key] = made
                data["words"] = {**data["words"], **_MORE_WORDS.get(key, {})}
        data["standards"].append(entry)
    if views:
        data["views"] = []
        data["words"] = {**data["words"], **_MORE_WORDS["views"]}
    for view in views:
        if view["kind"] == "access":
            std = view["std"]
            row = None if summary is None or std.id not in summary.index else summary.loc[std.id]
            reference, is_norm = _access_reference(std, row)
            data["views"].append(
                {
                    "kind": "access",
                    "of": view["of"],
                    "name": view["name"],
                    "codes": _bytes(
                        _access_codes(demand[f"{std.id}_access"].to_numpy(float), reference)
                    ),
                    "colours": list(ACCESS_COLOURS),
                    "labels": _access_labels(std, reference, is_norm),
                }
            )
        else:
            tier_data = _tier_data(demand, view["tier"], view["required"])
            ids = [s.id for s in standards]
            tier_data["members"] = [ids.index(s.id) for s in view["required"]]
            data["views"].append(tier_data)
    for k, std in enumerate(standards):
        walks = (after or {}).get(std.id)
        if walks is None or proposed is None:
            continue
        status = walks["status"].to_numpy(dtype=object)
        band = (
            walks["band"].to_numpy(dtype=object)
            if "band" in walks
            else distance_band(walks["dist_m"].to_numpy(float), std.threshold_m, status)
        )
        data["after"][k] = {
            "codes": _codes(band, status),
            "walk": _walk_lookup(
                walks["dist_m"].to_numpy(float), status, result.passes[std.id].limit_m
            ),
        }
    residents = _whole(demand["residents"].to_numpy(float))
    data["residents"] = _lookup(
        np.array([count_text(v) for v in np.unique(residents)], dtype=object)[
            np.unique(residents, return_inverse=True)[1]
        ]
        if len(residents)
        else np.array([], dtype=object)
    )
    ids = demand["osm_id"].astype(str).tolist()
    parts = [i.partition("/") for i in ids]
    if ids and all(
        t in ("node", "way", "relation") and n.isascii() and n.isdigit() for t, _, n in parts
    ):
        data["osm_type"] = _lookup(np.array([t for t, _, _ in parts], dtype=object))
        data["osm_num"] = _varints(np.array([int(n) for _, _, n in parts], dtype=np.int64))
    else:
        data["osm_type"] = _lookup(np.array(ids, dtype=object))
        data["osm_num"] = ""
    return data


def _legend(
    result: Assessment,
    district_label: str,
    summary: pd.DataFrame,
    initial: int,
    sites_of: dict[str, int],
    *,
    warnings: Sequence[str] = (),
    land_warnings: Sequence[str] = (),
    facts: Sequence[str] = (),
    views: Sequence[dict[str, Any]] = (),
    district_id: str = "",
) -> str:
    """The legend: the district, then the standard shown (a section per standard, one shown at a
    time by ``walkcover.legendFor``): its name, rule, the district's figure against its target
    and the plan's clause; the bands and symbols; the notes that bear on every standard. A view
    (a standard's capacity, a life circle) has a section of its own with its classes, in place
    of the bands. `land_warnings` (the official figure's land holds few of the district's
    residents) go with the standards whose official figure divides by that land."""
    warn = "".join(
        f"<div style='color:#b35806;margin:2px 0'>⚠ {html_text(w)}</div>" for w in warnings
    ) + "".join(f"<div style='color:#444;margin:2px 0'>{html_text(f)}</div>" for f in facts if f)
    bands = "".join(_key(_square(c), html_text(label)) for c, label in BANDS.values())
    sections = []
    for k, std in enumerate(result.standards):
        row = summary.loc[std.id] if std.id in summary.index else None
        reason = None if row is None else row["no_data_reason"]
        no_data = (
            row is None
            or (isinstance(reason, str) and reason != "")
            or not row["facilities_in_reach"]
        )
        figure = pct_text(
            None if row is None else row["residents_covered_pct"], no_data=no_data, unit="%"
        )
        target = target_text(std.target_pct, unit="%")
        meets = meets_text(None if row is None else row["meets_target"], no_data=no_data)
        clause = f"{std.citation.section} {std.citation.text}".strip()
        plan = ""
        # the plan's own count of new facilities is for the city it was written for (Zhengzhou's
        # 1,450 toilets are not the Helsinki sample's)
        if std.plan_new is not None and result.rules.city == result.city.id:
            plan = (
                f" · plan: {count_text(std.plan_new.count)} new ({std.plan_new.scope}) 规划新增"
                f" {count_text(std.plan_new.count)}"
            )
        official = (
            row is not None and row["area_covered_euclid_pct"] == row["area_covered_euclid_pct"]
        )
        land = f" live on {std.denominator.replace('_', ' ')},"
        land_warn = "".join(
            f"<div style='color:#b35806;margin:2px 0'>⚠ {html_text(w)}</div>"
            for w in land_warnings
            if official and land in w
        )
        after_note = ""
        if std.id in sites_of:
            after_note = (
                f"<div data-after='{k}' hidden style='color:{SITE_OUTLINE}'>Homes show their walk "
                f"after the {sites_of[std.id]} proposed site(s) · 显示建议选址后的步行距离</div>"
            )
        sections.append(
            f"<div data-standard='{k}'{'' if k == initial else ' hidden'}>"
            f"<div style='font-weight:bold;font-size:12px'>{html_text(std.name_zh)} "
            f"{html_text(std.name)}</div>"
            f"<div>Rule · 标准: {html_text(_rule_text(std))}</div>"
            f"<div>Residents within it · 覆盖居民: <b>{html_text(figure)}</b> · target 目标 "
            f"{html_text(target)} {html_text(meets if meets != NO_DATA else '')}</div>"
            f"<div style='color:#555'>Plan · 依据: {html_text(clause)}{html_text(plan)}</div>"
            f"{land_warn}{after_note}</div>"
        )
    n = len(result.standards)
    for j, view in enumerate(views):
        if view["kind"] == "access":
            std = view["std"]
            row = summary.loc[std.id] if std.id in summary.index else None
            body = _access_legend(std, row)
        else:
            body = _tier_legend(result, district_id, view["tier"], view["required"])
        sections.append(
            f"<div data-standard='{n + j}' data-view hidden>"
            f"<div style='font-weight:bold;font-size:12px'>{html_text(view['name'])}</div>"
            f"{body}</div>"
        )
    symbols = (
        "<div data-symbols>"
        + _key(f"<span style='color:{FACILITY_COLOUR[0]}'>◉</span>", "facility · 设施")
        + _key(
            _square(SERVICE_AREA_COLOUR, extra="opacity:.35"), "within walking distance · 步行可达"
        )
        + _key(
            f"<span style='border:2px dashed {GAP_COLOUR};display:inline-block;width:8px;"
            "height:8px'></span>",
            "gap · 缺口",
        )
        + (
            _key(f"<span style='color:{SITE_COLOUR}'>●</span>", "proposed site · 建议选址")
            if sites_of
            else ""
        )
        + "</div>"
    )
    sample = (
        " · SAMPLE district, not an administrative unit · 样例区"
        if result.districts["is_sample"].any()
        else ""
    )
    # collapsible (click its title): on a small screen it opens folded (walkcover.fit)
    return (
        "<div id='walkcover-legend' style='position:fixed;bottom:12px;left:12px;z-index:9999;"
        "background:white;padding:5px 9px;border:1px solid #999;border-radius:4px;"
        "font:11px/1.35 sans-serif;max-width:360px;max-height:45%;overflow:auto'>"
        "<details open><summary style='font-weight:bold;cursor:pointer'>"
        f"{html_text(district_label)}{sample}</summary>"
        f"{''.join(sections)}<div data-bands style='margin-top:3px'>{bands}</div>{symbols}{warn}"
        "<div style='color:#555;margin-top:3px'>Walking distance over OpenStreetMap streets · "
        f"沿街道步行距离；{html_text(result.rules.document)} {html_text(result.rules.title)}</div>"
        "</details></div>"
    )


def _square(colour: str, *, extra: str = "") -> str:
    """A legend's 10-pixel colour square."""
    more = f";{extra}" if extra else ""
    return (
        f"<span style='background:{colour};display:inline-block;width:10px;height:10px{more}'>"
        "</span>"
    )


def _key(symbol: str, words: str) -> str:
    """One entry of the legend's key (`symbol`, then `words`, both HTML): kept whole on its line
    where it fits, beside the others; a longer one wraps within the legend's width, its words
    indented past the symbol (the bands' "unreachable, not snapped, or no facility in the data ·
    不可达/未匹配/无设施" ran out of the box as one unbroken line)."""
    return (
        "<span class='walkcover-key' style='display:inline-flex;align-items:baseline;"
        "max-width:100%;margin-right:8px;vertical-align:top'>"
        f"<span style='flex:none;margin-right:3px'>{symbol}</span>"
        f"<span style='min-width:0;overflow-wrap:anywhere'>{words}</span></span>"
    )


def _swatches(colours: Sequence[str], labels: Sequence[str]) -> str:
    """Classes as coloured squares and their words, one a line."""
    return "".join(
        f"<div><span style='background:{c};display:inline-block;width:10px;height:10px;"
        f"margin-right:4px;vertical-align:middle'></span>{html_text(label)}</div>"
        for c, label in zip(colours, labels)
    )


def _summary_figure(row: pd.Series | None, col: str) -> float:
    """A summary figure of the district (NaN where the row or the column is absent)."""
    if row is None or col not in row.index:
        return float("nan")
    return float(pd.to_numeric(pd.Series([row[col]]), errors="coerce").iloc[0])


def _access_legend(std: Standard, row: pd.Series | None) -> str:
    """A standard's capacity view in the legend: what a home's figure is (E2SFCA), the norm it is
    held against with its unit and basis, the district's figures, the facilities at the default
    capacity, and the classes."""
    rule = std.access
    assert rule is not None
    unit, unit_zh = _capacity_words(std)
    reference, is_norm = _access_reference(std, row)
    none = row is None or not _summary_figure(row, "facilities_in_reach")
    lines = [
        f"Each home: {unit} per 1,000 residents within walking reach ({metres_text(std.threshold_m)}, "
        f"E2SFCA) · 每千人步行可达{unit_zh}",
    ]
    if is_norm:
        lines.append(
            f"Norm · 标准: {setting_text(reference)} {unit} per 1,000 residents · "
            f"每千人{setting_text(reference)}{unit_zh} "
            f"({rule.norm_basis})"
        )
    else:
        lines.append(
            "No norm in the standards file · 标准文件未设千人指标: homes are held against the "
            f"district's mean ({figure_text(reference)} {unit} per 1,000) · 按本区平均值比较"
        )
    if none:
        lines.append(f"{NO_DATA}: {NO_FACILITY_WHY}")
    else:
        mean = figure_text(_summary_figure(row, "access_mean_per_1000"))
        low = figure_text(_summary_figure(row, "access_p10_per_1000"))
        lines.append(
            f"District · 本区: mean 平均 {mean}, lowest 10% 最低10% {low} {unit} per 1,000"
        )
        if is_norm:
            below = pct_text(_summary_figure(row, "residents_below_norm_pct"), unit="%")
            lines.append(f"Residents below the norm · 低于标准居民: {below}")
        if std.choice:
            choice = pct_text(_summary_figure(row, "residents_choice_pct"), unit="%")
            lines.append(f"Residents with 2 or more within reach · 可选两处及以上居民: {choice}")
        n_default = _summary_figure(row, "facilities_default_capacity")
        if n_default == n_default and n_default > 0:
            lines.append(
                f"⚠ {count_text(n_default)} of "
                f"{count_text(_summary_figure(row, 'facilities_in_reach'))} facilities use the "
                f"default of {setting_text(rule.default_capacity)} {unit} ({rule.capacity_basis}) · "
                f"采用默认容量"
            )
    return (
        "".join(f"<div>{html_text(line)}</div>" for line in lines)
        + "<div style='margin-top:3px'>"
        + _swatches(ACCESS_COLOURS, _access_labels(std, reference, is_norm))
        + "</div>"
    )


def _tier_legend(
    result: Assessment, district_id: str, tier: int, required: Sequence[Standard]
) -> str:
    """A life circle in the legend: what complete means, the district's share complete and the
    facility most often missing (its ``district_indicators`` row), and the classes."""
    rows = result.district_rows
    mine = rows[
        (rows["district_id"].astype(str) == str(district_id))
        & (rows["indicator"] == f"life_circle_{tier}min_complete_pct")
    ]
    value = mine["value"].iloc[0] if len(mine) else None
    note = str(mine["note"].iloc[0]) if len(mine) and isinstance(mine["note"].iloc[0], str) else ""
    names = "; ".join(f"{s.name_zh} {s.name}".strip() for s in required)
    lines = [
        f"Complete: every facility the circle requires within its distance · 齐全：{len(required)}"
        f"项必配设施均在服务距离内 ({names})",
        "Residents whose circle is complete · 生活圈齐全居民: "
        + pct_text(value, no_data=note.startswith("no data:"), unit="%"),
    ]
    if note:
        lines.append(note)
    return (
        "".join(f"<div>{html_text(line)}</div>" for line in lines)
        + "<div style='margin-top:3px'>"
        + _swatches(LIFE_CIRCLE_COLOURS, TIER_CLASSES)
        + "</div>"
    )


#: Above this many street edges around a district, its map draws only the street grid.
MAX_STREET_EDGES = 20_000
MINOR_WAYS = ("footway", "path", "steps", "service", "pedestrian", "corridor", "track", "cycleway")


def _add_streets(m: folium.Map, result: Assessment, dgeom: shapely.Geometry) -> None:
    """The walk network around the district as one light line layer, drawn first and deaf to
    the mouse (the standards' homes, gaps and facilities answer), so the map reads offline,
    without a base map."""
    network = result.network
    x0, y0, x1, y1 = dgeom.bounds  # the box round the district: no exact test is needed to draw
    box = (x0 - 300, y0 - 300, x1 + 300, y1 + 300)

    def packed() -> dict[str, Any] | None:
        edges = network.edges
        coords = network.edge_coords  # (the edges' shapely objects are never touched)
        near = edges_in_box(edges, box, coords=coords)
        simplify_m = 2.0
        if len(near) > MAX_STREET_EDGES:
            # a big district: the street grid only (no footways, paths, steps or service roads),
            # simplified more, so the page stays light
            minor = edges["highway"].iloc[near].isin(MINOR_WAYS).to_numpy()
            near, simplify_m = near[~minor], 5.0
        if not len(near):
            return None
        # a way's segments as one line: half the vertices to pack and draw, and simplified along
        # the way, not segment by segment (where a two-point segment has nothing to simplify)
        lines = way_lines(network, near)
        return pack_geometry(lines, result.crs, step_m=COARSE_STEP_M, simplify_m=simplify_m)

    # kept in the cache with the district's streets layer: a rerun packs none again
    streets = packed_streets(network, box, (COARSE_STEP_M, MAX_STREET_EDGES), packed)
    if streets is None:
        return
    StreetLines(
        streets,
        {"color": "#8c8c8c", "weight": 1, "opacity": 0.7},
        name=_layer_name("Streets · 街道"),
    ).add_to(m)


class StreetLines(folium.map.Layer):
    """The street grid as ``L.WalkcoverLines``, drawn straight from its packed geometry; a box
    in the layer control."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = new L.WalkcoverLines({{ this.data }}, {{ this.style }});
        {% endmacro %}
        """
    )

    def __init__(self, packed: dict[str, Any], style: dict[str, Any], *, name: str) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "StreetLines"
        self.data = defer_data(self, js_value(packed))
        self.style = js_value(style)

    def render(self, **kwargs: Any) -> Any:
        _need_script(self, DISTRICT_JS)
        super().render(**kwargs)


def _add_service_area(
    group: folium.FeatureGroup, result: Assessment, std: Standard, area: shapely.Geometry
) -> None:
    """The land within walking distance of the standard's facilities."""
    if shapely.is_empty(area):
        return
    what = f"within walking distance · 步行可达 ({_rule_text(std)})"
    PackedGeoJson(
        gpd.GeoDataFrame({"what": [what]}, geometry=[area], crs=result.crs),
        columns=["what"],
        style={"fillColor": SERVICE_AREA_COLOUR, "fillOpacity": 0.22, "weight": 0},
        step_m=COARSE_STEP_M,
        simplify_m=SERVICE_AREA_CELL_M,
    ).add_child(PropertyTable(lines=["what"])).add_to(group)


def _add_gaps(
    group: folium.FeatureGroup, result: Assessment, std: Standard, district_id: str
) -> None:
    """The 200 largest gaps, dashed red: their rank, residents, area and the walk at their
    centre (or why there is none: `figures.walk_text`), the centre's lon/lat as the run kept it
    (``centre_lon``, ``centre_lat``), beside the rule that applies there (per street context
    where the standard has it)."""
    gaps = result.gaps(district_id, std.id).head(200)
    if not len(gaps):
        return
    walk = [
        walk_text(d, status=s) for d, s in zip(gaps["dist_m_at_centre"], gaps["status_at_centre"])
    ]
    centre = [
        f"{coordinate_text(lon)}, {coordinate_text(lat)}"
        for lon, lat in zip(gaps["centre_lon"], gaps["centre_lat"])
    ]
    frame = gpd.GeoDataFrame(
        {
            "rank": gaps["rank"].astype(int).to_numpy(),
            "residents": [count_text(v) for v in gaps["residents_uncovered"]],
            "area": [f"{count_text(v)} m²" for v in gaps["area_m2"]],
            "walk": walk,
            "centre": centre,
            "rule": _rule_text(std),
        },
        geometry=gaps.geometry.to_numpy(),
        crs=result.crs,
    )
    PackedGeoJson(
        frame,
        columns=["rank", "residents", "area", "walk", "centre", "rule"],
        style={"color": GAP_COLOUR, "weight": 2, "dashArray": "5,4", "fillOpacity": 0.05},
        step_m=FINE_STEP_M,
        simplify_m=result.rules.land.cell_m,
    ).add_child(
        PropertyTable(
            ["rank", "residents", "area", "walk", "centre", "rule"],
            [
                "gap rank · 缺口排名",
                "residents not covered · 未覆盖居民",
                "area · 面积",
                "walk at its centre · 中心步行距离",
                "its centre (lon, lat) · 中心经纬度",
                "standard here · 此处标准",
            ],
        )
    ).add_to(group)


def _add_proposed(group: folium.FeatureGroup, sites: gpd.GeoDataFrame) -> list[folium.Element]:
    if not len(sites):
        return []
    pts = frame_to_lonlat(sites)
    frame = gpd.GeoDataFrame(
        {
            "what": [f"proposed site #{int(r)} · 建议选址" for r in pts["rank"]],
            # as text made by the one formatter: the report's table says the same (a number
            # here would show as the browser writes it: 134.0, 1642, 100)
            "gain": [count_text(v) for v in pts["residents_newly_covered"]],
            "cumulative": [pct_text(v) for v in pts["cumulative_coverage_pct"]],
        },
        geometry=pts.geometry.to_numpy(),
        crs=4326,
    )
    layer = folium.GeoJson(
        frame.__geo_interface__,
        marker=folium.CircleMarker(radius=9, weight=3, fill=True),
        style_function=lambda _f: {
            "color": SITE_OUTLINE,
            "fillColor": SITE_COLOUR,
            "fillOpacity": 0.9,
        },
    )
    layer.add_child(
        PropertyTable(
            ["gain", "cumulative"],
            ["residents newly covered · 新增覆盖居民", "coverage after % · 覆盖率"],
            title="what",
        )
    ).add_to(group)
    return [layer]


def _capacities(
    result: Assessment, std: Standard, counted: gpd.GeoDataFrame
) -> pd.DataFrame | None:
    """Each counted facility's capacity and where it came from, as measured (the facilities
    table's ``capacity`` and ``capacity_source`` of the standard's counted rows, in the pass's
    order); None where the standard has no access rule or they do not line up."""
    fac = result.facilities
    if std.access is None or not {"capacity", "capacity_source"} <= set(fac.columns):
        return None
    mine = fac[(fac["standard"] == std.id) & fac["counts"].astype(bool)]
    if len(mine) != len(counted) or not np.array_equal(
        mine["osm_id"].astype(str).to_numpy(), counted["osm_id"].astype(str).to_numpy()
    ):
        return None
    return mine[["capacity", "capacity_source"]].reset_index(drop=True)


def _capacity_text(std: Standard, capacity: float, source: str) -> tuple[str, str]:
    """A facility's capacity and its source in words; the default is said to be one."""
    unit, unit_zh = _capacity_words(std)
    if capacity != capacity:
        return EMPTY, EMPTY
    shown = count_text(capacity) if float(capacity).is_integer() else figure_text(capacity)
    zh = f" · {shown}{unit_zh}" if std.access and std.access.capacity_unit_zh else ""
    return f"{shown} {unit}{zh}", CAPACITY_FROM.get(source, source or EMPTY)


def _add_facilities(
    group: folium.FeatureGroup,
    result: Assessment,
    std: Standard,
    demand: gpd.GeoDataFrame,
    district_id: str,
    dgeom: shapely.Geometry,
) -> tuple[list[folium.Element], list[folium.Element]]:
    """The standard's facilities near the district; each popup says its name, kind, OSM id, its
    capacity and where that came from (a standard with an access rule; "DEFAULT" where the
    standard's typical size stands in) and how many homes have it as their nearest facility, by
    band. Points are clustered where there are more than `CLUSTER_FACILITIES`. Returns the
    layers to keep over the homes, and every layer drawn."""
    sid = std.id
    p = result.passes[sid]
    counted = p.counted
    if not len(counted):
        return [], []
    # each home's nearest facility, as the measuring pass found it (no shortest path here)
    fac_of_unit = result.district_nearest(sid, district_id)
    band = demand[f"{sid}_band"].to_numpy(dtype=object)
    near = np.flatnonzero(can_serve(counted.geometry, dgeom, p.limit_m))
    if not len(near):
        return [], []
    names3 = ("within", "near", "beyond")
    reached = fac_of_unit >= 0
    counts = {
        b: np.bincount(fac_of_unit[reached & (band == b)], minlength=len(counted))[: len(counted)]
        for b in names3
    }
    sub = counted.iloc[near]
    names = sub["name"].astype(object).where(sub["name"].notna() & (sub["name"].astype(str) != ""))
    props: dict[str, Any] = {
        "name": names.fillna("(no name · 无名称)").astype(str).to_numpy(),
        "kind": sub["matched_by"].astype(str).to_numpy(),
        "osm_id": sub["osm_id"].astype(str).to_numpy(),
    }
    lines = ["kind"]
    caps = _capacities(result, std, counted)
    if caps is not None:
        words = [
            _capacity_text(std, float(c), str(src))
            for c, src in zip(caps["capacity"].iloc[near], caps["capacity_source"].iloc[near])
        ]
        props["capacity"] = [f"capacity · 容量: {c}" for c, _ in words]
        props["capacity_from"] = [f"from · 来源: {f}" for _, f in words]
        lines += ["capacity", "capacity_from"]
    frame = gpd.GeoDataFrame(
        # the homes per band as text made by the one formatter (``1,642``): a number here would
        # show as the browser writes it (``1642``)
        {**props, **{b: [count_text(v) for v in counts[b][near]] for b in names3}},
        geometry=sub.geometry.to_numpy(),
        crs=result.crs,
    )

    def popup() -> PropertyTable:
        return PropertyTable(
            list(names3),
            [BANDS[b][1] for b in names3],
            kind="popup",
            title="name",
            lines=lines,
            osm_link=True,
            caption="homes for which it is the nearest · 以其为最近设施的住宅:",
            swatches=[BANDS[b][0] for b in names3],
        )

    columns = [*props, *names3]
    style = {"color": FACILITY_COLOUR[0], "weight": 2, "fillColor": FACILITY_COLOUR[1]}
    is_point = (frame.geom_type == "Point").to_numpy()
    front: list[folium.Element] = []
    drawn: list[folium.Element] = []
    if (~is_point).any():
        areas = PackedGeoJson(
            frame[~is_point],
            columns=columns,
            style={**style, "fillColor": FACILITY_COLOUR[0], "fillOpacity": 0.15},
            step_m=FINE_STEP_M,
            simplify_m=0.5,
        )
        areas.add_child(popup()).add_to(group)
        drawn.append(areas)
    if is_point.any():
        points = PackedGeoJson(
            frame[is_point],
            columns=columns,
            style={**style, "fillOpacity": 0.95},
            radius=6,
            step_m=FINE_STEP_M,
        )
        points.add_child(popup())
        if int(is_point.sum()) > CLUSTER_FACILITIES:
            clusters = FacilityClusters(points)
            clusters.add_to(group)
            drawn.append(clusters)
        else:
            points.add_to(group)
            front.append(points)
            drawn.append(points)
    return front, drawn
