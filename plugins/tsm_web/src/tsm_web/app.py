"""The FastAPI application: JSON API under ``/api``, pages at ``/``, ``/products``.

The API reuses the core's pydantic models (a submitted training set *is* a
:class:`~tsm_core.config.RunConfig`) and the core's registry, so the CLI, Python and the
web see the same catalogs and products. Errors are JSON: ``{"field": ..., "message":
..., "errors": [{"field": ..., "message": ...}]}``.
"""

from __future__ import annotations

import os
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from tsm_core import plugins
from tsm_core.config import RunConfig, tsm_home
from tsm_core.errors import TSMError
from tsm_core.registry import ProductRecord, RedshiftCatalogRecord, Registry
from tsm_web.jobs import Runner
from tsm_web.uploads import UploadTooLarge, save_upload

STATIC = Path(__file__).parent / "static"
TOKEN_ENV = "TSM_API_TOKEN"


class APIError(Exception):
    """An error to answer with ``status`` and the ``field`` at fault."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        self.status, self.message, self.field = status, message, field
        super().__init__(message)


def _error(status: int, errors: list[dict[str, str]]) -> JSONResponse:
    first = errors[0]
    return JSONResponse({"field": first["field"], "message": first["message"], "errors": errors}, status_code=status)


class FluxTypeOut(BaseModel):
    name: str
    description: str
    default: bool


class ReleaseOut(BaseModel):
    name: str
    description: str
    has_ebv_column: bool
    flux_types: list[FluxTypeOut]


class DereddenerOut(BaseModel):
    name: str
    description: str
    files_present: bool
    missing_files: list[str]


class FormatOut(BaseModel):
    name: str
    extension: str
    description: str


class RedshiftCatalogOut(BaseModel):
    id: int
    name: str
    description: str
    columns: dict[str, str]
    n_rows: int
    created_at: str


class ProductOut(BaseModel):
    id: int
    name: str
    description: str
    status: str
    progress: float
    n_rows: int | None
    error: str | None
    config: dict[str, Any]
    created_at: str
    finished_at: str | None
    file_name: str | None
    download_url: str | None


def _product_out(p: ProductRecord) -> ProductOut:
    done = p.status == "done" and p.output_path
    return ProductOut(
        id=p.id, name=p.name, description=p.description, status=p.status, progress=p.progress, n_rows=p.n_rows,
        error=p.error, config=p.config, created_at=p.created_at, finished_at=p.finished_at,
        file_name=Path(p.output_path).name if done else None,
        download_url=f"/api/training-sets/{p.id}/file" if done else None,
    )


def _catalog_out(r: RedshiftCatalogRecord) -> RedshiftCatalogOut:
    return RedshiftCatalogOut(id=r.id, name=r.name, description=r.description, columns=r.columns, n_rows=r.n_rows,
                              created_at=r.created_at)


def _releases() -> list[ReleaseOut]:
    return [
        ReleaseOut(name=c.name, description=c.description, has_ebv_column=bool(c.ebv_column),
                   flux_types=[FluxTypeOut(name=f.name, description=f.description, default=f.default)
                               for f in plugins.flux_types(c).values()])
        for c in plugins.object_catalogs().values()
    ]


def create_app(max_runs: int = 2, max_upload_bytes: int = 200 * 2**20, token: str | None = None) -> FastAPI:
    """The web service over the registry of ``$TSM_HOME``.

    ``token`` (default ``$TSM_API_TOKEN``), when set, is required on every API call as
    ``Authorization: Bearer <token>``. Uploads larger than ``max_upload_bytes`` are
    refused; at most ``max_runs`` training sets are built at once, in background threads.
    """
    home = tsm_home()
    products_dir = home / "products"
    uploads_dir = home / "uploads"
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    runner = Runner(max_runs)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        runner.shutdown()

    app = FastAPI(title="Training Set Maker", version="0.1.0", lifespan=lifespan,
                  description="Build photo-z training sets: spectroscopic redshifts x Rubin Object catalogs.")
    app.state.runner = runner

    def registry() -> Registry:
        return Registry.at_home(home)

    def check_token(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise APIError(401, f"a valid API token is required (Authorization: Bearer <{TOKEN_ENV}>)", "token")

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return _error(exc.status, [{"field": exc.field, "message": exc.message}])

    @app.exception_handler(TSMError)
    async def tsm_error(_: Request, exc: TSMError) -> JSONResponse:
        message = str(exc)
        if exc.key and message.startswith(f"{exc.key}: "):
            message = message[len(exc.key) + 2:]
        return _error(422, [{"field": exc.key, "message": message}])

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"] if p not in ("body", "query", "path", "form")]
            message = err["msg"].removeprefix("Value error, ")
            errors.append({"field": ".".join(loc), "message": "unknown key" if err["type"] == "extra_forbidden" else message})
        return _error(422, errors)

    api = APIRouter(prefix="/api", dependencies=[Depends(check_token)])

    @api.get("/releases", response_model=list[ReleaseOut], summary="Installed object catalogs with their flux types")
    def releases() -> list[ReleaseOut]:
        return _releases()

    @api.get("/releases/{name}/flux-types", response_model=list[FluxTypeOut], summary="Flux types of one release")
    def flux_types(name: str) -> list[FluxTypeOut]:
        return next((r.flux_types for r in _releases() if r.name == name), None) or _unknown_release(name)

    @api.get("/dereddeners", response_model=list[DereddenerOut], summary="Dereddeners and whether their map files are present")
    def dereddeners() -> list[DereddenerOut]:
        out = []
        for d in plugins.dereddeners().values():
            missing = [str(p) for p in d.missing_files(None)]
            out.append(DereddenerOut(name=d.name, description=d.description, files_present=not missing, missing_files=missing))
        return out

    @api.get("/formats", response_model=list[FormatOut], summary="Installed output formats")
    def formats() -> list[FormatOut]:
        return [FormatOut(name=w.name, extension=w.extension, description=w.description) for w in plugins.writers().values()]

    @api.get("/redshift-catalogs", response_model=list[RedshiftCatalogOut], summary="Registered redshift catalogs")
    def redshift_catalogs() -> list[RedshiftCatalogOut]:
        return [_catalog_out(r) for r in registry().redshift_catalogs()]

    @api.post("/redshift-catalogs", response_model=RedshiftCatalogOut, status_code=201,
              summary="Upload a redshift catalog file, validate it and register it")
    def upload_redshift_catalog(
        name: str = Form(..., description="a unique name"),
        file: UploadFile = File(..., description="Parquet, CSV, FITS or HDF5"),
        columns: str = Form("", description='mapping, as JSON {"ra": "RA", ...} or ra=RA,dec=DEC,...'),
        description: str = Form(""),
    ) -> RedshiftCatalogOut:
        from tsm_core.catalogs import parse_column_mapping, register_redshift_catalog

        if not name.strip():
            raise APIError(422, "a redshift catalog needs a non-blank name", "name")
        try:
            mapping = parse_column_mapping(columns)
        except ValueError as exc:
            raise APIError(422, str(exc), "columns") from None
        try:
            path = save_upload(file, uploads_dir, max_upload_bytes)
        except UploadTooLarge as exc:
            raise APIError(413, str(exc), "file") from None
        except ValueError as exc:
            raise APIError(422, str(exc), "file") from None
        try:
            record = register_redshift_catalog(name, path, mapping, description, registry())
        except TSMError as exc:
            path.unlink(missing_ok=True)
            field = "columns" if exc.key.startswith("redshift_catalog.columns") else "name" if exc.key == "name" else "file"
            raise APIError(422, str(exc), field) from None
        return _catalog_out(record)

    @api.post("/training-sets", response_model=ProductOut, status_code=202,
              summary="Submit a training set; it is built in the background")
    def submit(config: RunConfig) -> ProductOut:
        from tsm_core.pipeline import prepare

        if config.redshift_catalog.path:
            raise APIError(422, "choose a registered redshift catalog (name or id), or upload one first",
                           "redshift_catalog.path")
        data = config.model_dump(mode="json")
        data["output"]["directory"] = str(products_dir)  # the server decides where files go
        plan = prepare(data)
        reg = registry()
        product_id = reg.create_product(plan.config.name, plan.config.description, plan.config.model_dump(mode="json"))
        runner.submit(plan, product_id, reg)
        return _product_out(reg.product(product_id))

    @api.get("/training-sets", response_model=list[ProductOut], summary="Training sets, newest first")
    def products(search: str | None = None, limit: int = 200) -> list[ProductOut]:
        return [_product_out(p) for p in registry().products(search=search, limit=limit)]

    @api.get("/training-sets/{product_id}", response_model=ProductOut, summary="Status and progress of a training set")
    def product(product_id: int) -> ProductOut:
        return _product_out(_get_product(registry(), product_id))

    @api.get("/training-sets/{product_id}/file", summary="Download the file of a finished training set",
             response_class=FileResponse)
    def download(product_id: int) -> FileResponse:
        p = _get_product(registry(), product_id)
        if p.status != "done" or not p.output_path:
            raise APIError(409, f"training set {product_id} is {p.status}; there is no file to download", "id")
        path = Path(p.output_path)
        if not path.is_file():
            raise APIError(410, f"the file of training set {product_id} is gone from the server", "id")
        return FileResponse(path, filename=path.name)

    app.include_router(api)
    from tsm_web.pzserver_api import include_pzserver  # the Photo-z Server's API under /api/.../, for its client

    include_pzserver(app, runner, token, max_upload_bytes)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def form_page() -> HTMLResponse:
        return _page("New training set", "form")

    @app.get("/products", response_class=HTMLResponse, include_in_schema=False)
    def products_page() -> HTMLResponse:
        return _page("Training sets", "products")

    @app.get("/products/{product_id}", response_class=HTMLResponse, include_in_schema=False)
    def product_page(product_id: int) -> HTMLResponse:
        return _page(f"Training set {product_id}", "product")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _page(title: str, part: str) -> HTMLResponse:
    """A page: the shared layout around ``static/<part>.part.html`` (which calls the API)."""
    layout = (STATIC / "layout.html").read_text()
    return HTMLResponse(layout.replace("{title}", title).replace("{body}", (STATIC / f"{part}.part.html").read_text()))


def _unknown_release(name: str) -> list[FluxTypeOut]:
    raise APIError(404, f"unknown release {name!r}; installed: {', '.join(plugins.object_catalogs())}", "release")


def _get_product(registry: Registry, product_id: int) -> ProductRecord:
    try:
        return registry.product(product_id)
    except TSMError:
        raise APIError(404, f"no training set with ID {product_id}", "id") from None
