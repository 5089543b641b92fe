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

import json
import mimetypes
import os
import tempfile
import threading
import zipfile
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from tsm_core import plugins
from tsm_core.config import CANONICAL_REDSHIFT_COLUMNS, tsm_home
from tsm_core.errors import TSMError
from tsm_core.products.jobs import TooManyRuns
from tsm_core.products.output import slugify
from tsm_core.redshifts.store import is_store, parquet_copy, parquet_copy_path
from tsm_core.products.registry import ProductRecord, Registry
from tsm_web import trust
from tsm_web.auth import Caller, Unauthenticated, caller_of
from tsm_web.jobs import Runner
from tsm_web.pzparams import DEFAULT_PARAM, FIELD_OF_KEY, ParamError, drf_errors, parse_used_config, run_config
from tsm_web.pzstore import PzContent, PzProcess, PzProduct, PzStore
from tsm_web.security import redact
from tsm_web.uploads import UploadRefused, save_upload, suffix_of

TOKEN_ENV = "TSM_API_TOKEN"
PIPELINE_ID = 1
PIPELINE_NAME = "training_set_maker"
CREATED = "2025-01-01T00:00:00+00:00"

#: the Photo-z Server's product types, with its IDs
PRODUCT_TYPES: list[dict[str, Any]] = [
    {"id": 1, "name": "redshift_catalog", "display_name": "Reference Redshift Catalog", "order": 1,
     "description": "Catalog of reference redshifts and positions of galaxies (usually spectroscopic redshifts "
                    "and equatorial coordinates)."},
    {"id": 2, "name": "training_set", "display_name": "Training Set", "order": 2,
     "description": "Training set for photo-z algorithms (tabular data). It usually contains magnitudes, errors, "
                    "and reference redshifts."},
    {"id": 3, "name": "validation_results", "display_name": "Validation Results", "order": 4,
     "description": "Results of a photo-z validation procedure."},
    {"id": 4, "name": "photoz_estimates", "display_name": "Photo-z Estimates", "order": 5,
     "description": "Results of a photo-z estimation procedure."},
    {"id": 5, "name": "training_results", "display_name": "Training Results", "order": 3,
     "description": "Any file(s) resulting from the training of machine learning algorithms."},
    {"id": 6, "name": "object_catalog", "display_name": "Objects Catalog", "order": 6,
     "description": "Catalog of objects"},
    {"id": 7, "name": "other", "display_name": "Other", "order": 7, "description": "Any file(s)"},
]
TYPE_BY_ID = {t["id"]: t for t in PRODUCT_TYPES}
TYPE_BY_NAME = {t["name"]: t for t in PRODUCT_TYPES}
STATUS_LABELS = {0: "Registering", 1: "Published", 2: "Deleted", 3: "Processing", 9: "Failed"}
FILE_ROLES = {0: "Main", 1: "Description", 2: "Auxiliary"}
#: the client's column association (alias, any case) -> canonical redshift column
ALIASES = {"id": "id", "ra": "ra", "dec": "dec", "z": "z", "z_err": "z_err", "z_flag": "z_flag", "survey": "survey"}
UCDS = {"id": "meta.id;meta.main", "ra": "pos.eq.ra;meta.main", "dec": "pos.eq.dec;meta.main", "z": "src.redshift",
        "z_err": "stat.error;src.redshift", "z_flag": "stat.rank", "survey": "meta.curation"}
ALIAS_SPELLING = {"id": "ID", "ra": "RA", "dec": "Dec"}


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


@dataclass
class PzSettings:
    """What ``create_app`` tells this API: the admin token, the upload limit, the runner."""

    token: str | None
    max_upload_bytes: int
    runner: Runner
    home: Path = field(default_factory=tsm_home)
    futures: dict[int, Future] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    def registry(self) -> Registry:
        return self._registry

    def store(self) -> PzStore:
        return self._store

    @cached_property
    def _registry(self) -> Registry:
        return Registry.at_home(self.home)

    @cached_property
    def _store(self) -> PzStore:
        return PzStore(self._registry)


def settings(request: Request) -> PzSettings:
    return request.app.state.pzserver


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


router = APIRouter(prefix="/api", dependencies=[Depends(caller)], tags=["Photo-z Server API"])


