"""The service's edge: request ids, security headers, the token, and upload limits that
are enforced before a request body is read.

:class:`EdgeMiddleware` is plain ASGI, so that it can answer 401 or 413 from the
headers alone: a client that declares a body over the limit, or has no valid token,
gets its answer before sending the body, and a body that turns out longer than its
declaration is cut off at the limit.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

#: room for the multipart envelope and form fields around an uploaded file
ENVELOPE_BYTES = 1 << 20
#: no page runs inline code or loads anything from elsewhere
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <t>`` or ``Token <t>`` header ('' if none)."""
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else ""


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented token with the expected one."""
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())


_PATH = re.compile(r"(?:[A-Za-z]+://[^\s'\"]+|(?<![\w.])(?:~|\.{1,2})?/(?:[^\s/'\",:;()]+/)*[^\s/'\",:;()]*)")


def redact(message: str, roots: Iterable[str | None] = ()) -> str:
    """``message`` with server locations (file paths, URLs) replaced by ``<server path>``."""
    for root in sorted((r for r in roots if r), key=len, reverse=True):
        message = message.replace(str(root), "<server path>")
    return _PATH.sub(lambda m: m.group(0) if m.group(0) in ("/", "//") else "<server path>", message)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _answer(send: Send, status: int, body: dict[str, Any], request_id: str) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


class BodyTooLarge(Exception):
    """The body grew past the limit while it was read."""


class EdgeMiddleware:
    """Request id and headers on every response; token and size checked before a body is read.

    ``is_authorized(token)`` says whether a presented API token is valid (it is not
    consulted when the service has no token); ``max_body`` bounds every request body.
    """

    def __init__(self, app: Any, *, is_authorized: Callable[[str], bool] | None, max_body: int) -> None:
        self.app = app
        self.is_authorized = is_authorized
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:12]
        drf = scope["path"].startswith("/api/") and scope["path"].endswith("/")
        scope.setdefault("state", {})["request_id"] = request_id
        headers = _headers(scope)
        has_body = headers.get("content-length", "0") not in ("", "0") or "chunked" in headers.get("transfer-encoding", "")
        if has_body and scope["path"].startswith("/api") and self.is_authorized is not None:
            if not self.is_authorized(bearer_token(headers.get("authorization", ""))):
                await _answer(send, 401, _error("token", "a valid API token is required (Authorization: Bearer <token>)",
                                                request_id, drf), request_id)
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await _answer(send, 413, _error("file", f"the request body of {int(declared)} bytes is over the limit of "
                                            f"{self.max_body} bytes", request_id, drf), request_id)
            return

        received = 0
        cut_off = False  # the body went over the limit: whatever the app answers becomes a 413
        started = False

        async def bounded_receive() -> dict[str, Any]:
            nonlocal received, cut_off
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    cut_off = True
                    log.warning("request %s: body cut off at the limit of %d bytes", request_id, self.max_body)
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal started
            if cut_off:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _answer(send, 413, _error("file", f"the request body is over the limit of "
                                                    f"{self.max_body} bytes", request_id, drf), request_id)
                return
            if message["type"] == "http.response.start":
                started = True
                extra = [(b"x-request-id", request_id.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer")]
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"text/html") and not any(k == b"content-security-policy" for k, _ in message.get("headers", [])):
                    extra.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, _error("file", f"the request body is over the limit of {self.max_body} bytes",
                                                request_id, drf), request_id)


def _error(field: str, message: str, request_id: str, drf: bool = False) -> dict[str, Any]:
    """The JSON API's error body, or (``drf``, the Photo-z Server API's routes ending in a
    slash) Django REST Framework's: ``{"field": ["message"]}``, ``{"detail": ...}`` for the token."""
    if drf:
        return {"detail": message} if field == "token" else {field: [message]}
    return {"field": field, "message": message, "errors": [{"field": field, "message": message}], "request_id": request_id}
