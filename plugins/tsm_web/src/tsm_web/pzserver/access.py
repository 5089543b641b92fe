"""Who calls the Photo-z Server API and what they reach: the caller of :mod:`tsm_web.auth`
(the one resolution both APIs use) with DRF's 401 bodies, and the products and processes a
caller may read or change; anything else answers 404, as if it did not exist."""

from __future__ import annotations

from fastapi import Request

from tsm_web.auth import Caller, Unauthenticated, caller_of
from tsm_web.pzserver.drf import PzError, not_found
from tsm_web.pzserver.state import PzSettings
from tsm_web.pzserver.store import PzProcess, PzProduct


def caller(request: Request) -> Caller:
    """Who calls (:mod:`tsm_web.auth`), with DRF's 401 bodies."""
    try:
        return caller_of(request)
    except Unauthenticated as exc:
        detail = "Invalid token." if exc.provided else "Authentication credentials were not provided."
        raise PzError(401, {"detail": detail}) from None


def can_read(who: Caller, product: PzProduct) -> bool:
    """Whether ``who`` may read ``product`` (own, the operator's, or marked official)."""
    return who.can_read(product, product.official)


def readable(pz: PzSettings, who: Caller, product_id: int) -> PzProduct:
    product = pz.store().product(product_id)
    if product is None or not can_read(who, product):
        raise not_found()  # another user's product is not even said to exist
    return product


def writable(pz: PzSettings, who: Caller, product_id: int) -> PzProduct:
    product = readable(pz, who, product_id)
    if not who.can_write(product):
        raise not_found()  # read-only for this caller: not found for what they may not change
    return product


def readable_process(pz: PzSettings, who: Caller, process_id: int) -> PzProcess:
    process = pz.store().process(process_id)
    if process is None or not (who.is_admin or process.owner == who.name):
        raise not_found()
    return process
