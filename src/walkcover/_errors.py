"""Errors walkcover raises. Each also subclasses the builtin a caller would expect to catch."""

from typing import Any


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

    #: The valid districts, as the message lists them.
    choices: str = ""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StandardNotMeasuredError(WalkcoverError, KeyError):
    """A standard the run did not measure was asked for (the message lists those it did)."""

    def __str__(self) -> str:  # a KeyError's str() would quote the message
        return str(self.args[0]) if self.args else ""


class OutputExistsError(WalkcoverError, FileExistsError):
    """An output file exists and overwriting was not requested."""


class OutputLockedError(WalkcoverError, BlockingIOError):
    """Another walkcover run holds the output folder."""


class OutputFolderError(WalkcoverError, OSError):
    """An output or cache folder cannot be used (not a folder, not writable, disk full)."""


class UnsafePathError(WalkcoverError, PermissionError):
    """A path or name would make walkcover write or delete outside its output folder or cache."""


class RunIncompleteError(WalkcoverError, RuntimeError):
    """Some outputs of a run could not be written; `files` holds what was (and what failed)."""

    def __init__(self, files: Any, message: str) -> None:
        super().__init__(message)
        self.files = files
