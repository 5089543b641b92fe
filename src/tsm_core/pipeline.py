"""One training-set run: plan -> crossmatch -> photometry -> select -> write -> register.

:func:`run` is the whole of it. Every choice is resolved and checked in
:func:`plan_run` before any data is read, so that a wrong release, flux type,
dereddener, format, dust map or directory fails at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tsm_core import layout, numba_cache, plugins, representativeness
from tsm_core.compute import dask_scheduler, stream
from tsm_core.config import RunConfig, load_config, tsm_home
from tsm_core.dust import describe_source
from tsm_core.errors import CatalogError, ConfigError
from tsm_core.filters import Filter, apply_filters, check_filter_columns, parse_filters
from tsm_core.funnel import Funnel, coverage_mask, record_match, record_read, sky_summary
from tsm_core.objects import open_objects
from tsm_core.output import check_directory, output_file_name, staged_file
from tsm_core.redshift import load_redshift_catalog
from tsm_core.representativeness import WEIGHT_COLUMN
from tsm_core.registry import Registry
from tsm_core.selection import training_flags, unique_galaxies
from tsm_core.transform import DIST_COLUMN, ZROW_COLUMN, Photometry
from tsm_core.types import ColumnInfo, ObjectCatalog, OutputMetadata, Writer

log = logging.getLogger(__name__)

#: progress callback: (stage, done, total)
Progress = Callable[[str, int, int], None]
SPLIT_COLUMN = "is_training"


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log the wall time of a stage of the run."""
    start = time.perf_counter()
    yield
    log.info("%s: %.2f s", name, time.perf_counter() - start)


@dataclass
class RunResult:
    """What a run produced."""

    product_id: int
    output_path: Path
    n_rows: int
    n_redshifts: int
    n_matched: int
    removed: dict[str, int]
    median_separation_arcsec: float | None
    provenance: dict[str, Any] = field(repr=False)
    #: where the redshifts went (:meth:`tsm_core.funnel.Funnel.to_dict`)
    funnel: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Plan:
    """Everything resolved and checked before work starts."""

    config: RunConfig
    release: ObjectCatalog
    object_path: str
    objects: Any  # the lazy LSDB catalog, opened with only the needed columns
    redshift_source: str
    redshifts: pd.DataFrame
    photometry: Photometry
    writer: Writer
    output_dir: Path
    funnel: Funnel = field(default_factory=Funnel)


