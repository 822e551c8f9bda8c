"""Errors walkcover raises. Each also subclasses the builtin a caller would expect to catch."""


class WalkcoverError(Exception):
    """Base class of every error walkcover raises on purpose."""


class ConfigError(WalkcoverError, ValueError):
    """A standards or city configuration is invalid; the message lists every problem found."""


class CRSError(WalkcoverError, ValueError):
    """Geometry is in a coordinate reference system the operation cannot use."""


class SourceError(WalkcoverError, OSError):
    """An OSM source (file, cache entry or download) is missing, unreadable or corrupt."""


class DistrictNotFoundError(WalkcoverError, KeyError):
    """A district name, English name or code matches no district of the city."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OutputExistsError(WalkcoverError, FileExistsError):
    """An output file exists and overwriting was not requested."""
