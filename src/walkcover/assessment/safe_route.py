"""The safe-route network: walks that cross no fenced or barrier line (`SafeRoute`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from walkcover.config.standards import Standard, StandardSet, features_matching
from walkcover.engine import coverage as cov
from walkcover.engine.barriers import barrier_lines, remap_snaps, safe_network
from walkcover.engine.network import Network


@dataclass(frozen=True)
class SafeRoute:
    """The safe-route network (barrier roads and railways cut, crossings kept), the tree that maps
    places onto its cells, and the demand units snapped onto it."""

    network: Network
    cell_tree: Any
    demand: cov.Snaps

    @classmethod
    def build(
        cls,
        network: Network,
        streets: gpd.GeoDataFrame,
        features: gpd.GeoDataFrame,
        edge_tags: pd.DataFrame,
        rules: StandardSet,
        demand: gpd.GeoDataFrame,
        demand_snaps: cov.Snaps,
        extent: shapely.Geometry,
    ) -> SafeRoute:
        barriers = barrier_lines(streets, features, rules.safe_route)
        tags = edge_tags.copy()
        tags["is_barrier"] = (
            tags["highway"].astype("string").isin(rules.safe_route.barrier_highways).fillna(False)
        )
        tags["is_barrier"] &= ~(tags["bridge"].notna() | tags["tunnel"].notna())
        crossings = features_matching(features, rules.safe_route.crossing_nodes)
        ids = [int(i.split("/")[1]) for i in crossings["osm_id"] if str(i).startswith("node/")]
        net, cell_tree = safe_network(
            network, tags, barriers, np.asarray(ids, dtype=np.int64), extent=extent
        )
        dem = remap_snaps(demand_snaps, net, cell_tree, demand.geometry.to_numpy())
        return cls(net, cell_tree, dem)

    def measure(
        self, fac_snaps: cov.Snaps, access: gpd.GeoSeries, std: Standard, limit_m: float
    ) -> pd.DataFrame:
        """`walkcover.engine.coverage.measure` of `std` on the safe-route network."""
        fac = remap_snaps(fac_snaps, self.network, self.cell_tree, access.to_numpy())
        return cov.measure(
            self.network, self.demand, fac, threshold_m=std.threshold_m, limit_m=limit_m
        )
