"""Reports for site-selection meetings, made from what ``walkcover run`` (and ``site``) wrote: per
district an HTML report and its PDF, and a city index page comparing districts.

Pages are Jinja2 templates (``presentation/templates``); the PDF is the same HTML laid out by
WeasyPrint (A4 landscape: a title page, the summary, a page per standard with its map, capacity and
choice where a standard measures them, GB 50180's life circles where the standards file has them,
then the gaps, proposed sites, counts and methods). Static maps and charts are drawn with matplotlib. The
CJK font (Noto Sans CJK SC from the ``mplfonts`` package) is embedded in the PDF as a subset, so
Chinese names print without missing-glyph boxes and stay searchable in the text layer.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from walkcover._atomic import write_atomic
from walkcover._paths import check_safe_name, inside, relative_href
from walkcover._version import __version__
from walkcover.config.crs import frame_to_lonlat
from walkcover.config.standards import Standard
from walkcover.measures.bands import BEYOND, WITHIN, distance_band
from walkcover.measures.indicators import city_figures, meets
from walkcover.presentation.figures import (
    EMPTY,
    NO_DATA,
    NO_DATA_EN,
    NO_DATA_ZH,
    NO_FACILITY_WHY,
    columns_in_words,
    coordinate_text,
    count_text,
    distance_text,
    figure_text,
    length_text,
    meets_text,
    metres_text,
    pct_text,
    round_figure,
    setting_text,
    target_text,
    value_text,
    walk_text,
)
from walkcover.presentation.palette import (
    BANDS,
    FACILITY_COLOUR,
    GAP_COLOUR,
    NO_DATA_GREY,
    SITE_COLOUR,
    STREET_COLOUR,
    rgb,
)
from walkcover.presentation.record import DistrictRun, osm_date_text

if TYPE_CHECKING:
    from markupsafe import Markup

_INSTALL = "pip install 'walkcover[report]'"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def _mpl():
    """matplotlib with the CJK font, imported lazily (the report extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import font_manager
    except ImportError as exc:  # pragma: no cover - exercised by users without the extra
        raise ImportError(f"reports need matplotlib and a CJK font: {_INSTALL} ({exc})") from exc
    font = cjk_font()
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


def cjk_font() -> Path:
    """The CJK font reports print with (Noto Sans CJK SC, shipped by ``mplfonts``)."""
    try:
        import mplfonts
    except ImportError as exc:  # pragma: no cover - exercised by users without the extra
        raise ImportError(f"reports need a CJK font: {_INSTALL} ({exc})") from exc
    return Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"


#: The printed maps' and charts' resolution: their pixels per inch on paper (each is drawn at
#: the size it prints, `PRINT_WIDTH_IN` wide at most, so its text prints at its own point size).
PRINT_DPI = 200
#: The width the PDF's pages print on: A4 landscape less its margins (``report.css``: 12 mm each
#: side), less a little, so a figure this wide is laid out at its own size, never scaled down.
PRINT_WIDTH_IN = 10.7
#: A standard's static map: its height on paper, so the map, its caption, its figures and up to five
#: gaps (each on two lines) fit a page.
MAP_HEIGHT_IN = 3.8
#: Two maps of a standard (before and after proposed sites) stand side by side, each this wide.
PAIR_WIDTH_IN = 5.3


def _png(fig, *, dpi: int = PRINT_DPI, tight: bool = False) -> bytes:
    """`fig` as an opaque PNG (RGB: the PDF need not carry an alpha mask) of `dpi` pixels per inch,
    drawn once, at its own size (`tight`: cropped to what it draws, for pages only shown on a
    screen). The PNG records its resolution, so a page can print it at its size."""
    from PIL import Image

    buf = io.BytesIO()
    if tight:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return buf.getvalue()
    fig.set_dpi(dpi)
    fig.canvas.draw()
    pixels = np.ascontiguousarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])  # uint8: RGB
    Image.fromarray(pixels).save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def printed_width_in(png: bytes) -> float | None:
    """The width `png` prints at: its pixels over its recorded pixels per inch (None without)."""
    from PIL import Image

    if not png:
        return None
    with Image.open(io.BytesIO(png)) as img:
        dpi = img.info.get("dpi")
        return img.width / float(dpi[0]) if dpi and float(dpi[0]) > 0 else None


def _print_width_css(png: bytes) -> str:
    """A figure's width on paper as CSS (``7.25in``): the size it was drawn at, so it prints
    unscaled; "" where the PNG does not say."""
    width = printed_width_in(png)
    return f"{width:.3f}in" if width else ""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def home_bands(run: DistrictRun, standard_id: str, *, after: bool = False) -> np.ndarray:
    """Each home's distance band for a standard (`walkcover.measures.bands.distance_band`),
    as measured or, with `after`, once the proposed sites are built. A home beyond the search limit
    is "beyond" (farther), never "unknown"."""
    std = run.standard(standard_id)
    key = f"{standard_id}_after" if after else standard_id
    if f"{key}_band" in run.demand:  # as measured
        return run.demand[f"{key}_band"].to_numpy(dtype=object)
    # a run written before bands were stored: the one rule, from its distances and statuses
    dist = run.demand[f"{key}_dist_m"].to_numpy(dtype=float)
    status = run.demand[f"{key}_status"].to_numpy() if f"{key}_status" in run.demand else None
    return distance_band(dist, run.thresholds(std), status)


def _crs_label(crs: object) -> str:
    """A CRS as a caption names it: ``EPSG:4547``, else its name (never a page of WKT)."""
    import pyproj

    try:
        c = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        return str(crs)[:60]
    code = c.to_epsg()
    return f"EPSG:{code}" if code else c.name[:60]


def _nice_length(span_m: float) -> float:
    """A round scale-bar length near a fifth of `span_m` (1, 2 or 5 × a power of ten)."""
    target = max(span_m / 5, 1.0)
    base = 10 ** np.floor(np.log10(target))
    return float(max(m * base for m in (1, 2, 5) if m * base <= target))


def _met_colour(met: object) -> str:
    """A bar's colour: green where the target is met, red where not (the bands' colours)."""
    return BANDS[WITHIN][0] if met is True else BANDS[BEYOND][0]


def _wrap_label(label: str, width: float | None) -> str:
    """A legend label in lines of at most `width` characters (a CJK character counts two):
    English, then " · " and Chinese, broken at spaces; unchanged when `width` is None."""
    if width is None:
        return label
    import textwrap
    import unicodedata

    def size(text: str) -> float:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    if size(label) <= width:
        return label
    en, sep, zh = label.partition(" · ")
    lines = textwrap.wrap(en, width=max(int(width), 8))
    if sep:
        if size(lines[-1] + sep + zh) <= width:
            lines[-1] += sep + zh
        else:
            lines[-1] += " ·"
            lines.append(zh)
    return "\n".join(lines)


def _legend_handles(
    *,
    streets: bool,
    facilities: bool,
    grounds: bool,
    gaps: bool,
    sites: bool,
    wrap: float | None = None,
):
    """Every symbol a static map draws (and none it does not), in the order a reader meets them,
    each as the district's interactive map draws it; labels wrapped at `wrap` characters."""
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    def label(text: str) -> str:
        return _wrap_label(text, wrap)

    handles: list[Artist] = [
        Patch(facecolor=c, edgecolor="none", label=label(text)) for c, text in BANDS.values()
    ]
    handles.append(
        Line2D([], [], color="black", linewidth=1.2, label=label("district boundary · 区界"))
    )
    if streets:
        handles.append(
            Line2D([], [], color=STREET_COLOUR, linewidth=1.0, label=label("street · 街道"))
        )
    if facilities:  # hollow, as on the interactive map
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markersize=FACILITY_MARKER_PT,
                markerfacecolor=FACILITY_COLOUR[1],
                markeredgecolor=FACILITY_COLOUR[0],
                markeredgewidth=FACILITY_EDGE_PT,
                label=label("facility · 设施"),
            )
        )
    if grounds:
        handles.append(
            Patch(
                facecolor=(*_rgb01(FACILITY_COLOUR[0]), GROUND_ALPHA),
                edgecolor=FACILITY_COLOUR[0],
                linewidth=FACILITY_EDGE_PT * 0.6,
                label=label("facility grounds (park, school) · 设施用地"),
            )
        )
    if gaps:
        handles.append(
            Patch(
                facecolor="none",
                edgecolor=GAP_COLOUR,
                linestyle="--",
                label=label("gap, ranked · 缺口（排名）"),
            )
        )
    if sites:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="D",
                markersize=8,
                markerfacecolor=SITE_COLOUR,
                markeredgecolor="white",
                label=label("proposed site · 建议选址"),
            )
        )
    return handles


def _rgb01(colour: str) -> tuple[float, float, float]:
    r, g, b = rgb(colour)
    return (r / 255, g / 255, b / 255)


