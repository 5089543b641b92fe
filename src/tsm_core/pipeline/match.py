"""The match stage: the redshifts crossmatched with the object catalog, and the
photometry of each matched partition, as lazy per-partition tasks."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import dask
import pandas as pd

from tsm_core.compute import numba_cache
from tsm_core.config import tsm_home

if TYPE_CHECKING:
    from tsm_core.pipeline.plan import Plan
    from tsm_core.science.photometry import Photometry

log = logging.getLogger(__name__)


def match(plan: Plan) -> tuple[list[Any], pd.DataFrame]:
    """The matched rows, lazily: the crossmatch of the redshifts (left) with the objects
    (right, :class:`~tsm_core.science.crossmatch.AmbiguityCrossmatch`: the k nearest and
    the ambiguity of each match) and the photometry of each matched partition, one Dask task
    after each crossmatch task (not LSDB's ``map_partitions``, which turns every result into a
    nested frame and checks it against the columns it expects, once more per partition). Returns
    one delayed task per partition and the empty frame that describes the rows (the
    photometry of the crossmatch's own empty frame)."""
    from tsm_core.science.crossmatch import AmbiguityCrossmatch  # imports LSDB, which a run needs anyway

    numba_cache.enable(numba_cache.cache_dir(tsm_home()))
    cfg, release, objects = plan.config, plan.release, plan.objects
    if not (
        plan.redshift_partitions >= 0
    ).any():  # from the partitions' pixels: LSDB would refuse catalogs that do not overlap
        if len(plan.redshifts):
            log.warning("no redshift lies in the %s object catalog's partitions: no matches", release.name)
        else:
            log.warning("no redshifts left to match")
        meta = pd.concat([plan.redshifts.meta(), objects.meta, AmbiguityCrossmatch.extra_columns], axis=1)
        return [], plan.photometry(meta)
    algorithm = AmbiguityCrossmatch(n_neighbors=cfg.crossmatch.n_neighbors, radius_arcsec=cfg.crossmatch.radius_arcsec)
    xmatch = plan.redshifts.catalog(align_to=objects.get_healpix_pixels()).crossmatch(
        objects,
        algorithm=algorithm,
        require_right_margin=True,
        suffixes=("", "_object"),
        suffix_method="overlapping_columns",
    )
    meta = plan.photometry(pd.DataFrame(xmatch.meta))
    # the step is bound to the photometry (an argument would be walked by Dask in each call);
    # a key of its own, without hashing
    step = dask.delayed(functools.partial(_photometry, plan.photometry), pure=False)
    return [step(part) for part in xmatch.to_delayed()], meta


def _photometry(photometry: Photometry, frame: pd.DataFrame) -> pd.DataFrame:
    """The photometry of one crossmatched partition (LSDB's nested frame read as a plain one)."""
    return photometry(pd.DataFrame(frame))
