"""A small in-memory table written as a HATS collection in this process: no Dask graph.

``lsdb.from_dataframe(...).write_catalog(...)`` costs a second or more whatever the size of the
table: it converts every partition's columns one by one, finds the margin with a Python loop
over the border pixels of every partition (:mod:`tsm_core.catalogs.margins` has the vectorized
equivalent), runs a Dask graph to write the partitions, then reads every file back to write
``_metadata`` and ``per_partition_statistics.parquet``. :func:`write_collection` writes the
same collection directly: the table converted to Arrow once (as LSDB converts it), each
partition's rows taken from it (in the table's order, as LSDB keeps them) and written with
HATS' Parquet settings, ``_metadata`` from the footers just written, ``_common_metadata``,
``partition_info.csv``, the point map and sky map, ``hats.properties`` and
``collection.properties``. It opens with ``hats.read_hats`` and ``lsdb.open_catalog`` as
LSDB's own output does, with the same partitions, rows and column types; its Parquet files
are LSDB's byte for byte. Only HATS is imported (LSDB's import alone is a second).

Every public function imports ``hats`` whole before any of its submodules: a submodule imported
alone while another thread imports the package (``tsm serve`` warms its run path in a thread)
finds the package half made and fails with a circular import.

Not written: ``per_partition_statistics.parquet`` (HATS reads the same statistics from
``_metadata`` when it is absent) and the data thumbnail (LSDB does not write one either).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.catalogs.margins import margin_rows
from tsm_core.science.sphere import SPATIAL_ORDER

SPATIAL_INDEX_COLUMN = "_healpix_29"
#: the lowest order of the point map (LSDB's and hats-import's default)
SKYMAP_ORDER = 8


@dataclass
class SkyPartitions:
    """A table cut into HEALPix partitions: the rows stay in the table's order."""

    #: the table's columns as Arrow (as LSDB converts them) and the spatial index, last
    table: Any
    spatial: np.ndarray
    #: the partitions, in HATS' order, and the row numbers of each, in the table's order
    pixels: list[Any]
    rows: list[np.ndarray]
    #: the index into :attr:`pixels` of each row's partition
    home: np.ndarray


def _arrow_table(frame: pd.DataFrame, spatial: np.ndarray) -> Any:
    """``frame`` as LSDB's ``from_dataframe`` converts it (a named index becomes a column, each
    column by ``pyarrow.array(..., from_pandas=True)``), with the spatial index appended."""
    import pyarrow as pa

    if frame.index.name is not None or any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    columns = {str(name): pa.array(frame[name], from_pandas=True) for name in frame.columns}
    columns[SPATIAL_INDEX_COLUMN] = pa.array(spatial, type=pa.int64())
    return pa.table(columns)


