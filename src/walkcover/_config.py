"""Shared helpers to load YAML configuration files into validated pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from walkcover._errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, *, what: str) -> dict[str, Any]:
    """Read a YAML mapping, turning every failure into a `ConfigError` that names the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {str(path)!r} does not exist; pass an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{what} file {str(path)!r} is not valid YAML{where}: {problem}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} file {str(path)!r} is not UTF-8 text: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} file {str(path)!r} must hold a YAML mapping at the top level, "
            f"found {type(data).__name__}"
        )
    return data


def validate(model: type[M], data: dict[str, Any], *, path: Path, what: str) -> M:
    """Validate `data`, reporting every problem at once with its YAML path and the value found."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{what} file {str(path)!r} has {exc.error_count()} problem(s):"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            found = "missing" if err["type"] == "missing" else f"found {err.get('input')!r}"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  - {loc}: {found}; {msg}")
        raise ConfigError("\n".join(lines)) from None
