"""Limits of a Parquet file, judged from its footer; dictionary-encoded strings are measured from
their dictionaries and indices, never materialized."""

from __future__ import annotations

import struct
from pathlib import Path

from tsm_web.uploads.limits import MB, UploadLimits, UploadRefused, too_large, too_long

#: the largest Parquet footer (file metadata) read; real catalogs have footers of kilobytes
MAX_PARQUET_FOOTER = 16 << 20
#: bytes per value of each Parquet physical type once decoded (variable-length values: their offset)
PARQUET_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8, "BYTE_ARRAY": 4}
#: Parquet encodings under which a short column chunk can decode to long strings
AMPLIFYING_ENCODINGS = {"PLAIN_DICTIONARY", "RLE_DICTIONARY", "DELTA_BYTE_ARRAY"}


def parquet_shape(path: Path, limits: UploadLimits) -> tuple[int, int]:
    """Rows and decoded bytes of a Parquet file from its footer: each column chunk counts the
    larger of its uncompressed size and its values times their decoded width, so dictionary
    and run-length encoded numbers count at their decoded size; dictionary-encoded strings
    are then measured from their dictionaries (:func:`_add_dictionary_strings`)."""
    import pyarrow.parquet as pq

    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() < 12:
            raise ValueError("too short to be a Parquet file")
        fh.seek(-8, 2)
        footer, magic = struct.unpack("<i4s", fh.read(8))
    if magic != b"PAR1":
        raise ValueError("no Parquet footer")
    if footer > MAX_PARQUET_FOOTER:
        raise UploadRefused(413, f"the Parquet file's metadata is larger than {MAX_PARQUET_FOOTER // MB} MB")
    meta = pq.read_metadata(path)
    if meta.num_rows > limits.max_rows:
        raise too_long(limits)
    schema = meta.schema
    widths = [
        PARQUET_WIDTHS.get(schema.column(i).physical_type, schema.column(i).length or 0)
        for i in range(meta.num_columns)
    ]
    size = 0
    strings: list[tuple[int, str]] = []  # dictionary-encoded strings, measured below
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for i in range(group.num_columns):
            chunk = group.column(i)
            size += max(chunk.total_uncompressed_size, chunk.num_values * widths[i])
            encodings = set(chunk.encodings)
            if chunk.physical_type != "BYTE_ARRAY" or not encodings & AMPLIFYING_ENCODINGS:
                continue
            if "DELTA_BYTE_ARRAY" in encodings or "." in chunk.path_in_schema:
                # no value is longer than the whole chunk uncompressed: the only bound the metadata gives
                size += chunk.num_values * chunk.total_uncompressed_size
            else:
                strings.append((g, chunk.path_in_schema))
        if size > limits.max_decompressed_bytes:
            raise too_large(limits)
    size = _add_dictionary_strings(path, strings, size, limits)
    return meta.num_rows, size


def _add_dictionary_strings(path: Path, strings: list[tuple[int, str]], size: int, limits: UploadLimits) -> int:
    """``size`` plus the decoded bytes of the dictionary-encoded string columns ``strings``
    (row group, column): one value can be repeated millions of times, and its length is in no
    metadata. Each column chunk is read as its dictionary and indices (4 bytes a row), so the
    strings are measured without being materialized."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not strings:
        return size
    parquet = pq.ParquetFile(path, read_dictionary=sorted({column for _, column in strings}))
    for group, column in strings:
        read = parquet.read_row_group(group, columns=[column]).column(0)
        for chunk in read.chunks:
            lengths = pc.binary_length(chunk.dictionary)
            size += pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0
        if size > limits.max_decompressed_bytes:
            raise too_large(limits)
    return size
