"""A validated :class:`~tsm_core.config.models.RunConfig` from a model, a dict or a YAML file,
with pydantic's refusals turned into one :class:`~tsm_core.errors.ConfigError` naming the key."""

from __future__ import annotations

import copy
import difflib
import os
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tsm_core.config.files import apply_overrides, read_config_file, resolve_paths
from tsm_core.config.models import RunConfig
from tsm_core.errors import ConfigError


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The first pydantic model inside ``annotation`` (itself, or in its unions, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where ``loc`` (the path of an unknown key) points."""
    model: Any = RunConfig
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list: the same model
            continue
        field = model.model_fields.get(str(part)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _form(loc: tuple[Any, ...]) -> str | None:
    """The form of ``redshift_catalog`` pydantic names at ``loc[1]`` when it tried both (its
    label of the list form starts with ``list[``): ``list``, ``mapping``, or None."""
    if len(loc) > 1 and loc[0] == "redshift_catalog" and isinstance(loc[1], str):
        return "list" if loc[1].startswith("list[") else "mapping"
    return None


def _location(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """``loc`` without the form pydantic names in ``redshift_catalog`` (a mapping or a list)."""
    return (loc[0], *loc[2:]) if _form(loc) else tuple(loc)


def _of_given_form(err: Any, data: Any) -> bool:
    """False for a refusal of the form of ``redshift_catalog`` that was not given (pydantic
    tries both: a list refuses a mapping, and a mapping a list)."""
    form = _form(err["loc"])
    given = data.get("redshift_catalog") if isinstance(data, dict) else None
    return form is None or (form == "list") == isinstance(given, (list, tuple))


def _problem(err: Any) -> dict[str, str]:
    """One pydantic refusal as ``{"field", "message", "type"}`` in the tool's words."""
    loc = _location(err["loc"])
    key = ".".join(str(p) for p in loc)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        valid = _valid_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        if valid:
            message += f"; valid keys: {', '.join(valid)}"
    elif err["type"] == "missing":
        message = "required key is missing"
    return {"field": key, "message": message, "type": err["type"]}


def _first_error(exc: ValidationError, data: Any = None) -> ConfigError:
    """One :class:`ConfigError` naming the first refusal, with every refusal in its ``problems``
    (``data``: what was validated)."""
    problems = [_problem(err) for err in exc.errors() if _of_given_form(err, data)] or [
        _problem(err) for err in exc.errors()
    ]
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
        raise _first_error(exc, data) from None


def _paths_as_text(value: Any) -> Any:
    """A config with ``pathlib.Path`` (any ``os.PathLike``) values given as strings."""
    if isinstance(value, dict):
        return {k: _paths_as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_paths_as_text(v) for v in value]
    return os.fspath(value) if isinstance(value, os.PathLike) else value
