"""Planning a run: every choice of a config resolved and checked before any data is read.

:func:`plan_run` turns a :class:`~tsm_core.config.RunConfig` into a :class:`Plan`, so that
a wrong release, flux type, dereddener, format, dust map, column or directory fails at
once; it reads the redshift catalog (small) and the object catalog's metadata (schema,
partitions, margin), never object rows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tsm_core import plugins
from tsm_core.catalogs.objects import check_margin, open_objects, read_schema
from tsm_core.config import RunConfig
from tsm_core.errors import CatalogError, ConfigError
from tsm_core.pipeline.funnel import Funnel, partition_index
from tsm_core.plugins.records import CatalogLocation, ObjectCatalog, Writer
from tsm_core.products.output import check_directory
from tsm_core.redshifts.combine import open_combined_side
from tsm_core.redshifts.side import RedshiftSide, open_redshift_side
from tsm_core.science import layout, representativeness
from tsm_core.science.dust import describe_source
from tsm_core.science.filters import check_filter_columns, parse_filters
from tsm_core.science.photometry import DIST_COLUMN, EBV_COLUMN, ZROW_COLUMN, Photometry

if TYPE_CHECKING:
    import lsdb

    from tsm_core.products.registry import Registry

log = logging.getLogger(__name__)

#: a function the caller gives to rewrite the run's provenance before it is stored in the
#: file and the registry (e.g. a shared service leaving out its own locations)
Redact = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Plan:
    """Everything resolved and checked before work starts."""

    config: RunConfig
    release: ObjectCatalog
    object_path: str
    objects: lsdb.Catalog  # lazy, opened with only the needed columns and the object filters
    redshift_source: str
    #: the redshift rows after the filters: their keys, and a lazy catalog for the crossmatch
    redshifts: RedshiftSide
    photometry: Photometry
    writer: Writer
    output_dir: Path
    #: how the redshift catalog was read: convention, rows read and dropped (see RedshiftTable.summary)
    redshift_summary: dict[str, Any] = field(default_factory=dict)
    rail: layout.RailFill | None = None
    location: CatalogLocation | None = None
    funnel: Funnel = field(default_factory=Funnel)
    #: applied to the run's provenance before it is stored (none: stored as it is)
    redact: Redact | None = None

    @functools.cached_property
    def redshift_partitions(self) -> np.ndarray:
        """Each redshift's object partition (index into the object catalog's pixels), -1
        outside them all; found once, for the overlap check and the run's funnel."""
        keys = self.redshifts.keys
        return partition_index(
            self.objects.get_healpix_pixels(), keys["ra"].to_numpy(float), keys["dec"].to_numpy(float)
        )


def locate_objects(release: ObjectCatalog, configured: str | None, home: Path) -> CatalogLocation:
    """Where the run's object catalog comes from; a synthetic sample only when asked for
    (``object_catalog.path: sample``) and built (``tsm sample RELEASE``)."""
    location = release.locate(configured, home)
    if location.source == "sample" and not Path(location.path).exists():
        raise CatalogError(
            "object_catalog.path",
            f"the synthetic {release.name} sample is not built yet: run `tsm sample {release.name}` "
            f"(or `tsm run --sample`, which builds it)",
        )
    if location.synthetic:
        log.warning("using the SYNTHETIC %s sample at %s", release.name, location.path)
    else:
        log.info("%s object catalog: %s (%s)", release.name, location.path, location.source)
    return location


