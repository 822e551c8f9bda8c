"""Distance bands: how far each home is from its standard, in the words every output uses.

* ``within``: within the standard's distance (its street context's, for toilets);
* ``near``: up to 1.5 × that distance;
* ``beyond``: farther, or beyond the search limit (the search stops there: farther still);
* ``unknown``: no walk at all (unreachable, not snapped, or no facility in the data).

Measured once, with the distances (``<standard>_band`` in the demand layer); the maps, reports and
QGIS styles colour by it and never decide a band themselves.
"""

from __future__ import annotations

import numpy as np

from walkcover.engine.coverage import STATUS_BEYOND_LIMIT

WITHIN, NEAR, BEYOND, UNKNOWN = "within", "near", "beyond", "unknown"
#: The bands, nearest first.
BAND_NAMES = (WITHIN, NEAR, BEYOND, UNKNOWN)
#: The "near" band reaches this many times the standard's distance.
NEAR_FACTOR = 1.5


def distance_band(
    dist_m: np.ndarray,
    threshold_m: np.ndarray | float,
    status: np.ndarray | None = None,
) -> np.ndarray:
    """The band of each walk.

    Parameters
    ----------
    dist_m
        Walking distances (NaN where there is none).
    threshold_m
        The standard's distance, one for all or one per home (street-context radii).
    status
        The walks' statuses: a home ``beyond_search_limit`` has no distance but is farther than
        the search went, so ``beyond``, never ``unknown``.

    Returns
    -------
    numpy.ndarray
        One of `BAND_NAMES` per walk (object array).
    """
    d = np.asarray(dist_m, dtype=float)
    t = np.broadcast_to(np.asarray(threshold_m, dtype=float), d.shape)
    out = np.full(d.shape, BEYOND, dtype=object)
    out[d <= NEAR_FACTOR * t] = NEAR
    out[d <= t] = WITHIN
    out[np.isnan(d)] = UNKNOWN
    if status is not None:
        out[np.asarray(status) == STATUS_BEYOND_LIMIT] = BEYOND
    return out
