"""The JSON API under ``/api``: listings, redshift-catalog uploads, training sets.

Routes call the core's service layer (:mod:`tsm_core.service`) and registry, like the
``tsm`` command does; what the operator fixes (locations, compute) comes from the
app's :class:`~tsm_web.settings.ServerSettings`, never from the request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from tsm_core import service
from tsm_core.config import tsm_home
from tsm_core.errors import TooManyRuns, TSMError
from tsm_core.products.reading import product_files
from tsm_core.products.records import ProductRecord
from tsm_core.products.registry import Registry
from tsm_web import trust
from tsm_web.auth import Caller, Unauthenticated, caller_of, max_active
from tsm_web.errors import ERROR_RESPONSES, APIError, ErrorBody
from tsm_web.settings import ServerSettings
from tsm_web.uploads import UploadRefused, save_upload


def settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def registry(request: Request) -> Registry:
    """The app's one registry (:func:`tsm_web.app.create_app`), shared with the Photo-z Server API."""
    return request.app.state.registry


def caller(request: Request) -> Caller:
    """Who calls (:mod:`tsm_web.auth`); 401 without a valid token when the service has one."""
    try:
        return caller_of(request)
    except Unauthenticated as exc:
        raise APIError(401, str(exc), "token") from None


router = APIRouter(prefix="/api", dependencies=[Depends(caller)], responses=ERROR_RESPONSES)


