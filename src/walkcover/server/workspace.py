"""What the web app holds and does: one run, the live scenarios the page edits, the saved ones.

Everything here is plain Python that returns JSON-ready dicts; `walkcover.server.app` only maps
requests onto it. Nothing here measures: the figures (walks, summary, official figure, gains,
suggested sites) are `walkcover.scenario`'s, the export `walkcover.api.Results.export_scenario`.
Figures for people are formatted by `walkcover.presentation.figures`, colours come from
`walkcover.presentation.palette`, geometry travels packed (`walkcover.presentation.web_map.
pack_geometry`); the page puts every text it receives on screen with ``textContent``.

Threads: the web server runs each request on a worker thread. A live scenario is edited under its
own lock (a `walkcover.scenario.Scenario` is not made for two threads at once); a saved scenario's
files are written and read under a lock per slug (a thread lock and a file lock beside them), so
two tabs saving the same name write one after the other and never mix their files.
"""

from __future__ import annotations

import gc
import math
import re
import secrets
import shlex
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from walkcover._errors import OutputExistsError, UnsafePathError, WalkcoverError
from walkcover._lock import file_lock, remove_free_lock
from walkcover._paths import inside
from walkcover.api import Results
from walkcover.measures.bands import BAND_NAMES
from walkcover.presentation.figures import NO_DATA, count_text, figure_text, meets_text, pct_text
from walkcover.presentation.layers import edges_in_box
from walkcover.presentation.maps import COARSE_STEP_M, FINE_STEP_M, MAX_STREET_EDGES, MINOR_WAYS
from walkcover.presentation.palette import (
    BANDS,
    FACILITY_COLOUR,
    GAP_COLOUR,
    SITE_COLOUR,
    STREET_COLOUR,
)
from walkcover.presentation.web_map import pack_geometry
from walkcover.scenario import (
    Scenario,
    ScenarioError,
    load_scenario,
    read_scenario_file,
    scenario,
    scenario_slug,
)

#: The folder under ``--out`` the scenarios are saved in.
SCENARIO_FOLDER = "scenarios"
#: A saved scenario's slug as `walkcover.scenario.scenario_slug` makes it: the only way a
#: request names a saved scenario (never a path).
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
#: How long a save or load waits for another process's save of the same scenario (seconds).
LOCK_TIMEOUT_S = 30.0
#: Live scenarios kept per server (the oldest untouched one is let go past it).
MAX_LIVE = 32
#: Most sites one "suggest" adds.
MAX_SUGGEST = 20
#: Versions of a live scenario whose home bands are kept, so that a state can carry only the
#: homes whose band changed since the version a page shows (``since``).
MAX_BAND_VERSIONS = 16


class ServeError(WalkcoverError, ValueError):
    """A request the web app cannot answer as asked; the message says the fix (HTTP 400)."""


class NotFoundError(ServeError):
    """A live or saved scenario that is not there (HTTP 404)."""


class NotReadyError(ServeError):
    """The run is still being measured (HTTP 503): ask again when ``status`` says ready."""


@dataclass
class Live:
    """A scenario the page edits: its lock, a version that grows with each edit, and the home
    bands of its latest versions (a code per home, by version)."""

    id: str
    scenario: Scenario
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0
    used: float = field(default_factory=time.monotonic)
    notice: str = ""
    bands: OrderedDict[int, np.ndarray] = field(default_factory=OrderedDict)


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


def _relative(path: Path, folder: Path) -> str:
    """`path` as written under `folder` (its name alone when elsewhere)."""
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return Path(path).name


def _unreadable(slug: str, exc: Exception) -> dict[str, Any]:
    """A saved scenario's listing when its file cannot be read: its slug, and why (the start of
    the message; nothing read from the file)."""
    reason = " ".join(str(exc).split())
    return {
        "slug": slug,
        "name": slug,
        "district_id": "",
        "standard_id": "",
        "standards": [],
        "edits": 0,
        "unreadable": reason if len(reason) <= 300 else reason[:299] + "…",
    }


def band_codes(bands: np.ndarray) -> np.ndarray:
    """Each home's band as its position in `BAND_NAMES` (0 within … 3 unknown), uint8."""
    codes = np.full(len(bands), len(BAND_NAMES) - 1, dtype=np.uint8)
    for i, name in enumerate(BAND_NAMES[:-1]):
        codes[bands == name] = i
    return codes


