"""The Photo-z Server's REST API (LIneA's ``pzserver_app``), so that its Python client works
against ``tsm serve``: ``PzServer(token=..., host="http://HOST:PORT/api/")``.

Everything is under ``/api/`` with trailing slashes, as Django REST Framework serves it:
``Authorization: Token <key>``; lists paginated as ``{"count", "next", "previous",
"results"}`` with ``page`` / ``page_size``; a bad value answered 400 with the field named,
``{"field": ["message"]}``. Uploaded redshift catalogs become registered catalogs of the
core registry once published; the ``training_set_maker`` pipeline builds training sets,
products of type ``training_set``.

Tokens: a user's token (``tsm users add NAME``) sees that user's products and the
official ones (the operator's, made with the command line, or marked official);
``$TSM_API_TOKEN`` is the admin token and sees everything. A client chooses releases by
name and science options only; the server decides every location (object catalog, output
directory, dust maps) and no answer shows a server path.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from tsm_web.jobs import Runner
from tsm_web.pzserver import contents, files, processes, products, releases, users
from tsm_web.pzserver.access import caller
from tsm_web.pzserver.drf import PzError
from tsm_web.pzserver.state import PzSettings

__all__ = ["include_pzserver"]

router = APIRouter(prefix="/api", dependencies=[Depends(caller)], tags=["Photo-z Server API"])
# in the order the routes were declared when this API was one module (the OpenAPI document follows it)
for _module in (releases, users, products, files, contents, processes):
    router.include_router(_module.router)


def include_pzserver(app: FastAPI, runner: Runner, token: str | None, max_upload_bytes: int) -> None:
    """Serve this API from ``app`` (called by :func:`tsm_web.app.create_app`)."""
    app.state.pzserver = PzSettings(
        token=token, max_upload_bytes=max_upload_bytes, runner=runner, shared_registry=app.state.registry
    )

    async def pz_error(_: Request, exc: PzError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    app.add_exception_handler(PzError, pz_error)
    app.include_router(router)
