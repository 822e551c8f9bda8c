"""Facilities of a standard, found in OSM features by the standard's tag selectors."""

from __future__ import annotations

import geopandas as gpd

from walkcover.standards import Standard, tag_matches

FACILITY_COLUMNS = ["osm_id", "standard", "name", "matched_by", "geometry"]


def select_facilities(features: gpd.GeoDataFrame, standard: Standard) -> gpd.GeoDataFrame:
    """The features matching any of `standard`'s selectors, points and polygons as mapped.

    Parameters
    ----------
    features
        Normalised OSM features (``osm_id``, ``name``, ``tags`` dict, geometry).
    standard
        The standard whose selectors apply.

    Returns
    -------
    geopandas.GeoDataFrame
        ``osm_id, standard, name, matched_by`` (the selector that matched, as ``k=v`` text), geometry.
    """
    rows, matched = [], []
    for pos, tags in enumerate(features["tags"]):
        for sel in standard.selectors:
            if tag_matches(tags, sel):
                rows.append(pos)
                matched.append(_describe(sel))
                break
    picked = features.iloc[rows]
    ok = picked.geometry.notna().to_numpy() & ~picked.geometry.is_empty.to_numpy()
    ok &= picked.geom_type.isin(
        ["Point", "Polygon", "MultiPolygon", "LineString", "MultiLineString"]
    ).to_numpy()
    picked = picked[ok]
    return gpd.GeoDataFrame(
        {
            "osm_id": picked["osm_id"].to_numpy(),
            "standard": standard.id,
            "name": picked["name"].to_numpy(),
            "matched_by": [m for m, k in zip(matched, ok) if k],
        },
        geometry=picked.geometry.to_numpy(),
        crs=features.crs,
    )


def _describe(selector: dict) -> str:
    parts = []
    for key, want in selector.items():
        if want is True:
            parts.append(f"{key}=*")
        elif isinstance(want, list):
            parts.append(f"{key}={'|'.join(want)}")
        else:
            parts.append(f"{key}={want}")
    return " & ".join(parts)
