"""walkcover: walking-distance coverage of a city's service standards over the street network."""

from walkcover._errors import (
    ConfigError,
    CRSError,
    DistrictNotFoundError,
    OutputExistsError,
    SourceError,
    WalkcoverError,
)
from walkcover._version import __version__

__all__ = [
    "CRSError",
    "ConfigError",
    "DistrictNotFoundError",
    "OutputExistsError",
    "SourceError",
    "WalkcoverError",
    "__version__",
]
