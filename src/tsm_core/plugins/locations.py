"""Where a release's HATS collection lives: published locations, the one a run uses, the layout
of a collection, and the synthetic sample's markers.

:meth:`tsm_core.plugins.records.ObjectCatalog.locate` decides among them; this module
holds the data and the small path helpers it uses (``$TSM_LOCATIONS_ROOT``, existence of
a local path or URL, the sample marker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: the HATS object catalog inside a sample directory (see :mod:`tsm_core.catalogs.rubin.sample`)
SAMPLE_OBJECTS_DIR = "objects"
#: the file that marks a HATS collection as a synthetic sample (written by :mod:`tsm_core.catalogs.rubin.sample`)
SAMPLE_MARKER = "tsm_sample.json"
#: ``object_catalog.path`` value that asks for the release's synthetic sample
SAMPLE_PATH = "sample"
#: environment variable: a folder under which the releases' default and known locations
#: are looked up (``/rubin/lsdb_data/...`` becomes ``$TSM_LOCATIONS_ROOT/rubin/lsdb_data/...``):
#: for tests, or for a local mirror of a site's tree
LOCATIONS_ROOT_ENV = "TSM_LOCATIONS_ROOT"

LocationSource = Literal["config", "env", "default", "known", "sample"]


@dataclass(frozen=True)
class Location:
    """A place where a release's HATS collection is published (``site`` says where)."""

    path: str
    site: str = ""


@dataclass(frozen=True)
class CatalogLocation:
    """Where the object catalog of a run comes from (see :meth:`ObjectCatalog.locate`).

    ``source`` is ``config`` (``object_catalog.path``), ``env`` (the release's environment
    variable), ``default`` or ``known`` (a published location that exists), or ``sample``
    (the synthetic sample, only when asked for); ``synthetic`` is true for any synthetic
    sample, also one given by path; ``tried`` lists the published locations looked at.
    """

    path: str
    source: LocationSource
    synthetic: bool = False
    tried: tuple[str, ...] = ()
    site: str = ""


@dataclass(frozen=True)
class CollectionLayout:
    """How a release publishes its Object table: an LSDB/HATS collection of a main catalog
    ``primary``, its margin ``margin`` (``margin_arcsec`` wide) and an ``index`` on
    ``index_column`` (DP1 and DP2: ``object_lc``, ``object_lc_5arcs``, ``object_lc_objectId``)."""

    primary: str = "object_lc"
    margin: str = "object_lc_5arcs"
    margin_arcsec: float = 5.0
    index: str | None = "object_lc_objectId"
    index_column: str = "objectId"


def under_root(path: str) -> str:
    """``path`` under ``$TSM_LOCATIONS_ROOT`` when that is set (URLs are left alone)."""
    root = os.environ.get(LOCATIONS_ROOT_ENV)
    if not root or "://" in path:
        return path
    return str(Path(root) / path.lstrip("/"))


def location_exists(path: str) -> bool:
    """Whether a local ``path`` exists; a URL is taken to (it is checked when opened)."""
    return "://" in path or Path(path).exists()


def is_synthetic_sample(path: str) -> bool:
    """Whether the local catalog at ``path`` is a synthetic sample written by TSM."""
    return "://" not in path and (Path(path) / SAMPLE_MARKER).is_file()