#: Facility grounds are drawn in the facility colour, this opaque (a light tint of it), as the
#: interactive map fills them (``fillOpacity`` 0.15).
GROUND_ALPHA = 0.15
#: A point facility on the printed maps: a hollow circle (white inside, the facility colour
#: around), as on the interactive map; its diameter and outline in points.
FACILITY_MARKER_PT = 6.0
FACILITY_EDGE_PT = 1.3


def _polygon_paths(geoms) -> list:
    """A matplotlib Path per (Multi)Polygon of `geoms`, every part and ring in it, exteriors
    anticlockwise and holes clockwise (so a courtyard stays open whatever the fill rule)."""
    import shapely
    from matplotlib.path import Path as MplPath

    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):
        return []
    parts, owner = shapely.get_parts(geoms, return_index=True)
    if hasattr(shapely, "orient_polygons"):  # shapely 2.1
        parts = shapely.orient_polygons(parts)
    else:  # pragma: no cover - shapely 2.0
        from shapely.geometry.polygon import orient

        parts = np.array(
            [orient(g) if g.geom_type == "Polygon" else g for g in parts], dtype=object
        )
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    empty = MplPath(np.zeros((1, 2)), [MplPath.MOVETO])
    if not len(xy):
        return [empty] * len(geoms)
    codes = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
    first = np.r_[0, np.flatnonzero(np.diff(ring_of)) + 1]
    codes[first] = MplPath.MOVETO
    codes[np.r_[first[1:] - 1, len(xy) - 1]] = MplPath.CLOSEPOLY
    geom_of = owner[ring_part[ring_of]]
    cuts = np.searchsorted(geom_of, np.arange(len(geoms) + 1))
    return [MplPath(xy[a:b], codes[a:b]) if b > a else empty for a, b in itertools.pairwise(cuts)]


