"""Registering redshift catalogs: validate once, then choose them by name or ID."""

from __future__ import annotations

import json
from pathlib import Path

from tsm_core.config import CANONICAL_REDSHIFT_COLUMNS, tsm_home
from tsm_core.redshift import load_redshift_catalog
from tsm_core.registry import RedshiftCatalogRecord, Registry


def register_redshift_catalog(
    name: str,
    path: str | Path,
    columns: dict[str, str] | None = None,
    description: str = "",
    registry: Registry | None = None,
    owner: str | None = None,
) -> RedshiftCatalogRecord:
    """Validate the catalog at ``path`` with its column mapping and register it as ``name``
    (``owner``: the user it belongs to; none for the operator's own catalogs).

    Fails (with the bad rows or the missing columns named) before anything is recorded.
    """
    path = Path(path).expanduser().resolve()
    frame = load_redshift_catalog(path, columns or {})
    registry = registry or Registry.at_home(tsm_home())
    return registry.add_redshift_catalog(name.strip(), str(path), columns or {}, len(frame), description, owner)


def parse_column_mapping(text: str | None) -> dict[str, str]:
    """A column mapping given as JSON (``{"ra": "RA"}``) or as ``ra=RA,dec=DEC``; blanks dropped."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"columns is not valid JSON: {exc}") from None
    else:
        mapping = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not canonical=column")
            mapping[key.strip()] = value.strip()
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError("columns maps canonical names to column names (strings)")
    mapping = {k: v for k, v in mapping.items() if v}
    unknown = sorted(set(mapping) - set(CANONICAL_REDSHIFT_COLUMNS))
    if unknown:
        raise ValueError(f"unknown canonical column(s) {unknown}; valid: {list(CANONICAL_REDSHIFT_COLUMNS)}")
    return mapping
