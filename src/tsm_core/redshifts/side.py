"""The redshift side of a run: the rows it matches, as a lazy LSDB catalog, and their keys.

:func:`open_redshift_side` gives one of two :class:`RedshiftSide` kinds, told apart by
where the catalog lives; both give the crossmatch a lazy catalog of the kept columns
(:meth:`RedshiftSide.catalog`, the one override point) and the funnel the *keys* of the
rows left after the redshift filters: row number (``_zrow``), ``ra``, ``dec`` and
``survey``, four values per redshift, never the whole catalog (with ``quality``, also
``z_flag`` and ``z_err``, which :mod:`tsm_core.redshifts.combine` ranks duplicates by).

- :class:`StoredSide`, a registered catalog (:mod:`tsm_core.redshifts.store`): the keys
  are read partition by partition (only the key and filter columns), each filter
  counted per survey as it goes; the crossmatch opens the collection lazily with the
  kept columns and the simple filters pushed into the Parquet read, its partitions that
  are finer than an object partition read together
  (:func:`tsm_core.redshifts.partitioning.merged_on`). Nothing is held whole in memory and nothing
  is re-partitioned.
- :class:`TableSide`, a file given by path (or a catalog registered before catalogs were
  stored as HATS): read and normalized in memory, filtered, then cut into sky partitions
  once (:func:`tsm_core.redshifts.partitioning.sky_partitions`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tsm_core.columns import ZROW_COLUMN
from tsm_core.errors import ConfigError, TSMError, one_line
from tsm_core.pipeline.funnel import Funnel
from tsm_core.redshifts.keys import QUALITY_COLUMNS, FilterTally, KeyColumns, key_columns
from tsm_core.redshifts.readers import read_redshift_catalog
from tsm_core.redshifts.registration import damaged_catalog_error
from tsm_core.redshifts.snapshots import read_snapshot
from tsm_core.redshifts.store import StoredCatalog, is_store, read_store
from tsm_core.redshifts.table import RedshiftTable, string_lengths
from tsm_core.science.filters import Filter, RowFilter, check_filter_columns, check_filter_types

if TYPE_CHECKING:
    import lsdb

    from tsm_core.config import RedshiftCatalogConfig, RunConfig
    from tsm_core.products.records import RedshiftCatalogRecord
    from tsm_core.products.registry import Registry

log = logging.getLogger(__name__)

#: rows read at a time when the keys of a stored catalog are scanned
SCAN_BATCH_ROWS = 1_000_000


@dataclass
class RedshiftSide:
    """The redshift rows of a run after the filters (see the module's docstring)."""

    #: ``_zrow``, ``ra``, ``dec`` (and ``survey``) of every redshift left after the filters
    keys: pd.DataFrame
    #: the redshift columns of the training set, canonical ones first
    columns: list[str]
    #: where the catalog came from, for logs and provenance
    label: str
    #: how it was read (see :meth:`RedshiftTable.summary`)
    summary: dict[str, Any]
    #: units and descriptions of non-canonical columns
    info: dict[str, Any] = field(default_factory=dict)
    #: longest value of each text column, in UTF-8 bytes
    string_lengths: dict[str, int] = field(default_factory=dict)
    #: the redshift filters, in order
    filters: tuple[Filter, ...] = ()
    #: a short name: the registered catalog's name, or the file's stem
    name: str = ""

    def __len__(self) -> int:
        return len(self.keys)

    def scan(self, columns: list[str], batch_rows: int = SCAN_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """Every normalized row, before the filters: ``columns`` and ``_zrow``, a batch at a
        time (for ``output.unmatched``; override this)."""
        raise NotImplementedError

    def dropped_rows(self) -> pd.DataFrame | None:
        """The rows dropped as bad (:attr:`RedshiftTable.bad`); None where unknown."""
        raise NotImplementedError

    def all_string_lengths(self) -> dict[str, int]:
        """The longest value of each text column over every normalized row (kept or filtered)."""
        return self.string_lengths

    def catalog(self, align_to: Sequence[Any] | None = None) -> lsdb.Catalog:
        """The rows as a lazy LSDB catalog of :attr:`columns` and ``_zrow`` (override this);
        ``align_to``: the partitions of the catalog they will be matched with, for a side
        that can cut its rows on them."""
        raise NotImplementedError

    def meta(self) -> pd.DataFrame:
        """An empty frame of the catalog's columns."""
        return self.catalog().meta.iloc[:0]

    def sources(self) -> list[dict[str, Any]]:
        """Each redshift catalog of the side, for the provenance: its name, where it came
        from, its convention and rows (read, after bad rows, after the filters)."""
        return [
            {
                "catalog": self.name,
                "source": self.label,
                "convention": self.summary.get("convention"),
                "rows_read": self.summary.get("rows_read"),
                "rows": self.summary.get("rows"),
                "after_filters": len(self),
            }
        ]


@dataclass
class TableSide(RedshiftSide):
    """Redshift rows held in memory (a file given by path), partitioned when matched."""

    frame: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    #: tasks run in worker processes: each carries its own rows (see :func:`sky_partitions`)
    ship_rows: bool = False
    #: the normalized table before the filters, held for ``output.unmatched`` only
    source: RedshiftTable | None = field(default=None, repr=False)

    def scan(self, columns: list[str], batch_rows: int = SCAN_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        frame = self._held().frame
        for start in range(0, len(frame), batch_rows):
            stop = min(start + batch_rows, len(frame))
            yield frame.iloc[start:stop][columns].assign(**{ZROW_COLUMN: np.arange(start, stop, dtype=np.int64)})

    def dropped_rows(self) -> pd.DataFrame | None:
        return self._held().dropped_rows()

    def all_string_lengths(self) -> dict[str, int]:
        return string_lengths(self._held().frame[self.columns])

    def _held(self) -> RedshiftTable:
        assert self.source is not None, "the table is held when output.unmatched asks for it"
        return self.source

    def catalog(self, align_to: Sequence[Any] | None = None) -> lsdb.Catalog:
        from tsm_core.redshifts.partitioning import sky_partitions

        return sky_partitions(self.frame, pixels=align_to, ship_rows=self.ship_rows)

    def meta(self) -> pd.DataFrame:
        from tsm_core.redshifts.partitioning import as_arrow_types

        return as_arrow_types(self.frame.iloc[:0])


#: a stored catalog of at most this many rows is read whole, once, when it is matched, and cut
#: on the object partitions in memory: LSDB would read its partition once per object partition
#: that the partition covers (a 2,000-row catalog stored as one partition, matched against 50
#: object partitions, was read 50 times)
READ_WHOLE_ROWS = 200_000


@dataclass
class StoredSide(RedshiftSide):
    """A registered catalog stored as HATS, opened lazily with the run's columns and filters."""

    store: StoredCatalog | None = field(default=None, repr=False)
    #: tasks run in worker processes: a catalog read whole ships each task its own rows
    ship_rows: bool = False

    def scan(self, columns: list[str], batch_rows: int = SCAN_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        assert self.store is not None
        return self.store.scan([*columns, ZROW_COLUMN], batch_rows)

    def dropped_rows(self) -> pd.DataFrame | None:
        assert self.store is not None
        return self.store.bad_rows()

    def all_string_lengths(self) -> dict[str, int]:
        assert self.store is not None
        return {c: n for c, n in self.store.string_lengths.items() if c in self.columns}

    def catalog(self, align_to: Sequence[Any] | None = None) -> lsdb.Catalog:
        import lsdb

        from tsm_core.redshifts.partitioning import merged_on, sky_partitions

        assert self.store is not None
        pushed: list[tuple[str, str, Any]] = []  # simple cuts, evaluated by the Parquet reader
        general: list[Filter] = []  # the others, evaluated per partition
        for one in self.filters:
            cut = one.pushdown()
            if cut is None:
                general.append(one)
            else:
                pushed.append(cut)
        wanted = [*self.columns, ZROW_COLUMN]
        load = list(dict.fromkeys(wanted + [c for f in general for c in f.columns]))
        keep = RowFilter(tuple(general), tuple(wanted))
        if align_to is not None and self.store.n_rows <= READ_WHOLE_ROWS:
            frame = keep(self.store.read(load, pushed))
            if len(frame):
                return sky_partitions(frame, pixels=align_to, ship_rows=self.ship_rows)
        catalog = lsdb.open_catalog(str(self.store.path), columns=load, filters=pushed or None)  # type: ignore[arg-type]
        if align_to is not None:  # stored partitions finer than the objects' read together
            catalog = merged_on(catalog, align_to)
        if general:
            catalog = catalog.map_partitions(keep, meta=catalog.meta[wanted])
        return catalog


def side_from_table(
    table: RedshiftTable,
    label: str,
    keep: Any,
    filters: Sequence[Filter],
    funnel: Funnel,
    ship_rows: bool = False,
    hold: bool = False,
    quality: bool = False,
) -> TableSide:
    """A :class:`TableSide` of a normalized table: filtered (and counted) at once; ``hold``
    keeps the table before the filters (for ``output.unmatched``); ``quality``: the keys
    hold ``z_flag`` and ``z_err`` too, as floats."""
    check_filter_columns(filters, [str(c) for c in table.frame.columns], "redshift")
    columns = table.kept_columns(keep)
    frame = table.frame.assign(**{ZROW_COLUMN: np.arange(len(table.frame), dtype=np.int64)})
    tally = FilterTally(filters)
    frame = tally.apply(frame)
    tally.record(funnel, table.dropped)
    keys = frame[key_columns(frame.columns, quality)].reset_index(drop=True)
    for c in QUALITY_COLUMNS:
        if c in keys.columns:
            keys[c] = pd.to_numeric(keys[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    frame = frame[[*columns, ZROW_COLUMN]].reset_index(drop=True)
    return TableSide(
        keys=keys,
        columns=columns,
        label=label,
        summary=table.summary(),
        info=table.info,
        string_lengths=string_lengths(frame[columns]),
        frame=frame,
        ship_rows=ship_rows,
        filters=tuple(filters),
        source=table if hold else None,
    )


def side_from_store(
    store: StoredCatalog,
    label: str,
    keep: Any,
    filters: Sequence[Filter],
    funnel: Funnel,
    quality: bool = False,
    ship_rows: bool = False,
) -> StoredSide:
    """A :class:`StoredSide`: the keys scanned partition by partition, filters counted per batch."""
    table = store.table
    present = [str(c) for c in table.frame.columns]
    check_filter_columns(filters, present, "redshift")
    check_filter_types(filters, store.schema())
    columns = table.kept_columns(keep)
    keys = key_columns(present, quality)
    read = list(dict.fromkeys(keys + [c for f in filters for c in f.columns]))
    tally = FilterTally(filters)
    scanned = KeyColumns(keys)
    for batch in store.scan(read, SCAN_BATCH_ROWS):
        scanned.add(tally.apply(batch))
    tally.record(funnel, table.dropped)
    found = scanned.frame()
    lengths = {c: n for c, n in store.string_lengths.items() if c in columns}
    log.info("%s: %d of %d redshifts left after the filters (keys read per partition)", label, len(found), tally.n_read)
    return StoredSide(
        keys=found,
        columns=columns,
        label=label,
        summary=table.summary(),
        info=table.info,
        string_lengths=lengths,
        store=store,
        filters=tuple(filters),
        ship_rows=ship_rows,
    )


def open_redshift_side(
    config: RunConfig,
    registry: Registry,
    filters: Sequence[Filter],
    funnel: Funnel,
    source: RedshiftCatalogConfig | None = None,
    quality: bool = False,
) -> RedshiftSide:
    """The redshift side of ``config``: a file given by path, or a registered catalog
    (``source``: one of ``config.redshift_catalogs``, by default the first; ``quality``:
    keys with ``z_flag`` and ``z_err``)."""
    source = source or config.redshift_catalogs[0]
    side = _open_side(config, registry, filters, funnel, source, quality)
    if source.label:
        side.name = source.label
    elif source.path:  # a file's stem (a HATS catalog's folder name), without its suffixes
        side.name = PurePath(source.path.rstrip("/")).name.split(".")[0] or source.path
    return side


def _open_side(
    config: RunConfig,
    registry: Registry,
    filters: Sequence[Filter],
    funnel: Funnel,
    source: RedshiftCatalogConfig,
    quality: bool,
) -> RedshiftSide:
    keep = source.keep_columns
    ship = not config.compute.in_process  # an in-memory table's rows go to worker processes with their tasks
    hold = config.output.unmatched  # the rows the run loses are written from the table before the filters
    if source.path:
        table = read_redshift_catalog(
            source.path,
            source.columns,
            source.convention,
            source.bad_rows,
            source.delimiter,
            units=source.units,
            table=source.table,
        )
        return side_from_table(table, source.path, keep, filters, funnel, ship, hold, quality)
    key = source.name if source.name else source.id
    assert key is not None, "the config names a redshift catalog by path, name or id"
    record = registry.redshift_catalog(key)
    side = _open_registered(config, registry, filters, funnel, source, quality, record)
    side.name = record.name
    return side


def _open_registered(
    config: RunConfig,
    registry: Registry,
    filters: Sequence[Filter],
    funnel: Funnel,
    source: RedshiftCatalogConfig,
    quality: bool,
    record: RedshiftCatalogRecord,
) -> RedshiftSide:
    keep = source.keep_columns
    ship = not config.compute.in_process
    hold = config.output.unmatched
    label = f"registered catalog {record.name!r} (id {record.id}, {record.source_path or record.path})"
    if record.source_path is None:  # registered before stored copies: the user's file, read as then
        table = read_redshift_catalog(
            record.path,
            record.columns | source.columns,
            source.convention,
            source.bad_rows,
            units=source.units,
            table=source.table,
        )
        return side_from_table(table, label, keep, filters, funnel, ship, hold, quality)
    for key in ("columns", "convention", "delimiter", "units", "table"):
        if getattr(source, key):
            raise ConfigError(
                f"redshift_catalog.{key}",
                f"applies when a catalog is read from its file; {record.name!r} was registered normalized "
                f"(convention {record.convention!r}): register the file again to change it",
            )
    if is_store(record.path):
        try:
            return side_from_store(read_store(record.path), label, keep, filters, funnel, quality, ship)
        except TSMError:
            raise
        except Exception as exc:  # a partition unreadable (truncated, deleted): the stored copy is damaged
            error = damaged_catalog_error(record, one_line(str(exc).replace(record.path + "/", ""), 200))
            # recorded, so that the training set asked for shows up failed, saying why
            product = registry.create_product(config.name, config.description, config.model_dump(mode="json"))
            registry.fail_product(product, str(error))
            raise error from exc
    # a Parquet snapshot (older)
    return side_from_table(read_snapshot(record.path), label, keep, filters, funnel, ship, hold, quality)
