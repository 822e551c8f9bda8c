"""Reports for site-selection meetings: static maps and charts (matplotlib), an HTML report and a PDF
of it per district, and a city index page comparing districts.

The PDF embeds a CJK font (Noto Sans CJK SC from the ``mplfonts`` package), so Chinese names print
without missing-glyph boxes and stay searchable in the text layer.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import html
import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from walkcover._atomic import write_atomic
from walkcover._version import __version__
from walkcover.assessment import Assessment, can_serve
from walkcover.measures.gaps import gap_polygons
from walkcover.presentation.maps import BANDS, distance_band

_INSTALL = "pip install 'walkcover[report]'"


def _mpl():
    """matplotlib with the CJK font, imported lazily (the report extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import mplfonts
        from matplotlib import font_manager
    except ImportError as exc:  # pragma: no cover - exercised by users without the extra
        raise ImportError(f"reports need matplotlib and a CJK font: {_INSTALL} ({exc})") from exc
    font = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    if font.name not in {Path(f.fname).name for f in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(str(font))
    name = font_manager.FontProperties(fname=str(font)).get_name()
    plt.rcParams.update(
        {
            "font.family": [name, "DejaVu Sans"],
            "pdf.fonttype": 42,
            "axes.unicode_minus": False,
            # names from the data are text: "$" in a name must not start mathtext (which raises on
            # an unbalanced "$\\frac{" and so would stop the report)
            "text.parse_math": False,
        }
    )
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def static_map(
    result, district_id: str, standard_id: str, *, proposed: gpd.GeoDataFrame | None = None
):
    """A matplotlib figure of one district and standard: homes by distance band, gaps, facilities."""
    plt = _mpl()
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    std = result.standard(standard_id)
    d_row = result.districts.set_index("district_id").loc[district_id]
    dgeom = result.districts.to_crs(result.crs).set_index("district_id").geometry[district_id]
    demand, snaps = result.district_demand(district_id)
    band = distance_band(demand[f"{standard_id}_dist_m"].to_numpy(), result.thresholds(std, snaps))
    fig, ax = plt.subplots(figsize=(7.5, 7.5))
    gpd.GeoSeries([dgeom], crs=result.crs).boundary.plot(ax=ax, color="black", linewidth=1.2)
    if len(demand):
        demand.assign(c=[BANDS[b][0] for b in band]).plot(
            ax=ax, color=demand.assign(c=[BANDS[b][0] for b in band])["c"], linewidth=0
        )
    gaps = gap_polygons(result, standard_id, district_id)
    if len(gaps):
        gaps.boundary.plot(ax=ax, color="#b2182b", linewidth=1.0, linestyle="--")
        for _, g in gaps.head(10).iterrows():
            pt = g.geometry.representative_point()
            ax.annotate(
                str(g["rank"]),
                (pt.x, pt.y),
                color="#b2182b",
                fontsize=8,
                ha="center",
            )
    p = result.passes[standard_id]
    fac = p.counted[can_serve(p.counted.geometry, dgeom, p.limit_m)]
    if len(fac):
        pts = fac[fac.geom_type == "Point"]
        polys = fac[fac.geom_type != "Point"]
        if len(polys):
            polys.plot(ax=ax, color="#1f78b4", alpha=0.45, linewidth=0.5, edgecolor="#08306b")
        if len(pts):
            pts.plot(ax=ax, color="#1f78b4", markersize=28, edgecolor="#08306b", zorder=5)
    if proposed is not None and len(proposed):
        mine = proposed[proposed["standard"] == standard_id].to_crs(result.crs)
        if len(mine):
            mine.plot(
                ax=ax, color="#6a3d9a", markersize=70, marker="D", edgecolor="white", zorder=6
            )
    x0, y0, x1, y1 = dgeom.bounds
    pad = 0.05 * max(x1 - x0, y1 - y0)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    handles: list[Artist] = [Patch(color=c, label=label) for c, label in BANDS.values()]
    handles += [
        Line2D([], [], color="#b2182b", linestyle="--", label="gap (ranked) · 缺口（排名）"),
        Line2D(
            [],
            [],
            marker="o",
            color="w",
            markerfacecolor="#1f78b4",
            markersize=8,
            label="facility · 设施",
        ),
    ]
    if proposed is not None and len(proposed):
        handles.append(
            Line2D(
                [],
                [],
                marker="D",
                color="w",
                markerfacecolor="#6a3d9a",
                markersize=8,
                label="proposed site · 建议选址",
            )
        )
    ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.9)
    ax.set_title(
        f"{d_row['name']} / {d_row['name_en']}\n{std.name_zh} {std.name}: ≤ {std.threshold_m:g} m walk · 步行距离",
        fontsize=11,
    )
    ax.text(
        1.0,
        -0.02,
        f"{result.crs.to_string()} · OSM © contributors",
        transform=ax.transAxes,
        ha="right",
        fontsize=6,
    )
    return fig


def district_chart(result: Assessment, district_id: str):
    """Coverage against target across standards: residents (walking), land (walking), land (official)."""
    plt = _mpl()
    rows = result.summary[result.summary["district_id"] == district_id]
    labels = [f"{result.standard(s).name_zh}\n{s}" for s in rows["standard"]]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.bar(
        x - 0.27,
        rows["residents_covered_pct"].fillna(0),
        0.27,
        label="residents, walking · 居民（步行）",
        color="#1a9850",
    )
    ax.bar(
        x,
        rows["area_covered_pct"].fillna(0),
        0.27,
        label="land, walking · 用地（步行）",
        color="#91cf60",
    )
    ax.bar(
        x + 0.27,
        rows["area_covered_euclid_pct"].fillna(0),
        0.27,
        label="land, official circles · 用地（官方圆形）",
        color="#bdbdbd",
    )
    ax.scatter(
        x, rows["target_pct"], marker="_", s=600, color="black", label="target · 目标", zorder=5
    )
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    ax.set_title("Coverage against target · 覆盖率与目标", fontsize=10)
    return fig


def city_chart(result: Assessment):
    """Residents covered per district, one panel per standard, with the target line."""
    plt = _mpl()
    stds = result.standards
    n = len(stds)
    cols = 3
    rows_n = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(11, 3.2 * rows_n), squeeze=False)
    for ax, std in zip(axes.ravel(), stds):
        r = result.summary[result.summary["standard"] == std.id]
        ax.bar(r["district_name"], r["residents_covered_pct"].fillna(0), color="#1a9850")
        ax.axhline(std.target_pct, color="black", linewidth=1)
        ax.set_ylim(0, 105)
        ax.set_title(f"{std.name_zh} {std.name} ({std.threshold_m:g} m)", fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    fig.suptitle(
        "Residents within walking distance, by district · 各区步行覆盖居民比例", fontsize=11
    )
    fig.tight_layout()
    return fig


def top_gaps(result: Assessment, district_id: str, *, n: int = 10) -> pd.DataFrame:
    """The `n` largest gaps of the district across standards, with their location in lon/lat."""
    frames = []
    for std in result.standards:
        g = gap_polygons(result, std.id, district_id)
        if len(g):
            frames.append(g)
    if not frames:
        return pd.DataFrame(
            columns=[
                "standard",
                "rank_in_standard",
                "residents_uncovered",
                "area_m2",
                "dist_m_at_centre",
                "lon",
                "lat",
            ]
        )
    g = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=result.crs)
    g = g.sort_values("residents_uncovered", ascending=False).head(n)
    pts = g.geometry.representative_point().to_crs(4326)
    return pd.DataFrame(
        {
            "standard": g["standard"].to_numpy(),
            "rank_in_standard": g["rank"].to_numpy(),
            "residents_uncovered": g["residents_uncovered"].to_numpy(),
            "area_m2": g["area_m2"].to_numpy(),
            "dist_m_at_centre": g["dist_m_at_centre"].to_numpy(),
            "lon": pts.x.round(6).to_numpy(),
            "lat": pts.y.round(6).to_numpy(),
        }
    )


