"""What the registry holds, as plain data: a registered redshift catalog and a training-set
product (a row each of :mod:`tsm_core.products.registry`'s tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RedshiftCatalogRecord:
    """A registered redshift catalog.

    ``path`` is its normalized copy under ``$TSM_HOME`` and ``source_path`` the file it
    was made from (``None`` for catalogs registered before copies were kept: then
    ``path`` is the user's file, read with ``columns``). ``convention`` is the survey
    convention applied and ``dropped`` the rows dropped per reason.
    """

    id: int
    name: str
    description: str
    path: str
    columns: dict[str, str]
    n_rows: int
    created_at: str
    source_path: str | None = None
    convention: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    owner: str | None = None


@dataclass(frozen=True)
class ProductRecord:
    """A training set: its automatic ID, status and, once done, its file."""

    id: int
    name: str
    description: str
    status: str
    config: dict[str, Any]
    n_rows: int | None
    output_path: str | None
    error: str | None
    provenance: dict[str, Any] | None
    progress: float
    created_at: str
    finished_at: str | None
    host: str | None = None
    pid: int | None = None
    start_token: str | None = None
    staging_path: str | None = None
    claim_path: str | None = None
    cancel_requested: int = 0
    owner: str | None = None
