"""Error bodies of the API: ``{"field", "message", "errors": [...], "request_id"}``.

A :class:`~tsm_core.errors.TSMError` keeps its config key as ``field``; its message is
shown with server locations redacted. Anything unexpected is logged with the request
id and answered with the id only, never with the exception's text.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tsm_core.errors import TSMError

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error to answer with ``status`` and the ``field`` at fault."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        self.status, self.message, self.field = status, message, field
        super().__init__(message)


class FieldError(BaseModel):
    field: str
    message: str
    #: pydantic's kind of refusal (``string_too_short``, ``greater_than``, ...), where there is one
    type: str = ""


class ErrorBody(BaseModel):
    """Every error the API answers."""

    field: str
    message: str
    errors: list[FieldError]
    request_id: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no valid API token"},
    404: {"model": ErrorBody, "description": "no such release or training set"},
    409: {"model": ErrorBody, "description": "the training set has no file (yet)"},
    413: {"model": ErrorBody, "description": "the upload is over the server's limit"},
    422: {"model": ErrorBody, "description": "a value is invalid; `field` names its config key"},
}


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def error_response(request: Request, status: int, errors: list[dict[str, str]]) -> JSONResponse:
    first = errors[0]
    body = {"field": first["field"], "message": first["message"], "errors": errors, "request_id": _request_id(request)}
    return JSONResponse(body, status_code=status)


def install(app: FastAPI) -> None:
    """Register the API's exception handlers on ``app``."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(
            request, exc.status, [{"field": exc.field, "message": request.app.state.redact(exc.message)}]
        )

    @app.exception_handler(TSMError)
    async def tsm_error(request: Request, exc: TSMError) -> JSONResponse:
        log.info("request %s: %s", _request_id(request), exc)
        redact = request.app.state.redact
        # a config's every refusal, each at its own key (ConfigError.problems); `message` is the first's
        problems = getattr(exc, "problems", None) or [{"field": exc.key, "message": exc.message}]
        return error_response(request, 422, [{**p, "message": redact(p["message"])} for p in problems])

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"] if p not in ("body", "query", "path", "form")]
            message = err["msg"].removeprefix("Value error, ")
            errors.append(
                {
                    "field": ".".join(loc),
                    "message": "unknown key" if err["type"] == "extra_forbidden" else message,
                    "type": err["type"],
                }
            )
        return error_response(request, 422, errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s failed", _request_id(request))
        message = f"internal error; the server's log has the details under request id {_request_id(request)}"
        return error_response(request, 500, [{"field": "", "message": message}])
