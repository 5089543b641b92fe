"""The service layer shared by the ``tsm`` command, the JSON API and the Photo-z Server API.

Listings of what is installed, and the submission of a training set on behalf of a
client whose reach is bounded by an operator (:class:`OperatorSettings`): the client
chooses a release by name and sets science options; every location on the server's
disk or network and every compute resource is the operator's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tsm_core import plugins
from tsm_core.config import tsm_home
from tsm_core.errors import ConfigError

if TYPE_CHECKING:
    from tsm_core.pipeline.main import Plan


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
        out.append(ReleaseInfo(c.name, c.description, bool(c.ebv_column), flux_type_listing(c.name), backed,
                               sorted(c.cut_sets)))
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


# -- the operator's bounds ------------------------------------------------------------------

#: config keys that name server-side locations or resources: a client may not set them
SERVER_KEYS: tuple[str, ...] = (
    "redshift_catalog.path",
    "object_catalog.path",
    "object_catalog.margin_path",
    "object_catalog.dust_maps_dir",
    "output.directory",
    "output.overwrite",
    "compute",
)


class OperatorSettings(BaseModel):
    """What the operator of a shared service fixes for every client's run.

    ``release_paths`` maps a release name to its object catalog (else the release's own
    resolution: its environment variable, default and known locations); the other
    fields are the dust-map folder, the output folder, and the Dask scheduler and worker
    count every run uses.
    """

    model_config = ConfigDict(extra="forbid")

    release_paths: dict[str, str] = Field(default_factory=dict)
    dust_maps_dir: str | None = None
    products_dir: str | None = None
    scheduler: str = "threads"
    n_workers: int | None = Field(None, ge=1, le=256)
    memory_limit: str | None = None

    def output_directory(self) -> Path:
        """Where the training sets of the service go (default ``$TSM_HOME/products``)."""
        return Path(self.products_dir).expanduser() if self.products_dir else tsm_home() / "products"


def _present(data: Mapping[str, Any], dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return node is not None


def client_config(data: Mapping[str, Any], operator: OperatorSettings) -> dict[str, Any]:
    """A client's run config with the operator's locations and compute filled in.

    Raises :class:`~tsm_core.errors.ConfigError` naming the first key that only the
    operator may set (whatever its value).
    """
    if not isinstance(data, Mapping):
        raise ConfigError("", "a training set is a JSON object of config keys")
    for key in SERVER_KEYS:
        if _present(data, key):
            raise ConfigError(key, "is fixed by the server's operator, not by a request; leave it out")
    out = copy.deepcopy(dict(data))
    objects = out.setdefault("object_catalog", {})
    if not isinstance(objects, dict):
        raise ConfigError("object_catalog", "must be an object of keys")
    release = objects.get("release") or "dp1"
    if isinstance(release, str) and release in operator.release_paths:
        objects["path"] = operator.release_paths[release]
    if operator.dust_maps_dir:
        objects["dust_maps_dir"] = operator.dust_maps_dir
    output = out.setdefault("output", {})
    if not isinstance(output, dict):
        raise ConfigError("output", "must be an object of keys")
    output["directory"] = str(operator.output_directory())
    out["compute"] = {"scheduler": operator.scheduler, "n_workers": operator.n_workers,
                      "memory_limit": operator.memory_limit}
    return out


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without the operator's keys (what a client of a shared service may see)."""
    out = copy.deepcopy(dict(config))
    for key in SERVER_KEYS:
        *parents, last = key.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


# -- submission --------------------------------------------------------------------------------


def submit(
    data: Mapping[str, Any], operator: OperatorSettings, owner: str | None = None, max_active: int | None = None
) -> tuple[Plan, int]:
    """Check a client's config, plan it and register it as a new product.

    Everything that can be checked before data is read is checked here (so a bad
    request fails with its key before anything is registered); the caller runs the
    returned plan with :func:`tsm_core.pipeline.main.execute` and the product ID. ``owner`` is
    the user the product belongs to (none: the operator's); a user builds only from their
    own registered catalogs and the operator's (another user's fails as an unknown one),
    and may have at most ``max_active`` products queued or running
    (:class:`~tsm_core.errors.TooManyRuns`).
    """
    from tsm_core.pipeline.main import prepare
    from tsm_core.products.registry import Registry

    registry = Registry.at_home(tsm_home())
    config = client_config(data, operator)
    if owner is not None:
        config["redshift_catalog"] = _visible_catalog(registry, config.get("redshift_catalog"), owner)
    plan = replace(prepare(config), served=True)
    cfg = plan.config
    product_id = registry.create_product(cfg.name, cfg.description, cfg.model_dump(mode="json"), status="queued",
                                         owner=owner, max_active=max_active)
    return plan, product_id


def _visible_catalog(registry: Any, source: Any, owner: str) -> Any:
    """``redshift_catalog`` of a user's config with its registered catalog (by name or id)
    resolved as that user sees it, to an id, so that the run reads exactly that one."""
    if not isinstance(source, Mapping) or source.get("path") is not None:
        return source  # a path is refused by client_config; anything else fails in the config check
    given = [source[k] for k in ("id", "name") if source.get(k) not in (None, "")]
    if len(given) != 1:
        return source  # none or both: the config check names the problem
    key = given[0]
    # anything but a plain int or str (a float, a bool) is looked up as text: never someone else's id
    record = registry.redshift_catalog(key if type(key) in (int, str) else str(key), visible_to=owner)
    return {k: v for k, v in source.items() if k not in ("name", "id")} | {"id": record.id}
