"""Uploaded redshift catalogs: size-limited, stored under a generated name, and checked
against the operator's limits on decompressed bytes and rows before anything reads them whole.

The check (:func:`check_limits`) keeps the server's memory bounded: compressed files are
decompressed in chunks and counted, Parquet files are judged from their footer, FITS files
from their headers, HDF5 files from their datasets' shapes and types. Only where metadata
cannot bound the decoded size is data read, in bounded pieces: the dictionaries and indices
of dictionary-encoded Parquet strings, the descriptors of variable-length HDF5 values. HDF5
attributes that are pickles able to run code are refused (pandas' reader would load them).
"""

from __future__ import annotations

import bz2
import gzip
import re
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from fastapi import UploadFile

from tsm_core.redshifts.readers import FILE_FORMATS, file_format

CHUNK = 1 << 20
#: the openers of the compressed suffixes the readers accept (FITS tile compression, ``.fz``,
#: is judged from its headers like any FITS file)
DECOMPRESSORS: dict[str, Callable[[Path], IO[bytes]]] = {".gz": gzip.open, ".bz2": bz2.open}
#: the largest Parquet footer (file metadata) read; real catalogs have footers of kilobytes
MAX_PARQUET_FOOTER = 16 << 20
#: the most HDF5 objects looked at (each is a few hundred bytes of metadata)
MAX_HDF5_OBJECTS = 10_000
#: bytes per value of each Parquet physical type once decoded (variable-length values: their offset)
PARQUET_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8, "BYTE_ARRAY": 4}
#: Parquet encodings under which a short column chunk can decode to long strings
AMPLIFYING_ENCODINGS = {"PLAIN_DICTIONARY", "RLE_DICTIONARY", "DELTA_BYTE_ARRAY"}
#: a FITS variable-length array column (TFORMn = rPt(max) or rQt(max))
VLA_FORM = re.compile(r"^\s*\d*[PQ]")
#: bytes counted for each variable-length HDF5 value (a Python object once read), besides its data
HDF5_OBJECT_WIDTH = 56
#: pickle opcodes that import a name by other means than a checked GLOBAL (PyTables writes
#: attributes with protocol 0, whose imports are GLOBAL "module name")
PICKLE_IMPORTS = {"STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4"}
#: the names a pandas HDF attribute may import (time zones of tz-aware columns); a pickle
#: can call only what it imports, so with these its REDUCE/BUILD/OBJ/NEWOBJ are harmless
PICKLE_SAFE_GLOBALS = {"datetime timezone", "datetime timedelta", "datetime datetime", "datetime date",
                       "datetime time", "pytz _UTC", "pytz _p", "dateutil.tz.tz tzutc", "dateutil.tz.tz tzoffset"}
#: the largest chunk of variable-length HDF5 value descriptors inflated to measure them
MAX_HDF5_VLEN_CHUNK = 64 << 20
MB = 2**20


@dataclass(frozen=True)
class UploadLimits:
    """The operator's limits on one upload: bytes sent, bytes once decompressed and decoded, rows."""

    max_bytes: int
    max_decompressed_bytes: int
    max_rows: int


class UploadRefused(ValueError):
    """The upload passes one of the server's limits: ``status`` is the HTTP answer (413 for
    a size, 422 for rows), ``message`` one line naming the limit."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UploadTooLarge(UploadRefused):
    """The upload exceeds the server's limit on the bytes sent."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def suffix_of(filename: str) -> str:
    """The known catalog suffix of an uploaded file name (the name itself is never used)."""
    lower = (filename or "").lower()
    for suffixes in FILE_FORMATS.values():
        for suffix in sorted(suffixes, key=len, reverse=True):
            if lower.endswith(suffix):
                return suffix
    known = ", ".join(s for suffixes in FILE_FORMATS.values() for s in suffixes)
    raise ValueError(f"unsupported file type {Path(filename or '').suffix!r}; upload one of {known}")


def save_upload(upload: UploadFile, directory: Path, limits: UploadLimits) -> Path:
    """Stream ``upload`` to ``directory`` under a random name and check it against ``limits``
    (:func:`check_limits`); a refused file is deleted before :class:`UploadRefused` is raised."""
    suffix = suffix_of(upload.filename or "")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{uuid.uuid4().hex}{suffix}"
    size = 0
    try:
        with open(target, "wb") as out:
            while chunk := upload.file.read(CHUNK):
                size += len(chunk)
                if size > limits.max_bytes:
                    raise UploadTooLarge(f"the file is larger than the limit of {limits.max_bytes / MB:.0f} MB "
                                         "(max_upload_mb)")
                out.write(chunk)
        check_limits(target, limits)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def check_limits(path: Path, limits: UploadLimits) -> None:
    """Raise :class:`UploadRefused` when the catalog file ``path`` holds more than
    ``limits.max_decompressed_bytes`` once decompressed and decoded (413) or more than
    ``limits.max_rows`` rows (422), reading it in bounded memory: compressed files in chunks,
    otherwise only their metadata. A file whose metadata cannot be read is refused (422)."""
    fmt = file_format(path)
    opener = DECOMPRESSORS.get(path.suffix.lower())
    if fmt == "csv":
        _check_stream(path, opener or open, limits, count_rows=True)
        return
    if opener is not None:
        _check_stream(path, opener, limits, count_rows=False)
    try:
        rows, size = {"parquet": _parquet_shape, "fits": _fits_shape, "hdf5": _hdf5_shape}[fmt](path, limits)
    except UploadRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.replace(str(path), "the file")  # the stored name is the server's
        raise UploadRefused(422, f"cannot read the {fmt} file's metadata: {first}") from None
    _check_counts(rows, size, limits)


