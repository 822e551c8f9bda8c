"""OSM sources: an ``.osm.pbf`` (pyrosm), an ``.osm`` XML file (osmnx) or Overpass (osmnx).

Every source yields the same `OSMLayers` in EPSG:4326, cached on disk under a key that hashes the
source and the query, so a second run does not parse again and a changed file is never served stale.
"""

from walkcover.sources._layers import OSMLayers, OSMQuery
from walkcover.sources.cache import load_osm

__all__ = ["OSMLayers", "OSMQuery", "load_osm"]
