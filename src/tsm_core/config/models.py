"""The configuration of a run as pydantic models: what a user fills in the Photo-z Server form.

Unknown keys and invalid values are refused by the models; :mod:`tsm_core.config.load`
turns the refusal into a :class:`~tsm_core.errors.ConfigError` naming the dotted key.
"""

from __future__ import annotations

import math
import os
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tsm_core.columns import CANONICAL_REDSHIFT_COLUMNS
from tsm_core.config.files import path_problem

#: ``compute.n_workers`` may be at most this many times the machine's CPUs (unless the
#: scheduler is a cluster's address, whose workers are elsewhere)
WORKERS_PER_CPU = 4
#: the smallest ``compute.memory_limit`` per worker, in bytes (a worker needs this much to start)
MIN_MEMORY_LIMIT = 2**26
#: the largest ``representativeness.k`` (each training row queries k + 1 neighbours)
MAX_K = 1000
#: the most cells of ``representativeness.som_shape`` (training holds two cells x cells matrices)
MAX_SOM_CELLS = 2500


def _local_path(value: str | None) -> str | None:
    """``value`` unless it cannot be a local path (a URL such as ``s3://...`` passes)."""
    if value is not None and "://" not in value:
        problem = path_problem(value)
        if problem:
            raise ValueError(problem)
    return value


def _finite_values(value: dict[str, float] | None) -> dict[str, float] | None:
    """``value`` unless one of its numbers is NaN or infinite (named with its key)."""
    for band, number in (value or {}).items():
        if not math.isfinite(number):
            raise ValueError(f"{band}: {number} is not a finite number")
    return value


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
    units: Literal["deg", "rad"] | None = Field(
        None, description="units of ra and dec (deg when unset; a file that looks like radians is refused)"
    )
    table: str | None = Field(None, min_length=1, description="the table of an HDF5 file holding several")

    _path = field_validator("path")(_local_path)

    @field_validator("columns")
    @classmethod
    def _canonical_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CANONICAL_REDSHIFT_COLUMNS))
        if unknown:
            raise ValueError(f"unknown canonical column(s) {unknown}; valid: {list(CANONICAL_REDSHIFT_COLUMNS)}")
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

    _paths = field_validator("path", "margin_path", "dust_maps_dir")(_local_path)

    @field_validator("extinction_coefficients")
    @classmethod
    def _coefficients(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for band, number in (_finite_values(value) or {}).items():
            if number < 0:
                raise ValueError(f"{band}: {number} is negative (extinction dims, it never brightens)")
        return value

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
    the redshift catalog (canonical column names); ``match`` cuts apply to the matched
    rows, over the output columns and the ambiguity of each match. ``preset`` names a cut set of the
    release (``tsm catalogs`` lists them, e.g. ``recommended``), whose expressions go in
    front of ``object``. Each list holds at most :data:`MAX_FILTERS` expressions, so that
    checking a config stays bounded work.
    """

    preset: str | None = None
    object: list[str] = Field(default_factory=list, max_length=MAX_FILTERS)
    redshift: list[str] = Field(default_factory=list, max_length=MAX_FILTERS)
    match: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILTERS,
        description="cuts on the matched rows, before the unique-galaxy rule, over the output columns "
        "(redshift and object columns, _dist_arcsec, n_candidates, second_dist_arcsec, p_chance, magnitudes), "
        "e.g. 'p_chance < 0.05' or 'n_candidates == 1'",
    )


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

    _directory = field_validator("directory")(_local_path)
    _limits = field_validator("mag_limits")(_finite_values)


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

    @field_validator("k")
    @classmethod
    def _few_neighbours(cls, value: int) -> int:
        if value > MAX_K:
            raise ValueError(
                f"{value:,} neighbours; at most {MAX_K:,} (Lima et al. use tens; a run uses at most the training rows - 1)"
            )
        return value

    @field_validator("som_shape")
    @classmethod
    def _som_cells(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError(f"needs at least one cell per side, not {list(value)}")
        if value[0] * value[1] > MAX_SOM_CELLS:
            raise ValueError(
                f"{list(value)} has {value[0] * value[1]:,} cells; at most {MAX_SOM_CELLS:,}, e.g. [50, 50]"
            )
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

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() == "auto":
            return value
        from dask.utils import parse_bytes

        try:
            size = parse_bytes(value)
        except (ValueError, TypeError):
            raise ValueError(f"{value!r} is not a size; give bytes per worker such as 4GB, 512MiB, or auto") from None
        if size <= 0:
            raise ValueError(f"{value!r} is not a positive size; give bytes per worker such as 4GB, 512MiB, or auto")
        if size < MIN_MEMORY_LIMIT:
            raise ValueError(f"{value!r} is below the smallest worker size, {MIN_MEMORY_LIMIT // 2**20} MiB")
        return value

    @field_validator("n_workers")
    @classmethod
    def _workers_fit(cls, value: int | None, info: ValidationInfo) -> int | None:
        cpus = os.cpu_count() or 1
        on_cluster = "://" in str(info.data.get("scheduler", ""))
        if value is not None and not on_cluster and value > WORKERS_PER_CPU * cpus:
            raise ValueError(
                f"{value} is more than {WORKERS_PER_CPU} per CPU of this machine ({cpus} CPUs): "
                f"at most {WORKERS_PER_CPU * cpus}, or give the address of a cluster as scheduler"
            )
        return value

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
    unique_galaxies: Literal["none", "closest", "best_redshift", "best_redshift_per_object"] = Field(
        "none",
        description="one row per galaxy: none (every match), closest (each redshift its nearest object, then "
        "each object its nearest redshift), best_redshift (each object its best redshift by z_flag, z_err, "
        "distance, then each redshift its nearest kept object: one-to-one), best_redshift_per_object "
        "(each object its best redshift only: a redshift may stay with several objects)",
    )
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
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        control = next((c for c in value if unicodedata.category(c) == "Cc"), None)
        if control is not None:
            raise ValueError(f"{value!r} holds the control character {control!r}; a name is printable text")
        return value

    @model_validator(mode="after")
    def _split_files_need_split(self) -> RunConfig:
        if self.output.split_files and self.split is None:
            raise ValueError("output.split_files needs a split (e.g. split: {train_fraction: 0.8})")
        return self
