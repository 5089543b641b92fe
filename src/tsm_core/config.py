"""The configuration of a run: what a user fills in the Photo-z Server form.

Read from YAML, a dict or built directly; unknown keys and invalid values are refused
with the dotted key path named (see :func:`load_config`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tsm_core.errors import ConfigError

CANONICAL_REDSHIFT_COLUMNS: tuple[str, ...] = ("id", "ra", "dec", "z", "z_err", "z_flag", "survey")
REQUIRED_REDSHIFT_COLUMNS: tuple[str, ...] = ("ra", "dec", "z")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RedshiftCatalogConfig(_Model):
    """A registered redshift catalog (``name`` or ``id``), or a file/HATS ``path``.

    ``columns`` maps canonical names (``id, ra, dec, z, z_err, z_flag, survey``) to the
    file's own column names; canonical names that the file already uses need no entry.
    """

    path: str | None = None
    name: str | None = None
    id: int | None = None
    columns: dict[str, str] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _canonical_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CANONICAL_REDSHIFT_COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown canonical column(s) {unknown}; valid: {list(CANONICAL_REDSHIFT_COLUMNS)}"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> RedshiftCatalogConfig:
        given = [k for k in ("path", "name", "id") if getattr(self, k) not in (None, "")]
        if len(given) != 1:
            raise ValueError("give exactly one of path, name or id")
        return self


class ObjectCatalogConfig(_Model):
    """The release, its flux type, dereddening and magnitude conversion."""

    release: str = "dp1"
    path: str | None = None
    margin_path: str | None = Field(None, description="a margin cache kept apart from the catalog (else its own)")
    flux_type: str | None = None
    dereddening: str = "none"
    convert_to_magnitudes: bool = True
    dust_maps_dir: str | None = None
    extinction_coefficients: dict[str, float] | None = None
    bands: list[str] | None = None


class CrossmatchConfig(_Model):
    """Match radius and number of neighbours kept per redshift."""

    radius_arcsec: float = Field(1.0, gt=0)
    n_neighbors: int = Field(1, ge=1)


class FiltersConfig(_Model):
    """Quality cuts: expressions such as ``refExtendedness == 1`` or ``z_flag >= 3``.

    ``object`` cuts apply to the object catalog before the crossmatch (simple
    ``column op value`` cuts are pushed into the Parquet read); ``redshift`` cuts apply to
    the redshift catalog (canonical column names).
    """

    object: list[str] = Field(default_factory=list)
    redshift: list[str] = Field(default_factory=list)


class SplitConfig(_Model):
    """Training / validation split: adds a boolean ``is_training`` column."""

    train_fraction: float = Field(0.8, gt=0, lt=1)
    seed: int = 42


class OutputConfig(_Model):
    """Format and directory of the output file; ``layout: rail`` shapes HDF5 for RAIL."""

    format: str = "parquet"
    directory: str = "."
    layout: Literal["default", "rail"] = "default"
    non_detection: float | None = Field(
        None, description="value written for missing magnitudes in the rail layout (NaN if unset)"
    )
    overwrite: bool = False


class RepresentativenessConfig(_Model):
    """How well the training set covers the photometric sample it will be applied to.

    The run draws ``sample_fraction`` of the object catalog's objects (after the same
    cuts, in the same bands, with the same photometry; seeded per partition), writes a
    ``weight`` column from the k-nearest-neighbour density ratio in ``space``
    (magnitudes, or one magnitude and colours; Lima et al. 2008) and counts the
    photometric objects in self-organizing-map cells that hold no training object.
    """

    sample_fraction: float = Field(0.01, gt=0, le=1)
    k: int = Field(20, ge=1)
    seed: int = 42
    space: Literal["magnitudes", "colours"] = "magnitudes"
    bands: list[str] | None = Field(None, description="bands of the feature space (default: the run's bands)")
    som_shape: tuple[int, int] = (12, 12)

    @field_validator("som_shape")
    @classmethod
    def _som_cells(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError(f"needs at least one cell per side, not {list(value)}")
        return value


LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")


class ComputeConfig(_Model):
    """Where the Dask graph runs: local threads, local worker processes, or the address
    of a running ``dask.distributed`` scheduler (``tcp://host:8786``)."""

    scheduler: str = "threads"
    n_workers: int | None = Field(None, ge=1)
    memory_limit: str | None = None

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        if value not in LOCAL_SCHEDULERS and "://" not in value:
            raise ValueError(
                f"{value!r} is neither one of {', '.join(LOCAL_SCHEDULERS)} nor a scheduler address like tcp://host:8786"
            )
        return value


class RunConfig(_Model):
    """One training set run."""

    name: str = Field(min_length=1)
    description: str = ""
    redshift_catalog: RedshiftCatalogConfig
    object_catalog: ObjectCatalogConfig = Field(default_factory=ObjectCatalogConfig)
    crossmatch: CrossmatchConfig = Field(default_factory=CrossmatchConfig)
    unique_galaxies: Literal["none", "closest", "best_redshift"] = "none"
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    split: SplitConfig | None = None
    output: OutputConfig = Field(default_factory=OutputConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    representativeness: RepresentativenessConfig | None = None

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


def _first_error(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "missing":
        message = "required key is missing"
    extra = len(exc.errors()) - 1
    if extra:
        message += f" (and {extra} more error{'s' if extra > 1 else ''})"
    return ConfigError(key, message)


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML scalar syntax (``1.5``, ``true``, ``null``, ``[a, b]``)."""
    return yaml.safe_load(text) if text.strip() else text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a config dict (in place, and returned)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(item, "an override must look like key.sub=value")
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(key, f"{part!r} is not a section")
            node = child
        node[parts[-1]] = parse_value(raw)
    return data


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML file at ``path`` as a dict; relative paths inside stay as written."""
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("", f"{path} must hold a mapping of keys, not {type(data).__name__}")
    return data


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
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None


def tsm_home() -> Path:
    """The directory of the registry, caches and samples: ``$TSM_HOME`` or ``~/.tsm``."""
    return Path(os.environ.get("TSM_HOME") or Path.home() / ".tsm").expanduser()
