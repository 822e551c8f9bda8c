"""The colours of every output, defined once: the web maps, the QGIS styles and the printed maps
and charts draw a band, a facility, a gap or a proposed site in the same colour.

Distance bands (`walkcover.measures.bands`) run green (within the standard) → orange (up to
1.5 ×) → red (farther); grey where no walk is known. The ColorBrewer RdYlGn scheme, readable
with the common forms of colour blindness at these three steps.
"""

from __future__ import annotations

import itertools

from walkcover.measures.bands import BEYOND, NEAR, UNKNOWN, WITHIN

#: Band → (colour, label): the legend of every map, report and QGIS style.
BANDS = {
    WITHIN: ("#1a9850", "within the standard · 达标"),
    NEAR: ("#fdae61", "up to 1.5 × the distance · 1.5倍以内"),
    BEYOND: ("#d73027", "farther, or beyond the search limit · 超出1.5倍或搜索范围"),
    UNKNOWN: (
        "#9e9e9e",
        "unreachable, not snapped, or no facility in the data · 不可达/未匹配/无设施数据",
    ),
}
#: Facilities and the land within walking distance: colours no band, water or park uses.
FACILITY_COLOUR = ("#3f007d", "#ffffff")  # outline, fill
SERVICE_AREA_COLOUR = "#807dba"
GAP_COLOUR = "#b2182b"
SITE_COLOUR = "#6a3d9a"
SITE_OUTLINE = "#3f007d"
#: Where there is no figure (no facility in the data, no residents).
NO_DATA_GREY = BANDS[UNKNOWN][0]
#: The walkable streets under the data (printed maps): lighter than "no data", never a band.
STREET_COLOUR = "#bdbdbd"


def rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as an (r, g, b) triple (QGIS and matplotlib take either)."""
    c = colour.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))


def ramp(pct: float | None) -> str:
    """A share's colour: red (0%) → yellow (50%) → green (100%); grey where there is no figure."""
    if pct is None or pct != pct:
        return NO_DATA_GREY
    stops = [(0, rgb(BANDS[BEYOND][0])), (50, (254, 224, 139)), (100, rgb(BANDS[WITHIN][0]))]
    for (p0, c0), (p1, c1) in itertools.pairwise(stops):
        if pct <= p1:
            t = (pct - p0) / (p1 - p0)
            r, g, b = (round(a + (b - a) * t) for a, b in zip(c0, c1))
            return f"#{r:02x}{g:02x}{b:02x}"
    return BANDS[WITHIN][0]


#: A home's capacity per 1,000 residents against the norm (the district map's access view): at or
#: above it, below it, below half of it, no capacity within reach, not measured. Green to a dark
#: red, as the bands, so "worse" reads the same on every map; grey where there is no figure.
ACCESS_COLOURS = ("#1a9850", "#fdae61", "#d73027", "#67001f", NO_DATA_GREY)
#: A home's life circle of a tier (the district map's life-circle views): complete, one required
#: facility missing, two, three or more; grey where it was not measured.
LIFE_CIRCLE_COLOURS = ("#1a9850", "#fdae61", "#f46d43", "#a50026", NO_DATA_GREY)
