"""Uploaded redshift catalogs: size-limited, stored under a generated name."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import UploadFile

from tsm_core.redshift import FILE_FORMATS

CHUNK = 1 << 20


class UploadTooLarge(ValueError):
    """The upload exceeds the server's limit."""


def suffix_of(filename: str) -> str:
    """The known catalog suffix of an uploaded file name (the name itself is never used)."""
    lower = (filename or "").lower()
    for suffixes in FILE_FORMATS.values():
        for suffix in sorted(suffixes, key=len, reverse=True):
            if lower.endswith(suffix):
                return suffix
    known = ", ".join(s for suffixes in FILE_FORMATS.values() for s in suffixes)
    raise ValueError(f"unsupported file type {Path(filename or '').suffix!r}; upload one of {known}")


def save_upload(upload: UploadFile, directory: Path, max_bytes: int) -> Path:
    """Stream ``upload`` to ``directory`` under a random name; refuse more than ``max_bytes``."""
    suffix = suffix_of(upload.filename or "")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{uuid.uuid4().hex}{suffix}"
    size = 0
    try:
        with open(target, "wb") as out:
            while chunk := upload.file.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(f"the file is larger than the limit of {max_bytes / 2**20:.0f} MB")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
