"""``tsm import``: turn a user's own Object table into the HATS collection a run needs.

:func:`import_objects` reads Parquet, FITS or CSV files (a file, a folder of them or a
glob) in chunks with `hats-import <https://hats-import.readthedocs.io>`_ on a local Dask
cluster and writes a collection laid out as the release publishes it (DP1 and DP2:
``object_lc``, its 5 arcsec margin ``object_lc_5arcs`` and the id index
``object_lc_objectId``, named in ``collection.properties``). The id, RA and Dec columns
of the release are checked before anything is written, and the collection is written
into a staging folder (:func:`tsm_core.products.staging.owned_staging`, removed on any exit
and, after a SIGKILL, by the next import into the same folder) that is moved into place
only when complete.

Memory stays bounded whatever the number of rows: files are read ``chunk_rows`` rows at a
time, and partitions are cut so that one holds about ``partition_bytes`` of data (hats-import
reduces one partition at a time per worker).
"""

from __future__ import annotations

import glob
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsm_core.catalogs.in_process import IN_PROCESS_ROWS, count_rows, read_whole, write_in_process
from tsm_core.catalogs.index import write_index
from tsm_core.errors import CatalogError, ConfigError
from tsm_core.plugins.locations import CollectionLayout
from tsm_core.plugins.records import ObjectCatalog
from tsm_core.products.staging import owned_staging, sweep_staging

log = logging.getLogger(__name__)

