"""Django REST Framework's conventions, as the Photo-z Server's client expects them: error
bodies (``{"field": ["message"]}``, ``{"detail": ...}``), request bodies sent as JSON or forms,
typed fields, list filters and pages (``{"count", "next", "previous", "results"}``)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from tsm_web.pzserver.params import drf_errors
from tsm_web.security import redact


class PzError(Exception):
    """An answer of ``status`` with a DRF-style ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        super().__init__(json.dumps(body))


def bad(field_name: str, message: str) -> PzError:
    """A DRF-style 400 naming ``field_name``."""
    return PzError(400, {field_name: [message]})


def not_found() -> PzError:
    return PzError(404, {"detail": "Not found."})


def scrub(message: str) -> str:
    """``message`` without server locations: the request's server roots and the paths under
    them (:func:`tsm_web.security.redact`, the one redaction of the service)."""
    return redact(message)


def throw(exc: Exception) -> Any:
    """Raise ``exc`` (for ``found or throw(not_found())``)."""
    raise exc


async def body_of(request: Request) -> dict[str, Any]:
    """The request's fields, whether sent as JSON, urlencoded or multipart (files excluded)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        try:
            data = await request.json()
        except (ValueError, RecursionError):  # nested deeper than the parser goes: not data we take
            raise PzError(400, {"detail": "JSON parse error"}) from None
        if not isinstance(data, dict):
            raise PzError(400, {"non_field_errors": ["Invalid data. Expected a dictionary."]})
        return data
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        data: dict[str, Any] = {}
        for key in form:
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            if values:
                data[key] = values if len(values) > 1 or key == "inputs" else values[0]
        return data
    return {}


Body = TypeVar("Body", bound=BaseModel)


def validated(model: type[Body], data: dict[str, Any]) -> Body:
    """``data`` as ``model``, or a DRF-style 400 naming the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PzError(400, drf_errors(exc)) from None


def as_int(data: dict[str, Any], key: str, required: bool = True) -> int | None:
    value = data.get(key)
    if value in (None, "") and not required:
        return None
    if isinstance(value, bool):
        raise bad(key, "A valid integer is required.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(key, "This field is required." if value in (None, "") else "A valid integer is required.") from None


def as_bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0", "", "none"):
        return False
    raise bad(key, "Must be a valid boolean.")


def paginate(request: Request, items: list[Any]) -> dict[str, Any]:
    """A DRF page of ``items`` (``page``, ``page_size`` up to 1000, default 100)."""
    q = request.query_params
    try:
        page = int(q.get("page") or 1)
        size = min(int(q.get("page_size") or 100), 1000)
    except ValueError:
        raise not_found() from None
    if page < 1 or size < 1 or (page > 1 and (page - 1) * size >= len(items)):
        raise PzError(404, {"detail": "Invalid page."})
    start = (page - 1) * size
    url = request.url
    return {
        "count": len(items),
        "next": str(url.include_query_params(page=page + 1)) if start + size < len(items) else None,
        "previous": str(url.include_query_params(page=page - 1)) if page > 1 else None,
        "results": items[start : start + size],
    }


def matches(value: Any, wanted: str | None) -> bool:
    """A DRF filter: ``wanted`` unset, or one of its comma-separated values equals ``value`` (any case)."""
    if wanted is None:
        return True
    return str(value).lower() in {w.strip().lower() for w in wanted.split(",")}
