"""The sections of a run's configuration that stand on their own: the object catalog, the
training/validation split, representativeness weights and where the computation runs.

:mod:`tsm_core.config.models` holds the redshift catalog, crossmatch, filters and output
sections and :class:`~tsm_core.config.models.RunConfig`, and re-exports everything here.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from tsm_core.config.base import _finite_values, _local_path, _Model

#: ``compute.n_workers`` may be at most this many times the machine's CPUs (unless the
#: scheduler is a cluster's address, whose workers are elsewhere)
WORKERS_PER_CPU = 4
#: the smallest ``compute.memory_limit`` per worker, in bytes (a worker needs this much to start)
MIN_MEMORY_LIMIT = 2**26
#: the largest ``representativeness.k`` (each training row queries k + 1 neighbours)
MAX_K = 1000
#: the most cells of ``representativeness.som_shape`` (training holds two cells x cells matrices)
MAX_SOM_CELLS = 2500


class ObjectCatalogConfig(_Model):
    """The release, its flux type, dereddening and magnitude conversion."""

    release: str = Field("dp1", description="the release matched against, by name (`tsm catalogs` lists them)")
    path: str | None = Field(
        None,
        description="the release's HATS catalog or collection: a path, a URL (s3://, https://) or `sample` "
        "(the synthetic sample); unset: the release's environment variable, else its published location",
    )
    margin_path: str | None = Field(None, description="a margin cache kept apart from the catalog (else its own)")
    flux_type: str | None = Field(
        None, description="the flux family of the photometry (`tsm catalogs` lists them); unset: the release's default"
    )
    dereddening: str = Field(
        "none",
        description="the source of E(B-V): none, catalog (the release's own column), sfd, csfd, planck, planck_gnilc",
    )
    convert_to_magnitudes: bool = Field(
        True, description="write AB magnitudes and their errors (true) or the fluxes and errors in nJy (false)"
    )
    dust_maps_dir: str | None = Field(
        None, description="folder of the dustmaps map files; unset: $TSM_DUSTMAPS_DIR, else dustmaps' own data_dir"
    )
    extinction_coefficients: dict[str, float] | None = Field(
        None, description="A_b/E(B-V) per band replacing the release's, e.g. {i: 1.684} (finite, >= 0)"
    )
    bands: list[str] | None = Field(None, description="the bands written, a subset of the release's; unset: all")
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

    method: Literal["random", "kfold", "healpix"] = Field(
        "random", description="random (seeded hash of the groups), kfold (k folds) or healpix (whole HEALPix pixels)"
    )
    train_fraction: float = Field(0.8, gt=0, lt=1, description="fraction of the rows on the training side (no folds)")
    seed: int = Field(42, description="seed of the assignment: the same ids and seed give the same split")
    k: int | None = Field(None, ge=2, description="number of folds (kfold, or healpix with folds)")
    validation_fold: int = Field(0, ge=0, description="the fold written as validation (is_training false)")
    stratify: Literal["z"] | None = Field(
        None, description="z: split each quantile bin of redshift on its own; unset: no stratification"
    )
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


class RepresentativenessConfig(_Model):
    """How well the training set covers the photometric sample it will be applied to.

    The run draws ``sample_fraction`` of the object catalog's objects (after the same
    cuts, in the same bands, with the same photometry; seeded per partition), writes a
    ``weight`` column from the k-nearest-neighbour density ratio in ``space``
    (magnitudes, or one magnitude and colours; Lima et al. 2008) and counts the
    photometric objects in self-organizing-map cells that hold no training object.
    """

    sample_fraction: float = Field(
        0.01, gt=0, le=1, description="fraction of the object catalog's objects drawn as the photometric sample"
    )
    k: int = Field(20, ge=1, description=f"neighbours of the k-nearest-neighbour density ratio (at most {MAX_K:,})")
    seed: int = Field(42, description="seed of the photometric sample's draw")
    space: Literal["magnitudes", "colours"] = Field(
        "magnitudes", description="feature space of the weights: the magnitudes, or one magnitude and the colours"
    )
    bands: list[str] | None = Field(None, description="bands of the feature space (default: the run's bands)")
    som_shape: tuple[int, int] = Field(
        (12, 12), description=f"cells of the self-organizing map, [rows, columns] (at most {MAX_SOM_CELLS:,} cells)"
    )

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

    scheduler: str = Field(
        "threads",
        description="threads, processes (a local dask.distributed cluster), synchronous, "
        "or the address of a running scheduler (tcp://host:8786)",
    )
    n_workers: int | None = Field(
        None, ge=1, description=f"threads or worker processes, at most {WORKERS_PER_CPU} per CPU; unset: one per CPU"
    )
    memory_limit: str | None = Field(
        None, description="memory per worker process: a size (4GB, 512MiB, at least 64 MiB) or auto; unset: auto"
    )

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