def gaps_view(gaps: pd.DataFrame) -> pd.DataFrame:
    """`top_gaps` as a report shows it: named in English and Chinese, whole numbers, and a gap
    whose centre is beyond the search limit saying so instead of "nan"."""

    def whole(v: float) -> str:
        return "—" if v != v else f"{v:,.0f}"

    return pd.DataFrame(
        {
            "standard 标准": gaps["standard"],
            "rank in standard 标准内排名": gaps["rank_in_standard"],
            "residents not covered 未覆盖居民": gaps["residents_uncovered"].map(whole),
            "area m² 面积": gaps["area_m2"].map(whole),
            "walk m at centre 中心步行米": gaps["dist_m_at_centre"].map(
                lambda v: "beyond the search limit · 超出搜索范围" if v != v else f"{v:,.0f}"
            ),
            "lon 经度": gaps["lon"].map(lambda v: f"{v:.6f}"),
            "lat 纬度": gaps["lat"].map(lambda v: f"{v:.6f}"),
        }
    )


def sites_view(proposed: gpd.GeoDataFrame) -> pd.DataFrame:
    """Proposed sites as a report shows them: rank, residents gained, coverage after, where."""
    pts = proposed.to_crs(4326).geometry
    return pd.DataFrame(
        {
            "standard 标准": proposed["standard"].to_numpy(),
            "rank 序号": proposed["rank"].to_numpy(),
            "residents newly covered 新增覆盖居民": proposed["residents_newly_covered"]
            .map(lambda v: f"{v:,.0f}")
            .to_numpy(),
            "coverage after % 覆盖率": proposed["cumulative_coverage_pct"]
            .map(lambda v: f"{np.floor(v * 10) / 10:.1f}")
            .to_numpy(),
            "lon 经度": pts.x.map(lambda v: f"{v:.6f}").to_numpy(),
            "lat 纬度": pts.y.map(lambda v: f"{v:.6f}").to_numpy(),
            "method 方法": proposed["method"].to_numpy(),
        }
    )


