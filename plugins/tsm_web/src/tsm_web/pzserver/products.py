"""The Photo-z Server's ``products/``: listing with its filters, uploads started, updated,
published (registered as redshift catalogs of the core) and deleted, and an upload's main
file read for its columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from tsm_core import plugins
from tsm_core.errors import TSMError
from tsm_web.auth import Caller
from tsm_web.pzserver.access import caller, readable, writable
from tsm_web.pzserver.drf import PzError, as_bool, as_int, bad, body_of, matches, paginate, scrub, validated
from tsm_web.pzserver.releases import TYPE_BY_ID, release_by_id
from tsm_web.pzserver.schemas import (
    ALIAS_SPELLING,
    ALIASES,
    ProductCreate,
    internal_name,
    main_file,
    product_out,
    training_set,
)
from tsm_web.pzserver.state import PzSettings, settings
from tsm_web.pzserver.store import PzProduct

router = APIRouter()

PRODUCT_FILTERS = (
    "status",
    "product_type",
    "product_type_name",
    "release",
    "release_name",
    "internal_name",
    "display_name",
    "official_product",
    "uploaded_by",
    "product_name",
)


@router.get("/products/", summary="Products the caller may read, newest first")
@router.get("//products/", include_in_schema=False)  # the client's own spelling in get_products()
def list_products(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    store = pz.store()
    with pz.lock:
        store.adopt_operator_products()
    q = request.query_params
    items = []
    search = (q.get("search") or "").lower()
    for product in store.products(who.visible_to):
        out = product_out(pz, who, product)
        checks = {
            "status": out["status"],
            "product_type": out["product_type"],
            "release": out["release"],
            "internal_name": out["internal_name"],
            "display_name": out["display_name"],
            "official_product": out["official_product"],
            "uploaded_by": out["uploaded_by"],
            "product_name": out["display_name"],
        }
        if not all(matches(v, q.get(k)) for k, v in checks.items()):
            continue
        names = q.get("product_type_name") or q.get("product_type_name__or")
        if names and not (
            matches(out["product_type_internal_name"], names) or matches(out["product_type_name"], names)
        ):
            continue
        rel = q.get("release_name") or q.get("release_name__or")
        if rel and not (matches(product.release, rel) or matches(out["release_name"], rel)):
            continue
        if search and search not in out["display_name"].lower():
            continue
        items.append(out)
    return paginate(request, items)


@router.options("/products/", summary="The filters of the product list")
def product_options() -> dict[str, Any]:
    return {
        "name": "Product List",
        "filterset": list(PRODUCT_FILTERS) + ["product_type_name__or", "release_name__or"],
        "search": ["display_name"],
        "ordering": ["id", "created_at"],
    }


@router.post("/products/", status_code=201, summary="Start an upload: a redshift catalog being registered")
async def create_product(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    body = validated(ProductCreate, await body_of(request))
    if body.product_type not in TYPE_BY_ID:
        raise bad("product_type", f'Invalid pk "{body.product_type}" - object does not exist.')
    if TYPE_BY_ID[body.product_type]["name"] != "redshift_catalog":
        raise bad(
            "product_type",
            "only redshift_catalog products can be uploaded to this server; "
            "training sets are made by the training_set_maker pipeline",
        )
    release = release_by_id(body.release)
    if body.release is not None and release is None:
        raise bad("release", f'Invalid pk "{body.release}" - object does not exist.')
    if body.official_product and not who.is_admin:
        raise PzError(403, {"error": "only the admin token can register official products"})
    product = pz.store().create_product(
        product_type="redshift_catalog",
        display_name=body.display_name,
        description=body.description or "",
        release=release["name"] if release else None,
        official=int(body.official_product),
        pz_code=body.pz_code or None,
        owner=who.name,
        status=0,
    )
    return product_out(pz, who, product)


@router.get("/products/{product_id}/", summary="One product")
def get_product(request: Request, product_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    with pz.lock:
        pz.store().adopt_operator_products()
    return product_out(pz, who, readable(pz, who, product_id))


@router.patch("/products/{product_id}/", summary="Update a product; status 1 publishes an upload")
async def patch_product(request: Request, product_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    product = writable(pz, who, product_id)
    data = await body_of(request)
    changes: dict[str, Any] = {}
    if "display_name" in data:
        if not str(data["display_name"]).strip():
            raise bad("display_name", "This field may not be blank.")
        changes["display_name"] = str(data["display_name"]).strip()
    if "description" in data:
        changes["description"] = str(data["description"] or "")
    if "official_product" in data:
        if not who.is_admin:
            raise PzError(403, {"error": "only the admin token can mark official products"})
        changes["official"] = int(as_bool(data, "official_product"))
    store = pz.store()
    if "official" in changes and product.catalog_id is not None:
        # an official catalog is the operator's in the registry: every user builds from it
        try:
            pz.registry().set_redshift_catalog_owner(product.catalog_id, None if changes["official"] else product.owner)
        except TSMError as exc:
            raise bad("official_product", exc.message) from None
    if changes:
        product = store.update_product(product.id, **changes)
    if "status" in data:
        status = as_int(data, "status")
        current = product_out(pz, who, product)["status"]
        if status != current:
            if not (product.product_type == "redshift_catalog" and product.catalog_id is None and status == 1):
                raise bad(
                    "status",
                    f"cannot change the status from {current} to {status}; "
                    "only an upload being registered (0) can be published (1)",
                )
            product = await run_in_threadpool(publish, pz, who, product)
    return product_out(pz, who, product)


@router.delete(
    "/products/{product_id}/",
    status_code=204,
    summary="Delete a product with the training set or registered catalog behind it (owner or admin)",
)
def delete_product(request: Request, product_id: int, who: Caller = Depends(caller)) -> None:
    from tsm_core.products.lifecycle import remove_product
    from tsm_core.redshifts.registration import remove_redshift_catalog

    pz = settings(request)
    product = writable(pz, who, product_id)
    registry = pz.registry()
    try:
        if product.training_set_id is not None:
            remove_product(registry, product.training_set_id, who.visible_to)
        elif product.catalog_id is not None:
            remove_redshift_catalog(product.catalog_id, registry, who.visible_to)
    except TSMError as exc:  # a training set still queued or running
        raise PzError(409, {"detail": scrub(exc.message)}) from None
    if product.file_path and product.catalog_id is None:  # an upload never published
        Path(product.file_path).unlink(missing_ok=True)
    pz.store().remove_product(product.id)


def publish(pz: PzSettings, who: Caller, product: PzProduct) -> PzProduct:
    """Register an uploaded redshift catalog with its column association, and publish it."""
    from tsm_core.redshifts.registration import register_redshift_catalog

    if not product.file_path:
        raise bad("status", "upload the main file first (product-files/)")
    store = pz.store()
    mapping: dict[str, str] = {}
    for c in store.contents(product.id):
        if c.alias:
            canonical = ALIASES[c.alias.lower()]
            if canonical in mapping:
                raise bad(
                    "alias", f"two columns are associated to {c.alias!r}: {mapping[canonical]!r} and {c.column_name!r}"
                )
            mapping[canonical] = c.column_name
    missing = [ALIAS_SPELLING.get(c, c) for c in ("ra", "dec", "z") if c not in mapping]
    if missing:
        raise PzError(406, {"detail": f"The column(s) was not filled in: {','.join(missing)}"})
    try:
        record = register_redshift_catalog(
            internal_name(product),
            product.file_path,
            mapping,
            product.description,
            pz.registry(),
            owner=None if product.official else product.owner,
        )
    except TSMError as exc:
        raise bad(
            "alias" if "column" in str(exc) else "file",
            scrub(str(exc).replace(product.file_path, product.file_name or "")),
        ) from None
    return store.update_product(product.id, status=1, catalog_id=record.id, n_rows=record.n_rows)


@router.get("/products/{product_id}/registry/", summary="Read the uploaded main file: its columns and rows")
@router.post("/products/{product_id}/registry/", include_in_schema=False)
async def registry_product(request: Request, product_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    from tsm_core.redshifts.readers import read_table

    pz = settings(request)
    product = writable(pz, who, product_id)
    if product.status != 0 or not product.file_path:
        raise bad("product", "only an upload being registered, with its main file, can be read")
    store = pz.store()
    try:
        frame = await run_in_threadpool(read_table, product.file_path)
    except TSMError as exc:
        store.update_product(product.id, status=9)
        raise bad("file", scrub(str(exc).replace(product.file_path, product.file_name or ""))) from None
    store.set_columns(product.id, [str(c) for c in frame.columns])
    product = store.update_product(product.id, n_rows=len(frame))
    return product_out(pz, who, product)


@router.get("/products/{product_id}/main_file_info/", summary="The product with its main file and columns")
def main_file_info(request: Request, product_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    product = readable(pz, who, product_id)
    out = product_out(pz, who, product)
    f = main_file(product, training_set(pz.registry(), product))
    info: dict[str, Any] = {}
    if f is not None:
        info = {
            "name": f.name,
            "type": f.type,
            "extension": f.extension,
            "size": f.size,
            "n_rows": f.n_rows,
            "is_directory": f.path.is_dir(),
        }
        associated = [
            {"column_name": c.column_name, "ucd": c.ucd, "alias": c.alias}
            for c in pz.store().contents(product.id)
            if c.alias
        ]
        if associated:
            info["associated_columns"] = associated
        if f.extension == ".csv":
            info.update(delimiter=",", has_header=True, columns=_csv_columns(f.path))
    out["main_file"] = info
    return out


def _csv_columns(path: Path) -> list[str]:
    try:
        return plugins.writer("csv").columns(path)  # the header as the CSV writer lists it
    except TSMError:  # no CSV writer installed
        return []
