"""The city map (districts over H3 hexagons, a standard picker) and the region map.

What a planner sees, from the top down:

* **District labels** (name, name in English, the chosen standard's figure and whether it meets
  the target; "no data · 无数据" where the standard has no facility, why in its popup), at each
  district's pole of inaccessibility (`shapely.ops.polylabel`), so a label sits well inside its
  district. A label that would cover another is hidden (the district with more residents keeps
  its label), again at every zoom, so labels never overlap.
* **Districts**, outlined, on top of everything drawn: hovering shows the district's figure, a
  click pins it. Their fill is clear (the hexagons beneath show through), grey where the standard
  has no figure.
* **Hexagons** (H3) beneath, in their own pane, clipped to the study area (the districts' union),
  drawn once for all standards and recoloured when another standard is picked.
* **A legend** tied to the chosen standard: its name, walking distance, the colour ramp and the
  target (marked on the ramp).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from folium.elements import MacroElement
from folium.template import Template

from walkcover._escape import html_text, js_value
from walkcover.assessment import Assessment
from walkcover.config.standards import Standard
from walkcover.measures.hexagons import HexCoverage
from walkcover.measures.indicators import city_figures
from walkcover.presentation.figures import (
    NO_DATA,
    NO_FACILITY_WHY,
    count_text,
    distance_text,
    distances_text,
    figure_text,
    meets_text,
    pct_text,
    round_figures,
    target_text,
)
from walkcover.presentation.palette import NO_DATA_GREY, ramp
from walkcover.presentation.web_map import (
    PropertyTable,
    _base_map,
    _figure,
    _geojson,
    _layer_name,
    add_page_code,
)

#: The pane the hexagons are drawn in: under Leaflet's overlay pane (z-index 400), where the
#: districts are, and deaf to the mouse, so hovering always reaches a district.
HEX_PANE = "walkcover-hexes"
#: Text of the labels and legends (both languages).
NO_FACILITY = NO_FACILITY_WHY
NO_RESIDENTS = "no residents in the data · 数据中无居民"
COVERED = "residents covered · 居民覆盖率"
TARGET = "target · 目标"
MEETS = "meets target · 达标"


def _ramp(pct: float | None) -> str:
    return ramp(pct)


def city_map(
    result: Assessment,
    *,
    tiles: str | None = None,
    show: str | None = None,
) -> folium.Map:
    """The city map: each district labelled with its name and the chosen standard's figure,
    hovering or clicking a district gives its figure and target, and the residents' coverage
    aggregated to H3 hexagons beneath (clipped to the study area) shows where within it.

    Parameters
    ----------
    result
        The assessment of several districts of a city.
    tiles
        A base map (`walkcover.presentation.web_map.TILES`), or None for none (offline).
    show
        The standard shown first (its id); by default the first.

    Returns
    -------
    folium.Map
        One base layer (a radio choice) per standard, the hexagons as an overlay.
    """
    d = result.districts
    d_proj = result.districts_proj if result.districts_proj is not None else d.to_crs(result.crs)
    m = _base_map(np.asarray(d.total_bounds), tiles)
    area_km2 = float(d_proj.area.sum()) / 1e6
    ids = d["district_id"].astype(str).to_numpy()
    extent_m = float(np.sqrt(max(area_km2, 1e-6)) * 1000.0)
    simplify_m = min(max(extent_m / 4000.0, 0.5), 20.0)  # ~ a pixel when the city fills a screen
    shapes = d_proj[["geometry"]].copy()
    label_points = _label_points(d_proj, crs=result.crs)

    rows = {s.id: _standard_rows(result.summary, s.id, ids) for s in result.standards}
    folium.map.CustomPane(HEX_PANE, z_index=350, pointer_events=False).add_to(m)
    hexes = (
        _hex_layer(result.hexagons, result, rows, districts=d_proj)
        if result.hexagons is not None and len(result.hexagons.cells)
        else None
    )
    if hexes is not None:
        hexes.add_to(m)

    groups, legends, labels = [], [], []
    for i, std in enumerate(result.standards):
        sid = std.id
        r = rows[sid]
        group = folium.FeatureGroup(
            name=_layer_name(f"{std.name_zh} {std.name} ({distance_text(std)})"),
            overlay=False,
            show=(sid == show) if show else (i == 0),
        )
        polys = gpd.GeoDataFrame(
            {
                "label": (d["name"] + " / " + d["name_en"]).to_numpy(),
                "standard": f"{std.name_zh} {std.name}",
                "pct": np.where(r["no_data"], np.nan, round_figures(r["pct"])),
                "covered": [
                    NO_DATA if nd else (NO_RESIDENTS if nb else pct_text(p, unit="%"))
                    for p, nd, nb in zip(r["pct"], r["no_data"], r["nobody"], strict=True)
                ],
                "target": [_target_text(t) for t in r["target"]],
                "meets": [
                    meets_text(mt, no_data=bool(nd)) for mt, nd in zip(r["meets"], r["no_data"])
                ],
                "note": np.where(
                    r["nobody"], NO_RESIDENTS, np.where(r["no_data"], NO_FACILITY, "")
                ),
            },
            geometry=shapes.geometry.to_numpy(),
            crs=result.crs,
        )
        _coverage_layer(
            _geojson(polys, simplify_m=simplify_m),
            {"covered": COVERED, "target": TARGET, "meets": MEETS},
            outline=("#212121", 2.0),
            fill_opacity=0.0,
            no_data_opacity=0.45,
            title="label",
            lines=["standard", "note"],
        ).add_to(group)
        group.add_to(m)
        groups.append(group)
        target = float(np.nanmax(r["target"])) if np.isfinite(r["target"]).any() else np.nan
        legends.append(
            _legend_entry(
                f"{std.name_zh} {std.name}", distance_text(std).removesuffix(" m"), target
            )
        )
        labels.append(
            _labels(
                label_points,
                names=[(str(a), str(b)) for a, b in zip(d["name"], d["name_en"])],
                pct=r["pct"],
                meets=r["meets"],
                no_data=r["no_data"],
                nobody=r["nobody"],
                priority=r["residents"],
            )
        )
    folium.LayerControl(collapsed=False).add_to(m)
    title = f"{result.city.config.name} / {result.city.config.name_en}"
    first = next((i for i, s in enumerate(result.standards) if s.id == show), 0) if show else 0
    hex_res = result.hexagons.resolution if result.hexagons is not None else "—"
    note = (
        f"hexagons: where residents live (H3 resolution {hex_res}) · 六边形：居住地; "
        "grey: no data · 灰色：无数据; pick a standard top right · 右上角选择标准"
    )
    _figure(m).html.add_child(
        folium.Element(_ramp_legend(title, note, entry=legends[first] if legends else None))
    )
    StandardView(groups, legends, labels, hexes=hexes).add_to(m)
    return m


def _label_points(frame: gpd.GeoDataFrame, *, crs: Any) -> list[tuple[float, float]]:
    """Each polygon's label point (lat, lon): the pole of inaccessibility of its largest part,
    found in the projected `frame` (to within a metre or a thousandth of its size)."""
    from walkcover.config.crs import frame_to_lonlat

    pts = []
    for geom in frame.geometry:
        if geom is None or geom.is_empty:
            pts.append(shapely.Point())
            continue
        parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
        big = max(parts, key=lambda g: g.area) if parts else geom
        size = float(np.sqrt(big.area)) if big.area > 0 else 1.0
        pts.append(
            shapely.ops.polylabel(big, tolerance=max(1.0, size / 1000.0))
            if parts
            else big.representative_point()
        )
    lonlat = frame_to_lonlat(gpd.GeoSeries(pts, crs=crs))
    return [(round(float(p.y), 6), round(float(p.x), 6)) for p in lonlat]


def _standard_rows(summary: pd.DataFrame, sid: str, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The summary's figures of standard `sid` aligned to the districts `ids`."""
    rows = summary[summary["standard"] == sid].copy()
    rows["district_id"] = rows["district_id"].astype(str)
    rows = rows.drop_duplicates("district_id").set_index("district_id").reindex(ids)

    def num(col: str) -> np.ndarray:
        if col not in rows:
            return np.full(len(ids), np.nan)
        return pd.to_numeric(rows[col], errors="coerce").to_numpy(float)

    reason = (
        rows["no_data_reason"].fillna("").astype(str).str.strip().to_numpy()
        if "no_data_reason" in rows
        else np.full(len(ids), "")
    )
    no_data = (reason != "") | (np.nan_to_num(num("facilities_in_reach"), nan=0.0) == 0)
    residents = num("residents")
    meets = rows["meets_target"].to_numpy(object) if "meets_target" in rows else [None] * len(ids)
    return {
        "pct": num("residents_covered_pct"),
        "target": num("target_pct"),
        "meets": np.array([None if pd.isna(v) else bool(v) for v in meets], dtype=object),
        "no_data": no_data,
        "nobody": np.nan_to_num(residents, nan=0.0) <= 0,
        "residents": np.nan_to_num(residents, nan=0.0),
    }


