"""What a run records about itself: the provenance stored in the file and the registry
(config, release, versions, times), and what the run found (counts, the funnel's last
steps, the sky, the file names)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tsm_core import plugins
from tsm_core.pipeline.funnel import record_match, sky_summary
from tsm_core.science.photometry import ZROW_COLUMN

if TYPE_CHECKING:
    from tsm_core.pipeline.plan import Plan
    from tsm_core.pipeline.select import Selection
    from tsm_core.pipeline.write import Written
    from tsm_core.plugins.records import ObjectCatalog
    from tsm_core.science.representativeness import Weigher

log = logging.getLogger(__name__)


def now() -> str:
    """The current time as the provenance writes it (UTC, to the second)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions of the core, its main dependencies and every installed plugin."""
    found = {}
    for dist in ("tsm-core", "lsdb", "hats", "nested-pandas", "pyarrow", "pandas", "dask", "dustmaps"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found | plugins.plugin_versions()


def provenance(plan: Plan, product_id: int, started: str) -> dict[str, Any]:
    """What the run is made of, known before it starts (redacted by ``plan.redact``)."""
    cfg, release = plan.config, plan.release
    prov: dict[str, Any] = {
        "product_id": product_id,
        "name": cfg.name,
        "description": cfg.description,
        "config": cfg.model_dump(mode="json"),
        "release": release.name,
        "object_catalog_path": plan.object_path,
        "object_catalog_source": plan.location.source if plan.location else "config",
        "synthetic_sample": bool(plan.location and plan.location.synthetic),
        "redshift_catalog": plan.redshift_source,
        "redshift_convention": plan.redshift_summary.get("convention"),
        "redshift_rows": plan.redshift_summary,
        "redshift_catalogs": plan.redshifts.sources(),
        "object_extra_columns": list(plan.photometry.extra_columns),
        "flux_type": plan.photometry.flux_type,
        "flux_unit": release.flux_unit,
        "zero_point": release.zero_point,
        "dereddening": plan.photometry.ebv_description,
        "versions": versions(),
        "started_at": started,
    }
    if plan.photometry.ebv is not None:
        prov["extinction_coefficients"] = plan.photometry.coefficients
        prov["extinction_source"] = _extinction_source(
            release, cfg.object_catalog.extinction_coefficients, plan.photometry.bands
        )
    if plan.rail is not None:
        prov["rail_layout"] = plan.rail.provenance()
    return plan.redact(prov) if plan.redact else prov


def _extinction_source(release: ObjectCatalog, overrides: dict[str, float] | None, bands: tuple[str, ...]) -> str:
    """Where the A_b/E(B-V) coefficients came from, saying which bands the config overrode."""
    mine = [b for b in bands if b in (overrides or {})]
    if not mine:
        return release.extinction_source
    if len(mine) == len(bands):
        return f"object_catalog.extinction_coefficients (user-supplied for {', '.join(mine)})"
    others = [b for b in bands if b not in mine]
    return (
        f"object_catalog.extinction_coefficients (user-supplied) for {', '.join(mine)}; "
        f"{', '.join(others)}: {release.extinction_source}"
    )


def run_provenance(
    plan: Plan, selection: Selection, out: Written, weigher: Weigher | None, finals: dict[str | None, Path]
) -> dict[str, Any]:
    """What the run found, for the provenance: counts, the funnel, the sky, the file names."""
    cfg = plan.config
    written_rows = out.all_zrows()
    matched = written_rows if selection.matched_zrows is None else selection.matched_zrows
    counts: dict[str, Any] = {
        "redshifts": len(plan.redshifts),
        "matched": len(matched),
        "rows": out.n_rows,
        "removed": selection.removed,
    }
    if cfg.split:
        counts["training"] = int(selection.training.sum()) if selection.training is not None else 0
        counts["validation"] = out.n_rows - counts["training"]
        if selection.fold is not None:
            counts["folds"] = np.bincount(selection.fold, minlength=cfg.split.k or 0).tolist()
    sky = _finish_funnel(
        plan, matched, selection.removed, written_rows, out.all_sides() if cfg.split else None, weigher
    )
    prov: dict[str, Any] = {
        "finished_at": now(),
        "counts": counts,
        "funnel": plan.funnel.to_dict(),
        "sky": sky,
        "output_file": finals[None].name if None in finals else finals["training"].name,
    }
    if None not in finals:
        prov["output_files"] = {side: path.name for side, path in finals.items()}
    if weigher:
        prov["representativeness"] = weigher.summary
    return prov


def _partition_rows(base_dir: Any, pixels: list[Any]) -> list[int] | None:
    """Rows of each partition before any cut, from the row groups named in the
    ``dataset/_metadata`` footer of the catalog at ``base_dir`` (None where unreadable); read
    apart from the run's filtered catalog, whose statistics HATS rightly calls modified.
    (HATS's ``per_partition_statistics`` reads every column's statistics into a nested frame:
    4 s of a 7 s small run in a warm server.) ``base_dir`` is the folder of the catalog the
    run opened, so the catalog is not opened again for it."""
    import re

    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(Path(str(base_dir)) / "dataset" / "_metadata")
        counts: dict[tuple[int, int], int] = {}
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            found = re.search(r"Norder=(\d+)/Dir=\d+/Npix=(\d+)", group.column(0).file_path)
            if found:
                key = (int(found[1]), int(found[2]))
                counts[key] = counts.get(key, 0) + group.num_rows
        return [counts[(p.order, p.pixel)] for p in pixels]
    except Exception as exc:  # noqa: BLE001 - optional metadata: the funnel says it is unknown
        log.info("no per-partition row counts for %s: %s", base_dir, exc)
        return None


def _finish_funnel(
    plan: Plan,
    matched: np.ndarray,
    removed: dict[str, int],
    written: np.ndarray,
    training: np.ndarray | None,
    weigher: Weigher | None,
) -> dict[str, Any]:
    """The funnel's steps after the redshift filters and the object cuts where they were
    counted; returns the sky summary (partitions, local object density) for the provenance."""
    pixels = plan.objects.get_healpix_pixels()
    cfg = plan.config
    idx = plan.redshift_partitions
    record_match(
        plan.funnel,
        plan.redshifts.keys,
        ZROW_COLUMN,
        idx >= 0,
        matched,
        removed,
        written,
        training,
        cfg.crossmatch.radius_arcsec,
        cfg.crossmatch.n_neighbors,
    )
    rows = _partition_rows(plan.objects.hc_structure.catalog_base_dir, pixels)
    kept = 1.0
    if weigher is not None:
        plan.funnel.count(
            "objects",
            "objects in the object catalog",
            weigher.n_objects,
            "counted in the representativeness pass over every partition",
        )
        for name, n in weigher.cut_counts.items():
            plan.funnel.count(f"object_cut:{name}", f"objects removed by {name}", n)
        kept = weigher.n_objects_after_cuts / weigher.n_objects if weigher.n_objects else 1.0
    else:
        plan.funnel.not_counted(
            "object_cuts",
            "objects removed by object filters and release cuts",
            "the crossmatch reads only partitions with redshifts and pushed cuts never load "
            "removed rows; set representativeness to count them",
        )
    return sky_summary(pixels, rows, idx, kept)
