"""Read an ``.osm.pbf`` file's street segments and tagged features with libosmium (pyosmium).

The layers are those the pyrosm reader gave (``read_pbf(reader="pyrosm")``): the same street
segments in the same order, and the same features (ids, tags, geometries) in the same order;
``scripts/bench_readers.py`` checks it layer by layer on any file, ``tests/test_readers.py`` on
the sample. On the L city: 552,150 features and 1.6 M segments, identical, in a third of the time.

- **No Python step per object.** libosmium reads the file in C++, its filters keep what the query
  may want (its keys, ``building``, ``highway``), and its writer writes that as text (OPL, with
  each way's node locations from its location index); pyarrow's string kernels parse every line
  at once (the node lists; the tags split, decoded, sorted and written as canonical JSON text,
  `walkcover.config.tags`), numpy and shapely make the geometries in bulk. Python touches each relation with several rings, and little else. (Reading
  with pyosmium's ``FileProcessor`` costs a Python step per object, tag and node: slower than
  pyrosm on a city, see ``docs/benchmarks.md``.)
- **Geometries** as pyrosm makes them: a node is a Point; a way a Polygon when it is closed and its
  tags make it an area (`is_area`: the OSM wiki's polygon features, as OSMnx reads them), else a
  LineString (of the nodes the file holds); a relation of any type with the query's tags the
  even-odd overlay of the closed rings its member ways merge into, whatever their roles
  (`multipolygon`), or lines for a route, a waterway and the like (`_linear`). A way that is a
  member of a relation the query keeps is that relation's area, not a feature of its own (the
  buildings likewise with their relations).
- **Where.** Every feature with a vertex inside the query's polygon, whole (a way or relation
  crossing its edge keeps all of its nodes); street segments with an end inside.
- **Tags.** Every OSM tag of a feature, as written, in one canonical JSON text per feature.
"""

from __future__ import annotations

import json
import re
from array import array
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon
from shapely.ops import polygonize

from walkcover.config.tags import TAG_DTYPE, tag_dicts, tag_texts_from_pairs, tag_values
from walkcover.sources._layers import (
    FEATURE_COLUMNS,
    STREET_TAGS,
    OSMQuery,
    empty_features,
    empty_streets,
)

#: Highway values that are no street (the ways pyrosm's and OSMnx's "all" network leaves out,
#: with ``area=yes``); `walkcover.engine.network.walkable_streets` then keeps the walkable ones.
NOT_STREETS = frozenset(
    {
        "abandoned",
        "construction",
        "no",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "rest_area",
        "services",
    }
)

_ALL, _PASS, _BLOCK = "all", "passlist", "blocklist"
#: Which closed ways are areas: per key, every value (all), only the listed ones (passlist) or all
#: but the listed ones (blocklist). The OSM wiki's polygon features
#: (https://wiki.openstreetmap.org/wiki/Overpass_turbo/Polygon_Features), as OSMnx and pyrosm
#: read them.
POLYGON_FEATURES: dict[str, tuple[str, frozenset[str]]] = {
    "aeroway": (_BLOCK, frozenset({"taxiway"})),
    "amenity": (_ALL, frozenset()),
    "area": (_ALL, frozenset()),
    "area:highway": (_ALL, frozenset()),
    "barrier": (_PASS, frozenset({"city_wall", "ditch", "hedge", "retaining_wall", "spikes"})),
    "boundary": (_ALL, frozenset()),
    "building": (_ALL, frozenset()),
    "building:part": (_ALL, frozenset()),
    "craft": (_ALL, frozenset()),
    "golf": (_ALL, frozenset()),
    "highway": (_PASS, frozenset({"elevator", "escape", "rest_area", "services"})),
    "historic": (_ALL, frozenset()),
    "indoor": (_ALL, frozenset()),
    "landuse": (_ALL, frozenset()),
    "leisure": (_ALL, frozenset()),
    "man_made": (_BLOCK, frozenset({"cutline", "embankment", "pipeline"})),
    "military": (_ALL, frozenset()),
    "natural": (_BLOCK, frozenset({"arete", "cliff", "coastline", "ridge", "tree_row"})),
    "office": (_ALL, frozenset()),
    "place": (_ALL, frozenset()),
    "power": (_PASS, frozenset({"generator", "plant", "substation", "transformer"})),
    "public_transport": (_ALL, frozenset()),
    "railway": (_PASS, frozenset({"platform", "roundhouse", "station", "turntable"})),
    "ruins": (_ALL, frozenset()),
    "shop": (_ALL, frozenset()),
    "tourism": (_ALL, frozenset()),
    "waterway": (_PASS, frozenset({"boatyard", "dam", "dock", "riverbank"})),
}


def is_area(tags: Mapping[str, str]) -> bool:
    """Whether a closed way tagged `tags` is an area: never with ``area=no``, else when one of its
    tags is a polygon feature (`POLYGON_FEATURES`)."""
    if tags.get("area") == "no":
        return False
    for key, value in tags.items():
        rule = POLYGON_FEATURES.get(key)
        if rule is None:
            continue
        kind, values = rule
        if kind == _ALL or (kind == _PASS and value in values):
            return True
        if kind == _BLOCK and value not in values:
            return True
    return False


def _wants(feature_tags: Mapping[str, bool | list[str]]) -> dict[str, frozenset[str] | None]:
    """The query's tags as key -> accepted values (None: any value)."""
    return {
        k: None if v is True else frozenset(str(x) for x in (v or []))
        for k, v in feature_tags.items()
    }


# --- libosmium's OPL text ------------------------------------------------------------------
# libosmium writes what its C++ filters keep as OPL (one object a line: ``n12 Tk=v,k2=v2 x1.5
# y2.5``, ``w7 Tk=v Nn1x1.5y2.5,n2x..y..``, ``r3 Tk=v Mw7@outer,n1@``); pyarrow then parses every
# line at once. In a tag, libosmium writes a character outside (0x21-0x24, 0x26-0x2b, 0x2d-0x3c,
# 0x3e-0x3f, 0x41-0x7e, 0xa1-0xac, 0xae-0x5ff) as its code point in lower-case hex between two
# ``%``: two digits up to 0xff, four up to 0xffff, five beyond (its plane-16 private-use
# characters, U+100000 and up, lose their top bit: not told apart from plane 1's).

