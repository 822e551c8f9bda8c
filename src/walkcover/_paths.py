"""Where bundled configuration and data live, in a source checkout or an installed wheel."""

from __future__ import annotations

import os
from pathlib import Path

from walkcover._errors import ConfigError

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
