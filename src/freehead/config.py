"""Frozen dataclass configs, to and from YAML/JSON.

Every config in freehead is a frozen dataclass with defaults. A file need only name the
fields it changes; unknown fields are an error (a typo must not pass silently). Nested
dataclasses are filled from nested mappings, tuples from lists.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from freehead.errors import FreeheadError

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (lists for tuples) that :func:`config_from_dict` reads back."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v

    return plain(config)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return config_from_dict(tp, value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise FreeheadError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_convert(inner, x, where) for x in value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and not isinstance(value, tp):
        raise FreeheadError(f"{where}: expected {tp.__name__}, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise FreeheadError(f"{where}: expected int, got {value!r}")
    return value


def config_from_dict(cls: type[C], data: Any, where: str = "config", base: C | None = None) -> C:
    """Build ``cls`` from a mapping; fields left out keep their values in ``base``
    (default: ``cls()``), so a nested config keeps its parent's defaults for it."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FreeheadError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise FreeheadError(f"{where}: unknown field(s) {', '.join(unknown)}")
    try:
        start = base if base is not None else cls()
        kwargs = {}
        for k, v in data.items():
            if dataclasses.is_dataclass(hints[k]):
                if v is None:  # "train:" with nothing under it: most likely a slip
                    raise FreeheadError(f"{where}.{k} is empty; give its fields, or leave it "
                                        "out for its defaults")  # fmt: skip
                kwargs[k] = config_from_dict(hints[k], v, f"{where}.{k}", getattr(start, k))
            else:
                kwargs[k] = _convert(hints[k], v, f"{where}.{k}")
        return dataclasses.replace(start, **kwargs)  # type: ignore[type-var]
    except (TypeError, ValueError) as e:
        raise FreeheadError(f"{where}: {e}") from e


def load_config(cls: type[C], path: str | Path) -> C:
    """Read a YAML (or JSON) file into ``cls``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise FreeheadError(f"cannot read config {path}: {e.strerror or e}") from e
    except UnicodeDecodeError:
        raise FreeheadError(f"{path} is not a text (YAML) file") from None
    except yaml.YAMLError as e:
        raise FreeheadError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from e
    return config_from_dict(cls, data, where=str(path))


def config_to_yaml(config: Any) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def config_to_json(config: Any) -> str:
    return json.dumps(config_to_dict(config), sort_keys=True)