def _versions() -> dict[str, str]:
    versions = {}
    for dist in ("tsm-core", "lsdb", "hats", "nested-pandas", "pyarrow", "pandas", "dask", "dustmaps"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions | plugins.plugin_versions()


def _read_redshifts(
    config: RunConfig, registry: Registry, filters: list[Filter], funnel: Funnel
) -> tuple[pd.DataFrame, str]:
    source = config.redshift_catalog
    if source.path:
        path, columns, label = source.path, source.columns, source.path
    else:
        record = registry.redshift_catalog(source.name if source.name else source.id)
        path, columns = record.path, record.columns | source.columns
        label = f"registered catalog {record.name!r} (id {record.id}, {record.path})"
    frame = load_redshift_catalog(path, columns)
    check_filter_columns(filters, [str(c) for c in frame.columns], "redshift")
    frame[ZROW_COLUMN] = np.arange(len(frame), dtype=np.int64)
    record_read(funnel, frame, frame.attrs.get("bad_rows"))
    for one in filters:  # one at a time, to count what each removes
        before, frame = frame, apply_filters(frame, [one])
        funnel.filtered(f"filter:{one.expression}", f"redshift filter {one.expression}", before, frame, ZROW_COLUMN)
    return frame, label


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
        raise ConfigError("object_catalog.bands", f"unknown band(s) {unknown}; {release.name} has {list(release.bands)}")
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
    object_path = release.resolve_path(oc.path, home)
    if not oc.path and object_path == str(release.sample_objects(home)):
        if not Path(object_path).exists():
            raise CatalogError(
                f"no {release.name} object catalog: set object_catalog.path"
                + (f" or ${release.env_var}" if release.env_var else "")
                + f", or build the synthetic sample with `tsm sample {release.name}`",
                "object_catalog.path",
            )
        log.warning("using the SYNTHETIC %s sample at %s", release.name, object_path)
    funnel = Funnel()
    redshifts, label = _read_redshifts(config, registry, redshift_filters, funnel)
    photometry = Photometry(
        catalog=release,
        flux_type=flux.name,
        bands=bands,
        to_magnitudes=oc.convert_to_magnitudes,
        redshift_columns=tuple(c for c in redshifts.columns if c != ZROW_COLUMN),
        coefficients={b: coefficients[b] for b in bands if b in coefficients},
        ebv=ebv,
        ebv_description=describe_source(dereddener, ebv),
    )
    layout.renames(photometry.column_info(), config.output)  # a layout the columns cannot take fails here
    if config.representativeness:
        representativeness.check_bands(config.representativeness, bands)
    columns = [release.id_column, release.ra_column, release.dec_column, *photometry.object_columns()]
    columns += [c for c in dereddener.required_columns(release) if c not in columns]
    objects = open_objects(
        release, object_path, columns, object_filters, config.crossmatch.radius_arcsec, oc.margin_path
    )
    return Plan(config, release, object_path, objects, label, redshifts, photometry, writer, output_dir, funnel)


def _crossmatch(plan: Plan) -> tuple[list[Any], pd.DataFrame]:
    """Delayed photometry over the lazy LSDB crossmatch of redshifts (left) with objects
    (right), one task per partition, and the (empty) frame that describes its columns."""
    import dask
    import lsdb

    numba_cache.enable(numba_cache.cache_dir(tsm_home()))
    cfg, release, objects = plan.config, plan.release, plan.objects
    if plan.redshifts.empty:
        log.warning("no redshifts left to match")
        return [], pd.concat([plan.redshifts.iloc[:0], objects.meta], axis=1).assign(**{DIST_COLUMN: pd.Series(dtype="float64")})
    redshifts = lsdb.from_dataframe(
        plan.redshifts, ra_column="ra", dec_column="dec", margin_threshold=None,
        catalog_name="redshifts", partition_rows=50_000,
    )
    try:
        xmatch = redshifts.crossmatch(
            objects,
            n_neighbors=cfg.crossmatch.n_neighbors,
            radius_arcsec=cfg.crossmatch.radius_arcsec,
            require_right_margin=True,
            suffixes=("", "_object"),
            suffix_method="overlapping_columns",
        )
    except RuntimeError as exc:
        if "do not overlap" not in str(exc):
            raise
        log.warning("the redshift catalog does not overlap the %s object catalog: no matches", release.name)
        meta = pd.concat([redshifts.meta, objects.meta], axis=1).assign(**{DIST_COLUMN: pd.Series(dtype="float64")})
        return [], meta
    return [dask.delayed(plan.photometry)(part) for part in xmatch.to_delayed()], xmatch.meta


class _Spool:
    """Matched partitions parked on disk while a whole-set selection is made."""

    def __init__(self, directory: Path, key_columns: list[str]) -> None:
        self.directory = directory
        self.key_columns = key_columns
        self.files: list[Path] = []
        self.keys: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame) -> None:
        path = self.directory / f"part-{len(self.files):06d}.parquet"
        frame.to_parquet(path, index=False)
        self.files.append(path)
        self.keys.append(frame[[c for c in self.key_columns if c in frame]])

    @property
    def n_rows(self) -> int:
        return sum(len(k) for k in self.keys)

    def all_keys(self) -> pd.DataFrame:
        if not self.keys:
            return pd.DataFrame(columns=self.key_columns)
        return pd.concat(self.keys, ignore_index=True)

    def replay(self, mask: np.ndarray) -> Iterator[pd.DataFrame]:
        start = 0
        for path in self.files:
            frame = pd.read_parquet(path, dtype_backend="pyarrow")
            yield frame[mask[start : start + len(frame)]]
            start += len(frame)
            path.unlink()


def _column_info(plan: Plan) -> dict[str, ColumnInfo]:
    info = plan.photometry.column_info()
    for name in plan.photometry.redshift_columns:
        values = plan.redshifts[name]
        if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_numeric_dtype(values.dtype):
            # longest value in UTF-8 bytes, for fixed-width formats
            longest = pc.max(pc.binary_length(pa.array(values.astype("string"), type=pa.large_string()))).as_py()
            info[name] = replace(info[name], max_length=max(longest or 0, 1))
    if plan.config.split:
        s = plan.config.split
        info[SPLIT_COLUMN] = ColumnInfo("", f"training (true) or validation (false); fraction {s.train_fraction}, seed {s.seed}")
    if plan.config.representativeness:
        how = representativeness.describe(plan.config.representativeness)
        info[WEIGHT_COLUMN] = ColumnInfo("", f"k-nearest-neighbour weight to the photometric sample (Lima et al. 2008), {how}")
    return info


@dataclass
class _Finisher:
    """Turns a matched, selected frame into the Arrow table that is written."""

    config: RunConfig
    info: dict[str, ColumnInfo]
    schema: pa.Schema | None = None

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.config.split:
            flags = training_flags(frame["id"], self.config.split.train_fraction, self.config.split.seed)
            frame = frame.assign(**{SPLIT_COLUMN: flags})
        return layout.apply(frame.drop(columns=[ZROW_COLUMN]), self.info, self.config.output)

    def table(self, frame: pd.DataFrame) -> pa.Table:
        table = pa.Table.from_pandas(self.frame(frame), schema=self.schema, preserve_index=False)
        return table.replace_schema_metadata(None) if self.schema is None else table