def _line_segments(geoms) -> list[np.ndarray]:
    """The coordinates of every line of `geoms` (lines, or polygons' rings), one array each."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):
        return []
    parts = shapely.get_parts(geoms)
    is_area = np.isin(shapely.get_type_id(parts), (3, 6))
    lines = np.concatenate([shapely.get_rings(parts[is_area]), parts[~is_area]])
    xy, which = shapely.get_coordinates(lines, return_index=True)
    if not len(xy):
        return []
    cuts = np.r_[0, np.flatnonzero(np.diff(which)) + 1, len(xy)]
    return [xy[a:b] for a, b in itertools.pairwise(cuts) if b - a > 1]


class MapLayers:
    """A district's geometries as matplotlib draws them, converted once and shared by every static
    map of the district (its streets, homes and boundary are the same on each)."""

    def __init__(self, run: DistrictRun) -> None:
        streets = run.streets
        self.streets = (
            _line_segments(streets.geometry.to_numpy())
            if streets is not None and len(streets)
            else None
        )
        self.homes = _polygon_paths(run.demand.geometry.to_numpy()) if len(run.demand) else []
        self.home_points = run.demand.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
        self.boundary = _line_segments([run.boundary])
        self.boundary_path = _polygon_paths([run.boundary])


def _add_lines(ax, segments, **style) -> None:
    from matplotlib.collections import LineCollection

    if len(segments):
        ax.add_collection(LineCollection(segments, **style), autolim=False)


def _add_areas(ax, paths, **style) -> None:
    from matplotlib.collections import PathCollection

    if len(paths):
        ax.add_collection(PathCollection(paths, **style), autolim=False)


def map_extent(run: DistrictRun, standard_id: str) -> tuple[float, float, float, float]:
    """What a static map shows: the district and every facility that serves it, inside or not
    (the school across the boundary serving half the district is on the map). A facility
    serves a home only within the standard's distance, never farther in a straight line: those
    within the standard's largest radius of the district are shown; the farther ones of the
    facilities layer (within the search limit) would only shrink the district on the page."""
    x0, y0, x1, y1 = run.boundary.bounds
    fac = run.facilities
    if len(fac):
        std = run.standard(standard_id)
        reach_m = max([std.threshold_m, *std.context_thresholds_m.values()])
        fac = fac[(fac["standard"] == standard_id) & fac["counts"].astype(bool)]
        fac = fac[fac.distance(run.boundary).to_numpy() <= reach_m]
    if len(fac):
        fx0, fy0, fx1, fy1 = fac.total_bounds
        x0, y0, x1, y1 = min(x0, fx0), min(y0, fy0), max(x1, fx1), max(y1, fy1)
    pad = 0.04 * max(x1 - x0, y1 - y0, 1.0)
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def frame_extent(
    run: DistrictRun, standard_id: str, *, aspect: float
) -> tuple[float, float, float, float]:
    """`map_extent` centred on the district, with the frame's `aspect` (height over width): grown
    equally on opposite sides, so the district has equal margins left and right, top and bottom,
    and every facility serving it is still inside."""
    x0, y0, x1, y1 = map_extent(run, standard_id)
    bx0, by0, bx1, by1 = run.boundary.bounds
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
    half_w = max(cx - x0, x1 - cx, 1.0)
    half_h = max(cy - y0, y1 - cy, 1.0)
    if half_h / half_w < aspect:
        half_h = half_w * aspect
    else:
        half_w = half_h / aspect
    return cx - half_w, cy - half_h, cx + half_w, cy + half_h


def static_map(
    run: DistrictRun,
    standard_id: str,
    *,
    after: bool = False,
    width_in: float = PRINT_WIDTH_IN,
    height_in: float = MAP_HEIGHT_IN,
    layers: MapLayers | None = None,
):
    """A matplotlib figure of one district and standard: the streets, homes by distance band, the
    gaps with their rank, the facilities serving the district (inside it or not: hollow circles
    and tinted grounds, as on the interactive map) and (`after`: homes once they are built) the
    proposed sites.

    The figure is drawn at the size it prints (at most `width_in` by `height_in` inches), so its
    legend prints at its own point size. The district sits at the centre of the map's frame
    (`frame_extent`); the legend, the north arrow and the metric scale bar stand beside the frame,
    outside it, so they never cover data. `layers` are the district's geometries, converted once
    for all its maps (`MapLayers`)."""
    plt = _mpl()
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    layers = layers or MapLayers(run)
    # the furniture's column beside the frame: narrower beside a pair of maps, its labels wrapped
    narrow = width_in < PRINT_WIDTH_IN / 1.5
    legend_w = 2.05 if narrow else 3.3
    legend_pt = 7.0 if narrow else 7.5
    gap_w, foot, head = 0.12, 0.2, 0.05
    avail_w, frame_h = width_in - legend_w - gap_w, height_in - foot - head
    x0, y0, x1, y1 = map_extent(run, standard_id)
    bx0, by0, bx1, by1 = run.boundary.bounds
    # the frame's shape: the centred extent's, as wide as the column allows
    half_w = max((bx0 + bx1) / 2 - x0, x1 - (bx0 + bx1) / 2, 1.0)
    half_h = max((by0 + by1) / 2 - y0, y1 - (by0 + by1) / 2, 1.0)
    frame_w = min(avail_w, frame_h * half_w / half_h)
    x0, y0, x1, y1 = frame_extent(run, standard_id, aspect=frame_h / frame_w)
    fig_w = frame_w + gap_w + legend_w
    fig = plt.figure(figsize=(fig_w, height_in))
    ax = fig.add_axes((0.0, foot / height_in, frame_w / fig_w, frame_h / height_in))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box", anchor="C")
    if layers.streets is not None:
        _add_lines(ax, layers.streets, colors=STREET_COLOUR, linewidths=0.45, zorder=1)
    _add_lines(ax, layers.boundary, colors="black", linewidths=1.2, zorder=4)
    if len(run.demand):
        colours = [BANDS[b][0] for b in home_bands(run, standard_id, after=after)]
        _add_areas(ax, layers.homes, facecolors=colours, edgecolors="none", linewidths=0, zorder=2)
        if layers.home_points.any():  # homes as points (a run from address points)
            pts = run.demand[layers.home_points].geometry
            ax.scatter(
                pts.x,
                pts.y,
                s=6,
                c=[c for c, p in zip(colours, layers.home_points) if p],
                linewidths=0,
                zorder=2,
            )
    gaps = run.gaps[run.gaps["standard"] == standard_id] if len(run.gaps) else run.gaps
    none = run.no_facility(standard_id)
    shown_gaps = False
    if none:  # no facility in the data: no data, hatched and said, never a map of gaps
        _add_areas(
            ax,
            layers.boundary_path,
            facecolors="none",
            edgecolors=NO_DATA_GREY,
            hatch="///",
            linewidths=0,
            zorder=3,
        )
        ax.text(
            0.5,
            0.5,
            # a line per language: it fits the narrowest frame
            "\n".join([NO_DATA, *NO_FACILITY_WHY.split(" · ")]),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="#424242",
            bbox={"facecolor": "white", "edgecolor": NO_DATA_GREY, "boxstyle": "round,pad=0.4"},
            zorder=8,
        )
    elif len(gaps) and not after:
        shown_gaps = True
        _add_lines(
            ax,
            _line_segments(gaps.geometry.to_numpy()),
            colors=GAP_COLOUR,
            linewidths=1.0,
            linestyles="--",
            zorder=5,
        )
        for _, g in gaps.sort_values("rank").head(10).iterrows():
            at = _gap_centre(g)
            ax.annotate(
                str(int(g["rank"])),
                at,
                color=GAP_COLOUR,
                fontsize=8,
                ha="center",
                zorder=7,
            )
    fac = run.facilities
    fac = fac[(fac["standard"] == standard_id) & fac["counts"].astype(bool)]
    kinds = fac.geom_type.to_numpy() if len(fac) else np.empty(0, dtype=object)
    is_point = np.isin(kinds, ["Point", "MultiPoint"])
    is_area = np.isin(kinds, ["Polygon", "MultiPolygon"])
    grounds = bool(is_area.any())
    # as the interactive map draws them: grounds tinted and outlined, lines in the facility
    # colour, points as hollow circles (inside the district or not)
    if grounds:
        _add_areas(
            ax,
            _polygon_paths(fac.geometry.to_numpy()[is_area]),
            facecolors=[(*_rgb01(FACILITY_COLOUR[0]), GROUND_ALPHA)],
            edgecolors=FACILITY_COLOUR[0],
            linewidths=FACILITY_EDGE_PT * 0.6,
            zorder=3,
        )
    lines = ~is_point & ~is_area
    if lines.any():
        _add_lines(
            ax,
            _line_segments(fac.geometry.to_numpy()[lines]),
            colors=FACILITY_COLOUR[0],
            linewidths=FACILITY_EDGE_PT,
            zorder=3,
        )
    if is_point.any():
        pts = fac[is_point].geometry.representative_point()
        ax.scatter(
            pts.x,
            pts.y,
            s=FACILITY_MARKER_PT**2,
            c=FACILITY_COLOUR[1],
            edgecolors=FACILITY_COLOUR[0],
            linewidths=FACILITY_EDGE_PT,
            zorder=6,
        )
    sites = False
    if after and run.proposed is not None:
        mine = run.proposed[run.proposed["standard"] == standard_id].to_crs(run.crs)
        if len(mine):
            sites = True
            at = mine.geometry.representative_point()
            ax.scatter(at.x, at.y, s=70, marker="D", c=SITE_COLOUR, edgecolors="white", zorder=7)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#999")
    # the furniture, beside the frame: legend at the top, north arrow and scale at the foot
    beside = 1.0 + gap_w / frame_w
    ax.legend(
        handles=_legend_handles(
            streets=layers.streets is not None,
            facilities=bool(is_point.any()),
            grounds=grounds,
            gaps=shown_gaps,
            sites=sites,
            wrap=34 if narrow else 58,
        ),
        loc="upper left",
        bbox_to_anchor=(beside, 1.0),
        fontsize=legend_pt,
        frameon=False,
        borderaxespad=0.0,
        labelspacing=0.45,
        handlelength=1.6,
    )
    arrow_x = 1.0 + (gap_w + 0.25) / frame_w
    ax.annotate(
        "N",
        xy=(arrow_x, (0.35 + 0.5) / frame_h),
        xytext=(arrow_x, 0.35 / frame_h + 0.02),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=9,
        arrowprops={"facecolor": "black", "width": 3, "headwidth": 9, "headlength": 8},
        annotation_clip=False,
    )
    length = _nice_length(x1 - x0)  # a fifth of the frame at most: within the column beside it
    ax.add_artist(
        AnchoredSizeBar(
            ax.transData,
            length,
            length_text(length),
            "lower left",
            bbox_to_anchor=(beside, 0.0),
            bbox_transform=ax.transAxes,
            borderpad=0.0,
            pad=0.0,
            frameon=False,
            size_vertical=(y1 - y0) / 150,
            fontproperties={"size": 7.5},
        )
    )
    ax.text(
        0.0,
        -0.01,
        f"{_crs_label(run.crs)} · © OpenStreetMap contributors · {osm_date_text(run.data_date)}",
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=6.5,
        color="#555",
    )
    return fig


def _bar_label(ax, y: float, value: float, *, no_data: bool, fontsize: float) -> None:
    """The figure at a horizontal bar's end: "0.0%" at a 0% bar (a bar that is there, of no
    length), "no data · 无数据" where there is no figure, never an empty place for either."""
    if no_data:
        ax.text(
            1, y, NO_DATA, va="center", ha="left", fontsize=fontsize, color="#555", style="italic"
        )
        return
    if value != value:
        ax.text(1, y, EMPTY, va="center", ha="left", fontsize=fontsize, color="#555")
        return
    if round_figure(value) == 0:  # a zero is a figure: a visible tick at 0 and its label
        ax.plot([0, 0], [y - 0.12, y + 0.12], color="black", linewidth=2.0, solid_capstyle="butt")
    ax.text(
        value + 1,
        y,
        pct_text(value, unit="%"),
        va="center",
        ha="left",
        fontsize=fontsize,
        color="#222",
        # readable where it meets the target line
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.6},
    )


def district_chart(run: DistrictRun):
    """Coverage against target across standards, one row per standard (horizontal bars, so the
    names never run together): residents (walking) as the bar, coloured by whether the target is
    met, land (walking) and land (official circles) beside it in lighter and hatched forms, the
    target as a black mark; each bar labelled with its figure ("0.0%" for a 0% bar), and a
    standard with no facility in the data labelled "no data" instead."""
    plt = _mpl()
    from matplotlib.patches import Patch

    rows = run.summary.reset_index(drop=True)
    n = len(rows)
    labels = [f"{run.standard(s).name_zh} {run.standard(s).name}" for s in rows["standard"]]
    none = np.array([run.no_facility(s) for s in rows["standard"]], dtype=bool)
    met = [None if nd else _verdict(m) for nd, m in zip(none, rows["meets_target"])]
    height_in = 0.4 * n + 1.5
    fig, ax = plt.subplots(figsize=(PRINT_WIDTH_IN, height_in))  # its printed size
    y = np.arange(n)[::-1].astype(float)  # the first standard on top
    h = 0.26
    series: tuple[tuple[str, float, dict[str, str], float], ...] = (
        ("residents_covered_pct", h, {}, 1.0),
        ("area_covered_pct", 0.0, {}, 0.45),
        ("area_covered_euclid_pct", -h, {"hatch": "////", "edgecolor": "white"}, 0.3),
    )
    for col, dy, style, alpha in series:
        values = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float)
        for i in range(n):
            if none[i]:
                continue
            ax.barh(
                y[i] + dy,
                values[i],
                h,
                color=_met_colour(met[i]),
                alpha=alpha,
                linewidth=0,
                **style,
            )
            _bar_label(ax, y[i] + dy, values[i], no_data=False, fontsize=6.5)
    for i in map(int, np.flatnonzero(none)):
        _bar_label(ax, y[i], np.nan, no_data=True, fontsize=7.5)
    target = pd.to_numeric(rows["target_pct"], errors="coerce").to_numpy(dtype=float)
    ax.scatter(target, y, marker="|", s=900, color="black", linewidths=2, zorder=5)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 118)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.set_xlabel("% · 百分比", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    from matplotlib.lines import Line2D

    handles = [
        Patch(color=BANDS[WITHIN][0], label="target met · 达标"),
        Patch(color=BANDS[BEYOND][0], label="target not met · 未达标"),
        Patch(facecolor="#555", label="residents, walking · 居民（步行）"),
        Patch(facecolor="#555", alpha=0.45, label="land, walking · 用地（步行）"),
        Patch(
            facecolor="#555",
            alpha=0.3,
            hatch="////",
            edgecolor="white",
            label="land, official circles · 用地（官方圆形）",
        ),
        Line2D(
            [],
            [],
            marker="|",
            linestyle="none",
            markersize=12,
            markeredgewidth=2,
            color="black",
            label="target · 目标",
        ),
    ]
    ax.legend(
        handles=handles,
        fontsize=7,
        ncol=3,
        loc="upper center",
        bbox_to_anchor=(0.4, -0.55 / height_in),
        frameon=False,
    )
    ax.set_title("Coverage against target · 覆盖率与目标", fontsize=10)
    fig.tight_layout()
    return fig


def _verdict(value: object) -> bool | None:
    """``meets_target`` as read back (True, False, "True", "False" or empty) as a bool or None."""
    if isinstance(value, str):
        return {"True": True, "False": False}.get(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return None


def city_chart(summary: pd.DataFrame, standards: list[Standard]):
    """Residents covered per district, one panel per standard (horizontal bars, a district a row),
    each bar coloured by whether it meets the standard's target and labelled with its figure
    ("0.0%" for 0%), the target as a line; a district with no facility of the standard in the
    data says "no data" instead of a bar."""
    plt = _mpl()
    from matplotlib.patches import Patch

    n = len(standards)
    cols = 3
    rows_n = max(int(np.ceil(n / cols)), 1)
    n_districts = max((int((summary["standard"] == s.id).sum()) for s in standards), default=1)
    panel_h = 0.32 * n_districts + 1.1
    fig, axes = plt.subplots(rows_n, cols, figsize=(11, panel_h * rows_n + 0.6), squeeze=False)
    for ax, std in zip(axes.ravel(), standards):
        r = summary[summary["standard"] == std.id]
        none = pd.to_numeric(r["facilities_in_reach"], errors="coerce").fillna(0).to_numpy() == 0
        pct = pd.to_numeric(r["residents_covered_pct"], errors="coerce").to_numpy(dtype=float)
        y = np.arange(len(r))[::-1].astype(float)
        ok = np.asarray(meets(pct, np.full(len(pct), float(std.target_pct))), dtype=bool)
        for i in range(len(r)):
            if none[i]:
                _bar_label(ax, y[i], np.nan, no_data=True, fontsize=6.5)
                continue
            if pct[i] == pct[i]:
                ax.barh(y[i], pct[i], 0.7, color=_met_colour(bool(ok[i])), linewidth=0)
            _bar_label(ax, y[i], pct[i], no_data=False, fontsize=6.5)
        ax.axvline(std.target_pct, color="black", linewidth=1)
        ax.set_ylim(-0.6, len(r) - 0.4)  # every district's place, with or without a bar
        ax.set_xlim(0, 125)
        ax.set_xticks([0, 50, 100])
        ax.tick_params(axis="x", labelsize=6.5)
        ax.set_yticks(y, list(r["district_name"]), fontsize=7)
        ax.set_title(f"{std.name_zh} {std.name} ({distance_text(std)})", fontsize=8.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    fig.suptitle(
        "Residents within walking distance, by district · 各区步行覆盖居民比例", fontsize=11
    )
    fig.legend(
        handles=[
            Patch(color=BANDS[WITHIN][0], label="target met · 达标"),
            Patch(color=BANDS[BEYOND][0], label="target not met · 未达标"),
        ],
        loc="lower center",
        ncol=2,
        fontsize=7.5,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _gap_centre(gap: pd.Series) -> tuple[float, float]:
    """Where a gap's rank is printed on its map: the centre kept with it (``centre_x_m,
    centre_y_m``, in the run's CRS: where its walk was measured and the tables give its lon/lat);
    a gaps layer written before the centres were kept, a point inside the gap."""
    x = pd.to_numeric(pd.Series([gap.get("centre_x_m")]), errors="coerce").iloc[0]
    y = pd.to_numeric(pd.Series([gap.get("centre_y_m")]), errors="coerce").iloc[0]
    if np.isfinite(x) and np.isfinite(y):
        return float(x), float(y)
    pt = gap.geometry.representative_point()
    return float(pt.x), float(pt.y)


def top_gaps(run: DistrictRun, *, n: int = 10, standard: str | None = None) -> pd.DataFrame:
    """The `n` largest gaps of the district (of one `standard`, or across standards), with the
    walk at each one's centre, why there is none where it is empty (``status_at_centre``), and
    that centre's lon/lat: the point the walk was measured at, as the run kept it with the gap
    (``centre_lon``, ``centre_lat``), never made again here."""
    g = run.gaps
    if standard is not None and len(g):
        g = g[g["standard"] == standard]
    if len(g):  # a standard with no facility in the data has no gaps to rank, only no data
        g = g[[not run.no_facility(s) for s in g["standard"]]]
    cols = [
        "standard",
        "rank_in_standard",
        "residents_uncovered",
        "area_m2",
        "dist_m_at_centre",
        "status_at_centre",
        "lon",
        "lat",
    ]
    if not len(g):
        return pd.DataFrame(columns=cols)
    g = g.sort_values("residents_uncovered", ascending=False, kind="stable").head(n)
    return pd.DataFrame(
        {
            "standard": g["standard"].to_numpy(),
            "rank_in_standard": g["rank"].to_numpy(),
            "residents_uncovered": g["residents_uncovered"].to_numpy(),
            "area_m2": g["area_m2"].to_numpy(),
            "dist_m_at_centre": g["dist_m_at_centre"].to_numpy(dtype=float),
            "status_at_centre": g["status_at_centre"].to_numpy(dtype=object),
            "lon": g["centre_lon"].to_numpy(dtype=float),
            "lat": g["centre_lat"].to_numpy(dtype=float),
        }
    )[cols]


def _whole(v: float) -> str:
    return count_text(v)


def gaps_view(gaps: pd.DataFrame) -> pd.DataFrame:
    """`top_gaps` as a report shows it: named in English and Chinese, whole numbers, and a gap
    whose centre has no walk saying why (`figures.walk_text`: beyond the search limit, no walk
    reaches it, too far from any street, no facility in the data) instead of "nan"."""
    return pd.DataFrame(
        {
            "standard\n标准": gaps["standard"],
            "rank in standard\n标准内排名": gaps["rank_in_standard"].map(lambda v: f"{int(v)}"),
            "residents not covered\n未覆盖居民": gaps["residents_uncovered"].map(_whole),
            "area m²\n面积": gaps["area_m2"].map(_whole),
            "walk m at centre\n中心步行米": [
                walk_text(d, status=s, unit=False)
                for d, s in zip(gaps["dist_m_at_centre"], gaps["status_at_centre"])
            ],
            "lon\n经度": gaps["lon"].map(coordinate_text),
            "lat\n纬度": gaps["lat"].map(coordinate_text),
        },
        index=gaps.index,
    )


def sites_view(proposed: gpd.GeoDataFrame) -> pd.DataFrame:
    """Proposed sites as a report shows them: rank, residents gained, coverage after, where."""
    pts = frame_to_lonlat(proposed).geometry
    return pd.DataFrame(
        {
            "standard\n标准": proposed["standard"].to_numpy(),
            "rank\n序号": proposed["rank"].map(lambda v: f"{int(v)}").to_numpy(),
            "residents newly covered\n新增覆盖居民": proposed["residents_newly_covered"]
            .map(_whole)
            .to_numpy(),
            "coverage after %\n覆盖率": proposed["cumulative_coverage_pct"]
            .map(figure_text)
            .to_numpy(),
            "lon\n经度": pts.x.map(coordinate_text).to_numpy(),
            "lat\n纬度": pts.y.map(coordinate_text).to_numpy(),
            "method\n方法": proposed["method"].to_numpy(),
        }
    )


SUMMARY_VIEW = [
    ("standard", "standard\n标准"),
    ("threshold_m", "within m\n距离"),
    ("facilities_in_reach", "facilities in reach\n可达设施"),
    ("residents", "residents\n居民"),
    ("residents_on_land_pct", "on official land %\n官方用地居民"),
    ("area_covered_euclid_pct", "official %\n官方圆形"),
    ("area_covered_pct", "land walk %\n用地步行"),
    ("residents_covered_pct", "residents %\n居民步行"),
    ("detour_loss_pp", "detour loss pp\n绕行损失"),
    ("residents_covered_safe_pct", "safe route %\n安全路径"),
    ("target_pct", "target %\n目标"),
]


def _mark(meets: object) -> str:
    if isinstance(meets, str):
        meets = {"True": True, "False": False}.get(meets)
    if isinstance(meets, np.bool_):
        meets = bool(meets)
    return meets_text(meets if isinstance(meets, bool) else None)


def summary_view(run: DistrictRun) -> pd.DataFrame:
    """The district's figures against targets, one row per standard, formatted for a report;
    a standard with no facility in the data shows "—" for its coverage figures, not 0."""
    rows = run.summary
    view = rows[[c for c, _ in SUMMARY_VIEW]].copy()
    none = np.array([run.no_facility(s) for s in rows["standard"]], dtype=bool)
    for c in (
        "area_covered_euclid_pct",
        "area_covered_pct",
        "residents_covered_pct",
        "detour_loss_pp",
        "residents_covered_safe_pct",
    ):
        view[c] = pd.to_numeric(view[c], errors="coerce").where(~none)
    view.insert(1, "name", [run.standard(s).name_zh for s in rows["standard"]])
    view["meets\n达标"] = [
        meets_text(None, no_data=True) if n else _mark(m)
        for n, m in zip(none, rows["meets_target"])
    ]
    whole = {"threshold_m", "facilities_in_reach", "residents"}
    for c in [c for c, _ in SUMMARY_VIEW if c != "standard"]:
        values = pd.to_numeric(view[c], errors="coerce")
        view[c] = values.map(
            count_text if c in whole else target_text if c == "target_pct" else figure_text
        )
    # a standard with no facility says so where its coverage figures would be
    for c in ("area_covered_euclid_pct", "area_covered_pct", "residents_covered_pct"):
        view.loc[none, c] = NO_DATA
    # a rule per street context (the toilets: 300, 500 or 800 m by the street a home is on)
    # gives each distance, not the default alone
    view["threshold_m"] = [
        distance_text(run.standard(s)).removesuffix(" m")
        if run.standard(s).context_thresholds_m
        else shown
        for s, shown in zip(rows["standard"], view["threshold_m"])
    ]
    return view.rename(columns=dict(SUMMARY_VIEW) | {"name": "name\n名称"})


def indicator_view(run: DistrictRun) -> pd.DataFrame:
    """The district's counts, densities and per-capita rows, formatted for a report (the life
    circles' shares have a page of their own, `life_circles`)."""
    rows = run.indicators
    if "indicator" in rows:
        rows = rows[~rows["indicator"].map(_is_life_circle_row).to_numpy(dtype=bool)]

    units = rows["unit"].fillna("").astype(str)

    def by_unit(col: str) -> list[str]:
        """A column's figures each as its row's unit has them (the workbook's rule too)."""
        values = pd.to_numeric(rows[col], errors="coerce")
        return [value_text(v, unit=u) for v, u in zip(values, units, strict=True)]

    return pd.DataFrame(
        {
            "indicator\n指标": rows["name"].astype(str),
            "value\n数值": by_unit("value"),
            "unit\n单位": units,
            "target\n目标": by_unit("target"),
            "meets\n达标": rows["meets_target"].map(_mark),
            "note\n说明": rows["note"].fillna("").astype(str),
        }
    )


