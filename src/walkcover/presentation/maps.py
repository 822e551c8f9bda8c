"""The interactive map of one district: a layer per standard (`district_map`)."""

from collections.abc import Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover._escape import html_text
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
)
from walkcover.presentation.web_map import (
    PropertyTable,
    _add_no_data,
    _base_map,
    _figure,
    _geojson,
    _hexes,
    _layer_name,
)


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
