"""OSM sources: an ``.osm.pbf`` (libosmium), an ``.osm`` XML file (osmnx) or Overpass (osmnx).

Every source yields the same `OSMLayers` in EPSG:4326, cached on disk under a key that hashes the
source and the query, so a second run does not parse again and a changed file is never served stale.
A PBF file much larger than the study area (a province's, for one city) is cut to the area first
(`extract.study_cut_ratio`) and only the cut is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from walkcover._errors import WalkcoverError
from walkcover.sources._layers import OSMLayers, OSMQuery
from walkcover.sources.cache import SourceKind, load_osm

if TYPE_CHECKING:
    from walkcover.config.study_area import SourceConfig

__all__ = ["OSMLayers", "OSMQuery", "SourceKind", "load_osm", "source_spec"]


def source_spec(source: Path | None, city_source: SourceConfig) -> tuple[SourceKind, str | None]:
    """The source kind and path: --source wins (by suffix), else the city config's."""
    if source is not None:
        name = source.name.lower()
        if name.endswith(".pbf"):
            return "pbf", str(source)
        if name.endswith((".osm", ".xml", ".osm.xml")):
            return "xml", str(source)
        raise WalkcoverError(
            f"--source {str(source)!r}: unknown file type; pass an .osm.pbf or an .osm XML file"
        )
    return city_source.kind, city_source.path