#: file name endings read by each format
FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".parq", ".pq"),
    "fits": (".fits", ".fit", ".fits.gz"),
    "csv": (".csv", ".csv.gz", ".csv.bz2"),
}
DEFAULT_MARGIN_ARCSEC = 5.0
DEFAULT_CHUNK_ROWS = 250_000
DEFAULT_PARTITION_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_objects` wrote: the collection ``path``, its row and partition counts,
    the margin width and the names of its parts."""

    path: Path
    n_rows: int
    n_partitions: int
    margin_arcsec: float
    layout: CollectionLayout


def _format_of(path: str) -> str | None:
    lower = path.lower()
    for name, endings in FORMATS.items():
        if lower.endswith(endings):
            return name
    return None


def input_files(inputs: Sequence[str | Path]) -> tuple[list[str], str]:
    """The files named by ``inputs`` (files, folders, globs) and their common format."""
    files: list[str] = []
    for item in inputs:
        text = str(item)
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.is_file() and _format_of(p.name))
        elif any(c in text for c in "*?["):
            found = sorted(f for f in glob.glob(str(path)) if Path(f).is_file() and _format_of(f))
        elif path.is_file():
            found = [str(path)]
        else:
            raise CatalogError("input", f"{text}: no such file or folder")
        if not found:
            raise CatalogError("input", f"{text}: no {', '.join(FORMATS)} files there")
        files += found
    if not files:
        raise CatalogError("input", "no input files given")
    kinds = [_format_of(f) for f in files]
    if None in kinds:
        bad = next(f for f, kind in zip(files, kinds) if kind is None)
        endings = ", ".join(e for es in FORMATS.values() for e in es)
        raise CatalogError("input", f"{bad}: unknown file type; tsm import reads {endings}")
    formats = {kind for kind in kinds if kind is not None}
    if len(formats) > 1:
        raise CatalogError(
            "input", f"the input files mix formats ({', '.join(sorted(formats))}); import one format at a time"
        )
    return list(dict.fromkeys(files)), formats.pop()


def _schema(path: str, fmt: str) -> tuple[list[str], int]:
    """Column names of a file and an estimate of the bytes of one row."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        width = 0
        for f in schema:
            try:
                width += f.type.bit_width // 8
            except ValueError:  # strings, lists, structs: no fixed width
                width += 32
        return list(schema.names), max(width, 8)
    if fmt == "fits":
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:
            hdu = next((h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
            if hdu is None:
                raise CatalogError("input", f"{path}: no table HDU")
            return list(hdu.columns.names), max(int(hdu.header.get("NAXIS1", 8)), 8)
    import pandas as pd

    head = pd.read_csv(path, nrows=100)
    return list(head.columns), max(int(head.memory_usage(index=False, deep=True).sum() / max(len(head), 1)), 8)


def check_input_columns(
    release: ObjectCatalog, files: Sequence[str], fmt: str, columns: dict[str, str] | None = None
) -> int:
    """Fail, naming the file and the missing column, unless every file has the release's
    id, RA and Dec columns; returns the estimated bytes per row."""
    columns = columns or {}
    needed = {
        role: columns.get(role) or default
        for role, default in (("id", release.id_column), ("ra", release.ra_column), ("dec", release.dec_column))
    }
    width = 8
    for path in files:
        present, width = _schema(path, fmt)
        missing = [f"{name} ({role})" for role, name in needed.items() if name not in present]
        if missing:
            shown = ", ".join(present[:12]) + (f", ... ({len(present)} columns)" if len(present) > 12 else "")
            raise CatalogError(
                "input",
                f"{path} lacks the {release.name} column(s) {', '.join(missing)}; its columns: {shown} "
                f"(rename them, or choose another --release)",
            )
    return width


def _margin_name(layout: CollectionLayout, margin_arcsec: float) -> str:
    if margin_arcsec == layout.margin_arcsec:
        return layout.margin
    return f"{layout.primary}_{margin_arcsec:g}arcs"


def write_collection(
    files: Sequence[str],
    fmt: str,
    out: Path,
    release: ObjectCatalog,
    *,
    margin_arcsec: float = DEFAULT_MARGIN_ARCSEC,
    partition_rows: int = 1_000_000,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    default_columns: Sequence[str] | None = None,
    highest_order: int = 10,
    client: Any,
    progress: bool = False,
    name: str | None = None,
) -> Path:
    """Write ``files`` as a collection in the release's published layout at ``out``, with
    hats-import on ``client`` (a ``dask.distributed.Client``). ``out`` must not exist;
    a failure leaves nothing there."""
    from hats_import.catalog.file_readers import get_file_reader
    from hats_import.collection.arguments import CollectionArguments
    from hats_import.pipeline import pipeline_with_client

    from tsm_core.compute import numba_cache
    from tsm_core.config import tsm_home

    numba_cache.enable(numba_cache.cache_dir(tsm_home()))
    layout = release.collection or CollectionLayout(index_column=release.id_column)
    out = Path(out)
    staging = out.parent / f".{out.name}.importing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    extra = {"hats_cols_default": list(default_columns)} if default_columns else None
    try:
        args = (
            CollectionArguments(
                output_artifact_name=staging.name,
                output_path=str(staging.parent),
                tmp_dir=str(staging.parent / f".{out.name}.tmp"),
                progress_bar=progress,
                resume=False,
            )
            .catalog(
                input_file_list=list(files),
                file_reader=get_file_reader(fmt, chunksize=chunk_rows),
                ra_column=release.ra_column,
                dec_column=release.dec_column,
                output_artifact_name=layout.primary,
                pixel_threshold=partition_rows,
                highest_healpix_order=highest_order,
                addl_hats_properties=extra,
            )
            .add_margin(
                margin_threshold=margin_arcsec,
                output_artifact_name=_margin_name(layout, margin_arcsec),
                is_default=True,
            )
        )
        pipeline_with_client(args, client)
        props = staging / "collection.properties"
        if not props.is_file():
            raise CatalogError("", f"hats-import did not finish the collection in {staging}")
        if layout.index:
            write_index(staging, layout.primary, layout.index, release.id_column)
        # the collection is named after its folder, not after the staging folder
        props.write_text(props.read_text().replace(f"={staging.name}\n", f"={name or out.name}\n"))
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging.parent / f".{out.name}.tmp", ignore_errors=True)
    return out


def import_objects(
    inputs: Sequence[str | Path],
    out: str | Path,
    release: ObjectCatalog,
    *,
    margin_arcsec: float = DEFAULT_MARGIN_ARCSEC,
    n_workers: int = 1,
    memory_limit: str = "auto",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    partition_bytes: int = DEFAULT_PARTITION_BYTES,
    overwrite: bool = False,
    progress: bool = False,
    in_process_rows: int = IN_PROCESS_ROWS,
) -> ImportResult:
    """Import a user's object table(s) as a HATS collection for ``release`` at ``out``.

    ``inputs``: files, folders or globs of Parquet, FITS or CSV files with the release's
    id, RA and Dec columns (checked first). Inputs of at most ``in_process_rows`` rows are
    read whole and written in this process (:mod:`tsm_core.catalogs.in_process`); larger ones
    run hats-import on a local Dask cluster of ``n_workers`` processes (one thread each,
    ``memory_limit`` each); see the module doc.
    """
    import hats

    if margin_arcsec <= 0:
        raise ConfigError("margin_arcsec", f"must be > 0, not {margin_arcsec}")
    out = Path(out).expanduser().resolve()
    if out.exists() and not overwrite:
        raise CatalogError("out", f"{out} already exists; choose another folder or pass --overwrite")
    files, fmt = input_files(inputs)
    width = check_input_columns(release, files, fmt)
    partition_rows = max(10_000, partition_bytes // width)
    log.info(
        "importing %d %s file(s) into %s (partitions of at most %d rows, margin %g arcsec)",
        len(files),
        fmt,
        out,
        partition_rows,
        margin_arcsec,
    )
    layout = release.collection or CollectionLayout(index_column=release.id_column)
    n_input = count_rows(files, fmt, limit=in_process_rows)
    sweep_staging(out.parent)  # what an import killed by SIGKILL left beside --out
    with owned_staging(out.parent, "import") as staging:  # removed on any exit, SIGTERM included
        if n_input <= in_process_rows:
            log.info("%d rows: imported in this process, without a Dask cluster", n_input)
            staged = write_in_process(
                read_whole(files, fmt),
                staging / out.name,
                release,
                layout,
                margin_arcsec,
                _margin_name(layout, margin_arcsec),
                progress,
            )
            _name_collection(staged, out.name)
        else:
            staged = _import_on_cluster(
                files,
                fmt,
                staging / out.name,
                release,
                margin_arcsec=margin_arcsec,
                partition_rows=partition_rows,
                chunk_rows=chunk_rows,
                progress=progress,
                name=out.name,
                n_workers=n_workers,
                memory_limit=memory_limit,
            )
        if out.exists():  # --overwrite: the old collection goes into the staging folder, then away
            out.rename(staging / "replaced")
        staged.rename(out)
    main: Any = hats.read_hats(out / layout.primary)  # a Catalog (its declared type is a union)
    return ImportResult(out, int(main.catalog_info.total_rows), len(main.get_healpix_pixels()), margin_arcsec, layout)


def _import_on_cluster(*args: Any, n_workers: int, memory_limit: str, **kwargs: Any) -> Path:
    """:func:`write_collection` on a local Dask cluster of ``n_workers`` processes, closed on return."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, memory_limit=memory_limit, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        return write_collection(*args, client=client, **kwargs)


def _name_collection(collection: Path, name: str) -> None:
    """Name ``collection`` ``name`` in its ``collection.properties`` (``obs_collection``)."""
    props = collection / "collection.properties"
    head, *lines = [line for line in props.read_text().splitlines() if not line.startswith("obs_collection=")]
    props.write_text("\n".join([head, f"obs_collection={name}", *lines]) + "\n")
