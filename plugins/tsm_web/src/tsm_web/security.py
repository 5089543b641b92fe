"""The service's edge: request ids, security headers, the ``Host`` allow-list, the
cross-site check, the token, and upload limits that are enforced before a request body
is read; and the redaction of server locations from the messages clients see.

:class:`EdgeMiddleware` is plain ASGI, so that it can answer 400, 403, 401 or 413 from
the headers alone: a request for a foreign ``Host``, a state-changing request from
another site, a client that declares a body over the limit, or has no valid token, gets
its answer before sending the body, and a body that turns out longer than its
declaration is cut off at the limit.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: the server locations of the request being answered (set by :class:`EdgeMiddleware`),
#: for code that redacts a message without the app at hand (:func:`redact` with no roots)
REQUEST_ROOTS: ContextVar[tuple[str, ...]] = ContextVar("tsm_request_roots", default=())
#: methods that change state: refused when they come from another site
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: the most bytes of a request body that is not a multipart upload (JSON, a form's fields)
MAX_FIELDS_BODY = 1 << 20
#: GET routes of the Photo-z Server API that change state, as LIneA's client calls them
#: (stopping a process, reading an upload's columns into its product): checked like a POST
STATE_CHANGING_GETS = re.compile(r"^/api/(processes/[^/]+/stop|products/[^/]+/registry)/$")
#: the names a server bound to a loopback address answers to
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

#: room for the multipart envelope and form fields around an uploaded file
ENVELOPE_BYTES = 1 << 20
#: no page runs inline code or loads anything from elsewhere
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

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


#: what may follow a server root as a path (a path ends at a quote, space or punctuation)
_TAIL = r"(?:/[^\s/'\"`,;:()<>\[\]{}]*)*"
_AFTER_ROOT = r"(?![^\s/'\"`,;:()<>\[\]{}])"


def server_roots(*extra: str | os.PathLike[str] | None) -> tuple[str, ...]:
    """The server locations to redact: ``extra`` (the operator's folders) and the ones every
    server has ($TSM_HOME, the temporary folder, the home folder, Python's installation,
    the working folder), each also as its resolved path."""
    from tsm_core.config import tsm_home

    candidates = [*extra, tsm_home(), tempfile.gettempdir(), Path.home(), sys.prefix, sys.base_prefix, os.getcwd()]
    roots = set()
    for root in candidates:
        if not root:
            continue
        text = os.fspath(root)
        # a relative setting (``sample``, ``data/dp1``) is redacted as the absolute path it means,
        # not as a word that may appear anywhere in a message
        forms = {text} if "://" in text else {os.path.abspath(text), os.path.realpath(text)}
        roots |= {f.rstrip("/") for f in forms}
    return tuple(sorted(roots - {""}, key=len, reverse=True))


def redact(message: str, roots: Iterable[str] | None = None) -> str:
    """``message`` with each server root, and any path under it, replaced by one
    ``<server path>``. Nothing else is touched: a name the client typed, even one that looks
    like a path, is the client's data and stays. ``roots`` default to the current request's
    (:data:`REQUEST_ROOTS`)."""
    chosen = sorted({r for r in (REQUEST_ROOTS.get() if roots is None else roots) if r}, key=len, reverse=True)
    if not chosen or not message:
        return message
    pattern = re.compile(r"(?:file://)?(?<![\w.~-])(?:" + "|".join(map(re.escape, chosen)) + ")" + _AFTER_ROOT + _TAIL)
    return pattern.sub("<server path>", message)


def split_host(netloc: str) -> tuple[str, str]:
    """``(name, port)`` of a ``Host`` header or URL authority, the name lower-case with no
    trailing dot, IPv6 addresses in brackets; ``port`` is '' when none is given."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        name, _, rest = netloc.partition("]")
        return name + "]", rest.removeprefix(":")
    name, _, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
    return name.rstrip("."), port


