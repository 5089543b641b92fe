"""What the Photo-z Server API reads and writes: the request bodies it validates, the
serializers of products, files, columns and processes (the Photo-z Server's field names and
status codes), and the main file behind a product."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from tsm_core.errors import TSMError
from tsm_core.products.output import slugify
from tsm_core.products.records import ProductRecord
from tsm_core.products.registry import Registry
from tsm_core.redshifts.store import is_store, parquet_copy_path
from tsm_web.auth import Caller
from tsm_web.pzserver.drf import scrub
from tsm_web.pzserver.releases import PIPELINE_ID, PIPELINE_NAME, TYPE_BY_NAME, pipeline, release_id
from tsm_web.pzserver.state import PzSettings
from tsm_web.pzserver.store import PzContent, PzProcess, PzProduct

STATUS_LABELS = {0: "Registering", 1: "Published", 2: "Deleted", 3: "Processing", 9: "Failed"}
FILE_ROLES = {0: "Main", 1: "Description", 2: "Auxiliary"}
#: the client's column association (alias, any case) -> canonical redshift column
ALIASES = {"id": "id", "ra": "ra", "dec": "dec", "z": "z", "z_err": "z_err", "z_flag": "z_flag", "survey": "survey"}
UCDS = {
    "id": "meta.id;meta.main",
    "ra": "pos.eq.ra;meta.main",
    "dec": "pos.eq.dec;meta.main",
    "z": "src.redshift",
    "z_err": "stat.error;src.redshift",
    "z_flag": "stat.rank",
    "survey": "meta.curation",
}
ALIAS_SPELLING = {"id": "ID", "ra": "RA", "dec": "Dec"}


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
        path = parquet_copy_path(path)  # when a download is prepared or asked for (readable_main_file)
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
        "id": product.id,
        "product_type": ptype["id"],
        "product_type_name": ptype["display_name"],
        "product_type_internal_name": ptype["name"],
        "release": release_id(product.release),
        "release_name": product.release.upper() if product.release else None,
        "internal_name": internal_name(product),
        "display_name": product.display_name,
        "official_product": product.official or product.owner is None,
        "pz_code": product.pz_code,
        "description": product.description,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "status": status,
        "product_status": STATUS_LABELS[status],
        "release_year": None,
        "uploaded_by": product.owner or "operator",
        "is_owner": who.can_write(product),
        "can_delete": who.can_write(product),
        "can_update": who.can_write(product),
        "origin": "Training Set Maker" if product.training_set_id is not None else "Upload",
        "process_status": process_status(ts, process) if process else None,
        "process_id": process.id if process else None,
    }


def content_out(c: PzContent) -> dict[str, Any]:
    return {
        "id": c.id,
        "product": c.product_id,
        "column_name": c.column_name,
        "ucd": c.ucd,
        "alias": c.alias,
        "order": c.position,
    }


def file_out(who: Caller, product: PzProduct, f: MainFile) -> dict[str, Any]:
    return {
        "id": product.id,
        "product": product.id,
        "file": f.name,
        "role": 0,
        "role_name": FILE_ROLES[0],
        "type": f.type,
        "name": f.name,
        "size": f.size,
        "n_rows": f.n_rows,
        "extension": f.extension,
        "is_directory": f.path.is_dir(),
        "can_delete": False,
        "created": product.created_at,
        "updated": product.updated_at,
    }


def process_out(pz: PzSettings, who: Caller, process: PzProcess) -> dict[str, Any]:
    ts = None
    try:
        ts = pz.registry().product(process.training_set_id)
    except TSMError:
        pass
    return {
        "id": process.id,
        "display_name": process.display_name,
        "pipeline": PIPELINE_ID,
        "pipeline_name": PIPELINE_NAME,
        "pipeline_version": pipeline()["version"],
        "release": release_id(process.release),
        "release_name": process.release.upper() if process.release else None,
        "used_config": process.used_config,
        "inputs": process.inputs,
        "upload": process.upload,
        "status": process_status(ts, process),
        "comment": scrub(ts.error) if ts and ts.error else None,
        "created_at": process.created_at,
        "started_at": process.created_at,
        "ended_at": ts.finished_at if ts else None,
        "owned_by": process.owner or "operator",
        "is_owner": who.is_admin or process.owner == who.name,
    }
