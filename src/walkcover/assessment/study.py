"""What the steps of one assessment share while it is made (`StudyState`), what each standard's
pass yields (`MeasuredStandard`), and how many threads measure."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from walkcover.assessment.model import Note, StandardPass
from walkcover.assessment.safe_route import SafeRoute
from walkcover.config.standards import StandardSet
from walkcover.config.study_area import City
from walkcover.engine import coverage as cov
from walkcover.engine.network import Network
from walkcover.measures.land import DenominatorLand
from walkcover.sources import OSMQuery


@dataclass
class StudyState:
    """What every step of one assessment shares: the inputs in the working CRS, the network, the
    residents and their snaps, the street contexts, the land, the notes so far."""

    city: City
    districts: gpd.GeoDataFrame
    d_proj: gpd.GeoDataFrame
    rules: StandardSet
    crs: pyproj.CRS
    query: OSMQuery
    limits: dict[str, float]
    features: gpd.GeoDataFrame
    #: The street segments of the safe route's barrier classes (`barrier_streets`): the rest of
    #: the street layer is let go once the walk network is built.
    streets: gpd.GeoDataFrame
    network: Network
    demand: gpd.GeoDataFrame
    models: dict[str, str]
    population_model: str
    demand_snaps: cov.Snaps
    edge_tags: pd.DataFrame
    context: np.ndarray | None
    lands: DenominatorLand
    notes: list[Note]
    completeness: pd.DataFrame
    #: The area read (`query`'s polygon) in `crs`, projected here and not by the measuring
    #: thread that first needs it: a thread's first projection searches PROJ's database again.
    extent: shapely.Geometry
    #: The OSM node ids (ascending) of the locked gates that cut walked paths
    #: (`Assessment.locked_gates`).
    locked_gates: tuple[int, ...] = ()
    safe: SafeRoute | None = None
    #: What every standard's pass reads of the study, hashed (`standard_store.study_digest`,
    #: made while the network is built when it is named by its recipe) when the run keeps its
    #: passes in a cache; None keeps none.
    digest: bytes | None = None
    #: Each standard's pass's name in the standard store (`standard_store.standard_key`), once
    #: measured or read back: its districts' layers are filed under it too.
    keys: dict[str, str] = field(default_factory=dict)
    #: Passes read from the standard store while the walk network was built, by their name
    #: (`standard_store.read_ahead`; None: none filed), each taken once by its standard.
    read_ahead: dict[str, Any] = field(default_factory=dict)
    #: Whether a pass may measure its land figures on a thread of its own (`run._measure_one`):
    #: when it is the run's only pass to measure, the other measuring thread has nothing to do.
    spare_thread: bool = False
    #: The safe-route standards still to measure: the safe-route network goes when none is left.
    safe_left: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class MeasuredStandard:
    """One standard measured: its facilities (all candidates), its pass, its land figures, the
    demand columns it adds and its notes (both taken in standard order by `assess_layers`)."""

    facilities: gpd.GeoDataFrame
    passed: StandardPass
    edge_cover: np.ndarray | None
    areas: dict[str, dict[str, float]]
    columns: dict[str, np.ndarray]
    notes: list[Note]


#: Standards measured at a time. Their passes share only read-only inputs (the network, the
#: homes' snaps, the land cells, each computed once under a lock), and their heavy steps (KD-tree
#: and R-tree queries, shapely, the shortest paths) release the GIL, so two cores share the work;
#: the columns and notes are added in standard order, so the results do not depend on it.
MEASURE_THREADS = min(2, os.cpu_count() or 1)


#: Network edges from which a run measures on `MEASURE_THREADS` threads. Below, one thread is the
#: faster: the passes are short and mostly Python, and two threads take turns on the interpreter
#: lock (the Helsinki sample, 6,300 edges: 1.08 -> 1.03 s; a county with no data: 20 ms less),
#: where the S city's 金水 (25,200 edges) gains from two (0.91 -> 0.80 s).
THREADS_FROM_EDGES = 10_000


def measure_threads(network: Network) -> int:
    """How many threads measure on `network` (see `THREADS_FROM_EDGES`)."""
    return MEASURE_THREADS if len(network.edges) >= THREADS_FROM_EDGES else 1