#: An indicator row of GB 50180's life circles: the share of residents whose circle is complete.
_LIFE_CIRCLE_ROW = re.compile(r"life_circle_(\d+)min_complete_pct")
#: The tiers of GB 50180-2018 by name (minutes → 中文).
_TIER_ZH = {5: "五分钟生活圈", 10: "十分钟生活圈", 15: "十五分钟生活圈"}


def _distance(std: Standard) -> str:
    """A standard's distance, short: ``≤ 500 m``, or its street-context radii in turn."""
    if std.context_thresholds_m:
        return f"≤ {distance_text(std)} by street · 按街道"
    return f"≤ {metres_text(std.threshold_m)}"


def _is_life_circle_row(indicator: object) -> bool:
    return isinstance(indicator, str) and _LIFE_CIRCLE_ROW.fullmatch(indicator) is not None


def _summary_row(run: DistrictRun, standard_id: str) -> pd.Series | None:
    rows = run.summary[run.summary["standard"] == standard_id]
    return rows.iloc[0] if len(rows) else None


def _cell(row: pd.Series | None, col: str) -> float:
    """A figure of a summary row as a number; NaN where the row or the column (a run written
    before it was measured) has none."""
    if row is None or col not in row.index:
        return float("nan")
    return float(pd.to_numeric(pd.Series([row[col]]), errors="coerce").iloc[0])


