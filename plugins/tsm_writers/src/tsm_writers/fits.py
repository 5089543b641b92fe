"""FITS binary table (fitsio), extension ``TRAINING_SET``.

Units go to ``TUNITn``, descriptions to ``TCOMMn``. The training set is the only table
(HDU 1), so ``astropy.table.Table.read(path)`` opens it without ``hdu=`` and without a
warning; the provenance JSON is the last HDU, ``PROVENANCE``, an image of its UTF-8 bytes
(``bytes(hdul["PROVENANCE"].data).decode()``), which table readers skip.

FITS strings are ASCII: non-ASCII characters are written as Python backslash escapes
(``Ü`` as ``\xdc``, reversible with
``s.encode().decode("unicode_escape")``), in fixed-width columns sized from the column's
``max_length``. A null in an integer column is written as -2**63 and declared with
``TNULLn``, so astropy reads it masked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tsm_core import OutputConfig, OutputMetadata, Writer
from tsm_core.errors import OutputError
from tsm_writers.common import INTEGER_NULL, column_to_numpy, provenance_json

if TYPE_CHECKING:
    import pandas as pd

EXTNAME = "TRAINING_SET"


def numpy_dtype(schema: pa.Schema, metadata: OutputMetadata) -> np.dtype:
    """The FITS row dtype of ``schema``."""
    fields = []
    for f in schema:
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            info = metadata.columns.get(f.name)
            # room for the longest value once escaped (a UTF-8 byte takes at most 2.5 ASCII characters)
            width = -(-5 * info.max_length // 2) if info and info.max_length else 64
            fields.append((f.name, f"S{width}"))
        elif pa.types.is_boolean(f.type):
            fields.append((f.name, "?"))
        else:
            fields.append((f.name, f.type.to_pandas_dtype()))
    return np.dtype(fields)


class _FITSSink:
    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata) -> None:
        import fitsio

        self.metadata = metadata
        self.dtype = numpy_dtype(schema, metadata)
        self.fits = fitsio.FITS(str(path), "rw", clobber=True)
        units = [metadata.columns[n].unit if n in metadata.columns else "" for n in self.dtype.names]
        self.fits.create_table_hdu(dtype=self.dtype, extname=EXTNAME, units=units)
        self.hdu = self.fits[EXTNAME]
        for i, name in enumerate(self.dtype.names, start=1):
            info = metadata.columns.get(name)
            if info and info.description:
                self.hdu.write_key(f"TCOMM{i}", info.description[:68])
        self.hdu.write_key("TSMNAME", metadata.name[:68], comment="training set name")
        self.hdu.write_key("TSMID", metadata.product_id, comment="training set product ID")
        self.nulls_declared: set[str] = set()

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        rows = np.zeros(table.num_rows, dtype=self.dtype)
        for i, name in enumerate(self.dtype.names, start=1):
            column = table.column(name)
            values, sentinel = column_to_numpy(column)
            if values.dtype == object:
                encoded = np.array([v.encode("ascii", "backslashreplace") for v in values], dtype=object)
                width = self.dtype[name].itemsize
                too_long = [v for v in encoded if len(v) > width]
                if too_long:
                    raise OutputError(f"FITS column {name}: value {too_long[0]!r} is longer than {width} bytes")
                values = encoded.astype(f"S{width}")
            if column.null_count and sentinel is not None and name not in self.nulls_declared:
                self.hdu.write_key(f"TNULL{i}", int(INTEGER_NULL), comment="null integer")
                self.nulls_declared.add(name)
            rows[name] = values
        self.hdu.append(rows)

    def close(self) -> None:
        try:
            counts = self.metadata.provenance.get("counts", {})
            self.hdu.write_key("NROWS", int(counts.get("rows", self.hdu.get_nrows())), comment="rows written")
            text = provenance_json(self.metadata).encode()
            # an image, not a table: astropy warns about a file of several tables
            self.fits.write(np.frombuffer(text, dtype=np.uint8), extname="PROVENANCE")
        finally:
            self.fits.close()


class FITSWriter(Writer):
    name = "fits"
    extension = "fits"
    description = "FITS binary table (fitsio); TUNIT/TCOMM per column, provenance in a last PROVENANCE image HDU"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _FITSSink:
        return _FITSSink(path, schema, metadata)

    def read(self, path: Path) -> pd.DataFrame:
        """The ``TRAINING_SET`` table (astropy): null integers masked (``Int64``), strings
        without their padding and with their backslash escapes turned back into characters."""
        from astropy.table import Table

        frame = Table.read(path, hdu=EXTNAME).to_pandas()  # by name: files of earlier versions too
        for name in frame.columns:
            if frame[name].dtype == object:
                frame[name] = [_text(v) for v in frame[name]]
        return frame


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")


def _text(value: object) -> str:
    """A string cell as written: padding removed, escapes decoded; an empty one (astropy masks it) as ``""``."""
    if isinstance(value, bytes):
        value = value.decode()
    return _unescape(value).rstrip() if isinstance(value, str) else ""


def _unescape(text: str) -> str:
    """``text`` with the escapes written for non-ASCII characters (``\\xdc``) decoded."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1)[1:], 16)), text) if "\\" in text else text
