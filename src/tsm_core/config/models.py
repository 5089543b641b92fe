"""The configuration of a run as pydantic models: what a user fills in the Photo-z Server form.

The sections that stand on their own (object catalog, split, representativeness, compute)
are in :mod:`tsm_core.config.sections` and re-exported here. Unknown keys and invalid
values are refused by the models; :mod:`tsm_core.config.load`
turns the refusal into a :class:`~tsm_core.errors.ConfigError` naming the dotted key.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tsm_core.columns import CANONICAL_REDSHIFT_COLUMNS
from tsm_core.config.base import _finite_values, _local_path, _Model
from tsm_core.config.sections import (
    LOCAL_SCHEDULERS,
    MAX_K,
    MAX_SOM_CELLS,
    MIN_MEMORY_LIMIT,
    SPLIT_METHODS,
    WORKERS_PER_CPU,
    ComputeConfig,
    ObjectCatalogConfig,
    RepresentativenessConfig,
    SplitConfig,
)

__all__ = [
    "LOCAL_SCHEDULERS",
    "MAX_FILTERS",
    "MAX_K",
    "MAX_SOM_CELLS",
    "MIN_MEMORY_LIMIT",
    "SPLIT_METHODS",
    "WORKERS_PER_CPU",
    "ComputeConfig",
    "CrossmatchConfig",
    "FiltersConfig",
    "ObjectCatalogConfig",
    "OutputConfig",
    "RedshiftCatalogConfig",
    "RepresentativenessConfig",
    "RunConfig",
    "SplitConfig",
]


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

    path: str | None = Field(
        None, description="a file (Parquet, CSV, FITS, HDF5) or HATS catalog of redshifts: a path or a URL"
    )
    name: str | None = Field(None, description="a registered redshift catalog, by name (`tsm redshift list`)")
    id: int | None = Field(None, description="a registered redshift catalog, by id")
    columns: dict[str, str] = Field(
        default_factory=dict, description="canonical name -> the file's column, e.g. {ra: RA, dec: DEC, z: Z}"
    )
    convention: str | None = Field(
        None, description="the survey convention (`tsm redshift conventions`); unset: detected from the columns"
    )
    bad_rows: Literal["drop", "fail"] = Field(
        "drop", description="rows with bad coordinates or redshifts: drop (and count) them, or fail the run"
    )
    keep_columns: list[str] | Literal["all"] | None = Field(
        None, description="non-canonical columns kept in the training set, or all; unset: the convention's extras"
    )
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, description="a CSV file's field delimiter; unset: sniffed"
    )
    units: Literal["deg", "rad"] | None = Field(
        None, description="units of ra and dec (deg when unset; a file that looks like radians is refused)"
    )
    table: str | None = Field(None, min_length=1, description="the table of an HDF5 file holding several")
    label: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="this catalog's name in the catalog column of a run with several catalogs "
        "(default: its registered name, else its file's stem)",
    )

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


#: the most redshift catalogs one run combines (each is read and normalized on its own)
MAX_REDSHIFT_CATALOGS = 20


class CrossmatchConfig(_Model):
    """Match radius and number of neighbours kept per redshift."""

    radius_arcsec: float = Field(1.0, gt=0, description="match radius around each redshift, in arcsec")
    n_neighbors: int = Field(1, ge=1, description="the most objects kept per redshift within the radius, nearest first")


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

    preset: str | None = Field(None, description="a cut set of the release, e.g. recommended (`tsm catalogs`)")
    object: list[str] = Field(
        default_factory=list, max_length=MAX_FILTERS, description="cuts on object columns, before the crossmatch"
    )
    redshift: list[str] = Field(
        default_factory=list, max_length=MAX_FILTERS, description="cuts on the redshift catalog's columns"
    )
    match: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILTERS,
        description="cuts on the matched rows, before the unique-galaxy rule, over the output columns "
        "(redshift and object columns, _dist_arcsec, n_candidates, second_dist_arcsec, p_chance, magnitudes), "
        "e.g. 'p_chance < 0.05' or 'n_candidates == 1'",
    )


class OutputConfig(_Model):
    """Format and directory of the output; ``layout: rail`` writes what RAIL reads by default.

    In the rail layout a missing magnitude becomes ``non_detection`` (99 if unset, RAIL's
    ``nondetect_val``; ``.nan`` keeps NaN) with the band's 1-sigma limiting magnitude
    as its error (the depth measured from the partitions read, overridden per band by
    ``mag_limits``; dereddened per row like the magnitudes).
    ``split_files`` writes the training and validation rows as two files; ``unmatched``
    writes beside them the redshifts the run lost, each with the step that removed it.
    """

    format: str = Field(
        "parquet", description="the writer: parquet, csv, ecsv, fits, hdf5, hats, or a plugin's (`tsm plugins`)"
    )
    directory: str = Field(".", description="the folder the file is written to (relative: to the config's folder)")
    layout: Literal["default", "rail"] = Field(
        "default", description="default: the run's column names; rail: RAIL's names and non-detections"
    )
    non_detection: float | None = Field(
        None, description="value written for missing magnitudes in the rail layout (99 if unset; .nan keeps NaN)"
    )
    mag_limits: dict[str, float] | None = Field(
        None,
        description="1-sigma limiting magnitude per band, instead of the measured depth, for the rail layout's "
        "non-detections and the weights, e.g. {u: 26.1}",
    )
    split_files: bool = Field(False, description="write training and validation rows as two files (needs split)")
    unmatched: bool = Field(
        False,
        description="also write <name>_<id>_unmatched.<ext>: every redshift the run lost, with the step that removed it",
    )
    overwrite: bool = Field(False, description="replace an existing file of the same name (else the run fails)")

    _directory = field_validator("directory")(_local_path)
    _limits = field_validator("mag_limits")(_finite_values)


class RunConfig(_Model):
    """One training set run."""

    name: str = Field(min_length=1, description="the training set's name; its product id is added to the file name")
    description: str = Field("", description="free text stored with the product")
    redshift_catalog: RedshiftCatalogConfig | list[RedshiftCatalogConfig] = Field(
        description="the spectroscopic redshifts: one catalog (path, name or id, columns, convention, ...), "
        f"or a list of up to {MAX_REDSHIFT_CATALOGS} combined in one run"
    )
    redshift_duplicates_arcsec: float = Field(
        1.0,
        gt=0,
        le=60,
        description="with several redshift catalogs: redshifts of different catalogs closer than this are one "
        "source, kept once (highest z_flag, then smallest z_err, then the catalog listed first)",
    )
    object_catalog: ObjectCatalogConfig = Field(
        default_factory=ObjectCatalogConfig, description="the release and its photometry"
    )
    crossmatch: CrossmatchConfig = Field(default_factory=CrossmatchConfig, description="match radius and neighbours")
    unique_galaxies: Literal["none", "closest", "best_redshift", "best_redshift_per_object"] = Field(
        "none",
        description="one row per galaxy: none (every match), closest (each redshift its nearest object, then "
        "each object its nearest redshift), best_redshift (each object its best redshift by z_flag, z_err, "
        "distance, then each redshift its nearest kept object: one-to-one), best_redshift_per_object "
        "(each object its best redshift only: a redshift may stay with several objects)",
    )
    filters: FiltersConfig = Field(default_factory=FiltersConfig, description="quality cuts of both catalogs")
    split: SplitConfig | None = Field(None, description="a training/validation split; unset: no split")
    output: OutputConfig = Field(default_factory=OutputConfig, description="format, folder and layout of the file")
    compute: ComputeConfig = Field(default_factory=ComputeConfig, description="where the computation runs")
    representativeness: RepresentativenessConfig | None = Field(
        None, description="weights against the photometric sample; unset: no weight column"
    )

    @field_validator("redshift_catalog")
    @classmethod
    def _some_catalogs(
        cls, value: RedshiftCatalogConfig | list[RedshiftCatalogConfig]
    ) -> RedshiftCatalogConfig | list[RedshiftCatalogConfig]:
        if isinstance(value, list) and not 1 <= len(value) <= MAX_REDSHIFT_CATALOGS:
            raise ValueError(f"a list of 1 to {MAX_REDSHIFT_CATALOGS} catalogs, not {len(value)}")
        return value

    @property
    def redshift_catalogs(self) -> list[RedshiftCatalogConfig]:
        """``redshift_catalog`` as a list (one item for a mapping)."""
        source = self.redshift_catalog
        return list(source) if isinstance(source, list) else [source]

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
