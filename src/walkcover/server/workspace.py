"""What the web app holds and does: one run, the live scenarios the page edits, the saved ones.

Everything here is plain Python that returns JSON-ready dicts; `walkcover.server.app` only maps
requests onto it. Figures for people are formatted by `walkcover.presentation.figures`, colours
come from `walkcover.presentation.palette`; the page puts every text it receives on screen with
``textContent``.

Threads: the web server runs each request on a worker thread. A live scenario is edited under its
own lock (a `walkcover.scenario.Scenario` is not made for two threads at once); a saved scenario's
files are written and read under a lock per slug (a thread lock and a file lock beside them), so
two tabs saving the same name write one after the other and never mix their files.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
import yaml
from filelock import FileLock

from walkcover._errors import WalkcoverError
from walkcover.api import Results
from walkcover.measures.bands import BAND_NAMES
from walkcover.measures.land import euclid_covered_share, land_union
from walkcover.presentation.figures import NO_DATA, count_text, figure_text, meets_text, pct_text
from walkcover.presentation.palette import (
    BANDS,
    FACILITY_COLOUR,
    GAP_COLOUR,
    SITE_COLOUR,
    STREET_COLOUR,
)
from walkcover.scenario import Scenario, ScenarioError, load_scenario, scenario, scenario_slug
from walkcover.siting import SitingError, coverage_matrix, proposed_sites, site, street_candidates

#: The folder under ``--out`` the scenarios are saved in.
SCENARIO_FOLDER = "scenarios"
#: A saved scenario's slug as `walkcover.scenario.scenario_slug` makes it: the only way a
#: request names a saved scenario (never a path).
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
#: Live scenarios kept per server (the oldest untouched one is let go past it).
MAX_LIVE = 32
#: Most sites one "suggest" adds.
MAX_SUGGEST = 20


class ServeError(WalkcoverError, ValueError):
    """A request the web app cannot answer as asked; the message says the fix (HTTP 400)."""


class NotFoundError(ServeError):
    """A live or saved scenario that is not there (HTTP 404)."""


class NotReadyError(ServeError):
    """The run is still being measured (HTTP 503): ask again when ``status`` says ready."""


@dataclass
class Live:
    """A scenario the page edits: its lock, and a version that grows with each edit."""

    id: str
    scenario: Scenario
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0
    used: float = field(default_factory=time.monotonic)
    notice: str = ""


def _num(value: Any) -> float | None:
    """A number for JSON: None where it is missing or not finite."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _text(value: Any) -> str:
    """Text for JSON: "" where missing (NaN names from OSM)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


class Workspace:
    """One run served: its results (measured on a thread, with progress), the live scenarios and
    the scenarios saved in ``out/scenarios``.

    Parameters
    ----------
    out
        The output folder; scenarios are saved in ``out/scenarios``.
    results
        A finished run; or give `load`.
    load
        Measures the run, given a progress callback (``label -> None``); called once by `start`.
    """

    def __init__(
        self,
        out: str | Path,
        *,
        results: Results | None = None,
        load: Callable[[Callable[[str], None]], Results] | None = None,
    ) -> None:
        if (results is None) == (load is None):
            raise ServeError("give a workspace either results (a finished run) or load, not both")
        self.out = Path(out)
        self.folder = self.out / SCENARIO_FOLDER
        self._results = results
        self._load = load
        self._status: dict[str, Any] = {
            "state": "ready" if results is not None else "waiting",
            "step": "",
            "steps": 0,
            "message": "",
            "started": time.monotonic(),
        }
        self._live: dict[str, Live] = {}
        self._guard = threading.Lock()
        self._slug_locks: dict[str, threading.Lock] = {}
        self._water: Any = None
        self._lands: dict[tuple[str, str], Any] = {}
        self._street_lines: dict[str, list[list[list[float]]]] = {}

    # -- the run ----------------------------------------------------------------------------

    def start(self) -> None:
        """Measure the run on a thread (once); `status` follows it."""
        if self._load is None or self._status["state"] != "waiting":
            return
        self._status["state"] = "loading"
        threading.Thread(target=self._measure, name="walkcover-serve-load", daemon=True).start()

    def _measure(self) -> None:
        assert self._load is not None

        def progress(label: str) -> None:
            self._status["step"] = label
            self._status["steps"] += 1

        try:
            self._results = self._load(progress)
        except Exception as exc:  # shown on the page; the server stays up to say it
            self._status.update(state="failed", message=" ".join(str(exc).split())[:500])
            return
        self._status.update(state="ready", step="")

    def status(self) -> dict[str, Any]:
        """``state`` (waiting, loading, ready, failed), the step measuring is at, how many steps
        done, the seconds since it began and the failure's message."""
        s = dict(self._status)
        s["seconds"] = round(time.monotonic() - s.pop("started"), 1)
        return s

    @property
    def results(self) -> Results:
        """The run, once measured.

        Raises
        ------
        NotReadyError
            While it is being measured (or when measuring failed: the message says why).
        """
        if self._results is None:
            if self._status["state"] == "failed":
                raise NotReadyError(f"the run could not be measured: {self._status['message']}")
            raise NotReadyError("the run is still being measured; wait for status 'ready'")
        return self._results

    def meta(self) -> dict[str, Any]:
        """The city, its measured districts (outline, bounds) and standards, and the legend."""
        a = self.results.assessment
        cfg = a.city.config
        d4326 = a.districts.to_crs(4326)
        districts = [
            {
                "id": str(r.district_id),
                "name": _text(r.name),
                "name_en": _text(getattr(r, "name_en", "")),
                "bounds": [float(v) for v in shapely.bounds(r.geometry)],
            }
            for r in d4326.itertuples()
        ]
        standards = [
            {
                "id": s.id,
                "name": s.name,
                "name_zh": s.name_zh,
                "threshold_m": float(s.threshold_m),
            }
            for s in a.standards
        ]
        return {
            "city": {"id": str(a.city.id), "name": _text(cfg.name), "name_en": _text(cfg.name_en)},
            "districts": districts,
            "standards": standards,
            "bands": [{"band": b, "colour": BANDS[b][0], "label": BANDS[b][1]} for b in BAND_NAMES],
            "colours": {
                "facility": FACILITY_COLOUR[0],
                "facility_fill": FACILITY_COLOUR[1],
                "site": SITE_COLOUR,
                "gap": GAP_COLOUR,
                "removed": BANDS["unknown"][0],
                "street": STREET_COLOUR,
            },
            "no_data": NO_DATA,
        }

    # -- live scenarios -----------------------------------------------------------------------

    def open(self, *, district_id: Any, standard_id: Any, name: Any = "scenario") -> dict[str, Any]:
        """A new live scenario of one district and standard; its full state (`full_state`)."""
        results = self.results
        for arg, value in (("district_id", district_id), ("standard_id", standard_id)):
            if not isinstance(value, str):
                raise ServeError(f"{arg}={value!r}: give the id as text (see /api/meta)")
        sc = scenario(
            results.assessment,
            standard_id,
            district_id=district_id,
            name=name if isinstance(name, str) and name.strip() else "scenario",
        )
        return self.full_state(self._keep(sc).id)

    def _keep(self, sc: Scenario) -> Live:
        live = Live(secrets.token_hex(8), sc)
        with self._guard:
            if len(self._live) >= MAX_LIVE:
                oldest = min(self._live.values(), key=lambda x: x.used)
                del self._live[oldest.id]
            self._live[live.id] = live
        return live

    def live(self, live_id: Any) -> Live:
        """The live scenario `live_id`.

        Raises
        ------
        NotFoundError
            No live scenario has that id (the server restarted, or it was let go).
        """
        found = self._live.get(live_id) if isinstance(live_id, str) else None
        if found is None:
            raise NotFoundError(
                f"scenario id {str(live_id)[:40]!r} is not open on this server (it restarted, or "
                "too many were opened); open the district again or load the saved scenario"
            )
        found.used = time.monotonic()
        return found

    def full_state(self, live_id: str) -> dict[str, Any]:
        """`state` plus what does not change with edits: the homes' positions and residents,
        the district's outline and the run's gaps (GeoJSON, WGS 84)."""
        live = self.live(live_id)
        with live.lock:
            out = self._state(live)
            sc = live.scenario
            a = sc.assessment
            homes, _ = a.district_demand(sc.district_id)
            pts = gpd.GeoSeries(homes.geometry.representative_point(), crs=a.crs).to_crs(4326)
            res = homes[a.residents_column(sc.standard.id)].to_numpy(dtype=float)
            out["homes"] = {
                "lon": np.round(pts.x.to_numpy(), 6).tolist(),
                "lat": np.round(pts.y.to_numpy(), 6).tolist(),
                "residents": [round(float(r), 1) for r in np.nan_to_num(res)],
            }
            dgeom = a.district_geometry(sc.district_id)
            outline = gpd.GeoSeries([dgeom], crs=a.crs).to_crs(4326)
            out["outline"] = shapely.geometry.mapping(outline.iloc[0])
            out["streets"] = self._streets(sc.district_id, dgeom)
            gaps = a.gaps(sc.district_id, sc.standard.id)
            out["gaps"] = [
                {
                    "rank": int(g["rank"]),
                    "residents": _num(g["residents_uncovered"]),
                    "residents_text": count_text(g["residents_uncovered"]),
                    "geometry": shapely.geometry.mapping(geom),
                }
                for (_, g), geom in zip(
                    gaps.iterrows(), gaps.to_crs(4326).geometry.simplify(1e-5), strict=True
                )
            ]
        return out

    def _streets(self, district_id: str, dgeom: shapely.Geometry) -> list[list[list[float]]]:
        """The walkable streets in the district, as lines of [lon, lat] (about 1 m apart at
        most; made once per district)."""
        if district_id not in self._street_lines:
            a = self.results.assessment
            edges = a.network.edges.geometry
            near = edges.iloc[edges.sindex.query(dgeom, predicate="intersects")]
            lines = near.simplify(1.0).to_crs(4326).to_numpy()
            self._street_lines[district_id] = [
                np.round(shapely.get_coordinates(g), 5).tolist() for g in lines
            ]
        return self._street_lines[district_id]

    def state(self, live_id: str) -> dict[str, Any]:
        """The scenario's figures, home bands, sites with gains and facilities (see docs/serve.md)."""
        live = self.live(live_id)
        with live.lock:
            return self._state(live)

    def _state(self, live: Live) -> dict[str, Any]:
        sc = live.scenario
        a = sc.assessment
        s = sc.summary
        codes = {b: str(i) for i, b in enumerate(BAND_NAMES)}
        bands = "".join(codes[b] for b in sc.demand["band"])
        to4326 = pyproj.Transformer.from_crs(a.crs, 4326, always_xy=True)
        gain = sc.gain.set_index("site_id")
        edges = a.network.edges.geometry.to_numpy()
        sites = []
        for x in sc.sites:
            g = gain.loc[x.site_id]
            snap = None
            if len(x.snaps.item):
                p = shapely.line_interpolate_point(edges[x.snaps.edge[0]], x.snaps.lo_m[0])
                lon, lat = to4326.transform(shapely.get_x(p), shapely.get_y(p))
                snap = [round(float(lon), 7), round(float(lat), 7)]
            sites.append(
                {
                    "site_id": x.site_id,
                    "name": x.name,
                    "lon": x.lon,
                    "lat": x.lat,
                    "snap": snap,
                    "homes_reached": int(x.homes_reached),
                    "residents_served": _num(g["residents_served"]),
                    "residents_newly_covered": _num(g["residents_newly_covered"]),
                    "gain_text": count_text(g["residents_newly_covered"]),
                    "reason": x.reason,
                }
            )
        fac = sc.facilities
        existing = fac[(fac["kind"] == "existing").to_numpy()]
        fac_pts = existing.geometry.representative_point().to_crs(4326)
        facilities = [
            {
                "facility_id": str(fid),
                "name": _text(name),
                "lon": round(float(p.x), 7),
                "lat": round(float(p.y), 7),
                "removed": bool(rem),
            }
            for fid, name, rem, p in zip(
                existing["facility_id"], existing["name"], existing["removed"], fac_pts
            )
        ]
        return {
            "id": live.id,
            "version": live.version,
            "name": sc.name,
            "slug": sc.slug,
            "district_id": sc.district_id,
            "standard_id": sc.standard.id,
            "edits": len(sc.edits),
            "can_undo": bool(sc.edits),
            "figures": self._figures(sc, s),
            "bands": bands,
            "sites": sites,
            "facilities": facilities,
            "notice": live.notice,
        }

    def _figures(self, sc: Scenario, s: Any) -> dict[str, Any]:
        a = sc.assessment
        row = a.summary[
            (a.summary["district_id"].astype(str) == sc.district_id).to_numpy()
            & (a.summary["standard"] == sc.standard.id).to_numpy()
        ].iloc[0]
        official = self.official_pct(sc)
        no_data = bool(_text(s["no_data_reason"]))
        gain = sc.gain
        newly = float(gain["residents_newly_covered"].sum()) if len(gain) else 0.0
        raw: dict[str, Any] = {
            "residents": _num(s["residents"]),
            "residents_covered": _num(s["residents_covered"]),
            "residents_covered_pct": _num(s["residents_covered_pct"]),
            "residents_covered_pct_run": _num(row["residents_covered_pct"]),
            "units_covered_pct": _num(s["units_covered_pct"]),
            "area_covered_euclid_pct": _num(official),
            "area_covered_euclid_pct_run": _num(row["area_covered_euclid_pct"]),
            "target_pct": _num(s["target_pct"]),
            "meets_target": None if s["meets_target"] is None else bool(s["meets_target"]),
            "facilities": int(s["facilities"]),
            "facilities_in_reach": int(s["facilities_in_reach"]),
            "sites_added": int(s["sites_added"]),
            "facilities_removed": int(s["facilities_removed"]),
            "residents_newly_covered": newly,
            "threshold_m": _num(s["threshold_m"]),
            "no_data_reason": _text(s["no_data_reason"]),
        }
        run_no_data = int(row["facilities_in_reach"]) == 0
        raw["text"] = {
            "residents": count_text(s["residents"]),
            "residents_covered": count_text(s["residents_covered"]),
            "residents_covered_pct": pct_text(
                s["residents_covered_pct"], no_data=no_data, unit="%"
            ),
            "residents_covered_pct_run": pct_text(
                row["residents_covered_pct"], no_data=run_no_data, unit="%"
            ),
            "units_covered_pct": pct_text(s["units_covered_pct"], no_data=no_data, unit="%"),
            "area_covered_euclid_pct": pct_text(official, no_data=no_data, unit="%"),
            "area_covered_euclid_pct_run": pct_text(
                row["area_covered_euclid_pct"], no_data=run_no_data, unit="%"
            ),
            "target_pct": figure_text(s["target_pct"], decimals=0, unit="%"),
            "meets_target": meets_text(s["meets_target"], no_data=no_data),
            "residents_newly_covered": count_text(newly),
            "threshold_m": figure_text(s["threshold_m"], decimals=0, unit=" m"),
        }
        return raw

    def official_pct(self, sc: Scenario) -> float:
        """The official figure (``area_covered_euclid_pct``: straight-line circles on the
        standard's land ÷ that land, as the run measures it) for the scenario's facilities: the
        run's counted facilities less those closed, plus the sites. NaN without land figures."""
        a, std = sc.assessment, sc.standard
        if a.lands is None:
            return math.nan
        key = (std.denominator, sc.district_id)
        if key not in self._lands:
            self._lands[key] = a.lands.district_cells(std.denominator, sc.district_id)[0]
        counted = a.passes[std.id].counted
        fac = sc.facilities
        closed = set(fac.loc[fac["removed"].to_numpy(), "facility_id"].astype(str))
        ids = counted["osm_id"].astype(str) if "osm_id" in counted else None
        keep = np.ones(len(counted), dtype=bool) if ids is None else ~ids.isin(closed).to_numpy()
        geoms = np.concatenate(
            [counted.geometry.to_numpy()[keep], np.array([x.point for x in sc.sites], dtype=object)]
        )
        return euclid_covered_share(self._lands[key], geoms, std.threshold_m)

    # -- edits ----------------------------------------------------------------------------------

    def edit(self, live_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One edit (``op``: add, move, remove, undo; see docs/serve.md); the new `state`.

        Raises
        ------
        ServeError
            An edit the scenario refuses (`walkcover.scenario.ScenarioError`'s message).
        """
        live = self.live(live_id)
        op = body.get("op")
        with live.lock:
            sc = live.scenario
            live.notice = ""
            if op == "add":
                name = body.get("name", "")
                site_id = sc.add(
                    lon=body.get("lon"),  # type: ignore[arg-type]  # checked by Scenario.add
                    lat=body.get("lat"),  # type: ignore[arg-type]
                    name=name if name is not None else "",
                )
                live.notice = next(x.reason for x in sc.sites if x.site_id == site_id)
            elif op == "move":
                sc.move(body.get("site_id"), lon=body.get("lon"), lat=body.get("lat"))  # type: ignore[arg-type]
                live.notice = next(
                    (x.reason for x in sc.sites if x.site_id == body.get("site_id")), ""
                )
            elif op == "remove":
                target = body.get("id")
                if not isinstance(target, str):
                    raise ServeError(
                        f"id={target!r}: give the site_id or facility_id to remove as text"
                    )
                sc.remove(target)
            elif op == "undo":
                sc.undo()
            else:
                raise ServeError(f"op={op!r}: give one of add, move, remove, undo")
            live.version += 1
            return self._state(live)

    def suggest(self, live_id: str, *, k: Any, time_limit_s: float | None = None) -> dict[str, Any]:
        """Add the best `k` new sites for the scenario as it stands (its sites and closures
        kept: the optimiser sees only the homes they leave uncovered), each an editable site.

        Raises
        ------
        ServeError
            `k` not a whole number from 1 to `MAX_SUGGEST`, or no gap left to close.
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SUGGEST:
            raise ServeError(f"k={k!r}: give the number of sites to suggest, 1 to {MAX_SUGGEST}")
        live = self.live(live_id)
        with live.lock:
            sc = live.scenario
            sites = self._suggested(sc, k=k, time_limit_s=time_limit_s)
            before = len(sc.edits)
            try:
                for rank, lon, lat in sites:
                    sc.add(lon=lon, lat=lat, name=f"suggested {rank} · 建议 {rank}")
            except ScenarioError:
                while len(sc.edits) > before:
                    sc.undo()
                raise
            live.notice = (
                f"{len(sites)} site(s) suggested · 建议 {len(sites)} 处"
                if sites
                else "no site adds residents · 无可增加覆盖的选址"
            )
            live.version += 1
            return self._state(live)

    def _suggested(
        self, sc: Scenario, *, k: int, time_limit_s: float | None
    ) -> list[tuple[int, float, float]]:
        a, std, did = sc.assessment, sc.standard, sc.district_id
        homes, snaps = a.district_demand(did)
        thr = np.broadcast_to(np.asarray(a.thresholds(std, snaps), dtype=float), (len(homes),))
        covered = sc.demand["covered"].to_numpy(dtype=bool)
        if covered.all():
            raise ServeError("every resident is covered already: there is no gap to site in")
        cfg = a.city.config
        if self._water is None:
            self._water = land_union(a.features, a.rules.street_contexts.water)
        cands = street_candidates(
            a.network,
            a.district_geometry(did),
            homes.geometry[~covered],
            reach_m=float(thr.max()),
            spacing_m=cfg.siting.spacing_m,
            no_go=self._water,
        )
        cm = coverage_matrix(
            a.network,
            cands,
            snaps,
            homes[a.residents_column(std.id)].to_numpy(dtype=float),
            covered,
            thr,
            max_snap_m=cfg.network.max_snap_m,
        )
        if cm.matrix.shape[1] == 0:
            return []
        limit = time_limit_s if time_limit_s is not None else cfg.siting.time_limit_s
        try:
            res = site(cm, k=k, time_limit_s=limit)
        except SitingError as exc:
            raise ServeError(str(exc)) from None
        chosen = proposed_sites(cm, res, standard=std.id).to_crs(4326)
        return [
            (int(r), float(p.x), float(p.y))
            for r, p in zip(chosen["rank"], chosen.geometry, strict=True)
        ]

    # -- saved scenarios ------------------------------------------------------------------------

    def _slug_lock(self, slug: str) -> threading.Lock:
        with self._guard:
            return self._slug_locks.setdefault(slug, threading.Lock())

    def save(self, live_id: str, *, name: Any, overwrite: Any = False) -> dict[str, Any]:
        """Save the scenario as `name` in ``out/scenarios`` (`Scenario.save`), under its slug's
        lock; refused when a scenario of that slug is there and `overwrite` is not true.

        Raises
        ------
        ServeError
            A name that is not text of 1 to 200 characters.
        walkcover._errors.OutputExistsError
            The files are there and `overwrite` is not true (HTTP 409).
        """
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ServeError(f"name={name!r}: give the scenario a name, 1 to 200 characters")
        live = self.live(live_id)
        with live.lock:
            sc = live.scenario
            sc.name, sc.slug = name.strip(), scenario_slug(name.strip())
            with self._slug_lock(sc.slug), self._file_lock(sc.slug):
                path = sc.save(self.folder, overwrite=overwrite is True)
            live.version += 1
            return {"slug": sc.slug, "name": sc.name, "file": path.name, "state": self._state(live)}

    def _file_lock(self, slug: str) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(self.folder / f".{slug}.lock", timeout=30)

    def saved(self) -> list[dict[str, Any]]:
        """The scenarios saved in ``out/scenarios``: slug, name, district, standard, edits."""
        out: list[dict[str, Any]] = []
        if not self.folder.is_dir():
            return out
        for path in sorted(self.folder.glob("*.yaml")):
            if not SLUG.fullmatch(path.stem):
                continue
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            if not isinstance(doc, dict) or "walkcover_scenario" not in doc:
                continue
            edits = doc.get("edits")
            out.append(
                {
                    "slug": path.stem,
                    "name": _text(doc.get("name")),
                    "district_id": _text(doc.get("district")),
                    "standard_id": _text(doc.get("standard")),
                    "edits": len(edits) if isinstance(edits, list) else 0,
                }
            )
        return out

    def load(self, slug: Any) -> dict[str, Any]:
        """Replay the saved scenario `slug` (`load_scenario`) as a new live one; its full state.

        Raises
        ------
        NotFoundError
            No scenario of that slug is saved (a slug is letters, digits and ``-``: never a path).
        """
        if not isinstance(slug, str) or not SLUG.fullmatch(slug) or len(slug) > 120:
            raise NotFoundError(
                f"slug={str(slug)[:80]!r}: give the slug of a saved scenario (see /api/saved)"
            )
        path = self.folder / f"{slug}.yaml"
        with self._slug_lock(slug), self._file_lock(slug):
            if not path.is_file():
                raise NotFoundError(
                    f"slug={slug!r}: no scenario of that slug is saved (see /api/saved)"
                )
            sc = load_scenario(path, self.results.assessment)
        return self.full_state(self._keep(sc).id)

    def compare(self, a_id: str, b_id: str) -> dict[str, Any]:
        """Two live scenarios side by side: their names, figures and sites' gains."""
        out = {}
        for key, live_id in (("a", a_id), ("b", b_id)):
            s = self.state(live_id)
            out[key] = {k: s[k] for k in ("id", "name", "district_id", "standard_id", "edits")}
            out[key]["figures"] = s["figures"]
            out[key]["sites"] = [
                {k: x[k] for k in ("site_id", "name", "residents_newly_covered", "gain_text")}
                for x in s["sites"]
            ]
        return out


__all__ = [
    "MAX_SUGGEST",
    "SCENARIO_FOLDER",
    "Live",
    "NotFoundError",
    "NotReadyError",
    "ServeError",
    "Workspace",
]
