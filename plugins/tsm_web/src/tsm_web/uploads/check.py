"""The check of a stored upload against the operator's limits, by format: compressed files and
CSV are streamed and counted (:mod:`~tsm_web.uploads.stream`), Parquet, FITS and HDF5 judged
from their metadata (:mod:`~tsm_web.uploads.parquet`, :mod:`~tsm_web.uploads.fits`,
:mod:`~tsm_web.uploads.hdf5`)."""

from __future__ import annotations

from pathlib import Path

from tsm_core.redshifts.readers import file_format
from tsm_web.uploads.fits import fits_shape
from tsm_web.uploads.hdf5 import hdf5_shape
from tsm_web.uploads.limits import UploadLimits, UploadRefused, check_counts
from tsm_web.uploads.parquet import parquet_shape
from tsm_web.uploads.stream import DECOMPRESSORS, check_stream


def check_limits(path: Path, limits: UploadLimits) -> None:
    """Raise :class:`UploadRefused` when the catalog file ``path`` holds more than
    ``limits.max_decompressed_bytes`` once decompressed and decoded (413) or more than
    ``limits.max_rows`` rows (422), reading it in bounded memory: compressed files in chunks,
    otherwise only their metadata. A file whose metadata cannot be read is refused (422)."""
    fmt = file_format(path)
    opener = DECOMPRESSORS.get(path.suffix.lower())
    if fmt == "csv":
        check_stream(path, opener or open, limits, count_rows=True)
        return
    if opener is not None:
        check_stream(path, opener, limits, count_rows=False)
    try:
        rows, size = {"parquet": parquet_shape, "fits": fits_shape, "hdf5": hdf5_shape}[fmt](path, limits)
    except UploadRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.replace(str(path), "the file")  # the stored name is the server's
        raise UploadRefused(422, f"cannot read the {fmt} file's metadata: {first}") from None
    check_counts(rows, size, limits)
