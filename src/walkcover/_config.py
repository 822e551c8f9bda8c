"""Shared helpers to load YAML configuration files into validated pydantic models."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from walkcover._errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: A standards or city file is a few kilobytes; anything this large is not one.
MAX_YAML_BYTES = 1_000_000


#: libyaml's C parser where PyYAML was built with it (its wheels are): the two config files a run
#: reads parse in 5 ms instead of 55 ms
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _refuse_anchors(text: str) -> None:
    """Refuse anchors and aliases, before anything is built from them.

    Configs are shared between bureaus: an alias bomb (a few lines that expand to billions of
    nodes) must not exhaust memory. The events are read first (the parser never expands an alias).
    """
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None,
                None,
                "anchors and aliases (&name, *name) are not allowed in walkcover files; write "
                "the values out",
                event.start_mark,  # type: ignore[arg-type]  # libyaml's Mark has the same fields
            )


class _StrictLoader(_SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader refusing duplicate keys: a repeated key (a second ``toilet:``) must not
    silently replace the first. Anchors and aliases are refused before (`_refuse_anchors`)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key; PyYAML reports it below
                continue
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first.start_mark.line + 1}); each key "
                    "may appear once: remove or rename one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, *, what: str) -> dict[str, Any]:
    """Read a YAML mapping, turning every failure into a `ConfigError` that names the file.

    Anchors, aliases, duplicate keys and files over `MAX_YAML_BYTES` are refused.
    """
    return read_yaml_file(path, what=what)[0]


def read_yaml_file(path: Path, *, what: str) -> tuple[dict[str, Any], str]:
    """`read_yaml`, and the SHA-256 (hex) of the very bytes the mapping was parsed from: what
    the file is, whatever its name (read once, so the two always agree).

    Raises
    ------
    ConfigError
        As `read_yaml`.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} file {str(path)!r} is a folder; pass a YAML file")
    if not path.is_file():
        raise ConfigError(f"{what} file {str(path)!r} does not exist; pass an existing YAML file")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ConfigError(
            f"{what} file {str(path)!r} is {size / 1e6:.1f} MB; a {what} file is a few kilobytes "
            f"(limit {MAX_YAML_BYTES / 1e6:g} MB): pass the right file"
        )
    try:
        raw = path.read_bytes()
        # as `Path.read_text` reads it (universal newlines), from the bytes hashed
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        _refuse_anchors(text)
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{what} file {str(path)!r} is not valid YAML{where}: {problem}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} file {str(path)!r} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{what} file {str(path)!r} cannot be read: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} file {str(path)!r} must hold a YAML mapping at the top level, "
            f"found {type(data).__name__}"
        )
    return data, hashlib.sha256(raw).hexdigest()


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
