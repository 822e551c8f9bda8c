"""Cut an area out of a large ``.osm.pbf`` (a province) so later runs read a small file.

Complete ways: every node inside the polygon, every way with a node inside (with all its nodes),
and the multipolygon relations touching them (with their member ways), like ``osmium extract
--strategy complete_ways``. Written to a temporary file, then renamed into place.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from walkcover._errors import SourceError


def cut_pbf(
    source: Path, polygon_wgs84: shapely.Geometry, dest: Path, *, batch: int = 200_000
) -> Path:
    """Write the part of `source` inside `polygon_wgs84` to `dest` (atomically)."""
    import osmium

    from walkcover._atomic import atomic_path

    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise SourceError(f"{source} does not exist")
    shapely.prepare(polygon_wgs84)
    tracker = osmium.IdTracker()
    ids: list[int] = []
    xs: list[float] = []
    ys: list[float] = []

    def flush() -> None:
        if ids:
            inside = shapely.contains_xy(polygon_wgs84, np.asarray(xs), np.asarray(ys))
            for i in np.asarray(ids)[inside]:
                tracker.add_node(int(i))
            ids.clear()
            xs.clear()
            ys.clear()

    try:
        nodes: Iterable[Any] = osmium.FileProcessor(str(source), osmium.osm.NODE)
        for n in nodes:
            if n.location.valid():
                ids.append(n.id)
                xs.append(n.location.lon)
                ys.append(n.location.lat)
                if len(ids) >= batch:
                    flush()
        flush()
        ways: list[int] = []
        refs: list[int] = []
        way_objs: Iterable[Any] = osmium.FileProcessor(str(source), osmium.osm.WAY)
        for w in way_objs:
            if tracker.contains_any_references(w):
                ways.append(w.id)
                refs.extend(n.ref for n in w.nodes)
        for i in ways:
            tracker.add_way(i)
        for i in refs:
            tracker.add_node(i)
        rels = [
            r.id
            for r in osmium.FileProcessor(str(source), osmium.osm.RELATION)
            if r.tags.get("type") == "multipolygon" and tracker.contains_any_references(r)
        ]
        for i in rels:
            tracker.add_relation(i)
        tracker.complete_backward_references(str(source), relation_depth=0)
        with atomic_path(dest) as tmp, osmium.SimpleWriter(str(tmp)) as writer:
            for obj in osmium.FileProcessor(str(source)).with_filter(tracker.id_filter()):
                writer.add(obj)
    except RuntimeError as exc:  # libosmium reports damaged files this way
        raise SourceError(f"{source} could not be read as an .osm.pbf file: {exc}") from exc
    return dest