def _unit_words(std: Standard, row: pd.Series | None) -> tuple[str, str]:
    """What a standard's capacity counts, in English and Chinese (``places``, ``学位``)."""
    rule = std.access
    unit = rule.capacity_unit if rule is not None else ""
    if not unit and row is not None and isinstance(row.get("capacity_unit"), str):
        unit = str(row["capacity_unit"])
    zh = rule.capacity_unit_zh if rule is not None and rule.capacity_unit_zh else "容量"
    return unit or "capacity", zh


def capacity_and_choice(run: DistrictRun) -> dict[str, object] | None:
    """The district's "Capacity and choice · 容量与选择" section: per standard with an ``access``
    rule or ``choice``, sentences a planner reads (the capacity per 1,000 residents on average and
    for the lowest-served tenth, the norm and the residents below it, the residents with a choice,
    the facilities whose capacity is the default) and a small table of the same figures, every
    one the summary's, formatted by `walkcover.presentation.figures`. None when no standard of the
    run asks for either."""
    rows: list[dict[str, str]] = []
    blocks: list[dict[str, object]] = []
    for std in run.standards:
        if std.access is None and not std.choice:
            continue
        r = _summary_row(run, std.id)
        if r is None:
            continue
        none = run.no_facility(std.id)
        rule = std.access
        unit, unit_zh = _unit_words(std, r)
        name = f"{std.name_zh} {std.name}".strip()
        # capacities per 1,000 residents: amounts, not shares (never "<0.1%" or ">99.9")
        mean = NO_DATA if none else figure_text(_cell(r, "access_mean_per_1000"))
        low = NO_DATA if none else figure_text(_cell(r, "access_p10_per_1000"))
        norm = setting_text(_cell(r, "access_norm_per_1000"))
        below = pct_text(_cell(r, "residents_below_norm_pct"), no_data=none, unit="%")
        choice = pct_text(_cell(r, "residents_choice_pct"), no_data=none, unit="%")
        n_default = _cell(r, "facilities_default_capacity")
        n_reach = _cell(r, "facilities_in_reach")
        lines: list[str] = []
        recorded = any(
            col in r.index and _cell(r, col) == _cell(r, col)
            for col in ("access_mean_per_1000", "residents_choice_pct")
        )
        if none:
            lines.append(
                f"No {std.name.lower()} is in the data near the district: no capacity or choice "
                f"figure · {NO_FACILITY_WHY.split(' · ')[-1]}，无容量与选择数据。"
            )
        elif not recorded:  # a run's tables from before choice and capacity were measured
            lines.append(
                "This run's tables hold no capacity or choice figures (written by an earlier "
                "walkcover): run it again for them · 本次运行结果未含容量与选择数据。"
            )
        said = none or not recorded  # the figures are said in sentences only where there are some
        if rule is not None and not said:
            lines.append(
                f"Residents have on average {mean} {unit} per 1,000 residents within a "
                f"{metres_text(std.threshold_m)} walk (E2SFCA, each facility's {unit} shared among all who "
                f"can walk to it); the lowest-served 10% have {low} or less · 平均每千人{mean}"
                f"{unit_zh}，最低10%居民不超过{low}。"
            )
            if rule.norm_per_1000 is not None:
                lines.append(
                    f"The norm is {norm} {unit} per 1,000 residents ({rule.norm_basis}); {below} "
                    f"of residents are below it · 标准为每千人{norm}{unit_zh}，{below}的居民低于标准。"
                )
            else:
                lines.append(
                    "The standards file sets no norm per 1,000 residents for it · 标准文件未设千人指标。"
                )
        if std.choice and not said:
            lines.append(
                f"{choice} of residents have two or more facilities within {metres_text(std.threshold_m)}, "
                f"a choice · {choice}的居民步行{setting_text(std.threshold_m)}米内有两处及以上设施可选。"
            )
        flag = False  # the last line says the figures rest on default capacities
        if rule is not None and not said and n_default == n_default:
            flag = n_default > 0
            text = (
                f"{count_text(n_default)} of {count_text(n_reach)} facilities serving the district "
                f"use the default of {setting_text(rule.default_capacity)} {unit} ({rule.capacity_basis})"
            )
            if n_default > 0:
                text += ": no capacity is tagged in OpenStreetMap, so the figures rest on it"
            lines.append(f"{text} · {count_text(n_default)}处设施采用默认容量。")
        blocks.append({"name": name, "lines": lines, "warn": flag})
        rows.append(
            {
                "standard\n标准": name,
                "mean per 1,000\n每千人平均": mean if rule is not None else EMPTY,
                "lowest 10%\n最低10%": low if rule is not None else EMPTY,
                "norm per 1,000\n千人指标": norm,
                "unit\n单位": f"{unit} · {unit_zh}" if rule is not None else EMPTY,
                "below norm %\n低于标准": below if rule is not None else EMPTY,
                "with a choice %\n可选两处": choice if std.choice else EMPTY,
                "default capacity\n默认容量": (
                    EMPTY
                    if rule is None or n_default != n_default
                    else NO_DATA
                    if none
                    else f"{count_text(n_default)} of {count_text(n_reach)}"
                ),
            }
        )
    if not rows:
        return None
    return {
        "standards": blocks,
        "table": PageTable.of(
            pd.DataFrame(rows), text=(0, 4), widths=[22, 11, 10, 10, 12, 11, 11, 13]
        ),
    }


