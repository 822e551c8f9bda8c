"""walkcover: walking-distance coverage of a city's service standards over the street network.

>>> import walkcover as wc
>>> a = wc.assess("helsinki-sample", district="sample-sw")  # doctest: +SKIP
>>> a.summary, a.gaps("toilet"), a.map("toilet"), a.explain("toilet")  # doctest: +SKIP

See `walkcover.api` for the whole public API.
"""

from walkcover._gc import collector_paused

# Importing the geospatial stack makes only objects that live as long as the process: the cyclic
# garbage collector's passes over them meanwhile are wasted (about 50 ms of every command).
with collector_paused():
    from walkcover._errors import (
        ConfigError,
        CRSError,
        DistrictNotFoundError,
        OutputExistsError,
        OutputFolderError,
        OutputLockedError,
        RunIncompleteError,
        SourceError,
        WalkcoverError,
    )
    from walkcover._version import __version__
    from walkcover.api import Results, Study, assess, measure, report, study
del collector_paused

__all__ = [
    "CRSError",
    "ConfigError",
    "DistrictNotFoundError",
    "OutputExistsError",
    "OutputFolderError",
    "OutputLockedError",
    "Results",
    "RunIncompleteError",
    "SourceError",
    "Study",
    "WalkcoverError",
    "__version__",
    "assess",
    "measure",
    "report",
    "study",
]
