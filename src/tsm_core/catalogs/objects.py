"""Open a release's HATS object catalog with only the columns and rows a run needs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsm_core.errors import CatalogError, ConfigError
from tsm_core.plugins.records import ObjectCatalog
from tsm_core.science.filters import Filter, RowFilter, check_filter_columns, check_filter_types

if TYPE_CHECKING:
    import lsdb

log = logging.getLogger(__name__)


def read_schema(path: str, release: str = "dp1", env_var: str | None = None) -> Any:
    """The Arrow schema of the HATS catalog (or collection) at ``path``, without reading data.

    A path that is not a HATS catalog is refused saying what it is (missing, a plain
    Parquet or other file, a folder without HATS properties) with a hint of ``tsm import``
    for ``release``; ``env_var`` names the environment variable the path came from.

    A local catalog's schema is read from its ``dataset/_common_metadata`` file alone (the
    collection's main catalog is named in ``collection.properties``); HATS opens the catalog
    (partition list, coverage map) only where that file is missing, or for a remote path.
    """
    local = _common_metadata(Path(path)) if "://" not in path else None
    if local is not None:
        import pyarrow.parquet as pq

        try:
            return pq.read_schema(local)
        except Exception:  # noqa: BLE001 - damaged or odd: HATS opens it and says why
            pass
    import hats

    try:
        opened: Any = hats.read_hats(path)  # a catalog or a collection, used by duck typing
    except Exception as exc:  # noqa: BLE001 - any failure means: not a readable HATS catalog
        raise CatalogError("object_catalog.path", not_hats_message(path, release, env_var, exc)) from exc
    main = getattr(opened, "main_catalog", opened)
    return main.schema


def _common_metadata(path: Path) -> Path | None:
    """The ``_common_metadata`` file of the HATS catalog (or collection's main catalog) at
    ``path``, None where there is none."""
    props = path / "collection.properties"
    if props.is_file():
        lines = (line.partition("=") for line in props.read_text().splitlines())
        primary = next((value.strip() for key, _, value in lines if key.strip() == "hats_primary_table_url"), None)
        if not primary:
            return None
        path = path / primary
    if not any((path / name).is_file() for name in ("hats.properties", "properties")):
        return None
    found = path / "dataset" / "_common_metadata"
    return found if found.is_file() else None


def not_hats_message(path: str, release: str, env_var: str | None, exc: Exception) -> str:
    """Why ``path`` is not a HATS object catalog, in one line, with the way to make one."""
    local = Path(path) if "://" not in path else None
    origin = f" (the path came from ${env_var})" if env_var else ""
    hint = f"; make a HATS catalog of your own table with `tsm import {path} --release {release} --out DIR`"
    if local is not None and not local.exists():
        return f"the object catalog {path} does not exist{origin}{hint}"
    if local is not None and local.is_file():
        with open(local, "rb") as fh:
            kind = "a plain Parquet file" if fh.read(4) == b"PAR1" else "a file"
        return f"the object catalog {path} is {kind}, not a HATS catalog{origin}{hint}"
    if local is not None and not any(
        (local / n).exists() for n in ("properties", "hats.properties", "collection.properties")
    ):
        return f"the object catalog {path} is a folder without HATS properties, not a HATS catalog{origin}{hint}"
    return f"cannot open the HATS object catalog at {path}{origin}: {exc}"


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
        "object_catalog.flux_type",
        f"the {release.name} object catalog at {path} lacks column(s) {', '.join(missing)}"
        + (f"; flux types it has: {', '.join(families)}" if families else ""),
    )


def open_objects(
    release: ObjectCatalog,
    path: str,
    columns: list[str],
    filters: Sequence[Filter],
    radius_arcsec: float,
    margin_path: str | None = None,
    schema: Any = None,
) -> lsdb.Catalog:
    """Lazily open the object catalog for a crossmatch at ``radius_arcsec``.

    Reads only ``columns`` (plus those that ``filters`` use); the release's default
    filters and simple ``column op value`` filters are pushed into the Parquet read, the
    others are evaluated per partition (main and margin alike) by the filter language.
    The margin (the collection's own, or ``margin_path``) must be at least the radius,
    or matches near partition edges would be lost. ``schema``: the catalog's schema
    where the caller has read it already (:func:`read_schema`).
    """
    import lsdb

    schema = schema if schema is not None else read_schema(path)
    present = list(schema.names)
    check_columns(release, path, present, columns + [c for c, _, _ in release.default_filters])
    check_filter_columns(filters, present, f"{release.name} object")
    check_filter_types(filters, schema)
    # (column, op, value) cuts in pyarrow's filter form (lsdb annotates them as list[tuple[str]])
    pushed: list[Any] = list(release.default_filters)
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
        raise CatalogError("object_catalog.path", f"cannot open the object catalog at {path}: {exc}") from exc
    if objects.margin is None:
        raise CatalogError(
            "object_catalog.path",
            f"the object catalog at {path} has no margin cache; a crossmatch needs one at least "
            f"{radius_arcsec} arcsec wide (write it with a margin, e.g. lsdb's write_catalog)",
        )
    threshold = objects.margin.hc_structure.catalog_info.margin_threshold
    if threshold is not None and radius_arcsec > threshold:
        raise ConfigError(
            "crossmatch.radius_arcsec",
            f"{radius_arcsec} arcsec is larger than the object catalog's margin of {threshold} arcsec: matches "
            f"with objects across a partition border would be lost; use a radius <= {threshold} or a wider margin (margin_path)",
        )
    if general:
        objects = objects.map_partitions(RowFilter(tuple(general)), meta=objects.meta)
    log.info("object catalog %s: %d partitions, %d columns read", path, objects.npartitions, len(load))
    return objects


def check_margin(release: ObjectCatalog, path: str, margin_path: str) -> None:
    """Refuse a margin given apart (``object_catalog.margin_path``) that is not the
    margin of the object catalog at ``path``, saying why.

    A margin of another catalog, wide enough, would be accepted by LSDB and give
    matches near partition edges to objects that are not in the catalog (and lose the
    true ones). Checked from the metadata: it is a margin; it was made for a catalog of
    the same name; its partitions are partitions of the catalog (the same pixel tree);
    it has the catalog's columns. Then from the data of its smallest partition: its rows
    are rows of the catalog's neighbouring partitions (same ID at the same position).
    """
    import hats

    key = "object_catalog.margin_path"
    try:
        margin: Any = hats.read_hats(margin_path)  # the declared type is a union of catalog kinds
    except Exception as exc:  # noqa: BLE001 - any failure means: not a readable HATS catalog
        raise CatalogError(key, f"cannot open the margin at {margin_path}: {exc}") from exc
    opened: Any = hats.read_hats(path)
    catalog = getattr(opened, "main_catalog", opened)
    info = margin.catalog_info
    kind = str(getattr(info.catalog_type, "value", info.catalog_type))
    if kind != "margin":
        raise CatalogError(key, f"{margin_path} is not a margin catalog (its type is {kind})")
    name = catalog.catalog_info.catalog_name
    if info.primary_catalog and Path(str(info.primary_catalog)).name not in (name, Path(path).name):
        raise CatalogError(
            key,
            f"the margin at {margin_path} was made for catalog {info.primary_catalog!r}, not for {name!r} at {path}",
        )
    pixels = set(catalog.get_healpix_pixels())
    foreign = [p for p in margin.get_healpix_pixels() if p not in pixels]
    if foreign:
        raise CatalogError(
            key,
            f"the margin at {margin_path} does not belong to the catalog at {path}: {len(foreign)} of its "
            f"partitions (e.g. {foreign[0]}) are not partitions of the catalog (another pixel tree)",
        )
    missing = [c for c in catalog.schema.names if c not in margin.schema.names]
    if missing:
        raise CatalogError(
            key,
            f"the margin at {margin_path} does not belong to the catalog at {path}: it lacks column(s) "
            f"{', '.join(missing[:5])}",
        )
    _check_margin_rows(release, catalog, margin, margin_path, path)


def _check_margin_rows(release: ObjectCatalog, catalog: Any, margin: Any, margin_path: str, path: str) -> None:
    """The rows of the margin's smallest non-empty partition are rows of the catalog."""
    import numpy as np
    import pyarrow.parquet as pq
    from hats.io import paths

    id_col = release.id_column
    spatial = catalog.catalog_info.healpix_column or "_healpix_29"
    if id_col not in catalog.schema.names or spatial not in catalog.schema.names:
        return
    sized = [(n, p) for p, n in zip(margin.get_healpix_pixels(), _rows(margin)) if n]
    if not sized:
        return
    pixel = min(sized, key=lambda item: item[0])[1]
    rows = pq.read_table(paths.pixel_catalog_file(margin.catalog_base_dir, pixel), columns=[id_col, spatial])
    if not rows.num_rows:
        return
    healpix = rows.column(spatial).to_numpy().astype(np.int64)
    known: set = set()
    for source in catalog.get_healpix_pixels():
        if np.any((healpix >> (2 * (29 - source.order))) == source.pixel):
            part = pq.read_table(paths.pixel_catalog_file(catalog.catalog_base_dir, source), columns=[id_col, spatial])
            known.update(zip(part.column(id_col).to_pylist(), part.column(spatial).to_pylist()))
    strangers = [i for i, h in zip(rows.column(id_col).to_pylist(), healpix.tolist()) if (i, h) not in known]
    if strangers:
        raise CatalogError(
            "object_catalog.margin_path",
            f"the margin at {margin_path} does not belong to the catalog at {path}: {len(strangers)} of the "
            f"{rows.num_rows} rows of its partition {pixel} are not objects of the catalog (e.g. {id_col} {strangers[0]})",
        )


def _rows(catalog: Any) -> list[int]:
    """Rows per partition, in the order of ``get_healpix_pixels()`` (1 each if unknown)."""
    pixels = catalog.get_healpix_pixels()
    try:
        frame = catalog.partition_info.as_dataframe()
        counts = dict(zip(zip(frame["Norder"], frame["Npix"]), frame["num_rows"]))
        return [int(counts.get((p.order, p.pixel), 1)) for p in pixels]
    except Exception:  # noqa: BLE001 - a partition_info without row counts
        return [1] * len(pixels)
