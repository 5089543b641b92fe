"""Open a release's HATS object catalog with only the columns and rows a run needs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from tsm_core.errors import CatalogError, ConfigError
from tsm_core.filters import Filter, RowFilter, check_filter_columns, check_filter_types
from tsm_core.types import ObjectCatalog

log = logging.getLogger(__name__)

def read_schema(path: str) -> Any:
    """The Arrow schema of the HATS catalog (or collection) at ``path``, without reading data."""
    import hats

    try:
        opened = hats.read_hats(path)
    except Exception as exc:  # noqa: BLE001 - any failure means: not a readable HATS catalog
        raise CatalogError(f"cannot open the HATS object catalog at {path}: {exc}", "object_catalog.path") from exc
    main = getattr(opened, "main_catalog", opened)
    return main.schema


def flux_families(release: ObjectCatalog, present: Iterable[str]) -> list[str]:
    """The flux types whose value column exists for some band of ``release`` in ``present``,
    found through the release's own column template."""
    bands = "|".join(re.escape(b) for b in release.bands)
    pattern = re.escape(release.flux_column_template).replace(re.escape("{band}"), f"(?:{bands})")
    pattern = pattern.replace(re.escape("{flux_type}"), r"(\w+?)")
    return sorted({m.group(1) for c in present if (m := re.fullmatch(pattern, c))})


def check_columns(release: ObjectCatalog, path: str, present: list[str], needed: Iterable[str]) -> None:
    """Fail naming the needed columns that the catalog lacks."""
    missing = [c for c in needed if c not in present]
    if not missing:
        return
    families = flux_families(release, present)
    raise CatalogError(
        f"the {release.name} object catalog at {path} lacks column(s) {', '.join(missing)}"
        + (f"; flux types it has: {', '.join(families)}" if families else ""),
        "object_catalog.flux_type",
    )


def open_objects(
    release: ObjectCatalog,
    path: str,
    columns: list[str],
    filters: Sequence[Filter],
    radius_arcsec: float,
    margin_path: str | None = None,
) -> Any:
    """Lazily open the object catalog for a crossmatch at ``radius_arcsec``.

    Reads only ``columns`` (plus those that ``filters`` use); the release's default
    filters and simple ``column op value`` filters are pushed into the Parquet read, the
    others are evaluated per partition (main and margin alike) by the filter language.
    The margin (the collection's own, or ``margin_path``) must be at least the radius,
    or matches near partition edges would be lost.
    """
    import lsdb

    schema = read_schema(path)
    present = list(schema.names)
    check_columns(release, path, present, columns + [c for c, _, _ in release.default_filters])
    check_filter_columns(filters, present, f"{release.name} object")
    check_filter_types(filters, schema)
    pushed = list(release.default_filters)
    general: list[Filter] = []
    for f in filters:
        cut = f.pushdown()
        if cut is None:
            general.append(f)
        else:
            pushed.append(cut)
    # pushed cuts need no column of their own; general ones are evaluated on loaded columns
    load = list(dict.fromkeys(columns + [c for f in general for c in f.columns]))
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
            f"{radius_arcsec} arcsec is larger than the object catalog's margin of {threshold} arcsec",
        )
    if general:
        objects = objects.map_partitions(RowFilter(tuple(general)), meta=objects.meta)
    log.info("object catalog %s: %d partitions, %d columns read", path, objects.npartitions, len(load))
    return objects