def plan_run(config: RunConfig, home: Path, registry: Registry) -> Plan:
    """Resolve and check every choice of ``config``; raises before any heavy work.

    Reads the redshift catalog (small) and the object catalog's metadata (schema,
    partitions, margin), never object rows.
    """
    oc = config.object_catalog
    # filters are parsed (and anything outside their language refused) before any data is read
    redshift_filters = parse_filters(config.filters.redshift, "filters.redshift")
    object_filters = parse_filters(config.filters.object, "filters.object")
    release = plugins.object_catalog(oc.release)
    flux = plugins.flux_type(release, oc.flux_type)
    bands = tuple(oc.bands or release.bands)
    unknown = [b for b in bands if b not in release.bands]
    if unknown:
        raise ConfigError(
            "object_catalog.bands", f"unknown band(s) {unknown}; {release.name} has {list(release.bands)}"
        )
    # a release's cut set (filters.preset) goes in front of filters.object, through the same filters
    preset = release.preset_filters(config.filters.preset, bands, flux.name) if config.filters.preset else []
    cuts = parse_filters(preset, f"filters.preset[{config.filters.preset}]")
    dereddener = plugins.dereddener(oc.dereddening)
    writer = plugins.writer(config.output.format)
    coefficients = dict(release.extinction_coefficients) | (oc.extinction_coefficients or {})
    maps_dir = Path(oc.dust_maps_dir).expanduser() if oc.dust_maps_dir else None
    ebv = dereddener.source(release, maps_dir)
    if ebv is not None:
        lacking = [b for b in bands if b not in coefficients]
        if lacking:
            raise ConfigError("object_catalog.extinction_coefficients", f"no coefficient for band(s) {lacking}")
    output_dir = check_directory(config.output.directory)
    location = locate_objects(release, oc.path, home)
    object_path = location.path
    funnel = Funnel()
    if len(config.redshift_catalogs) > 1:  # several catalogs, combined (a list of one is read as one)
        redshifts: RedshiftSide = open_combined_side(config, registry, redshift_filters, funnel)
    else:
        redshifts = open_redshift_side(config, registry, redshift_filters, funnel)
    extra = tuple(dict.fromkeys(oc.extra_columns))
    photometry = Photometry(
        catalog=release,
        flux_type=flux.name,
        bands=bands,
        to_magnitudes=oc.convert_to_magnitudes,
        redshift_columns=tuple(redshifts.columns),
        coefficients={b: coefficients[b] for b in bands if b in coefficients},
        ebv=ebv,
        ebv_description=describe_source(dereddener, ebv),
        extra_columns=extra,
        notes=redshifts.info,
    )
    env_var = release.env_var if location.source == "env" else None
    schema = read_schema(object_path, release.name, env_var)  # the catalog's metadata, read once for every check
    if extra:
        _check_extra_columns(release, object_path, schema.names, photometry)
    layout.renames(photometry.column_info(), config.output)  # a layout the columns cannot take fails here
    check_filter_columns(
        parse_filters(config.filters.match, "filters.match"), list(photometry.column_info()), "matched"
    )
    rail = layout.rail_fill(config.output, bands, photometry.coefficients if ebv is not None else None)
    if config.representativeness:
        representativeness.check_bands(config.representativeness, bands)
    columns = [release.id_column, release.ra_column, release.dec_column, *photometry.object_columns()]
    columns += [c for c in dereddener.required_columns(release) if c not in columns]
    clash = [c for c in photometry.redshift_columns if c in columns]
    if clash:
        raise ConfigError(
            "redshift_catalog.keep_columns",
            f"redshift column(s) {', '.join(clash)} have the name of {release.name} object columns; keep fewer columns",
        )
    if oc.margin_path:
        check_margin(release, object_path, oc.margin_path)
    objects = open_objects(
        release, object_path, columns, cuts + object_filters, config.crossmatch.radius_arcsec, oc.margin_path, schema
    )
    summary = redshifts.summary | {"columns_kept": list(photometry.redshift_columns)}
    return Plan(
        config,
        release,
        object_path,
        objects,
        redshifts.label,
        redshifts,
        photometry,
        writer,
        output_dir,
        redshift_summary=summary,
        rail=rail,
        location=location,
        funnel=funnel,
    )


def _check_extra_columns(release: ObjectCatalog, object_path: str, names: list[str], photometry: Photometry) -> None:
    """``object_catalog.extra_columns`` exist in the object catalog's schema (``names``) and
    clash with no other output column; checked before any row is read."""
    present = list(names)
    missing = [c for c in photometry.extra_columns if c not in present]
    if missing:
        raise ConfigError(
            "object_catalog.extra_columns",
            f"unknown column(s) {', '.join(missing)} of the {release.name} object catalog at {object_path} "
            f"({len(present)} columns, e.g. {', '.join(present[:8])})",
        )
    taken = set(photometry.redshift_columns) | {DIST_COLUMN, ZROW_COLUMN}
    if photometry.ebv is not None:
        taken.add(EBV_COLUMN)
    for band in photometry.bands:
        taken.update(photometry.output_names(band))
    clash = [c for c in photometry.extra_columns if c in taken]
    if clash:
        raise ConfigError(
            "object_catalog.extra_columns", f"column(s) {', '.join(clash)} clash with output columns of the same name"
        )
