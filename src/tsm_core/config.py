"""The configuration of a run: what a user fills in the Photo-z Server form.

Read from YAML, a dict or built directly; unknown keys and invalid values are refused
with the dotted key path named (see :func:`load_config`).
"""

from __future__ import annotations

import copy
import difflib
import io
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tsm_core.columns import CANONICAL_REDSHIFT_COLUMNS, REQUIRED_REDSHIFT_COLUMNS
from tsm_core.errors import ConfigError
from tsm_core.plugins.records import SAMPLE_PATH



class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RedshiftCatalogConfig(_Model):
    """A registered redshift catalog (``name`` or ``id``), or a file/HATS ``path``.

    ``columns`` maps canonical names (``id, ra, dec, z, z_err, z_flag, survey``) to the
    file's own column names; canonical names that the file already uses need no entry.
    ``convention`` names the survey convention (``tsm redshift conventions``; detected
    from the columns when unset); ``bad_rows`` drops (and counts) or refuses rows with
    bad coordinates or redshifts; ``keep_columns`` lists the non-canonical columns a
    training set keeps (``all`` for every one; default: the convention's extras);
    ``delimiter`` is a CSV file's (sniffed when unset).
    """

    path: str | None = None
    name: str | None = None
    id: int | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    convention: str | None = None
    bad_rows: Literal["drop", "fail"] = "drop"
    keep_columns: list[str] | Literal["all"] | None = None
    delimiter: str | None = Field(None, min_length=1, max_length=1)

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
    extra_columns: list[str] = Field(
        default_factory=list, description="object-catalog columns written beside the photometry"
    )

    @field_validator("bands")
    @classmethod
    def _some_bands(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list selects no band; leave bands out (or null) for all bands of the release")
        return value


class CrossmatchConfig(_Model):
    """Match radius and number of neighbours kept per redshift."""

    radius_arcsec: float = Field(1.0, gt=0)
    n_neighbors: int = Field(1, ge=1)


#: the most expressions a filter list may hold (each is checked in bounded time)
MAX_FILTERS = 100


class FiltersConfig(_Model):
    """Quality cuts: expressions such as ``refExtendedness == 1`` or ``z_flag >= 3``.

    ``object`` cuts apply to the object catalog before the crossmatch (simple
    ``column op value`` cuts are pushed into the Parquet read); ``redshift`` cuts apply to
    the redshift catalog (canonical column names). ``preset`` names a cut set of the
    release (``tsm catalogs`` lists them, e.g. ``recommended``), whose expressions go in
    front of ``object``. Each list holds at most :data:`MAX_FILTERS` expressions, so that
    checking a config stays bounded work.
    """

    preset: str | None = None
    object: list[str] = Field(default_factory=list, max_length=MAX_FILTERS)
    redshift: list[str] = Field(default_factory=list, max_length=MAX_FILTERS)


SPLIT_METHODS = ("random", "kfold", "healpix")


class SplitConfig(_Model):
    """Training / validation split: adds a boolean ``is_training`` column (and ``fold``).

    Rows are grouped so that every row of one object and of one redshift id falls on
    one side: ``random`` assigns these groups by a seeded hash, ``kfold`` deals them
    into ``k`` folds (``fold`` column; fold ``validation_fold`` is the validation side),
    ``healpix`` assigns whole HEALPix pixels of order ``healpix_order`` (spatially
    blocked; with ``k``, into folds). ``stratify: z`` balances each of ``z_bins``
    quantile bins of redshift on its own. The split depends only on the ids and ``seed``.
    """

    method: Literal["random", "kfold", "healpix"] = "random"
    train_fraction: float = Field(0.8, gt=0, lt=1)
    seed: int = 42
    k: int | None = Field(None, ge=2, description="number of folds (kfold, or healpix with folds)")
    validation_fold: int = Field(0, ge=0, description="the fold written as validation (is_training false)")
    stratify: Literal["z"] | None = None
    z_bins: int = Field(10, ge=1, description="quantile bins of z with stratify: z")
    healpix_order: int = Field(5, ge=0, le=20, description="HEALPix order of the blocks of the healpix method")

    @model_validator(mode="after")
    def _folds(self) -> SplitConfig:
        if self.method == "kfold" and self.k is None:
            raise ValueError("the kfold method needs k (the number of folds), e.g. k: 5")
        if self.method == "random" and self.k is not None:
            raise ValueError("k applies to the kfold and healpix methods, not random")
        if self.k is not None and self.validation_fold >= self.k:
            raise ValueError(f"validation_fold {self.validation_fold} is not a fold of 0..{self.k - 1}")
        return self


class OutputConfig(_Model):
    """Format and directory of the output; ``layout: rail`` writes what RAIL reads by default.

    In the rail layout a missing magnitude becomes ``non_detection`` (99 if unset, RAIL's
    ``nondetect_val``; ``.nan`` keeps NaN) with the band's 1-sigma limiting magnitude
    as its error (the release's ``mag_limits``, overridden per band by ``mag_limits``).
    ``split_files`` writes the training and validation rows as two files.
    """

    format: str = "parquet"
    directory: str = "."
    layout: Literal["default", "rail"] = "default"
    non_detection: float | None = Field(
        None, description="value written for missing magnitudes in the rail layout (99 if unset; .nan keeps NaN)"
    )
    mag_limits: dict[str, float] | None = Field(
        None, description="1-sigma limiting magnitude per band for the rail layout, e.g. {u: 26.1}"
    )
    split_files: bool = Field(False, description="write training and validation rows as two files (needs split)")
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

    @property
    def in_process(self) -> bool:
        """True where tasks run in this process (threads, synchronous): they can share its
        memory; otherwise each task is sent to a worker process with its data."""
        return self.scheduler in ("threads", "synchronous")

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

    @field_validator("name", "description", mode="before")
    @classmethod
    def _numbers_are_text(cls, value: Any) -> Any:
        # `--set name=123` reads 123 as a number: a name made of digits is still a name
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @model_validator(mode="after")
    def _split_files_need_split(self) -> RunConfig:
        if self.output.split_files and self.split is None:
            raise ValueError("output.split_files needs a split (e.g. split: {train_fraction: 0.8})")
        return self


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


def _first_error(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
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
    extra = len(exc.errors()) - 1
    if extra:
        message += f" (and {extra} more error{'s' if extra > 1 else ''})"
    return ConfigError(key, message)


#: the largest YAML config (file or text) read, in bytes
MAX_YAML_BYTES = 2**20
#: how many nodes YAML aliases and merge keys (``*name``, ``<<:``) may add to a document
MAX_YAML_ALIAS_NODES = 10_000


def load_yaml(text: str | bytes, source: str, key: str = "") -> Any:
    """``text`` parsed as safe YAML, with bounded work and memory.

    Refused with a one-line :class:`~tsm_core.errors.ConfigError` (``key``, then
    ``source`` naming the file): texts over :data:`MAX_YAML_BYTES`, aliases and merge keys
    that would add more than :data:`MAX_YAML_ALIAS_NODES` nodes once expanded (a "billion
    laughs" bomb is a few hundred bytes), nesting beyond the parser's stack, invalid YAML
    (with its line and column). The node graph is composed (aliases shared, not copied)
    and measured before any Python object is built.
    """
    data = text.encode() if isinstance(text, str) else text
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(key, f"{source} is {len(data):,} bytes, over the limit of {MAX_YAML_BYTES:,} bytes")
    stream = io.BytesIO(data)
    stream.name = source  # type: ignore[attr-defined]  # named in the parser's messages
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(stream)  # libyaml where installed: fast
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        written, expanded = _yaml_extent(node)
        if expanded - written > MAX_YAML_ALIAS_NODES:
            raise ConfigError(key, f"{source}: YAML aliases expand beyond {MAX_YAML_ALIAS_NODES:,} nodes "
                                   f"(aliases and merge keys may add at most that many)")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(key, f"{source} is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(key, f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_extent(root: yaml.Node) -> tuple[int, int]:
    """The number of distinct nodes of a composed YAML graph, and how many the document
    has once its aliases are expanded (each distinct node measured once, without recursion;
    a node that holds itself expands without end)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        kids = _yaml_children(node)
        if children_done:
            on_path.discard(id(node))
            size[id(node)] = min(1 + sum(size[id(k)] for k in kids), 2**62)
            continue
        if id(node) in size:
            continue
        if id(node) in on_path:
            return len(size), 2**62  # recursive: infinite once expanded
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)
    return len(size), size[id(root)]


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_yaml(path: str | os.PathLike[str], key: str = "") -> Any:
    """The YAML file at ``path`` through :func:`load_yaml` (read no further than its size limit)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(key, f"cannot read config file {path}: {exc.strerror}") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(key, f"{path} is over the limit of {MAX_YAML_BYTES:,} bytes")
    return load_yaml(data, str(path), key)


def parse_value(text: str, key: str = "") -> Any:
    """A ``--set`` value: YAML scalar syntax (``1.5``, ``true``, ``null``, ``[a, b]``)."""
    return load_yaml(text, "the value", key) if text.strip() else text


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
        node[parts[-1]] = parse_value(raw, key.strip())
    return data


#: config keys holding a local path (a URL such as ``s3://...`` is left alone)
PATH_KEYS: tuple[tuple[str, str], ...] = (
    ("redshift_catalog", "path"),
    ("object_catalog", "path"),
    ("object_catalog", "margin_path"),
    ("object_catalog", "dust_maps_dir"),
    ("output", "directory"),
)


def resolve_paths(data: dict[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """Make the relative paths of a config dict absolute against ``base`` (in place, and returned)."""
    for section, key in PATH_KEYS:
        node = data.get(section)
        if not isinstance(node, dict):
            continue
        value = node.get(key)
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip() or "://" in value or value == SAMPLE_PATH:
            continue
        path = Path(value).expanduser()
        node[key] = str(path if path.is_absolute() else (Path(base) / path).resolve())
    return data


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML file at ``path`` as a dict; relative paths inside resolve against its folder."""
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError("", f"{path} must hold a mapping of keys, not {type(data).__name__}")
    return resolve_paths(data, Path(path).expanduser().resolve().parent)


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


def tsm_home() -> Path:
    """The directory of the registry, caches and samples: ``$TSM_HOME`` or ``~/.tsm``."""
    return Path(os.environ.get("TSM_HOME") or Path.home() / ".tsm").expanduser()