def life_circles(run: DistrictRun) -> list[dict[str, object]]:
    """The district's "Life circles · 生活圈 (GB 50180-2018)" page: per tier measured (its row of
    ``district_indicators.csv``), the share of residents whose circle is complete, the facility
    most often missing, and each required facility with its coverage (the summary's)."""
    rows = run.indicators
    if "indicator" not in rows:
        return []
    out = []
    for _, r in rows.iterrows():
        found = (
            _LIFE_CIRCLE_ROW.fullmatch(str(r["indicator"]))
            if isinstance(r["indicator"], str)
            else None
        )
        if found is None:
            continue
        tier = int(found.group(1))
        required = [s for s in run.standards if s.life_circle == tier]
        note = str(r["note"]) if isinstance(r["note"], str) else ""
        # a tier needing a facility the data has none of in reach has no figure (never 0%)
        no_data = note.startswith("no data:")
        share = pct_text(r["value"], no_data=no_data, unit="%")
        facilities = pd.DataFrame(
            {
                "facility\n设施": [f"{s.name_zh} {s.name}".strip() for s in required],
                "within\n距离": [_distance(s) for s in required],
                "residents within it %\n覆盖居民": [
                    pct_text(
                        _cell(_summary_row(run, s.id), "residents_covered_pct"),
                        no_data=run.no_facility(s.id),
                        unit="%",
                    )
                    for s in required
                ],
                "facilities\n设施数": [
                    count_text(_cell(_summary_row(run, s.id), "facilities_in_reach"))
                    for s in required
                ],
                "clause\n条款": [s.citation.section for s in required],
            }
        )
        out.append(
            {
                "name": f"{_TIER_ZH.get(tier, f'{tier}分钟生活圈')} {tier}-minute life circle",
                "share": share,
                "sentence": (
                    note[0].upper() + note[1:] + "."
                    if no_data
                    else f"{share} of the residents live where every one of the "
                    f"{len(required)} facilities the {tier}-minute circle requires is within its "
                    f"distance · {share}的居民{_TIER_ZH.get(tier, f'{tier}分钟生活圈')}齐全。"
                ),
                "missing": (note[0].upper() + note[1:] + ".") if note and not no_data else "",
                "table": PageTable.of(facilities, text=(0, 1, 4), widths=[40, 12, 16, 12, 20]),
            }
        )
    return out


@dataclass(frozen=True)
class PageTable:
    """A table as the templates draw it: column labels, cells as text, which columns are text
    (left-aligned) and relative widths (%) that keep it within the page."""

    columns: list[str]
    rows: list[list[str]]
    text_columns: frozenset[int] = frozenset()
    widths: list[float] = field(default_factory=list)

    @classmethod
    def of(
        cls, frame: pd.DataFrame, *, text: tuple[int, ...] = (), widths: list[float] | None = None
    ):
        cells = frame.astype(object).where(frame.notna(), "—").astype(str)
        return cls(
            [str(c) for c in frame.columns],
            cells.to_numpy().tolist(),
            frozenset(text),
            widths or [],
        )


@functools.cache
def _env():
    try:
        import jinja2
    except ImportError as exc:  # pragma: no cover - jinja2 comes with folium
        raise ImportError(f"reports need Jinja2: {_INSTALL} ({exc})") from exc
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["figure"] = figure_html
    # the words the pages say where there is no figure, and why: those of every other output
    env.globals.update(no_data=NO_DATA, no_facility_why=NO_FACILITY_WHY, empty=EMPTY)
    return env


def figure_html(text: object) -> Markup:
    """A figure's text (`walkcover.presentation.figures`) for a page's cell, escaped, with
    `NO_DATA`'s Chinese words kept on one line (``<span class="nobr">无数据</span>``): in a
    narrow column the PDF would otherwise break them between characters ("无数/据").

    Parameters
    ----------
    text
        The figure as the formatter gave it (``94.9``, ``no data · 无数据``, ``—``).

    Returns
    -------
    markupsafe.Markup
        The cell's HTML.
    """
    from markupsafe import Markup, escape  # with Jinja2, as the pages are

    html = escape(str(text))
    kept = Markup('{} · <span class="nobr">{}</span>').format(NO_DATA_EN, NO_DATA_ZH)
    return Markup(html.replace(escape(NO_DATA), kept))


def _css() -> str:
    return (TEMPLATES / "report.css").read_text(encoding="utf-8")


def _page(template: str, *, title: str, **context: object) -> str:
    """A page from one of the templates, with its title and the reports' stylesheet."""
    return _env().get_template(template).render(title=title, css=_css(), **context)


def completeness_text(run: DistrictRun) -> str:
    """How complete the district's mapped buildings look, and where its residents come from."""
    rows = run.summary
    if not len(rows):
        return ""
    pct = pd.to_numeric(rows["building_completeness_pct"], errors="coerce").iloc[0]
    known = (
        "unknown (no residential land or known total)"
        if pct != pct
        else f"≈ {figure_text(pct, decimals=0, unit='%')}"
    )
    return (
        f"Buildings mapped: {known} complete · 建筑物完整度 {known}; residents from: "
        f"{rows['demand_model'].iloc[0]} ({run.population_model})"
    )


def _radius(std: Standard) -> str:
    if std.context_thresholds_m:
        return "≤ " + ", ".join(
            f"{metres_text(v)} {k.replace('_', ' ')}" for k, v in std.context_thresholds_m.items()
        )
    return f"≤ {metres_text(std.threshold_m)} walk · 步行{setting_text(std.threshold_m)}米"


def _pct(v: object) -> str:
    x = float(pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0])
    return pct_text(x, unit="%")


def _standard_figures(run: DistrictRun, std: Standard) -> list[tuple[str, str]]:
    rows = run.summary[run.summary["standard"] == std.id]
    if not len(rows):
        return []
    r = rows.iloc[0]
    none = run.no_facility(std.id)
    figures = [
        (
            "residents within reach · 步行范围内居民",
            pct_text(r["residents_covered_pct"], no_data=none, unit="%"),
        ),
        ("target · 目标", target_text(r["target_pct"], unit="%")),
        (
            "official figure (circles on land) · 官方口径",
            pct_text(r["area_covered_euclid_pct"], no_data=none, unit="%"),
        ),
        (
            "facilities in reach (in the district or near it) · 可达设施",
            _whole(float(r["facilities_in_reach"])),
        ),
        ("residents · 居民", _whole(float(r["residents"]))),
        (
            "beyond the search limit · 超出搜索范围",
            _whole(float(r["beyond_search_units"])) + " homes",
        ),
    ]
    if run.proposed is not None and (run.proposed["standard"] == std.id).any():
        mine = run.proposed[run.proposed["standard"] == std.id]
        figures.append(
            (
                f"after {len(mine)} proposed site(s) · 建议选址后",
                _pct(mine["cumulative_coverage_pct"].iloc[-1]),
            )
        )
    return figures


#: An OSM element's id as notes name it (``node/409705443``).
_OSM_ID = re.compile(r"\b(?:node|way|relation)/\d+\b")
#: A bracket holding nothing but ids (``(node/1, node/2 …)``): the list goes to the appendix.
_ID_LIST = re.compile(r"\s*\(\s*(?:(?:node|way|relation)/\d+[\s,;]*)+(?:…|\.\.\.)?\s*\)")
#: An absolute path (``/home/…/x.pbf``, ``C:\…\x.pbf``): only its last part is shown.
_PATH = re.compile(r"(?:\b[A-Za-z]:\\|~/|(?<![\w:/.~])/)(?:[^\s/\\,;()'\"]+[/\\])+(?=[^\s/\\]*)")
_PLURAL = re.compile(r"\b(\d[\d,]*) ((?:[\w-]+ )*?)(\w+)\(s\)")


def no_paths(text: str) -> str:
    """`text` with every absolute path cut to its last part (a file's name, never its folder):
    a report travels to other machines, and a path tells its reader only the author's disk."""
    return _PATH.sub("", text)


def _plural(match: re.Match) -> str:
    count, words, word = match.group(1), match.group(2), match.group(3)
    return f"{count} {words}{word}" if count == "1" else f"{count} {words}{word}s"


def plain_note(text: str, run: DistrictRun) -> tuple[str, list[str]]:
    """A note as a sentence a planner reads, and the OSM ids it named (for the appendix): the
    id lists cut out, column names in words, the district's slug and standard ids as names,
    "gate(s)" as "gates" or "gate", and no path."""
    ids = list(dict.fromkeys(_OSM_ID.findall(text)))
    plain = _ID_LIST.sub("", text)
    plain = _OSM_ID.sub("", plain) if _OSM_ID.search(plain) else plain
    plain = re.sub(r"^\s*" + re.escape(run.slug) + r":\s*", f"{run.name_en or run.name}: ", plain)
    plain = plain.replace(run.slug, run.name_en or run.name)
    for std in run.standards:
        plain = re.sub(r"^\s*" + re.escape(std.id) + r":\s*", f"{std.name}: ", plain)
        if "_" in std.id:
            plain = re.sub(r"\b" + re.escape(std.id) + r"\b", std.name.lower(), plain)
    # a tag's values as words: ``access=no|private`` → ``access=no or private``
    plain = re.sub(r"(?<=\w)\|(?=\w)", " or ", plain)
    plain = columns_in_words(plain)
    plain = _PLURAL.sub(_plural, plain)
    plain = re.sub(r"\(\s*\)", "", plain)
    plain = re.sub(r"\s+([,;.])", r"\1", " ".join(no_paths(plain).split()))
    if plain and not plain.endswith((".", "。", ")")):
        plain += "."
    return plain, ids


