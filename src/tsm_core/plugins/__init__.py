"""The plugin system: hook specifications (:mod:`~tsm_core.plugins.hookspecs`), the records
plugins return (:mod:`~tsm_core.plugins.records`) and the manager that finds them
(:mod:`~tsm_core.plugins.manager`); the look-ups by name are re-exported here, so that
``from tsm_core import plugins; plugins.writer("csv")`` reads as it says."""

from tsm_core.errors import PluginClashError
from tsm_core.plugins.manager import (
    PluginInfo,
    PluginLoadFailure,
    check_plugin,
    default_flux_type,
    dereddener,
    dereddeners,
    distribution_of,
    flux_type,
    flux_types,
    get_plugin_manager,
    hook_names,
    hookimpl,
    load_failures,
    object_catalog,
    object_catalogs,
    plugin_report,
    plugin_versions,
    redshift_convention,
    redshift_conventions,
    writer,
    writers,
)

__all__ = [
    "PluginClashError",
    "PluginInfo",
    "PluginLoadFailure",
    "check_plugin",
    "default_flux_type",
    "dereddener",
    "dereddeners",
    "distribution_of",
    "flux_type",
    "flux_types",
    "get_plugin_manager",
    "hook_names",
    "hookimpl",
    "load_failures",
    "object_catalog",
    "object_catalogs",
    "plugin_report",
    "plugin_versions",
    "redshift_convention",
    "redshift_conventions",
    "writer",
    "writers",
]
