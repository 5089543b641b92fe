"""Registering redshift catalogs: validate once, then choose them by name or ID."""

from __future__ import annotations

from pathlib import Path

from tsm_core.config import tsm_home
from tsm_core.redshift import load_redshift_catalog
from tsm_core.registry import RedshiftCatalogRecord, Registry


def register_redshift_catalog(
    name: str,
    path: str | Path,
    columns: dict[str, str] | None = None,
    description: str = "",
    registry: Registry | None = None,
) -> RedshiftCatalogRecord:
    """Validate the catalog at ``path`` with its column mapping and register it as ``name``.

    Fails (with the bad rows or the missing columns named) before anything is recorded.
    """
    path = Path(path).expanduser().resolve()
    frame = load_redshift_catalog(path, columns or {})
    registry = registry or Registry.at_home(tsm_home())
    return registry.add_redshift_catalog(name.strip(), str(path), columns or {}, len(frame), description)
