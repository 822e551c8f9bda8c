"""One run's measurement: the results model (`model`) and how it is made (`run`, with the
residents in `population`, the summary in `summary`, the safe-route network in `safe_route` and
the shared state of a run in `study`). Every layer above imports from here."""

from walkcover.assessment.model import (
    DEMAND_NOTE,
    FACILITY_OUTPUT_COLUMNS,
    LEFT_OUT_NOTE,
    LOCKED_GATES_NOTE,
    OFFICIAL_LAND_NOTE,
    Assessment,
    Note,
    StandardPass,
    can_serve,
    search_limit_m,
    study_margin_m,
    study_polygon,
    study_query,
)
from walkcover.assessment.run import assess_layers

__all__ = [
    "DEMAND_NOTE",
    "FACILITY_OUTPUT_COLUMNS",
    "LEFT_OUT_NOTE",
    "LOCKED_GATES_NOTE",
    "OFFICIAL_LAND_NOTE",
    "Assessment",
    "Note",
    "StandardPass",
    "assess_layers",
    "can_serve",
    "search_limit_m",
    "study_margin_m",
    "study_polygon",
    "study_query",
]
