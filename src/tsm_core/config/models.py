"""The configuration of a run as pydantic models: what a user fills in the Photo-z Server form.

Unknown keys and invalid values are refused by the models; :mod:`tsm_core.config.load`
turns the refusal into a :class:`~tsm_core.errors.ConfigError` naming the dotted key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tsm_core.columns import CANONICAL_REDSHIFT_COLUMNS


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