_OPL_OK = ((0x21, 0x24), (0x26, 0x2B), (0x2D, 0x3C), (0x3E, 0x3F), (0x41, 0x7E), (0xA1, 0xAC),
           (0xAE, 0x5FF))  # fmt: skip
_ESCAPE = re.compile(r"%([0-9a-f]{2}|[0-9a-f]{4,5})%")


def opl_encode(text: str) -> str:
    """`text` as libosmium writes it in an OPL tag (see above)."""
    out = []
    for ch in text:
        c = ord(ch)
        if any(lo <= c <= hi for lo, hi in _OPL_OK):
            out.append(ch)
        else:
            out.append(f"%{c:02x}%" if c <= 0xFF else f"%{c:04x}%" if c <= 0xFFFF else f"%{c:05x}%")
    return "".join(out)


def opl_decode(text: str) -> str:
    """An OPL tag key or value as text."""
    if "%" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m[1], 16)), text)


def _write_opl(
    path: str,
    dest: Path,
    entities: Any,
    *handlers: Any,
    locations: bool = False,
) -> None:
    """Run libosmium over `path` (the `entities` of it), writing what `handlers` (filters) keep
    to `dest` as OPL; with `locations`, the handlers' first is the node location index and each
    way's nodes are written with their locations."""
    import osmium

    fmt = "opl,add_metadata=false" + (",locations_on_ways=true" if locations else "")
    writer = osmium.SimpleWriter(osmium.io.File(str(dest), fmt), overwrite=True)
    reader = osmium.io.Reader(path, entities)
    try:
        try:
            osmium.apply(reader, *handlers, writer)
        except RuntimeError as exc:  # libosmium's writer says "Write failed: <why>"
            if str(exc).startswith("Write failed"):
                raise writer_failed(writer, dest, exc) from exc
            raise
        try:
            writer.close()  # (libosmium writes on a thread of its own: a full disk shows here)
        except RuntimeError as exc:
            raise writer_failed(writer, dest, exc) from exc
    finally:
        reader.close()


def writer_failed(writer: Any, dest: Path, exc: BaseException) -> OSError:
    """The error of a pyosmium writer that could not write `dest` (a full or read-only folder),
    as an `OSError` for the caller to name the folder and what to do. The writer is kept from being destroyed: pyosmium's writer closes itself once more when
    destroyed, and after a failed write that second close raises inside a C++ destructor, which
    aborts the whole process (pyosmium 4.3)."""
    import ctypes

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(writer))  # one small object, never freed
    _FAILED_WRITERS.append(writer)
    return OSError(f"writing {dest.name} failed ({exc})")


#: pyosmium writers that failed (`writer_failed`), kept alive for the life of the process.
_FAILED_WRITERS: list[Any] = []


def _opl_lines(path: Path) -> Any:
    """The lines of an OPL file, as a pyarrow string array (read on pyarrow's threads)."""
    import pyarrow as pa
    import pyarrow.csv as pv

    if path.stat().st_size == 0:
        return pa.array([], type=pa.string())
    table = pv.read_csv(path, **_opl_csv_options())
    return table.column("line").combine_chunks()


#: How much OPL text a block of `_scan_main` holds (pyarrow's CSV block): about 12 blocks on the
#: L city's 408 MB, two of them scanned at a time.
OPL_BLOCK_BYTES = 1 << 25


def _opl_csv_options() -> dict[str, Any]:
    """pyarrow CSV options that read an OPL file as one text column of whole lines."""
    import pyarrow as pa
    import pyarrow.csv as pv

    return {
        "read_options": pv.ReadOptions(column_names=["line"], block_size=OPL_BLOCK_BYTES),
        # libosmium writes every control character escaped: \x01 never occurs
        "parse_options": pv.ParseOptions(delimiter="\x01", quote_char=False, escape_char=False),
        "convert_options": pv.ConvertOptions(
            column_types={"line": pa.string()}, strings_can_be_null=False
        ),
    }


#: Each kind of OPL line (without metadata) and its fields.
_LINE = {
    "n": r"^n(?P<id>-?[0-9]+) T(?P<tags>[^ ]*) x(?P<x>[^ ]*) y(?P<y>[^ ]*)$",
    "w": r"^w(?P<id>-?[0-9]+) T(?P<tags>[^ ]*) N(?P<nodes>[^ ]*)$",
    "r": r"^r(?P<id>-?[0-9]+) T(?P<tags>[^ ]*) M(?P<members>[^ ]*)$",
}


