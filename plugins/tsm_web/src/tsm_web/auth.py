"""Who calls, and what they may see and change: the one authorization model of the JSON
API, the Photo-z Server API and the pages' data calls.

The caller is resolved once per request from ``Authorization: Bearer <t>`` (or ``Token <t>``):

- the operator's token (``TSM_API_TOKEN``) is the admin: everything, every owner;
- a user's token (``tsm users add NAME``) is that user: their own products and registered
  catalogs, and the operator's ("official") ones, read-only;
- without a configured ``TSM_API_TOKEN`` (the local single-user mode) a request without a
  user's token is anonymous with the admin's access; with one, it is refused (401).

What a caller may not see does not exist for them: the APIs answer 404, never 403 with
details. Listings filter by owner in the registry's SQL (``visible_to``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import Request

from tsm_web.security import bearer_token, token_matches
from tsm_web.users import Users


class Owned(Protocol):
    """Anything with an owner (a user name, or None for the operator's)."""

    owner: str | None


@dataclass(frozen=True)
class Caller:
    """Who called: a user by ``name``, or (``name`` None) the admin or, in open mode, anyone."""

    name: str | None

    @property
    def is_admin(self) -> bool:
        """Whether the caller sees and may change everything."""
        return self.name is None

    @property
    def visible_to(self) -> str | None:
        """The registry's ``visible_to`` filter for this caller (None: everything)."""
        return self.name

    def can_read(self, item: Owned, official: bool = False) -> bool:
        """Own, the operator's (owner None) or marked ``official``; everything for the admin."""
        return self.is_admin or item.owner is None or official or item.owner == self.name

    def can_write(self, item: Owned) -> bool:
        """Own only (the operator's are read-only for users); everything for the admin."""
        return self.is_admin or (item.owner is not None and item.owner == self.name)


class Unauthenticated(Exception):
    """No valid token where one is required; ``provided`` says whether one was sent at all."""

    def __init__(self, provided: bool) -> None:
        self.provided = provided
        super().__init__("a valid API token is required (Authorization: Bearer <token>)")


def identify(admin_token: str | None, users: Users, authorization: str) -> Caller:
    """The caller of an ``Authorization`` header value (see the module's rules)."""
    given = bearer_token(authorization)
    if admin_token and token_matches(given, admin_token):
        return Caller(None)
    user = users.for_token(given) if given else None
    if user is not None:
        return Caller(user.name)
    if admin_token:
        raise Unauthenticated(bool(given))
    return Caller(None)  # open mode: anonymous, with full access


def caller_of(request: Request) -> Caller:
    """The request's caller, resolved once and kept on ``request.state``; raises
    :class:`Unauthenticated`."""
    known = getattr(request.state, "caller", None)
    if known is None:
        known = identify(
            request.app.state.settings.token, request.app.state.users, request.headers.get("authorization", "")
        )
        request.state.caller = known
    return known


def max_active(request: Request, who: Caller) -> int | None:
    """How many training sets ``who`` may have queued or running (None: the runner bounds them)."""
    return None if who.is_admin else request.app.state.settings.max_queued_per_user