def _too_large(limits: UploadLimits) -> UploadRefused:
    limit = limits.max_decompressed_bytes / MB
    return UploadRefused(413, f"the file's data is larger than the limit of {limit:.0f} MB once decompressed "
                              "(max_upload_decompressed_mb)")


def _too_long(limits: UploadLimits) -> UploadRefused:
    return UploadRefused(422, f"the file has more than {limits.max_rows} rows, the limit (max_upload_rows)")


def _check_counts(rows: int, size: int, limits: UploadLimits) -> None:
    if size > limits.max_decompressed_bytes:
        raise _too_large(limits)
    if rows > limits.max_rows:
        raise _too_long(limits)


def _check_stream(path: Path, opener: Callable[..., IO[bytes]], limits: UploadLimits, count_rows: bool) -> None:
    """Read ``path`` through ``opener`` in chunks, stopping at the first limit passed (CSV
    rows are lines after the header; a quoted line break counts as a row, erring on the safe side)."""
    size = lines = 0
    last = b"\n"
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                size += len(chunk)
                if size > limits.max_decompressed_bytes:
                    raise _too_large(limits)
                if count_rows:
                    # pandas also ends a line at a lone "\r"; a "\r\n" across chunks counts twice
                    lines += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
                    last = chunk[-1:]  # a last line without its line break is a row too
                    if lines - 1 > limits.max_rows:
                        raise _too_long(limits)
    except UploadRefused:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise UploadRefused(422, f"cannot decompress the file: {exc}") from None
    if count_rows and (lines + (last not in b"\r\n")) - 1 > limits.max_rows:
        raise _too_long(limits)


def _parquet_shape(path: Path, limits: UploadLimits) -> tuple[int, int]:
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
        raise _too_long(limits)
    schema = meta.schema
    widths = [PARQUET_WIDTHS.get(schema.column(i).physical_type, schema.column(i).length or 0)
              for i in range(meta.num_columns)]
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
            raise _too_large(limits)
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
            raise _too_large(limits)
    return size


def _fits_shape(path: Path, limits: UploadLimits) -> tuple[int, int]:
    """Rows and data bytes of the FITS table the reader reads (HDU 1), from the headers only
    (tile-compressed HDUs count their uncompressed size, from the ``Z`` keywords)."""
    from astropy.io import fits

    headers = []
    with fits.open(path, memmap=True, lazy_load_hdus=True, disable_image_compression=True) as hdul:
        for index in range(2):  # len(hdul) would read every header
            try:
                headers.append(hdul[index].header)
            except IndexError:
                break
    size = rows = 0
    for header in headers:
        prefix = "Z" if header.get("ZIMAGE") or header.get("ZTABLE") else ""
        naxis = int(header.get(f"{prefix}NAXIS", 0))
        if naxis == 0:
            continue
        elements = 1
        for axis in range(1, naxis + 1):
            elements *= int(header.get(f"{prefix}NAXIS{axis}", 0))
        bits = abs(int(header.get(f"{prefix}BITPIX", header.get("BITPIX", 8))))
        size += bits // 8 * int(header.get("GCOUNT", 1)) * (int(header.get("PCOUNT", 0)) + elements)
        if header.get("XTENSION", "").strip() not in ("BINTABLE", "TABLE") or header.get("ZIMAGE") or naxis < 2:
            continue
        rows = max(rows, int(header.get(f"{prefix}NAXIS2", 0)))
        if not prefix:  # every row of a variable-length array column may point at the whole heap
            arrays = sum(1 for key, value in header.items() if key.startswith("TFORM") and VLA_FORM.match(str(value)))
            size += arrays * int(header.get("NAXIS2", 0)) * int(header.get("PCOUNT", 0))
    return rows, size