def band_text(codes: np.ndarray) -> str:
    """Band codes as the state's text: one digit a home."""
    return (np.asarray(codes, dtype=np.uint8) + ord("0")).tobytes().decode("ascii")


def check_since(since: Any) -> int | None:
    """The version a page shows (``since``), or None when not given.

    Raises
    ------
    ServeError
        Not a whole number.
    """
    if since is None or since == "":
        return None
    if isinstance(since, str) and since.isdigit() and len(since) < 12:
        return int(since)
    if isinstance(since, int) and not isinstance(since, bool) and since >= 0:
        return since
    shown = since[:40] if isinstance(since, str) else since
    raise ServeError(
        f"since={shown!r}: give the version of the state the page shows (a whole number >= 0), "
        "or leave it out for every home's band"
    )


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
        self._export_lock = threading.Lock()  # one export at a time into --out
        # what does not change with edits, made once: per district its homes' positions and
        # its streets (packed), per district and standard the run's gaps (packed)
        self._homes: dict[str, dict[str, Any]] = {}
        self._streets: dict[str, dict[str, Any]] = {}
        self._gaps: dict[tuple[str, str], dict[str, Any]] = {}

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
        # the run's millions of objects live as long as the server: out of the cyclic
        # collector's passes (each would walk them all, a tenth of a second on a city, in the
        # middle of an edit; `walkcover._gc`)
        gc.collect()
        gc.freeze()
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
        if "," in standard_id:
            raise ServeError(
                f"standard_id={standard_id[:80]!r}: the page edits one standard at a time; give "
                "one id (see /api/meta). A scenario of several standards is made in Python: "
                "Results.scenario(['clinic', 'fitness'], district=…)"
            )
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
        """`state` with every home's band, plus what does not change with edits: the homes'
        positions (packed), the district's outline, its walkable streets (packed), the run's
        gaps (packed) and the facilities that can serve the district (see docs/serve.md)."""
        live = self.live(live_id)
        with live.lock:
            out = self._state(live)
            sc = live.scenario
            a = sc.assessment
            did = sc.district_id
            dgeom = a.district_geometry(did)
            outline = gpd.GeoSeries([dgeom], crs=a.crs).to_crs(4326)
            out["outline"] = shapely.geometry.mapping(outline.iloc[0])
            out["homes"] = self._district_homes(did)
            out["streets"] = self._district_streets(did, dgeom)
            out["gaps"] = self._district_gaps(did, sc.standard.id)
            fac = sc.facilities
            existing = fac[(fac["kind"] == "existing").to_numpy()]
            pts = existing.geometry.representative_point().to_crs(4326)
            out["facilities"] = [
                {
                    "facility_id": str(fid),
                    "name": _text(name),
                    "lon": round(float(p.x), 7),
                    "lat": round(float(p.y), 7),
                    "removed": bool(rem),
                }
                for fid, name, rem, p in zip(
                    existing["facility_id"], existing["name"], existing["removed"], pts
                )
            ]
        return out

    def _district_homes(self, district_id: str) -> dict[str, Any]:
        """The district's homes, a point each (in `district_demand` order), packed
        (`walkcover.presentation.web_map.pack_geometry`, as the district map packs its homes)."""
        if district_id not in self._homes:
            a = self.results.assessment
            homes, _ = a.district_demand(district_id)
            points = homes.geometry.representative_point().to_numpy()
            self._homes[district_id] = {
                "count": len(homes),
                "geometry": pack_geometry(points, a.crs, step_m=FINE_STEP_M),
            }
        return self._homes[district_id]

    def _district_streets(self, district_id: str, dgeom: shapely.Geometry) -> dict[str, Any]:
        """The walkable streets in the district, packed; past `MAX_STREET_EDGES` the street grid
        only (no footways, paths, steps or service roads) and simplified more, as the district
        map draws them."""
        if district_id not in self._streets:
            edges = self.results.assessment.network.edges
            near = edges_in_box(edges, shapely.bounds(dgeom))
            area = shapely.from_wkb(shapely.to_wkb(dgeom))  # prepared on a copy (threads share it)
            shapely.prepare(area)
            near = near[shapely.intersects(area, edges.geometry.to_numpy()[near])]
            simplify_m = 2.0
            if len(near) > MAX_STREET_EDGES:
                minor = edges["highway"].iloc[near].isin(MINOR_WAYS).to_numpy()
                near, simplify_m = near[~minor], 5.0
            lines = edges.geometry.to_numpy()[near]
            self._streets[district_id] = pack_geometry(
                lines, edges.crs, step_m=COARSE_STEP_M, simplify_m=simplify_m
            )
        return self._streets[district_id]

    def _district_gaps(self, district_id: str, standard_id: str) -> dict[str, Any]:
        """The run's gaps of the standard in the district, packed, with their ``rank``,
        ``residents`` (uncovered) and ``residents_text`` as properties."""
        key = (district_id, standard_id)
        if key not in self._gaps:
            a = self.results.assessment
            gaps = a.gaps(district_id, standard_id)
            packed = pack_geometry(
                gaps.geometry.to_numpy(), a.crs, step_m=FINE_STEP_M, simplify_m=1.0
            )
            packed["props"] = {
                "rank": [int(r) for r in gaps["rank"]],
                "residents": [_num(r) for r in gaps["residents_uncovered"]],
                "residents_text": [count_text(r) for r in gaps["residents_uncovered"]],
            }
            self._gaps[key] = packed
        return self._gaps[key]

    def state(self, live_id: str, *, since: Any = None) -> dict[str, Any]:
        """The scenario's figures, home bands, sites with gains and closures (see docs/serve.md):
        with `since` (a version the page shows, among the latest `MAX_BAND_VERSIONS`) only the
        homes whose band changed since (``band_changes``), else every home's (``bands``).

        Raises
        ------
        ServeError
            A `since` that is not a whole number.
        """
        since = check_since(since)
        live = self.live(live_id)
        with live.lock:
            return self._state(live, since=since)

    def version(self, live_id: str) -> dict[str, Any]:
        """The scenario's version (it grows with each edit, suggestion and save): a page polls
        it, and asks for the `state` when it changed."""
        live = self.live(live_id)
        return {"id": live.id, "version": live.version}

    def _state(self, live: Live, *, since: int | None = None) -> dict[str, Any]:
        sc = live.scenario
        codes = band_codes(sc.bands)
        live.bands[live.version] = codes
        live.bands.move_to_end(live.version)
        while len(live.bands) > MAX_BAND_VERSIONS:
            live.bands.popitem(last=False)
        gain = sc.gain.set_index("site_id")
        sites = []
        for x in sc.sites:
            g = gain.loc[x.site_id]
            joins = sc.snap_point(x.site_id)
            snap = None if joins is None else [round(joins[0], 7), round(joins[1], 7)]
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
        out = {
            "id": live.id,
            "version": live.version,
            "name": sc.name,
            "slug": sc.slug,
            "district_id": sc.district_id,
            "standard_id": sc.standard.id,
            "edits": len(sc.edits),
            "can_undo": bool(sc.edits),
            "figures": self._figures(sc, sc.summary),
            "sites": sites,
            "removed": sc.removed,
            "notice": live.notice,
        }
        old = live.bands.get(since) if since is not None else None
        if old is None:
            out["bands"] = band_text(codes)
        else:
            at = np.flatnonzero(old != codes)
            out["band_changes"] = {
                "since": since,
                "homes": at.tolist(),
                "bands": band_text(codes[at]),
            }
        return out

    def _figures(self, sc: Scenario, s: Any) -> dict[str, Any]:
        a = sc.assessment
        row = a.summary[
            (a.summary["district_id"].astype(str) == sc.district_id).to_numpy()
            & (a.summary["standard"] == sc.standard.id).to_numpy()
        ].iloc[0]
        official = sc.official_pct
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

    # -- edits ----------------------------------------------------------------------------------

    def edit(self, live_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One edit (``op``: add, move, remove, undo; see docs/serve.md); the new `state`
        (with ``since`` in `body`: only the homes whose band changed since that version).

        Raises
        ------
        ServeError
            An edit the scenario refuses (`walkcover.scenario.ScenarioError`'s message), or a
            `since` that is not a whole number.
        """
        since = check_since(body.get("since"))
        live = self.live(live_id)
        op = body.get("op")
        with live.lock:
            sc = live.scenario
            if op == "add":
                name = body.get("name", "")
                site_id = sc.add(
                    lon=body.get("lon"),  # type: ignore[arg-type]  # checked by Scenario.add
                    lat=body.get("lat"),  # type: ignore[arg-type]
                    name=name if name is not None else "",
                )
                notice = next(x.reason for x in sc.sites if x.site_id == site_id)
            elif op == "move":
                sc.move(body.get("site_id"), lon=body.get("lon"), lat=body.get("lat"))  # type: ignore[arg-type]
                notice = next((x.reason for x in sc.sites if x.site_id == body.get("site_id")), "")
            elif op == "remove":
                target = body.get("id")
                if not isinstance(target, str):
                    raise ServeError(
                        f"id={target!r}: give the site_id or facility_id to remove as text"
                    )
                sc.remove(target)
                notice = ""
            elif op == "undo":
                sc.undo()
                notice = ""
            else:
                raise ServeError(f"op={op!r}: give one of add, move, remove, undo")
            live.notice = notice
            live.version += 1
            return self._state(live, since=since)

    def suggest(
        self, live_id: str, *, k: Any, time_limit_s: float | None = None, since: Any = None
    ) -> dict[str, Any]:
        """Add the best `k` new sites for the scenario as it stands (`Scenario.suggest`: its
        sites and closures kept, the optimiser sees only the homes they leave uncovered), each
        an editable site; the new `state`.

        Raises
        ------
        ServeError
            `k` not a whole number from 1 to `MAX_SUGGEST`.
        walkcover.scenario.ScenarioError
            No gap left to close, or what the optimiser refuses.
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SUGGEST:
            raise ServeError(f"k={k!r}: give the number of sites to suggest, 1 to {MAX_SUGGEST}")
        since = check_since(since)
        live = self.live(live_id)
        with live.lock:
            added = live.scenario.suggest(k, time_limit_s=time_limit_s)
            live.notice = (
                f"{len(added)} site(s) suggested · 建议 {len(added)} 处"
                if added
                else "no site adds residents · 无可增加覆盖的选址"
            )
            live.version += 1
            return self._state(live, since=since)

    def export(self, live_id: str, *, overwrite: Any = False) -> dict[str, Any]:
        """Write the scenario's sites as its district's proposed sites in the output folder
        (`walkcover.api.Results.export_scenario`), for `walkcover report`'s before/after pages.

        Returns the files written (relative to the output folder), the district's slug, the
        after figure and the report command to run.

        Raises
        ------
        walkcover.scenario.ScenarioError
            A scenario without sites, or one that closes existing facilities (named).
        walkcover._errors.OutputExistsError
            Sites of the standard were exported there already and `overwrite` is not true
            (HTTP 409).
        """
        live = self.live(live_id)
        results = self.results
        with self._export_lock, live.lock:
            sc = live.scenario
            try:
                written = results.export_scenario(sc, self.out, overwrite=overwrite is True)
            except OutputExistsError:
                # the page asks "replace them?" and sends the export again with overwrite
                raise OutputExistsError(
                    f"district {sc.district_id} in {self.out} already holds proposed sites for "
                    f"{sc.standard.id}: confirm on the page to replace them (the JSON API: send the "
                    'export again with {"overwrite": true})'
                ) from None
            slug = str(
                results.assessment.districts.set_index("district_id").loc[sc.district_id, "slug"]
            )
            s = sc.summary
            city = str(results.assessment.city.id)
        return {
            "files": [_relative(p, self.out) for p in written],
            "district_id": sc.district_id,
            "slug": slug,
            "standard_id": sc.standard.id,
            "sites": len(sc.sites),
            "after_text": pct_text(s["residents_covered_pct"], unit="%"),
            # quoted for the shell: the line is pasted as it is shown
            "command": shlex.join(
                ["walkcover", "report", "--city", city, "--district", slug, "--out", str(self.out)]
            ),
        }

    # -- saved scenarios ------------------------------------------------------------------------

    def _slug_lock(self, slug: str) -> threading.Lock:
        with self._guard:
            return self._slug_locks.setdefault(slug, threading.Lock())

    def save(
        self, live_id: str, *, name: Any, overwrite: Any = False, since: Any = None
    ) -> dict[str, Any]:
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
        since = check_since(since)
        live = self.live(live_id)
        with live.lock:
            sc = live.scenario
            sc.name, sc.slug = name.strip(), scenario_slug(name.strip())
            with self._slug_lock(sc.slug), self._file_lock(sc.slug):
                try:
                    path = sc.save(self.folder, overwrite=overwrite is True)
                except OutputExistsError:
                    # the page asks "replace it?" and saves again with overwrite
                    raise OutputExistsError(
                        f"a scenario saved as {sc.slug!r} is there already: confirm on the page "
                        "to replace it, or give another name (the JSON API: send the save "
                        'again with {"overwrite": true})'
                    ) from None
            live.version += 1
            state = self._state(live, since=since)
            return {"slug": sc.slug, "name": sc.name, "file": path.name, "state": state}

    def _file_lock(self, slug: str) -> AbstractContextManager[None]:
        """The lock of scenario `slug`'s files between processes (two ``walkcover serve`` of one
        ``--out``): ``.<slug>.lock``, removed again once released (`walkcover._lock.file_lock`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._check_folder()
        return file_lock(self.folder / f".{slug}.lock", timeout_s=LOCK_TIMEOUT_S)

    def _check_folder(self) -> None:
        """Refuse ``out/scenarios`` where it is a symbolic link or leads outside ``--out``: the
        scenarios are saved, read and their locks removed only in a folder of ``--out``'s own.

        Raises
        ------
        UnsafePathError
            Naming the folder, where it leads and the fix.
        """
        if self.folder.is_symlink():
            raise UnsafePathError(
                f"scenario folder {str(self.folder)!r} is a symbolic link (to "
                f"{str(self.folder.resolve())!r}); walkcover saves scenarios only in a folder of "
                f"{str(self.out)!r} itself: remove the link"
            )
        inside(self.out, self.folder, what="scenario folder")

    def saved(self) -> list[dict[str, Any]]:
        """The scenarios saved in ``out/scenarios``: slug, name, district, standard (``standards``:
        the list; ``standard_id``: them joined by commas, several for a scenario saved from
        Python, which the page lists but does not open), edits.

        Each file is read as `walkcover.scenario.read_scenario_file` reads it (a plain file in
        the folder, no symbolic link, at most 1 MB, no anchors or aliases); one it refuses is
        listed with ``unreadable`` (why, in short) and nothing of its contents."""
        out: list[dict[str, Any]] = []
        if not self.folder.is_dir():
            return out
        self._check_folder()
        for lock in self.folder.glob(".*.lock"):  # (earlier versions left them behind)
            if SLUG.fullmatch(lock.name[1 : -len(".lock")]):
                remove_free_lock(lock)
        for path in sorted(self.folder.glob("*.yaml")):
            if not SLUG.fullmatch(path.stem):
                continue
            try:
                doc = read_scenario_file(path, folder=self.folder)
            except ScenarioError as exc:
                out.append(_unreadable(path.stem, exc))
                continue
            edits = doc.get("edits")
            several = doc.get("standards")
            plain = [doc.get("name"), doc.get("district")]
            plain += several if isinstance(several, list) else [doc.get("standard")]
            if not all(isinstance(x, str) and len(x) <= 200 for x in plain) or (
                isinstance(several, list) and len(several) > 200
            ):
                out.append(
                    _unreadable(path.stem, ScenarioError("a name or id that is not short text"))
                )
                continue
            standards = (
                [_text(x) for x in several]
                if isinstance(several, list)
                else [_text(doc.get("standard"))]
            )
            out.append(
                {
                    "slug": path.stem,
                    "name": _text(doc.get("name")),
                    "district_id": _text(doc.get("district")),
                    "standard_id": ",".join(standards),
                    "standards": standards,
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
            sc = load_scenario(path, self.results.assessment, folder=self.folder)
        if not isinstance(sc, Scenario):
            raise ServeError(
                f"slug={slug!r} is a scenario of several standards ({', '.join(sc.standard_ids)}); "
                "the page edits one standard at a time: open it in Python "
                "(Results.load_scenario) and read each standard there"
            )
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
    "MAX_BAND_VERSIONS",
    "MAX_SUGGEST",
    "SCENARIO_FOLDER",
    "Live",
    "NotFoundError",
    "NotReadyError",
    "ServeError",
    "Workspace",
]
