"""One training-set run, top to bottom as the data flows:
plan -> match -> select -> finish -> write -> register.

:func:`run` is the whole of it. Every choice is resolved and checked in
:func:`plan_run` before any data is read, so that a wrong release, flux type,
dereddener, format, dust map or directory fails at once. :func:`match` gives the
matched rows lazily (crossmatch and photometry per partition), :func:`select` applies
the unique-galaxy rule, the split and the weights over the whole matched set,
:func:`finish` and :func:`write` turn each selected frame into the file's rows, and
:func:`execute` claims the output, runs those steps and records the product.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tsm_core import plugins

from tsm_core.science import layout

from tsm_core.compute import numba_cache

from tsm_core.science import representativeness
from tsm_core.compute.scheduler import dask_scheduler, stream
from tsm_core.config import RunConfig, load_config, tsm_home
from tsm_core.science.dust import describe_source
from tsm_core.errors import CatalogError, ConfigError, RunCancelled
from tsm_core.science.filters import parse_filters
from tsm_core.pipeline.funnel import Funnel, partition_index, record_match, sky_summary
from tsm_core.products.cancel import CancelToken, registry_poll
from tsm_core.products.recovery import recover_once
from tsm_core.catalogs.objects import check_margin, open_objects, read_schema
from tsm_core.products.output import check_directory, claim_output, open_sinks, output_file_name, writing_into
from tsm_core.redshifts.side import RedshiftSide, open_redshift_side
from tsm_core.products.registry import Registry
from tsm_core.science.selection import SPLIT_KEY_COLUMNS, Spool, assign_split, unique_galaxies
from tsm_core.columns import DIST_COLUMN, EBV_COLUMN, WEIGHT_COLUMN, ZROW_COLUMN
from tsm_core.science.photometry import Photometry
from tsm_core.plugins.records import CatalogLocation, ColumnInfo, ObjectCatalog, OutputMetadata, Writer

if TYPE_CHECKING:
    import lsdb

log = logging.getLogger(__name__)

#: progress callback: (stage, done, total)
Progress = Callable[[str, int, int], None]
SPLIT_COLUMN = "is_training"
FOLD_COLUMN = "fold"
#: the two files of ``output.split_files``: suffix of the file name -> rows written there
SPLIT_FILES = {"training": True, "validation": False}


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
    #: the redshift catalog's survey convention, and the rows dropped from it per reason
    convention: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    #: with ``output.split_files``: ``{"training": path, "validation": path}``
    output_paths: dict[str, Path] = field(default_factory=dict)
    #: where the redshifts went (:meth:`tsm_core.pipeline.funnel.Funnel.to_dict`)
    funnel: dict[str, Any] = field(default_factory=dict, repr=False)


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
    #: submitted to a shared service (:func:`tsm_core.service.submit`): the files show no server path
    served: bool = False

    @functools.cached_property
    def redshift_partitions(self) -> np.ndarray:
        """Each redshift's object partition (index into the object catalog's pixels), -1
        outside them all; found once, for the overlap check and the run's funnel."""
        keys = self.redshifts.keys
        return partition_index(self.objects.get_healpix_pixels(), keys["ra"].to_numpy(float), keys["dec"].to_numpy(float))


def locate_objects(release: ObjectCatalog, configured: str | None, home: Path) -> CatalogLocation:
    """Where the run's object catalog comes from; a synthetic sample only when asked for
    (``object_catalog.path: sample``) and built (``tsm sample RELEASE``)."""
    location = release.locate(configured, home)
    if location.source == "sample" and not Path(location.path).exists():
        raise CatalogError(
            f"the synthetic {release.name} sample is not built yet: run `tsm sample {release.name}` "
            f"(or `tsm run --sample`, which builds it)",
            "object_catalog.path",
        )
    if location.synthetic:
        log.warning("using the SYNTHETIC %s sample at %s", release.name, location.path)
    else:
        log.info("%s object catalog: %s (%s)", release.name, location.path, location.source)
    return location