def _target_text(target: float) -> str:
    """A target for people, as every output has it (``100.0%``); "—" where there is none."""
    return target_text(target, unit="%")


def _hex_layer(
    hexagons: HexCoverage,
    result: Assessment,
    rows: dict[str, dict[str, np.ndarray]],
    *,
    districts: gpd.GeoDataFrame,
) -> folium.GeoJson | None:
    """One layer of the run's H3 hexagons (`Assessment.hexagons`) for every standard: the
    geometry once, each hexagon cut at the district borders (`districts`, in ``result.crs``), so
    no piece reaches outside the study area or carries one district's figure into another; each
    piece's share of its residents covered, per standard (a whole percentage, null where the
    standard has no figure there), as ``pct``, in the order of `result.standards`."""
    import h3

    resolution = hexagons.resolution
    ids = districts["district_id"].astype(str).to_numpy()
    agg = hexagons.cells[hexagons.cells["district_id"].isin(ids)]
    if agg.empty:
        return None
    at = pd.Index(ids).get_indexer(agg["district_id"])
    pct, texts = [], []
    for std in result.standards:
        # where the standard has no facility in a district, its homes there have no figure
        exact = agg[f"{std.id}_covered_pct"].to_numpy(float)
        shown = round_figures(exact, 0)
        none = rows[std.id]["no_data"][at]
        pct.append([None if n else int(v) for v, n in zip(shown, none, strict=True)])
        texts.append([pct_text(v, no_data=bool(n), unit="%") for v, n in zip(exact, none)])
    residents = [count_text(v) for v in agg["residents"].to_numpy(float)]
    cell_polys = {
        c: shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
        for c in agg["cell"].unique()
    }
    hex_proj = gpd.GeoSeries([cell_polys[c] for c in agg["cell"]], crs=4326).to_crs(result.crs)
    pieces = _clip(hex_proj.to_numpy(), districts.geometry.to_numpy()[at])
    keep = ~shapely.is_empty(pieces)
    hexes = gpd.GeoDataFrame(
        {
            "cell": agg["cell"].to_numpy()[keep],
            "pct": [list(p) for p, k in zip(zip(*pct, strict=True), keep, strict=True) if k],
            # what the legend says of the hexagon under the cursor: its figures and residents
            "text": [list(t) for t, k in zip(zip(*texts, strict=True), keep, strict=True) if k],
            "residents": [r for r, k in zip(residents, keep, strict=True) if k],
        },
        geometry=pieces[keep],
        crs=result.crs,
    )
    # cut pieces follow the borders' every bend; a twentieth of a hexagon's side is below a
    # pixel whenever the hexagons can be told apart
    edge_m = h3.average_hexagon_edge_length(resolution, unit="m")
    data = _geojson(hexes, simplify_m=edge_m / 20.0)
    # each feature's bbox and id are a tenth of the page at city scale, and nothing reads them
    data = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": f["geometry"], "properties": f["properties"]}
            for f in data["features"]
        ],
    }
    return folium.GeoJson(
        data,
        name=_layer_name("Hexagons: where residents live · 六边形：居住地"),
        overlay=True,
        control=True,
        pane=HEX_PANE,
        interactive=False,
    )


