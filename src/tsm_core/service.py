"""The service layer shared by the ``tsm`` command, the JSON API and the Photo-z Server API.

Listings of what is installed (plain records, no server path), and the submission of a
training set on behalf of a user: planned, checked and registered as a queued product
that the caller then runs. What a client of a shared service may set and see (the
operator's keys, the redaction of provenance) is the service's own concern
(``tsm_web.trust``), passed in as a function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsm_core import plugins
from tsm_core.config import tsm_home

if TYPE_CHECKING:
    from tsm_core.pipeline.plan import Plan, Redact
    from tsm_core.products.registry import Registry


# -- listings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FluxTypeInfo:
    name: str
    description: str
    default: bool


@dataclass(frozen=True)
class ReleaseInfo:
    """An installed release as a client sees it (no server path).

    ``backed_by`` says what a run on it reads: ``catalog`` (a real object catalog),
    ``synthetic sample``, or ``nothing`` (no catalog found: a run fails saying where it looked).
    """

    name: str
    description: str
    has_ebv_column: bool
    flux_types: list[FluxTypeInfo]
    backed_by: str = "nothing"
    #: the release's named quality-cut sets (``filters.preset``)
    presets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DereddenerInfo:
    name: str
    description: str
    files_present: bool
    #: the missing files, relative to the dust-map folder
    missing_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FormatInfo:
    name: str
    extension: str
    description: str


def flux_type_listing(release: str) -> list[FluxTypeInfo]:
    """The flux types of ``release`` (an unknown release fails listing the installed ones)."""
    catalog = plugins.object_catalog(release)
    return [FluxTypeInfo(f.name, f.description, f.default) for f in plugins.flux_types(catalog).values()]


def release_listing(release_paths: Mapping[str, str] | None = None) -> list[ReleaseInfo]:
    """Every installed release with its flux types and what backs it (``release_paths``:
    the operator's catalogs, which take the place of the releases' own resolution)."""
    from tsm_core.plugins.records import SAMPLE_PATH

    home = tsm_home()
    out = []
    for c in plugins.object_catalogs().values():
        given = (release_paths or {}).get(c.name)
        if given:
            located = c.locate(given, home) if given == SAMPLE_PATH else None
            backed = "synthetic sample" if located and located.synthetic else "catalog"
        else:
            found = c.available(home)
            backed = "nothing" if found is None else "synthetic sample" if found.synthetic else "catalog"
        out.append(
            ReleaseInfo(
                c.name, c.description, bool(c.ebv_column), flux_type_listing(c.name), backed, sorted(c.cut_sets)
            )
        )
    return out


def dereddener_listing(maps_dir: Path | None = None) -> list[DereddenerInfo]:
    """Every installed dereddener and whether its map files are in ``maps_dir``."""
    from tsm_core.science.dust import resolve_maps_dir

    out = []
    for d in plugins.dereddeners().values():
        missing = d.missing_files(maps_dir)
        root = maps_dir or (resolve_maps_dir() if missing else None)
        shown = [str(p.relative_to(root)) if root and p.is_relative_to(root) else p.name for p in missing]
        out.append(DereddenerInfo(d.name, d.description, not missing, shown))
    return out


@dataclass(frozen=True)
class ConventionInfo:
    name: str
    description: str


def convention_listing() -> list[ConventionInfo]:
    """Every installed redshift-catalog convention (``redshift_catalog.convention``)."""
    return [ConventionInfo(c.name, c.description) for c in plugins.redshift_conventions().values()]


def format_listing() -> list[FormatInfo]:
    """Every installed output format."""
    return [FormatInfo(w.name, w.extension, w.description) for w in plugins.writers().values()]


# -- submission --------------------------------------------------------------------------------


def submit(
    config: Mapping[str, Any],
    *,
    owner: str | None = None,
    max_active: int | None = None,
    redact: Redact | None = None,
    registry: Registry | None = None,
) -> tuple[Plan, int]:
    """Plan a run config on behalf of ``owner`` and register it as a new, queued product.

    Everything that can be checked before data is read is checked here (so a bad
    request fails with its key before anything is registered); the caller runs the
    returned plan with :func:`tsm_core.pipeline.main.execute` and the product ID. ``owner`` is
    the user the product belongs to (none: the operator's); a user builds only from their
    own registered catalogs and the operator's (another user's fails as an unknown one),
    and may have at most ``max_active`` products queued or running
    (:class:`~tsm_core.errors.TooManyRuns`). ``redact`` rewrites the run's provenance
    before it is stored (a shared service passes the function that hides its locations:
    ``tsm_web.trust``, which also bounds what a client may set). ``registry``: the caller's
    own (a server's, opened once), else the one of ``$TSM_HOME``.
    """
    from tsm_core.pipeline.main import prepare
    from tsm_core.products.registry import Registry

    registry = registry or Registry.at_home(tsm_home())
    if max_active is not None:  # before planning, which reads the redshift catalogs
        registry.check_active(owner, max_active)
    config = dict(config)
    if owner is not None:
        config["redshift_catalog"] = _visible_catalog(registry, config.get("redshift_catalog"), owner)
    plan = replace(prepare(config), redact=redact)
    cfg = plan.config
    product_id = registry.create_product(
        cfg.name, cfg.description, cfg.model_dump(mode="json"), status="queued", owner=owner, max_active=max_active
    )
    return plan, product_id


def _visible_catalog(registry: Any, source: Any, owner: str) -> Any:
    """``redshift_catalog`` of a user's config with its registered catalog (by name or id)
    resolved as that user sees it, to an id, so that the run reads exactly that one; in a
    list of catalogs, every one of them."""
    if isinstance(source, list):
        return [_visible_catalog(registry, one, owner) for one in source]
    if not isinstance(source, Mapping) or source.get("path") is not None:
        return source  # a path is refused by client_config; anything else fails in the config check
    given = [source[k] for k in ("id", "name") if source.get(k) not in (None, "")]
    if len(given) != 1:
        return source  # none or both: the config check names the problem
    key = given[0]
    # anything but a plain int or str (a float, a bool) is looked up as text: never someone else's id
    record = registry.redshift_catalog(key if type(key) in (int, str) else str(key), visible_to=owner)
    return {k: v for k, v in source.items() if k not in ("name", "id")} | {"id": record.id}