SUMMARY_VIEW = [
    ("standard", "standard\n标准"),
    ("threshold_m", "within m\n距离"),
    ("facilities_in_reach", "facilities\n设施"),
    ("residents", "residents\n居民"),
    ("residents_on_land_pct", "on official land %\n官方用地居民"),
    ("area_covered_euclid_pct", "official %\n官方圆形"),
    ("area_covered_pct", "land walk %\n用地步行"),
    ("residents_covered_pct", "residents %\n居民步行"),
    ("detour_loss_pp", "detour loss pp\n绕行损失"),
    ("residents_covered_safe_pct", "safe route %\n安全路径"),
    ("target_pct", "target %\n目标"),
]


def summary_view(result: Assessment, district_id: str) -> pd.DataFrame:
    rows = result.summary[result.summary["district_id"] == district_id]
    view = rows[[c for c, _ in SUMMARY_VIEW]].copy()
    view.insert(1, "name", [result.standard(s).name_zh for s in rows["standard"]])
    view["meets\n达标"] = [_mark(m) for m in rows["meets_target"]]
    whole = {"threshold_m", "residents", "target_pct"}
    for c in view.columns:
        if view[c].dtype.kind == "f":
            fmt = "{:,.0f}" if c in whole else "{:,.1f}"
            view[c] = view[c].map(
                lambda v, f=fmt: "—" if v != v else f.format(0.0 if abs(v) < 0.05 else v)
            )
    return view.rename(columns=dict(SUMMARY_VIEW) | {"name": "名称\nname"})


