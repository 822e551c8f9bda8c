"""What-if scenarios: add, move and remove facilities of one standard in one district, and read
the district's figures after each edit, as a full run with the edited facility set would give.

Edits are incremental, on the run's own arrays and with the engine's own functions:

- a new site is snapped (`walkcover.engine.coverage.snap`, as `walks_with_sites` snaps it), one
  bounded shortest-path pass runs from it (`node_distances`, cut at the pass's ``limit_m``) and
  each home keeps the nearer of its current facility and the site;
- a removal touches only the homes whose nearest facility it was: their distance is measured
  again from the facilities that can reach them at all (those with an access point within the
  search limit of them in a straight line; a walk is never shorter than the straight line), in
  one bounded multi-source pass (`node_sources`, `demand_distances`, `nearest_sources`);
- a move is a removal of the site and an addition at its new place, one edit.

Each edit makes a new, read-only snapshot of the small state (per home its distance to its
nearest facility and which facility that is; the sites; the facilities removed), so `undo` is
taking the previous one back.

A scenario saves as a GeoPackage (its sites and removals, for QGIS) and a small YAML file that
lists its edits; `load_scenario` replays them on a run.

A `MultiScenario` covers several standards at once (one plot, several services): one `Scenario`
per standard, edited together, so that each site serves every standard and keeps one id in all;
each standard's figures are its own scenario's.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, overload

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import scipy.sparse.csgraph
import scipy.spatial
import shapely
import yaml

from walkcover import siting
from walkcover._atomic import storage_errors, write_atomic
from walkcover._config import read_yaml
from walkcover._errors import ConfigError, OutputExistsError, UnsafePathError, WalkcoverError
from walkcover._paths import inside
from walkcover.assessment import Assessment, can_serve
from walkcover.config.standards import Standard
from walkcover.engine import coverage as cov
from walkcover.measures.access import MAX_CAPACITY
from walkcover.measures.bands import distance_band
from walkcover.measures.indicators import FacilityCounts, ResidentGroups, district_summary
from walkcover.measures.land import euclid_covered_share, land_union, official_reach

#: The figures `Scenario.summary` gives: those of the run's summary row
#: (`walkcover.measures.indicators.district_summary`) that follow from the homes' walks and the
#: facilities. The land and street-length figures need the polygons a run draws, and are not
#: measured again after an edit.
SUMMARY_FIGURES = [
    "district",
    "district_id",
    "standard",
    "threshold_m",
    "facilities",
    "facilities_in_reach",
    "demand_units",
    "residents_group",
    "residents",
    "residents_covered",
    "residents_covered_pct",
    "units_covered_pct",
    "report_group",
    "report_group_residents",
    "report_group_covered_pct",
    "target_pct",
    "meets_target",
    "unsnapped_units",
    "unreachable_units",
    "beyond_search_units",
    "no_data_reason",
]

#: Columns of `Scenario.demand` (one row per home of the district, in `district_demand` order).
DEMAND_COLUMNS = [
    "osm_id",
    "dist_m",
    "covered",
    "status",
    "band",
    "nearest",
    "covered_before",
]

#: Columns of `Scenario.gain` (one row per site added).
GAIN_COLUMNS = [
    "site_id",
    "name",
    "capacity",
    "lon",
    "lat",
    "homes_reached",
    "residents_served",
    "residents_newly_covered",
    "reason",
]

#: Columns of `MultiScenario.gain` (one row per site × standard).
MULTI_GAIN_COLUMNS = ["standard", *GAIN_COLUMNS]

#: The version of the saved YAML file's layout: a single-standard scenario's (``standard:``).
FILE_VERSION = 1
#: ... and a multi-standard scenario's (``standards:``, a list; a closure's edit names its
#: ``standard``); `load_scenario` reads both.
MULTI_FILE_VERSION = 2

#: ``candidate_source`` and ``method`` of a scenario's sites in a ``proposed_sites`` layer
#: (`Scenario.proposed_sites`): placed by a planner, not found by the optimiser.
SCENARIO_METHOD = "scenario"

#: Facility sets whose official figure a scenario remembers (undo, and moving a site back,
#: are then free).
_OFFICIAL_MEMO = 64

#: Metres added to the straight-line bound that picks the facilities a removal measures again
#: from: rounding in the snapped positions, never a real shortcut.
_BOUND_SLACK_M = 1e-3


class ScenarioError(WalkcoverError, ValueError):
    """An edit or a scenario file that cannot be used as given; the message says the fix."""


@dataclass(frozen=True)
class Site:
    """A facility the scenario adds.

    ``point`` is in the run's CRS; ``snaps`` its access to the walk network (item 0; no row when
    it lies beyond the snap distance). ``homes_reached`` counts the district's homes it reaches
    within the search limit; ``reason`` says why it reaches none ("" when it reaches some).
    """

    site_id: str
    name: str
    lon: float
    lat: float
    capacity: float | None
    point: shapely.Point
    snaps: cov.Snaps
    homes_reached: int
    reason: str


@dataclass(frozen=True)
class Edit:
    """One edit, as saved and replayed: ``op`` is ``add``, ``move`` or ``remove``; ``target`` the
    site id (add, move) or the facility or site id (remove). ``standard`` names the standard of
    an existing facility closed in a `MultiScenario` (None otherwise: a site serves every
    standard of its scenario)."""

    op: str
    target: str
    lon: float | None = None
    lat: float | None = None
    name: str | None = None
    capacity: float | None = None
    standard: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        out["facility_id" if self.op == "remove" else "site_id"] = self.target
        if self.op != "remove":
            out["lon"], out["lat"] = float(self.lon or 0.0), float(self.lat or 0.0)
        if self.op == "add":
            out["name"] = self.name
            out["capacity"] = self.capacity
        if self.standard is not None:
            out["standard"] = self.standard
        return out


@dataclass(frozen=True)
class _State:
    """One snapshot: per home the distance to its nearest facility within the search limit (inf
    where none) and that facility's key (-1 where none), the sites by key, the existing facilities
    removed (positions in the pass's ``counted``), the edits so far and the next site number."""

    dist_m: np.ndarray
    owner: np.ndarray
    sites: Mapping[int, Site]
    removed: frozenset[int]
    edits: tuple[Edit, ...]
    next_site: int


@dataclass(frozen=True)
class _Walks:
    """The homes' walks in one state, as `walkcover.engine.coverage.measure` gives them."""

    dist_m: np.ndarray
    covered: np.ndarray
    status: np.ndarray
    band: np.ndarray


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class _District:
    """What a scenario reads from the run once: the district's homes, their snaps and radii,
    where their snapped points lie, and the standard's existing facilities' access rows."""

    homes: gpd.GeoDataFrame
    snaps: cov.Snaps
    threshold_m: np.ndarray
    home_component: np.ndarray  # per home, the network component of its street (-1 unsnapped)
    residents: np.ndarray
    row_owner: np.ndarray  # per row of the pass's snaps, its facility (position in `counted`)
    row_points: np.ndarray  # (2, rows, 2): each row's points at lo_m and hi_m
    row_span_m: np.ndarray  # hi_m - lo_m per row
    row_component: np.ndarray  # per row, the component of its edge
    facility_ids: np.ndarray  # object: each counted facility's id (its osm_id)
    in_district: np.ndarray  # bool per counted facility, as the summary counts it
    in_reach: np.ndarray  # bool per counted facility: can serve the district and is snapped
    district_row: pd.Series
    geometry: shapely.Geometry
    excluded: int
    groups: ResidentGroups


def _points_on_edges(
    network: Any, edge: np.ndarray, offset_m: np.ndarray
) -> np.ndarray:  # (n, 2) coordinates
    lines = network.edges.geometry.to_numpy()[edge]
    return shapely.get_coordinates(shapely.line_interpolate_point(lines, offset_m)).reshape(-1, 2)


class _Near:
    """Which points lie within a radius of any of a few points (the homes a removal touches):
    a bounding-box cut, then the nearest one by a KD-tree, so that a city's many facility rows
    cost one look-up each."""

    def __init__(self, xy: np.ndarray) -> None:
        self.lo, self.hi = xy.min(axis=0), xy.max(axis=0)
        self.tree = scipy.spatial.cKDTree(xy)

    def within(self, xy: np.ndarray, radius_m: float | np.ndarray) -> np.ndarray:
        r = np.broadcast_to(np.asarray(radius_m, dtype=float), (len(xy),))
        out = np.zeros(len(xy), dtype=bool)
        box = np.all((xy >= self.lo - r[:, None]) & (xy <= self.hi + r[:, None]), axis=1)
        at = np.flatnonzero(box)
        if len(at):
            gap, _ = self.tree.query(xy[at], k=1, distance_upper_bound=float(r[at].max()))
            out[at] = gap <= r[at]
        return out


class Scenario:
    """A what-if scenario for one standard in one district of a finished run.

    Made by `scenario`. Edits (`add`, `move`, `remove`, `undo`) update the figures at once; the
    reads (`summary`, `demand`, `gain`, `facilities`) are those of a full run with the edited
    facility set. Save it with `save`, replay it with `load_scenario`.
    """

    def __init__(
        self,
        assessment: Assessment,
        standard_id: str,
        *,
        district_id: str,
        name: str = "scenario",
    ) -> None:
        a = assessment
        self.assessment = a
        try:
            self.standard = a.standard(standard_id)
        except KeyError:
            measured = ", ".join(s.id for s in a.standards)
            several = (
                " (a Scenario covers one standard; for several at once give a list: "
                "scenario(assessment, ['a', 'b'], …) or Results.scenario('a,b'))"
                if isinstance(standard_id, str) and "," in standard_id
                else ""
            )
            raise ScenarioError(
                f"standard_id {_shown(standard_id)} was not measured in this run{several}; give "
                f"one of: {measured}"
            ) from None
        if district_id not in set(map(str, a.districts["district_id"])):
            ids = ", ".join(map(str, a.districts["district_id"]))
            raise ScenarioError(
                f"district_id {_shown(district_id)} is not a district of this run; give one of: "
                f"{ids}"
            )
        self.name = _check_name(name)
        self.slug = scenario_slug(self.name)
        self.district_id = district_id
        self._pass = a.passes[standard_id]
        self.limit_m = float(self._pass.limit_m)
        self.max_snap_m = float(a.city.config.network.max_snap_m)
        self._to_crs = _pipeline(4326, a.crs)
        self._to_lonlat = _pipeline(a.crs, 4326)
        self._d = self._read_district()
        n_counted = len(self._pass.counted)
        self._n_counted = n_counted
        sid = standard_id
        homes = self._d.homes
        dist = homes[f"{sid}_dist_m"].to_numpy(dtype=float, copy=True)
        dist[np.isnan(dist)] = np.inf
        owner = np.asarray(a.district_nearest(sid, district_id), dtype=np.int64).copy()
        owner[~np.isfinite(dist)] = -1
        self._covered_before = _frozen(homes[f"{sid}_covered"].to_numpy(dtype=bool, copy=True))
        self._walks_of: tuple[_State, _Walks] | None = None
        self._states: list[_State] = [_State(_frozen(dist), _frozen(owner), {}, frozenset(), (), 1)]
        # the official figure per facility set; the land, its area and its area within the
        # run's circles; the counted facilities' tree (`official_pct`); the water no site goes in
        self._official: dict[tuple[frozenset[int], tuple[tuple[float, float], ...]], float] = {}
        self._official_base: tuple[shapely.Geometry, float, float] | None = None
        self._official_groups: dict[tuple[Any, frozenset[int]], float] = {}
        self._facility_tree: shapely.STRtree | None = None
        self._water: shapely.Geometry | None = None

    # -- what the run gives once ------------------------------------------------------------

    def _read_district(self) -> _District:
        a, p, std = self.assessment, self._pass, self.standard
        homes, snaps = a.district_demand(self.district_id)
        thr = np.broadcast_to(np.asarray(a.thresholds(std, snaps), dtype=float), (len(homes),))
        net = a.network
        u = net.edges["u_idx"].to_numpy()
        comp = np.full(len(homes), -1, dtype=np.int64)
        comp[snaps.item] = net.component[u[snaps.edge]]
        rs = p.snaps
        owner = p.access.index.to_numpy()[rs.item].astype(np.int64)
        pts = np.stack(
            [_points_on_edges(net, rs.edge, rs.lo_m), _points_on_edges(net, rs.edge, rs.hi_m)]
        )
        # the counted facilities as the run's summary counts them (`assessment._summary`): their
        # rows in `facilities`, in the order of the pass's `counted`
        f = a.facilities
        mine = f[(f["standard"] == std.id).to_numpy() & f["counts"].to_numpy(dtype=bool)]
        dgeom = a.district_geometry(self.district_id)
        if len(mine) == len(p.counted):
            in_district = (mine["in_district"].astype(object) == self.district_id).to_numpy()
            snapped = mine["snapped"].to_numpy(dtype=bool)
        else:  # an assessment built by hand: from the pass itself
            in_district = shapely.contains(dgeom, p.counted.geometry.representative_point())
            snapped = np.isin(np.arange(len(p.counted)), owner)
        in_reach = can_serve(p.counted.geometry, dgeom, self.limit_m) & snapped
        excluded = int(
            (
                (f["standard"] == std.id).to_numpy()
                & ~f["counts"].to_numpy(dtype=bool)
                & (f["in_district"].astype(object) == self.district_id).to_numpy()
            ).sum()
        )
        group, report = std.population_group, std.report_group
        groups = ResidentGroups(
            group if group and f"residents_{group}" in homes else None,
            report if report and f"residents_{report}" in homes else None,
        )
        drow = a.districts.set_index("district_id", drop=False).loc[self.district_id]
        ids = (
            p.counted["osm_id"].astype(str).to_numpy()
            if "osm_id" in p.counted
            else np.array([f"#{i}" for i in range(len(p.counted))], dtype=object)
        )
        return _District(
            homes=homes,
            snaps=snaps,
            threshold_m=_frozen(np.array(thr)),
            home_component=_frozen(comp),
            residents=_frozen(homes[a.residents_column(std.id)].to_numpy(dtype=float)),
            row_owner=_frozen(owner),
            row_points=_frozen(pts),
            row_span_m=_frozen(rs.hi_m - rs.lo_m),
            row_component=_frozen(net.component[u[rs.edge]]),
            facility_ids=ids,
            in_district=np.asarray(in_district, dtype=bool),
            in_reach=np.asarray(in_reach, dtype=bool),
            district_row=drow,
            geometry=dgeom,
            excluded=excluded,
            groups=groups,
        )

    @property
    def _state(self) -> _State:
        return self._states[-1]

    # -- edits --------------------------------------------------------------------------------

    def add(self, *, lon: float, lat: float, name: str = "", capacity: float | None = None) -> str:
        """Add a site at `lon`, `lat` (WGS 84 degrees, inside the district); return its id.

        Raises
        ------
        ScenarioError
            A position that is not a number, not in degrees, or outside the district; a capacity
            that is not a positive number, or is over `walkcover.measures.access.MAX_CAPACITY`.
        """
        s = self._state
        site_id = f"site-{s.next_site}"
        site = self._site(site_id, lon=lon, lat=lat, name=name, capacity=capacity)
        key = self._n_counted + s.next_site - 1
        dist, owner, site = self._with_site(s.dist_m, s.owner, key, site)
        edit = Edit("add", site_id, site.lon, site.lat, site.name, site.capacity)
        self._push(
            replace(
                s,
                dist_m=dist,
                owner=owner,
                sites={**s.sites, key: site},
                edits=(*s.edits, edit),
                next_site=s.next_site + 1,
            )
        )
        return site_id

    def move(self, site_id: str, *, lon: float, lat: float) -> None:
        """Move an added site to `lon`, `lat` (one edit: `undo` puts it back).

        Raises
        ------
        ScenarioError
            `site_id` is not a site of this scenario (an existing facility cannot be moved:
            remove it and add a site), or the new position is refused as by `add`.
        """
        s = self._state
        key = self._site_key(site_id, action="move")
        old = s.sites[key]
        new = self._site(site_id, lon=lon, lat=lat, name=old.name, capacity=old.capacity)
        sites = {k: v for k, v in s.sites.items() if k != key}
        dist, owner = self._without(s.dist_m, s.owner, key, sites, s.removed)
        dist, owner, new = self._with_site(dist, owner, key, new)
        self._push(
            replace(
                s,
                dist_m=dist,
                owner=owner,
                sites={**sites, key: new},
                edits=(*s.edits, Edit("move", site_id, new.lon, new.lat)),
            )
        )

    def remove(self, facility_or_site_id: str | int) -> None:
        """Remove an added site, or close an existing facility of the standard ("what if this
        one closes"): its ``facility_id`` in `facilities` (the run's ``osm_id``), or its position
        in the pass's ``counted``.

        Raises
        ------
        ScenarioError
            An id that names neither, or a facility removed already.
        """
        s = self._state
        key, label = self._facility_key(facility_or_site_id)
        if key >= self._n_counted:
            sites = {k: v for k, v in s.sites.items() if k != key}
            removed = s.removed
        else:
            sites = dict(s.sites)
            removed = s.removed | {key}
        dist, owner = self._without(s.dist_m, s.owner, key, sites, removed)
        self._push(
            replace(
                s,
                dist_m=dist,
                owner=owner,
                sites=sites,
                removed=removed,
                edits=(*s.edits, Edit("remove", label)),
            )
        )

    def undo(self) -> Edit:
        """Take back the last edit; return it.

        Raises
        ------
        ScenarioError
            When there is no edit to take back.
        """
        if len(self._states) == 1:
            raise ScenarioError("undo(): this scenario has no edit to take back")
        edit = self._state.edits[-1]
        self._states.pop()
        return edit

    @property
    def edits(self) -> tuple[Edit, ...]:
        """The edits so far, oldest first."""
        return self._state.edits

    @property
    def sites(self) -> list[Site]:
        """The sites added (moved ones where they are now), in the order added."""
        return [self._state.sites[k] for k in sorted(self._state.sites)]

    def _push(self, state: _State) -> None:
        _frozen(state.dist_m)
        _frozen(state.owner)
        self._states.append(state)

    def _site(
        self, site_id: str, *, lon: float, lat: float, name: str, capacity: float | None
    ) -> Site:
        lon, lat = _degrees(lon, "lon"), _degrees(lat, "lat")
        if not -180 <= lon <= 180 or not -90 <= lat <= 90:
            raise ScenarioError(
                f"lon={lon!r}, lat={lat!r} are not WGS 84 degrees (lon -180..180, lat -90..90)"
                f"{self._swapped(lon, lat)}; give the site's longitude and latitude in degrees "
                "(EPSG:4326)"
            )
        if not isinstance(name, str):
            raise ScenarioError(f"name={_shown(name)}: give the site's name as text")
        if capacity is not None:
            capacity = _capacity(capacity)
        x, y = self._to_crs.transform(lon, lat)
        point = shapely.Point(x, y)
        if not shapely.contains(self._d.geometry, point):
            raise ScenarioError(self._outside_message(lon, lat))
        snaps = cov.snap(
            self.assessment.network, [point], max_snap_m=self.max_snap_m, reach_polygon_edges=True
        )
        return Site(site_id, name, lon, lat, capacity, point, snaps, 0, "")

    def _swapped(self, lon: float, lat: float) -> str:
        """A hint when `lon`, `lat` swapped would be a point inside the district, else ""."""
        if not (-180 <= lat <= 180 and -90 <= lon <= 90):
            return ""
        x, y = self._to_crs.transform(lat, lon)
        if not shapely.contains(self._d.geometry, shapely.Point(x, y)):
            return ""
        return f" (lon and lat look swapped: lon={lat!r}, lat={lon!r} is inside the district)"

    def _outside_message(self, lon: float, lat: float) -> str:
        d = self._d.district_row
        b = gpd.GeoSeries([self._d.geometry], crs=self.assessment.crs).to_crs(4326).total_bounds
        hint = self._swapped(lon, lat)
        return (
            f"lon={lon!r}, lat={lat!r} lies outside district {d['slug']!r}, which spans lon "
            f"{b[0]:.5f}..{b[2]:.5f}, lat {b[1]:.5f}..{b[3]:.5f}{hint}; give a point inside the "
            "district (WGS 84 degrees; a GCJ-02 or BD-09 position from a Chinese map must be "
            "converted first, see walkcover.sources.coords)"
        )

    def _with_site(
        self, dist: np.ndarray, owner: np.ndarray, key: int, site: Site
    ) -> tuple[np.ndarray, np.ndarray, Site]:
        """`dist`, `owner` with `site` (key `key`) added: one bounded pass from the site and each
        home's nearer of the two; and the site with how many homes it reaches, and why none."""
        net, d = self.assessment.network, self._d
        reach = np.full(len(dist), np.inf)
        if len(site.snaps.item):
            node = cov.node_distances(net, site.snaps, limit_m=self.limit_m)
            reach = cov.demand_distances(net, d.snaps, site.snaps, node)
            reach[~(reach <= self.limit_m)] = np.inf
        reached = int(np.isfinite(reach).sum())
        site = replace(
            site, homes_reached=reached, reason=self._why_not(site) if not reached else ""
        )
        better = reach < dist  # ties stay with the facility already there (the lower row)
        dist, owner = dist.copy(), owner.copy()
        dist[better] = reach[better]
        owner[better] = key
        return dist, owner, site

    def _why_not(self, site: Site) -> str:
        if not len(site.snaps.item):
            return (
                f"no walkable street within {self.max_snap_m:g} m (the snap distance): the site "
                "is off the walk network and serves no one; move it next to a street or path"
            )
        net = self.assessment.network
        comp = np.unique(net.component[net.edges["u_idx"].to_numpy()[site.snaps.edge]])
        if not np.isin(comp, self._d.home_component).any():
            return (
                "its street is on a piece of the walk network that no home of the district is "
                "connected to (a separate island of paths); move it onto a connected street"
            )
        return (
            f"no home of the district is within the search limit ({self.limit_m:g} m walk) "
            "of it; move it nearer to the homes"
        )

    def _without(
        self,
        dist: np.ndarray,
        owner: np.ndarray,
        key: int,
        sites: Mapping[int, Site],
        removed: frozenset[int],
    ) -> tuple[np.ndarray, np.ndarray]:
        """`dist`, `owner` once facility `key` is gone: the homes it was nearest to are measured
        again from the remaining facilities (`sites`, the existing ones not in `removed`) that
        can reach them within the search limit."""
        affected = np.flatnonzero(owner == key)
        dist, owner = dist.copy(), owner.copy()
        dist[affected], owner[affected] = np.inf, -1
        if not len(affected):
            return dist, owner
        net, d = self.assessment.network, self._d
        sub = d.snaps.take(affected)
        if not len(sub.item):
            return dist, owner
        near = _Near(_points_on_edges(net, sub.edge, sub.lo_m))
        # existing facilities' rows that can reach an affected home: a walk between two points
        # on the network is never shorter than the straight line, and a row's span is reached
        # within its length of its ends
        radius = self.limit_m + d.row_span_m + _BOUND_SLACK_M
        hit = near.within(d.row_points[0], radius) | near.within(d.row_points[1], radius)
        alive = np.ones(self._n_counted, dtype=bool)
        alive[list(removed)] = False
        rows = np.flatnonzero(hit & alive[d.row_owner])
        parts = [
            (
                d.row_owner[rows],
                self._pass.snaps.edge[rows],
                self._pass.snaps.lo_m[rows],
                self._pass.snaps.hi_m[rows],
                self._pass.snaps.leg_m[rows],
            )
        ]
        for k, site in sorted(sites.items()):
            sn = site.snaps
            pts = _points_on_edges(net, sn.edge, sn.lo_m)
            if len(sn.item) and near.within(pts, self.limit_m + _BOUND_SLACK_M).any():
                parts.append((np.full(len(sn.item), k), sn.edge, sn.lo_m, sn.hi_m, sn.leg_m))
        item, edge, lo, hi, leg = (np.concatenate([p[i] for p in parts]) for i in range(5))
        if not len(item):
            return dist, owner
        order = np.lexsort((edge, leg, item))
        src = cov.Snaps(
            item[order].astype(np.int64),
            edge[order].astype(np.int64),
            lo[order],
            hi[order],
            leg[order],
            np.array([], dtype=np.int64),
            self._n_counted + self._state.next_site + 1,
        )
        nodes = cov.node_sources(net, src, limit_m=self.limit_m)
        again = cov.demand_distances(net, sub, src, nodes.dist_m)
        row = cov.nearest_sources(net, sub, src, limit_m=self.limit_m, nodes=nodes)
        found = (again <= self.limit_m) & (row >= 0)
        dist[affected[found]] = again[found]
        owner[affected[found]] = src.item[row[found]]
        return dist, owner

    def _site_key(self, site_id: object, *, action: str) -> int:
        for k, site in self._state.sites.items():
            if site.site_id == site_id:
                return k
        known = ", ".join(s.site_id for s in self.sites) or "none yet"
        extra = ""
        if isinstance(site_id, str) and site_id in set(self._d.facility_ids):
            extra = " (it is an existing facility: remove it and add a site where it should be)"
        raise ScenarioError(
            f"site_id {_shown(site_id)} is not a site of this scenario{extra}; sites: {known}. "
            f"Only added sites can be {action}d"
        )

    def _facility_key(self, ident: object) -> tuple[int, str]:
        s = self._state
        for k, site in s.sites.items():
            if site.site_id == ident:
                return k, site.site_id
        ids = self._d.facility_ids
        pos: int | None = None
        if isinstance(ident, int | np.integer) and not isinstance(ident, bool):
            if 0 <= int(ident) < len(ids):
                pos = int(ident)
        elif isinstance(ident, str):
            at = np.flatnonzero(ids == ident)
            if len(at) == 1:
                pos = int(at[0])
            elif len(at) > 1:
                raise ScenarioError(
                    f"facility_or_site_id {_shown(ident)} names {len(at)} facilities of this run; "
                    f"give its position in the pass's counted facilities instead ({list(at)})"
                )
        if pos is None:
            example = ", ".join(ids[self._d.in_reach][:3]) or "none in reach"
            added = ", ".join(x.site_id for x in self.sites) or "none yet"
            raise ScenarioError(
                f"facility_or_site_id {_shown(ident)} is neither a site of this scenario (sites: "
                f"{added}) nor an existing {self.standard.id} facility of the run; give a "
                f"facility_id from Scenario.facilities (e.g. {example}) or a site id"
            )
        if pos in s.removed:
            raise ScenarioError(
                f"facility {ids[pos]!r} is removed already in this scenario; undo() brings it back"
            )
        return pos, str(ids[pos])

    # -- reads -------------------------------------------------------------------------------

    def _status(self, dist: np.ndarray) -> np.ndarray:
        """Each home's status as `walkcover.engine.coverage.measure` gives it for the current
        facility set (`dist` NaN where no facility is within the limit)."""
        s, d = self._state, self._d
        n = len(dist)
        covered = ~np.isnan(dist) & (np.nan_to_num(dist, nan=np.inf) <= d.threshold_m)
        status = np.where(covered, cov.STATUS_COVERED, cov.STATUS_BEYOND).astype(object)
        missing = np.isnan(dist)
        alive = np.ones(self._n_counted, dtype=bool)
        alive[list(s.removed)] = False
        comps = [d.row_component[alive[d.row_owner]]] if len(d.row_owner) else []
        net = self.assessment.network
        u = net.edges["u_idx"].to_numpy()
        v = net.edges["v_idx"].to_numpy()
        for site in s.sites.values():
            comps.append(net.component[u[site.snaps.edge]])
            comps.append(net.component[v[site.snaps.edge]])
        reach_comp = np.unique(np.concatenate(comps)) if comps else np.array([], dtype=np.int64)
        has_sources = bool(sum(len(c) for c in comps))
        if not has_sources:
            status[missing] = cov.STATUS_NO_FACILITIES
        else:
            reachable = np.isin(d.home_component, reach_comp)
            status[missing & reachable] = cov.STATUS_BEYOND_LIMIT
            status[missing & ~reachable] = cov.STATUS_UNREACHABLE
        status[d.snaps.unsnapped] = cov.STATUS_UNSNAPPED
        assert len(status) == n
        return status

    @property
    def demand(self) -> pd.DataFrame:
        """Each home of the district (in `Assessment.district_demand` order): ``dist_m`` (NaN
        where no facility is within the search limit), ``covered``, ``status`` and ``band`` as
        a full run gives them, ``nearest`` (the facility or site id nearest by walking, None
        where none) and ``covered_before`` (in the run)."""
        s, d = self._state, self._d
        w = self._walks()
        labels = np.concatenate(
            [
                np.asarray(d.facility_ids, dtype=object),
                np.full(s.next_site, None, dtype=object),  # the sites, then "none"
            ]
        )
        for k, site in s.sites.items():
            labels[k] = site.site_id
        nearest = labels[np.where(s.owner >= 0, s.owner, len(labels) - 1)]
        return pd.DataFrame(
            {
                "osm_id": d.homes["osm_id"].to_numpy() if "osm_id" in d.homes else None,
                "dist_m": w.dist_m,
                "covered": w.covered,
                "status": w.status,
                "band": w.band,
                "nearest": nearest,
                "covered_before": self._covered_before,
            },
            columns=DEMAND_COLUMNS,
        )

    def _walks(self) -> _Walks:
        """The homes' walks in the current state, made once per state (every read shares them)."""
        s, d = self._state, self._d
        if self._walks_of is not None and self._walks_of[0] is s:
            return self._walks_of[1]
        dist = np.where(np.isfinite(s.dist_m), s.dist_m, np.nan)
        dist[d.snaps.unsnapped] = np.nan
        status = self._status(dist)
        w = _Walks(
            _frozen(dist),
            _frozen(status == cov.STATUS_COVERED),
            _frozen(status),
            _frozen(distance_band(dist, d.threshold_m, status)),
        )
        self._walks_of = (s, w)
        return w

    def _counts(self) -> FacilityCounts:
        s, d = self._state, self._d
        alive = np.ones(self._n_counted, dtype=bool)
        alive[list(s.removed)] = False
        snapped_sites = sum(1 for x in s.sites.values() if len(x.snaps.item))
        return FacilityCounts(
            in_district=int((d.in_district & alive).sum()) + len(s.sites),
            in_reach=int((d.in_reach & alive).sum()) + snapped_sites,
            excluded=d.excluded,
        )

    @property
    def summary(self) -> pd.Series:
        """The district's figures for the standard with the edits (`SUMMARY_FIGURES`), made by
        the run's own `district_summary` from the homes' walks, plus ``sites_added`` and
        ``facilities_removed``."""
        walks = self._walks()
        sid = self.standard.id
        homes = self._d.homes
        cols = {"residents": homes["residents"].to_numpy(dtype=float)}
        for g in (self._d.groups.group, self._d.groups.report_group):
            if g:
                cols[f"residents_{g}"] = homes[f"residents_{g}"].to_numpy(dtype=float)
        frame = pd.DataFrame(
            {
                **cols,
                f"{sid}_covered": walks.covered,
                f"{sid}_status": walks.status,
            }
        )
        row = district_summary(
            frame,
            district=self._d.district_row,
            standard=self.standard,
            facilities=self._counts(),
            groups=self._d.groups,
        )
        out = pd.Series({k: row[k] for k in SUMMARY_FIGURES}, dtype=object)
        out["sites_added"] = len(self._state.sites)
        out["facilities_removed"] = len(self._state.removed)
        return out

    @property
    def gain(self) -> pd.DataFrame:
        """Per site added (`GAIN_COLUMNS`): the homes it reaches within the search limit, the
        residents it is the nearest covering facility of, and of those the residents not covered
        in the run (newly covered); ``reason`` says why a site reaches no home."""
        s = self._state
        res = self._d.residents
        covered = self._walks().covered
        n = self._n_counted + s.next_site
        own = np.where(s.owner >= 0, s.owner, n)
        served = np.bincount(own[covered], weights=res[covered], minlength=n + 1)
        new = covered & ~self._covered_before
        newly = np.bincount(own[new], weights=res[new], minlength=n + 1)
        rows = [
            {
                "site_id": x.site_id,
                "name": x.name,
                "capacity": x.capacity,
                "lon": x.lon,
                "lat": x.lat,
                "homes_reached": x.homes_reached,
                "residents_served": float(served[k]),
                "residents_newly_covered": float(newly[k]),
                "reason": x.reason,
            }
            for k, x in sorted(s.sites.items())
        ]
        return pd.DataFrame(rows, columns=GAIN_COLUMNS)

    @property
    def facilities(self) -> gpd.GeoDataFrame:
        """The facilities of the scenario that can serve the district: the run's (``kind``
        existing, ``removed`` True where closed in the scenario) and the sites added, with the
        ``facility_id`` `remove` takes (in the run's CRS)."""
        s, d, p = self._state, self._d, self._pass
        at = np.flatnonzero(d.in_reach | np.isin(np.arange(self._n_counted), list(s.removed)))
        names = p.counted["name"] if "name" in p.counted else pd.Series([None] * len(p.counted))
        existing = pd.DataFrame(
            {
                "facility_id": d.facility_ids[at],
                "name": names.to_numpy()[at],
                "kind": "existing",
                "removed": np.isin(at, list(s.removed)),
            }
        )
        added = pd.DataFrame(
            {
                "facility_id": [x.site_id for x in self.sites],
                "name": [x.name for x in self.sites],
                "kind": "site",
                "removed": False,
            }
        )
        geoms = np.concatenate(
            [
                p.counted.geometry.to_numpy()[at],
                np.array([x.point for x in self.sites], dtype=object),
            ]
        )
        return gpd.GeoDataFrame(
            pd.concat([existing, added], ignore_index=True),
            geometry=list(geoms),
            crs=self.assessment.crs,
        )

    def snap_point(self, site_id: str) -> tuple[float, float] | None:
        """Where site `site_id` joins the walk network (its access point on the street, WGS 84
        lon, lat), None when it lies beyond the snap distance of any street.

        Raises
        ------
        ScenarioError
            `site_id` is not a site of this scenario.
        """
        site = self._state.sites[self._site_key(site_id, action="locate")]
        if not len(site.snaps.item):
            return None
        edge = self.assessment.network.edges.geometry.to_numpy()[site.snaps.edge[0]]
        p = shapely.line_interpolate_point(edge, site.snaps.lo_m[0])
        lon, lat = self._to_lonlat.transform(shapely.get_x(p), shapely.get_y(p))
        return float(lon), float(lat)

    @property
    def bands(self) -> np.ndarray:
        """Each home's band (`walkcover.measures.bands.BAND_NAMES`), as ``demand["band"]``
        without making the frame (read-only; in `Assessment.district_demand` order)."""
        return self._walks().band

    @property
    def removed(self) -> list[str]:
        """The ``facility_id`` of each existing facility closed in the scenario, in the run's
        order."""
        return [str(self._d.facility_ids[k]) for k in sorted(self._state.removed)]

    @property
    def official_pct(self) -> float:
        """The official figure (``area_covered_euclid_pct``: the straight-line circles of the
        standard's radius on its land, ÷ that land, in %) for the scenario's facilities: the
        run's counted facilities less those closed, plus the sites. NaN where the run has no
        land figures.

        The figure `walkcover.measures.land.euclid_covered_share` gives for that facility set:
        the run's facilities' share is measured so once; then only near the edits' circles: the
        land the closures leave outside every other circle, and per group of sites whose
        circles overlap the land they add (remembered, so that an edit measures only its own
        group); equal to the whole measure to rounding (1e-9 %).
        """
        a, std = self.assessment, self.standard
        if a.lands is None:
            return math.nan
        s = self._state
        key = (s.removed, tuple((x.point.x, x.point.y) for x in self.sites))
        if key not in self._official:
            land, area, value = self._official_land()
            if area > 0 and (s.removed or s.sites):
                covered = value * area / 100.0
                r = float(std.threshold_m)
                counted = self._pass.counted.geometry.to_numpy()
                alive = np.ones(len(counted), dtype=bool)
                alive[list(s.removed)] = False
                if s.removed:
                    closed = official_reach(counted[sorted(s.removed)], r)
                    covered -= self._official_outside(land, closed, alive)
                covered += sum(self._official_added(land, group, alive) for group in self._groups())
                value = 100.0 * covered / area
            if len(self._official) >= _OFFICIAL_MEMO:
                del self._official[next(iter(self._official))]
            self._official[key] = value
        return self._official[key]

    def _official_land(self) -> tuple[shapely.Geometry, float, float]:
        """The district's land of the standard's denominator, its area, and the official figure
        of the run's counted facilities (`euclid_covered_share`, as the run measures it)."""
        if self._official_base is None:
            a, std = self.assessment, self.standard
            assert a.lands is not None  # official_pct says NaN without land figures
            land = a.lands.district_cells(std.denominator, self.district_id)[0]
            counted = self._pass.counted.geometry.to_numpy()
            share = euclid_covered_share(land, counted, float(std.threshold_m))
            self._official_base = (land, float(shapely.area(land)), share)
        return self._official_base

    def _groups(self) -> list[tuple[tuple[float, float], ...]]:
        """The sites' points in groups whose official circles overlap (sites farther apart than
        twice the radius are in different groups: their circles share no land)."""
        pts = [(x.point.x, x.point.y) for x in self.sites]
        if len(pts) < 2:
            return [tuple(pts)] if pts else []
        xy = np.array(pts)
        near = scipy.spatial.distance_matrix(xy, xy) <= 2 * float(self.standard.threshold_m)
        _, label = scipy.sparse.csgraph.connected_components(near, directed=False)
        return [tuple(pts[i] for i in np.flatnonzero(label == k)) for k in np.unique(label)]

    def _official_added(
        self, land: shapely.Geometry, group: tuple[tuple[float, float], ...], alive: np.ndarray
    ) -> float:
        """The area of `land` the circles of a group of sites cover outside the circles of the
        counted facilities `alive` (remembered by the group and the closures near it)."""
        r = float(self.standard.threshold_m)
        circles = official_reach(shapely.points(np.array(group)), r)
        if self._facility_tree is None:
            self._facility_tree = shapely.STRtree(self._pass.counted.geometry.to_numpy())
        near = self._facility_tree.query(circles, predicate="dwithin", distance=r)
        key = (group, frozenset(int(i) for i in near[~alive[near]]))
        if key not in self._official_groups:
            if len(self._official_groups) >= 4 * _OFFICIAL_MEMO:
                del self._official_groups[next(iter(self._official_groups))]
            self._official_groups[key] = self._official_outside(land, circles, alive)
        return self._official_groups[key]

    def _official_outside(
        self, land: shapely.Geometry, region: shapely.Geometry, alive: np.ndarray
    ) -> float:
        """The area of `land` inside `region` and outside the official circles of the counted
        facilities `alive` (only those whose circle reaches `region` are drawn)."""
        part = shapely.intersection(shapely.clip_by_rect(land, *shapely.bounds(region)), region)
        if shapely.is_empty(part):
            return 0.0
        r = float(self.standard.threshold_m)
        counted = self._pass.counted.geometry.to_numpy()
        if self._facility_tree is None:
            self._facility_tree = shapely.STRtree(counted)
        near = self._facility_tree.query(region, predicate="dwithin", distance=r)
        near = np.sort(near[alive[near]])
        if len(near):
            part = shapely.difference(part, official_reach(counted[near], r))
        return float(shapely.area(part))

    def suggest(self, k: int, *, time_limit_s: float | None = None) -> list[str]:
        """Add the optimiser's best `k` new sites for the scenario as it stands
        (`suggest_sites`), each an ordinary site named ``suggested <rank> · 建议 <rank>``, one
        edit each; return their ids (none when no site adds a resident).

        Raises
        ------
        ScenarioError
            As `suggest_sites`; or a site the scenario refuses (then none is added).
        """
        chosen = suggest_sites(self, k=k, time_limit_s=time_limit_s).to_crs(4326)
        before = len(self._states)
        added = []
        try:
            for rank, p in zip(chosen["rank"], chosen.geometry, strict=True):
                added.append(
                    self.add(lon=float(p.x), lat=float(p.y), name=f"suggested {rank} · 建议 {rank}")
                )
        except ScenarioError:
            del self._states[before:]
            raise
        return added

    def proposed_sites(self) -> gpd.GeoDataFrame:
        """The scenario's sites as a ``proposed_sites`` layer, as `walkcover site` writes it
        (`walkcover.siting.proposed_sites`), for `walkcover.api.Results.export_scenario`: per
        site in the order added, ``standard``, ``rank``, ``residents_newly_covered`` (by it,
        once the sites before it are built), ``cumulative_coverage_pct`` (the scenario's
        ``residents_covered_pct`` with it and those before it: the last row is the scenario's
        figure), ``candidate_source`` and ``method`` ``"scenario"``, ``node_osm_id`` and
        ``mip_gap`` empty, and the site's ``name`` and the scenario's (``scenario``); points in
        the run's CRS.

        Raises
        ------
        ScenarioError
            The scenario has no site, or closes existing facilities: the before/after pages
            of `walkcover report` know only sites added, and would show figures without the
            closures. The message names the closed facilities and the fix.
        """
        if self.removed:
            fac = self.facilities
            names = dict(zip(fac["facility_id"].astype(str), fac["name"], strict=True))
            closed = ", ".join(
                f"{fid} ({names[fid]})" if isinstance(names.get(fid), str) else fid
                for fid in self.removed
            )
            raise ScenarioError(
                f"scenario {self.name!r} closes existing facilities ({closed}); walkcover report "
                "shows sites added, not closures, so its after figures would leave the closures "
                "out. Undo the closures (or export a copy of the scenario without them) and "
                "export again"
            )
        sites = self.sites
        if not sites:
            raise ScenarioError(f"scenario {self.name!r} has no site to export; add a site first")
        replay = Scenario(
            self.assessment, self.standard.id, district_id=self.district_id, name=self.name
        )
        covered = [float(replay.summary["residents_covered"])]
        pct = []
        for x in sites:
            replay.add(lon=x.lon, lat=x.lat, name=x.name, capacity=x.capacity)
            s = replay.summary
            covered.append(float(s["residents_covered"]))
            pct.append(float(s["residents_covered_pct"]))
        return gpd.GeoDataFrame(
            {
                "standard": self.standard.id,
                "rank": np.arange(1, len(sites) + 1),
                "residents_newly_covered": np.diff(covered),  # as measured (`proposed_sites`)
                "cumulative_coverage_pct": pct,
                "candidate_source": SCENARIO_METHOD,
                "node_osm_id": None,
                "method": SCENARIO_METHOD,
                "mip_gap": math.nan,
                "name": [x.name for x in sites],
                "scenario": self.name,
            },
            geometry=[x.point for x in sites],
            crs=self.assessment.crs,
        )

    # -- files --------------------------------------------------------------------------------

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``<slug>.yaml`` (name, city, standard, district, edits) and ``<slug>.gpkg``
        (layers ``sites`` and ``removals``) into `folder`, each atomically; return the YAML's path.

        Raises
        ------
        OutputExistsError
            A file of that name is there and `overwrite` is not set.
        """
        gain = self.gain
        sites = gpd.GeoDataFrame(
            gain.drop(columns=["lon", "lat"]),
            geometry=[x.point for x in self.sites],
            crs=self.assessment.crs,
        )
        removals = self.facilities
        removals = removals[removals["removed"].to_numpy()][["facility_id", "name", "geometry"]]
        doc = {
            "walkcover_scenario": FILE_VERSION,
            "name": self.name,
            "city": str(self.assessment.city.id),
            "standard": self.standard.id,
            "district": self.district_id,
        }
        return _save_files(self, folder, doc, sites, removals, overwrite=overwrite)


class MultiScenario:
    """A what-if scenario for several standards in one district of a finished run: each site
    added serves every standard of the scenario (a community centre with a clinic and a fitness
    room), each existing facility closed belongs to one standard.

    Made by `scenario` with a list of standards (or ``Results.scenario([...])``). It holds one `Scenario` per
    standard (`parts`, in the order asked), edited together: `add`, `move` and `undo` apply to
    every standard, each measured with its own radii, search limit and incremental distances,
    and the sites keep the same ids in all (``site-1``, ``site-2`` …); `remove` closes an
    existing facility of the standard it belongs to (``standard=`` says which when its id is a
    facility of several) or removes a site from every standard. Each standard's figures are
    those of a single-standard scenario with the same edits, and hence of a full run.

    Read the parts (``sc["clinic"].demand``, ``.official_pct``, ``.facilities``); edit through
    the multi-standard scenario (an edit made on a part alone is refused at the next call).
    """

    def __init__(
        self,
        assessment: Assessment,
        standard_ids: str | Sequence[str],
        *,
        district_id: str,
        name: str = "scenario",
    ) -> None:
        ids = standard_list(assessment, standard_ids)
        self.assessment = assessment
        self._name = _check_name(name)
        self.slug = scenario_slug(self._name)
        first = Scenario(assessment, ids[0], district_id=district_id, name=self._name)
        self.district_id = first.district_id
        parts = {ids[0]: first}
        for sid in ids[1:]:
            parts[sid] = Scenario(assessment, sid, district_id=district_id, name=self._name)
        self._parts = parts
        # each edit, and the standards whose scenario it edited (what `undo` takes back)
        self._log: list[tuple[Edit, tuple[str, ...]]] = []

    # -- what it is -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The scenario's name (its files are named after its `slug`, which a new name sets)."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = _check_name(value)
        self.slug = scenario_slug(self._name)
        for part in self._parts.values():
            part.name, part.slug = self._name, self.slug

    @property
    def parts(self) -> Mapping[str, Scenario]:
        """The single-standard scenario of each standard, by standard id (read-only)."""
        return MappingProxyType(self._parts)

    def __getitem__(self, standard_id: str) -> Scenario:
        """The single-standard scenario of `standard_id` (read it; edit through this one)."""
        return self._parts[self._check_standard(standard_id, what="standard_id")]

    @property
    def standard_ids(self) -> list[str]:
        """The scenario's standards, in the order asked."""
        return list(self._parts)

    @property
    def standards(self) -> list[Standard]:
        return [p.standard for p in self._parts.values()]

    def _check_standard(self, standard: object, *, what: str = "standard") -> str:
        if not isinstance(standard, str) or standard not in self._parts:
            raise ScenarioError(
                f"{what}={_shown(standard)} is not a standard of this scenario; give one of: "
                f"{', '.join(self._parts)}"
            )
        return standard

    def _check(self) -> None:
        """Refuse to go on when a part was edited on its own: the sites' ids and the edits
        would no longer be those of the multi-standard scenario."""
        for sid, part in self._parts.items():
            want = sum(sid in touched for _, touched in self._log)
            if len(part.edits) != want:
                raise ScenarioError(
                    f"the {sid} part of scenario {self.name!r} was edited on its own "
                    f"({len(part.edits)} edits, {want} made through the scenario); edit a "
                    "multi-standard scenario through it, not through sc[standard]. Undo the "
                    f"part's own edits (sc[{sid!r}].undo()) to go on"
                )

    # -- edits ----------------------------------------------------------------------------------

    def _on_all(self, edit: Callable[[Scenario], Any], sids: Sequence[str]) -> list[Any]:
        """`edit` on the parts `sids`, all or none: a part that refuses undoes those before."""
        done: list[str] = []
        got = []
        try:
            for sid in sids:
                got.append(edit(self._parts[sid]))
                done.append(sid)
        except BaseException:
            for sid in reversed(done):
                self._parts[sid].undo()
            raise
        return got

    def add(self, *, lon: float, lat: float, name: str = "", capacity: float | None = None) -> str:
        """Add a site serving every standard of the scenario at `lon`, `lat` (WGS 84 degrees,
        inside the district); return its id (the same in every standard).

        Raises
        ------
        ScenarioError
            As `Scenario.add`.
        """
        self._check()
        sids = self.standard_ids
        ids = self._on_all(lambda p: p.add(lon=lon, lat=lat, name=name, capacity=capacity), sids)
        if len(set(ids)) != 1:  # the parts are edited together: never
            for sid in reversed(sids):
                self._parts[sid].undo()
            raise ScenarioError(f"the site was given the ids {ids} in the standards {sids}")
        site = self._parts[sids[0]].sites[-1]
        self._log.append(
            (Edit("add", ids[0], site.lon, site.lat, site.name, site.capacity), tuple(sids))
        )
        return str(ids[0])

    def move(self, site_id: str, *, lon: float, lat: float) -> None:
        """Move a site (in every standard) to `lon`, `lat`; one edit.

        Raises
        ------
        ScenarioError
            As `Scenario.move`.
        """
        self._check()
        sids = self.standard_ids
        self._on_all(lambda p: p.move(site_id, lon=lon, lat=lat), sids)
        site = next(x for x in self.sites if x.site_id == site_id)
        self._log.append((Edit("move", site.site_id, site.lon, site.lat), tuple(sids)))

    def remove(self, facility_or_site_id: str | int, *, standard: str | None = None) -> None:
        """Remove a site (from every standard), or close an existing facility of the standard it
        belongs to: its ``facility_id`` in `facilities`. Where that id is a facility of several
        of the scenario's standards (an OSM park that is green space too), or is a position in a
        pass's counted facilities, `standard` says which closes.

        Raises
        ------
        ScenarioError
            An id that names no site and no facility of the scenario's standards, one that names
            facilities of several without `standard` (the message names the choices), a
            `standard` not of the scenario, `standard` given for a site, or as `Scenario.remove`.
        """
        self._check()
        ident = facility_or_site_id
        if standard is not None:
            standard = self._check_standard(standard)
        sites = [x.site_id for x in self.sites]
        if isinstance(ident, str) and ident in sites:
            if standard is not None:
                raise ScenarioError(
                    f"{_shown(ident)} is a site, which serves every standard of scenario "
                    f"{self.name!r} ({', '.join(self._parts)}); remove it without standard="
                )
            sids = self.standard_ids
            self._on_all(lambda p: p.remove(ident), sids)
            self._log.append((Edit("remove", ident), tuple(sids)))
            return
        if standard is None:
            owners = self._owners(ident)
            if len(owners) > 1:
                choices = " or ".join(f"standard={sid!r}" for sid in owners)
                what = (
                    f"position {_shown(ident)} names a counted facility of each standard"
                    if not isinstance(ident, str)
                    else f"facility {_shown(ident)} is a facility of {_and(owners)}"
                )
                raise ScenarioError(
                    f"{what} in scenario {self.name!r}; say which closes: remove({ident!r}, "
                    f"{choices})"
                )
            if not owners:
                added = ", ".join(sites) or "none yet"
                example = ", ".join(
                    f"{fid} ({sid})"
                    for sid, part in self._parts.items()
                    for fid in part._d.facility_ids[part._d.in_reach][:1]
                )
                raise ScenarioError(
                    f"facility_or_site_id {_shown(ident)} is neither a site of this scenario (sites: "
                    f"{added}) nor an existing facility of its standards "
                    f"({', '.join(self._parts)}); give a facility_id from "
                    f"MultiScenario.facilities (e.g. {example or 'none in reach'}) or a site id"
                )
            standard = owners[0]
        part = self._parts[standard]
        part.remove(ident)
        label = part.edits[-1].target
        self._log.append((Edit("remove", label, standard=standard), (standard,)))

    def _owners(self, ident: object) -> list[str]:
        """The standards of which `ident` names an existing facility."""
        if isinstance(ident, str):
            return [sid for sid, p in self._parts.items() if ident in set(p._d.facility_ids)]
        if isinstance(ident, int | np.integer) and not isinstance(ident, bool):
            return [sid for sid, p in self._parts.items() if 0 <= int(ident) < p._n_counted]
        return []

    def undo(self) -> Edit:
        """Take back the last edit (in every standard it edited); return it.

        Raises
        ------
        ScenarioError
            When there is no edit to take back.
        """
        self._check()
        if not self._log:
            raise ScenarioError("undo(): this scenario has no edit to take back")
        edit, touched = self._log.pop()
        for sid in touched:
            self._parts[sid].undo()
        return edit

    @property
    def edits(self) -> tuple[Edit, ...]:
        """The edits so far, oldest first (a closure names its ``standard``)."""
        return tuple(e for e, _ in self._log)

    @property
    def sites(self) -> list[Site]:
        """The sites added (moved ones where they are now), in the order added, as the first
        standard's scenario holds them (how many homes each reaches, and why none, differ per
        standard: see `gain`)."""
        return self._parts[self.standard_ids[0]].sites

    @property
    def removed(self) -> dict[str, list[str]]:
        """Per standard, the ``facility_id`` of each existing facility closed."""
        return {sid: p.removed for sid, p in self._parts.items()}

    # -- reads ----------------------------------------------------------------------------------

    @property
    def summary(self) -> pd.DataFrame:
        """One row per standard: `Scenario.summary` of each (`SUMMARY_FIGURES`, ``sites_added``,
        ``facilities_removed``)."""
        self._check()
        rows = [p.summary for p in self._parts.values()]
        return pd.DataFrame(rows).reset_index(drop=True).infer_objects()

    @property
    def gain(self) -> pd.DataFrame:
        """One row per site × standard (`MULTI_GAIN_COLUMNS`: ``standard`` and `GAIN_COLUMNS`),
        sites in the order added, each with the standards in the scenario's order."""
        self._check()
        frames = [p.gain.assign(standard=sid) for sid, p in self._parts.items()]
        out = pd.concat(frames, ignore_index=True)[MULTI_GAIN_COLUMNS]
        order = {x.site_id: i for i, x in enumerate(self.sites)}
        rank = {sid: i for i, sid in enumerate(self._parts)}
        key = [order[x] * len(rank) + rank[y] for x, y in zip(out["site_id"], out["standard"])]
        return out.iloc[np.argsort(np.array(key, dtype=np.int64), kind="stable")].reset_index(
            drop=True
        )

    @property
    def demand(self) -> pd.DataFrame:
        """Each home of the district (in `Assessment.district_demand` order): ``osm_id``, then
        per standard ``<standard>_dist_m``, ``_covered``, ``_status``, ``_band``, ``_nearest``
        and ``_covered_before`` (`Scenario.demand` of each)."""
        self._check()
        cols: dict[str, Any] = {}
        for sid, p in self._parts.items():
            d = p.demand
            if not cols:
                cols["osm_id"] = d["osm_id"].to_numpy()
            for c in DEMAND_COLUMNS[1:]:
                cols[f"{sid}_{c}"] = d[c].to_numpy()
        return pd.DataFrame(cols)

    @property
    def facilities(self) -> gpd.GeoDataFrame:
        """`Scenario.facilities` of each standard, one after the other, with its ``standard``
        (a site is listed once per standard)."""
        self._check()
        frames = [p.facilities.assign(standard=sid) for sid, p in self._parts.items()]
        out = pd.concat(frames, ignore_index=True)
        cols = ["standard", *[c for c in out.columns if c != "standard"]]
        return gpd.GeoDataFrame(out[cols], geometry="geometry", crs=self.assessment.crs)

    @property
    def official_pct(self) -> pd.Series:
        """`Scenario.official_pct` of each standard, by standard id."""
        self._check()
        return pd.Series(
            {sid: p.official_pct for sid, p in self._parts.items()},
            name="area_covered_euclid_pct",
            dtype=float,
        )

    def snap_point(
        self, site_id: str, *, standard: str | None = None
    ) -> tuple[float, float] | None:
        """Where site `site_id` joins the walk network (`Scenario.snap_point`; the same for
        every standard, which snap alike)."""
        sid = self.standard_ids[0] if standard is None else self._check_standard(standard)
        return self._parts[sid].snap_point(site_id)

    def proposed_sites(self) -> gpd.GeoDataFrame:
        """The scenario's sites as a ``proposed_sites`` layer (`Scenario.proposed_sites`) per
        standard, one standard after the other (each ranked from 1), for
        `walkcover.api.Results.export_scenario`.

        Raises
        ------
        ScenarioError
            The scenario has no site, or closes existing facilities (named, with the standard).
        """
        self._check()
        frames = []
        for sid, p in self._parts.items():
            try:
                frames.append(p.proposed_sites())
            except ScenarioError as exc:
                raise ScenarioError(f"standard {sid}: {exc}") from None
        return gpd.GeoDataFrame(
            pd.concat(frames, ignore_index=True), geometry="geometry", crs=self.assessment.crs
        )

    # -- files ----------------------------------------------------------------------------------

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``<slug>.yaml`` (name, city, standards, district, edits) and ``<slug>.gpkg``
        (layers ``sites``: one row per site × standard, as `gain`; ``removals``: the facilities
        closed, with their ``standard``) into `folder`, each atomically; return the YAML's path.

        Raises
        ------
        OutputExistsError
            A file of that name is there and `overwrite` is not set.
        """
        self._check()
        doc = {
            "walkcover_scenario": MULTI_FILE_VERSION,
            "name": self.name,
            "city": str(self.assessment.city.id),
            "standards": self.standard_ids,
            "district": self.district_id,
        }
        gain = self.gain
        points = {x.site_id: x.point for x in self.sites}
        sites = gpd.GeoDataFrame(
            gain.drop(columns=["lon", "lat"]),
            geometry=[points[s] for s in gain["site_id"]],
            crs=self.assessment.crs,
        )
        fac = self.facilities
        removals = fac[fac["removed"].to_numpy()][["facility_id", "standard", "name", "geometry"]]
        return _save_files(self, folder, doc, sites, removals, overwrite=overwrite)


@overload
def scenario(
    assessment: Assessment, standard: str, *, district_id: str, name: str = "scenario"
) -> Scenario: ...


@overload
def scenario(
    assessment: Assessment,
    standard: list[str] | tuple[str, ...],
    *,
    district_id: str,
    name: str = "scenario",
) -> MultiScenario: ...


def scenario(
    assessment: Assessment,
    standard: str | list[str] | tuple[str, ...],
    *,
    district_id: str,
    name: str = "scenario",
) -> Scenario | MultiScenario:
    """A what-if scenario in `district_id` of a finished run: for one standard (a `Scenario`), or
    for several at once, each site serving every one of them (a `MultiScenario`).

    Parameters
    ----------
    assessment
        A finished `walkcover.assessment.Assessment` (``Results.assessment``).
    standard
        One of the run's standards (``"toilet"``), or a list of them (``["clinic", "fitness"]``;
        duplicates are dropped, the order kept).
    district_id
        One of the run's districts (its ``district_id``).
    name
        The scenario's name; its files are named after its slug (`scenario_slug`).

    Raises
    ------
    ScenarioError
        No standard, a standard or district the run did not measure (named, with those it did),
        or a name that is not text.
    """
    if isinstance(standard, str):
        return Scenario(assessment, standard, district_id=district_id, name=name)
    return MultiScenario(assessment, standard, district_id=district_id, name=name)


def standard_list(assessment: Assessment, standard_ids: object) -> list[str]:
    """The standard ids `standard_ids` names (a list, or a comma-separated string), each once, in
    the order given, each one the run measured.

    Raises
    ------
    ScenarioError
        No standard, an id that is not text, or ids the run did not measure (named, with the
        closest measured one and all of them).
    """
    measured = [s.id for s in assessment.standards]
    if isinstance(standard_ids, str):
        given: list[object] = [x.strip() for x in standard_ids.split(",")]
        given = [x for x in given if x]
    elif isinstance(standard_ids, Iterable) and not isinstance(standard_ids, bytes | Mapping):
        given = list(standard_ids)
    else:
        raise ScenarioError(
            f"standards={_shown(standard_ids)}: give the standard ids as a list (['clinic', 'fitness']) "
            f"or a comma-separated string ('clinic,fitness'); measured in this run: "
            f"{', '.join(measured)}"
        )
    bad = [x for x in given if not isinstance(x, str)]
    if bad:
        raise ScenarioError(
            f"standards={_shown(standard_ids)}: {_shown(bad[0])} is not a standard id; give ids as text, "
            f"some of: {', '.join(measured)}"
        )
    ids = list(dict.fromkeys(str(x) for x in given))
    if not ids:
        raise ScenarioError(
            f"standards={_shown(standard_ids)}: give at least one standard id; measured in this run: "
            f"{', '.join(measured)}"
        )
    unknown = [x for x in ids if x not in measured]
    if unknown:
        hints = []
        for x in unknown:
            close = difflib.get_close_matches(x, measured, n=1)
            hints.append(f"{_shown(x)} (did you mean {close[0]!r}?)" if close else _shown(x))
        raise ScenarioError(
            f"standard(s) {', '.join(hints)} not measured in this run; give some of: "
            f"{', '.join(measured)}"
        )
    return ids


def suggest_sites(sc: Scenario, *, k: int, time_limit_s: float | None = None) -> gpd.GeoDataFrame:
    """The best `k` new sites for scenario `sc` as it stands, by the siting optimiser
    (`walkcover.siting`: street candidates in the homes it leaves uncovered, not in water, the
    coverage matrix, HiGHS): its sites and closures are kept, and only the homes they leave
    uncovered count. A ``proposed_sites`` layer (`walkcover.siting.proposed_sites`, the run's
    CRS), ranked; empty when no candidate reaches an uncovered home. Nothing is edited:
    `Scenario.suggest` adds them.

    Parameters
    ----------
    sc
        The scenario.
    k
        How many sites, a whole number of at least 1.
    time_limit_s
        Seconds HiGHS may search (default: the city config's ``siting.time_limit_s``).

    Raises
    ------
    ScenarioError
        A `k` that is not a whole number of at least 1, a time limit that is not a positive
        number, every resident covered already, or what the optimiser refuses.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ScenarioError(
            f"k={_shown(k)}: give the number of sites to suggest, a whole number >= 1"
        )
    if time_limit_s is not None and (
        isinstance(time_limit_s, bool)
        or not isinstance(time_limit_s, int | float)
        or not time_limit_s > 0
    ):
        raise ScenarioError(
            f"time_limit_s={_shown(time_limit_s)}: give the seconds the optimiser may search as a "
            "positive number, or leave it out"
        )
    a, std, did = sc.assessment, sc.standard, sc.district_id
    homes, snaps = a.district_demand(did)
    thr = np.broadcast_to(np.asarray(a.thresholds(std, snaps), dtype=float), (len(homes),))
    covered = sc._walks().covered
    if covered.all():
        raise ScenarioError(
            f"k={k!r}: every resident is covered already in scenario {sc.name!r}; there is no "
            "gap to site in"
        )
    cfg = a.city.config
    if sc._water is None:  # no sites in water
        sc._water = land_union(a.features, a.rules.street_contexts.water)
    cands = siting.street_candidates(
        a.network,
        a.district_geometry(did),
        homes.geometry[~covered],
        reach_m=float(thr.max()),
        spacing_m=cfg.siting.spacing_m,
        no_go=sc._water,
    )
    cm = siting.coverage_matrix(
        a.network,
        cands,
        snaps,
        homes[a.residents_column(std.id)].to_numpy(dtype=float),
        covered,
        thr,
        max_snap_m=cfg.network.max_snap_m,
    )
    if cm.matrix.shape[1] == 0:  # no candidate reaches an uncovered home
        none = siting.SitingResult(np.array([], dtype=np.int64), np.array([]), "", math.nan, 0.0)
        return siting.proposed_sites(cm, none, standard=std.id)
    limit = time_limit_s if time_limit_s is not None else cfg.siting.time_limit_s
    try:
        res = siting.site(cm, k=int(k), time_limit_s=limit)
    except siting.SitingError as exc:
        raise ScenarioError(str(exc)) from None
    return siting.proposed_sites(cm, res, standard=std.id)


def _save_files(
    sc: Scenario | MultiScenario,
    folder: str | Path,
    doc: dict[str, Any],
    sites: gpd.GeoDataFrame,
    removals: gpd.GeoDataFrame,
    *,
    overwrite: bool,
) -> Path:
    """Write a scenario's ``<slug>.yaml`` (`doc`, then the layers' file name and the edits) and
    ``<slug>.gpkg`` (layers ``sites`` and ``removals``) into `folder`, each atomically, the
    GeoPackage first; return the YAML's path."""
    folder = Path(folder)
    paths = [folder / f"{sc.slug}.yaml", folder / f"{sc.slug}.gpkg"]
    there = [p for p in paths if p.exists()]
    if there and not overwrite:
        raise OutputExistsError(
            f"{', '.join(str(p) for p in there)} exist(s); pass overwrite=True to replace "
            "them, or give the scenario another name"
        )
    folder.mkdir(parents=True, exist_ok=True)

    def write_layers(tmp: Path) -> None:
        sites.to_file(tmp, layer="sites", driver="GPKG", geometry_type="Point")
        removals.reset_index(drop=True).to_file(
            tmp, layer="removals", driver="GPKG", geometry_type="Unknown"
        )

    doc = {**doc, "layers": paths[1].name, "edits": [e.as_dict() for e in sc.edits]}
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    with storage_errors(paths[1]):  # a full disk said as such (GDAL says it in SQLite's words)
        write_atomic(paths[1], write_layers)
    write_atomic(paths[0], lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return paths[0]


def scenario_slug(name: str) -> str:
    """A plain file name for a scenario's name: ASCII letters and digits joined by ``-``
    (``../x`` gives ``x``); a name with letters that have no ASCII form gets a short hash of
    it, so two Chinese names do not share files."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    lost = any(ord(c) > 127 and unicodedata.category(c)[0] in "LN" for c in name)
    if lost or not slug:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        slug = f"{slug or 'scenario'}-{digest}"
    return slug


def read_scenario_file(path: str | Path, *, folder: str | Path | None = None) -> dict[str, Any]:
    """The mapping a scenario's YAML file holds, read with the guards of the standards and city
    files (`walkcover._config.read_yaml`: at most 1 MB, no anchors or aliases, no repeated key),
    its ``walkcover_scenario`` version checked (the int 1 or 2: ``true`` and ``1.0`` are not).

    Parameters
    ----------
    path
        The scenario's ``.yaml`` file.
    folder
        When given (``walkcover serve``: ``out/scenarios``), `path` must be a plain file in it:
        a symbolic link, or a path that resolves outside it, is refused.

    Raises
    ------
    ScenarioError
        A file that cannot be read as a scenario (the message names it and the fix; no value of
        the file is echoed longer than 80 characters).
    """
    path = Path(path)
    fix = "give the .yaml file Scenario.save wrote"
    if folder is not None:
        try:
            if path.is_symlink():
                raise UnsafePathError(
                    f"scenario file {str(path)!r} is a symbolic link; walkcover reads only the "
                    f"scenario files it saved in {str(folder)!r}: remove the link"
                )
            inside(Path(folder), path, what="scenario file")
        except UnsafePathError as exc:
            raise ScenarioError(str(exc)) from None
    try:
        doc = read_yaml(path, what="scenario")
    except ConfigError as exc:
        raise ScenarioError(f"{exc}; {fix}") from None
    version = doc.get("walkcover_scenario")
    # exactly the int: YAML's ``true`` and ``1.0`` equal 1 in Python, and are no version
    if type(version) is not int or version not in (FILE_VERSION, MULTI_FILE_VERSION):
        raise ScenarioError(
            f"path {str(path)!r} is not a walkcover scenario file (walkcover_scenario is "
            f"{_shown(version)}, not the whole number {FILE_VERSION} or {MULTI_FILE_VERSION}); "
            f"{fix}"
        )
    return doc


def load_scenario(
    path: str | Path, assessment: Assessment, *, folder: str | Path | None = None
) -> Scenario | MultiScenario:
    """Replay the scenario saved at `path` (its YAML file, from `Scenario.save` or
    `MultiScenario.save`) on `assessment`: a `Scenario` for a file of one standard
    (``standard:``), a `MultiScenario` for one of several (``standards:``).

    The file is read as `read_scenario_file` reads it (at most 1 MB, no anchors or aliases).

    Parameters
    ----------
    path
        The scenario's ``.yaml`` file.
    assessment
        The run to replay it on (of the city it was made for).
    folder
        When given, `path` must be a plain file inside it (no symbolic link; `walkcover serve`
        gives ``out/scenarios``).

    Raises
    ------
    ScenarioError
        A file that cannot be read as a scenario (too large, anchors or aliases, a version that
        is not the whole number 1 or 2, a name that is not text), made for another city, or
        whose edits this run refuses (the message names the edit).
    """
    path = Path(path)
    doc = read_scenario_file(path, folder=folder)
    city = str(assessment.city.id)
    if str(doc.get("city")) != city:
        raise ScenarioError(
            f"path {str(path)!r} is a scenario of city {_shown(doc.get('city'))}, not of this "
            f"run's {city!r}; load it on a run of that city"
        )
    name = doc.get("name", "scenario")
    if not isinstance(name, str):
        raise ScenarioError(
            f"path {str(path)!r}: name is {_shown(name)}, not text; give the scenario's name as "
            "text (name: my plan)"
        )
    for key in ("standard", "district"):
        if key in doc and not isinstance(doc[key], str):
            raise ScenarioError(
                f"path {str(path)!r}: {key} is {_shown(doc[key])}, not text; give the id as text"
            )
    sc: Scenario | MultiScenario
    try:
        _check_name(name)
    except ScenarioError as exc:
        raise ScenarioError(f"path {str(path)!r}: {exc}") from None
    if "standards" in doc:
        standards = doc["standards"]
        if not isinstance(standards, list):
            raise ScenarioError(
                f"path {str(path)!r}: 'standards' must be a list of standard ids, not "
                f"{_shown(standards)}"
            )
        try:
            sc = scenario(
                assessment, list(standards), district_id=str(doc.get("district")), name=name
            )
        except ScenarioError as exc:
            raise ScenarioError(f"path {str(path)!r}: {exc}") from None
    else:
        sc = scenario(
            assessment, str(doc.get("standard")), district_id=str(doc.get("district")), name=name
        )
    edits = doc.get("edits") or []
    if not isinstance(edits, list):
        raise ScenarioError(f"path {str(path)!r}: 'edits' must be a list")
    for i, e in enumerate(edits, start=1):
        try:
            _replay(sc, e)
        except (ScenarioError, KeyError, TypeError) as exc:
            raise ScenarioError(f"path {str(path)!r}, edit {i} ({_shown(e)}): {exc}") from None
    return sc


def _replay(sc: Scenario | MultiScenario, e: Any) -> None:
    if not isinstance(e, dict):
        raise ScenarioError("an edit must be a mapping with 'op'")
    op = e.get("op")
    if op == "add":
        got = sc.add(
            lon=e["lon"], lat=e["lat"], name=e.get("name") or "", capacity=e.get("capacity")
        )
        if e.get("site_id") not in (None, got):
            raise ScenarioError(
                f"the site was saved as {_shown(e['site_id'])} but replays as {got!r}"
            )
    elif op == "move":
        sc.move(e["site_id"], lon=e["lon"], lat=e["lat"])
    elif op == "remove":
        if isinstance(sc, MultiScenario):
            sc.remove(e["facility_id"], standard=e.get("standard"))
        elif e.get("standard") not in (None, sc.standard.id):
            raise ScenarioError(
                f"the edit closes a facility of {_shown(e['standard'])}, not of this scenario's "
                f"{sc.standard.id!r}"
            )
        else:
            sc.remove(e["facility_id"])
    else:
        raise ScenarioError(f"op {_shown(op)}: give add, move or remove")


def _pipeline(crs_from: Any, crs_to: Any) -> pyproj.Transformer:
    """A transformer (x, y order) made from the operation PROJ picks between two CRSs, once: a
    `pyproj.Transformer` made from the CRSs builds a copy of itself in each thread that uses it,
    searching PROJ's database again (0.1-0.2 s for a city's CRS, on the first edit a web server's
    worker thread makes); one made from its pipeline does not (under 1 ms). The same numbers."""
    chosen = pyproj.Transformer.from_crs(crs_from, crs_to, always_xy=True)
    try:
        return pyproj.Transformer.from_pipeline(chosen.definition)
    except pyproj.exceptions.ProjError:  # an operation PROJ cannot write as one pipeline
        return chosen


def _shown(value: object, limit: int = 80) -> str:
    """`value`'s repr for an error message, cut to `limit` characters (then "…"): a value read
    from a tampered file or a request may be megabytes long, or an int too long to print."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit; nesting too deep
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(value: object) -> float | None:
    """`value` as a finite float, or None when it is not a number (a bool is none) or is not
    finite (NaN, infinity, or an int too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def _degrees(value: object, what: str) -> float:
    out = _finite(value)
    if out is None:
        number = not isinstance(value, bool) and isinstance(value, int | float | np.number)
        finite = "finite " if number else ""
        raise ScenarioError(f"{what}={_shown(value)}: give a {finite}number of degrees (WGS 84)")
    return out


def _capacity(value: object) -> float:
    """A site's capacity: a positive finite number, at most `MAX_CAPACITY` (the cap on OSM's
    capacity tags)."""
    out = _finite(value)
    if out is None or out <= 0:
        raise ScenarioError(
            f"capacity={_shown(value)}: give a positive number (places, seats) or leave it out"
        )
    if out > MAX_CAPACITY:
        raise ScenarioError(
            f"capacity={_shown(value)} is implausibly large (limit {MAX_CAPACITY:,.0f}, as for "
            "OSM capacity tags): give the site's places or seats, or leave it out"
        )
    return out


def _and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else list(items))


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ScenarioError(
            f"name={_shown(name)}: give the scenario a name as text (1 to 200 characters)"
        )
    return name.strip()


__all__ = [
    "DEMAND_COLUMNS",
    "GAIN_COLUMNS",
    "MULTI_GAIN_COLUMNS",
    "SCENARIO_METHOD",
    "SUMMARY_FIGURES",
    "Edit",
    "MultiScenario",
    "Scenario",
    "ScenarioError",
    "Site",
    "load_scenario",
    "read_scenario_file",
    "scenario",
    "scenario_slug",
    "standard_list",
    "suggest_sites",
]
