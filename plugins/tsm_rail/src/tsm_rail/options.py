"""The stage's configuration: the run config of the Training Set Maker as RAIL stage options.

Every top-level key of :class:`tsm_core.RunConfig` is an option of the same name, except the
two names RAIL already uses: ``name`` is the stage's instance name and ``output`` the path of its
output table, so the run's ``name`` and ``output`` are ``run_name`` and ``run_output``. The
options are made from the model, so a key added to the run config is an option at once.

:func:`run_config` turns the options into the run's config: ``run_config`` (a dict or a YAML
path) first, each option given over it (a mapping updates that section key by key, anything else
replaces it), then what the stage needs: ``output.format: hdf5``, ``output.layout: rail`` and,
with a split, ``output.split_files``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from ceci.config import StageParameter as Param
from pydantic import BaseModel

import tsm_core
from tsm_core.config import read_config_file
from tsm_core.errors import ConfigError

#: run-config keys whose stage option has another name (RAIL's own options take these names)
RENAMED = {"name": "run_name", "output": "run_output"}
#: what the stage's run writes, whatever the run config says otherwise
FORCED_OUTPUT = {"format": "hdf5", "layout": "rail"}


def option_name(key: str) -> str:
    """The stage option of the run-config key ``key``."""
    return RENAMED.get(key, key)


def _help(key: str) -> str:
    """The help text of the option of ``key``: what the run config's model says of it."""
    field = tsm_core.RunConfig.model_fields[key]
    text = field.description
    if text is None:
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        doc = (model.__doc__ or "") if model is not None else ""
        text = " ".join(doc.strip().split("\n\n")[0].split())  # the docstring's first paragraph
    return f"the run config's `{key}`, over run_config's" + (f": {text}" if text else "")


def config_options() -> dict[str, Param]:
    """The stage options of the run config: ``run_config`` and one per top-level key."""
    options = {
        "run_config": Param(
            None,
            None,
            required=False,
            msg="the Training Set Maker run config: a dict, or the path of its YAML file",
        )
    }
    for key in tsm_core.RunConfig.model_fields:
        options[option_name(key)] = Param(None, None, required=False, msg=_help(key))
    return options


def plain(value: Any) -> Any:
    """``value`` with paths as text (a stage's config is written to YAML by ceci)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def run_config(options: Mapping[str, Any], default_name: str, default_directory: str) -> tsm_core.RunConfig:
    """The validated run config of a stage whose options are ``options``.

    ``default_name`` is the run's name where neither ``run_config`` nor ``run_name`` gives one,
    ``default_directory`` its output directory where neither gives one.
    """
    base = options.get("run_config")
    if base is None or isinstance(base, Mapping):
        data = copy.deepcopy(dict(base or {}))
    elif isinstance(base, (str, os.PathLike)):
        data = read_config_file(base)
    else:
        raise ConfigError("run_config", f"a dict or the path of a YAML file, not {type(base).__name__}")
    for key in tsm_core.RunConfig.model_fields:
        value = options.get(option_name(key))
        if value is None:
            continue
        value = plain(value)
        section = data.get(key)
        data[key] = {**section, **value} if isinstance(section, dict) and isinstance(value, dict) else value
    data.setdefault("name", default_name)
    output = data.setdefault("output", {})
    if not isinstance(output, dict):
        raise ConfigError("run_output", f"a mapping of output keys, not {type(output).__name__}")
    for key, wanted in FORCED_OUTPUT.items():
        if output.get(key, wanted) != wanted:
            raise ConfigError(
                f"run_output.{key}",
                f"the RAIL stage writes {key} {wanted!r} (the HDF5 group `photometry` RAIL reads), "
                f"not {output[key]!r}; leave it out",
            )
    output.update(FORCED_OUTPUT, split_files=data.get("split") is not None)
    output.setdefault("directory", default_directory)
    return tsm_core.load_config(data)
