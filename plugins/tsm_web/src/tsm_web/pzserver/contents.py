"""The Photo-z Server's ``product-contents/``: the columns of an upload's main file and their
association to the canonical redshift columns (``alias``: ra, dec, z, ...)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from tsm_core.config import CANONICAL_REDSHIFT_COLUMNS
from tsm_web.auth import Caller
from tsm_web.pzserver.access import caller, readable, writable
from tsm_web.pzserver.drf import bad, body_of, not_found, paginate, throw
from tsm_web.pzserver.schemas import ALIAS_SPELLING, ALIASES, UCDS, content_out
from tsm_web.pzserver.state import settings

router = APIRouter()


@router.get("/product-contents/", summary="Columns of a product's main file")
def list_contents(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    wanted = request.query_params.get("product")
    if wanted is None:
        products = pz.store().products(who.visible_to)
    else:
        try:
            products = [readable(pz, who, int(wanted))]
        except ValueError:
            raise bad("product", "A valid integer is required.") from None
    items = [content_out(c) for p in products for c in pz.store().contents(p.id)]
    return paginate(request, items)


@router.get("/product-contents/{content_id}/", summary="One column")
def get_content(request: Request, content_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    content = pz.store().content(content_id) or throw(not_found())
    readable(pz, who, content.product_id)
    return content_out(content)


@router.patch("/product-contents/{content_id}/", summary="Associate a column: alias ra, dec, z, z_err, z_flag, ...")
async def patch_content(request: Request, content_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    store = pz.store()
    content = store.content(content_id) or throw(not_found())
    product = writable(pz, who, content.product_id)
    if product.status != 0:
        raise bad("alias", "the columns of a published product cannot change")
    data = await body_of(request)
    alias = str(data.get("alias") or "").strip()
    if alias and alias.lower() not in ALIASES:
        valid = ", ".join(ALIAS_SPELLING.get(c, c) for c in CANONICAL_REDSHIFT_COLUMNS)
        raise bad("alias", f"unknown column alias {alias!r}; valid: {valid}")
    canonical = ALIASES.get(alias.lower())
    ucd = str(data.get("ucd") or "") or (UCDS[canonical] if canonical else "")
    return content_out(store.set_alias(content.id, ucd or None, alias or None))