def _mark(meets: object) -> str:
    return "✓" if meets is True else ("✗" if meets is False else "—")


def indicator_view(result: Assessment, district_id: str) -> pd.DataFrame:
    """The district's counts, densities and per-capita rows, formatted for a report."""
    rows = result.district_rows[result.district_rows["district_id"] == district_id]
    return pd.DataFrame(
        {
            "indicator\n指标": rows["name"],
            "value\n数值": rows["value"].map(lambda v: "—" if v != v else f"{v:,.2f}"),
            "unit\n单位": rows["unit"],
            "target\n目标": rows["target"].map(lambda v: "—" if v is None or v != v else f"{v:g}"),
            "meets\n达标": rows["meets_target"].map(
                lambda m: _mark(m if m in (True, False) else None)
            ),
            "note\n说明": rows["note"].fillna(""),
        }
    )


def methods(result: Assessment) -> list[str]:
    """How the numbers were made, line by line."""
    cfg = result.city.config
    src = Path(result.source)
    when = (
        dt.datetime.fromtimestamp(src.stat().st_mtime).date().isoformat()
        if src.is_file()
        else "download time"
    )
    return [
        f"Standards: {result.rules.document} {result.rules.title} ({result.rules.issued}); ids {', '.join(s.id for s in result.standards)}.",
        f"Streets and facilities: OpenStreetMap, {result.source} (file date {when}); © OpenStreetMap contributors, ODbL.",
        f"Walking network: {len(result.network.edges):,} street segments in {result.crs.to_string()}; homes and facilities "
        f"snap to the nearest street edge within {cfg.network.max_snap_m:g} m; distances = access legs + along-edge offsets + shortest path.",
        f"Residents: {result.population_model}; {cfg.demand.m2_per_person:g} m² of floor area per person.",
        f"Official figure: straight-line circles ∩ {', '.join(sorted({s.denominator for s in result.standards}))} ÷ that land; "
        f"walking land figure on a {result.rules.land.cell_m:g} m grid.",
        *[
            f"{s.name}: radius by street context ("
            + ", ".join(f"{k.replace('_', ' ')} {v:g} m" for k, v in s.context_thresholds_m.items())
            + ")."
            for s in result.standards
            if s.context_thresholds_m
        ],
        f"walkcover {__version__}, run {dt.date.today().isoformat()}.",
    ]


def _img(png: bytes) -> str:
    return (
        f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}' style='max-width:100%'>"
    )


def _table(frame: pd.DataFrame) -> str:
    frame = frame.rename(columns=lambda c: str(c).replace("\n", " "))
    return frame.to_html(index=False, escape=True, border=0, classes="t", na_rep="—")


#: Reports run no script and load nothing from outside: their images are inline ``data:`` URIs.
_CSP_META = (
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
    "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">"
)

_CSS = """body{font-family:'Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif;margin:24px;color:#222}
table.t{border-collapse:collapse;font-size:13px;margin:8px 0}table.t th,table.t td{border:1px solid #bbb;padding:3px 6px;text-align:right}
table.t th{background:#eee}h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc}.note{color:#555;font-size:12px}.warn{border-left:4px solid #e08214;background:#fff7ec;padding:4px 10px;margin:8px 0;font-size:13px}
@media print{.pb{page-break-before:always}}"""


