"""The Photo-z Server's fixed entities as this server offers them: the releases (the installed
object catalogs), the product types and the one pipeline (the Training Set Maker), with
their routes and the API root."""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from fastapi import APIRouter, Request

from tsm_core import plugins
from tsm_web.pzserver.drf import matches, not_found, paginate, throw
from tsm_web.pzserver.params import DEFAULT_PARAM

PIPELINE_ID = 1
PIPELINE_NAME = "training_set_maker"
CREATED = "2025-01-01T00:00:00+00:00"

#: the Photo-z Server's product types, with its IDs
PRODUCT_TYPES: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "redshift_catalog",
        "display_name": "Reference Redshift Catalog",
        "order": 1,
        "description": "Catalog of reference redshifts and positions of galaxies (usually spectroscopic redshifts "
        "and equatorial coordinates).",
    },
    {
        "id": 2,
        "name": "training_set",
        "display_name": "Training Set",
        "order": 2,
        "description": "Training set for photo-z algorithms (tabular data). It usually contains magnitudes, errors, "
        "and reference redshifts.",
    },
    {
        "id": 3,
        "name": "validation_results",
        "display_name": "Validation Results",
        "order": 4,
        "description": "Results of a photo-z validation procedure.",
    },
    {
        "id": 4,
        "name": "photoz_estimates",
        "display_name": "Photo-z Estimates",
        "order": 5,
        "description": "Results of a photo-z estimation procedure.",
    },
    {
        "id": 5,
        "name": "training_results",
        "display_name": "Training Results",
        "order": 3,
        "description": "Any file(s) resulting from the training of machine learning algorithms.",
    },
    {
        "id": 6,
        "name": "object_catalog",
        "display_name": "Objects Catalog",
        "order": 6,
        "description": "Catalog of objects",
    },
    {"id": 7, "name": "other", "display_name": "Other", "order": 7, "description": "Any file(s)"},
]
TYPE_BY_ID = {t["id"]: t for t in PRODUCT_TYPES}
TYPE_BY_NAME = {t["name"]: t for t in PRODUCT_TYPES}


def releases() -> list[dict[str, Any]]:
    """The installed releases as Photo-z Server releases; IDs follow the sorted names."""
    out = []
    for number, name in enumerate(sorted(plugins.object_catalogs()), start=1):
        release = plugins.object_catalog(name)
        fluxes = plugins.flux_types(release).values()
        deredden = [
            {"name": "none", "display_name": "None", "selected": True},
            {
                "name": "sfd",
                "display_name": "SFD" + (" (the catalog's E(B-V))" if release.ebv_column else ""),
                "selected": False,
            },
        ]
        out.append(
            {
                "id": number,
                "name": name,
                "display_name": name.upper(),
                "description": release.description,
                "created_at": CREATED,
                "indexing_column": release.id_column,
                "has_mag_hats": False,
                "has_flux_hats": True,
                "is_public": True,
                "dereddening": deredden,
                "fluxes": [{"name": f.name, "display_name": f.name, "selected": f.default} for f in fluxes],
            }
        )
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
        "id": PIPELINE_ID,
        "name": PIPELINE_NAME,
        "display_name": "Training Set Maker",
        "version": version,
        "description": "Cross-matches a reference redshift catalog with the Object catalog of a Rubin data release.",
        "created_at": CREATED,
        "system_config": {"param": json.loads(json.dumps(DEFAULT_PARAM))},
        "product_types_accepted": [TYPE_BY_NAME["redshift_catalog"]["id"]],
        "output_product_type": TYPE_BY_NAME["training_set"]["id"],
    }


router = APIRouter()


@router.get("/", summary="The API root: its entities")
def api_root(request: Request) -> dict[str, str]:
    base = str(request.url_for("api_root"))
    return {
        name: f"{base}{name}/"
        for name in (
            "users",
            "releases",
            "product-types",
            "products",
            "product-contents",
            "product-files",
            "pipelines",
            "processes",
        )
    }


@router.get("/releases/", summary="Releases (installed object catalogs)")
def list_releases(request: Request, name: str | None = None) -> dict[str, Any]:
    return paginate(request, [r for r in releases() if matches(r["name"], name)])


@router.get("/releases/{item_id}/", summary="One release")
def get_release(item_id: int) -> dict[str, Any]:
    return release_by_id(item_id) or throw(not_found())


@router.get("/product-types/", summary="Product types")
def list_product_types(request: Request, name: str | None = None, ordering: str | None = None) -> dict[str, Any]:
    items = [t for t in PRODUCT_TYPES if matches(t["name"], name)]
    if ordering and ordering.lstrip("-") in ("id", "order", "name"):
        items.sort(key=lambda t: t[ordering.lstrip("-")], reverse=ordering.startswith("-"))
    return paginate(request, items)


@router.get("/product-types/{item_id}/", summary="One product type")
def get_product_type(item_id: int) -> dict[str, Any]:
    return TYPE_BY_ID.get(item_id) or throw(not_found())


@router.get("/pipelines/", summary="Pipelines (the Training Set Maker)")
def list_pipelines(request: Request, name: str | None = None) -> dict[str, Any]:
    return paginate(request, [p for p in [pipeline()] if matches(p["name"], name)])


@router.get("/pipelines/{item_id}/", summary="One pipeline")
def get_pipeline(item_id: int) -> dict[str, Any]:
    return pipeline() if item_id == PIPELINE_ID else throw(not_found())
