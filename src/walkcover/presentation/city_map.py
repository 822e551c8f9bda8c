"""The city map (districts and H3 hexagons, a standard picker) and the region map."""

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover._escape import html_text
from walkcover.assessment import Assessment
from walkcover.config.crs import frame_to_lonlat
from walkcover.presentation.figures import round_figures
from walkcover.presentation.palette import (
    ramp,
)
from walkcover.presentation.web_map import (
    PropertyTable,
    _add_no_data,
    _base_map,
    _figure,
    _geojson,
    _layer_name,
)


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
