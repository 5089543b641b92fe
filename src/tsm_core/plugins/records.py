"""The records that plugins return from the hooks in :mod:`tsm_core.plugins.hookspecs`.

They are small and typed, so that the core can index them by name and check them,
and so that a reader of a plugin sees at once what the plugin claims to provide.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tsm_core.errors import CatalogError, TSMError, UnknownChoiceError
from tsm_core.plugins.locations import LOCATIONS_ROOT_ENV as LOCATIONS_ROOT_ENV
from tsm_core.plugins.locations import SAMPLE_MARKER as SAMPLE_MARKER
from tsm_core.plugins.locations import (
    SAMPLE_OBJECTS_DIR,
    SAMPLE_PATH,
    CatalogLocation,
    CollectionLayout,
    Location,
    LocationSource,
    is_synthetic_sample,
    location_exists,
    under_root,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from tsm_core.config import OutputConfig

LSST_BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z", "y")


@dataclass(frozen=True)
class SkyField:
    """A circular patch of sky, used to place synthetic sample objects."""

    name: str
    ra: float
    dec: float
    radius_deg: float


@dataclass(frozen=True)
class SampleSpec:
    """How to generate a synthetic sample of a release (see :mod:`tsm_core.catalogs.rubin.sample`).

    ``fields`` is the release's footprint; ``flux_dtype`` the dtype of its flux columns;
    ``flux_types`` the flux families written; ``depths`` the 5-sigma limiting AB
    magnitude per band; ``missing_bands`` the bands not observed in a field (by field
    name); ``primary_column``, if set, a boolean column that is False for a fraction of
    rows (DP0.2's ``detect_isPrimary``); ``id_base`` the first object id.
    """

    fields: tuple[SkyField, ...]
    depths: Mapping[str, float]
    flux_dtype: str = "float64"
    flux_types: tuple[str, ...] = ("cModel", "gaap1p0", "gaapOptimal", "psf", "calib", "kron")
    missing_bands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    primary_column: str | None = None
    id_base: int = 1_000_000_000_000
    #: boolean flag columns written (``{band}`` expanded per band), mostly False
    flag_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectCatalog:
    """One object catalog (a data release), as offered by a provider plugin.

    Columns follow the Rubin Object table: ``{band}_{flux_type}Flux`` and
    ``{band}_{flux_type}FluxErr``. Where the HATS catalog lives is resolved by
    :meth:`locate`: the configured path, else the environment variable ``env_var``,
    else ``default_path`` and then each of ``known_locations`` that exists (as on the
    Rubin Science Platform, at NERSC or CANFAR); the synthetic sample under
    ``$TSM_HOME`` only when asked for (``object_catalog.path: sample``).

    ``collection`` is the published collection layout, which the sample and
    ``tsm import`` reproduce; ``cut_sets`` are named quality cuts (filter expressions,
    ``{band}`` expanded for each band of a run, ``{flux_type}`` the run's flux type),
    chosen with ``filters.preset``. ``mag_limits`` are the bands' 1-sigma limiting
    magnitudes used by the RAIL layout for non-detections.
    """

    name: str
    description: str
    extinction_coefficients: Mapping[str, float]
    extinction_source: str
    bands: tuple[str, ...] = LSST_BANDS
    id_column: str = "objectId"
    ra_column: str = "coord_ra"
    dec_column: str = "coord_dec"
    flux_column_template: str = "{band}_{flux_type}Flux"
    flux_err_column_template: str = "{band}_{flux_type}FluxErr"
    flux_unit: str = "nJy"
    zero_point: float = 31.4
    default_filters: tuple[tuple[str, str, Any], ...] = ()
    ebv_column: str | None = None
    env_var: str | None = None
    default_path: str | None = None
    known_locations: tuple[Location, ...] = ()
    sample: SampleSpec | None = None
    #: 1-sigma limiting AB magnitude per band: the error written for non-detections in
    #: ``output.layout: rail`` (overridable with ``output.mag_limits``)
    mag_limits: Mapping[str, float] = field(default_factory=dict)
    collection: CollectionLayout | None = None
    cut_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def flux_column(self, flux_type: str, band: str) -> str:
        """Name of the flux column of ``band`` for ``flux_type``."""
        return self.flux_column_template.format(band=band, flux_type=flux_type)

    def flux_err_column(self, flux_type: str, band: str) -> str:
        """Name of the flux-error column of ``band`` for ``flux_type``."""
        return self.flux_err_column_template.format(band=band, flux_type=flux_type)

    def sample_dir(self, home: Path) -> Path:
        """Where the generated sample of this release is cached."""
        return home / "samples" / self.name

    def sample_objects(self, home: Path) -> Path:
        """The HATS object catalog of the cached sample."""
        return self.sample_dir(home) / SAMPLE_OBJECTS_DIR

    def locations(self) -> list[Location]:
        """The published locations tried in order: ``default_path``, then ``known_locations``
        (under ``$TSM_LOCATIONS_ROOT`` when set)."""
        places = ([Location(self.default_path, "default")] if self.default_path else []) + list(self.known_locations)
        return [Location(under_root(p.path), p.site) for p in places]

    def locate(self, configured: str | None, home: Path) -> CatalogLocation:
        """Where the HATS catalog of this release comes from.

        ``configured`` (``object_catalog.path``): a path or URL, or ``sample`` for the
        synthetic sample; else ``$env_var``; else the first published location that
        exists. Raises :class:`~tsm_core.errors.CatalogError` listing the places tried,
        the environment variable and how to build the sample when there is none.
        """
        if configured == SAMPLE_PATH:
            if self.sample is None:
                raise CatalogError("object_catalog.path", f"release {self.name!r} has no synthetic sample")
            return CatalogLocation(str(self.sample_objects(home)), "sample", synthetic=True)
        if configured:
            return CatalogLocation(str(configured), "config", synthetic=is_synthetic_sample(str(configured)))
        if self.env_var and os.environ.get(self.env_var):
            path = os.environ[self.env_var]
            return CatalogLocation(path, "env", synthetic=is_synthetic_sample(path))
        places = self.locations()
        tried = tuple(p.path for p in places)
        for i, place in enumerate(places):
            if location_exists(place.path):
                source: LocationSource = "default" if i == 0 and self.default_path else "known"
                return CatalogLocation(
                    place.path, source, synthetic=is_synthetic_sample(place.path), tried=tried[: i + 1], site=place.site
                )
        where = f"tried {', '.join(tried)}" if tried else "it has no published location"
        env = f"set ${self.env_var} or " if self.env_var else ""
        sample = (
            f", or use the synthetic sample: object_catalog.path: sample (`tsm run --sample`; build it with `tsm sample {self.name}`)"
            if self.sample
            else ""
        )
        raise CatalogError(
            "object_catalog.path",
            f"no {self.name} object catalog found ({where}): {env}set object_catalog.path{sample}",
        )

    def available(self, home: Path) -> CatalogLocation | None:
        """What backs this release when a run names no path: the real catalog that
        :meth:`locate` finds, else the synthetic sample if it is built (a run must then ask
        for it with ``object_catalog.path: sample``), else None. For forms and listings."""
        try:
            return self.locate(None, home)
        except CatalogError:
            if self.sample and self.sample_objects(home).exists():
                return self.locate(SAMPLE_PATH, home)
            return None

    def resolve_path(self, configured: str | None, home: Path) -> str:
        """The path of :meth:`locate`."""
        return self.locate(configured, home).path

    def preset_filters(self, preset: str, bands: Sequence[str], flux_type: str) -> list[str]:
        """The filter expressions of cut set ``preset`` for a run over ``bands`` and
        ``flux_type`` (an expression with ``{band}`` gives one per band)."""
        if preset not in self.cut_sets:
            raise UnknownChoiceError("filters.preset", f"cut set of {self.name}", preset, self.cut_sets)
        out: list[str] = []
        for expression in self.cut_sets[preset]:
            if "{band}" in expression:
                out += [expression.format(band=b, flux_type=flux_type) for b in bands]
            else:
                out.append(expression.format(flux_type=flux_type))
        return out


@dataclass(frozen=True)
class FluxType:
    """A flux family selectable for a release (``cModel``, ``gaap1p0``, ...)."""

    name: str
    description: str
    default: bool = False


class EBVSource(Protocol):
    """Gives E(B-V) for the matched rows of one partition (must be picklable)."""

    def __call__(self, ra: np.ndarray, dec: np.ndarray, frame: pd.DataFrame) -> np.ndarray: ...


class Dereddener(ABC):
    """A source of E(B-V): a dust map, a catalog column, or nothing."""

    name: str
    description: str
    #: the command that installs missing files, shown in errors
    fetch_command: str | None = None

    def required_columns(self, catalog: ObjectCatalog) -> list[str]:
        """Object columns the dereddener reads (for example the release's E(B-V))."""
        return []

    def expected_files(self, maps_dir: Path | None) -> list[Path]:
        """Files the dereddener needs; used to report which ones are missing."""
        return []

    def missing_files(self, maps_dir: Path | None) -> list[Path]:
        """The expected files that are not on disk."""
        return [p for p in self.expected_files(maps_dir) if not p.is_file()]

    @abstractmethod
    def source(self, catalog: ObjectCatalog, maps_dir: Path | None) -> EBVSource | None:
        """Check that the dereddener can serve ``catalog`` and return its E(B-V) source.

        ``None`` means no dereddening. Raise :class:`tsm_core.errors.ConfigError` (or
        :class:`~tsm_core.errors.MissingDustMapError`) when it cannot be used.
        """


@dataclass(frozen=True)
class ColumnInfo:
    """Unit and description of one output column (``unit`` empty when dimensionless).

    ``quantity`` (``mag``, ``mag_err``, ``flux``, ``flux_err``, ``redshift``) and ``band``
    say what a column holds, for layouts such as RAIL's; ``max_length`` is the longest
    value of a string column, for formats with fixed-width strings (FITS).
    """

    unit: str = ""
    description: str = ""
    quantity: str | None = None
    band: str | None = None
    max_length: int | None = None


@dataclass
class OutputMetadata:
    """What a writer needs to make a self-describing file."""

    name: str
    description: str
    product_id: int
    columns: dict[str, ColumnInfo]
    provenance: dict[str, Any] = field(default_factory=dict)


class Sink(Protocol):
    """An open output file that takes Arrow tables one after another. ``close`` writes out
    everything: the ``tsm`` command ends without the interpreter's teardown (``os._exit``
    after the atexit handlers), so nothing may rely on an object being freed to flush."""

    def write(self, table: pa.Table) -> None: ...

    def close(self) -> None: ...


class Writer(ABC):
    """An output format: ``name`` (as in ``output.format``), file ``extension``."""

    name: str
    extension: str
    description: str

    @abstractmethod
    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> Sink:
        """Create ``path`` for a table of ``schema``; batches follow through ``write``.

        The core gives a path in a staging directory and moves the closed file into
        place, so a writer never has to clean up after a failure.
        """

    def read(self, path: Path) -> pd.DataFrame:
        """The rows of a file (or directory) this writer wrote at ``path``, as a DataFrame
        with the written columns in their order.

        Optional: ``tsm report``, the web service and :func:`tsm_core.read` read training
        sets through it. A writer that does not implement it raises a
        :class:`~tsm_core.errors.TSMError` saying so.
        """
        plugin = type(self).__module__.split(".")[0]
        raise TSMError(
            f"the writer {self.name!r} of plugin {plugin} cannot read its files back; "
            f"read {path} with the format's own tools, or ask the plugin's authors for Writer.read"
        )

    def columns(self, path: Path) -> list[str]:
        """The column names of a file this writer wrote at ``path``, in their order.

        Optional: by default the columns of :meth:`read`; a format that can list them
        without reading the rows (a header, a schema) overrides it.
        """
        return [str(c) for c in self.read(path).columns]


#: the homogenized redshift quality scale (LIneA's Combine Redshift Catalogs pipeline)
Z_FLAG_SCALE: dict[int, str] = {
    0: "no redshift could be assigned",
    1: "confidence < 70 %",
    2: "70 % < confidence < 90 %",
    3: "90 % < confidence < 99 %",
    4: "confidence > 99 %",
    6: "star / not extragalactic",
}
#: the homogenized flag of a star: never chosen as a galaxy's redshift
Z_FLAG_STAR = 6


@dataclass(frozen=True)
class RedshiftConvention:
    """How a survey (or a pipeline's output) names its redshift columns and rates quality.

    ``columns`` maps canonical names (``id, ra, dec, z, z_err, z_flag, survey``) to the
    survey's own column names (a canonical name missing from it is looked for under its
    own name); a run's ``redshift_catalog.columns`` overrides entries. ``detect`` lists
    columns whose joint presence identifies the convention when none is configured
    (empty: never detected). ``extra_columns`` are survey columns kept in a training set
    by default, where present. ``homogenize``, when set, receives the table renamed to
    canonical names (``z_flag`` holding the survey's own flag, other columns under their
    own names) and returns the homogenized ``z_flag`` on the scale of
    :data:`Z_FLAG_SCALE`; the survey's flag is then kept as ``z_flag_raw``. Without it,
    ``z_flag`` is taken as already homogenized. ``column_info`` gives units and
    descriptions of the survey's columns. ``rules`` says in words how the flag is
    derived (shown by ``tsm redshift conventions`` and in the provenance).
    """

    name: str
    description: str
    columns: Mapping[str, str] = field(default_factory=dict)
    detect: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    homogenize: Callable[[pd.DataFrame], np.ndarray] | None = None
    column_info: Mapping[str, ColumnInfo] = field(default_factory=dict)
    rules: str = ""

    def detected_in(self, present: Iterable[str]) -> bool:
        """True when every ``detect`` column is among ``present`` (never if ``detect`` is empty)."""
        names = set(present)
        return bool(self.detect) and all(c in names for c in self.detect)
