"""Training Set Maker: photo-z training sets from spectroscopic redshifts x Rubin Objects.

The public API::

    import tsm_core
    result = tsm_core.run("my_training_set.yaml")
    result.output_path, result.n_rows, result.product_id
    frame = tsm_core.read(result.product_id)   # the training set as a DataFrame

Plugins implement the hooks of :mod:`tsm_core.plugins.hookspecs` with ``@tsm_core.hookimpl``;
everything a plugin author needs is importable from here: the records the hooks return, the
run's ``OutputConfig`` (what a writer is given) and ``release_hooks`` (both hooks of a
Rubin-shaped release from its ``ObjectCatalog`` and flux families).
"""

from typing import Any

from tsm_core.catalogs.rubin import release_hooks
from tsm_core.config import OutputConfig, RunConfig, load_config
from tsm_core.errors import TSMError
from tsm_core.plugins.manager import get_plugin_manager, hookimpl
from tsm_core.plugins.records import (
    CatalogLocation,
    CollectionLayout,
    ColumnInfo,
    Dereddener,
    FluxType,
    Location,
    ObjectCatalog,
    OutputMetadata,
    RedshiftConvention,
    SampleSpec,
    SkyField,
    Writer,
)

__all__ = [
    "CatalogLocation",
    "CollectionLayout",
    "ColumnInfo",
    "Dereddener",
    "FluxType",
    "Location",
    "ObjectCatalog",
    "OutputConfig",
    "OutputMetadata",
    "RedshiftConvention",
    "RunConfig",
    "RunResult",
    "SampleSpec",
    "SkyField",
    "TSMError",
    "Writer",
    "execute",
    "get_plugin_manager",
    "hookimpl",
    "load_config",
    "prepare",
    "read",
    "release_hooks",
    "report",
    "report_data",
    "report_html",
    "rerun",
    "run",
]

_PIPELINE = ("RunResult", "execute", "prepare", "rerun", "run")
_REPORT = ("report", "report_data", "report_html")


def __getattr__(name: str) -> Any:
    # the run and its heavy imports (pandas, pyarrow, LSDB) load on first use, so that
    # `tsm --help`, `tsm formats` and plugins importing tsm_core stay quick
    if name in _PIPELINE:
        from tsm_core.pipeline import main as pipeline

        return getattr(pipeline, name)
    if name in _REPORT:
        from tsm_core import reports

        return getattr(reports, name)
    if name == "read":
        from tsm_core.products.reading import read

        return read
    raise AttributeError(f"module 'tsm_core' has no attribute {name!r}")
