"""The Photo-z Server's ``product-files/`` (a product's main file, and its upload, streamed
within the operator's limits) and the download routes (the main file, or a zip of it with
the product's metadata and, for a training set with ``output.unmatched``, its unmatched file)."""

from __future__ import annotations

import json
import mimetypes
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from tsm_core.products.output import slugify
from tsm_core.products.reading import product_files
from tsm_core.redshifts.store import is_store, parquet_copy
from tsm_web.auth import Caller
from tsm_web.pzserver.access import caller, readable, writable
from tsm_web.pzserver.drf import PzError, as_int, bad, matches, not_found, paginate
from tsm_web.pzserver.schemas import MainFile, file_out, internal_name, main_file, product_out, training_set
from tsm_web.pzserver.state import PzSettings, settings
from tsm_web.pzserver.store import PzProduct
from tsm_web.uploads import UploadRefused, save_upload, suffix_of

router = APIRouter()


# -- downloads ---------------------------------------------------------------------------
def _ready(product: PzProduct, f: MainFile | None, url: str, filename: str) -> dict[str, Any]:
    if f is None or not f.path.is_file():
        return {"status": "failed", "error_message": f"product {product.id} has no file to download (yet)"}
    return {"id": product.id, "status": "ready", "filename": filename, "download_url": url}


@router.post("/products/{product_id}/download/main-file/prepare/", summary="Prepare the main file for download")
@router.get("/products/{product_id}/download/main-file/status/", summary="Whether the main file is ready")
def main_file_prepare(request: Request, product_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    _, product, f = readable_main_file(request, who, product_id)
    return _ready(product, f, f"/api/products/{product.id}/download/main-file/file/", f.name if f else "")


@router.get("/products/{product_id}/download/main-file/file/", summary="The main file", response_class=FileResponse)
def main_file_download(request: Request, product_id: int, who: Caller = Depends(caller)) -> FileResponse:
    _, product, f = readable_main_file(request, who, product_id)
    if f is None or not f.path.is_file():
        raise not_found()
    return FileResponse(f.path, filename=f.name)


def readable_main_file(request: Request, who: Caller, product_id: int) -> tuple[PzSettings, PzProduct, MainFile | None]:
    """The API's settings, the product ``who`` may read, and its main file (or None), for the
    download routes: a stored catalog's one-file Parquet copy is written here, on first use."""
    pz = settings(request)
    product = readable(pz, who, product_id)
    if product.file_path and is_store(product.file_path):  # listings never pay for this export
        parquet_copy(product.file_path)
    return pz, product, main_file(product, training_set(pz.registry(), product))


@router.post("/products/{product_id}/download/prepare/", summary="Prepare the product archive (zip)")
@router.get("/products/{product_id}/download/status/", summary="Whether the product archive is ready")
def archive_prepare(request: Request, product_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    _, product, f = readable_main_file(request, who, product_id)
    return _ready(product, f, f"/api/products/{product.id}/download/file/", f"{internal_name(product)}.zip")


@router.get(
    "/products/{product_id}/download/file/",
    summary="The product archive: main file and metadata",
    response_class=FileResponse,
)
def archive_download(request: Request, product_id: int, who: Caller = Depends(caller)) -> FileResponse:
    pz, product, f = readable_main_file(request, who, product_id)
    if f is None or not f.path.is_file():
        raise not_found()
    metadata_json = json.dumps(product_out(pz, who, product), indent=2)
    tmp_dir = pz.home / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".zip", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(f.path, f.name)
            lost = _unmatched_file(pz, product)
            if lost is not None:  # output.unmatched: the redshifts the run lost, beside the training set
                archive.write(lost, lost.name)
            archive.writestr(f"{internal_name(product)}_metadata.json", metadata_json)
    except BaseException:
        os.unlink(tmp)
        raise
    return FileResponse(
        tmp,
        filename=f"{internal_name(product)}.zip",
        media_type="application/zip",
        background=BackgroundTask(os.unlink, tmp),
    )


def _unmatched_file(pz: PzSettings, product: PzProduct) -> Path | None:
    """The unmatched file of a training-set product (``output.unmatched``), if it has one on disk."""
    ts = training_set(pz.registry(), product)
    found = product_files(ts).get("unmatched") if ts is not None and ts.status == "done" else None
    return found[0] if found and found[0].is_file() else None


# -- product files ----------------------------------------------------------------------
@router.get("/product-files/", summary="Files of the products the caller may read")
def list_product_files(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    wanted = request.query_params.get("product_id") or request.query_params.get("product")
    items = []
    registry = pz.registry()
    for product in pz.store().products(who.visible_to):
        if matches(product.id, wanted):
            f = main_file(product, training_set(registry, product))
            if f is not None:
                items.append(file_out(who, product, f))
    return paginate(request, items)


def limited(request: Request, max_bytes: int) -> Request:
    """``request`` with its body refused (413) beyond ``max_bytes``, counted as it streams in
    (a missing or false Content-Length does not get around it)."""
    too_large = PzError(413, {"file": [f"the upload is larger than the limit of {max_bytes / 2**20:.0f} MB"]})
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise too_large
    received = 0

    async def receive() -> Any:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > max_bytes:
            raise too_large
        return message

    return Request(request.scope, receive)


@router.post("/product-files/", status_code=201, summary="Upload the main file of a product being registered")
async def upload_product_file(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    form = await limited(request, pz.max_upload_bytes + 2**20).form(max_files=1, max_fields=20)
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    product = writable(pz, who, as_int(data, "product"))
    role = as_int(data, "role", required=False) or 0
    if role != 0:
        raise bad("role", "only the main file (role 0) can be uploaded to this server")
    if product.status != 0 or product.product_type != "redshift_catalog":
        raise bad("product", "files can only be added to a redshift catalog being registered")
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise bad("file", "No file was submitted.")
    try:
        path = await run_in_threadpool(save_upload, upload, pz.uploads_dir, request.app.state.settings.upload_limits)
    except UploadRefused as exc:
        raise PzError(exc.status, {"file": [exc.message]}) from None
    except ValueError as exc:
        raise bad("file", str(exc)) from None
    original = Path(upload.filename or "upload").name
    suffix = suffix_of(original)
    shown = f"{slugify(original[: len(original) - len(suffix)])}{suffix}"  # shown, never used as a path
    if product.file_path:
        Path(product.file_path).unlink(missing_ok=True)
    product = pz.store().update_product(
        product.id,
        file_path=str(path),
        file_name=shown,
        file_type=data.get("type") or mimetypes.guess_type(shown)[0],
        file_size=path.stat().st_size,
    )
    f = main_file(product, None)
    assert f is not None
    return file_out(who, product, f)