def district_report_html(
    result: Assessment,
    district_id: str,
    *,
    maps_png: dict[str, bytes],
    chart_png: bytes,
    gaps: pd.DataFrame,
    proposed: gpd.GeoDataFrame | None,
) -> str:
    d = result.districts.set_index("district_id").loc[district_id]
    city = result.city.config
    sample = (
        "<p class='note'>SAMPLE district: a quadrant of the sample extract, not an administrative unit · 样例区，非行政区</p>"
        if d["is_sample"]
        else ""
    )
    ind = indicator_view(result, district_id)
    parts = [
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'>{_CSP_META}<title>{html.escape(d['name'])} walkcover</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(d['name'])} / {html.escape(d['name_en'])} — {html.escape(city.name)} / {html.escape(city.name_en)}</h1>",
        f"<p>Walking-distance coverage of the plan's standards · 规划步行距离标准覆盖情况. <a href='map.html'>Interactive map · 交互地图</a></p>{sample}",
        "<h2>Summary against targets · 指标与目标</h2>",
        f"<p class='note'>{html.escape(completeness_text(result, district_id))}</p>",
        _notes_html(result.district_notes(d["slug"])),
        _table(summary_view(result, district_id)),
        _img(chart_png),
        "<h2>Ten largest gaps · 十大缺口</h2>",
        _table(gaps_view(gaps)),
    ]
    if proposed is not None and len(proposed):
        parts += ["<h2>Proposed sites · 建议选址</h2>", _table(sites_view(proposed))]
    parts += ["<h2>Counts and densities · 数量与密度</h2>", _table(ind)]
    parts += ["<h2 class='pb'>Maps · 地图</h2>"] + [_img(png) for png in maps_png.values()]
    parts += (
        ["<h2>How the numbers were made · 计算方法</h2><ul>"]
        + [f"<li>{html.escape(m)}</li>" for m in methods(result)]
        + ["</ul>"]
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def completeness_text(result: Assessment, district_id: str) -> str:
    """How complete the district's mapped buildings look, and where its residents come from."""
    rows = result.summary[result.summary["district_id"] == district_id]
    if not len(rows):
        return ""
    pct = rows["building_completeness_pct"].iloc[0]
    known = "unknown (no residential land or known total)" if pct != pct else f"≈ {pct:.0f}%"
    return (
        f"Buildings mapped: {known} complete · 建筑物完整度 {known}; residents from: "
        f"{rows['demand_model'].iloc[0]} ({result.population_model})"
    )


def _notes_html(notes: list) -> str:
    """What a planner must know before reading the table, as a list (empty: nothing)."""
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(n.text)}</li>" for n in notes)
    return f"<div class='warn'><b>Read first · 注意</b><ul>{items}</ul></div>"