def _versions() -> dict[str, str]:
    versions = {}
    for dist in ("tsm-core", "lsdb", "hats", "nested-pandas", "pyarrow", "pandas", "dask", "dustmaps"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions | plugins.plugin_versions()


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
    schema = read_schema(object_path)  # the object catalog's metadata, read once for every check
    if extra:
        _check_extra_columns(release, object_path, schema.names, photometry)
    layout.renames(photometry.column_info(), config.output)  # a layout the columns cannot take fails here
    rail = layout.rail_fill(config.output, release.mag_limits, release.name, bands)
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
    return Plan(config, release, object_path, objects, redshifts.label, redshifts, photometry, writer, output_dir,
                redshift_summary=summary, rail=rail, location=location, funnel=funnel)


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
        raise ConfigError("object_catalog.extra_columns", f"column(s) {', '.join(clash)} clash with output columns of the same name")


# -- match --------------------------------------------------------------------------------


def match(plan: Plan) -> tuple[list[Any], pd.DataFrame]:
    """The matched rows, lazily: the crossmatch of the redshifts (left) with the objects
    (right) and the photometry of each matched partition (LSDB's ``map_partitions``, which
    infers the columns by running the step on an empty frame). Returns one delayed task per
    partition and the empty frame that describes the rows."""
    numba_cache.enable(numba_cache.cache_dir(tsm_home()))
    cfg, release, objects = plan.config, plan.release, plan.objects
    if not (plan.redshift_partitions >= 0).any():  # from the partitions' pixels: LSDB would refuse catalogs that do not overlap
        if len(plan.redshifts):
            log.warning("no redshift lies in the %s object catalog's partitions: no matches", release.name)
        else:
            log.warning("no redshifts left to match")
        meta = pd.concat([plan.redshifts.meta(), objects.meta], axis=1)
        return [], plan.photometry(meta.assign(**{DIST_COLUMN: pd.Series(dtype="float64")}))
    xmatch = plan.redshifts.catalog(align_to=objects.get_healpix_pixels()).crossmatch(
        objects,
        n_neighbors=cfg.crossmatch.n_neighbors,
        radius_arcsec=cfg.crossmatch.radius_arcsec,
        require_right_margin=True,
        suffixes=("", "_object"),
        suffix_method="overlapping_columns",
    )
    matched = xmatch.map_partitions(plan.photometry)
    return list(matched.to_delayed()), matched.meta


# -- select -------------------------------------------------------------------------------


@dataclass
class Selection:
    """Which match rows are written, in the order they come, and their side of the split."""

    #: the kept rows, partition by partition
    frames: Iterator[pd.DataFrame]
    #: rows removed per unique-galaxy rule
    removed: dict[str, int] = field(default_factory=dict)
    #: ``is_training`` and fold of every kept row, in order (with a split)
    training: np.ndarray | None = None
    fold: np.ndarray | None = None
    #: the redshift row of every match before the rules; None when the matches stream
    #: straight to the writer (no rule, split or weights) and are counted as written
    matched_zrows: np.ndarray | None = None


def select(
    plan: Plan, frames: Iterator[pd.DataFrame], weigher: representativeness.Weigher | None,
    folder: Path, written: Any,
) -> Selection:
    """Apply the unique-galaxy rule, the split and the representativeness fit, which need the
    whole matched set: every match is spooled to ``folder`` (only its keys kept in memory) and
    replayed, kept rows only. Without any of them the matches stream straight through."""
    cfg, release = plan.config, plan.release
    if cfg.unique_galaxies == "none" and cfg.split is None and weigher is None:
        return Selection(frames)
    key_columns = [ZROW_COLUMN, release.id_column, DIST_COLUMN, "z_flag", "z_err"]
    key_columns += [c for c in (SPLIT_KEY_COLUMNS if cfg.split else []) if c not in key_columns]
    key_columns += [c for c in (weigher.key_columns if weigher else []) if c not in key_columns]
    spool = Spool(folder, key_columns)
    with stage("match and photometry (spooled for selection)"):
        for frame in frames:
            with written:
                spool.add(frame)
    keys = spool.all_keys()
    mask, removed = unique_galaxies(keys, cfg.unique_galaxies, ZROW_COLUMN, release.id_column)
    for rule, count in removed.items():
        log.info("unique galaxies (%s): removed %d rows %s", cfg.unique_galaxies, count, rule)
    training = fold = None
    if cfg.split:
        with stage(f"split ({cfg.split.method})"):
            training, fold = assign_split(keys[mask], release.id_column, cfg.split)
    if weigher:
        weigher.fit(keys[mask])
    return Selection(spool.replay(mask), removed, training, fold, keys[ZROW_COLUMN].to_numpy())


# -- finish and write ------------------------------------------------------------------------


def _column_info(plan: Plan) -> dict[str, ColumnInfo]:
    info = plan.photometry.column_info()
    for name, longest in plan.redshifts.string_lengths.items():  # for fixed-width formats
        info[name] = replace(info[name], max_length=longest)
    if plan.config.split:
        s = plan.config.split
        how = f"{s.method}" + (f" order {s.healpix_order}" if s.method == "healpix" else "")
        how += f", {s.k} folds, fold {s.validation_fold} is validation" if s.k else f", fraction {s.train_fraction}"
        how += f", stratified in {s.z_bins} z bins" if s.stratify else ""
        info[SPLIT_COLUMN] = ColumnInfo("", f"training (true) or validation (false); {how}, seed {s.seed}; "
                                        "all rows of an object and of a redshift id on one side")
        if s.k:
            info[FOLD_COLUMN] = ColumnInfo("", f"fold 0..{s.k - 1} of the {s.method} split")
    if plan.config.representativeness:
        how = representativeness.describe(plan.config.representativeness)
        info[WEIGHT_COLUMN] = ColumnInfo("", f"k-nearest-neighbour weight to the photometric sample (Lima et al. 2008), {how}")
    return info


def _with_split(frame: pd.DataFrame, config: RunConfig, training: np.ndarray, fold: np.ndarray | None) -> pd.DataFrame:
    """``frame`` with the split columns of ``config`` (values for its rows)."""
    if not config.split:
        return frame
    columns: dict[str, Any] = {SPLIT_COLUMN: training}
    if config.split.k:
        columns[FOLD_COLUMN] = fold if fold is not None else np.zeros(len(frame), dtype=np.int64)
    return frame.assign(**columns)


@dataclass
class _Finisher:
    """Turns a matched, selected frame into the Arrow table that is written."""

    config: RunConfig
    info: dict[str, ColumnInfo]
    schema: pa.Schema | None = None
    rail: layout.RailFill | None = None

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame as written: split columns already added, internal columns dropped."""
        return layout.apply(frame.drop(columns=[ZROW_COLUMN]), self.info, self.config.output, self.rail)

    def table(self, frame: pd.DataFrame) -> pa.Table:
        table = pa.Table.from_pandas(self.frame(frame), schema=self.schema, preserve_index=False)
        return table.replace_schema_metadata(None) if self.schema is None else table


def finish(
    frame: pd.DataFrame, config: RunConfig, selection: Selection, start: int, weigher: representativeness.Weigher | None
) -> pd.DataFrame:
    """A selected frame (rows ``start`` onwards of the written set) with its split columns and weights."""
    if config.split:
        assert selection.training is not None
        at = slice(start, start + len(frame))
        frame = _with_split(frame, config, selection.training[at], None if selection.fold is None else selection.fold[at])
    return weigher.apply(frame) if weigher else frame


@dataclass
class Written:
    """What was written: the redshift row, separation and (with a split) side of every row."""

    zrows: list[np.ndarray] = field(default_factory=list)
    distances: list[np.ndarray] = field(default_factory=list)
    sides: list[np.ndarray] = field(default_factory=list)
    n_rows: int = 0

    def add(self, frame: pd.DataFrame) -> None:
        self.zrows.append(frame[ZROW_COLUMN].to_numpy())
        self.distances.append(frame[DIST_COLUMN].to_numpy(dtype=float))
        if SPLIT_COLUMN in frame.columns:
            self.sides.append(frame[SPLIT_COLUMN].to_numpy())
        self.n_rows += len(frame)

    def all_zrows(self) -> np.ndarray:
        return np.concatenate(self.zrows) if self.zrows else np.zeros(0, np.int64)

    def median_separation(self) -> float | None:
        dist = np.concatenate(self.distances) if self.distances else np.zeros(0)
        return float(np.median(dist)) if len(dist) else None


def write(
    plan: Plan, selection: Selection, finisher: _Finisher, weigher: representativeness.Weigher | None,
    sinks: dict[str | None, Any], written: Any, cancel: CancelToken,
) -> Written:
    """Finish each selected frame and write it to its sink (one, or one per side of the split)."""
    out = Written()
    with stage("match, photometry and write"):
        for frame in selection.frames:
            cancel.check()
            frame = finish(frame, plan.config, selection, out.n_rows, weigher)
            out.add(frame)
            parts = {None: frame} if None in sinks else {
                side: frame[frame[SPLIT_COLUMN].to_numpy() == is_training] for side, is_training in SPLIT_FILES.items()}
            for side, part in parts.items():
                table = finisher.table(part)
                with written:
                    sinks[side].write(table)
    return out


# -- what the run found: funnel, provenance, file names -----------------------------------


def _run_provenance(
    plan: Plan, selection: Selection, out: Written, weigher: representativeness.Weigher | None,
    finals: dict[str | None, Path],
) -> dict[str, Any]:
    """What the run found, for the provenance: counts, the funnel, the sky, the file names."""
    cfg = plan.config
    written_rows = out.all_zrows()
    matched = written_rows if selection.matched_zrows is None else selection.matched_zrows
    counts: dict[str, Any] = {"redshifts": len(plan.redshifts), "matched": len(matched), "rows": out.n_rows,
                              "removed": selection.removed}
    if cfg.split:
        counts["training"] = int(selection.training.sum()) if selection.training is not None else 0
        counts["validation"] = out.n_rows - counts["training"]
        if selection.fold is not None:
            counts["folds"] = np.bincount(selection.fold, minlength=cfg.split.k).tolist()
    sky = _finish_funnel(plan, matched, selection.removed, written_rows, _split_flags(out.sides) if cfg.split else None,
                         weigher)
    prov: dict[str, Any] = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": counts,
        "funnel": plan.funnel.to_dict(),
        "sky": sky,
        "output_file": finals[None].name if None in finals else finals["training"].name,
    }
    if None not in finals:
        prov["output_files"] = {side: path.name for side, path in finals.items()}
    if weigher:
        prov["representativeness"] = weigher.summary
    return prov


def _split_flags(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _partition_rows(path: str, pixels: list[Any]) -> list[int] | None:
    """Rows of each partition before any cut, from the HATS metadata (None where unreadable);
    read apart from the run's filtered catalog, whose statistics HATS rightly calls modified."""
    import hats

    try:
        opened = hats.read_hats(path)
        main = getattr(opened, "main_catalog", opened)
        stats = main.per_partition_statistics(include_stats=["row_count"])  # one column per data column
        counts = dict(zip(stats.index, stats.iloc[:, 0]))  # (the spatial index has none: not the schema's first)
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
    pixels = plan.objects.get_healpix_pixels()
    cfg = plan.config
    idx = plan.redshift_partitions
    record_match(plan.funnel, plan.redshifts.keys, ZROW_COLUMN, idx >= 0, matched, removed, written, training,
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
    return sky_summary(pixels, rows, idx, kept)


def _provenance(plan: Plan, product_id: int, started: str) -> dict[str, Any]:
    cfg, release = plan.config, plan.release
    prov: dict[str, Any] = {
        "product_id": product_id,
        "name": cfg.name,
        "description": cfg.description,
        "config": cfg.model_dump(mode="json"),
        "release": release.name,
        "object_catalog_path": plan.object_path,
        "object_catalog_source": plan.location.source if plan.location else "config",
        "synthetic_sample": bool(plan.location and plan.location.synthetic),
        "redshift_catalog": plan.redshift_source,
        "redshift_convention": plan.redshift_summary.get("convention"),
        "redshift_rows": plan.redshift_summary,
        "object_extra_columns": list(plan.photometry.extra_columns),
        "flux_type": plan.photometry.flux_type,
        "flux_unit": release.flux_unit,
        "zero_point": release.zero_point,
        "dereddening": plan.photometry.ebv_description,
        "versions": _versions(),
        "started_at": started,
    }
    if plan.photometry.ebv is not None:
        prov["extinction_coefficients"] = plan.photometry.coefficients
        prov["extinction_source"] = _extinction_source(release, cfg.object_catalog.extinction_coefficients, plan.photometry.bands)
    if plan.rail is not None:
        prov["rail_layout"] = plan.rail.provenance()
    if plan.served:  # what a shared service's client downloads names no server location
        from tsm_core.service import public_config

        prov["config"] = public_config(prov["config"])
        del prov["object_catalog_path"]
        source = cfg.redshift_catalog
        prov["redshift_catalog"] = f"registered catalog {source.name!r}" if source.name else f"registered catalog {source.id}"
    return prov


def _extinction_source(release: ObjectCatalog, overrides: dict[str, float] | None, bands: tuple[str, ...]) -> str:
    """Where the A_b/E(B-V) coefficients came from, saying which bands the config overrode."""
    mine = [b for b in bands if b in (overrides or {})]
    if not mine:
        return release.extinction_source
    if len(mine) == len(bands):
        return f"object_catalog.extinction_coefficients (user-supplied for {', '.join(mine)})"
    others = [b for b in bands if b not in mine]
    return (
        f"object_catalog.extinction_coefficients (user-supplied) for {', '.join(mine)}; "
        f"{', '.join(others)}: {release.extinction_source}"
    )


def _output_files(plan: Plan, product_id: int) -> dict[str | None, Path]:
    """Final path per side: ``{None: path}``, or one per side with ``output.split_files``."""
    cfg = plan.config
    extension = layout.file_extension(plan.writer.extension, cfg.output)
    if not cfg.output.split_files:
        return {None: plan.output_dir / output_file_name(cfg.name, product_id, extension)}
    stem = output_file_name(cfg.name, product_id, extension).rsplit(".", 1)[0]
    return {side: plan.output_dir / f"{stem}_{side}.{extension}" for side in SPLIT_FILES}


# -- the run: claims, staging, the steps above, the registry ------------------------------


def _compute_and_write(
    plan: Plan, product_id: int, progress: Progress | None, cancel: CancelToken,
    finals: dict[str | None, Path], staged: dict[str | None, Path], started: str,
) -> RunResult:
    """match -> select -> finish and write, streaming partitions through the chosen scheduler."""
    cfg = plan.config
    with stage("crossmatch graph"):
        tasks, meta = match(plan)
        info = _column_info(plan)
        finisher = _Finisher(cfg, info, rail=plan.rail)
        weigher = representativeness.Weigher(plan.photometry, cfg.representativeness) if cfg.representativeness else None
        empty = weigher.apply(meta.iloc[:0]) if weigher else meta.iloc[:0]
        finisher.schema = finisher.table(_with_split(empty, cfg, np.zeros(0, dtype=bool), None)).schema
    metadata = OutputMetadata(
        cfg.name, cfg.description, product_id, layout.column_info(info, cfg.output), _provenance(plan, product_id, started)
    )

    def report(done: int) -> None:
        if progress:
            progress("crossmatch", done, len(tasks))

    written = writing_into(plan.output_dir)  # a full disk: one line naming the folder and its free space
    with dask_scheduler(cfg.compute) as scheduler, closing(
        stream(tasks, in_flight=scheduler.in_flight, on_done=report, scheduler=scheduler, cancel=cancel)
    ) as computed:  # closed on any exit: computations in flight are dropped at once
        if weigher:
            with stage("photometric sample"):
                cuts = [*representativeness.release_cut_filters(plan.release.default_filters),
                        *parse_filters(cfg.filters.object, "filters.object")]
                weigher.sample(plan.object_path, list(plan.objects.columns), cuts, scheduler.in_flight,
                               scheduler=scheduler, cancel=cancel)
        matched = (pd.DataFrame(frame) for frame in computed)  # LSDB hands NestedFrames: plain frames from here
        selection = select(plan, matched, weigher, next(iter(staged.values())).parent, written)
        with open_sinks(plan.writer, staged, finisher.schema, metadata, cfg.output, written) as sinks:
            out = write(plan, selection, finisher, weigher, sinks, written, cancel)
            metadata.provenance.update(_run_provenance(plan, selection, out, weigher, finals))
    counts = metadata.provenance["counts"]
    return RunResult(
        product_id=product_id,
        output_path=finals[None] if None in finals else finals["training"],
        n_rows=out.n_rows,
        n_redshifts=len(plan.redshifts),
        n_matched=counts["matched"],
        removed=selection.removed,
        median_separation_arcsec=out.median_separation(),
        provenance=metadata.provenance,
        convention=plan.redshift_summary.get("convention"),
        dropped=dict(plan.redshift_summary.get("rows_dropped") or {}),
        output_paths={side: path for side, path in finals.items() if side is not None},
        funnel=plan.funnel.to_dict(),
    )


def _execute(
    plan: Plan, product_id: int, progress: Progress | None, registry: Registry, cancel: CancelToken
) -> RunResult:
    """Claim the output names, compute and write into one staging folder, then move the
    finished files into place; whatever happens, the claims and the staging folder go."""
    cfg = plan.config
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    finals = _output_files(plan, product_id)
    owner = {"product_id": product_id, "registry": str(registry.path)}
    with ExitStack() as held:
        claims = {}
        for side, final in finals.items():
            claims[side] = claim_output(final, cfg.output.overwrite, owner)
            held.callback(claims[side].release)
        first = next(iter(claims.values()))
        folder = first.stage().parent
        staged = {side: folder / final.name for side, final in finals.items()}
        registry.set_files(product_id, str(first.final), str(first.staging), str(first.claim))
        cancel.check()
        result = _compute_and_write(plan, product_id, progress, cancel, finals, staged, started)
        for side, claim in claims.items():
            claim.commit(staged[side])
        return result


def prepare(config: RunConfig | dict[str, Any] | str | Path, overrides: list[str] | None = None) -> Plan:
    """Validate ``config`` and resolve every choice, reading only the redshift catalog.

    Raises a :class:`~tsm_core.errors.TSMError` naming the bad value; nothing is
    registered or written. :func:`execute` then does the work.
    """
    cfg = load_config(config if not isinstance(config, Path) else str(config), overrides)
    home = tsm_home()
    with stage("plan"):
        return plan_run(cfg, home, Registry.at_home(home))


def execute(
    plan: Plan, product_id: int | None = None, progress: Progress | None = None, cancel: CancelToken | None = None
) -> RunResult:
    """Run a prepared training set and record it in the registry.

    ``product_id`` is for callers that registered the product themselves, queued (the
    web service); a failure marks the product failed and leaves no output file.
    ``cancel`` (a :class:`~tsm_core.products.cancel.CancelToken`) stops the run at its next
    partition: the product ends ``cancelled`` (or ``failed``, as the token says) and
    :class:`~tsm_core.errors.RunCancelled` is raised. A cancel asked through the
    registry (``tsm products cancel``) stops it the same way.
    """
    registry = Registry.at_home(tsm_home())
    recover_once(registry)
    cfg = plan.config
    if product_id is None:
        product_id = registry.create_product(cfg.name, cfg.description, cfg.model_dump(mode="json"))
    elif not registry.start_product(product_id):
        raise RunCancelled(f"training set {product_id} was cancelled before it started")
    token = CancelToken(poll=registry_poll(registry, product_id), parent=cancel)
    log.info("training set %r: product ID %d", cfg.name, product_id)
    try:
        result = _execute(plan, product_id, progress, registry, token)
    except RunCancelled as exc:
        registry.fail_product(product_id, str(exc), exc.status)
        raise
    except KeyboardInterrupt:
        registry.fail_product(product_id, "cancelled (KeyboardInterrupt)", "cancelled")
        raise
    except BaseException as exc:
        if token.is_set():  # a failure caused by the stop (workers hit by Ctrl-C while starting)
            registry.fail_product(product_id, token.reason, token.status)
            raise RunCancelled(token.reason, token.status) from exc
        registry.fail_product(product_id, str(exc) or type(exc).__name__)
        raise
    registry.finish_product(product_id, result.n_rows, str(result.output_path), result.provenance)
    log.info("wrote %d rows to %s", result.n_rows, result.output_path)
    return result


def _without_nulls(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_nulls(v) for k, v in data.items() if v is not None}
    return data


def product_config(product_id: int) -> dict[str, Any]:
    """The stored config of product ``product_id``, unset keys left out (ready for overrides)."""
    return _without_nulls(Registry.at_home(tsm_home()).product(product_id).config)


def rerun(
    product_id: int, *, overrides: list[str] | None = None, progress: Progress | None = None
) -> RunResult:
    """Build again, as a new product, the training set of product ``product_id``.

    Its stored config is used, with ``overrides`` (``key.sub=value``) applied on top.
    A product made from a registered redshift catalog re-runs from the catalog's stored
    copy, even after the original file was moved or deleted.
    """
    return run(product_config(product_id), overrides=overrides, progress=progress)


def run(
    config: RunConfig | dict[str, Any] | str | Path,
    *,
    overrides: list[str] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> RunResult:
    """Build one training set.

    ``config`` is a :class:`~tsm_core.config.RunConfig`, a dict of the same keys, or
    the path of a YAML file; ``overrides`` are ``key.sub=value`` strings applied on top.
    Returns a :class:`RunResult` with ``output_path``, ``n_rows`` and ``product_id``.
    Raises a :class:`~tsm_core.errors.TSMError` naming the bad value, before any work
    where it can; a run that fails later leaves no output file and is recorded as
    failed in the registry. ``progress(stage, done, total)`` is told how far it is;
    ``cancel`` (a :class:`~tsm_core.products.cancel.CancelToken`) stops it cleanly.
    """
    return execute(prepare(config, overrides), progress=progress, cancel=cancel)
