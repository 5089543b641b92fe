"""The plugin manager: built-in plugins plus every entry point of the group ``tsm``.

Look-ups by name fail with :class:`~tsm_core.errors.UnknownChoiceError`, which lists
the installed choices. Built-in plugins are registered exactly as external ones are.
Tests register a throw-away plugin with ``get_plugin_manager().register(obj, name=...)``
and remove it with ``unregister(name=...)``.
"""

from __future__ import annotations

import functools
import importlib
from importlib import metadata
from typing import TypeVar

import pluggy

from tsm_core import hookspecs
from tsm_core.errors import ConfigError, UnknownChoiceError
from tsm_core.types import Dereddener, FluxType, ObjectCatalog, Writer

hookimpl = pluggy.HookimplMarker("tsm")

ENTRY_POINT_GROUP = "tsm"
BUILTIN_PLUGINS: tuple[str, ...] = ("tsm_core.dust",)

R = TypeVar("R")


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (created on first use)."""
    pm = pluggy.PluginManager("tsm")
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def _collect(hook: pluggy.HookCaller, kind: str, **kwargs: object) -> dict[str, R]:
    """Call ``hook`` on every plugin and index the records by name, refusing clashes."""
    pm = get_plugin_manager()
    found: dict[str, R] = {}
    owner: dict[str, str] = {}
    # Reverse so that records come in registration order (pluggy calls LIFO).
    for impl in reversed(hook.get_hookimpls()):
        plugin = pm.get_name(impl.plugin) or impl.plugin_name
        for record in impl.function(**kwargs) or ():
            if record.name in found:
                raise ConfigError(
                    "", f"{kind} {record.name!r} is provided twice: by plugin {owner[record.name]!r} "
                    f"and by plugin {plugin!r}; uninstall one of them"
                )
            found[record.name] = record
            owner[record.name] = plugin
    return found


def _lookup(records: dict[str, R], key: str, kind: str, name: str) -> R:
    """The record called ``name``; the case does not matter (``DP1``, ``FITS``, ``cmodel``)
    as long as it picks one record; else an error listing the choices (with the closest)."""
    if name in records:
        return records[name]
    folded = [r for n, r in records.items() if n.casefold() == str(name).casefold()]
    if len(folded) == 1:
        return folded[0]
    raise UnknownChoiceError(key, kind, name, records)


def object_catalogs() -> dict[str, ObjectCatalog]:
    """Every installed release, by name."""
    return _collect(get_plugin_manager().hook.tsm_object_catalogs, "object catalog")


def object_catalog(name: str) -> ObjectCatalog:
    """The release called ``name``."""
    return _lookup(object_catalogs(), "object_catalog.release", "object catalog", name)


def flux_types(catalog: ObjectCatalog) -> dict[str, FluxType]:
    """The flux types offered for ``catalog``, by name."""
    return _collect(get_plugin_manager().hook.tsm_flux_types, "flux type", catalog=catalog)


def default_flux_type(catalog: ObjectCatalog) -> FluxType:
    """The flux type marked default for ``catalog`` (else the first one offered)."""
    offered = list(flux_types(catalog).values())
    if not offered:
        raise ConfigError("object_catalog.flux_type", f"no flux type is offered for {catalog.name!r}")
    return next((f for f in offered if f.default), offered[0])


def flux_type(catalog: ObjectCatalog, name: str | None) -> FluxType:
    """The flux type ``name`` of ``catalog``; ``None`` gives the release's default."""
    if name is None:
        return default_flux_type(catalog)
    return _lookup(flux_types(catalog), "object_catalog.flux_type", f"flux type for {catalog.name}", name)


def dereddeners() -> dict[str, Dereddener]:
    """Every installed dereddener, by name."""
    return _collect(get_plugin_manager().hook.tsm_dereddeners, "dereddener")


def dereddener(name: str) -> Dereddener:
    """The dereddener called ``name``."""
    return _lookup(dereddeners(), "object_catalog.dereddening", "dereddener", name)


def writers() -> dict[str, Writer]:
    """Every installed output writer, by format name."""
    return _collect(get_plugin_manager().hook.tsm_writers, "output format")


def writer(name: str) -> Writer:
    """The writer of format ``name``."""
    return _lookup(writers(), "output.format", "output format", name)


def plugin_versions() -> dict[str, str]:
    """Distribution name -> version of every installed plugin (for provenance)."""
    versions: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        if dist is not None:
            versions[dist.name] = dist.version
    return versions

