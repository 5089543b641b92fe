"""What the operator of ``tsm serve`` decides: access, limits, and the server-side
locations and compute that every run uses (a client never sets those).

Read from a YAML file (``tsm serve --config server.yaml``), then the environment
(``TSM_API_TOKEN``, the limits' variables in :data:`LIMIT_ENV`, ``TSM_ALLOWED_HOSTS``), then the command's options, each later
source overriding the earlier one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from tsm_core.config import read_yaml
from tsm_core.errors import ConfigError
from tsm_web.trust import OperatorSettings
from tsm_web.uploads import UploadLimits

TOKEN_ENV = "TSM_API_TOKEN"
MAX_UPLOAD_ENV = "TSM_MAX_UPLOAD_MB"
#: the environment variable of each upload limit (the field it sets)
LIMIT_ENV = {
    "max_upload_mb": MAX_UPLOAD_ENV,
    "max_upload_decompressed_mb": "TSM_MAX_UPLOAD_DECOMPRESSED_MB",
    "max_upload_rows": "TSM_MAX_UPLOAD_ROWS",
}
ALLOWED_HOSTS_ENV = "TSM_ALLOWED_HOSTS"


class ServerSettings(OperatorSettings):
    """The operator's settings of one ``tsm serve`` process.

    ``token``, when set, is required on every API call (``Authorization: Bearer <token>``
    or ``Token <token>``); ``max_runs`` training sets are built at once; uploads larger
    than ``max_upload_mb`` are refused before they are read, and uploads whose data
    (decompressed, decoded) is larger than ``max_upload_decompressed_mb`` or longer than
    ``max_upload_rows`` rows are refused before they are read whole (:mod:`tsm_web.uploads`).
    than ``max_upload_mb`` are refused before they are read. ``allowed_hosts`` are the
    names (``name`` or ``name:port``, ``*`` for any) a request's ``Host`` may give besides
    the bound address's own (``tsm serve`` adds those); None checks no ``Host``.
    """

    token: str | None = None
    max_runs: int = Field(2, ge=1, le=64)
    max_upload_mb: float = Field(200, gt=0)
    max_upload_decompressed_mb: float = Field(2000, gt=0)
    max_upload_rows: int = Field(10_000_000, ge=1)
    #: training sets one user (a user's token) may have queued or running at once; over it: 429
    max_queued_per_user: int = Field(4, ge=1, le=1000)
    allowed_hosts: list[str] | None = None

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        """A comma-separated string (the environment, the command line) is a list of names."""
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        if isinstance(value, (list, tuple)):
            return [name.strip() for item in value for name in str(item).split(",") if name.strip()]
        return value

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def upload_limits(self) -> UploadLimits:
        """The limits every upload is checked against (:func:`tsm_web.uploads.save_upload`)."""
        return UploadLimits(
            max_bytes=self.max_upload_bytes,
            max_decompressed_bytes=int(self.max_upload_decompressed_mb * 2**20),
            max_rows=self.max_upload_rows,
        )

    @classmethod
    def load(cls, config_file: str | Path | None = None, **options: Any) -> ServerSettings:
        """Settings from ``config_file``, the environment, then ``options`` (None = not given)."""
        data: dict[str, Any] = {}
        if config_file:
            data = read_yaml(config_file, "--config") or {}
            if not isinstance(data, dict):
                raise ConfigError("--config", f"{config_file} must hold a mapping of settings")
        if os.environ.get(TOKEN_ENV):
            data["token"] = os.environ[TOKEN_ENV]
        for key, variable in LIMIT_ENV.items():
            if os.environ.get(variable):
                data[key] = os.environ[variable]
        if os.environ.get(MAX_UPLOAD_ENV):
            data["max_upload_mb"] = os.environ[MAX_UPLOAD_ENV]
        if os.environ.get(ALLOWED_HOSTS_ENV):
            data["allowed_hosts"] = os.environ[ALLOWED_HOSTS_ENV]
        data.update({k: v for k, v in options.items() if v is not None})
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ConfigError(key, err["msg"].removeprefix("Value error, ")) from None
