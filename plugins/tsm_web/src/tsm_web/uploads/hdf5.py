"""Limits of an HDF5 file, from its datasets' shapes and types and the on-disk descriptors of
variable-length values; attributes that are pickles able to run code are refused (pandas'
reader would load them)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tsm_web.uploads.limits import CHUNK, MB, UploadLimits, UploadRefused, check_counts, too_large

#: the most HDF5 objects looked at (each is a few hundred bytes of metadata)
MAX_HDF5_OBJECTS = 10_000
#: bytes counted for each variable-length HDF5 value (a Python object once read), besides its data
HDF5_OBJECT_WIDTH = 56
#: pickle opcodes that import a name by other means than a checked GLOBAL (PyTables writes
#: attributes with protocol 0, whose imports are GLOBAL "module name")
PICKLE_IMPORTS = {"STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4"}
#: the names a pandas HDF attribute may import (time zones of tz-aware columns); a pickle
#: can call only what it imports, so with these its REDUCE/BUILD/OBJ/NEWOBJ are harmless
PICKLE_SAFE_GLOBALS = {
    "datetime timezone",
    "datetime timedelta",
    "datetime datetime",
    "datetime date",
    "datetime time",
    "pytz _UTC",
    "pytz _p",
    "dateutil.tz.tz tzutc",
    "dateutil.tz.tz tzoffset",
}
#: the largest chunk of variable-length HDF5 value descriptors inflated to measure them
MAX_HDF5_VLEN_CHUNK = 64 << 20


def hdf5_shape(path: Path, limits: UploadLimits) -> tuple[int, int]:
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
        check_counts(rows, size, limits)
        address = fh.id.get_create_plist().get_sizes()[0]
        for dataset in variable:
            size += _hdf5_vlen_bytes(dataset, address, limits.max_decompressed_bytes - size)
            if size > limits.max_decompressed_bytes:
                raise too_large(limits)
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
                raise UploadRefused(
                    422,
                    f"the HDF5 attribute {name.strip('/')}/{key} holds a pickled object "
                    "that would run code; this server loads no such file",
                )


def _pickle_calls_code(value: bytes) -> bool:
    """True when ``value`` parses as a pickle that imports anything but :data:`PICKLE_SAFE_GLOBALS`."""
    import pickletools

    try:
        return any(
            op.name in PICKLE_IMPORTS or (op.name == "GLOBAL" and arg not in PICKLE_SAFE_GLOBALS)
            for op, arg, _ in pickletools.genops(value)
        )
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
        raise UploadRefused(
            422, f"an HDF5 chunk holds more than {MAX_HDF5_VLEN_CHUNK // MB} MB of variable-length value descriptors"
        )
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
                raise UploadRefused(
                    422,
                    f"variable-length HDF5 values compressed with filter {filters[position]} "
                    "cannot be measured; use gzip or no compression",
                )
        yield data[: len(data) // item * item]
