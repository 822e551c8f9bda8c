"""The walkable street network, in metres, held as arrays and a CSR matrix for the engine."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import scipy
import shapely

from walkcover.config.standards import GATE_BARRIERS, features_matching
from walkcover.config.study_area import DEFAULT_WALK_HIGHWAYS, require_metres
from walkcover.config.tags import tag_column

_NO_FOOT = {"no", "private"}
_FOOT_OK = {"yes", "designated", "permissive", "official"}
_NO_ACCESS = {"no", "private"}
#: Way tags kept on network edges for street contexts and safe routes.
_CARRIED = ("footway", "bridge", "tunnel")


#: Edges whose midpoints are made as shapely points at a time (`Network.midpoints`).
MIDPOINT_CHUNK = 131_072

#: Spacing of the samples along the edges that the KD-tree search for nearest edges uses.
SAMPLE_SPACING_M = 10.0


class Adjacency(NamedTuple):
    """A symmetric weighted graph as CSR arrays: node i's neighbours are
    ``indices[indptr[i]:indptr[i + 1]]``, at ``weight_m`` metres."""

    indptr: np.ndarray
    indices: np.ndarray
    weight_m: np.ndarray
    n: int

    def matrix(self) -> scipy.sparse.csr_array:
        """The ``n × n`` scipy CSR matrix of these arrays (no copy)."""
        return scipy.sparse.csr_array(
            (self.weight_m, self.indices, self.indptr), shape=(self.n, self.n)
        )


@dataclass(frozen=True)
class Network:
    """A walk network: undirected edges with geometry, and a symmetric CSR matrix of metres.

    Attributes
    ----------
    edges
        One row per street segment: ``u_idx, v_idx`` (node positions), ``length_m`` (length of the
        projected geometry, which the engine's offsets use), ``osm_id``, ``highway``, geometry.
    node_osm_ids
        OSM node id of each node position.
    adjacency
        Both directions of every edge as CSR arrays (`Adjacency`): the shortest edge joining nodes
        i and j (parallel edges keep the shortest, never their sum). `csr` is its scipy matrix.
    component
        Connected-component label of each node.
    tree
        Spatial index of the *snappable* edges (``edges.snappable``): tunnels, indoor corridors and
        indoor ways carry walkers but nobody's front door opens onto them. Built when first
        used (a rerun that reads every snap back from the cache never builds it: 0.4 s on L),
        unless one is given (`given_tree`).
    snappable
        Edge positions the tree's items stand for.
    store_dir
        The cache folder that keeps what is made of this network between runs: its snaps
        (`walkcover.engine.snap_store`) and its districts' ``streets`` layers
        (`walkcover.presentation.layer_store`); None (the default) keeps none.
    given_tree
        The `tree` to use instead of building one (a safe-route network shares its network's).
    recipe
        A digest of what the network was built from (its layers, named by where they were read,
        the options and the building code), when the run knows one: the stores then name the
        network by it instead of hashing its 1.6 million edges (`snap_store.network_digest`);
        None (the default) hashes them.
    """

    edges: gpd.GeoDataFrame
    node_osm_ids: np.ndarray
    adjacency: Adjacency
    component: np.ndarray
    snappable: np.ndarray
    store_dir: Path | None = dataclasses.field(default=None, compare=False)
    recipe: bytes | None = dataclasses.field(default=None, compare=False)
    given_tree: shapely.STRtree | None = dataclasses.field(default=None, compare=False, repr=False)

    @functools.cached_property
    def tree(self) -> shapely.STRtree:
        """The spatial index of the snappable edges (`given_tree`, or built now)."""
        if self.given_tree is not None:
            return self.given_tree
        return shapely.STRtree(self.edges.geometry.to_numpy()[self.snappable])

    @property
    def n_nodes(self) -> int:
        return len(self.node_osm_ids)

    @property
    def crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_user_input(self.edges.crs)

    @functools.cached_property
    def csr(self) -> scipy.sparse.csr_array:
        """The ``n × n`` scipy matrix of `adjacency`, made when first used: scipy.sparse takes
        0.16 s to import, which a county without streets never needs."""
        return self.adjacency.matrix()

    @functools.cached_property
    def midpoints(self) -> np.ndarray:
        """Each edge's midpoint along its length, as an ``(n, 2)`` coordinate array (street
        contexts and districts place edges by it). Coordinates, not points: a city's million
        shapely points held for the whole run were a quarter of a gigabyte."""
        geoms = self.edges.geometry.to_numpy()
        mid = np.empty((len(geoms), 2))
        for s in range(0, len(geoms), MIDPOINT_CHUNK):  # the points exist a chunk at a time
            part = shapely.line_interpolate_point(
                geoms[s : s + MIDPOINT_CHUNK], 0.5, normalized=True
            )
            mid[s : s + len(part)] = shapely.get_coordinates(part)
        return mid

    @functools.cached_property
    def edge_coords(self) -> EdgeCoords:
        """Every edge's vertices as one coordinate array (`EdgeCoords`), made when first asked for
        (the writers' streets): layers and maps built from it touch none of the edges' shapely
        objects, so a forked writer shares their pages instead of copying them."""
        geoms = self.edges.geometry.to_numpy()
        xy, owner = shapely.get_coordinates(geoms, return_index=True)
        start = np.zeros(len(geoms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=len(geoms)), out=start[1:])
        lines_only = bool((shapely.get_type_id(geoms) == 1).all())
        return EdgeCoords(np.ascontiguousarray(xy), start, lines_only)

    @functools.cached_property
    def edge_samples(self) -> EdgeSamples:
        """Points every `SAMPLE_SPACING_M` along the snappable edges' segments in a KD-tree, and
        the segments as arrays, built once (see `walkcover.engine.coverage.nearest_edges`)."""
        geoms = self.edges.geometry.to_numpy()[self.snappable]
        coords, owner = shapely.get_coordinates(geoms, return_index=True)
        same = owner[1:] == owner[:-1]
        a, b, seg_edge = coords[:-1][same], coords[1:][same], owner[:-1][same]
        length = np.hypot(*(b - a).T)
        pieces = np.maximum(np.ceil(length / SAMPLE_SPACING_M).astype(np.int64), 1)
        per = pieces + 1  # both ends of each segment, and every piece between
        seg_of_sample = np.repeat(np.arange(len(a)), per)
        start = np.repeat(np.cumsum(per) - per, per)
        t = (np.arange(len(seg_of_sample)) - start) / np.repeat(pieces, per)
        samples = a[seg_of_sample] + (b - a)[seg_of_sample] * t[:, None]
        # where each segment starts along its edge: the lengths of the edge's earlier segments
        first = np.r_[True, seg_edge[1:] != seg_edge[:-1]]
        cum = np.cumsum(length) - length
        offset = cum - np.maximum.accumulate(np.where(first, cum, 0.0))
        ab = b - a
        return EdgeSamples(
            # sliding-midpoint splits, nodes not shrunk to their points: built in 0.4 s
            # instead of 1.0 s for L's 3.8 million samples, queried as fast
            tree=scipy.spatial.cKDTree(samples, balanced_tree=False, compact_nodes=False),
            segment=seg_of_sample,
            x=np.ascontiguousarray(a[:, 0]),
            y=np.ascontiguousarray(a[:, 1]),
            dx=np.ascontiguousarray(ab[:, 0]),
            dy=np.ascontiguousarray(ab[:, 1]),
            len2=np.einsum("ij,ij->i", ab, ab),
            edge=seg_edge.astype(np.int64),
            offset_m=offset,
        )


def let_samples_go(network: Network) -> None:
    """Let `network`'s edge samples go (`Network.edge_samples`: a city's KD-tree of millions of
    samples and its segments as arrays, about 200 MB on L), once what needed them is measured;
    they are made again, the same, when next asked for (a site or a scenario snapping)."""
    network.__dict__.pop("edge_samples", None)


class EdgeCoords(NamedTuple):
    """The edges' vertices as flat arrays: edge ``i``'s are ``xy[start[i]:start[i + 1]]``.
    `lines_only`: every edge is a LineString (as the readers make them), so its vertices are the
    line; otherwise (a network built from other lines) use the geometries."""

    xy: np.ndarray
    start: np.ndarray
    lines_only: bool = True

    def lines(self, edges: np.ndarray) -> np.ndarray:
        """New linestrings of `edges` (positions), equal vertex for vertex to their geometries."""
        idx, counts = self.vertices(edges)
        lines: np.ndarray = shapely.linestrings(
            self.xy[idx], indices=np.repeat(np.arange(len(edges)), counts)
        )
        return lines

    def vertices(
        self, edges: np.ndarray, skip_first: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions in `xy` of the vertices of `edges`, edge after edge (without the first vertex
        of those where `skip_first`), and how many each edge gives."""
        first = self.start[edges]
        if skip_first is not None:
            first = first + skip_first
        counts = self.start[np.asarray(edges) + 1] - first
        idx = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        return idx, counts


class EdgeSamples(NamedTuple):
    """The snappable edges' segments as flat arrays, and samples along them in a KD-tree.

    Attributes
    ----------
    tree
        ``cKDTree`` of the samples (both ends of each segment and points at most
        `SAMPLE_SPACING_M` apart between them).
    segment
        The segment of each sample.
    x, y, dx, dy, len2
        Each segment's start, its vector to its end, and that vector's squared length (one array
        per coordinate: the nearest-edge search gathers them for millions of point × segment pairs).
    edge
        Each segment's edge, as a position among `Network.snappable`.
    offset_m
        Where each segment starts along its edge.
    """

    tree: scipy.spatial.cKDTree
    segment: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    len2: np.ndarray
    edge: np.ndarray
    offset_m: np.ndarray


def walkable_streets(
    streets: gpd.GeoDataFrame, *, walk_highways: tuple[str, ...] = DEFAULT_WALK_HIGHWAYS
) -> gpd.GeoDataFrame:
    """The street segments people may walk: listed highway classes, minus foot=no and private access.

    Motorways and their links are never walkable, whatever `walk_highways` says.
    """
    hw = streets["highway"].astype("string")
    ok = hw.isin(walk_highways) & ~hw.isin(["motorway", "motorway_link"])
    foot = streets["foot"].astype("string").str.lower()
    access = streets["access"].astype("string").str.lower()
    ok &= ~foot.isin(_NO_FOOT).fillna(False)
    ok &= ~(access.isin(_NO_ACCESS).fillna(False) & ~foot.isin(_FOOT_OK).fillna(False))
    return streets[ok.fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)


def locked_gates(features: gpd.GeoDataFrame) -> np.ndarray:
    """OSM node ids of gates walkers may not pass: ``barrier=gate|entrance|…`` nodes with
    ``access=no|private`` or ``locked=yes``, unless ``foot`` allows them (yes, designated, …)."""
    features = features_matching(features, [{"barrier": list(GATE_BARRIERS)}])
    if not len(features):
        return np.array([], dtype=np.int64)
    osm_id = features["osm_id"].astype(str)
    is_node = osm_id.str.startswith("node/").to_numpy()

    def value_in(key: str, values: Iterable[str]) -> np.ndarray:
        found: np.ndarray = tag_column(features, key).isin(list(values)).to_numpy(dtype=bool)
        return found

    locked = (
        value_in("barrier", GATE_BARRIERS)
        & (value_in("access", _NO_ACCESS) | value_in("locked", ["yes"]))
        & ~value_in("foot", _FOOT_OK)
    )
    pick = is_node & locked
    return np.unique(osm_id[pick].str.slice(5).astype(np.int64).to_numpy())


def build_network(
    streets: gpd.GeoDataFrame,
    *,
    min_island_m: float = 0.0,
    cut_nodes: np.ndarray | None = None,
) -> Network:
    """Build the engine's network from projected street segments (columns ``u, v``, geometry).

    Parameters
    ----------
    streets
        Node-to-node segments in a projected CRS in metres; ``u, v`` are node ids shared at junctions.
    min_island_m
        Drop connected pieces whose total street length is below this: indoor corridors, courtyard
        footways and fragments cut at the study-area edge, which would otherwise capture nearby
        buildings and leave them "unreachable".
    cut_nodes
        OSM node ids nobody may pass (locked gates, `locked_gates`): each street ending there ends
        at a node of its own, so every path keeps its length up to the gate but none goes through.

    Returns
    -------
    Network
    """
    require_metres(streets, what="streets")
    streets = streets[streets.geometry.notna() & ~streets.geometry.is_empty].reset_index(drop=True)
    cut = np.asarray(cut_nodes if cut_nodes is not None else [], dtype=np.int64)
    islands = min_island_m > 0
    net = _build(streets, cut)
    if islands:
        keep = np.ones(len(net.edges), dtype=bool)
        if len(net.edges):
            edge_comp = net.component[net.edges["u_idx"].to_numpy()]
            total = np.bincount(edge_comp, weights=net.edges["length_m"].to_numpy())
            keep = total[edge_comp] >= min_island_m
        if not keep.all():
            net = _kept(net, keep)
    return net


def _kept(net: Network, keep: np.ndarray) -> Network:
    """`net` without the edges not in `keep` (whole connected pieces, the islands), the network
    `_build` makes of the kept streets: the same node positions, adjacency,
    components and edges, taken from `net` instead of built again (a second sort of a city's
    three million street ends and of its directed edges).

    The kept nodes are those at the kept edges' ends, in their order in `net` (`_build` sorts the
    shared ones by OSM id and puts the cut ends after them in street order, which a subset keeps);
    an island is a whole piece, so a kept node's neighbours are all kept and its row of the
    adjacency, renumbered in the same order, is the one `symmetric_min_adjacency` would make.
    """
    e = net.edges
    u, v = e["u_idx"].to_numpy(), e["v_idx"].to_numpy()
    node_keep = np.zeros(net.n_nodes, dtype=bool)
    node_keep[u[keep]] = True
    node_keep[v[keep]] = True
    new_id = np.cumsum(node_keep) - 1
    adj = net.adjacency
    counts = np.diff(adj.indptr)[node_keep]
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    arc_keep = np.repeat(node_keep, np.diff(adj.indptr))
    adjacency = Adjacency(
        indptr=indptr,
        indices=new_id[adj.indices[arc_keep]].astype(adj.indices.dtype),
        weight_m=adj.weight_m[arc_keep],
        n=len(counts),
    )
    edges = e[keep].reset_index(drop=True)
    edges["u_idx"] = new_id[u[keep]]
    edges["v_idx"] = new_id[v[keep]]
    return Network(
        edges=edges,
        node_osm_ids=net.node_osm_ids[node_keep],
        adjacency=adjacency,
        component=components(adjacency),
        snappable=np.flatnonzero(edges["snappable"].to_numpy()),
    )


def _node_positions(ids: np.ndarray, cut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node position of each street end, and the OSM id of each position: ends at a shared node
    share its position, except at `cut` nodes, where each end gets a position of its own."""
    # (`np.unique`'s ids and inverse, by a hash table and a sort of the distinct ids: half the
    # time of its sort of a city's three million street ends; gates looked up by hash likewise)
    if not len(cut):
        inverse, node_osm_ids = pd.factorize(ids, sort=True)
        return node_osm_ids, inverse.astype(np.int64, copy=False)
    at_cut = pd.Index(np.unique(cut)).get_indexer(ids) >= 0
    inverse_shared, shared = pd.factorize(ids[~at_cut], sort=True)
    inverse = np.empty(len(ids), dtype=np.int64)
    inverse[~at_cut] = inverse_shared
    inverse[at_cut] = len(shared) + np.arange(int(at_cut.sum()))
    return np.concatenate([shared, ids[at_cut]]), inverse


def _build(streets: gpd.GeoDataFrame, cut: np.ndarray) -> Network:
    ids = np.concatenate([streets["u"].to_numpy(np.int64), streets["v"].to_numpy(np.int64)])
    node_osm_ids, inverse = _node_positions(ids, cut)
    m = len(streets)
    u_idx, v_idx = inverse[:m], inverse[m:]
    length_m = shapely.length(streets.geometry.to_numpy())
    edges = gpd.GeoDataFrame(
        {
            "u_idx": u_idx,
            "v_idx": v_idx,
            "length_m": length_m,
            # the columns' own arrays: no round trip through Python strings (a second a column)
            "osm_id": streets["osm_id"].array if "osm_id" in streets else None,
            "highway": streets["highway"].array if "highway" in streets else None,
            **{c: streets[c].array for c in _CARRIED if c in streets},
        },
        geometry=streets.geometry.to_numpy(),
        crs=streets.crs,
    )
    n = len(node_osm_ids)
    adjacency = symmetric_min_adjacency(u_idx, v_idx, length_m, n)
    component = components(adjacency)
    edges["snappable"] = snappable_mask(streets)
    snappable = np.flatnonzero(edges["snappable"].to_numpy())
    return Network(
        edges=edges,
        node_osm_ids=node_osm_ids,
        adjacency=adjacency,
        component=component,
        snappable=snappable,
    )


def components(adjacency: Adjacency) -> np.ndarray:
    """The connected component of each node of a symmetric adjacency. With no nodes there are none,
    and scipy is not imported for them (a county without streets runs in about a second)."""
    if adjacency.n == 0:
        return np.zeros(0, dtype=np.int32)
    _, label = scipy.sparse.csgraph.connected_components(adjacency.matrix(), directed=False)
    return np.asarray(label)


def snappable_mask(streets: gpd.GeoDataFrame) -> np.ndarray:
    """Edges a building or facility may attach to: not tunnels, indoor corridors or indoor ways."""
    n = len(streets)

    def col(name: str) -> pd.Series:
        if name not in streets:
            return pd.Series([None] * n, dtype="string")
        return streets[name].astype("string").str.lower()

    tunnel = col("tunnel")
    bad = tunnel.notna() & ~tunnel.isin(["no", "building_passage"])
    bad |= col("highway").eq("corridor").fillna(False)
    bad |= col("indoor").notna() & ~col("indoor").eq("no")
    return np.asarray(~bad.fillna(False).to_numpy(dtype=bool))


def symmetric_min_adjacency(u: np.ndarray, v: np.ndarray, w: np.ndarray, n: int) -> Adjacency:
    """CSR arrays of both directions of every edge, keeping the minimum weight among parallel
    edges."""
    keep = u != v  # self-loops never shorten a path
    uk, vk, wk = u[keep].astype(np.int64, copy=False), v[keep].astype(np.int64, copy=False), w[keep]
    m = len(uk)
    # one integer key per (row, column), both directions, sorted: each run of a key is one pair's
    # parallel edges, and its minimum their shortest (one sort of one key, not a lexsort of
    # three; any order within a run gives the same minimum). Made in place, a few arrays at a
    # time: the safe-route network's 5.8 million directed edges on L held seven at once.
    key = np.empty(2 * m, dtype=np.int64)
    np.multiply(uk, n, out=key[:m])
    key[:m] += vk
    np.multiply(vk, n, out=key[m:])
    key[m:] += uk
    del uk, vk
    order = np.argsort(key)
    key = key[order]
    data = np.concatenate([wk, wk])[order]
    del order, wk
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, int)
    w_min = np.minimum.reduceat(data, first) if len(first) else data
    r, c = np.divmod(key[first], n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    # Built directly from sorted arrays: coo→csr conversion would *sum* duplicates and may drop
    # explicit zeros (zero-length segments are real edges).
    return Adjacency(indptr=indptr, indices=c.astype(np.int32), weight_m=w_min, n=n)


def network_from_streets(
    streets: gpd.GeoDataFrame,
    *,
    crs: pyproj.CRS | str,
    walk_highways: tuple[str, ...] = DEFAULT_WALK_HIGHWAYS,
    min_island_m: float = 0.0,
    cut_nodes: np.ndarray | None = None,
) -> Network:
    """Filter `streets` (EPSG:4326) to walkable ones, project them to `crs` and build the network."""
    walk = walkable_streets(streets, walk_highways=walk_highways)
    return build_network(walk.to_crs(crs), min_island_m=min_island_m, cut_nodes=cut_nodes)
