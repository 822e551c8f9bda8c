"""Where bundled configuration and data live, in a source checkout or an installed wheel."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from walkcover._errors import ConfigError, UnsafePathError

_PKG = Path(__file__).resolve().parent


def bundle_root() -> Path:
    """The directory holding ``configs/`` and ``data/``.

    ``WALKCOVER_HOME`` wins; then the source checkout this package sits in (editable installs);
    then the copy packed into the wheel.
    """
    env = os.environ.get("WALKCOVER_HOME")
    if env:
        return Path(env)
    checkout = _PKG.parent.parent
    if (checkout / "configs").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout
    return _PKG / "_bundled"


def config_file(kind: str, name_or_path: str | Path) -> Path:
    """Resolve a config given as a path or as the name of a bundled file of `kind`."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    folder = bundle_root() / "configs" / kind
    path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(
            f"no bundled {kind} config named {str(name_or_path)!r}; choose from "
            f"{', '.join(known) or '(none found in ' + str(folder) + ')'} or pass a YAML file path"
        )
    return path


def cache_dir() -> Path:
    """Default cache folder: ``WALKCOVER_CACHE``, else ``$XDG_CACHE_HOME/walkcover``."""
    env = os.environ.get("WALKCOVER_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "walkcover"


def cache_dir_origin() -> str:
    """Where `cache_dir` takes the default cache folder from, as a user would set it."""
    if os.environ.get("WALKCOVER_CACHE"):
        return "$WALKCOVER_CACHE"
    if os.environ.get("XDG_CACHE_HOME"):
        return "$XDG_CACHE_HOME/walkcover"
    return "the default, ~/.cache/walkcover"


#: A name walkcover may use as one folder or file name: letters, digits, ``_`` and ``-``, starting
#: with a letter or digit (no ``.``, no separator, no drive, nothing hidden), at most 100 long.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def check_safe_name(value: object, *, what: str) -> str:
    """`value` if it is a safe single folder or file name (`SAFE_NAME`), else a clear error.

    Raises
    ------
    UnsafePathError
        Naming `what`, the value received and the rule.
    """
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "…"
        raise UnsafePathError(
            f"{what} {shown} cannot name a folder: use letters, digits, '_' and '-' only "
            "(starting with a letter or digit, at most 100 characters)"
        )
    return value


def inside(root: Path, path: Path, *, what: str) -> Path:
    """`path`, after making sure it resolves (symbolic links followed) inside folder `root`.

    Every file walkcover writes or deletes goes through this with ``--out`` (or the cache) as
    `root`, so that no name read from a file, and no link planted in a result folder, can make it
    write or delete anywhere else.

    Raises
    ------
    UnsafePathError
        `path` leads outside `root`; the message names `what`, the path and where it leads.
    """
    base = Path(root).resolve()
    target = Path(path).resolve()
    if target != base and not target.is_relative_to(base):
        raise UnsafePathError(
            f"{what} {str(path)!r} leads outside {str(root)!r} (to {str(target)!r}); walkcover writes "
            "and deletes only inside its output folder and its cache: remove the link or fix the name"
        )
    return Path(path)


def open_file(path: Path) -> int:
    """A read-only descriptor of the regular file at `path`, opened never through a symbolic link
    (``O_NOFOLLOW``) and never waiting on what stands in its place: a FIFO (named pipe) planted in
    a cache or result folder would make a plain ``open`` wait for a writer for ever, so the file
    is opened without blocking and refused unless it is a regular file. The caller closes it.

    Raises
    ------
    FileNotFoundError
        Nothing is at `path`.
    OSError
        `path` is a symbolic link, a folder, a FIFO or a device (or cannot be opened); the
        message names it.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "a FIFO or device"
            raise OSError(errno.EINVAL, f"it is {what}, not a file", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file_bytes(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path` (`open_file`: no link followed, no FIFO waited
    on), at most `max_bytes` of them.

    Raises
    ------
    FileNotFoundError
        Nothing is at `path`.
    OSError
        `path` is no regular file, or cannot be read.
    ValueError
        It holds more than `max_bytes` bytes.
    """
    with os.fdopen(open_file(path), "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{Path(path).name} holds more than {max_bytes:,} bytes")
    return data


#: One segment of a link walkcover writes into its pages: a plain file or folder name.
_LINK_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def relative_href(*parts: str) -> str:
    """The one rule for every link in walkcover's generated HTML: a relative path of plain names.

    Each part must be a plain file or folder name (letters, digits, ``_``, ``-``, ``.``; no ``..``,
    no separator, no scheme such as ``javascript:``), so a link can only lead to a file beside
    the page or below it.

    Raises
    ------
    UnsafePathError
        A part that is not a plain name (for example a district slug read from a tampered file).
    """
    for part in parts:
        if not isinstance(part, str) or not _LINK_PART.fullmatch(part) or ".." in part:
            shown = repr(part) if len(repr(part)) <= 80 else repr(part)[:77] + "…"
            raise UnsafePathError(
                f"link part {shown} is not a plain file or folder name; walkcover links only to "
                "its own files beside a page"
            )
    return "/".join(parts)
