"""The id index of an imported collection (``object_lc_objectId``): a HATS index catalog
written without Dask, one partition read at a time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def write_index(
    collection: Path,
    primary: str,
    name: str,
    column: str,
    rows_per_file: int = 4_000_000,
    ids: Mapping[Any, Any] | None = None,
) -> int:
    """Write the id index ``name`` of catalog ``primary`` inside ``collection`` (a HATS index
    catalog: ``column``, ``Norder``, ``Npix`` in Parquet files sorted by ``column``) and
    name it in ``collection.properties`` (``all_indexes``). Reads one partition at a time, or
    takes ``ids``: each partition's ids (an Arrow array by HEALPix pixel), for a catalog just
    written from memory.

    hats-import's own index pipeline refuses Python 3.11 with a Dask newer than 2025.3
    (a dask-expr regression in its ``set_index``), which lsdb 0.11 needs; this writes the
    same catalog without Dask."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from hats.catalog import PartitionInfo, TableProperties
    from hats.catalog.dataset.collection_properties import CollectionProperties
    from hats.io import parquet_metadata

    base = collection / primary
    pixels = list(ids) if ids is not None else PartitionInfo.read_from_dir(base).get_healpix_pixels()
    read = _partition_ids(base, column) if ids is None else ids.__getitem__
    out = collection / name
    data_dir = out / "dataset" / "index"
    data_dir.mkdir(parents=True, exist_ok=True)
    pending: list[pa.Table] = []
    n_pending = n_rows = n_files = 0

    def flush() -> None:
        nonlocal pending, n_pending, n_files
        if not pending:
            return
        table = pa.concat_tables(pending).sort_by(column)
        pq.write_table(
            table, data_dir / f"part.{n_files}.parquet", sorting_columns=[pq.SortingColumn(0)], data_page_size=16 * 1024
        )
        n_files += 1
        pending, n_pending = [], 0

    for pixel in pixels:
        part = read(pixel)
        n = len(part)
        pending.append(
            pa.table(
                {
                    column: part,
                    "Norder": pa.array(np.full(n, pixel.order, np.uint8)),
                    "Npix": pa.array(np.full(n, pixel.pixel, np.uint64)),
                }
            )
        )
        n_pending += n
        n_rows += n
        if n_pending >= rows_per_file:
            flush()
    flush()
    # hats declares some defaults inside Annotated[...], which the pydantic mypy plugin does not see
    TableProperties(
        catalog_name=name,
        catalog_type="index",
        total_rows=n_rows,
        primary_catalog=primary,  # type: ignore[call-arg]
        indexing_column=column,
    ).to_properties_file(out)
    parquet_metadata.write_parquet_metadata(out, order_by_healpix=False)
    props = CollectionProperties.read_from_dir(collection)
    indexes = dict(props.all_indexes or {}) | {column: name}
    props.model_copy(update={"all_indexes": indexes}).to_properties_file(collection)
    return n_rows


def _partition_ids(base: Path, column: str) -> Callable[[Any], Any]:
    """Reads ``column`` of one partition of the catalog at ``base``."""
    import pyarrow.parquet as pq
    from hats.catalog import TableProperties
    from hats.io import paths

    suffix = TableProperties.read_from_dir(base).npix_suffix
    return lambda pixel: pq.read_table(
        paths.pixel_catalog_file(base, pixel, npix_suffix=suffix), columns=[column]
    ).column(column)
