"""Download from the Overpass API with osmnx (its URL, rate limits and HTTP cache apply)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import osmnx as ox

from walkcover._errors import SourceError
from walkcover.sources._layers import OSMLayers, OSMQuery, iso_timestamp
from walkcover.sources._osmnx import features_from_osmnx, streets_from_graph, walk_tags


def overpass_street_filter(walk_highways: tuple[str, ...]) -> str:
    """The Overpass QL filter for the walkable street classes."""
    classes = "|".join(sorted(walk_highways))
    return f'["highway"~"^({classes})$"]'


def download_overpass(query: OSMQuery) -> OSMLayers:
    """Download streets and tagged features inside ``query.polygon`` from Overpass.

    Raises
    ------
    SourceError
        When the server cannot be reached or answers with an error.
    """
    tags: dict[str, bool | str | list[str]] = {**query.feature_tags, "building": True}
    stamps: list[str] = []
    try:
        with walk_tags(), _osm_base_dates(stamps):
            graph = ox.graph_from_polygon(
                query.polygon,
                custom_filter=overpass_street_filter(query.walk_highways),
                simplify=False,
                retain_all=True,
                truncate_by_edge=True,
            )
            try:
                feats = ox.features_from_polygon(query.polygon, tags=tags)
            except ox._errors.InsufficientResponseError:
                feats = None
    except ox._errors.InsufficientResponseError as exc:
        raise SourceError(f"Overpass returned no streets for the study area: {exc}") from exc
    except Exception as exc:
        raise SourceError(
            f"Overpass download from {ox.settings.overpass_url} failed ({type(exc).__name__}: "
            f"{exc}); check the connection, or pass a local extract with --source FILE.osm.pbf"
        ) from exc
    return OSMLayers(
        streets=streets_from_graph(graph),
        features=features_from_osmnx(feats),
        source=ox.settings.overpass_url,
        data_date=overpass_data_date(stamps),
    )


def overpass_data_date(stamps: list[str]) -> str:
    """When downloaded data was current: the oldest ``osm3s.timestamp_osm_base`` of the answers
    it came in (an answer osmnx took from its own HTTP cache is as old as it says); "" if none
    said."""
    dates = sorted(d for d in (iso_timestamp(s) for s in stamps) if d)
    return dates[0] if dates else ""


@contextmanager
def _osm_base_dates(stamps: list[str]) -> Iterator[None]:
    """Collect the ``osm3s.timestamp_osm_base`` of every Overpass answer osmnx receives (osmnx
    hands back only the parsed graph and features, not the answers' dates)."""
    from osmnx import _overpass

    request = _overpass._overpass_request

    def recording(data: Any) -> dict[str, Any]:
        answer = request(data)
        osm3s = answer.get("osm3s") if isinstance(answer, dict) else None
        if isinstance(osm3s, dict):
            stamps.append(str(osm3s.get("timestamp_osm_base", "")))
        return answer

    _overpass._overpass_request = recording
    try:
        yield
    finally:
        _overpass._overpass_request = request