class AllowedHosts:
    """The names the server answers to: ``name`` (any port), ``name:port``, or ``*`` (any
    ``Host``; the cross-site check then compares an ``Origin`` with the ``Host`` alone)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = [e.strip() for e in entries if e.strip()]
        self.any = "*" in self.entries
        self._allowed = {split_host(e) for e in self.entries if e != "*"}

    def allows(self, netloc: str) -> bool:
        """Whether ``netloc`` (``name`` or ``name:port``) is one of the allowed names."""
        name, port = split_host(netloc)
        return (name, port) in self._allowed or (name, "") in self._allowed

    def __str__(self) -> str:
        return ", ".join(self.entries)


def default_allowed_hosts(host: str, port: int) -> list[str]:
    """The names of a server bound to ``host``:``port``: the loopback names for a loopback
    address; for ``0.0.0.0`` or ``::`` (every interface) those and the machine's host
    names and addresses; otherwise ``host`` itself. Each with the port (and also without
    it on ports 80 and 443)."""
    host = host.strip().strip("[]")
    if host in ("127.0.0.1", "localhost", "::1"):
        names = list(LOOPBACK_NAMES)
    elif host in ("0.0.0.0", "::", ""):
        names = [*LOOPBACK_NAMES, *_machine_names()]
    else:
        names = [f"[{host}]" if ":" in host else host]
    bare = list(dict.fromkeys(names)) if port in (80, 443) else []  # browsers leave out a default port
    return [f"{n}:{port}" for n in dict.fromkeys(names)] + bare


def _machine_names() -> list[str]:
    """This machine's host names and the addresses they resolve to (IPv6 in brackets)."""
    names = [socket.gethostname(), socket.getfqdn()]
    addresses: list[str] = []
    for name in names:
        try:
            addresses += [info[4][0] for info in socket.getaddrinfo(name, None)]
        except OSError:
            continue
    return [n.lower() for n in names if n] + [f"[{a}]" if ":" in a else a for a in addresses]


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


#: on every response, early refusals included
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


async def _answer(send: Send, status: int, body: dict[str, Any], request_id: str) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id.encode()),
                *SECURITY_HEADERS,
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _shown(value: str) -> str:
    """A header value a client sent, quoted and cut short for an error message."""
    return repr(value if len(value) <= 100 else value[:100] + "...")


class BodyTooLarge(Exception):
    """The body grew past the limit while it was read."""