def include_pzserver(app: FastAPI, runner: Runner, token: str | None, max_upload_bytes: int) -> None:
    """Serve this API from ``app`` (called by :func:`tsm_web.app.create_app`)."""
    app.state.pzserver = PzSettings(token=token, max_upload_bytes=max_upload_bytes, runner=runner)

    async def pz_error(_: Request, exc: PzError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    app.add_exception_handler(PzError, pz_error)
    app.include_router(router)


# -- helpers ---------------------------------------------------------------------------
async def body_of(request: Request) -> dict[str, Any]:
    """The request's fields, whether sent as JSON, urlencoded or multipart (files excluded)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:
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


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # as DRF: fields a serializer does not know are ignored


class ProductCreate(_Body):
    """``POST products/``: an upload starts as a product being registered."""

    display_name: Name
    product_type: int
    release: int | None = None
    official_product: bool = False
    pz_code: str | None = None
    description: str | None = None


class ProcessCreate(_Body):
    """``POST processes/``: a run of the pipeline on one input (``used_config`` is checked apart)."""

    pipeline: int
    display_name: Name
    release: int | None = None
    inputs: list[int] = []
    used_config: Any = None
    description: str | None = None


Body = TypeVar("Body", bound=_Body)


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
        "results": items[start:start + size],
    }


def matches(value: Any, wanted: str | None) -> bool:
    """A DRF filter: ``wanted`` unset, or one of its comma-separated values equals ``value`` (any case)."""
    if wanted is None:
        return True
    return str(value).lower() in {w.strip().lower() for w in wanted.split(",")}


def releases() -> list[dict[str, Any]]:
    """The installed releases as Photo-z Server releases; IDs follow the sorted names."""
    out = []
    for number, name in enumerate(sorted(plugins.object_catalogs()), start=1):
        release = plugins.object_catalog(name)
        fluxes = plugins.flux_types(release).values()
        deredden = [{"name": "none", "display_name": "None", "selected": True},
                    {"name": "sfd", "display_name": "SFD" + (" (the catalog's E(B-V))" if release.ebv_column else ""),
                     "selected": False}]
        out.append({
            "id": number, "name": name, "display_name": name.upper(), "description": release.description,
            "created_at": CREATED, "indexing_column": release.id_column, "has_mag_hats": False,
            "has_flux_hats": True, "is_public": True, "dereddening": deredden,
            "fluxes": [{"name": f.name, "display_name": f.name, "selected": f.default} for f in fluxes],
        })
    return out


def release_by_id(release_id: int | None) -> dict[str, Any] | None:
    return next((r for r in releases() if r["id"] == release_id), None)


def release_id(name: str | None) -> int | None:
    return next((r["id"] for r in releases() if r["name"] == name), None)


def pipeline() -> dict[str, Any]:
    try:
        version = metadata.version("tsm-core")
    except metadata.PackageNotFoundError:
        version = "0"
    return {
        "id": PIPELINE_ID, "name": PIPELINE_NAME, "display_name": "Training Set Maker", "version": version,
        "description": "Cross-matches a reference redshift catalog with the Object catalog of a Rubin data release.",
        "created_at": CREATED, "system_config": {"param": json.loads(json.dumps(DEFAULT_PARAM))},
        "product_types_accepted": [TYPE_BY_NAME["redshift_catalog"]["id"]],
        "output_product_type": TYPE_BY_NAME["training_set"]["id"],
    }


@dataclass(frozen=True)
class MainFile:
    """The main file of a product: where it is (server side) and what the client is told."""

    path: Path
    name: str
    type: str | None
    size: int | None
    n_rows: int | None

    @property
    def extension(self) -> str:
        return "".join(Path(self.name).suffixes[-1:]).lower()


def main_file(product: PzProduct, ts: ProductRecord | None) -> MainFile | None:
    if product.training_set_id is not None:
        if ts is None or ts.status != "done" or not ts.output_path or not Path(ts.output_path).is_file():
            return None
        path = Path(ts.output_path)
        return MainFile(path, path.name, mimetypes.guess_type(path.name)[0], path.stat().st_size, ts.n_rows)
    if not product.file_path:
        return None
    path = Path(product.file_path)
    if is_store(path):  # a registered catalog's stored HATS copy: downloaded as one Parquet file, written
        path = parquet_copy_path(path)  # when a download is prepared or asked for (_readable_main_file)
        size = path.stat().st_size if path.is_file() else None
        return MainFile(path, product.file_name or path.name, product.file_type, size, product.n_rows)
    return MainFile(path, product.file_name or path.name, product.file_type, product.file_size, product.n_rows)


def training_set(registry: Registry, product: PzProduct) -> ProductRecord | None:
    if product.training_set_id is None:
        return None
    try:
        return registry.product(product.training_set_id)
    except TSMError:
        return None


def product_status(product: PzProduct, ts: ProductRecord | None, process: PzProcess | None) -> int:
    if ts is None:
        return product.status
    if process is not None and process.stop_requested and ts.status not in ("queued", "running"):
        return 9
    return {"queued": 3, "running": 3, "done": 1, "failed": 9, "cancelled": 9}[ts.status]


def process_status(ts: ProductRecord | None, process: PzProcess) -> str:
    if ts is None:
        return "Failed"
    if process.stop_requested or ts.status == "cancelled":
        return "Stopping" if ts.status in ("queued", "running") else "Stopped"
    if ts.status == "queued":
        return "Pending"
    if ts.status == "running":
        return "Running" if ts.progress > 0 else "Pending"
    return {"done": "Successful", "failed": "Failed"}[ts.status]


def internal_name(product: PzProduct) -> str:
    return f"{product.id}_{slugify(product.display_name).lower()}"


def product_out(pz: PzSettings, who: Caller, product: PzProduct) -> dict[str, Any]:
    """A product as the Photo-z Server's ProductSerializer writes it."""
    store = pz.store()
    ts = training_set(pz.registry(), product)
    process = store.process_of_upload(product.id) if product.training_set_id is not None else None
    status = product_status(product, ts, process)
    ptype = TYPE_BY_NAME[product.product_type]
    return {
        "id": product.id, "product_type": ptype["id"], "product_type_name": ptype["display_name"],
        "product_type_internal_name": ptype["name"], "release": release_id(product.release),
        "release_name": product.release.upper() if product.release else None,
        "internal_name": internal_name(product), "display_name": product.display_name,
        "official_product": product.official or product.owner is None, "pz_code": product.pz_code,
        "description": product.description, "created_at": product.created_at, "updated_at": product.updated_at,
        "status": status, "product_status": STATUS_LABELS[status], "release_year": None,
        "uploaded_by": product.owner or "operator", "is_owner": who.can_write(product),
        "can_delete": who.can_write(product), "can_update": who.can_write(product),
        "origin": "Training Set Maker" if product.training_set_id is not None else "Upload",
        "process_status": process_status(ts, process) if process else None,
        "process_id": process.id if process else None,
    }


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


def content_out(c: PzContent) -> dict[str, Any]:
    return {"id": c.id, "product": c.product_id, "column_name": c.column_name, "ucd": c.ucd, "alias": c.alias,
            "order": c.position}


def file_out(who: Caller, product: PzProduct, f: MainFile) -> dict[str, Any]:
    return {"id": product.id, "product": product.id, "file": f.name, "role": 0, "role_name": FILE_ROLES[0],
            "type": f.type, "name": f.name, "size": f.size, "n_rows": f.n_rows, "extension": f.extension,
            "is_directory": f.path.is_dir(), "can_delete": False, "created": product.created_at,
            "updated": product.updated_at}


# -- root, releases, product types, pipelines ----------------------------------------------
@router.get("/", summary="The API root: its entities")
def api_root(request: Request) -> dict[str, str]:
    base = str(request.url_for("api_root"))
    return {name: f"{base}{name}/" for name in
            ("users", "releases", "product-types", "products", "product-contents", "product-files", "pipelines",
             "processes")}


@router.get("/releases/", summary="Releases (installed object catalogs)")
def list_releases(request: Request, name: str | None = None) -> dict[str, Any]:
    return paginate(request, [r for r in releases() if matches(r["name"], name)])


@router.get("/releases/{item_id}/", summary="One release")
def get_release(item_id: int) -> dict[str, Any]:
    return release_by_id(item_id) or _raise(not_found())


@router.get("/product-types/", summary="Product types")
def list_product_types(request: Request, name: str | None = None, ordering: str | None = None) -> dict[str, Any]:
    items = [t for t in PRODUCT_TYPES if matches(t["name"], name)]
    if ordering and ordering.lstrip("-") in ("id", "order", "name"):
        items.sort(key=lambda t: t[ordering.lstrip("-")], reverse=ordering.startswith("-"))
    return paginate(request, items)


@router.get("/product-types/{item_id}/", summary="One product type")
def get_product_type(item_id: int) -> dict[str, Any]:
    return TYPE_BY_ID.get(item_id) or _raise(not_found())


@router.get("/pipelines/", summary="Pipelines (the Training Set Maker)")
def list_pipelines(request: Request, name: str | None = None) -> dict[str, Any]:
    return paginate(request, [p for p in [pipeline()] if matches(p["name"], name)])


@router.get("/pipelines/{item_id}/", summary="One pipeline")
def get_pipeline(item_id: int) -> dict[str, Any]:
    return pipeline() if item_id == PIPELINE_ID else _raise(not_found())


def _raise(exc: Exception) -> Any:
    raise exc


@router.get("/users/", summary="Users: all of them for the admin token, else the caller")
def list_users(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    users = [u for u in settings(request).registry().users() if who.is_admin or u.name == who.name]
    return paginate(request, [{"id": u.id, "username": u.name, "first_name": "", "last_name": u.name,
                               "date_joined": u.created_at} for u in users])


# -- products ----------------------------------------------------------------------------
PRODUCT_FILTERS = ("status", "product_type", "product_type_name", "release", "release_name", "internal_name",
                   "display_name", "official_product", "uploaded_by", "product_name")


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
            "status": out["status"], "product_type": out["product_type"], "release": out["release"],
            "internal_name": out["internal_name"], "display_name": out["display_name"],
            "official_product": out["official_product"], "uploaded_by": out["uploaded_by"],
            "product_name": out["display_name"],
        }
        if not all(matches(v, q.get(k)) for k, v in checks.items()):
            continue
        names = q.get("product_type_name") or q.get("product_type_name__or")
        if names and not (matches(out["product_type_internal_name"], names) or matches(out["product_type_name"], names)):
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
    return {"name": "Product List", "filterset": list(PRODUCT_FILTERS) + ["product_type_name__or", "release_name__or"],
            "search": ["display_name"], "ordering": ["id", "created_at"]}


@router.post("/products/", status_code=201, summary="Start an upload: a redshift catalog being registered")
async def create_product(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    body = validated(ProductCreate, await body_of(request))
    if body.product_type not in TYPE_BY_ID:
        raise bad("product_type", f'Invalid pk "{body.product_type}" - object does not exist.')
    if TYPE_BY_ID[body.product_type]["name"] != "redshift_catalog":
        raise bad("product_type", "only redshift_catalog products can be uploaded to this server; "
                                  "training sets are made by the training_set_maker pipeline")
    release = release_by_id(body.release)
    if body.release is not None and release is None:
        raise bad("release", f'Invalid pk "{body.release}" - object does not exist.')
    if body.official_product and not who.is_admin:
        raise PzError(403, {"error": "only the admin token can register official products"})
    product = pz.store().create_product(
        product_type="redshift_catalog", display_name=body.display_name, description=body.description or "",
        release=release["name"] if release else None, official=int(body.official_product),
        pz_code=body.pz_code or None, owner=who.name, status=0,
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
    if changes:
        product = store.update_product(product.id, **changes)
    if "status" in data:
        status = as_int(data, "status")
        current = product_out(pz, who, product)["status"]
        if status != current:
            if not (product.product_type == "redshift_catalog" and product.catalog_id is None and status == 1):
                raise bad("status", f"cannot change the status from {current} to {status}; "
                                    "only an upload being registered (0) can be published (1)")
            product = await run_in_threadpool(publish, pz, who, product)
    return product_out(pz, who, product)


@router.delete("/products/{product_id}/", status_code=204,
               summary="Delete a product with the training set or registered catalog behind it (owner or admin)")
def delete_product(request: Request, product_id: int, who: Caller = Depends(caller)) -> None:
    from tsm_core.products.jobs import remove_product
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
                raise bad("alias", f"two columns are associated to {c.alias!r}: {mapping[canonical]!r} and "
                                   f"{c.column_name!r}")
            mapping[canonical] = c.column_name
    missing = [ALIAS_SPELLING.get(c, c) for c in ("ra", "dec", "z") if c not in mapping]
    if missing:
        raise PzError(406, {"detail": f"The column(s) was not filled in: {','.join(missing)}"})
    try:
        record = register_redshift_catalog(internal_name(product), product.file_path, mapping, product.description,
                                           pz.registry(), owner=product.owner)
    except TSMError as exc:
        raise bad("alias" if "column" in str(exc) else "file", scrub(str(exc).replace(product.file_path,
                                                                                    product.file_name or ""))) from None
    return store.update_product(product.id, status=1, catalog_id=record.id, n_rows=record.n_rows)


@router.get("/products/{product_id}/registry/", summary="Read the uploaded main file: its columns and rows")
@router.post("/products/{product_id}/registry/", include_in_schema=False)
async def registry_product(request: Request, product_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    from tsm_core.redshifts.reading import read_table

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
        info = {"name": f.name, "type": f.type, "extension": f.extension, "size": f.size, "n_rows": f.n_rows,
                "is_directory": f.path.is_dir()}
        associated = [{"column_name": c.column_name, "ucd": c.ucd, "alias": c.alias}
                      for c in pz.store().contents(product.id) if c.alias]
        if associated:
            info["associated_columns"] = associated
        if f.extension == ".csv":
            info.update(delimiter=",", has_header=True, columns=_csv_columns(f.path))
    out["main_file"] = info
    return out


def _csv_columns(path: Path) -> list[str]:
    import csv

    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if row and not row[0].startswith("#"):
                return row
    return []


# -- downloads ---------------------------------------------------------------------------
def _ready(product: PzProduct, f: MainFile | None, url: str, filename: str) -> dict[str, Any]:
    if f is None or not f.path.is_file():
        return {"status": "failed", "error_message": f"product {product.id} has no file to download (yet)"}
    return {"id": product.id, "status": "ready", "filename": filename, "download_url": url}


@router.post("/products/{product_id}/download/main-file/prepare/", summary="Prepare the main file for download")
@router.get("/products/{product_id}/download/main-file/status/", summary="Whether the main file is ready")
def main_file_prepare(request: Request, product_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    _, product, f = _readable_main_file(request, who, product_id)
    return _ready(product, f, f"/api/products/{product.id}/download/main-file/file/", f.name if f else "")


@router.get("/products/{product_id}/download/main-file/file/", summary="The main file",
            response_class=FileResponse)
def main_file_download(request: Request, product_id: int, who: Caller = Depends(caller)) -> FileResponse:
    _, product, f = _readable_main_file(request, who, product_id)
    if f is None or not f.path.is_file():
        raise not_found()
    return FileResponse(f.path, filename=f.name)


def _readable_main_file(request: Request, who: Caller, product_id: int) -> tuple[PzSettings, PzProduct, MainFile | None]:
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
    _, product, f = _readable_main_file(request, who, product_id)
    return _ready(product, f, f"/api/products/{product.id}/download/file/", f"{internal_name(product)}.zip")


@router.get("/products/{product_id}/download/file/", summary="The product archive: main file and metadata",
            response_class=FileResponse)
def archive_download(request: Request, product_id: int, who: Caller = Depends(caller)) -> FileResponse:
    pz, product, f = _readable_main_file(request, who, product_id)
    if f is None or not f.path.is_file():
        raise not_found()
    metadata_json = json.dumps(product_out(pz, who, product), indent=2)
    tmp_dir = pz.home / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".zip", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(f.path, f.name)
            archive.writestr(f"{internal_name(product)}_metadata.json", metadata_json)
    except BaseException:
        os.unlink(tmp)
        raise
    return FileResponse(tmp, filename=f"{internal_name(product)}.zip", media_type="application/zip",
                        background=BackgroundTask(os.unlink, tmp))


# -- product files and contents -------------------------------------------------------------
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
        product.id, file_path=str(path), file_name=shown, file_type=data.get("type") or mimetypes.guess_type(shown)[0],
        file_size=path.stat().st_size,
    )
    f = main_file(product, None)
    assert f is not None
    return file_out(who, product, f)


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
    content = pz.store().content(content_id) or _raise(not_found())
    readable(pz, who, content.product_id)
    return content_out(content)


@router.patch("/product-contents/{content_id}/", summary="Associate a column: alias ra, dec, z, z_err, z_flag, ...")
async def patch_content(request: Request, content_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    store = pz.store()
    content = store.content(content_id) or _raise(not_found())
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


# -- processes ---------------------------------------------------------------------------
def submit_training_set(request: Request, config: dict[str, Any], who: Caller) -> tuple[int, Future]:
    """The core's submission (checked, planned, registered as ``who``'s, within the
    operator's bounds and the per-user queue limit) run in the background by the app's
    runner; returns the training set's ID and its future. Raises a
    :class:`~tsm_core.errors.TSMError` naming the bad key before anything is registered."""
    from tsm_web.api import max_active

    plan, product_id = trust.submit(config, request.app.state.settings, who.name, max_active(request, who))
    registry = Registry.at_home(tsm_home())
    return product_id, request.app.state.runner.submit(plan, product_id, registry)


def process_out(pz: PzSettings, who: Caller, process: PzProcess) -> dict[str, Any]:
    ts = None
    try:
        ts = pz.registry().product(process.training_set_id)
    except TSMError:
        pass
    return {
        "id": process.id, "display_name": process.display_name, "pipeline": PIPELINE_ID,
        "pipeline_name": PIPELINE_NAME, "pipeline_version": pipeline()["version"],
        "release": release_id(process.release), "release_name": process.release.upper() if process.release else None,
        "used_config": process.used_config, "inputs": process.inputs, "upload": process.upload,
        "status": process_status(ts, process), "comment": scrub(ts.error) if ts and ts.error else None,
        "created_at": process.created_at, "started_at": process.created_at,
        "ended_at": ts.finished_at if ts else None, "owned_by": process.owner or "operator",
        "is_owner": who.is_admin or process.owner == who.name,
    }


def readable_process(pz: PzSettings, who: Caller, process_id: int) -> PzProcess:
    process = pz.store().process(process_id)
    if process is None or not (who.is_admin or process.owner == who.name):
        raise not_found()
    return process


@router.get("/processes/", summary="The caller's processes, newest first")
def list_processes(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    return paginate(request, [process_out(pz, who, p) for p in pz.store().processes(who.visible_to)])


@router.post("/processes/", status_code=201, summary="Run the Training Set Maker on a published redshift catalog")
async def create_process(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    body = validated(ProcessCreate, await body_of(request))
    if body.pipeline != PIPELINE_ID:
        raise bad("pipeline", f"unknown pipeline; this server runs {PIPELINE_NAME} (id {PIPELINE_ID})")
    name = body.display_name
    release = release_by_id(body.release)
    if release is None:
        choices = ", ".join(f"{r['id']} ({r['name']})" for r in releases())
        raise bad("release", f"choose a release: {choices}")
    if len(body.inputs) != 1:
        raise bad("inputs", "give exactly one redshift catalog")
    try:
        source = readable(pz, who, body.inputs[0])
    except PzError:
        raise bad("inputs", f'Invalid pk "{body.inputs[0]}" - object does not exist.') from None
    if source.product_type != "redshift_catalog" or source.catalog_id is None:
        raise bad("inputs", f"product {source.id} is not a published redshift catalog")
    try:
        used_config = parse_used_config(body.used_config)
        config = run_config(name, body.description or "", plugins.object_catalog(release["name"]),
                            source.catalog_id, used_config)
    except ParamError as exc:
        raise PzError(400, exc.body) from None
    try:
        ts_id, future = await run_in_threadpool(submit_training_set, request, config, who)
    except TooManyRuns as exc:
        raise PzError(429, {"detail": exc.message}) from None
    except TSMError as exc:
        field_name = FIELD_OF_KEY.get(exc.key, FIELD_OF_KEY.get(exc.key.split(".")[0], "non_field_errors"))
        message = str(exc).removeprefix(f"{exc.key}: ") if exc.key else str(exc)
        raise bad(field_name, scrub(message)) from None
    store = pz.store()
    with pz.lock:
        product = store.training_set_product(ts_id, display_name=name, description=config["description"],
                                             release=release["name"], owner=who.name, status=3)
        process = store.create_process(product.id, ts_id, name, release["name"], used_config.model_dump(mode="json"),
                                       [source.id], who.name)
        pz.futures[ts_id] = future
    future.add_done_callback(lambda _: pz.futures.pop(ts_id, None))
    return process_out(pz, who, process)


@router.get("/processes/{process_id}/", summary="One process and its status")
def get_process(request: Request, process_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    return process_out(pz, who, readable_process(pz, who, process_id))


@router.get("/processes/{process_id}/stop/", summary="Stop a process (a queued run is cancelled; a running one "
                                                      "is not published)")
def stop_process(request: Request, process_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    process = readable_process(pz, who, process_id)
    store = pz.store()
    store.request_stop(process.id)
    from tsm_core.products.jobs import cancel_product

    try:  # the core's cancel: a queued run never starts, a running one stops between partitions
        cancel_product(pz.registry(), process.training_set_id)
    except TSMError:
        pass  # finished already: nothing to stop
    return process_out(pz, who, store.process(process.id) or process)

