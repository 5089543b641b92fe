"""The plugin manager: built-in plugins plus the entry points of the group ``tsm``.

Hooks are called through ``pm.hook`` (so pluggy's argument pruning, hook wrappers and
call tracing apply). Entry points are found with ``importlib.metadata.entry_points(group="tsm")``
and registered one by one with ``pm.register(module, name=...)``, the manager keeping each
plugin's distribution and version itself (pluggy's ``load_setuptools_entrypoints`` and
``list_plugin_distinfo`` are its legacy API). A plugin that fails to import,
or implements a hook that no spec declares (a misspelt ``tsm_writer``), is left out and
reported by :func:`plugin_report` (``tsm plugins``), never breaking the other plugins.
``$TSM_PLUGINS`` (a comma-separated list of entry-point names, or ``none``) chooses which
entry points load; unset, all do.

Look-ups by name fail with :class:`~tsm_core.errors.UnknownChoiceError`, which lists the
installed choices; two plugins that claim one name fail with :class:`~tsm_core.errors.PluginClashError`
naming both distributions. Tests register a throw-away plugin for one test with the
``registered_plugin`` fixture (``tests/conftest.py``).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Protocol, TypeVar

import pluggy

from tsm_core.errors import ConfigError, PluginClashError, TSMError, UnknownChoiceError
from tsm_core.plugins import hookspecs
from tsm_core.plugins.records import Dereddener, FluxType, ObjectCatalog, RedshiftConvention, Writer

hookimpl = pluggy.HookimplMarker("tsm")

ENTRY_POINT_GROUP = "tsm"
PLUGINS_ENV = "TSM_PLUGINS"
BUILTIN_PLUGINS: tuple[str, ...] = ("tsm_core.science.dust", "tsm_core.redshifts.conventions")
CORE_DISTRIBUTION = "tsm-core"


class Named(Protocol):
    """A record with a name (records are frozen dataclasses or classes with a ``name`` attribute)."""

    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=Named)


@dataclass(frozen=True)
class PluginLoadFailure:
    """An entry point that could not be used, and why."""

    name: str
    distribution: str
    version: str
    error: str


@dataclass(frozen=True)
class _Distributed:
    """A plugin loaded from an entry point, and the distribution that installed it."""

    plugin: object
    distribution: str
    version: str


@dataclass
class _Loaded:
    """The plugin manager of one process, the distribution of each entry point it registered
    (kept here, as ``llm`` does, rather than asked of pluggy), and the entry points it left out."""

    pm: pluggy.PluginManager
    distributions: list[_Distributed] = field(default_factory=list)
    failures: list[PluginLoadFailure] = field(default_factory=list)


def _selected(env_value: str | None) -> set[str] | None:
    if env_value is None:
        return None
    names = {n.strip() for n in env_value.split(",") if n.strip()}
    return set() if names <= {"none"} else names


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks that ``plugin`` implements but no spec declares."""
    return [
        impl.function.__name__
        for caller in (pm.get_hookcallers(plugin) or [])
        if caller.spec is None
        for impl in caller.get_hookimpls()
        if impl.plugin is plugin
    ]


def _load_entry_point(loaded: _Loaded, ep: metadata.EntryPoint) -> None:
    """Import the entry point ``ep`` and register it under its name, or record why not."""
    pm = loaded.pm
    if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
        return  # a second distribution with an entry point of the same name: the first one wins
    dist = ep.dist
    dist_name, version = (dist.name, dist.version) if dist is not None else ("?", "?")
    try:
        plugin = ep.load()
        pm.register(plugin, name=ep.name)
    except Exception as exc:  # noqa: BLE001 - any failure of a third party's import
        loaded.failures.append(PluginLoadFailure(ep.name, dist_name, version, f"{type(exc).__name__}: {exc}"))
        return
    unknown = _unknown_hooks(pm, plugin)
    if unknown:
        pm.unregister(name=ep.name)
        loaded.failures.append(
            PluginLoadFailure(
                ep.name,
                dist_name,
                version,
                f"implements {', '.join(unknown)}, which is no hook of tsm (hooks: {', '.join(hook_names())})",
            )
        )
        return
    loaded.distributions.append(_Distributed(plugin, dist_name, version))


@functools.cache
def _load(selection: str | None) -> _Loaded:
    pm = pluggy.PluginManager("tsm")
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    loaded = _Loaded(pm)
    wanted = _selected(selection)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is None or ep.name in wanted:
            _load_entry_point(loaded, ep)
    pm.check_pending()
    return loaded


def _current() -> _Loaded:
    return _load(os.environ.get(PLUGINS_ENV))