class RedshiftCatalogOut(BaseModel):
    """A registered redshift catalog (where the server keeps it is not shown)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    columns: dict[str, str]
    n_rows: int
    created_at: str
    #: the user it belongs to; none for the official (operator's) ones
    owner: str | None = None


class ProductOut(BaseModel):
    """A training set: status, progress and, once done, where to download it."""

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
    #: with ``output.unmatched``, once done: the file of the redshifts the run lost, and its download
    unmatched_file_name: str | None = None
    unmatched_url: str | None = None
    release: str | None = None
    format: str | None = None
    redshift_catalog: str | None = None
    #: where the redshifts went (steps of :class:`tsm_core.pipeline.funnel.Funnel`), once done
    funnel: list[dict[str, Any]] = []
    report_url: str | None = None
    #: the user it belongs to; none for the official (operator's) ones
    owner: str | None = None

    @classmethod
    def of(cls, p: ProductRecord, request: Request, catalog_names: dict[int, str] | None = None) -> ProductOut:
        """``p`` as answered; ``catalog_names`` (ID to name, default: the registry's) names
        the redshift catalog a config gives by ID."""
        done = p.status == "done" and bool(p.output_path)
        lost = _unmatched(p) if done else None
        given = p.config.get("redshift_catalog") or {}
        named = []
        for source in given if isinstance(given, list) else [given]:  # one catalog, or several
            if source.get("id") is not None and not source.get("name"):
                names = catalog_names if catalog_names is not None else _catalog_names(request)
                source = {"name": names.get(int(source["id"])), "id": source["id"]}
            named.append(str(source.get("name") or source.get("id") or ""))
        return cls(
            release=(p.config.get("object_catalog") or {}).get("release"),
            format=(p.config.get("output") or {}).get("format"),
            redshift_catalog=", ".join(n for n in named if n) or None,
            funnel=list(((p.provenance or {}).get("funnel") or {}).get("steps") or []),
            report_url=f"/api/training-sets/{p.id}/report" if done else None,
            owner=p.owner,
            id=p.id,
            name=p.name,
            description=p.description,
            status=p.status,
            progress=p.progress,
            n_rows=p.n_rows,
            error=request.app.state.redact(p.error) if p.error else None,
            config=trust.public_config(p.config),
            created_at=p.created_at,
            finished_at=p.finished_at,
            file_name=Path(p.output_path).name if done else None,
            download_url=f"/api/training-sets/{p.id}/file" if done else None,
            unmatched_file_name=lost.name if lost else None,
            unmatched_url=f"/api/training-sets/{p.id}/unmatched" if lost else None,
        )


def _unmatched(p: ProductRecord) -> Path | None:
    """The unmatched file of product ``p`` (``output.unmatched``), None if it has none."""
    found = product_files(p).get("unmatched")
    return found[0] if found else None


def _catalog_names(request: Request) -> dict[int, str]:
    """The name by ID of every registered redshift catalog the caller may see (others stay IDs)."""
    return {c.id: c.name for c in registry(request).redshift_catalogs(visible_to=caller(request).visible_to)}


class MeOut(BaseModel):
    """Who the caller is: a user's ``name``, or none for the admin and the anonymous caller."""

    name: str | None
    #: ``user`` (a user's token), ``admin`` (the operator's token) or ``anonymous`` (open mode, no token)
    role: str


@router.get("/me", response_model=MeOut, summary="Who the caller is: a user, the admin, or anonymous (open mode)")
def me(request: Request, who: Caller = Depends(caller)) -> MeOut:
    role = "user" if who.name else "admin" if settings(request).token else "anonymous"
    return MeOut(name=who.name, role=role)


@router.get(
    "/releases", response_model=list[service.ReleaseInfo], summary="Installed object catalogs with their flux types"
)
def releases(request: Request) -> list[service.ReleaseInfo]:
    return service.release_listing(settings(request).release_paths)


@router.get(
    "/releases/{name}/flux-types", response_model=list[service.FluxTypeInfo], summary="Flux types of one release"
)
def flux_types(name: str) -> list[service.FluxTypeInfo]:
    try:
        return service.flux_type_listing(name)
    except TSMError as exc:
        raise APIError(404, exc.message, "release") from None


@router.get(
    "/dereddeners",
    response_model=list[service.DereddenerInfo],
    summary="Dereddeners and whether their map files are present",
)
def dereddeners(request: Request) -> list[service.DereddenerInfo]:
    maps = settings(request).dust_maps_dir
    return service.dereddener_listing(Path(maps).expanduser() if maps else None)


@router.get(
    "/conventions",
    response_model=list[service.ConventionInfo],
    summary="Redshift-catalog survey conventions (redshift_catalog.convention)",
)
def conventions() -> list[service.ConventionInfo]:
    return service.convention_listing()


@router.get("/formats", response_model=list[service.FormatInfo], summary="Installed output formats")
def formats() -> list[service.FormatInfo]:
    return service.format_listing()


@router.get("/redshift-catalogs", response_model=list[RedshiftCatalogOut], summary="Registered redshift catalogs")
def redshift_catalogs(request: Request, who: Caller = Depends(caller)) -> list[Any]:
    return registry(request).redshift_catalogs(visible_to=who.visible_to)


@router.post(
    "/redshift-catalogs",
    response_model=RedshiftCatalogOut,
    status_code=201,
    summary="Upload a redshift catalog file, validate it and register it",
)
def upload_redshift_catalog(
    request: Request,
    name: str = Form(..., description="a unique name"),
    file: UploadFile = File(..., description="Parquet, CSV, FITS or HDF5"),
    columns: str = Form("", description='mapping, as JSON {"ra": "RA", ...} or ra=RA,dec=DEC,...'),
    description: str = Form(""),
    convention: str = Form("", description="survey convention (GET /api/conventions); blank: detected"),
    who: Caller = Depends(caller),
) -> Any:
    from tsm_core.redshifts.registration import parse_column_mapping, register_redshift_catalog

    if not name.strip():
        raise APIError(422, "a redshift catalog needs a non-blank name", "name")
    try:
        mapping = parse_column_mapping(columns)
    except ValueError as exc:
        raise APIError(422, str(exc), "columns") from None
    try:
        path = save_upload(file, tsm_home() / "uploads", settings(request).upload_limits)
    except UploadRefused as exc:
        raise APIError(exc.status, exc.message, "file") from None
    except ValueError as exc:
        raise APIError(422, str(exc), "file") from None
    try:
        return register_redshift_catalog(
            name, path, mapping, description, registry(request), convention=convention or None, owner=who.name
        )
    except TSMError as exc:
        path.unlink(missing_ok=True)
        field = "columns" if exc.key.startswith("redshift_catalog.columns") else "name" if exc.key == "name" else "file"
        raise APIError(422, exc.message, field) from None


@router.post(
    "/training-sets",
    response_model=ProductOut,
    status_code=202,
    summary="Submit a training set; it is built in the background",
    responses={429: {"model": ErrorBody, "description": "the user has as many runs queued as allowed"}},
)
def submit(request: Request, config: dict[str, Any], who: Caller = Depends(caller)) -> ProductOut:
    """The body is a run config (see the README) without the keys the server fixes:
    ``object_catalog.path``, ``margin_path``, ``dust_maps_dir``, ``output.directory``,
    ``output.overwrite``, ``compute`` and ``redshift_catalog.path`` are refused (422).
    A user builds from their own and the operator's registered catalogs, with at most
    ``max_queued_per_user`` training sets queued or running (429)."""
    reg = registry(request)
    try:
        plan, product_id = trust.submit(config, settings(request), who.name, max_active(request, who), reg)
    except TooManyRuns as exc:
        raise APIError(429, exc.message, "id") from None
    request.app.state.runner.submit(plan, product_id, reg)
    return ProductOut.of(reg.product(product_id), request)


@router.get("/training-sets", response_model=list[ProductOut], summary="Training sets, newest first")
def products(
    request: Request, search: str | None = None, limit: int = 200, offset: int = 0, who: Caller = Depends(caller)
) -> list[ProductOut]:
    """At most ``limit`` (up to 1000) training sets whose name contains ``search``, after
    the ``offset`` newest."""
    offset = min(max(offset, 0), 100_000)
    wanted = min(max(limit, 1), 1000)
    found = registry(request).products(search=search, limit=offset + wanted, visible_to=who.visible_to)[offset:]
    names = _catalog_names(request)
    return [ProductOut.of(p, request, names) for p in found]


@router.get("/training-sets/{product_id}", response_model=ProductOut, summary="Status and progress of a training set")
def product(request: Request, product_id: int, who: Caller = Depends(caller)) -> ProductOut:
    return ProductOut.of(_get_product(request, product_id, who), request)


@router.get(
    "/training-sets/{product_id}/file",
    summary="Download the file of a finished training set",
    response_class=FileResponse,
)
def download(request: Request, product_id: int, who: Caller = Depends(caller)) -> FileResponse:
    p = _finished(request, product_id, who)
    return _file(Path(p.output_path or ""), f"the file of training set {product_id}")


@router.get(
    "/training-sets/{product_id}/unmatched",
    summary="Download the redshifts a finished training set lost, with the reason (output.unmatched)",
    response_class=FileResponse,
)
def download_unmatched(request: Request, product_id: int, who: Caller = Depends(caller)) -> FileResponse:
    path = _unmatched(_finished(request, product_id, who))
    if path is None:
        raise APIError(
            404, f"training set {product_id} has no unmatched file (run it with output.unmatched: true)", "id"
        )
    return _file(path, f"the unmatched file of training set {product_id}")


def _finished(request: Request, product_id: int, who: Caller) -> ProductRecord:
    """The caller's finished training set ``product_id`` (409 while it is not done)."""
    p = _get_product(request, product_id, who)
    if p.status != "done" or not p.output_path:
        raise APIError(409, f"training set {product_id} is {p.status}; there is no file to download", "id")
    return p


def _file(path: Path, what: str) -> FileResponse:
    """``path`` as a download (410 if it is gone from the disk)."""
    if not path.is_file():
        raise APIError(410, f"{what} is gone from the server", "id")
    return FileResponse(path, filename=path.name)


class ReportOut(BaseModel):
    """The report of a finished training set: its numbers, and its HTML body to embed."""

    numbers: dict[str, Any]
    html: str


@router.get(
    "/training-sets/{product_id}/report",
    response_model=ReportOut,
    summary="The report of a finished training set (funnel, figures, representativeness)",
)
def report(request: Request, product_id: int, who: Caller = Depends(caller)) -> ReportOut:
    """Rendered at the first request, then served from the stored copy."""
    from tsm_core.reports import stored_report

    p = _get_product(request, product_id, who)
    if p.status != "done":
        raise APIError(409, f"training set {product_id} is {p.status}; there is no report", "id")
    numbers, html = stored_report(product_id, tsm_home())
    return ReportOut(numbers=numbers, html=html)


@router.post(
    "/training-sets/{product_id}/cancel",
    response_model=ProductOut,
    status_code=202,
    summary="Cancel a queued or running training set",
)
def cancel(request: Request, product_id: int, who: Caller = Depends(caller)) -> ProductOut:
    from tsm_core.products.lifecycle import cancel_product

    _get_product(request, product_id, who, write=True)
    try:
        return ProductOut.of(cancel_product(registry(request), product_id), request)
    except TSMError as exc:
        raise APIError(409, exc.message, "id") from None


@router.delete("/training-sets/{product_id}", status_code=204, summary="Remove a finished training set and its file")
def remove(request: Request, product_id: int, who: Caller = Depends(caller)) -> None:
    from tsm_core.products.lifecycle import remove_product

    _get_product(request, product_id, who, write=True)
    try:
        remove_product(registry(request), product_id, who.visible_to)
    except TSMError as exc:
        raise APIError(409, exc.message, "id") from None
    request.app.state.pzserver.store().forget_training_set(product_id)  # the Photo-z Server's product of it goes too


def _get_product(request: Request, product_id: int, who: Caller, write: bool = False) -> ProductRecord:
    """Training set ``product_id`` if ``who`` may see it (``write``: and change it), else 404."""
    try:
        found = registry(request).product(product_id, who.visible_to)
    except TSMError:
        found = None
    if found is None or (write and not who.can_write(found)):
        raise APIError(404, f"no training set with ID {product_id}", "id")
    return found
