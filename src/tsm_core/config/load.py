"""A validated :class:`~tsm_core.config.models.RunConfig` from a model, a dict or a YAML file,
with pydantic's refusals turned into one :class:`~tsm_core.errors.ConfigError` naming the key."""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tsm_core.config.files import apply_overrides, read_config_file, resolve_paths
from tsm_core.config.models import RunConfig
from tsm_core.errors import ConfigError


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where ``loc`` (the path of an unknown key) points."""
    model: Any = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _problem(err: Any) -> dict[str, str]:
    """One pydantic refusal as ``{"field", "message", "type"}`` in the tool's words."""
    key = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        valid = _valid_keys(err["loc"])
        close = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1)
        message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        if valid:
            message += f"; valid keys: {', '.join(valid)}"
    elif err["type"] == "missing":
        message = "required key is missing"
    return {"field": key, "message": message, "type": err["type"]}


def _first_error(exc: ValidationError) -> ConfigError:
    """One :class:`ConfigError` naming the first refusal, with every refusal in its ``problems``."""
    problems = [_problem(err) for err in exc.errors()]
    message = problems[0]["message"]
    extra = len(problems) - 1
    if extra:
        message += f" (and {extra} more error{'s' if extra > 1 else ''})"
    return ConfigError(problems[0]["field"], message, problems)


def load_config(
    config: RunConfig | dict[str, Any] | str | os.PathLike[str], overrides: list[str] | None = None
) -> RunConfig:
    """A validated :class:`RunConfig` from a model, a dict or a YAML file path."""
    if isinstance(config, RunConfig):
        if not overrides:
            return config
        data = config.model_dump(exclude_none=True)
    elif isinstance(config, dict):
        data = copy.deepcopy(config)
    elif isinstance(config, (str, os.PathLike)):
        data = read_config_file(config)
    else:
        raise ConfigError("", f"a config is a dict, a YAML path or a RunConfig, not {type(config).__name__}")
    if overrides:
        data = apply_overrides(data, overrides)
    data = _paths_as_text(data)
    resolve_paths(data, Path.cwd())  # stored absolute, so a re-run works from anywhere
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None


def _paths_as_text(value: Any) -> Any:
    """A config with ``pathlib.Path`` (any ``os.PathLike``) values given as strings."""
    if isinstance(value, dict):
        return {k: _paths_as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_paths_as_text(v) for v in value]
    return os.fspath(value) if isinstance(value, os.PathLike) else value
