"""The FastAPI application of ``tsm serve``: the JSON API under ``/api``, the pages, the
offline API documentation, behind :class:`~tsm_web.security.EdgeMiddleware`.

The API uses the core's service layer and registry, so the CLI, Python and the web see
the same catalogs and products; the operator's :class:`~tsm_web.settings.ServerSettings`
fix every location and compute resource a run uses.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tsm_core import plugins
from tsm_core.config import tsm_home
from tsm_core.products.recovery import recover_once
from tsm_core.products.registry import Registry
from tsm_web import api, errors, pages
from tsm_web.auth import Unauthenticated, identify
from tsm_web.jobs import Runner
from tsm_web.pzserver import include_pzserver
from tsm_web.security import ENVELOPE_BYTES, EdgeMiddleware, redact, server_roots
from tsm_web.settings import ServerSettings
from tsm_web.users import Users


def create_app(settings: ServerSettings | None = None, **overrides: Any) -> FastAPI:
    """The web service over the registry of ``$TSM_HOME``.

    ``settings`` default to :meth:`ServerSettings.load` (the environment); ``overrides``
    replace single settings (``create_app(max_upload_mb=2)``).
    """
    settings = settings or ServerSettings.load()
    if overrides:
        settings = ServerSettings.model_validate(settings.model_dump() | overrides)
    recover_once(Registry.at_home(tsm_home()))  # runs a server that stopped left behind
    runner = Runner(settings.max_runs)
    runner.warm()  # the run path imported while the server starts, not by its first training set

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        runner.shutdown()

    app = FastAPI(
        title="Training Set Maker",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Build photo-z training sets: spectroscopic redshifts x Rubin Object catalogs. "
        "When the server has a token, send it as `Authorization: Bearer <token>`.",
    )
    app.state.settings = settings
    app.state.runner = runner
    # one registry for the app: both APIs, the pages' data calls, the runner and the token check
    registry = app.state.registry = Registry.at_home(tsm_home())
    users = app.state.users = Users(registry)  # their table made once, not on each request
    token = settings.token

    def authorize(given: str) -> bool:
        """The operator's token, or a user's (``tsm users add``): :func:`tsm_web.auth.identify`."""
        try:
            identify(token, users, f"Bearer {given}")
        except Unauthenticated:
            return False
        return True

    app.state.authorize = authorize if token else None
    published = [place.path for release in plugins.object_catalogs().values() for place in release.locations()]
    roots = server_roots(*settings.release_paths.values(), *published, settings.dust_maps_dir, settings.products_dir)
    app.state.redact = lambda message: redact(message, roots)
    errors.install(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    # the Photo-z Server's API under /api/.../ (trailing slashes), for LIneA's pzserver client
    include_pzserver(app, runner, token, settings.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.mount(pages.DOCS_ASSETS, StaticFiles(directory=pages.docs_assets()), name="docs-assets")
    app.add_middleware(
        EdgeMiddleware,
        is_authorized=app.state.authorize,
        max_body=settings.max_upload_bytes + ENVELOPE_BYTES,
        allowed_hosts=settings.allowed_hosts,
        roots=roots,
    )
    _declare_token_scheme(app)
    return app


def _declare_token_scheme(app: FastAPI) -> None:
    """The OpenAPI document names the token scheme of the API."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["token"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "the server's API token (TSM_API_TOKEN)",
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/api"):
                for operation in operations.values():
                    operation["security"] = [{"token": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
