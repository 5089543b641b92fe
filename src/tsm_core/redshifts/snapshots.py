"""Legacy snapshots: Parquet copies of registered redshift catalogs, as stored before
catalogs were stored as HATS collections (:mod:`tsm_core.redshifts.store`).

A snapshot holds the normalized table, with what normalization did in the schema
metadata (:data:`SNAPSHOT_KEY`) and each column's unit and description in its field
metadata; it is read back as it was normalized.
"""

from __future__ import annotations

import json
from pathlib import Path

from tsm_core.errors import CatalogError
from tsm_core.plugins.records import ColumnInfo
from tsm_core.redshifts.table import RedshiftTable, settle_dtypes

#: schema metadata key of a normalized snapshot written by :func:`write_snapshot`
SNAPSHOT_KEY = b"tsm.redshift_catalog"


def write_snapshot(table: RedshiftTable, path: Path) -> None:
    """Write ``table`` as Parquet, with what :func:`read_snapshot` needs in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table.frame, preserve_index=False)
    fields = []
    for f in arrow.schema:
        note = table.info.get(f.name)
        fields.append(f.with_metadata({"unit": note.unit, "description": note.description} if note else None))
    meta = {
        "source": table.source,
        "convention": table.convention,
        "detected": table.detected,
        "n_read": table.n_read,
        "dropped": table.dropped,
        "names": table.names,
        "default_columns": list(table.default_columns),
    }
    schema = pa.schema(fields, metadata={SNAPSHOT_KEY: json.dumps(meta).encode()})
    pq.write_table(arrow.cast(schema), path, compression="zstd")


def is_snapshot(path: Path) -> bool:
    """True for a Parquet file written by :func:`write_snapshot`."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - not readable as Parquet: the reader will say why
        return False
    return SNAPSHOT_KEY in meta


def read_snapshot(path: str | Path) -> RedshiftTable:
    """A normalized redshift catalog written by :func:`write_snapshot`."""
    import pyarrow.parquet as pq

    try:
        arrow = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001
        raise CatalogError("redshift_catalog", f"cannot read the stored redshift catalog {path}: {exc}") from exc
    meta = json.loads(arrow.schema.metadata[SNAPSHOT_KEY])
    info = {}
    for f in arrow.schema:
        if f.metadata and b"description" in f.metadata:
            info[f.name] = ColumnInfo(f.metadata.get(b"unit", b"").decode(), f.metadata[b"description"].decode())
    frame = settle_dtypes(arrow.replace_schema_metadata(None).to_pandas())
    return RedshiftTable.from_record(meta, frame, info)