def district_report_pdf(
    result: Assessment,
    district_id: str,
    path: Path,
    *,
    figures: dict[str, object],
    chart,
    gaps: pd.DataFrame,
    proposed: gpd.GeoDataFrame | None,
) -> Path:
    """The report as a PDF: summary, chart, gaps, counts, one map per standard, methods."""
    plt = _mpl()
    from matplotlib.backends.backend_pdf import PdfPages

    d = result.districts.set_index("district_id").loc[district_id]

    def table_page(title: str, frame: pd.DataFrame, *, subtitle: str = "", font: float = 7.5):
        fig = plt.figure(figsize=(11.69, 8.27))
        fig.text(0.04, 0.95, title, fontsize=15)
        if subtitle:
            fig.text(0.04, 0.915, subtitle, fontsize=9, color="#444")
        ax = fig.add_axes([0.03, 0.05, 0.94, 0.83])
        ax.set_axis_off()
        if len(frame):
            cells = frame.astype(str).replace({"nan": "—"}).to_numpy()
            tab = ax.table(
                cellText=cells, colLabels=list(frame.columns), loc="upper center", cellLoc="center"
            )
            tab.auto_set_font_size(False)
            tab.set_fontsize(font)
            tab.scale(1, 1.5)
            for (r, _c), cell in tab.get_celld().items():
                if r == 0:
                    cell.set_height(cell.get_height() * 1.8)
                    cell.set_facecolor("#eeeeee")
        else:
            ax.text(0.5, 0.8, "none · 无", ha="center", fontsize=11)
        return fig

    def write(tmp: Path) -> None:
        with PdfPages(
            tmp,
            metadata={
                "Title": f"walkcover {d['name']} {d['name_en']}",
                "Creator": f"walkcover {__version__}",
            },
        ) as pdf:
            head = f"{d['name']} / {d['name_en']} — {result.city.config.name} / {result.city.config.name_en}"
            sample = (
                "SAMPLE district, not an administrative unit · 样例区，非行政区. "
                if d["is_sample"]
                else ""
            )
            first = table_page(
                f"{head}: summary · 指标汇总",
                summary_view(result, district_id),
                subtitle=sample
                + "Walking distance over OpenStreetMap streets · 沿街道步行距离. "
                + completeness_text(result, district_id),
            )
            pdf.savefig(first)
            plt.close(first)
            notes = result.district_notes(d["slug"])
            if notes:
                page = plt.figure(figsize=(11.69, 8.27))
                page.text(0.04, 0.95, "Read first · 注意", fontsize=15)
                for i, n in enumerate(notes[:14]):
                    page.text(0.04, 0.88 - i * 0.06, "• " + n.text, fontsize=8, wrap=True)
                pdf.savefig(page)
                plt.close(page)
            pdf.savefig(chart, bbox_inches="tight")
            pdf.savefig(table_page("Ten largest gaps · 十大缺口", gaps_view(gaps)))
            ind = indicator_view(result, district_id).drop(columns="note\n说明")
            pdf.savefig(table_page("Counts and densities · 数量与密度", ind))
            if proposed is not None and len(proposed):
                pdf.savefig(table_page("Proposed sites · 建议选址", sites_view(proposed)))
            for fig in figures.values():
                pdf.savefig(fig, bbox_inches="tight")
            fig = plt.figure(figsize=(11.69, 8.27))
            fig.text(0.04, 0.95, "How the numbers were made · 计算方法", fontsize=15)
            for i, line in enumerate(methods(result)):
                fig.text(0.04, 0.88 - i * 0.06, "• " + line, fontsize=8, wrap=True)
            pdf.savefig(fig)
        plt.close("all")

    return write_atomic(path, write)


def _write_bytes(tmp: Path, *, data: bytes) -> None:
    tmp.write_bytes(data)


def _write_text(tmp: Path, *, text: str) -> None:
    tmp.write_text(text, encoding="utf-8")


#: What `write_district_report` writes into a district folder.
REPORT_FILES = ("report.html", "report.pdf", "maps")


def write_reports(
    result, out: Path, *, proposed: dict[str, gpd.GeoDataFrame] | None = None
) -> list[Path]:
    """Per district: static maps (PNG), chart, ``report.html`` and ``report.pdf``; and the city
    ``index.html`` comparing districts. Returns the files written.

    Writes straight into the district folders; the command line goes through
    `walkcover.presentation.outputs.write_report_sets`, which stages each district's files as one set.
    """
    written: list[Path] = []
    city_dir = Path(out) / result.city.id
    proposed = proposed or {}
    for _, drow in result.districts.iterrows():
        did = drow["district_id"]
        written += write_district_report(
            result, did, city_dir / drow["slug"], proposed=proposed.get(did)
        )
    return written + write_city_index(result, city_dir)


def write_district_report(
    result, district_id: str, folder: Path, *, proposed: gpd.GeoDataFrame | None = None
) -> list[Path]:
    """``maps/<standard>.png``, ``maps/coverage_chart.png``, ``report.html`` and ``report.pdf`` of
    one district, into `folder`."""
    plt = _mpl()
    written: list[Path] = []
    did, sites = district_id, proposed
    figs = {s.id: static_map(result, did, s.id, proposed=sites) for s in result.standards}
    pngs = {}
    for sid, fig in figs.items():
        pngs[sid] = _png(fig)
        written.append(
            write_atomic(
                folder / "maps" / f"{sid}.png", functools.partial(_write_bytes, data=pngs[sid])
            )
        )
    chart = district_chart(result, did)
    chart_png = _png(chart)
    written.append(
        write_atomic(
            folder / "maps" / "coverage_chart.png", functools.partial(_write_bytes, data=chart_png)
        )
    )
    gaps = top_gaps(result, did)
    page = district_report_html(
        result, did, maps_png=pngs, chart_png=chart_png, gaps=gaps, proposed=sites
    )
    written.append(write_atomic(folder / "report.html", functools.partial(_write_text, text=page)))
    written.append(
        district_report_pdf(
            result, did, folder / "report.pdf", figures=figs, chart=chart, gaps=gaps, proposed=sites
        )
    )
    plt.close("all")
    return written