def read_first(run: DistrictRun) -> tuple[list[str], list[dict[str, object]]]:
    """The "Read first" box of a report in plain sentences with their counts, and the appendix
    of the OSM ids the notes named (locked gates, features left out), each under the sentence's
    reference (``A1``…). The notes on locked gates and on features left out only count them:
    their appendices list every one the run recorded (`DistrictRun.locked_gates`,
    `DistrictRun.left_out`)."""
    from walkcover.assessment.model import (
        LEFT_OUT_LISTED,
        LEFT_OUT_NOTE,
        LOCKED_GATES_LISTED,
        LOCKED_GATES_NOTE,
    )

    rows = run.summary
    none = [s for s in rows["standard"] if run.no_facility(s)]
    verdicts = [
        _verdict(m) for s, m in zip(rows["standard"], rows["meets_target"]) if s not in none
    ]
    n_met = sum(v is True for v in verdicts)
    lines = [
        f"{n_met} of {len(rows)} standards meet their target; "
        f"{len(rows) - n_met - len(none)} do not"
        + (
            f"; {len(none)} ({', '.join(run.standard(s).name for s in none)}) cannot be "
            "measured: no such facility is in the data."
            if none
            else "."
        )
        + f" · {len(rows)}项标准中{n_met}项达标，{len(rows) - n_met - len(none)}项未达标"
        + (f"，{len(none)}项无设施数据" if none else "")
        + "。"
    ]
    appendix: list[dict[str, object]] = []
    for note in run.notes:
        gates = note.kind == LOCKED_GATES_NOTE and run.locked_gates is not None
        left_out = note.kind == LEFT_OUT_NOTE and run.left_out is not None
        listed = gates or left_out
        # (the note's pointer to run.json is the appendix's reference here)
        text = note.text
        if listed:
            text = text.removesuffix(LOCKED_GATES_LISTED if gates else LEFT_OUT_LISTED)
        plain, ids = plain_note(text, run)
        if gates:
            ids = [f"node/{g}" for g in run.locked_gates or ()]
        elif left_out:
            ids = list((run.left_out or {}).get(note.standard or "", ()))
        if ids:
            ref = f"A{len(appendix) + 1}"
            # a note names the first few ids of a long list, then "…" (the notes on locked gates
            # and features left out of a record written before their lists were kept): the
            # appendix says so rather than pass those few for all of them
            cut = not listed and bool(re.search(r"(node|way|relation)/\d+\s*…", note.text))
            shown = [*ids, f"… (the note names the first {len(ids)} only)"] if cut else ids
            appendix.append({"ref": ref, "text": plain, "ids": shown})
            what = "id" if len(ids) == 1 else "ids"
            if cut:
                what = f"ids, the first {len(ids)},"
            plain = f"{plain} (OSM {what} in appendix {ref} · 编号见附录{ref})"
        lines.append(plain)
    return lines, appendix


def _bands() -> list[tuple[str, str]]:
    return [(c, label) for c, label in BANDS.values()]


def district_report_html(
    run: DistrictRun,
    *,
    maps_png: dict[str, list[tuple[bytes, str]]],
    chart_png: bytes,
) -> str:
    """The district's report page: title, summary against targets, a section per standard with
    its maps (before, and after proposed sites), the largest gaps, proposed sites, counts, methods."""
    summary = summary_view(run)
    notes, appendix = read_first(run)
    met = run.summary["meets_target"].map(_mark)
    standards = []
    for std in run.standards:
        if std.id not in set(run.summary["standard"]):
            continue
        with_sites = run.proposed is not None and bool((run.proposed["standard"] == std.id).any())
        pair = len(maps_png.get(std.id, [])) > 1
        standards.append(
            {
                "name": std.name,
                "name_zh": std.name_zh,
                "radius": _radius(std),
                "maps": [
                    {
                        "src": _data_uri(png),
                        "caption": caption,
                        "pair": pair,
                        "width": _print_width_css(png),
                    }
                    for png, caption in maps_png.get(std.id, [])
                ],
                "no_data": run.no_facility(std.id),
                "figures": _standard_figures(run, std),
                "with_sites": with_sites,
                "citation": f"{std.citation.section} {std.citation.text}",
                "gaps": PageTable.of(
                    gaps_view(top_gaps(run, n=5, standard=std.id))
                    .drop(columns="standard\n标准")
                    .rename(columns={"rank in standard\n标准内排名": "rank\n排名"}),
                    widths=[9, 18, 14, 25, 17, 17],
                ),
            }
        )
    sites = None
    if run.proposed is not None and len(run.proposed):
        sites = PageTable.of(
            sites_view(run.proposed), text=(0, 6), widths=[14, 7, 16, 12, 13, 13, 25]
        )
    return _page(
        "district_report.html.j2",
        title=f"{run.name} {run.name_en} · walkcover",
        d=run,
        written=run.written.replace("T", " "),
        today=dt.date.today().isoformat(),
        version=__version__,
        completeness=completeness_text(run),
        met=f"{(met == '✓').sum()} of {len(met)} standards · {len(met)}项中{(met == '✓').sum()}项达标",
        notes=notes,
        appendix=appendix,
        osm_date=osm_date_text(run.data_date),
        summary=PageTable.of(
            summary,
            text=(0, 1),
            # (the distance column holds one per street context: "300/500/800")
            widths=[10, 7, 8, 7, 8, 9, 8, 8, 8, 8, 7, 6, 6],
        ),
        chart=_data_uri(chart_png),
        chart_width=_print_width_css(chart_png),
        standards=standards,
        bands=_bands(),
        gaps=PageTable.of(gaps_view(top_gaps(run)), text=(0,), widths=[13, 10, 13, 10, 26, 14, 14]),
        sites=sites,
        indicators=PageTable.of(indicator_view(run), text=(0, 2, 5), widths=[30, 12, 12, 8, 6, 32]),
        capacity=capacity_and_choice(run),
        life_circles=life_circles(run),
        methods=_methods(run.methods, data_date=run.data_date),
    )


def _methods(lines: list[str], *, data_date: str) -> list[str]:
    """How the numbers were made, as a report prints it: no path (a record written by an older
    walkcover may hold one), and the OSM data's date where an older record printed the file's
    modification date (which is when it was downloaded, not how old the data is)."""
    out = []
    for line in lines:
        line = re.sub(r"\(file date [^)]*\)", f"({osm_date_text(data_date)})", line)
        out.append(no_paths(line))
    return out


def _pdf_css() -> str:
    """The font the PDF embeds, by file: the same on every machine, whatever fontconfig has."""
    url = cjk_font().as_uri()
    return (
        "@font-face{font-family:'walkcover CJK';src:url('" + url + "')}"
        "body{font-family:'walkcover CJK','Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif}"
        "@page{font-family:'walkcover CJK','Noto Sans CJK SC',sans-serif}"
    )


def images_by_reference(page: str, files: dict[str, bytes]) -> str:
    """`page` with the inline data URI of each PNG of `files` (relative name → its bytes, the
    files written beside the page) replaced by its name: what WeasyPrint is given, so its HTML
    parser need not read megabytes of base64, and the PDF shows the very same images."""
    for name, png in files.items():
        if png:
            page = page.replace(_data_uri(png), name)
    return page


def pdf_of(page: str, path: Path, *, base: Path) -> Path:
    """`page` (report HTML) laid out by WeasyPrint into the PDF `path`, written atomically; images
    it names by a relative name are read from `base`."""
    try:
        import weasyprint
        from weasyprint.text.fonts import FontConfiguration
    except (ImportError, OSError) as exc:  # pragma: no cover - users without the extra or Pango
        raise ImportError(
            f"PDF reports need WeasyPrint and Pango: {_INSTALL} and, on Debian/Ubuntu, "
            f"apt-get install libpango-1.0-0 libpangoft2-1.0-0 ({exc})"
        ) from exc
    fonts = FontConfiguration()
    css = weasyprint.CSS(string=_pdf_css(), font_config=fonts)
    doc = weasyprint.HTML(string=page, base_url=str(base))

    def write(tmp: Path) -> None:
        doc.write_pdf(tmp, stylesheets=[css], font_config=fonts)

    return write_atomic(path, write)