def partition(frame: pd.DataFrame, ra: str, dec: str, *, rows_per_partition: int) -> SkyPartitions:
    """Cut ``frame`` into partitions as LSDB's ``from_dataframe`` does (HATS' alignment of the
    row counts at order 7, ``rows_per_partition`` at most, empty siblings dropped; deeper where a
    pixel of order 7 holds more rows than a partition, where LSDB refuses the table:
    :func:`tsm_core.redshifts.partitioning.sky_pixels`), the rows of each in the table's order."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats
    from hats.pixel_math.spatial_index import compute_spatial_index

    from tsm_core.redshifts.partitioning import partition_of, sky_pixels

    spatial = compute_spatial_index(frame[ra].to_numpy(dtype=float), frame[dec].to_numpy(dtype=float))
    pixels = sky_pixels(spatial, rows_per_partition)
    home = partition_of(pixels, spatial).astype(np.int64)
    order = np.argsort(home, kind="stable")  # each partition's rows in the table's order
    rows = np.split(order, np.cumsum(np.bincount(home, minlength=len(pixels)))[:-1])
    kept = [i for i, r in enumerate(rows) if len(r)]  # as LSDB writes them: no empty partition
    if len(kept) < len(pixels):
        renumber = np.full(len(pixels), -1, dtype=np.int64)
        renumber[kept] = np.arange(len(kept))
        pixels, rows, home = [pixels[i] for i in kept], [rows[i] for i in kept], renumber[home]
    return SkyPartitions(_arrow_table(frame, spatial), spatial, pixels, rows, home)


def _write_files(
    base: Path, table: Any, pixels: list[Any], rows: list[np.ndarray], progress: str | None = None
) -> list[Any]:
    """Each partition's rows as ``dataset/Norder=K/Dir=D/Npix=N.parquet`` with HATS' Parquet
    settings (as LSDB writes a partition); returns their footers, pixel by pixel. ``progress``:
    the label of a progress bar on stderr (LSDB's), none if None."""
    import pyarrow.parquet as pq
    from hats.io import paths
    from hats.io.file_io.file_io import get_parquet_write_table_kwargs
    from tqdm.auto import tqdm

    options = get_parquet_write_table_kwargs(table.schema)
    options.pop("row_group_size", None)
    footers = []
    bar = tqdm(zip(pixels, rows), total=len(pixels), desc=progress, disable=progress is None)
    for pixel, members in bar:
        path = Path(str(paths.pixel_catalog_file(base, pixel)))
        path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(path, table.schema, **options) as writer:
            writer.write_table(table.take(members))
        footer = pq.read_metadata(path)
        footer.set_file_path(str(path.relative_to(base / "dataset")))
        footers.append(footer)
    return footers


def _write_metadata(base: Path, schema: Any, pixels: list[Any], footers: list[Any]) -> None:
    """``partition_info.csv``, ``dataset/_common_metadata`` and ``dataset/_metadata`` (the
    footers, in HATS' pixel order)."""
    import pyarrow.parquet as pq
    from hats.catalog import PartitionInfo

    (base / "dataset").mkdir(parents=True, exist_ok=True)
    PartitionInfo(pixels).write_to_file(base / "partition_info.csv")
    pq.write_metadata(schema, base / "dataset" / "_metadata", metadata_collector=footers, write_statistics=True)
    pq.write_metadata(schema, base / "dataset" / "_common_metadata")


def _provenance(path: Path) -> dict[str, Any]:
    """HATS' provenance fields of the catalog or collection at ``path`` (builder, date, size
    estimate, format version), built by tsm-core. Not LSDB's helper: importing LSDB costs a
    second that writing these files does not need."""
    from importlib import metadata

    from hats.catalog.dataset.hats_properties import HatsProperties

    try:
        builder = f"tsm-core v{metadata.version('tsm-core')}"
    except metadata.PackageNotFoundError:
        builder = "tsm-core"
    return HatsProperties.new_provenance_dict(path, builder=builder)


def _properties(base: Path, pixels: list[Any], counts: list[int], **fields: Any) -> None:
    """``hats.properties`` of the catalog at ``base``, the fields LSDB's ``to_hats`` writes."""
    from hats.catalog import PartitionInfo, TableProperties

    info = PartitionInfo(pixels)
    extra: dict[str, Any] = {"hats_max_rows": int(max(counts, default=0)), "npix_suffix": ".parquet"}
    extra["moc_sky_fraction"] = float(f"{info.calculate_fractional_coverage():.5g}") if pixels else 0.0
    if pixels:
        extra["hats_order"] = info.get_highest_order()
    TableProperties(**(_provenance(base) | fields | extra | {"total_rows": int(sum(counts))})).to_properties_file(base)


def write_main(base: Path, name: str, ra: str, dec: str, parts: SkyPartitions, progress: bool = False) -> None:
    """The catalog ``name`` of ``parts`` at ``base``, with its point map and sky map
    (``progress``: a bar on stderr, as LSDB's)."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats
    from hats.io import file_io, paths
    from hats.io.skymap import write_skymap

    footers = _write_files(base, parts.table, parts.pixels, parts.rows, "Writing Catalog" if progress else None)
    _write_metadata(base, parts.table.schema, parts.pixels, footers)
    order = max(max((int(p.order) for p in parts.pixels), default=0), SKYMAP_ORDER)
    histogram = np.bincount(parts.spatial >> (2 * (SPATIAL_ORDER - order)), minlength=12 * 4**order)
    file_io.write_fits_image(histogram, paths.get_point_map_file_pointer(base))
    write_skymap(histogram=histogram, catalog_dir=base, orders=None)
    _properties(
        base,
        parts.pixels,
        [len(r) for r in parts.rows],
        catalog_name=name,
        catalog_type="object",
        ra_column=ra,
        dec_column=dec,
        healpix_column=SPATIAL_INDEX_COLUMN,
        healpix_order=SPATIAL_ORDER,
        skymap_order=order,
    )


def write_margin(
    base: Path,
    name: str,
    primary: str,
    ra: str,
    dec: str,
    parts: SkyPartitions,
    threshold_arcsec: float,
    progress: bool = False,
) -> int:
    """The margin catalog ``name`` of ``primary`` at ``base``: the rows LSDB's ``from_dataframe``
    puts in a margin of ``threshold_arcsec`` (:func:`tsm_core.catalogs.margins.margin_rows`).
    Returns its rows (``progress``: a bar on stderr, as LSDB's)."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats

    found = margin_rows(
        parts.table.column(ra).to_numpy(),
        parts.table.column(dec).to_numpy(),
        parts.spatial,
        parts.pixels,
        parts.home,
        threshold_arcsec,
    )
    pixels, rows = list(found), list(found.values())
    footers = _write_files(base, parts.table, pixels, rows, "Writing Margin Cache" if progress else None)
    _write_metadata(base, parts.table.schema, pixels, footers)
    counts = [len(r) for r in rows]
    _properties(
        base,
        pixels,
        counts,
        catalog_name=name,
        catalog_type="margin",
        ra_column=ra,
        dec_column=dec,
        primary_catalog=primary,
        margin_threshold=threshold_arcsec,
    )
    return int(sum(counts))


def write_collection(
    out: Path,
    frame: pd.DataFrame,
    *,
    name: str,
    ra: str,
    dec: str,
    rows_per_partition: int,
    margin: tuple[str, float] | None = None,
    progress: bool = False,
) -> SkyPartitions:
    """Write ``frame`` at ``out`` (which must not exist) as a HATS collection whose catalog
    ``name`` is partitioned as :func:`partition` cuts it, with the margin catalog ``margin``
    (its name and width in arcseconds) where given, and name them in ``collection.properties``
    (``progress``: LSDB's bars on stderr, one per catalog)."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats
    from hats.catalog.dataset.collection_properties import CollectionProperties

    if not len(frame):
        raise ValueError("cannot write an empty table as a HATS catalog")
    out.mkdir(parents=True)
    parts = partition(frame, ra, dec, rows_per_partition=rows_per_partition)
    write_main(out / name, name, ra, dec, parts, progress)
    properties: dict[str, Any] = {"obs_collection": name, "hats_primary_table_url": name}
    if margin is not None:
        write_margin(out / margin[0], margin[0], name, ra, dec, parts, margin[1], progress)
        properties |= {"all_margins": margin[0], "default_margin": margin[0]}
    CollectionProperties(**(properties | _provenance(out))).to_properties_file(out)
    return parts
