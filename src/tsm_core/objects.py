"""Open a release's HATS object catalog with only the columns and rows a run needs."""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterable
from typing import Any

from tsm_core.errors import CatalogError, ConfigError
from tsm_core.types import ObjectCatalog

log = logging.getLogger(__name__)

_SIMPLE_CUT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_LITERALS = {"true": True, "false": False}


def parse_cut(expression: str) -> tuple[str, str, Any] | None:
    """``column op literal`` as a Parquet filter tuple, else None (a general expression)."""
    match = _SIMPLE_CUT.match(expression)
    if not match:
        return None
    column, op, raw = match.groups()
    if raw.lower() in _LITERALS:
        return column, op, _LITERALS[raw.lower()]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(value, (int, float, str, bool)):
        return None
    return column, op, value


def read_schema_names(path: str) -> list[str]:
    """Column names of the HATS catalog (or collection) at ``path``, without reading data."""
    import hats

    try:
        opened = hats.read_hats(path)
    except Exception as exc:  # noqa: BLE001 - any failure means: not a readable HATS catalog
        raise CatalogError(f"cannot open the HATS object catalog at {path}: {exc}", "object_catalog.path") from exc
    main = getattr(opened, "main_catalog", opened)
    return list(main.schema.names)


def check_columns(release: ObjectCatalog, path: str, present: list[str], needed: Iterable[str]) -> None:
    """Fail naming the needed columns that the catalog lacks."""
    missing = [c for c in needed if c not in present]
    if not missing:
        return
    families = sorted({m.group(1) for c in present if (m := re.match(r"^[ugrizy]_(\w+)Flux$", c))})
    raise CatalogError(
        f"the {release.name} object catalog at {path} lacks column(s) {', '.join(missing)}"
        + (f"; flux types it has: {', '.join(families)}" if families else ""),
        "object_catalog.flux_type",
    )


def open_objects(
    release: ObjectCatalog,
    path: str,
    columns: list[str],
    cuts: list[str],
    radius_arcsec: float,
    margin_path: str | None = None,
) -> Any:
    """Lazily open the object catalog for a crossmatch at ``radius_arcsec``.

    Reads only ``columns`` (plus those that general cuts use); the release's default
    filters and simple ``column op value`` cuts are pushed into the Parquet read.
    The margin (the collection's own, or ``margin_path``) must be at least the radius,
    or matches near partition edges would be lost.
    """
    import lsdb

    present = read_schema_names(path)
    check_columns(release, path, present, columns + [c for c, _, _ in release.default_filters])
    pushed = list(release.default_filters)
    general: list[str] = []
    for cut in cuts:
        parsed = parse_cut(cut)
        if parsed is None:
            general.append(cut)
        elif parsed[0] not in present:
            raise ConfigError("filters.object", f"unknown object column {parsed[0]!r} in {cut!r}")
        else:
            pushed.append(parsed)
    # pushed cuts need no column of their own; general ones are evaluated on loaded columns
    used = [i for g in general for i in _IDENTIFIER.findall(g) if i in present]
    load = list(dict.fromkeys(columns + used))
    try:
        objects = lsdb.open_catalog(path, columns=load, filters=pushed or None, margin_cache=margin_path)
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot open the object catalog at {path}: {exc}", "object_catalog.path") from exc
    if objects.margin is None:
        raise CatalogError(
            f"the object catalog at {path} has no margin cache; a crossmatch needs one at least "
            f"{radius_arcsec} arcsec wide (write it with a margin, e.g. lsdb's write_catalog)",
            "object_catalog.path",
        )
    threshold = objects.margin.hc_structure.catalog_info.margin_threshold
    if threshold is not None and radius_arcsec > threshold:
        raise ConfigError(
            "crossmatch.radius_arcsec",
            f"{radius_arcsec} arcsec is larger than the object catalog's margin of {threshold} arcsec: matches "
            f"with objects across a partition border would be lost; use a radius <= {threshold} or a wider margin (margin_path)",
        )
    for expression in general:
        try:
            objects = objects.query(expression)
        except Exception as exc:  # noqa: BLE001 - pandas raises many kinds here
            raise ConfigError("filters.object", f"cannot apply {expression!r}: {exc}") from exc
    log.info("object catalog %s: %d partitions, %d columns read", path, objects.npartitions, len(load))
    return objects