def _split_flags(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _partition_rows(path: str, pixels: list[Any]) -> list[int] | None:
    """Rows of each partition before any cut, from the HATS metadata (None where unreadable)."""
    import hats

    try:
        opened = hats.read_hats(path)
        main = getattr(opened, "main_catalog", opened)
        column = main.schema.names[0]
        stats = main.per_partition_statistics(include_columns=[column], include_stats=["row_count"])
        counts = dict(zip(stats.index, stats.iloc[:, 0]))
        return [int(counts[p]) for p in pixels]
    except Exception as exc:  # noqa: BLE001 - optional metadata: the funnel says it is unknown
        log.info("no per-partition row counts for %s: %s", path, exc)
        return None


def _finish_funnel(
    plan: Plan,
    matched: np.ndarray,
    removed: dict[str, int],
    written: np.ndarray,
    training: np.ndarray | None,
    weigher: representativeness.Weigher | None,
) -> dict[str, Any]:
    """The funnel's steps after the redshift filters and the object cuts where they were
    counted; returns the sky summary (partitions, local object density) for the provenance."""
    z = plan.redshifts
    ra, dec = z["ra"].to_numpy(float), z["dec"].to_numpy(float)
    pixels = plan.objects.get_healpix_pixels()
    cfg = plan.config
    record_match(plan.funnel, z, ZROW_COLUMN, coverage_mask(pixels, ra, dec), matched, removed, written, training,
                 cfg.crossmatch.radius_arcsec, cfg.crossmatch.n_neighbors)
    rows = _partition_rows(plan.object_path, pixels)
    kept = 1.0
    if weigher is not None:
        plan.funnel.count("objects", "objects in the object catalog", weigher.n_objects,
                          "counted in the representativeness pass over every partition")
        for name, n in weigher.cut_counts.items():
            plan.funnel.count(f"object_cut:{name}", f"objects removed by {name}", n)
        kept = weigher.n_objects_after_cuts / weigher.n_objects if weigher.n_objects else 1.0
    else:
        plan.funnel.not_counted("object_cuts", "objects removed by object filters and release cuts",
                                "the crossmatch reads only partitions with redshifts and pushed cuts never load "
                                "removed rows; set representativeness to count them")
    return sky_summary(pixels, rows, ra, dec, kept)


def _provenance(plan: Plan, product_id: int, started: str) -> dict[str, Any]:
    cfg, release = plan.config, plan.release
    prov: dict[str, Any] = {
        "product_id": product_id,
        "name": cfg.name,
        "description": cfg.description,
        "config": cfg.model_dump(mode="json"),
        "release": release.name,
        "object_catalog_path": plan.object_path,
        "redshift_catalog": plan.redshift_source,
        "flux_type": plan.photometry.flux_type,
        "flux_unit": release.flux_unit,
        "zero_point": release.zero_point,
        "dereddening": plan.photometry.ebv_description,
        "versions": _versions(),
        "started_at": started,
    }
    if plan.photometry.ebv is not None:
        prov["extinction_coefficients"] = plan.photometry.coefficients
        prov["extinction_source"] = release.extinction_source
    return prov


def _execute(plan: Plan, product_id: int, progress: Progress | None) -> RunResult:
    cfg = plan.config
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    final = plan.output_dir / output_file_name(cfg.name, product_id, plan.writer.extension)
    with stage("crossmatch graph"):
        tasks, meta = _crossmatch(plan)
        info = _column_info(plan)
        finisher = _Finisher(cfg, info)
        weigher = representativeness.Weigher(plan.photometry, cfg.representativeness) if cfg.representativeness else None
        empty = plan.photometry(meta.iloc[:0])
        finisher.schema = finisher.table(weigher.apply(empty) if weigher else empty).schema
    metadata = OutputMetadata(
        cfg.name, cfg.description, product_id, layout.column_info(info, cfg.output), _provenance(plan, product_id, started)
    )
    release = plan.release
    n_matched = 0
    n_rows = 0
    distances: list[np.ndarray] = []
    removed: dict[str, int] = {}
    written_zrows: list[np.ndarray] = []
    training: list[np.ndarray] = []

    def report(done: int) -> None:
        if progress:
            progress("crossmatch", done, len(tasks))

    with dask_scheduler(cfg.compute) as n_workers, staged_file(final, cfg.output.overwrite) as staged:
        if weigher:
            with stage("photometric sample"):
                cuts = [*representativeness.release_cut_filters(release.default_filters),
                        *parse_filters(cfg.filters.object, "filters.object")]
                weigher.sample(plan.object_path, list(plan.objects.columns), cuts, 2 * n_workers)
        frames: Iterator[pd.DataFrame] = stream(tasks, in_flight=2 * n_workers, on_done=report)
        spooled = cfg.unique_galaxies != "none" or weigher is not None
        if spooled:
            keys = [ZROW_COLUMN, release.id_column, DIST_COLUMN, "z_flag", "z_err"] + (weigher.key_columns if weigher else [])
            spool = _Spool(staged.parent, keys)
            with stage("match and photometry (spooled for selection)"):
                for frame in frames:
                    spool.add(frame)
            n_matched = spool.n_rows
            mask, removed = unique_galaxies(spool.all_keys(), cfg.unique_galaxies, ZROW_COLUMN, release.id_column)
            for rule, count in removed.items():
                log.info("unique galaxies (%s): removed %d rows %s", cfg.unique_galaxies, count, rule)
            if weigher:
                weigher.fit(spool.all_keys()[mask])
            frames = spool.replay(mask)
        sink = plan.writer.open(staged, finisher.schema, metadata, cfg.output)
        try:
            with stage("match, photometry and write"):
                for frame in frames:
                    if not spooled:
                        n_matched += len(frame)
                    distances.append(frame[DIST_COLUMN].to_numpy(dtype=float))
                    written_zrows.append(frame[ZROW_COLUMN].to_numpy())
                    n_rows += len(frame)
                    table = finisher.table(weigher.apply(frame) if weigher else frame)
                    if cfg.split:
                        training.append(table.column(SPLIT_COLUMN).to_numpy(zero_copy_only=False))
                    sink.write(table)
            written = np.concatenate(written_zrows) if written_zrows else np.zeros(0, np.int64)
            matched = spool.all_keys()[ZROW_COLUMN].to_numpy() if spooled else written
            sky = _finish_funnel(plan, matched, removed, written, _split_flags(training) if cfg.split else None, weigher)
            metadata.provenance.update(
                finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                counts={"redshifts": len(plan.redshifts), "matched": n_matched, "rows": n_rows, "removed": removed},
                funnel=plan.funnel.to_dict(),
                sky=sky,
                output_file=final.name,
            )
            if weigher:
                metadata.provenance["representativeness"] = weigher.summary
        except BaseException:
            with suppress(Exception):  # the staged file is discarded; keep the first error
                sink.close()
            raise
        sink.close()
    dist = np.concatenate(distances) if distances else np.zeros(0)
    return RunResult(
        product_id=product_id,
        output_path=final,
        n_rows=n_rows,
        n_redshifts=len(plan.redshifts),
        n_matched=n_matched,
        removed=removed,
        median_separation_arcsec=float(np.median(dist)) if len(dist) else None,
        provenance=metadata.provenance,
        funnel=plan.funnel.to_dict(),
    )


def prepare(config: RunConfig | dict[str, Any] | str | Path, overrides: list[str] | None = None) -> Plan:
    """Validate ``config`` and resolve every choice, reading only the redshift catalog.

    Raises a :class:`~tsm_core.errors.TSMError` naming the bad value; nothing is
    registered or written. :func:`execute` then does the work.
    """
    cfg = load_config(config if not isinstance(config, Path) else str(config), overrides)
    home = tsm_home()
    with stage("plan"):
        return plan_run(cfg, home, Registry.at_home(home))


def execute(plan: Plan, product_id: int | None = None, progress: Progress | None = None) -> RunResult:
    """Run a prepared training set and record it in the registry.

    ``product_id`` is for callers that registered the product themselves (the web
    service); a failure marks the product failed and leaves no output file.
    """
    registry = Registry.at_home(tsm_home())
    cfg = plan.config
    if product_id is None:
        product_id = registry.create_product(cfg.name, cfg.description, cfg.model_dump(mode="json"))
    log.info("training set %r: product ID %d", cfg.name, product_id)
    try:
        result = _execute(plan, product_id, progress)
    except BaseException as exc:
        registry.fail_product(product_id, str(exc) or type(exc).__name__)
        raise
    registry.finish_product(product_id, result.n_rows, str(result.output_path), result.provenance)
    log.info("wrote %d rows to %s", result.n_rows, result.output_path)
    return result


def run(
    config: RunConfig | dict[str, Any] | str | Path,
    *,
    overrides: list[str] | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Build one training set.

    ``config`` is a :class:`~tsm_core.config.RunConfig`, a dict of the same keys, or
    the path of a YAML file; ``overrides`` are ``key.sub=value`` strings applied on top.
    Returns a :class:`RunResult` with ``output_path``, ``n_rows`` and ``product_id``.
    Raises a :class:`~tsm_core.errors.TSMError` naming the bad value, before any work
    where it can; a run that fails later leaves no output file and is recorded as
    failed in the registry. ``progress(stage, done, total)`` is told how far it is.
    """
    return execute(prepare(config, overrides), progress=progress)