def _write_bytes(tmp: Path, *, data: bytes) -> None:
    tmp.write_bytes(data)


def _write_text(tmp: Path, *, text: str) -> None:
    tmp.write_text(text, encoding="utf-8")


#: What `write_district_report` writes into a district folder.
REPORT_FILES = ("report.html", "report.pdf", "maps")


def write_district_report(run: DistrictRun, folder: Path) -> list[Path]:
    """``maps/<standard>.png`` (and ``<standard>_after.png`` where sites were proposed),
    ``maps/coverage_chart.png``, ``report.html`` and ``report.pdf`` of one district, into `folder`."""
    plt = _mpl()
    written: list[Path] = []
    pngs: dict[str, list[tuple[bytes, str]]] = {}
    files: dict[str, bytes] = {}  # each image written, by its name in `folder`
    layers = MapLayers(run)  # the district's streets, homes and boundary, converted once
    for std in run.standards:
        if std.id not in set(run.summary["standard"]) or f"{std.id}_dist_m" not in run.demand:
            continue
        views = [(False, std.id, "as measured · 现状")]
        if f"{std.id}_after_dist_m" in run.demand:
            views.append((True, f"{std.id}_after", "after the proposed sites · 建议选址后"))
        # two maps of a standard stand side by side, each half the page wide
        width_in = PAIR_WIDTH_IN if len(views) > 1 else PRINT_WIDTH_IN
        for after, name, caption in views:
            fig = static_map(run, std.id, after=after, width_in=width_in, layers=layers)
            png = _png(fig)
            plt.close(fig)
            pngs.setdefault(std.id, []).append((png, caption))
            # a file named from a standard id: a plain name, inside the district's folder
            target = folder / "maps" / f"{check_safe_name(name, what='standard id')}.png"
            inside(folder, target, what="map image")
            written.append(write_atomic(target, functools.partial(_write_bytes, data=png)))
            files[f"maps/{target.name}"] = png
    chart = district_chart(run)
    chart_png = _png(chart)
    plt.close(chart)
    written.append(
        write_atomic(
            folder / "maps" / "coverage_chart.png", functools.partial(_write_bytes, data=chart_png)
        )
    )
    files["maps/coverage_chart.png"] = chart_png
    page = district_report_html(run, maps_png=pngs, chart_png=chart_png)
    written.append(write_atomic(folder / "report.html", functools.partial(_write_text, text=page)))
    # the PDF reads the images written above, by name, not from the page's inline copies
    written.append(pdf_of(images_by_reference(page, files), folder / "report.pdf", base=folder))
    plt.close("all")
    return written


def city_index_html(
    city_name: str,
    city_name_en: str,
    summary: pd.DataFrame,
    districts: list[dict],
    *,
    chart_png: bytes | None = None,
    methods: list[str] = (),  # type: ignore[assignment]
    note: str = "",
) -> str:
    """A city's ``index.html``: its districts (each with links to its pages) and the residents
    covered per district and standard, from ``summary.csv``; "—" where there is no figure."""
    s = summary.copy()
    none = pd.to_numeric(s["facilities_in_reach"], errors="coerce").fillna(0) == 0
    s["pct"] = pd.to_numeric(s["residents_covered_pct"], errors="coerce").where(~none)
    # one row per district (its name beside), one column per standard, in the run's orders
    table = s.pivot_table(
        index="district", columns="standard", values="pct", sort=False, dropna=False
    )
    table = table.reindex(
        index=list(dict.fromkeys(s["district"])), columns=list(dict.fromkeys(s["standard"]))
    )
    shown = table.map(figure_text)
    # a standard with no facility in reach of a district: "no data" there, as on every page
    nodata = (
        s.assign(none=none)
        .pivot_table(index="district", columns="standard", values="none", aggfunc="any")
        .reindex(index=shown.index, columns=shown.columns)
        .fillna(False)
        .astype(bool)
    )
    shown = shown.mask(nodata, NO_DATA)
    names = s.drop_duplicates("district").set_index("district")["district_name"]
    shown.insert(0, "district\n区", names.reindex(shown.index).to_numpy())
    shown = shown.reset_index().rename(columns={"district": "id"})
    shown = shown[["district\n区", "id", *shown.columns[2:]]]
    return _page(
        "city_index.html.j2",
        title=f"{city_name} · walkcover",
        city_name=city_name,
        city_name_en=city_name_en,
        note=note,
        districts=districts,
        table=PageTable.of(shown, text=(0, 1)),
        chart=_data_uri(chart_png) if chart_png else "",
        methods=list(methods),
    )


def write_city_index(city_dir: Path, summary: pd.DataFrame, runs: list[DistrictRun]) -> list[Path]:
    """The city's ``index.html`` and ``coverage_by_district.png`` comparing its districts, from
    its ``summary.csv`` and the districts' records."""
    plt = _mpl()
    first = runs[0]
    standards = [s for s in first.standards if s.id in set(summary["standard"])]
    chart = city_chart(summary, standards)
    png = _png(chart, dpi=130, tight=True)  # a page for the screen
    plt.close("all")
    links = [
        {
            "name": r.name,
            "name_en": r.name_en,
            "links": [
                ("report", relative_href(r.slug, "report.html")),
                ("PDF", relative_href(r.slug, "report.pdf")),
                ("map", relative_href(r.slug, "map.html")),
            ],
        }
        for r in runs
    ]
    newest = max(runs, key=lambda r: r.written)
    page = city_index_html(
        first.city_name,
        first.city_name_en,
        summary,
        links,
        chart_png=png,
        methods=_methods(newest.methods, data_date=newest.data_date),
    )
    # both made before either is written: a failure leaves the pair as it was, and the page
    # (which holds its own copy of the chart) goes in right after the chart
    return [
        write_atomic(
            city_dir / "coverage_by_district.png", functools.partial(_write_bytes, data=png)
        ),
        write_atomic(city_dir / "index.html", functools.partial(_write_text, text=page)),
    ]


def region_index_html(
    title: str, summary: pd.DataFrame, outcomes: list, *, city_folders: dict[str, str]
) -> str:
    """The region's page (``region_index.html.j2``): cities ranked against the plan's targets, one
    table per standard, and what became of every city (measured, skipped as complete, empty,
    failed and why). A batch with no complete city has only the last."""
    standards = []
    if len(summary):
        figs = city_figures(summary)
        for sid, rows in figs.groupby("standard", sort=False):
            rows = rows.sort_values(["rank", "city"])
            none = (rows["note"] != "").to_numpy()
            view = pd.DataFrame(
                {
                    "rank\n排名": rows["rank"].map(count_text),
                    "city\n城市": rows["city_name"].astype(str),
                    "residents\n居民": rows["residents"].map(count_text),
                    "covered %\n覆盖率": [
                        pct_text(v, no_data=bool(n))
                        for v, n in zip(rows["residents_covered_pct"], none)
                    ],
                    "target %\n目标": rows["target_pct"].map(target_text),
                    "meets\n达标": [
                        meets_text(None if p != p else bool(mt), no_data=bool(n))
                        for p, mt, n in zip(
                            rows["residents_covered_pct"], rows["meets_target"], none
                        )
                    ],
                    "note\n说明": rows["note"].astype(str),
                }
            )
            standards.append(
                {
                    "id": sid,
                    "name": str(rows["standard_name"].iloc[0]),
                    "table": PageTable.of(view, text=(1, 6)),
                }
            )
    status = pd.DataFrame(
        {
            "city\n城市": [f"{o.city_id} {o.name}" for o in outcomes],
            "status\n状态": [o.status for o in outcomes],
            "why\n原因": [no_paths(str(o.reason)) for o in outcomes],  # never this machine's
            "seconds\n秒": [f"{o.seconds:.0f}" if o.seconds else "" for o in outcomes],
        }
    )
    return _page(
        "region_index.html.j2",
        title=f"{title} walkcover",
        region=title,
        has_map=bool(len(summary)),
        standards=standards,
        status=PageTable.of(status, text=(0, 1, 2)),
        cities=[
            (name, relative_href(folder, "index.html")) for name, folder in city_folders.items()
        ],
    )


def split_city_index_html(city, summary: pd.DataFrame) -> str:
    """The ``index.html`` of a city measured one district at a time: its districts compared from
    the merged ``summary.csv`` (no chart: no single run holds all its homes)."""
    links = [
        {
            "name": r["name"],
            "name_en": r["name_en"],
            "links": [
                ("map", relative_href(r["slug"], "map.html")),
                ("coverage.gpkg", relative_href(r["slug"], "coverage.gpkg")),
            ],
        }
        for _, r in city.districts.iterrows()
    ]
    return city_index_html(
        city.config.name,
        city.config.name_en,
        summary,
        links,
        note="measured one district at a time (a city this large runs as one task per district) "
        "· 按区分别计算",
    )
