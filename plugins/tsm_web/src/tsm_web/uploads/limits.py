"""The operator's limits on an upload and the refusals that name them."""

from __future__ import annotations

from dataclasses import dataclass

#: bytes read at a time, from the request or a (decompressed) file
CHUNK = 1 << 20
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


def too_large(limits: UploadLimits) -> UploadRefused:
    limit = limits.max_decompressed_bytes / MB
    return UploadRefused(
        413,
        f"the file's data is larger than the limit of {limit:.0f} MB once decompressed (max_upload_decompressed_mb)",
    )


def too_long(limits: UploadLimits) -> UploadRefused:
    return UploadRefused(422, f"the file has more than {limits.max_rows} rows, the limit (max_upload_rows)")


def check_counts(rows: int, size: int, limits: UploadLimits) -> None:
    if size > limits.max_decompressed_bytes:
        raise too_large(limits)
    if rows > limits.max_rows:
        raise too_long(limits)