def get_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager of this process for the current ``$TSM_PLUGINS`` (created on first use)."""
    return _current().pm


def load_failures() -> list[PluginLoadFailure]:
    """Entry points that were left out, with the reason."""
    return list(_current().failures)


def hook_names() -> list[str]:
    """The hooks a plugin may implement."""
    return sorted(n for n in dir(hookspecs) if n.startswith("tsm_"))


def check_plugin(plugin: object, name: str) -> None:
    """Register ``plugin`` under ``name`` the way entry points are: refused (and not left
    registered) when it implements a hook that no spec declares."""
    pm = get_plugin_manager()
    pm.register(plugin, name=name)
    unknown = _unknown_hooks(pm, plugin)
    if unknown:
        pm.unregister(name=name)
        raise TSMError(
            f"plugin {name!r} implements {', '.join(unknown)}, which is no hook of tsm; "
            f"hooks: {', '.join(hook_names())}"
        )


def distribution_of(plugin: object) -> tuple[str, str]:
    """(distribution, version) of a registered plugin (``tsm-core`` for the built-ins)."""
    loaded = _current()
    for entry in loaded.distributions:
        if entry.plugin is plugin:
            return entry.distribution, entry.version
    name = loaded.pm.get_name(plugin) or ""
    if name in BUILTIN_PLUGINS:
        return CORE_DISTRIBUTION, _version(CORE_DISTRIBUTION)
    return f"(registered as {name!r})", ""


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def _collect(hook_name: str, kind: str, **kwargs: object) -> dict[str, R]:
    """Call the hook ``hook_name`` through pluggy and index the records by name.

    pluggy calls the most recently registered plugin first; records are returned in
    registration order. A name offered twice fails naming both distributions.
    """
    pm = get_plugin_manager()
    results: list[Iterable[R] | None] = getattr(pm.hook, hook_name)(**kwargs)
    found: dict[str, R] = {}
    for records in reversed(results):
        for record in records or ():
            if record.name in found:
                raise PluginClashError(
                    f"{kind} {record.name!r} is offered twice: by "
                    f"{' and by '.join(_owners(hook_name, record.name, kwargs))}; uninstall one"
                )
            found[record.name] = record
    return found


def _owners(hook_name: str, record_name: str, kwargs: dict[str, object]) -> list[str]:
    """The distributions whose plugins offer ``record_name`` through ``hook_name``."""
    pm = get_plugin_manager()
    owners = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        others = [p for p in pm.get_plugins() if p is not impl.plugin]
        only = pm.subset_hook_caller(hook_name, remove_plugins=others)
        if any(r.name == record_name for records in only(**kwargs) for r in records or ()):
            dist, version = distribution_of(impl.plugin)
            owners.append(f"{dist} {version}".strip() + f" (plugin {impl.plugin_name!r})")
    return owners


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
    return _collect("tsm_object_catalogs", "object catalog")


def object_catalog(name: str) -> ObjectCatalog:
    """The release called ``name``."""
    return _lookup(object_catalogs(), "object_catalog.release", "object catalog", name)


def flux_types(catalog: ObjectCatalog) -> dict[str, FluxType]:
    """The flux types offered for ``catalog``, by name."""
    return _collect("tsm_flux_types", "flux type", catalog=catalog)


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
    return _collect("tsm_dereddeners", "dereddener")


def dereddener(name: str) -> Dereddener:
    """The dereddener called ``name``."""
    return _lookup(dereddeners(), "object_catalog.dereddening", "dereddener", name)


def writers() -> dict[str, Writer]:
    """Every installed output writer, by format name."""
    return _collect("tsm_writers", "output format")


def writer(name: str) -> Writer:
    """The writer of format ``name``."""
    return _lookup(writers(), "output.format", "output format", name)


def redshift_conventions() -> dict[str, RedshiftConvention]:
    """Every installed redshift-catalog convention, by name."""
    return _collect("tsm_redshift_conventions", "redshift convention")


def redshift_convention(name: str) -> RedshiftConvention:
    """The redshift-catalog convention called ``name``."""
    return _lookup(redshift_conventions(), "redshift_catalog.convention", "redshift convention", name)


def plugin_versions() -> dict[str, str]:
    """Distribution name -> version of every plugin loaded from an entry point (for provenance)."""
    loaded = _current()
    return {e.distribution: e.version for e in loaded.distributions if loaded.pm.is_registered(e.plugin)}


@dataclass(frozen=True)
class PluginInfo:
    """One plugin as ``tsm plugins`` shows it."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    error: str | None = None


def plugin_report() -> list[PluginInfo]:
    """Every plugin: the loaded ones with their hooks, then those left out with the reason."""
    pm = get_plugin_manager()
    out = []
    for name, plugin in pm.list_name_plugin():
        hooks = tuple(sorted(c.name for c in pm.get_hookcallers(plugin) or []))
        out.append(PluginInfo(name, *distribution_of(plugin), hooks))
    out += [PluginInfo(f.name, f.distribution, f.version, (), f.error) for f in load_failures()]
    return out