class EdgeMiddleware:
    """Request id and headers on every response; ``Host``, origin, token and size checked
    before a body is read.

    ``allowed_hosts`` are the names the server answers to (None: any ``Host``, and a
    state-changing request's ``Origin`` must match its ``Host``); ``is_authorized(token)``
    says whether a presented API token is valid (it is not consulted when the service has
    no token); ``max_body`` bounds every request body; ``roots`` are the server locations
    that :func:`redact` hides while the request is answered.
    """

    def __init__(
        self,
        app: Any,
        *,
        is_authorized: Callable[[str], bool] | None,
        max_body: int,
        allowed_hosts: Iterable[str] | None = None,
        roots: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.is_authorized = is_authorized
        self.max_body = max_body
        self.allowed_hosts = AllowedHosts(allowed_hosts) if allowed_hosts is not None else None
        self.roots = tuple(roots)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        """``(status, field, message)`` of a request refused from its headers alone, or None."""
        host = headers.get("host", "")
        if self.allowed_hosts is not None and not self.allowed_hosts.any and not self.allowed_hosts.allows(host):
            return (
                400,
                "host",
                (
                    f"the Host header {_shown(host)} is not a name of this server "
                    "(the operator lists them with tsm serve --allowed-hosts)"
                ),
            )
        method = scope["method"].upper()
        if method in UNSAFE_METHODS or (method == "GET" and STATE_CHANGING_GETS.match(scope["path"])):
            # a browser says where a request comes from even when the page hides its Referer
            fetch_site = headers.get("sec-fetch-site", "same-origin").lower()
            if fetch_site not in ("same-origin", "none"):
                return 403, "origin", f"cross-site request refused: Sec-Fetch-Site {_shown(fetch_site)}"
            for header in ("origin", "referer"):
                if header in headers:
                    if not self.same_origin(headers[header], host):
                        return (
                            403,
                            header,
                            (
                                f"cross-site request refused: {header.capitalize()} "
                                f"{_shown(headers[header])} is not this server"
                            ),
                        )
                    break
        has_body = headers.get("content-length", "0") not in ("", "0") or "chunked" in headers.get(
            "transfer-encoding", ""
        )
        if (
            has_body
            and scope["path"].startswith("/api")
            and self.is_authorized is not None
            and not self.is_authorized(bearer_token(headers.get("authorization", "")))
        ):
            return 401, "token", "a valid API token is required (Authorization: Bearer <token>)"
        declared = headers.get("content-length", "")
        limit = self.body_limit(headers)
        if declared.isdigit() and int(declared) > limit:
            return 413, "file", f"the request body of {int(declared)} bytes is over the limit of {limit} bytes"
        return None

    def body_limit(self, headers: dict[str, str]) -> int:
        """The most bytes a request body may have: ``max_body`` for a multipart upload, at most
        :data:`MAX_FIELDS_BODY` for anything else (a JSON or form body is parsed in memory)."""
        if headers.get("content-type", "").lower().startswith("multipart/form-data"):
            return self.max_body
        return min(self.max_body, MAX_FIELDS_BODY)

    def same_origin(self, url: str, host: str) -> bool:
        """Whether ``url`` (an ``Origin`` or ``Referer``) is this server: http(s) and its
        authority the request's ``Host`` or one of the allowed names."""
        try:
            parts = urlsplit(url.strip())
            netloc = parts.netloc
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not netloc or "@" in netloc:
            return False
        if split_host(netloc) == split_host(host):
            return True
        return self.allowed_hosts is not None and not self.allowed_hosts.any and self.allowed_hosts.allows(netloc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:12]
        drf = scope["path"].startswith("/api/") and scope["path"].endswith("/")
        scope.setdefault("state", {})["request_id"] = request_id
        refused = self.refusal(scope, _headers(scope))
        if refused:
            status, field, message = refused
            if status in (400, 403):
                log.warning("request %s refused (%d): %s", request_id, status, message)
            await _answer(send, status, _error(field, message, request_id, drf), request_id)
            return
        roots_token = REQUEST_ROOTS.set(self.roots)
        max_body = self.body_limit(_headers(scope))

        received = 0
        cut_off = False  # the body went over the limit: whatever the app answers becomes a 413
        started = False

        async def bounded_receive() -> dict[str, Any]:
            nonlocal received, cut_off
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    cut_off = True
                    log.warning("request %s: body cut off at the limit of %d bytes", request_id, max_body)
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal started
            if cut_off:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _answer(
                        send,
                        413,
                        _error("file", f"the request body is over the limit of {max_body} bytes", request_id, drf),
                        request_id,
                    )
                return
            if message["type"] == "http.response.start":
                started = True
                extra = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"text/html") and not any(
                    k == b"content-security-policy" for k, _ in message.get("headers", [])
                ):
                    extra.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                await _answer(
                    send,
                    413,
                    _error("file", f"the request body is over the limit of {max_body} bytes", request_id, drf),
                    request_id,
                )
        finally:
            REQUEST_ROOTS.reset(roots_token)


#: refusals that Django REST Framework answers as ``{"detail": ...}``
_DRF_DETAIL = ("token", "host", "origin", "referer")


def _error(field: str, message: str, request_id: str, drf: bool = False) -> dict[str, Any]:
    """The JSON API's error body, or (``drf``, the Photo-z Server API's routes ending in a
    slash) Django REST Framework's: ``{"field": ["message"]}``, ``{"detail": ...}`` for the
    token, ``Host`` and cross-site refusals."""
    if drf:
        return {"detail": message} if field in _DRF_DETAIL else {field: [message]}
    return {
        "field": field,
        "message": message,
        "errors": [{"field": field, "message": message}],
        "request_id": request_id,
    }
