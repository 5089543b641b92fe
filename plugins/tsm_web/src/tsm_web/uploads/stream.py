"""Limits of files read as a stream: compressed files (``.gz``, ``.bz2``) decompressed in chunks
and counted, CSV rows counted as lines."""

from __future__ import annotations

import bz2
import gzip
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tsm_web.uploads.limits import CHUNK, UploadLimits, UploadRefused, too_large, too_long

#: the openers of the compressed suffixes the readers accept (FITS tile compression, ``.fz``,
#: is judged from its headers like any FITS file)
DECOMPRESSORS: dict[str, Callable[[Path], IO[bytes]]] = {".gz": gzip.open, ".bz2": bz2.open}


def check_stream(path: Path, opener: Callable[..., IO[bytes]], limits: UploadLimits, count_rows: bool) -> None:
    """Read ``path`` through ``opener`` in chunks, stopping at the first limit passed (CSV
    rows are lines after the header; a quoted line break counts as a row, erring on the safe side)."""
    size = lines = 0
    last = b"\n"
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                size += len(chunk)
                if size > limits.max_decompressed_bytes:
                    raise too_large(limits)
                if count_rows:
                    # pandas also ends a line at a lone "\r"; a "\r\n" across chunks counts twice
                    lines += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
                    last = chunk[-1:]  # a last line without its line break is a row too
                    if lines - 1 > limits.max_rows:
                        raise too_long(limits)
    except UploadRefused:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise UploadRefused(422, f"cannot decompress the file: {exc}") from None
    if count_rows and (lines + (last not in b"\r\n")) - 1 > limits.max_rows:
        raise too_long(limits)
