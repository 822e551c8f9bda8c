"""Where a source file says its data lies: the bounding box in its header, read without reading
the data (a PBF's ``HeaderBlock`` bbox, an OSM XML file's ``<bounds>``).

A run given the wrong city's file would otherwise read it whole, find nothing in the study area and
report "no data" for every district. `check_source_covers` says so before anything is read.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import geopandas as gpd
import shapely

from walkcover._errors import SourceError

#: (min lon, min lat, max lon, max lat) in WGS84 degrees
Box = tuple[float, float, float, float]

_XML_BOUNDS = re.compile(rb"<bounds\s([^>]*)/?>")
_ATTR = re.compile(rb'(minlat|minlon|maxlat|maxlon)\s*=\s*["\']([-+0-9.eE]+)["\']')


def header_box(kind: str, path: str | Path | None) -> Box | None:
    """The bounding box a source file's header declares, or None (no file, no box, unreadable:
    the reader reports those itself)."""
    if path is None or kind not in ("pbf", "xml"):
        return None
    text = str(path)
    try:
        if kind == "pbf":
            from walkcover.sources.pbf import resolve_pbf

            return _pbf_box(resolve_pbf(text))
        return _xml_box(Path(text))
    except (OSError, RuntimeError, ValueError):
        return None


def _pbf_box(path: Path) -> Box | None:
    import osmium

    if not path.is_file() or path.stat().st_size == 0:
        return None
    reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
    try:
        box = reader.header().box()
    finally:
        reader.close()
    if not box.valid():
        return None
    return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)


def _xml_box(path: Path) -> Box | None:
    if not path.is_file():
        return None
    with path.open("rb") as f:
        head = f.read(64 * 1024)  # <bounds> comes first, right after <osm>
    m = _XML_BOUNDS.search(head)
    if not m:
        return None
    attrs = {k.decode(): float(v) for k, v in _ATTR.findall(m.group(1))}
    if len(attrs) != 4:
        return None
    return (attrs["minlon"], attrs["minlat"], attrs["maxlon"], attrs["maxlat"])


def check_source_covers(
    kind: str, path: str | Path | None, districts: gpd.GeoDataFrame, *, option: str = "--source"
) -> list[str]:
    """Warn of each district the source's declared extent misses; refuse when it misses them all.

    Parameters
    ----------
    kind, path
        The source (`walkcover.sources.source_spec`).
    districts
        The districts asked for (EPSG:4326 or any CRS; ``name``, ``district_id`` columns).
    option
        Where the source came from, for messages.

    Returns
    -------
    list of str
        The ids of the districts the extent misses (empty when it covers them, or declares none).

    Raises
    ------
    SourceError
        The extent misses every district asked for: the file is of somewhere else.
    """
    box = header_box(kind, path)
    if box is None or not len(districts):
        return []
    geoms = districts.to_crs(4326).geometry if districts.crs else districts.geometry
    hits = shapely.intersects(geoms.to_numpy(), shapely.box(*box))
    missed = districts.loc[~hits]
    if not len(missed):
        return []
    extent = f"lon {box[0]:.4f}–{box[2]:.4f}, lat {box[1]:.4f}–{box[3]:.4f}"
    name = Path(str(path)).name
    if len(missed) == len(districts):
        raise SourceError(
            f"{option} {name!r} covers {extent}, which misses every district asked for "
            f"({_names(missed)}); pass the file of this city (e.g. Geofabrik's extract of its "
            "province)"
        )
    warnings.warn(
        f"{option} {name!r} covers {extent}, which misses {_names(missed)}: those districts will "
        "show no data; pass a file that covers them",
        UserWarning,
        stacklevel=2,
    )
    return [str(i) for i in missed["district_id"]]


def _names(districts: gpd.GeoDataFrame, *, most: int = 5) -> str:
    names = [str(n) for n in districts["name"]]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