def _hdf5_shape(path: Path, limits: UploadLimits) -> tuple[int, int]:
    """Rows (the longest dimension of any dataset) and data bytes of an HDF5 file from its
    datasets' shapes and types; variable-length values (strings, sequences) add the lengths
    written in their on-disk descriptors (:func:`_hdf5_vlen_bytes`), since many values may
    point at one long heap object."""
    import h5py

    datasets: list[h5py.Dataset] = []
    seen = 0

    def visit(name: str, obj: Any) -> None:
        nonlocal seen
        seen += 1
        if seen > MAX_HDF5_OBJECTS:
            raise UploadRefused(422, f"the HDF5 file holds more than {MAX_HDF5_OBJECTS} objects")
        _refuse_pickled_attributes(name, obj)
        if isinstance(obj, h5py.Dataset) and obj.shape:
            datasets.append(obj)

    with h5py.File(path, "r") as fh:
        _refuse_pickled_attributes("/", fh)
        fh.visititems(visit)
        rows = max((max(d.shape) for d in datasets), default=0)
        variable = [d for d in datasets if d.dtype.names is None and h5py.check_vlen_dtype(d.dtype) is not None]
        size = sum(int(d.size) * (HDF5_OBJECT_WIDTH if d in variable else d.dtype.itemsize) for d in datasets)
        _check_counts(rows, size, limits)
        address = fh.id.get_create_plist().get_sizes()[0]
        for dataset in variable:
            size += _hdf5_vlen_bytes(dataset, address, limits.max_decompressed_bytes - size)
            if size > limits.max_decompressed_bytes:
                raise _too_large(limits)
    return rows, size


def _refuse_pickled_attributes(name: str, obj: Any) -> None:
    """Refuse an HDF5 object with an attribute that is a pickle able to call code: pandas'
    HDF reader (PyTables) unpickles string attributes, so such a file would run the uploader's
    code in the server. Pandas' own attributes (lists, tuples, dicts, strings) pass; the
    pickles are parsed (:func:`pickletools.genops`), never loaded."""
    import numpy as np

    for key in obj.attrs:
        values = np.atleast_1d(obj.attrs[key]) if obj.attrs.get_id(key).dtype.kind in "SOU" else ()
        for value in values:
            raw = value.encode() if isinstance(value, str) else value
            if isinstance(raw, bytes) and _pickle_calls_code(raw):
                raise UploadRefused(422, f"the HDF5 attribute {name.strip('/')}/{key} holds a pickled object "
                                         "that would run code; this server loads no such file")


def _pickle_calls_code(value: bytes) -> bool:
    """True when ``value`` parses as a pickle that imports anything but :data:`PICKLE_SAFE_GLOBALS`."""
    import pickletools

    try:
        return any(op.name in PICKLE_IMPORTS or (op.name == "GLOBAL" and arg not in PICKLE_SAFE_GLOBALS)
                   for op, arg, _ in pickletools.genops(value))
    except Exception:  # noqa: BLE001 - not a pickle (or a broken one): nothing to load
        return False


def _hdf5_vlen_bytes(dataset: Any, address_size: int, budget: int) -> int:
    """The bytes of a variable-length dataset's values, summed from the lengths in their
    descriptors (4-byte length, heap address, 4-byte index), read raw from the file chunk by
    chunk (deflate and shuffle undone here, in bounded memory); stops past ``budget``."""
    import h5py
    import numpy as np

    base = h5py.check_vlen_dtype(dataset.dtype)
    width = 1 if base in (str, bytes) else np.dtype(base).itemsize
    record = np.dtype([("length", "<u4"), ("address", f"<u{address_size}"), ("index", "<u4")])
    total = 0
    for raw in _hdf5_raw_values(dataset, record.itemsize):
        total += int(np.frombuffer(raw, dtype=record)["length"].sum(dtype=np.uint64)) * width
        if total > budget:
            break
    return total


def _hdf5_raw_values(dataset: Any, item: int) -> Iterator[bytes]:
    """The raw stored bytes of ``dataset`` (``item`` bytes a value), a piece at a time."""
    import h5py
    import numpy as np

    plist = dataset.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dataset.id.get_offset()
        if offset is None:  # never written
            return
        remaining = int(dataset.size) * item
        with open(dataset.file.filename, "rb") as fh:
            fh.seek(offset)
            while remaining > 0 and (piece := fh.read(min(CHUNK // item * item, remaining))):
                remaining -= len(piece)
                yield piece[: len(piece) // item * item]
        return
    if layout != h5py.h5d.CHUNKED:
        raise UploadRefused(422, "variable-length HDF5 values are measured in contiguous or chunked datasets only")
    expected = int(np.prod(dataset.chunks)) * item
    if expected > MAX_HDF5_VLEN_CHUNK:
        raise UploadRefused(422, f"an HDF5 chunk holds more than {MAX_HDF5_VLEN_CHUNK // MB} MB of "
                                 "variable-length value descriptors")
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    for index in range(dataset.id.get_num_chunks()):
        mask, data = dataset.id.read_direct_chunk(dataset.id.get_chunk_info(index).chunk_offset)
        for position in reversed(range(len(filters))):
            if mask & (1 << position):
                continue
            if filters[position] == h5py.h5z.FILTER_DEFLATE:
                inflate = zlib.decompressobj()
                data = inflate.decompress(data, expected)
            elif filters[position] == h5py.h5z.FILTER_SHUFFLE:
                data = np.frombuffer(data[:expected], np.uint8).reshape(item, -1).T.tobytes()
            else:
                raise UploadRefused(422, f"variable-length HDF5 values compressed with filter {filters[position]} "
                                         "cannot be measured; use gzip or no compression")
        yield data[: len(data) // item * item]