def write_city_index(result: Assessment, city_dir: Path) -> list[Path]:
    """The city's ``index.html`` and ``coverage_by_district.png`` comparing its districts."""
    plt = _mpl()
    written: list[Path] = []
    chart = city_chart(result)
    png = _png(chart)
    plt.close("all")
    written.append(
        write_atomic(city_dir / "coverage_by_district.png", lambda tmp: tmp.write_bytes(png))
    )
    table = result.summary.pivot_table(
        index=["district_name", "district"],
        columns="standard",
        values="residents_covered_pct",
        sort=False,
    )
    table = table.round(1).reset_index()
    links = "".join(
        f"<li>{html.escape(r['name'])} / {html.escape(r['name_en'])}: <a href='{r['slug']}/report.html'>report</a> · "
        f"<a href='{r['slug']}/report.pdf'>PDF</a> · <a href='{r['slug']}/map.html'>map</a></li>"
        for _, r in result.districts.iterrows()
    )
    c = result.city.config
    page = (
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'>{_CSP_META}<title>{html.escape(c.name)} walkcover</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(c.name)} / {html.escape(c.name_en)}: districts compared · 各区对比</h1>"
        f"<p><a href='map.html'>City map · 全市地图</a></p><ul>{links}</ul>"
        f"<h2>Residents within walking distance, % · 步行范围内居民比例</h2>{_table(table)}{_img(png)}"
        "<h2>How the numbers were made · 计算方法</h2><ul>"
        + "".join(f"<li>{html.escape(m)}</li>" for m in methods(result))
        + "</ul></body></html>"
    )
    written.append(
        write_atomic(city_dir / "index.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
    )
    return written


def city_figures(summary: pd.DataFrame) -> pd.DataFrame:
    """Each city's residents-weighted figure per standard from its districts' rows: residents
    covered ÷ residents, against the standard's target, ranked within the standard."""
    s = summary.copy()
    s["residents"] = pd.to_numeric(s["residents"], errors="coerce")
    s["residents_covered"] = pd.to_numeric(s["residents_covered"], errors="coerce")
    g = s.groupby(["standard", "city", "city_name"], sort=False)
    out = g.agg(
        standard_name=("standard_name", "first"),
        residents=("residents", "sum"),
        covered=("residents_covered", "sum"),
        target_pct=("target_pct", "first"),
    ).reset_index()
    reach = (
        pd.to_numeric(s["facilities_in_reach"], errors="coerce")
        .groupby([s["standard"], s["city"]], sort=False)
        .sum()
    )
    in_reach = reach.reindex(pd.MultiIndex.from_frame(out[["standard", "city"]])).to_numpy()
    out["residents_covered_pct"] = np.where(
        (out["residents"] > 0) & (in_reach > 0),
        100 * out["covered"] / out["residents"].where(out["residents"] > 0),
        np.nan,
    )
    # a standard with no facility in reach of any of the city's districts: no data, not 0%
    out["note"] = np.where(in_reach > 0, "", "no facility in the data · 数据中无设施")
    out["meets_target"] = out["residents_covered_pct"] >= pd.to_numeric(out["target_pct"])
    out["rank"] = out.groupby("standard")["residents_covered_pct"].rank(
        ascending=False, method="min"
    )
    return out.drop(columns="covered")


def region_index_html(
    title: str, summary: pd.DataFrame, outcomes: list, *, city_folders: dict[str, str]
) -> str:
    """The region's page: cities ranked against the plan's targets, one table per standard, and
    what became of every city (measured, skipped as complete, empty, failed and why)."""
    figs = city_figures(summary)
    parts = [
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'>{_CSP_META}<title>{html.escape(title)} walkcover</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}: cities ranked against the plan's targets · 城市对标排名</h1>",
        "<p><a href='map.html'>Region map · 全省地图</a> · <a href='region_summary.csv'>region_summary.csv</a></p>",
        "<p class='note'>Residents within walking distance over each city's streets, summed over its "
        "districts; a city's homes are counted only in that city, its neighbours' facilities serve "
        "across the border. · 按城市汇总各区县步行范围内居民比例。</p>",
    ]
    for sid, rows in figs.groupby("standard", sort=False):
        rows = rows.sort_values(["rank", "city"])
        view = pd.DataFrame(
            {
                "rank 排名": rows["rank"].map(lambda r: "—" if r != r else f"{r:.0f}"),
                "city 城市": rows["city_name"],
                "residents 居民": rows["residents"].map(lambda v: f"{v:,.0f}"),
                # truncated, not rounded: 99.96% shows 99.9, never the 100 it does not reach
                "covered % 覆盖率": rows["residents_covered_pct"].map(
                    lambda v: "—" if v != v else f"{np.floor(v * 10) / 10:.1f}"
                ),
                "target % 目标": rows["target_pct"].map(lambda v: f"{float(v):g}"),
                "meets 达标": [
                    "—" if p != p else ("✓" if m else "✗")
                    for p, m in zip(rows["residents_covered_pct"], rows["meets_target"])
                ],
                "note 说明": rows["note"],
            }
        )
        parts += [
            f"<h2>{html.escape(str(rows['standard_name'].iloc[0]))} ({html.escape(sid)})</h2>",
            _table(view),
        ]
    status = pd.DataFrame(
        {
            "city 城市": [f"{o.city_id} {o.name}" for o in outcomes],
            "status 状态": [o.status for o in outcomes],
            "why 原因": [o.reason for o in outcomes],
            "seconds 秒": [f"{o.seconds:.0f}" if o.seconds else "" for o in outcomes],
        }
    )
    links = "".join(
        f"<li><a href='{html.escape(folder)}/index.html'>{html.escape(name)}</a></li>"
        for name, folder in city_folders.items()
    )
    parts += [
        "<h2>Cities in this batch · 本批城市</h2>",
        _table(status),
        f"<ul>{links}</ul></body></html>",
    ]
    return "\n".join(parts)


def split_city_index_html(city, summary: pd.DataFrame) -> str:
    """The ``index.html`` of a city measured one district at a time: its districts compared from
    the merged ``summary.csv`` (no hexagon map or chart: no single run holds all its homes)."""
    table = summary.pivot_table(
        index=["district_name", "district"],
        columns="standard",
        values="residents_covered_pct",
        sort=False,
    )
    table = table.map(lambda v: v if v != v else np.floor(v * 10) / 10).reset_index()
    links = "".join(
        f"<li>{html.escape(r['name'])}: <a href='{html.escape(r['slug'])}/map.html'>map</a> · "
        f"<a href='{html.escape(r['slug'])}/coverage.gpkg'>coverage.gpkg</a></li>"
        for _, r in city.districts.iterrows()
    )
    c = city.config
    return (
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'>{_CSP_META}<title>{html.escape(c.name)} walkcover</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(c.name)} / {html.escape(c.name_en)}: districts compared · 各区对比</h1>"
        f"<p><a href='map.html'>City map · 全市地图</a> · measured one district at a time "
        "(a city this large runs as one task per district) · 按区分别计算</p>"
        f"<ul>{links}</ul><h2>Residents within walking distance, % · 步行范围内居民比例</h2>"
        f"{_table(table)}</body></html>"
    )
