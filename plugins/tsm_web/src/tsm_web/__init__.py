"""The Training Set Maker's web form and HTTP API, as the Photo-z Server offers them.

``create_app`` is imported on first use, so that loading the plugin (for every ``tsm``
command) does not import FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tsm_web.app import create_app

        return create_app
    raise AttributeError(f"module 'tsm_web' has no attribute {name!r}")
