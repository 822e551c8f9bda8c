"""Residents' coverage aggregated to H3 hexagons: per hexagon and district (a hexagon on a border
is two pieces), the residents living there and the share of them each standard covers. Measured
with the run, so the city map only draws it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: About this many hexagons over a study area at most: the city map stays light at any size.
MAX_HEXES = 4000
#: The finest resolution used (about 66 m across) and the coarsest (about 8.5 km).
FINEST_RESOLUTION = 10
COARSEST_RESOLUTION = 5


def hex_resolution(area_km2: float, *, max_hexes: int = MAX_HEXES) -> int:
    """The finest H3 resolution (at most `FINEST_RESOLUTION`) whose hexagons number at most
    `max_hexes` over `area_km2`."""
    import h3

    for res in range(FINEST_RESOLUTION, COARSEST_RESOLUTION, -1):
        if area_km2 / h3.average_hexagon_area(res, unit="km^2") <= max_hexes:
            return res
    return COARSEST_RESOLUTION


@dataclass(frozen=True)
class HexCoverage:
    """Residents per H3 cell and district, and the share each standard covers.

    ``cells``: one row per (``cell``, ``district_id``) with residents: ``residents`` and, per
    standard, ``<standard>_covered_pct`` (residents covered over the piece's residents, 0–100).
    Whether a standard has a figure in a district at all (a facility in reach) is the summary's
    to say.
    """

    resolution: int
    cells: pd.DataFrame


def hex_coverage(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    district_ids: np.ndarray,
    residents: np.ndarray,
    covered: dict[str, np.ndarray],
    resolution: int,
) -> HexCoverage:
    """Aggregate homes (at `lon`, `lat`, WGS84, with their `district_ids` and `residents`) to H3
    cells of `resolution`; `covered` maps each standard to whether each home is covered."""
    import h3

    cells = np.array(
        [h3.latlng_to_cell(y, x, resolution) for x, y in zip(lon.tolist(), lat.tolist())],
        dtype=object,
    )
    res = np.nan_to_num(np.asarray(residents, dtype=float), nan=0.0)
    cols: dict[str, np.ndarray] = {
        "cell": cells,
        "district_id": np.asarray(district_ids).astype(str),
        "residents": res,
    }
    for sid, cov in covered.items():
        cols[f"_c_{sid}"] = res * np.asarray(cov, dtype=bool)
    agg = pd.DataFrame(cols).groupby(["cell", "district_id"], sort=True).sum().reset_index()
    agg = agg[agg["residents"] > 0].reset_index(drop=True)
    for sid in covered:
        agg[f"{sid}_covered_pct"] = 100.0 * agg.pop(f"_c_{sid}") / agg["residents"]
    return HexCoverage(resolution, agg)
