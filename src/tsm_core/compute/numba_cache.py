"""An on-disk cache for the numba-compiled functions of HATS.

HATS compiles its pixel-tree alignment functions with ``@njit`` but without
``cache=True``, so every new process spends 6-10 s compiling them on its first
crossmatch, more than the matching itself takes on catalogs of a few million rows.
:func:`enable` turns numba's own on-disk caching on for those dispatchers
(``Dispatcher.enable_caching``), storing the machine code under
``$TSM_HOME/numba-cache``; numba invalidates an entry when the HATS source changes.
Set ``TSM_NUMBA_CACHE=0`` to leave HATS as it is, ``TSM_NUMBA_CACHE_DIR`` to keep the
cache elsewhere. Caching is switched on once per process, on the first crossmatch.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: modules whose ``@njit`` functions the crossmatch calls
NUMBA_MODULES = ("hats.pixel_tree.pixel_alignment", "hats.pixel_tree.moc_filter")


CACHE_DIR_ENV = "TSM_NUMBA_CACHE_DIR"


def cache_dir(home: Path) -> Path:
    """``$TSM_NUMBA_CACHE_DIR``, else ``home/numba-cache``."""
    return Path(os.environ[CACHE_DIR_ENV]) if os.environ.get(CACHE_DIR_ENV) else home / "numba-cache"


@functools.cache
def enable(cache_dir: Path) -> int:
    """Cache the compiled functions of :data:`NUMBA_MODULES` in ``cache_dir`` (the first
    call of a process decides; later calls return its count).

    Returns how many dispatchers were switched to caching (0 when disabled).
    """
    if os.environ.get("TSM_NUMBA_CACHE", "1") == "0" or enable.cache_info().currsize:
        return 0
    import numba
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    cache_dir.mkdir(parents=True, exist_ok=True)
    # numba's cache locator consults config.CACHE_DIR when the cache is created
    numba.config.CACHE_DIR = str(cache_dir)  # type: ignore[attr-defined]  # set from the environment at import
    switched = 0
    for name in NUMBA_MODULES:
        for obj in vars(importlib.import_module(name)).values():
            if isinstance(obj, Dispatcher) and isinstance(getattr(obj, "_cache", None), NullCache):
                obj.enable_caching()
                switched += 1
    log.debug("numba cache in %s for %d HATS functions", cache_dir, switched)
    return switched
