"""The Training Set Maker's web form and HTTP API, as the Photo-z Server offers them."""

from tsm_web.app import create_app

__all__ = ["create_app"]
