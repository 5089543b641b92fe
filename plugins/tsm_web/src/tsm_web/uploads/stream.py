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

#: the most columns a CSV header may name (pandas takes about 1 kB a column, whatever it holds)
MAX_COLUMNS = 1000
#: the longest line a CSV may have (a header or a row of millions of empty fields)
MAX_LINE_BYTES = CHUNK
#: the delimiters a CSV may use (sniffed by the reader)
DELIMITERS = (b",", b"\t", b";", b"|", b" ")

#: the openers of the compressed suffixes the readers accept (FITS tile compression, ``.fz``,
#: is judged from its headers like any FITS file)
DECOMPRESSORS: dict[str, Callable[[Path], IO[bytes]]] = {".gz": gzip.open, ".bz2": bz2.open}


def check_stream(path: Path, opener: Callable[..., IO[bytes]], limits: UploadLimits, count_rows: bool) -> None:
    """Read ``path`` through ``opener`` in chunks, stopping at the first limit passed (CSV
    rows are lines after the header; a quoted line break counts as a row, erring on the safe side)."""
    size = lines = 0
    last = b"\n"
    header = b""  # the first line, while it is being read
    line_length = 0  # bytes since the last line break
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
                    line_length = _longest_line(chunk, line_length)
                    if header is not None:
                        header = _header(header + chunk)
    except UploadRefused:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise UploadRefused(422, f"cannot decompress the file: {exc}") from None
    if count_rows and (lines + (last not in b"\r\n")) - 1 > limits.max_rows:
        raise too_long(limits)


def _longest_line(chunk: bytes, carried: int) -> int:
    """The length of the line still open at the end of ``chunk`` (``carried`` bytes were open
    before it); refuses a line longer than :data:`MAX_LINE_BYTES`."""
    breaks = [i for i in (chunk.rfind(b"\n"), chunk.rfind(b"\r")) if i >= 0]
    first = min((i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0), default=len(chunk))
    if carried + first > MAX_LINE_BYTES:
        raise UploadRefused(422, f"a line of the file is longer than {MAX_LINE_BYTES // 2**20} MB")
    if breaks:  # a line wholly inside one chunk is at most a chunk long: CHUNK == MAX_LINE_BYTES
        return len(chunk) - 1 - max(breaks)
    return carried + len(chunk)


def _header(start: bytes) -> bytes | None:
    """The header's bytes read so far, or None once it is complete and checked: a header
    naming more than :data:`MAX_COLUMNS` columns (with any delimiter) is refused."""
    end = min((i for i in (start.find(b"\n"), start.find(b"\r")) if i >= 0), default=-1)
    line = start if end < 0 else start[:end]
    if max(line.count(d) for d in DELIMITERS) + 1 > MAX_COLUMNS:
        raise UploadRefused(422, f"the file's header names more than {MAX_COLUMNS} columns, the limit")
    return start if end < 0 else None
