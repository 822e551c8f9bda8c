"""Site suggestions: where new facilities close the most gap.

Candidates are street nodes inside the gaps (thinned to a spacing) or a planner's own plots. Each
candidate's coverage of the *uncovered* demand units is computed with the engine `run` uses and
stored sparsely. Two models are solved exactly with HiGHS within a time limit, warm-started from
the greedy answer, which is also the fallback:

- maximal covering: the best ``k`` new sites (most residents newly covered);
- set covering to a target: the fewest new sites so that coverage of residents reaches the target.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy
import shapely

from walkcover._errors import ConfigError, CRSError, WalkcoverError
from walkcover.assessment import Assessment
from walkcover.engine import coverage as cov
from walkcover.engine.network import Network
from walkcover.measures.bands import distance_band


class SitingError(WalkcoverError, ValueError):
    """A siting request that cannot be answered as asked; the message says what can be done."""


@dataclass(frozen=True)
class CoverageMatrix:
    """Which uncovered demand units each candidate would cover.

    ``matrix`` is a sparse boolean (units × candidates); ``weights`` the residents of those units;
    ``units`` their positions in the demand frame; ``covered_before`` and ``total`` the residents
    already covered and in all.
    """

    matrix: scipy.sparse.csc_array
    weights: np.ndarray
    units: np.ndarray
    candidates: gpd.GeoDataFrame
    covered_before: float
    total: float

    @property
    def reachable(self) -> float:
        """Residents the candidates could newly cover, all of them together."""
        hit = np.asarray(self.matrix.sum(axis=1)).ravel() > 0
        return float(self.weights[hit].sum())


@dataclass(frozen=True)
class SitingResult:
    """Chosen candidates in rank order, what they cover, and how the answer was found."""

    chosen: np.ndarray
    gain: np.ndarray  # residents newly covered by each chosen site, in rank order (marginal)
    method: str  # "optimal (HiGHS)", "HiGHS at the time limit", "greedy (…)"
    mip_gap: float  # relative optimality gap; 0 when proven optimal, NaN for the greedy fallback
    objective: float


def node_points(network: Network) -> np.ndarray:
    """The point of every node, from the ends of the edge geometries."""
    e = network.edges
    pts = np.empty(network.n_nodes, dtype=object)
    g = e.geometry.to_numpy()
    pts[e["u_idx"].to_numpy()] = shapely.get_point(g, 0)
    pts[e["v_idx"].to_numpy()] = shapely.get_point(g, -1)
    return pts


def street_candidates(
    network: Network,
    district: shapely.Geometry,
    gap_units: gpd.GeoSeries,
    *,
    reach_m: float,
    spacing_m: float,
    no_go: shapely.Geometry | None = None,
) -> gpd.GeoDataFrame:
    """Street nodes in the district within `reach_m` of an uncovered unit, one per `spacing_m` cell.

    Nodes only on tunnels or indoor ways, and nodes in `no_go` (water), are left out. Motorways are
    not in the walk network, so never offered.
    """
    e = network.edges
    snappable = e["snappable"].to_numpy(dtype=bool)
    ok_node = np.zeros(network.n_nodes, dtype=bool)
    ok_node[e["u_idx"].to_numpy()[snappable]] = True
    ok_node[e["v_idx"].to_numpy()[snappable]] = True
    pts = node_points(network)
    idx = np.flatnonzero(ok_node)
    shapely.prepare(district)
    idx = idx[shapely.contains(district, pts[idx])]
    if no_go is not None and not shapely.is_empty(no_go):
        shapely.prepare(no_go)
        idx = idx[~shapely.intersects(no_go, pts[idx])]
    if len(gap_units) and len(idx):
        near = shapely.STRtree(gap_units.to_numpy()).query(
            pts[idx], predicate="dwithin", distance=reach_m
        )[0]
        idx = idx[np.unique(near)]
    else:
        idx = idx[:0]
    if len(idx):
        x, y = shapely.get_x(pts[idx]), shapely.get_y(pts[idx])
        cell = pd.DataFrame(
            {"i": idx, "cx": np.floor(x / spacing_m), "cy": np.floor(y / spacing_m)}
        )
        idx = cell.drop_duplicates(["cx", "cy"])["i"].to_numpy()
    return gpd.GeoDataFrame(
        {"source": "street node", "node_osm_id": network.node_osm_ids[idx]},
        geometry=pts[idx],
        crs=network.crs,
    )


def plot_candidates(path: str | Path, district: shapely.Geometry, crs) -> gpd.GeoDataFrame:
    """A planner's file of available plots (any CRS): one candidate per plot inside the district.

    Raises
    ------
    CRSError
        When the file has no CRS, or none of its plots lies in the district (the usual sign of a
        wrong CRS), naming the CRS read and where the plots are.
    """
    try:
        plots = gpd.read_file(path)
    except Exception as exc:  # pyogrio and GDAL raise several kinds for a file they cannot open
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ConfigError(
            f"--plots {str(path)!r} cannot be read as a GIS file ({reason}); pass a GeoPackage, "
            "shapefile or GeoJSON of the available plots"
        ) from None
    plots = plots[~(plots.geometry.isna() | plots.geometry.is_empty).to_numpy()]
    if not len(plots):
        raise ConfigError(
            f"--plots {str(path)!r} holds no plot with a geometry; add the available plots to it, "
            "or leave --plots out to consider the streets' nodes"
        )
    if plots.crs is None:
        raise CRSError(
            f"--plots {str(path)!r} has no CRS; save it with one (e.g. EPSG:4326 or EPSG:4547)"
        )
    b = plots.total_bounds
    if plots.crs.is_geographic and (abs(b[[0, 2]]).max() > 180 or abs(b[[1, 3]]).max() > 90):
        raise CRSError(
            f"--plots {str(path)!r} says {plots.crs.to_string()} (degrees) but its coordinates reach "
            f"{b[0]:.6g}, {b[1]:.6g} to {b[2]:.6g}, {b[3]:.6g}, which are not degrees: they look like metres. "
            "Set the file's real CRS (e.g. EPSG:4547) and try again"
        )
    proj = plots.to_crs(crs)
    pts = proj.geometry.representative_point()
    inside = pts.within(district).to_numpy()
    if not inside.any():
        raise CRSError(
            f"--plots {str(path)!r}: none of its {len(plots)} plots lies in the district. The file says "
            f"{plots.crs.to_string()} and its plots span {b[0]:.6g}, {b[1]:.6g} to {b[2]:.6g}, {b[3]:.6g}; "
            "if that is not where they are, the file's CRS is wrong: set the right one and try again"
        )
    keep = proj[inside]
    out = gpd.GeoDataFrame(
        {
            "source": f"plots file {Path(path).name}",
            "node_osm_id": None,
            "plot_row": np.flatnonzero(inside),
        },
        geometry=pts[inside].to_numpy(),
        crs=crs,
    )
    return out.assign(
        **{c: keep[c].to_numpy() for c in keep.columns if c != "geometry" and c not in out}
    )


def coverage_matrix(
    network: Network,
    candidates: gpd.GeoDataFrame,
    demand_snaps: cov.Snaps,
    residents: np.ndarray,
    covered: np.ndarray,
    threshold_m: float | np.ndarray,
    *,
    max_snap_m: float,
    chunk: int = 64,
) -> CoverageMatrix:
    """For each candidate, the uncovered demand units within the standard's walking distance.

    Distances use the engine's rules (access legs, edge offsets, same-edge walks); the matrix is
    sparse, so a city's hundreds of thousands of units fit.
    """
    n = demand_snaps.n_items
    thr = np.broadcast_to(np.asarray(threshold_m, dtype=float), (n,))
    uncovered = np.flatnonzero(~np.asarray(covered, dtype=bool))
    # The demand snaps restricted to the uncovered units, renumbered 0..len(uncovered)-1.
    sub = demand_snaps.take(uncovered)
    sub_thr = thr[uncovered]
    csnaps = cov.snap(network, candidates.geometry, max_snap_m=max_snap_m)
    e = network.edges
    limit = float(sub_thr.max()) if len(sub_thr) else 0.0
    rows, cols = [], []
    cand_u = e["u_idx"].to_numpy()[csnaps.edge]
    cand_v = e["v_idx"].to_numpy()[csnaps.edge]
    length = e["length_m"].to_numpy()[csnaps.edge]
    for start in range(0, len(csnaps.item), chunk):
        sl = slice(start, start + chunk)
        nodes, inv = np.unique(np.concatenate([cand_u[sl], cand_v[sl]]), return_inverse=True)
        d = scipy.sparse.csgraph.dijkstra(network.csr, indices=nodes, limit=limit)
        k = len(cand_u[sl])
        for j in range(k):
            s = start + j
            node_dist = np.minimum(
                csnaps.leg_m[s] + csnaps.lo_m[s] + d[inv[j]],
                csnaps.leg_m[s] + length[s] - csnaps.hi_m[s] + d[inv[k + j]],
            )
            one = csnaps.take(csnaps.item[s : s + 1])
            dist = cov.demand_distances(network, sub, one, node_dist)
            hit = np.flatnonzero(dist <= sub_thr)
            rows.append(hit)
            cols.append(np.full(len(hit), csnaps.item[s]))
    r = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    c = np.concatenate(cols) if cols else np.array([], dtype=np.int64)
    matrix = scipy.sparse.csc_array(
        (np.ones(len(r), dtype=bool), (r, c)), shape=(len(uncovered), len(candidates))
    )
    res = np.asarray(residents, dtype=float)
    return CoverageMatrix(
        matrix=matrix,
        weights=res[uncovered],
        units=uncovered,
        candidates=candidates.reset_index(drop=True),
        covered_before=float(res[~np.isin(np.arange(n), uncovered)].sum()),
        total=float(res.sum()),
    )


def greedy(cm: CoverageMatrix, *, k: int | None = None, need: float | None = None) -> np.ndarray:
    """Pick the candidate adding the most residents, again and again, until `k` sites or `need`
    residents (lazy evaluation: a candidate's gain only shrinks)."""
    a = cm.matrix.tocsc()
    w = cm.weights
    covered = np.zeros(a.shape[0], dtype=bool)
    gain = np.asarray(a.T @ w).ravel().astype(float) if a.shape[1] else np.array([])
    stale = np.zeros(a.shape[1], dtype=bool)
    chosen: list[int] = []
    total = 0.0
    while True:
        if k is not None and len(chosen) >= k:
            break
        if need is not None and total >= need - 1e-9:
            break
        if not len(gain) or gain.max() <= 0:
            break
        while True:
            j = int(np.argmax(gain))
            if not stale[j]:
                break
            units = a.indices[a.indptr[j] : a.indptr[j + 1]]
            gain[j] = float(w[units[~covered[units]]].sum())
            stale[j] = False
        if gain[j] <= 0:
            break
        units = a.indices[a.indptr[j] : a.indptr[j + 1]]
        total += gain[j]
        covered[units] = True
        chosen.append(j)
        gain[j] = -1.0
        stale[:] = True
        stale[chosen] = False
    return np.asarray(chosen, dtype=np.int64)


def rank(cm: CoverageMatrix, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order chosen sites by marginal gain (greedy order among them) and give each site's gain."""
    a = cm.matrix.tocsc()
    covered = np.zeros(a.shape[0], dtype=bool)
    left = list(map(int, chosen))
    order, gains = [], []
    while left:
        g = [
            float(cm.weights[(u := a.indices[a.indptr[j] : a.indptr[j + 1]])][~covered[u]].sum())
            for j in left
        ]
        best = int(np.argmax(g))
        j = left.pop(best)
        order.append(j)
        gains.append(g[best])
        covered[a.indices[a.indptr[j] : a.indptr[j + 1]]] = True
    return np.asarray(order, dtype=np.int64), np.asarray(gains)


def _solve(
    cm: CoverageMatrix, *, k: int | None, need: float | None, time_limit_s: float, warm: np.ndarray
):
    """The MIP over x (sites, binary) and y (units, 0..1): y_i ≤ Σ_j a_ij x_j."""
    import highspy

    a = cm.matrix.tocsr().astype(float)
    n_units, n_cand = a.shape
    # Rows 0..n_units-1: y_i − Σ a_ij x_j ≤ 0; last row: Σ x_j ≤ k, or Σ w_i y_i ≥ need.
    left = -a
    right = scipy.sparse.identity(n_units, format="csr")
    if k is not None:
        last = scipy.sparse.csr_array(np.concatenate([np.ones(n_cand), np.zeros(n_units)])[None, :])
        cost = np.concatenate([np.zeros(n_cand), cm.weights])
        sense = highspy.ObjSense.kMaximize
        last_lo, last_hi = -highspy.kHighsInf, float(k)
    else:
        last = scipy.sparse.csr_array(np.concatenate([np.zeros(n_cand), cm.weights])[None, :])
        cost = np.concatenate([np.ones(n_cand), np.zeros(n_units)])
        sense = highspy.ObjSense.kMinimize
        assert need is not None  # the target model always has one
        last_lo, last_hi = float(need), highspy.kHighsInf
    matrix = scipy.sparse.vstack([scipy.sparse.hstack([left, right]), last]).tocsc()
    lp = highspy.HighsLp()
    lp.num_col_ = n_cand + n_units
    lp.num_row_ = n_units + 1
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(lp.num_col_)
    lp.col_upper_ = np.ones(lp.num_col_)
    lp.row_lower_ = np.concatenate([np.full(n_units, -highspy.kHighsInf), [last_lo]])
    lp.row_upper_ = np.concatenate([np.zeros(n_units), [last_hi]])
    lp.sense_ = sense
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_cand + [
        highspy.HighsVarType.kContinuous
    ] * n_units
    h = _quiet_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("random_seed", 7)
    h.passModel(lp)
    if len(warm):
        sol = highspy.HighsSolution()
        x = np.zeros(lp.num_col_)
        x[warm] = 1.0
        cov_units = (
            np.asarray(a[:, warm].sum(axis=1)).ravel() > 0 if n_cand else np.zeros(n_units, bool)
        )
        x[n_cand:] = cov_units.astype(float)
        sol.col_value = list(x)
        h.setSolution(sol)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if not has_solution:
        return None, status, float("nan")
    x = np.asarray(h.getSolution().col_value[:n_cand])
    chosen = np.flatnonzero(x > 0.5)
    return chosen, status, float(info.mip_gap)


def _quiet_highs():
    """A HiGHS instance, without the banner its constructor prints to the process's stdout."""
    import os
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with Path(os.devnull).open("w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return h


def site(
    cm: CoverageMatrix,
    *,
    k: int | None = None,
    target_pct: float | None = None,
    time_limit_s: float = 60.0,
) -> SitingResult:
    """Best `k` new sites, or fewest new sites reaching `target_pct` of residents covered.

    Raises
    ------
    SitingError
        For k < 1, a target outside 0–100, or a target the candidates cannot reach (the message gives
        the best coverage they can reach).
    """
    import highspy

    if (k is None) == (target_pct is None):
        raise SitingError("give exactly one of --k (best k new sites) or --target (a coverage %)")
    if k is not None and k < 1:
        raise SitingError(f"--k {k}: the number of new sites must be at least 1")
    need = None
    if target_pct is not None:
        if not 0 < target_pct <= 100:
            raise SitingError(
                f"--target {target_pct:g}: give a coverage percentage above 0 and at most 100"
            )
        need = target_pct / 100.0 * cm.total - cm.covered_before
        if need <= 1e-9:
            raise SitingError(
                f"coverage is already {100 * cm.covered_before / cm.total:.1f}%, at or above --target "
                f"{target_pct:g}%: no new site is needed"
            )
        best = 100.0 * (cm.covered_before + cm.reachable) / cm.total
        if cm.reachable < need - 1e-9:
            raise SitingError(
                f"--target {target_pct:g}% cannot be reached: every candidate together brings coverage to "
                f"{best:.1f}% (now {100 * cm.covered_before / cm.total:.1f}%); lower the target, add candidate "
                "plots (--plots), or check the units no street reaches"
            )
    t0 = time.perf_counter()
    warm = greedy(cm, k=k, need=need)
    chosen, status, gap = _solve(cm, k=k, need=need, time_limit_s=time_limit_s, warm=warm)

    def score(c: np.ndarray) -> float:  # larger is better for both models
        return covered_residents(cm, c) if k is not None else -float(len(c))

    if chosen is None:
        chosen, method, gap = (
            warm,
            "greedy (HiGHS found no solution within the time limit)",
            float("nan"),
        )
    elif status == highspy.HighsModelStatus.kOptimal:
        method = "optimal (HiGHS)"
        gap = 0.0 if not np.isfinite(gap) else gap
    elif score(chosen) > score(warm) + 1e-9:
        method = f"HiGHS best found at the {time_limit_s:g} s time limit ({time.perf_counter() - t0:.1f} s)"
    else:  # HiGHS kept the greedy warm start as its incumbent, or did worse
        chosen = warm
        method = f"greedy (the {time_limit_s:g} s time limit was hit before HiGHS improved on it)"
    order, gains = rank(cm, chosen)
    # A site that adds no one is not proposed (k larger than the gap needs).
    order, gains = order[gains > 0], gains[gains > 0]
    objective = float(gains.sum()) if target_pct is None else float(len(order))
    return SitingResult(chosen=order, gain=gains, method=method, mip_gap=gap, objective=objective)


def covered_residents(cm: CoverageMatrix, chosen: np.ndarray) -> float:
    """Residents of the uncovered units that the `chosen` candidates would cover together."""
    if not len(chosen):
        return 0.0
    hit = np.asarray(cm.matrix[:, chosen].sum(axis=1)).ravel() > 0
    return float(cm.weights[hit].sum())


def brute_force(cm: CoverageMatrix, k: int) -> float:
    """Best residents newly covered by any `k` candidates (for checking small instances)."""
    best = 0.0
    for combo in itertools.combinations(range(cm.matrix.shape[1]), k):
        best = max(best, covered_residents(cm, np.asarray(combo)))
    return best


def proposed_sites(cm: CoverageMatrix, result: SitingResult, *, standard: str) -> gpd.GeoDataFrame:
    """The chosen sites as a layer: rank, residents newly covered, cumulative coverage."""
    cand = cm.candidates.iloc[result.chosen]
    cum = cm.covered_before + np.cumsum(result.gain)
    return gpd.GeoDataFrame(
        {
            "standard": standard,
            "rank": np.arange(1, len(cand) + 1),
            # as measured: the outputs round it for people (a whole number of residents,
            # `walkcover.presentation.figures.count_text`); rounding here too rounded twice
            "residents_newly_covered": np.asarray(result.gain, dtype=float),
            "cumulative_coverage_pct": 100.0 * cum / cm.total if cm.total > 0 else np.nan,
            "candidate_source": cand["source"].to_numpy(),
            "node_osm_id": cand["node_osm_id"].to_numpy(),
            "method": result.method,
            "mip_gap": result.mip_gap,
        },
        geometry=cand.geometry.to_numpy(),
        crs=cm.candidates.crs,
    )


def _district_units(result: Assessment, standard_id: str, district_id: str):
    """The standard, the district's homes, their snaps and their radii (context radii included)."""
    try:
        std = result.standard(standard_id)
    except KeyError as exc:
        raise SitingError(str(exc.args[0])) from None
    mine, snaps = result.district_demand(district_id)
    thr = np.broadcast_to(np.asarray(result.thresholds(std, snaps), dtype=float), (len(mine),))
    return std, mine, snaps, thr


def district_coverage_matrix(
    result: Assessment,
    standard_id: str,
    district_id: str,
    *,
    plots: str | Path | None = None,
) -> CoverageMatrix:
    """The coverage matrix of one district and standard from a finished assessment.

    Candidates: street nodes in the district's gaps (thinned to the city's ``siting.spacing_m``,
    not in water), or, with `plots`, the planner's plots.
    """
    from walkcover.measures.land import land_union

    _, mine, snaps, thr = _district_units(result, standard_id, district_id)
    cfg = result.city.config
    dgeom = result.district_geometry(district_id)
    covered = mine[f"{standard_id}_covered"].to_numpy(dtype=bool)
    if plots is not None:
        cands = plot_candidates(plots, dgeom, result.crs)
    else:
        water = land_union(result.features, result.rules.street_contexts.water)  # no sites in water
        cands = street_candidates(
            result.network,
            dgeom,
            mine.geometry[~covered],
            reach_m=float(thr.max()) if len(thr) else 0.0,
            spacing_m=cfg.siting.spacing_m,
            no_go=water,
        )
    return coverage_matrix(
        result.network,
        cands,
        snaps,
        mine[result.residents_column(standard_id)].to_numpy(),
        covered,
        thr,
        max_snap_m=cfg.network.max_snap_m,
    )


def walks_with_sites(
    result: Assessment,
    standard_id: str,
    district_id: str,
    sites: gpd.GeoSeries,
) -> pd.DataFrame:
    """Each home of the district's walk (``dist_m``, ``covered``, ``status``, ``band``) when
    `sites` are added to the existing facilities, measured afresh with the engine `run` uses; rows
    in the order of `Assessment.district_demand`."""
    _, _, d, thr = _district_units(result, standard_id, district_id)
    p = result.passes[standard_id]  # the facilities `run` used, imported ones included
    geoms = np.concatenate([p.access.to_numpy(), sites.to_crs(result.crs).to_numpy()])
    f = cov.snap(
        result.network,
        geoms,
        max_snap_m=result.city.config.network.max_snap_m,
        reach_polygon_edges=True,
    )
    walks = cov.measure(result.network, d, f, threshold_m=thr, limit_m=p.limit_m)
    walks["band"] = distance_band(walks["dist_m"].to_numpy(), thr, walks["status"].to_numpy())
    return walks


def coverage_with_sites(
    result: Assessment,
    standard_id: str,
    district_id: str,
    sites: gpd.GeoSeries,
) -> float:
    """Residents covered (%) in the district when `sites` are added to the existing facilities,
    measured afresh with the engine `run` uses."""
    mine, _ = result.district_demand(district_id)
    res = walks_with_sites(result, standard_id, district_id, sites)
    w = mine[result.residents_column(standard_id)].to_numpy(dtype=float)
    return 100.0 * float(w[res["covered"].to_numpy()].sum()) / float(w.sum())


def walks_after(
    result: Assessment, district_id: str, proposed: gpd.GeoDataFrame | None
) -> dict[str, pd.DataFrame]:
    """Per standard with sites in `proposed` (a district's ``proposed_sites`` layer), each home's
    walk once they are built (`walks_with_sites`: ``dist_m``, ``covered``, ``status``), for maps
    and layers that show homes before and after."""
    if proposed is None or not len(proposed):
        return {}
    measured = {s.id for s in result.standards}
    return {
        str(sid): walks_with_sites(result, str(sid), district_id, g.geometry)
        for sid, g in proposed.groupby("standard")
        if sid in measured
    }


@dataclass(frozen=True)
class Proposal:
    """A district's proposed sites (a ``proposed_sites`` layer: ``standard, rank,
    residents_newly_covered, cumulative_coverage_pct``, points) and, per standard with sites,
    each home's walk once they are built (`walks_after`): what the outputs draw before and after,
    measured here so that no writer measures."""

    district_id: str
    sites: gpd.GeoDataFrame
    after: dict[str, pd.DataFrame]


def proposal(result: Assessment, district_id: str, sites: gpd.GeoDataFrame) -> Proposal:
    """`sites` proposed for one district, with the homes' walks after them (`walks_after`)."""
    return Proposal(district_id, sites, walks_after(result, district_id, sites))


@dataclass(frozen=True)
class DistrictSiting:
    """The siting answer of one district: coverage before and after, the sites, how found.

    ``sites`` is None when nothing was proposed; ``how`` then says why (no gap, or the
    `SitingError` message for a target this district cannot reach).
    """

    district_id: str
    name: str
    slug: str
    before_pct: float
    after_pct: float
    sites: gpd.GeoDataFrame | None
    how: str
    mip_gap: float

    @property
    def new_sites(self) -> int:
        return 0 if self.sites is None else len(self.sites)


def site_districts(
    result: Assessment,
    standard_id: str,
    *,
    k: int | None = None,
    target_pct: float | None = None,
    time_limit_s: float | None = None,
    plots: str | Path | None = None,
) -> list[DistrictSiting]:
    """`site` for every district of an assessment.

    Parameters
    ----------
    result
        A finished `walkcover.assessment.Assessment`.
    standard_id
        The standard to site.
    k, target_pct
        Exactly one: the best `k` new sites, or the fewest reaching `target_pct` % of residents.
    time_limit_s
        Seconds HiGHS may search per district (default: the city config's ``siting.time_limit_s``).
    plots
        The planner's candidate plots instead of street nodes in the gaps.

    Raises
    ------
    SitingError
        A request that cannot be answered; with several districts, a district whose target cannot
        be reached is reported in its `DistrictSiting` instead.
    """
    if time_limit_s is not None and not time_limit_s > 0:
        raise SitingError(
            f"time limit {time_limit_s:g} s: give the seconds HiGHS may search as a positive number"
        )
    limit = time_limit_s if time_limit_s is not None else result.city.config.siting.time_limit_s
    out = []
    for _, drow in result.districts.iterrows():
        did = drow["district_id"]
        cm = district_coverage_matrix(result, standard_id, did, plots=plots)
        before = 100.0 * cm.covered_before / cm.total if cm.total > 0 else float("nan")

        def row(
            after: float, sites: gpd.GeoDataFrame | None, how: str, gap: float, *, d=drow, b=before
        ):
            return DistrictSiting(d["district_id"], d["name"], d["slug"], b, after, sites, how, gap)

        if cm.matrix.shape[0] == 0:
            out.append(row(before, None, "no gap: every resident is covered", float("nan")))
            continue
        try:
            res = site(cm, k=k, target_pct=target_pct, time_limit_s=limit)
        except SitingError as exc:
            if len(result.districts) == 1:
                raise
            out.append(row(float("nan"), None, str(exc), float("nan")))
            continue
        sites = proposed_sites(cm, res, standard=standard_id)
        after = float(sites["cumulative_coverage_pct"].iloc[-1]) if len(sites) else before
        out.append(row(after, sites, res.method, res.mip_gap))
    return out