def _clip(polys: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Each of `polys` cut to the matching one of `areas`, polygons only (a cut that leaves only
    lines or points is empty)."""
    shapely.prepare(areas)
    inside = shapely.contains(areas, polys)
    out = polys.copy()
    cut = shapely.intersection(polys[~inside], areas[~inside])
    kept = []
    for g in cut:
        parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0]
        kept.append(
            shapely.Polygon()
            if not parts
            else parts[0]
            if len(parts) == 1
            else shapely.MultiPolygon(parts)
        )
    if kept:
        out[~inside] = np.array(kept, dtype=object)
    return out


def _labels(
    points: list[tuple[float, float]],
    *,
    names: list[tuple[str, str]],
    pct: np.ndarray,
    meets: np.ndarray,
    no_data: np.ndarray,
    nobody: np.ndarray,
    priority: np.ndarray,
) -> list[dict]:
    """One label per district (its name, and its figure or why there is none), the districts with
    more residents first: where two labels would overlap, the first keeps its place."""
    out = []
    order = sorted(range(len(points)), key=lambda k: (-float(priority[k]), k))
    for k in order:
        lat, lng = points[k]
        if lat != lat:
            continue
        zh, en = names[k]
        if no_data[k]:
            kind, line, colour = "nodata", NO_DATA, NO_DATA_GREY  # why: in its popup
        elif nobody[k]:
            kind, line, colour = "empty", NO_RESIDENTS, NO_DATA_GREY
        else:
            kind, colour = "figure", _ramp(float(round_figures(pct[k])))
            line = f"{pct_text(pct[k], unit='%')} {meets_text(meets[k])}"
        out.append(
            {"lat": lat, "lng": lng, "lines": [zh, en, line], "kind": kind, "colour": colour}
        )
    return out


def _legend_entry(name: str, metres: str, target: float) -> dict[str, Any]:
    """What the legend says of one standard: its name and distance (`metres`: ``500``, or one per
    street context, ``300/500/800``; "" unknown), and its target."""
    walk = f" · within {metres} m walk · 步行{metres}米内" if metres else ""
    has_target = target == target
    return {
        "standard": f"{name}{walk}",
        "target": (
            f"▼ {TARGET} {_target_text(target)}: ✓ met · 达标, ✗ not met · 未达标"
            if has_target
            else f"{TARGET}: {figure_text(target)}"
        ),
        "tick": float(target) if has_target else None,
    }


def region_map(
    summary: gpd.GeoDataFrame,
    cities: gpd.GeoDataFrame,
    *,
    title: str,
    standards: Iterable[Standard] = (),
) -> folium.Map:
    """The region map: each city's districts coloured by residents covered, one standard at a time
    (a radio choice), the cities outlined and labelled with their figure; hovering a district gives
    its city, its figure, its city's and the target, a click pins them; the legend follows the
    chosen standard.

    Parameters
    ----------
    summary
        ``region_summary`` rows (EPSG:4326, district polygons) with ``city_name, district_name,
        standard, standard_name, residents_covered_pct, target_pct``.
    cities
        City outlines (EPSG:4326) with ``name``.
    title
        The region's name, shown in the legend.
    standards
        The standards the cities were measured by (each city's standards file; a standard's id
        may come more than once): the legend gives every walking distance of the standard shown
        (the toilets' ``300/500/800 m`` by street context), as the city and district maps do. A
        standard not among them is labelled by its rows' ``threshold_m``.
    """
    by_id: dict[str, list[Standard]] = {}
    for std in standards:
        by_id.setdefault(std.id, []).append(std)
    m = _base_map(np.asarray(cities.total_bounds), None)
    figures = city_figures(
        pd.DataFrame(summary.drop(columns="geometry")).assign(
            city=summary["city"] if "city" in summary else summary["city_name"]
        )
    )
    groups, legends, labels = [], [], []
    outline_3857 = cities.to_crs(3857)
    city_points = _label_points(outline_3857, crs=3857)
    city_names = [str(n) for n in cities["name"]]
    for i, (sid, rows) in enumerate(summary.groupby("standard", sort=False)):
        name = str(rows["standard_name"].iloc[0])
        group = folium.FeatureGroup(name=_layer_name(f"{name} ({sid})"), overlay=False, show=i == 0)
        pct = pd.to_numeric(rows["residents_covered_pct"], errors="coerce")
        reason = rows.get("no_data_reason", pd.Series("", index=rows.index))
        no_data = (reason.fillna("").astype(str).str.strip() != "").to_numpy()
        if "facilities_in_reach" in rows:
            reach = pd.to_numeric(rows["facilities_in_reach"], errors="coerce")
            no_data = no_data | (reach == 0).to_numpy()
        # each city's figure by the one rule the region page ranks by
        by_city = figures[figures["standard"] == sid].set_index("city_name")
        city_pct = rows["city_name"].map(by_city["residents_covered_pct"])
        # a city whose districts have no facility in reach: no data, as its districts say (not
        # "—", which is a city without residents)
        city_none = rows["city_name"].map(by_city["note"].astype(bool)).eq(True).to_numpy()
        target = pd.to_numeric(rows["target_pct"], errors="coerce").to_numpy(float)
        meets = (
            rows["meets_target"].to_numpy(object) if "meets_target" in rows else [None] * len(rows)
        )
        polys = gpd.GeoDataFrame(
            {
                "label": (rows["city_name"] + " " + rows["district_name"]).to_numpy(),
                "standard": name,
                "pct": np.where(no_data, np.nan, round_figures(pct)),
                "covered": [pct_text(p, no_data=bool(n), unit="%") for p, n in zip(pct, no_data)],
                "city_pct": [
                    pct_text(p, no_data=bool(n), unit="%") for p, n in zip(city_pct, city_none)
                ],
                "target": [_target_text(t) for t in target],
                "meets": [
                    meets_text(None if pd.isna(v) else bool(v), no_data=bool(n))
                    for v, n in zip(meets, no_data)
                ],
            },
            geometry=rows.geometry.to_numpy(),
            crs=4326,
        )
        _coverage_layer(
            _geojson(polys.to_crs(3857), simplify_m=20.0),
            {
                "covered": COVERED,
                "city_pct": "whole city · 全市",
                "target": TARGET,
                "meets": MEETS,
            },
            outline=("#555", 0.5),
            fill_opacity=0.75,
            no_data_opacity=0.75,
            title="label",
            lines=["standard"],
        ).add_to(group)
        group.add_to(m)
        groups.append(group)
        tgt = float(np.nanmax(target)) if np.isfinite(target).any() else np.nan
        legends.append(_legend_entry(name, _region_distances(str(sid), rows, by_id), tgt))
        city_of = by_city["residents_covered_pct"]
        pcts = np.array([city_of.get(c, np.nan) for c in city_names], dtype=float)
        nones = [bool(by_city["note"].get(c, "")) for c in city_names]
        labels.append(
            [
                {
                    "lat": lat,
                    "lng": lng,
                    "lines": [c, f"{pct_text(p, no_data=n, unit='%')} · whole city 全市"],
                    "kind": "nodata" if n else "figure",
                    "colour": NO_DATA_GREY if n else _ramp(float(round_figures(p))),
                }
                for (lat, lng), c, p, n in sorted(
                    zip(city_points, city_names, pcts, nones), key=lambda t: t[1]
                )
                if lat == lat
            ]
        )
    # outlines as lines, not polygons: a polygon (even unfilled) catches every hover inside it
    # on Leaflet's canvas, and the districts' tooltips would never show
    lines = cities[["name", "geometry"]].assign(geometry=cities.geometry.boundary)
    folium.GeoJson(
        _geojson(lines.to_crs(3857), simplify_m=50.0),
        name=_layer_name("Cities · 城市"),
        style_function=lambda _f: {"color": "#111", "weight": 2.5},
        interactive=False,
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    note = "grey: no data · 灰色：无数据; pick a standard top right · 右上角选择标准"
    legend = _ramp_legend(title, note, entry=legends[0] if legends else None)
    _figure(m).html.add_child(folium.Element(legend))
    StandardView(groups, legends, labels).add_to(m)
    return m


def _region_distances(sid: str, rows: pd.DataFrame, by_id: dict[str, list[Standard]]) -> str:
    """A region map's standard's walking distances without their unit (``300/500/800``): each
    of its distances in the standards the cities used (`distances_text`); else its rows'
    ``threshold_m`` (every distinct one); "" where neither says."""
    if by_id.get(sid):
        return distances_text(by_id[sid]).removesuffix(" m")
    if "threshold_m" not in rows:
        return ""
    found = pd.to_numeric(rows["threshold_m"], errors="coerce").dropna().unique()
    if not len(found):
        return ""
    # (known only by its threshold: no street contexts)
    return distances_text([SimpleNamespace(threshold_m=float(v)) for v in found]).removesuffix(" m")


def _coverage_layer(
    data: dict,
    fields: dict[str, str],
    *,
    outline: tuple[str, float] | None,
    fill_opacity: float,
    no_data_opacity: float | None = None,
    title: str | None = None,
    lines: list[str] | None = None,
) -> folium.GeoJson:
    """Polygons (GeoJSON with a ``pct`` property) filled by the share covered (`_ramp`: grey where
    there is no figure, at `no_data_opacity`), with `outline` (colour, weight) or none, thicker
    under the mouse, and a tooltip (hover) and popup (click) of `title`, `lines` and `fields`
    (property → label)."""
    line = {"color": outline[0], "weight": outline[1]} if outline else {"weight": 0}
    grey = fill_opacity if no_data_opacity is None else no_data_opacity

    def style(f: dict) -> dict:
        pct = f["properties"]["pct"]
        missing = pct is None or pct != pct
        return {
            **line,
            "fillColor": _ramp(pct),
            "fillOpacity": grey if missing else fill_opacity,
        }

    layer = folium.GeoJson(
        data,
        style_function=style,
        highlight_function=lambda _f: {"weight": (outline[1] if outline else 0) + 2.5},
    )
    for kind in ("tooltip", "popup"):
        layer.add_child(
            PropertyTable(
                list(fields),
                list(fields.values()),
                kind=kind,
                title=title,
                lines=lines or [],
                missing=NO_DATA,
            )
        )
    return layer


def _ramp_legend(title: str, note: str, *, entry: dict[str, Any] | None = None) -> str:
    """The legend of a map coloured by residents covered (red 0% → green 100%): the chosen
    standard (`entry`, which `StandardView` swaps when another is picked), the ramp with the
    target marked on it (and, while the cursor is over a hexagon, that hexagon's figure marked
    beneath it and said in words), and `note`."""
    stops = ", ".join(f"{_ramp(v)} {v}%" for v in range(0, 101, 10))
    standard = html_text(entry["standard"]) if entry else ""
    target = html_text(entry["target"]) if entry else ""
    tick = entry["tick"] if entry and entry["tick"] is not None else None
    tick_style = f"left:{tick:g}%" if tick is not None else "display:none"
    return (
        "<div id='walkcover-legend' style='position:fixed;bottom:12px;left:12px;z-index:9999;"
        "background:white;padding:6px 9px;border:1px solid #999;border-radius:4px;"
        "font:12px/1.4 sans-serif;max-width:380px'>"
        f"<b>{html_text(title)}</b>: residents within walking distance · 步行范围内居民比例<br>"
        f"<span class='walkcover-legend-standard' style='font-weight:bold'>{standard}</span>"
        "<div style='position:relative;width:240px;margin:9px 0 0'>"
        f"<div style='height:11px;background:linear-gradient(to right, {stops})'></div>"
        f"<div class='walkcover-legend-tick' style='position:absolute;top:-10px;{tick_style};"
        "transform:translateX(-50%);font-size:10px;line-height:10px'>▼</div>"
        "<div class='walkcover-legend-here-tick' style='position:absolute;top:11px;display:none;"
        "transform:translateX(-50%);font-size:10px;line-height:10px'>▲</div>"
        "<div style='display:flex;justify-content:space-between'><span>0%</span>"
        "<span>50%</span><span>100%</span></div></div>"
        f"<span class='walkcover-legend-target'>{target}</span><br>"
        "<span class='walkcover-legend-here' style='display:none'></span>"
        f"<span style='color:#555'>{html_text(note)}</span></div>"
    )


_VIEW_CSS = """<style>
.walkcover-label>div,.walkcover-nodata>div{position:absolute;transform:translate(-50%,-50%);
  width:max-content;max-width:220px;padding:2px 7px;font:12px/1.3 sans-serif;color:#212121;
  text-align:center;border-radius:4px;border:1px solid #616161;border-left:6px solid #616161;
  background:rgba(255,255,255,.92);box-shadow:0 1px 3px rgba(0,0,0,.3)}
.walkcover-label>div b,.walkcover-nodata>div b{font-size:13px}
.walkcover-label .walkcover-figure{font-weight:bold;font-size:13px}
.walkcover-nodata>div{color:#424242;border-color:#757575;
  background:repeating-linear-gradient(45deg,#fff 0 6px,#e0e0e0 6px 9px)}
</style>"""

#: The standard picker's other half: the legend, the hexagons' colours and the labels follow the
#: chosen standard (the base layer), and labels that would overlap are hidden after every zoom.
#: Data arrives as JSON (`js_value`) and reaches the page by ``textContent`` only.
_VIEW_JS = """
function walkcoverStandardView(map, groups, hexes, spec) {
  var labels = groups.map(function (group, i) {
    return (spec.labels[i] || []).map(function (l) {
      var div = document.createElement('div');
      l.lines.forEach(function (text, k) {
        if (!text) return;
        var line = document.createElement(k === 0 ? 'b' : 'div');
        if (k === l.lines.length - 1 && l.kind === 'figure') line.className = 'walkcover-figure';
        line.textContent = text;
        div.appendChild(line);
      });
      div.style.borderLeftColor = l.colour;
      L.marker([l.lat, l.lng], {
        icon: L.divIcon({html: div, iconSize: [0, 0],
                         className: l.kind === 'nodata' ? 'walkcover-nodata' : 'walkcover-label'}),
        interactive: false, keyboard: false
      }).addTo(group);
      return div;
    });
  });
  function current() {
    for (var i = 0; i < groups.length; i++) if (map.hasLayer(groups[i])) return i;
    return -1;
  }
  function declutter() {
    var i = current();
    if (i < 0) return;
    var kept = [];
    labels[i].forEach(function (div) {
      div.style.visibility = '';
      var r = div.getBoundingClientRect();
      var hit = kept.some(function (k) {
        return r.left < k.right + 3 && k.left < r.right + 3 && r.top < k.bottom + 3 && k.top < r.bottom + 3;
      });
      if (hit) div.style.visibility = 'hidden'; else kept.push(r);
    });
  }
  function legend(i) {
    var e = spec.legends[i], box = document.getElementById('walkcover-legend');
    if (!e || !box) return;
    box.querySelector('.walkcover-legend-standard').textContent = e.standard;
    box.querySelector('.walkcover-legend-target').textContent = e.target;
    var tick = box.querySelector('.walkcover-legend-tick');
    tick.style.display = e.tick === null ? 'none' : '';
    if (e.tick !== null) tick.style.left = e.tick + '%';
  }
  var shown = 0;
  function show(i) {
    shown = i;
    here(null);
    if (hexes) hexes.setStyle(function (f) {
      var v = f.properties.pct[i];
      return v === null || v === undefined
        ? {stroke: false, fill: false}
        : {stroke: true, color: '#ffffff', weight: 0.5, opacity: 0.8,
           fill: true, fillColor: spec.ramp[v], fillOpacity: 0.75};
    });
    legend(i);
    declutter();
  }
  map.on('baselayerchange', function (e) {
    var i = groups.indexOf(e.layer);
    if (i >= 0) show(i);
  });
  map.on('zoomend resize', declutter);
  // The hexagon under the cursor (the districts above it take the mouse): its figure in the
  // legend, in words and marked beneath the ramp; found by its box, then its rings (even-odd).
  var cells = [];
  if (hexes) hexes.eachLayer(function (l) { cells.push({box: l.getBounds(), f: l.feature}); });
  function inRing(x, y, ring) {
    var odd = false;
    for (var a = 0, b = ring.length - 1; a < ring.length; b = a++) {
      var xa = ring[a][0], ya = ring[a][1], xb = ring[b][0], yb = ring[b][1];
      if ((ya > y) !== (yb > y) && x < (xb - xa) * (y - ya) / (yb - ya) + xa) odd = !odd;
    }
    return odd;
  }
  function inside(x, y, g) {
    var polys = g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : [];
    return polys.some(function (rings) {
      return rings.filter(function (r) { return inRing(x, y, r); }).length % 2 === 1;
    });
  }
  function here(f) {
    var box = document.getElementById('walkcover-legend');
    if (!box) return;
    var line = box.querySelector('.walkcover-legend-here');
    var tick = box.querySelector('.walkcover-legend-here-tick');
    if (!line || !tick) return;
    var v = f ? f.properties.pct[shown] : null;
    if (!f) { line.textContent = ''; line.style.display = 'none'; tick.style.display = 'none'; return; }
    line.textContent = 'hexagon under the cursor · 光标处六边形: ' + f.properties.text[shown] +
      ' of ' + f.properties.residents + ' residents · 居民';
    line.style.display = 'block';
    tick.style.display = v === null || v === undefined ? 'none' : '';
    if (v !== null && v !== undefined) tick.style.left = v + '%';
  }
  if (cells.length) {
    map.on('mousemove', function (e) {
      var x = e.latlng.lng, y = e.latlng.lat, hit = null;
      for (var k = 0; k < cells.length && !hit; k++) {
        if (cells[k].box.contains(e.latlng) && inside(x, y, cells[k].f.geometry)) hit = cells[k].f;
      }
      here(hit);
    });
    map.getContainer().addEventListener('mouseleave', function () { here(null); });
  }
  show(Math.max(current(), 0));
}
"""


class StandardView(MacroElement):
    """Ties a map's parts to the standard picked in its layer control (one base layer per
    standard, `groups`): the legend's standard, distance and target (`legends`, one per
    standard), each standard's labels (`labels`: lat, lng, lines of text, kind, colour) added to
    its group and decluttered at every zoom, and the colours of the shared hexagon layer
    (`hexes`, whose features carry ``pct``, one whole percentage or null per standard).

    Parameters
    ----------
    groups
        The standards' base layers, in order.
    legends
        Per standard: ``standard`` and ``target`` (text) and ``tick`` (the target, in %, or None).
    labels
        Per standard: its labels, the first kept where two would overlap.
    hexes
        The hexagon layer, or None.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        walkcoverStandardView({{ this._parent.get_name() }},
            [{% for g in this.groups %}{{ g.get_name() }}{% if not loop.last %}, {% endif %}{% endfor %}],
            {{ this.hexes.get_name() if this.hexes else 'null' }}, {{ this.spec }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        groups: list[folium.FeatureGroup],
        legends: list[dict[str, Any]],
        labels: list[list[dict]],
        *,
        hexes: folium.GeoJson | None = None,
    ) -> None:
        super().__init__()
        self._name = "StandardView"
        self.groups = groups
        self.hexes = hexes
        self.spec = js_value(
            {
                "legends": legends,
                "labels": labels,
                "ramp": [_ramp(v) for v in range(101)],
            }
        )

    def render(self, **kwargs: Any) -> Any:
        add_page_code(self, "walkcover_view", js=_VIEW_JS, css=_VIEW_CSS)
        super().render(**kwargs)
