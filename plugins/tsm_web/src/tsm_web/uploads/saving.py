"""An upload streamed to the server's folder under a random name, within the limit on the bytes
sent, then checked (:func:`~tsm_web.uploads.check.check_limits`); a refused file is deleted."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import UploadFile

from tsm_core.redshifts.readers import FILE_FORMATS
from tsm_web.uploads.check import check_limits
from tsm_web.uploads.limits import CHUNK, MB, UploadLimits, UploadTooLarge


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
                    raise UploadTooLarge(
                        f"the file is larger than the limit of {limits.max_bytes / MB:.0f} MB (max_upload_mb)"
                    )
                out.write(chunk)
        check_limits(target, limits)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