def _fields(lines: Any, kind: str) -> dict[str, Any]:
    """The OPL lines of one kind (``n``, ``w``, ``r``), as their fields without their letters:
    ``id`` as int64, the others as strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mine = lines.filter(pc.starts_with(lines, kind)) if len(lines) else lines
    parts = pc.extract_regex(mine, _LINE[kind])
    if parts.null_count:
        raise RuntimeError(f"libosmium wrote {parts.null_count} OPL line(s) not understood")
    names = [parts.type.field(i).name for i in range(parts.type.num_fields)]
    out = {name: parts.field(name) for name in names}
    out["id"] = out["id"].cast(pa.int64())
    return out


def _has(tags: Any, pattern: str) -> np.ndarray:
    """Whether each OPL tag string matches `pattern` (RE2, on libosmium's escaped text)."""
    import pyarrow.compute as pc

    if not len(tags):
        return np.zeros(0, dtype=bool)
    return pc.match_substring_regex(tags, pattern).to_numpy(zero_copy_only=False)


def _tag_pattern(pairs: Iterable[tuple[str, Iterable[str] | None]]) -> str | None:
    """An RE2 pattern finding a tag: each key with one of its values (None: any value)."""
    alternatives = []
    for key, values in pairs:
        k = re.escape(opl_encode(key))
        if values is None:
            alternatives.append(f"{k}=[^,]*")
        else:
            vals = "|".join(re.escape(opl_encode(v)) for v in sorted(values))
            if vals:
                alternatives.append(f"{k}=(?:{vals})")
    if not alternatives:
        return None
    return f"(?:^|,)(?:{'|'.join(alternatives)})(?:,|$)"


def _values(tags: Any, key: str) -> np.ndarray:
    """Each OPL tag string's value of `key` as text (None where it has none), as an object array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(tags):
        return np.zeros(0, dtype=object)
    got = pc.extract_regex(tags, f"(?:^|,){re.escape(opl_encode(key))}=(?P<v>[^,]*)")
    values = pc.if_else(got.is_valid(), got.field("v"), pa.scalar(None, pa.string()))
    out = values.to_numpy(zero_copy_only=False)
    escaped = pc.fill_null(pc.match_substring(values, "%"), False)
    for i in np.flatnonzero(escaped.to_numpy(zero_copy_only=False)):
        out[i] = opl_decode(out[i])
    return out


#: Tag strings turned into JSON at a time (`_tag_texts`): their pairs are held apart meanwhile.
TAG_CHUNK_ROWS = 100_000


def _tag_texts(tags: Any) -> Any:
    """Each OPL tag string as its canonical JSON text (`walkcover.config.tags.tag_text`), a
    pyarrow large-string array: split into pairs, decoded and sorted by pyarrow's kernels, a
    chunk of `TAG_CHUNK_ROWS` at a time; no dict, no Python string per feature."""
    import pyarrow as pa

    if not len(tags):
        return pa.array([], type=pa.large_string())
    chunks = [
        _tag_text_chunk(tags.slice(start, TAG_CHUNK_ROWS))
        for start in range(0, len(tags), TAG_CHUNK_ROWS)
    ]
    return pa.concat_arrays(chunks)


def _tag_text_chunk(tags: Any) -> Any:
    """`_tag_texts` of one chunk."""
    import pyarrow.compute as pc

    lists = pc.split_pattern(tags, ",")  # "," and "=" within a key or value are escaped
    rows = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    pairs = pc.list_flatten(lists)
    some = pc.greater(pc.utf8_length(pairs), 0)  # a feature without tags: one empty pair
    rows, pairs = rows[some.to_numpy(zero_copy_only=False)], pairs.filter(some)
    key_value = pc.split_pattern(pairs, "=", max_splits=1)
    keys = _opl_decoded(pc.list_element(key_value, 0))
    values = _opl_decoded(pc.list_element(key_value, 1))
    return tag_texts_from_pairs(rows, keys, values, n_rows=len(tags))


def _opl_decoded(text: Any) -> Any:
    """OPL keys or values (pyarrow strings) as the text they stand for: the few with an escape
    turned into JSON strings by pyarrow's string kernels and parsed in one call (one with a
    character beyond U+FFFF, which JSON writes as two, by `opl_decode`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    escaped = pc.match_substring(text, "%")
    if not len(text) or not pc.any(escaped).as_py():
        return text
    mine = text.filter(escaped)
    out = pc.replace_substring(mine, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    # each escape in one left-to-right scan, marked apart (\x01 … \x02 never occur: libosmium
    # escapes control characters), then written as JSON's \uXXXX
    out = pc.replace_substring_regex(out, "%([0-9a-f]{2})%|%([0-9a-f]{4})%", "\x01\\1\\2\x02")
    out = pc.replace_substring_regex(out, "\x01([0-9a-f]{4})\x02", "\\\\u\\1")
    out = pc.replace_substring_regex(out, "\x01([0-9a-f]{2})\x02", "\\\\u00\\1")
    quoted = pc.binary_join_element_wise('"', out, '"', "").to_pylist()
    decoded = json.loads("[" + ",".join(quoted) + "]")
    far = np.flatnonzero(_has(mine, "%[0-9a-f]{5}%"))
    if len(far):
        for i, raw in zip(far, mine.take(pa.array(far)).to_pylist(), strict=True):
            decoded[i] = opl_decode(raw)
    return pc.replace_with_mask(text, escaped, pa.array(decoded, type=text.type))


def _node_lists(nodes: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ways' node lists (OPL ``N`` fields, with locations): per way its node count, and
    flat each node's id, longitude and latitude (NaN where the file lacks the node)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(nodes):
        empty = np.zeros(0)
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty, empty
    counts = pc.count_substring(nodes, ",").to_numpy(zero_copy_only=False) + 1
    some = pc.utf8_length(nodes).to_numpy(zero_copy_only=False) > 0
    counts[~some] = 0
    if not some.all():
        nodes = nodes.filter(pa.array(some))
    # n12x1.5y2.5,n13xy -> 12,1.5,2.5,13,NaN,NaN (ids are below 2**53: exact as float64)
    text = pc.utf8_slice_codeunits(nodes, 1)
    text = pc.replace_substring(text, "xy", "xNaNyNaN")
    text = pc.replace_substring(text, ",n", ",")
    text = pc.replace_substring_regex(text, "[xy]", ",")
    flat = pc.list_flatten(pc.split_pattern(text, ",")).cast(pa.float64()).to_numpy()
    flat = flat.reshape(-1, 3)
    if len(flat) != counts.sum():
        raise RuntimeError("libosmium's node lists could not be parsed")
    return counts.astype(np.int64), flat[:, 0].astype(np.int64), flat[:, 1], flat[:, 2]


def _area_flags(tags: Any) -> np.ndarray:
    """`is_area` of each OPL tag string, at once."""
    every = [k for k, (kind, _) in POLYGON_FEATURES.items() if kind == _ALL]
    listed = [(k, v) for k, (kind, v) in POLYGON_FEATURES.items() if kind == _PASS]
    out = _has(tags, _tag_pattern([(k, None) for k in every]) or "$^")
    out |= _has(tags, _tag_pattern(listed) or "$^")
    for key, (kind, values) in POLYGON_FEATURES.items():
        if kind == _BLOCK:
            present = _has(tags, _tag_pattern([(key, None)]) or "$^")
            out |= present & ~_has(tags, _tag_pattern([(key, values)]) or "$^")
    out &= ~_has(tags, _tag_pattern([("area", ["no"])]) or "$^")
    return out


def read_layers(path: str | Path, query: OSMQuery) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The street segments and the tagged features of `path` inside ``query.polygon``.

    libosmium reads the file twice, its C++ filters keeping what may be wanted and its writer
    writing it as text (OPL), which pyarrow parses at once: no Python step per object.

    1. nodes with one of the query's keys, ways with one of them, ``building`` or ``highway``,
       each way's nodes with their locations (libosmium's location index), and the relations
       with one of the query's keys or ``building``;
    2. the member ways of the relations wanted, with their nodes' locations (the same index).

    Parameters
    ----------
    path
        An ``.osm.pbf`` file.
    query
        The area (EPSG:4326) and the feature tags (`OSMQuery`).

    Returns
    -------
    streets, features
        As `walkcover.sources.OSMLayers` holds them (EPSG:4326): one row per street segment with
        ``u, v, osm_id`` and the way's `STREET_TAGS`; one row per feature with ``osm_id,
        osm_type, name, tags, geometry``.

    Raises
    ------
    RuntimeError
        libosmium could not read the file (the caller names it).
    """
    import tempfile

    import osmium

    path = str(path)
    wants = _wants(query.feature_tags)
    poi_pattern = _tag_pattern(wants.items())
    building_pattern = _tag_pattern([("building", None)]) or "$^"
    area = shapely.from_wkb(shapely.to_wkb(query.polygon))  # prepared on a copy
    shapely.prepare(area)
    keys = list(wants)

    def poi_of(tags: Any) -> np.ndarray:
        return _has(tags, poi_pattern) if poi_pattern else np.zeros(len(tags), dtype=bool)

    with tempfile.TemporaryDirectory(prefix="walkcover-opl-") as tmp:
        folder = Path(tmp)
        index = osmium.index.create_map("flex_mem")
        locations = osmium.NodeLocationsForWays(index)
        locations.ignore_errors()  # a node the file lacks: written without a location
        node_keys = (
            osmium.filter.KeyFilter(*keys) if keys else osmium.filter.EntityFilter(osmium.osm.WAY)
        )
        node_keys.enable_for(osmium.osm.NODE)
        way_keys = osmium.filter.KeyFilter(*keys, "building", "highway")
        way_keys.enable_for(osmium.osm.WAY)
        rel_keys = osmium.filter.KeyFilter(*keys, "building")
        rel_keys.enable_for(osmium.osm.RELATION)
        _write_opl(
            path,
            folder / "main.opl",
            osmium.osm.NODE | osmium.osm.WAY | osmium.osm.RELATION,
            locations,
            node_keys,
            way_keys,
            rel_keys,
            locations=True,
        )
        main, rel = _scan_main(
            folder / "main.opl", poi_of=poi_of, building_pattern=building_pattern, area=area
        )
        rel_poi, rel_building = poi_of(rel["tags"]), _has(rel["tags"], building_pattern)
        wanted_rel = np.flatnonzero(rel_poi | rel_building)
        rel_members = [
            [int(m[1 : m.index("@")]) for m in text.split(",") if m.startswith("w")]
            for text in rel["members"].take(wanted_rel).to_pylist()
        ]
        relations = [
            (int(rel["id"][i].as_py()), bool(rel_poi[i]), bool(rel_building[i]), m)
            for i, m in zip(wanted_rel, rel_members, strict=True)
        ]
        # a member way of a relation kept is that relation's area (pyrosm's rule, by layer)
        main = _members_apart(
            main,
            in_poi_relation={w for _, poi, _, m in relations if poi for w in m},
            in_building_relation={w for _, _, building, m in relations if building for w in m},
        )

        member_ids = {w for m in rel_members for w in m}
        members = _Members.none()
        if member_ids:
            _write_opl(
                path,
                folder / "members.opl",
                osmium.osm.WAY,
                locations,
                osmium.filter.IdFilter(member_ids),
                locations=True,
            )
            mem = _fields(_opl_lines(folder / "members.opl"), "w")
            counts, _, x, y = _node_lists(mem["nodes"])
            members = _Members(mem["id"].to_numpy(), counts, x, y)

    # the streets, then the relations, beside the nodes' and ways' features (numpy's, shapely's
    # and Arrow's work on each runs without the interpreter lock; `area` is used by the second
    # thread alone until both are done): on a city the ways' features take about as long as the
    # streets, the relations a fifth of that
    rel_tags = _tag_texts(rel["tags"].take(wanted_rel)).to_pylist()  # a few thousand
    with ThreadPoolExecutor(max_workers=1) as pool:
        street_frame = pool.submit(_street_frame, main, area)
        relation_frames = pool.submit(
            _relation_frames,
            [
                (rid, tags, m, poi, b)
                for (rid, poi, b, m), tags in zip(relations, rel_tags, strict=True)
            ],
            members,
        )
        node_frame = _node_frame(main.nodes)
        poi_ways, building_ways = _way_features(main)
        streets = street_frame.result()
        poi_rel, building_rel = relation_frames.result()
    del main  # its text and node lists, before the features are put together
    # pyrosm's order: the query's features (nodes, ways, relations), then the buildings
    ordered = [node_frame, poi_ways, poi_rel, building_ways, building_rel]
    return streets, _inside(ordered, area)


def _node_frame(nodes: dict[str, Any]) -> gpd.GeoDataFrame:
    """The query's nodes (their OPL fields) as points."""
    import pyarrow as pa

    if not len(nodes["id"]):
        return _frame("node", [], [], [])
    lon = nodes["x"].cast(pa.float64()).to_numpy()
    lat = nodes["y"].cast(pa.float64()).to_numpy()
    return _frame(
        "node",
        nodes["id"].to_pylist(),
        _tag_texts(nodes["tags"]),
        shapely.points(np.column_stack([lon, lat])),
    )


@dataclass
class _Main:
    """What the main read keeps: the query's located nodes (OPL fields), and the ways that are
    streets or features (their ids, what they are, tags, and their node lists)."""

    nodes: dict[str, Any]
    way_ids: np.ndarray
    street: np.ndarray
    as_poi: np.ndarray
    as_building: np.ndarray
    highway: np.ndarray
    tags: Any
    counts: np.ndarray
    refs: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


def _scan_block(
    lines: Any, *, poi_of: Any, building_pattern: str, area: shapely.Geometry
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One block of the main OPL file's lines (`_scan_main`): its query nodes inside `area`
    (OPL fields), its ways with a node inside it (`_Main`'s arrays) and its relations (OPL
    fields)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    area_yes = _tag_pattern([("area", ["yes"])]) or "$^"
    nodes = _fields(lines, "n")
    located = pc.and_(
        pc.greater(pc.utf8_length(nodes["x"]), 0), pc.greater(pc.utf8_length(nodes["y"]), 0)
    ).to_numpy(zero_copy_only=False)
    wanted = np.flatnonzero(poi_of(nodes["tags"]) & located)
    x = nodes["x"].take(pa.array(wanted)).cast(pa.float64()).to_numpy()
    y = nodes["y"].take(pa.array(wanted)).cast(pa.float64()).to_numpy()
    keep = pa.array(wanted[shapely.contains_xy(area, x, y)])
    node_out = {k: nodes[k].take(keep) for k in ("id", "tags", "x", "y")}
    ways, rels = _fields(lines, "w"), _fields(lines, "r")
    del lines, nodes
    way_ids = ways["id"].to_numpy()
    highway = _values(ways["tags"], "highway")
    street = np.array([h is not None and h not in NOT_STREETS for h in highway], dtype=bool)
    street &= ~_has(ways["tags"], area_yes)
    # as the query's or as buildings: a member of a relation kept is told apart once the
    # relations (the file's last lines) are read (`_members_apart`)
    as_poi = poi_of(ways["tags"])
    as_building = _has(ways["tags"], building_pattern)
    rows = np.flatnonzero(street | as_poi | as_building)
    counts, refs, lon, lat = _node_lists(ways["nodes"].take(pa.array(rows)))
    # the ways with a node inside the area: a segment needs an end inside, a feature a vertex
    known = np.isfinite(lon)
    inside = np.zeros(len(lon), dtype=bool)
    inside[known] = shapely.contains_xy(area, lon[known], lat[known])
    near = np.bincount(np.repeat(np.arange(len(rows)), counts)[inside], minlength=len(rows)) > 0
    by_node = np.repeat(near, counts)
    rows, counts = rows[near], counts[near]
    refs, lon, lat = refs[by_node], lon[by_node], lat[by_node]
    way_out = {
        "way_ids": way_ids[rows],
        "street": street[rows],
        "as_poi": as_poi[rows],
        "as_building": as_building[rows],
        "highway": highway[rows],
        "tags": ways["tags"].take(pa.array(rows)),
        "counts": counts,
        "refs": refs,
        "lon": lon,
        "lat": lat,
    }
    return node_out, way_out, {k: rels[k] for k in ("id", "tags", "members")}


def _scan_main(
    path: Path, *, poi_of: Any, building_pattern: str, area: shapely.Geometry
) -> tuple[_Main, dict[str, Any]]:
    """The main OPL file, read a block of lines at a time (the memory a block's fields and
    their transformations take is all the text ever held): the query's nodes inside `area`
    (prepared), the ways with a node inside it that are streets or, as the query's or as
    buildings, features (what a file larger than the area holds beyond it is let go block by
    block; a way that is a member of a relation kept is in, until `_members_apart`), and the
    relations (OPL fields).

    Two blocks are scanned at a time, on two threads (Arrow's, numpy's and shapely's work on a
    block runs without the interpreter lock), each with its own prepared copy of `area`, and
    put together in the file's order; at most two blocks are held."""
    import pyarrow as pa
    import pyarrow.csv as pv

    parts: dict[str, list[Any]] = {k: [] for k in _Main.__dataclass_fields__ if k != "nodes"}
    node_parts: dict[str, list[Any]] = {"id": [], "tags": [], "x": [], "y": []}
    rel_parts: dict[str, list[Any]] = {"id": [], "tags": [], "members": []}
    scan = partial(_scan_block, poi_of=poi_of, building_pattern=building_pattern)
    areas = [area, shapely.from_wkb(shapely.to_wkb(area))]  # a prepared geometry per thread
    for a in areas:
        shapely.prepare(a)

    def keep(done: Future[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]) -> None:
        nodes, ways, rels = done.result()
        for k, v in nodes.items():
            node_parts[k].append(v)
        for k, v in ways.items():
            parts[k].append(v)
        for k, v in rels.items():
            rel_parts[k].append(v)

    batches: Iterable[Any] = []
    if path.stat().st_size:
        batches = pv.open_csv(path, **_opl_csv_options())
    running: deque[Future[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]] = deque()
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            for i, batch in enumerate(batches):
                if len(running) == 2:  # the block before last is done before its copy is reused
                    keep(running.popleft())
                running.append(pool.submit(scan, batch.column(0), area=areas[i % 2]))
                del batch
            while running:
                keep(running.popleft())
        except BaseException:
            for fut in running:
                fut.cancel()
            raise
    empty_text = pa.array([], type=pa.string())
    nodes = {
        k: pa.concat_arrays(v)
        if v
        else (pa.array([], type=pa.int64()) if k == "id" else empty_text)
        for k, v in node_parts.items()
    }
    if not parts["way_ids"]:  # an empty file
        parts = {k: [np.zeros(0, dtype=_EMPTY.get(k, float))] for k in parts}
        parts["tags"] = [empty_text]
    values = {
        k: pa.concat_arrays(v) if k == "tags" else np.concatenate(v) for k, v in parts.items()
    }
    rels = {
        k: pa.concat_arrays(v)
        if v
        else (pa.array([], type=pa.int64()) if k == "id" else empty_text)
        for k, v in rel_parts.items()
    }
    return _Main(nodes=nodes, **values), rels


def _members_apart(
    main: _Main, *, in_poi_relation: set[int], in_building_relation: set[int]
) -> _Main:
    """`main` with the member ways of the relations kept told apart: a way that is a member of
    a relation kept as the query's is not a feature of its own, nor a building when a building
    relation holds it (pyrosm's rule, by layer); a way that is then neither, nor a street, goes."""
    import pyarrow as pa

    as_poi = main.as_poi & ~np.isin(main.way_ids, list(in_poi_relation))
    as_building = ~as_poi & main.as_building & ~np.isin(main.way_ids, list(in_building_relation))
    keep = main.street | as_poi | as_building
    by_node = np.repeat(keep, main.counts)
    return _Main(
        nodes=main.nodes,
        way_ids=main.way_ids[keep],
        street=main.street[keep],
        as_poi=as_poi[keep],
        as_building=as_building[keep],
        highway=main.highway[keep],
        tags=main.tags.take(pa.array(np.flatnonzero(keep))),
        counts=main.counts[keep],
        refs=main.refs[by_node],
        lon=main.lon[by_node],
        lat=main.lat[by_node],
    )


#: The dtypes of `_Main`'s arrays when there is nothing to read (float otherwise).
_EMPTY: dict[str, Any] = {
    "way_ids": np.int64,
    "street": bool,
    "as_poi": bool,
    "as_building": bool,
    "highway": object,
    "counts": np.int64,
    "refs": np.int64,
}


def _street_frame(main: _Main, area: shapely.Geometry) -> gpd.GeoDataFrame:
    """The street ways' segments (`street_segments`)."""
    rows = np.flatnonzero(main.street)
    node_rows = np.repeat(main.street, main.counts)
    tags = main.tags.take(rows)
    columns = {k: main.highway[rows] if k == "highway" else _values(tags, k) for k in STREET_TAGS}
    return street_segments(
        main.way_ids[rows].tolist(),
        columns,
        main.refs[node_rows],
        main.lon[node_rows],
        main.lat[node_rows],
        main.counts[rows],
        area,
    )


def _way_features(main: _Main) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The query's ways and the buildings' (`as_poi`, `as_building`) with their geometries: a
    Polygon when closed and an area by its tags (`is_area`), else a LineString; a way whose
    nodes the file does not all hold is built from those it holds, as pyrosm builds it."""
    import pyarrow as pa

    counts, refs, lon, lat = main.counts, main.refs, main.lon, main.lat
    as_poi, as_building, way_ids = main.as_poi, main.as_building, main.way_ids
    rows = np.flatnonzero((as_poi | as_building) & (counts > 0))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = counts[rows]
    first, last = starts[rows], starts[rows] + n - 1
    closed = refs[first] == refs[last]
    tags = main.tags.take(rows)
    is_poly = closed & _area_flags(tags)
    owner = np.repeat(np.arange(len(rows)), n)
    offsets = np.cumsum(n) - n  # where each kept way's nodes start among the kept nodes
    positions = np.arange(int(n.sum())) - np.repeat(offsets, n) + np.repeat(first, n)
    x, y = lon[positions], lat[positions]
    missing = np.zeros(len(rows), dtype=bool)
    np.logical_or.at(missing, owner, ~np.isfinite(x))
    geoms = np.empty(len(rows), dtype=object)
    rings = is_poly & ~missing & (n >= 4)
    lines = ~is_poly & ~missing & (n >= 2)
    for sel, make in ((rings, "ring"), (lines, "line")):
        if not sel.any():
            continue
        pick = sel[owner]
        coords = np.column_stack([x[pick], y[pick]])
        index = np.repeat(np.arange(int(sel.sum())), n[sel])
        if make == "ring":
            made = shapely.polygons(shapely.linearrings(coords, indices=index))
        else:
            made = shapely.linestrings(coords, indices=index)
        geoms[sel] = made
    for j in np.flatnonzero(~rings & ~lines):  # nodes missing, or too few for their shape
        xs, ys = x[offsets[j] : offsets[j] + n[j]], y[offsets[j] : offsets[j] + n[j]]
        ok = np.isfinite(xs)
        kept = list(zip(xs[ok].tolist(), ys[ok].tolist(), strict=True))
        if is_poly[j]:
            geoms[j] = _polygon(kept)
        else:
            geoms[j] = shapely.linestrings(kept) if len(kept) >= 2 else None
    keep = np.array([g is not None for g in geoms], dtype=bool)
    all_tags = _tag_texts(tags)
    frames = []
    for mask in (as_poi[rows], as_building[rows]):
        idx = np.flatnonzero(keep & mask)
        frames.append(
            _frame("way", way_ids[rows][idx].tolist(), all_tags.take(pa.array(idx)), geoms[idx])
        )
    return frames[0], frames[1]


def street_segments(
    ids: list[int],
    tags: Mapping[str, list[str | None] | np.ndarray],
    refs: array | np.ndarray,
    lon: array | np.ndarray,
    lat: array | np.ndarray,
    count: array | np.ndarray,
    area: shapely.Geometry,
) -> gpd.GeoDataFrame:
    """Street ways' node-to-node segments with a node inside `area` (prepared), from their ids,
    `STREET_TAGS` and their nodes' ids and locations (flat, `count` per way; NaN where the file
    lacks a node)."""
    if not ids:
        return empty_streets()
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    way_of = np.repeat(np.arange(len(ids)), np.frombuffer(count, dtype=np.int64))
    known = np.isfinite(x)
    inside = known.copy()
    inside[known] = shapely.contains_xy(area, x[known], y[known])
    # a segment: two consecutive nodes of one way, both in the file and one at least inside (a
    # street leaving the area keeps its segment across the edge, as pyrosm's complete ways do)
    a = np.flatnonzero(
        (way_of[1:] == way_of[:-1]) & known[:-1] & known[1:] & (inside[:-1] | inside[1:])
    )
    b = a + 1
    node_ids = np.frombuffer(refs, dtype=np.int64)
    owner = way_of[a]
    lines = shapely.linestrings(
        np.stack([np.column_stack([x[a], y[a]]), np.column_stack([x[b], y[b]])], axis=1)
    )
    osm_id = np.array([f"way/{i}" for i in ids], dtype=object)
    return gpd.GeoDataFrame(
        {
            "u": node_ids[a],
            "v": node_ids[b],
            "osm_id": osm_id[owner],
            **{k: np.array(tags[k], dtype=object)[owner] for k in STREET_TAGS},
        },
        geometry=lines,
        crs=4326,
    )


def _frame(kind: str, ids: Iterable[int], tags: Any, geometry: Any) -> gpd.GeoDataFrame:
    """A features frame of one kind of element; `tags` their canonical texts (a pyarrow array
    or a list of strings)."""
    import pyarrow as pa

    ids = list(ids)
    text = pd.array(pa.array(tags, type=pa.large_string()), dtype=TAG_DTYPE)
    return gpd.GeoDataFrame(
        {
            "osm_id": [f"{kind}/{i}" for i in ids],
            "osm_type": [kind] * len(ids),
            "name": tag_values(text, "name").array,
            "tags": text,
        },
        geometry=np.asarray(geometry, dtype=object) if len(ids) else [],
        crs=4326,
    )


def _polygon(coords: list[Any]) -> shapely.Geometry | None:
    """pyrosm's polygon of a closed way's kept node locations: None below three of them or when
    GEOS cannot make a ring of them."""
    if len(coords) <= 2:
        return None
    try:
        return shapely.polygons(coords)
    except (shapely.errors.GEOSException, ValueError):
        return None


@dataclass(frozen=True)
class _Members:
    """The relations' member ways as read: their ids, node counts and node locations (flat,
    NaN where the file lacks a node)."""

    ids: np.ndarray
    counts: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def none(cls) -> _Members:
        empty = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty, empty)


def _relation_frames(
    relations: list[Any], members: _Members
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The query's relations and the buildings' (those the query has not), with their
    geometries (`relation_geometries`)."""
    linear = [_linear(tags or {}) for tags in tag_dicts([r[1] for r in relations])]
    geometries = relation_geometries([r[2] for r in relations], linear, members)
    rows: tuple[list[Any], list[Any]] = ([], [])
    for (rid, tags, _ways, poi, _building), geometry in zip(relations, geometries, strict=True):
        if geometry is not None:
            rows[0 if poi else 1].append((rid, tags, geometry))
    poi, building = (
        _frame("relation", [r[0] for r in part], [r[1] for r in part], [r[2] for r in part])
        for part in rows
    )
    return poi, building


def relation_geometries(
    ways: list[list[int]], linear: list[bool], members: _Members
) -> list[shapely.Geometry | None]:
    """Each relation's geometry from its member ways (`ways`, ids in member order) as pyrosm
    builds it: lines merged for a linear relation (`_lines`), else `multipolygon` (fixed again
    when invalid); None when none of its member ways is in the file or no area remains.

    The common case, a relation whose member ways merge into one closed ring, is built for all
    relations at once; the others one by one."""
    row_of = {int(w): i for i, w in enumerate(members.ids)}
    starts = np.concatenate([[0], np.cumsum(members.counts)[:-1]]).astype(np.int64)
    out: list[shapely.Geometry | None] = [None] * len(ways)

    def coords(row: int) -> list[tuple[float, float]]:
        s, n = starts[row], members.counts[row]
        xs, ys = members.x[s : s + n], members.y[s : s + n]
        ok = np.isfinite(xs)
        return list(zip(xs[ok].tolist(), ys[ok].tolist(), strict=True))

    # every member occurrence of the area relations: (relation, member way row)
    occ_rel, occ_row = [], []
    for r, (member_ways, is_linear) in enumerate(zip(ways, linear, strict=True)):
        rows = [row_of[w] for w in member_ways if w in row_of]
        if not rows:
            continue
        if is_linear:
            out[r] = _lines([coords(i) for i in rows])
            continue
        occ_rel.extend([r] * len(rows))
        occ_row.extend(rows)
    if not occ_rel:
        return out
    rel_of = np.asarray(occ_rel, dtype=np.int64)
    row = np.asarray(occ_row, dtype=np.int64)
    n = members.counts[row]
    offsets = np.cumsum(n) - n
    positions = np.arange(int(n.sum())) - np.repeat(offsets, n) + np.repeat(starts[row], n)
    x, y = members.x[positions], members.y[positions]
    occurrence = np.repeat(np.arange(len(row)), n)
    ok = np.isfinite(x)
    valid = np.bincount(occurrence[ok], minlength=len(row))
    line_ok = valid >= 2  # a member way with fewer than two located nodes is no line
    keep_node = ok & line_ok[occurrence]
    kept_occurrence = occurrence[keep_node]
    _, line_index = np.unique(kept_occurrence, return_inverse=True)
    lines = shapely.linestrings(np.column_stack([x[keep_node], y[keep_node]]), indices=line_index)
    line_rel = rel_of[line_ok]
    rel_ids, rel_index = np.unique(line_rel, return_inverse=True)
    merged = shapely.line_merge(shapely.multilinestrings(lines, indices=rel_index))
    parts, owner = shapely.get_parts(merged, return_index=True)
    is_line = (shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)
    parts, owner = parts[is_line], owner[is_line]
    npts = shapely.get_num_points(parts)
    p0 = shapely.get_coordinates(shapely.get_point(parts, 0))
    p1 = shapely.get_coordinates(shapely.get_point(parts, -1))
    closed = (npts >= 4) & (p0[:, 0] == p1[:, 0]) & (p0[:, 1] == p1[:, 1])
    ring_owner = owner[closed]
    failed = np.zeros(len(rel_ids), dtype=bool)
    try:
        ring_coords, ring_index = shapely.get_coordinates(parts[closed], return_index=True)
        polys = shapely.polygons(shapely.linearrings(ring_coords, indices=ring_index))
    except shapely.errors.GEOSException:  # a degenerate ring: relation by relation
        return _one_by_one(out, ways, rel_ids, np.ones(len(rel_ids), dtype=bool), row_of, coords)
    bad = ~shapely.is_valid(polys)
    if bad.any():
        polys[bad] = shapely.buffer(polys[bad], 0)
    solid = ~shapely.is_empty(polys)
    polys, ring_owner = polys[solid], ring_owner[solid]
    # the even-odd overlay, all relations at once: (r0 ^ r1) ^ (r2 ^ r3) … in rounds, an odd
    # last ring carried to the next round, as pyrosm pairs them
    while len(polys) and np.any(ring_owner[1:] == ring_owner[:-1]):
        size = np.bincount(ring_owner, minlength=len(rel_ids))
        start = np.cumsum(size) - size
        pos = np.arange(len(polys)) - start[ring_owner]
        first = (pos % 2 == 0) & (pos + 1 < size[ring_owner])
        take = pos % 2 == 0  # each pair's first (becomes the pair's result) and the odd last
        merged = polys.copy()
        i = np.flatnonzero(first)
        try:
            merged[i] = shapely.symmetric_difference(polys[i], polys[i + 1])
        except shapely.errors.GEOSException:  # GEOS fails on some self-touching rings
            for j in i:
                try:
                    merged[j] = shapely.symmetric_difference(polys[j], polys[j + 1])
                except shapely.errors.GEOSException:
                    failed[ring_owner[j]] = True
        polys, ring_owner = merged[take], ring_owner[take]
    for geometry, rel_row in zip(polys, ring_owner, strict=True):
        if failed[rel_row]:
            continue
        result = _polygonal(geometry)
        if result is not None and not shapely.is_valid(result):
            result = _polygonal(_fix(result))
        if result is not None and not shapely.is_valid(result):
            result = _fix(result)
        out[int(rel_ids[rel_row])] = result
    return out


def _one_by_one(
    out: list[shapely.Geometry | None],
    ways: list[list[int]],
    rel_ids: np.ndarray,
    which: np.ndarray,
    row_of: dict[int, int],
    coords: Any,
) -> list[shapely.Geometry | None]:
    """`multipolygon` relation by relation (`which` of `rel_ids`), fixed again when invalid."""
    for k in np.flatnonzero(which):
        r = int(rel_ids[k])
        geometry = multipolygon([coords(row_of[w]) for w in ways[r] if w in row_of])
        if geometry is not None and not shapely.is_valid(geometry):
            geometry = _fix(geometry)
        out[r] = geometry
    return out


def _linear(tags: Mapping[str, str]) -> bool:
    """Whether a relation tagged `tags` is lines rather than an area (pyrosm's rule: routes,
    barriers, railways, highways and waterways but their areas, ``area=no``; never a
    ``multipolygon`` or ``boundary``)."""
    if tags.get("type") in ("multipolygon", "boundary"):
        return False
    if tags.get("area") == "no":
        return True
    for key in ("barrier", "route", "railway", "highway", "waterway"):
        if key not in tags:
            continue
        value = tags[key]
        if key == "railway":
            if value not in ("platform", "station", "turntable", "roundhouse", "traverser", "wash"):
                return True
        elif key == "highway":
            if value == "pedestrian":
                if "area" in tags:
                    return tags["area"] != "yes"
            elif value not in ("platform", "rest_area", "services"):
                return True
        elif key == "waterway":
            if value not in ("riverbank", "dock", "boatyard", "dam", "fuel"):
                return True
        else:
            return True
    return False


def _lines(members: list[list[tuple[float, float]]]) -> shapely.Geometry | None:
    """A linear relation's member ways, merged where they meet."""
    lines = [shapely.linestrings(c) for c in members if len(c) >= 2]
    if not lines:
        return None
    if len(lines) == 1:
        return lines[0]
    return shapely.line_merge(shapely.multilinestrings(lines))


def multipolygon(members: list[list[tuple[float, float]]]) -> shapely.Geometry | None:
    """A multipolygon relation's area from its member ways' coordinates, as pyrosm builds it: the
    member ways merged into lines, the closed ones made polygons (fixed with ``buffer(0)`` when
    invalid), their even-odd overlay (a point is inside when an odd number of rings cover it,
    whatever the members' roles), kept polygonal and fixed when invalid; None when no closed
    ring or area remains."""
    lines = [shapely.linestrings(c) for c in members if len(c) >= 2]
    if not lines:
        return None
    merged = shapely.line_merge(shapely.multilinestrings(lines))
    if merged is None or merged.is_empty:
        return None
    if merged.geom_type == "LineString":
        parts = [merged]
    elif merged.geom_type in ("MultiLineString", "GeometryCollection"):
        parts = [p for p in merged.geoms if p.geom_type == "LineString"]
    else:
        parts = []
    rings = []
    for line in parts:
        xy = shapely.get_coordinates(line)
        if len(xy) < 4 or xy[0, 0] != xy[-1, 0] or xy[0, 1] != xy[-1, 1]:
            continue
        try:
            poly = shapely.polygons(shapely.linearrings(xy))
            if not poly.is_valid:
                poly = poly.buffer(0)
        except shapely.errors.GEOSException:
            continue
        if not poly.is_empty:
            rings.append(poly)
    if not rings:
        return None
    try:
        overlay = np.asarray(rings, dtype=object)
        while len(overlay) > 1:
            paired = len(overlay) // 2 * 2
            merged_pairs = shapely.symmetric_difference(overlay[0:paired:2], overlay[1:paired:2])
            overlay = np.concatenate([merged_pairs, overlay[paired:]])
        result = _polygonal(overlay[0])
    except shapely.errors.GEOSException:
        return None
    if result is None:
        return None
    if not shapely.is_valid(result):
        result = _polygonal(_fix(result))
    return result


def _polygonal(geometry: shapely.Geometry | None) -> shapely.Geometry | None:
    """The polygons of an overlay's result (stray lines and points dropped); None when none."""
    if geometry is None or geometry.is_empty:
        return None
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    if geometry.geom_type != "GeometryCollection":
        return None
    polygons = []
    for part in geometry.geoms:
        if part.is_empty:
            continue
        if part.geom_type == "Polygon":
            polygons.append(part)
        elif part.geom_type == "MultiPolygon":
            polygons.extend(p for p in part.geoms if not p.is_empty)
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _fix(geometry: shapely.Geometry, *, max_area_change: float = 20) -> shapely.Geometry:
    """An invalid area made valid as pyrosm does: ``buffer(0)``, or for a polygon whose buffer
    changes its area too much, the polygons its exterior's self-intersections make; else as it
    was."""
    candidate = geometry.buffer(0)
    if candidate.is_valid and candidate.area and _close_area(geometry, candidate, max_area_change):
        return candidate
    if isinstance(geometry, MultiPolygon):
        return geometry
    exterior = geometry.exterior
    candidate = MultiPolygon(list(polygonize(exterior.intersection(exterior))))
    if candidate.is_valid and candidate.area and _close_area(geometry, candidate, max_area_change):
        return candidate
    return geometry


def _close_area(geometry: shapely.Geometry, candidate: shapely.Geometry, most: float) -> bool:
    """Whether fixing `geometry` into `candidate` changed its area by less than `most` times."""
    return bool(abs(1 - geometry.area / candidate.area) < most)


def _inside(frames: list[gpd.GeoDataFrame], area: shapely.Geometry) -> gpd.GeoDataFrame:
    """The features with a vertex inside `area` (prepared), one row per OSM element (the first
    found), in the order of `frames`."""
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty_features()
    features = pd.concat(parts, ignore_index=True)
    geoms = features.geometry.to_numpy()
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    hit = np.zeros(len(geoms), dtype=bool)
    hit[owner[shapely.contains_xy(area, coords[:, 0], coords[:, 1])]] = True
    features = features[hit & ~features["osm_id"].duplicated().to_numpy()].reset_index(drop=True)
    return gpd.GeoDataFrame(
        features[FEATURE_COLUMNS].assign(geometry=_oriented(features.geometry.to_numpy())),
        geometry="geometry",
        crs=4326,
    )


def _oriented(geoms: np.ndarray) -> np.ndarray:
    """Polygons with their exterior rings counter-clockwise and their holes clockwise (OGC,
    GeoJSON; as pyrosm, osmium and QGIS orient them)."""
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6, 7))
    if not polygonal.any():
        return geoms
    out = geoms.copy()
    out[polygonal] = shapely.orient_polygons(geoms[polygonal], exterior_cw=False)
    return out
