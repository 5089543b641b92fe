"""The trust boundary of a shared service: what a client may set and see.

A client chooses a release by name and sets science options; every location on the
server's disk or network and every compute resource is the operator's
(:class:`OperatorSettings`). :func:`client_config` refuses a request that sets one of the
operator's keys (:data:`SERVER_KEYS`) and fills them in; :func:`public_config` and
:func:`redact_provenance` take them out of what a client reads back; :func:`submit` is the
core's submission (:func:`tsm_core.service.submit`) within these bounds.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tsm_core import service
from tsm_core.config import tsm_home
from tsm_core.errors import ConfigError

if TYPE_CHECKING:
    from tsm_core.pipeline.plan import Plan
    from tsm_core.products.registry import Registry

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
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, list):  # a list of sections (several redshift catalogs): in any of them
            return any(_present(item, ".".join(parts[i:])) for item in node if isinstance(item, Mapping))
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
    out["compute"] = {
        "scheduler": operator.scheduler,
        "n_workers": operator.n_workers,
        "memory_limit": operator.memory_limit,
    }
    return out


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without the operator's keys (what a client of a shared service may see)."""
    out = copy.deepcopy(dict(config))
    for key in SERVER_KEYS:
        *parents, last = key.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        for section in node if isinstance(node, list) else [node]:  # each of several redshift catalogs
            if isinstance(section, dict):
                section.pop(last, None)
    return out


def redact_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
    """A run's provenance as a client of a shared service downloads it: no server location
    (the config without the operator's keys, no object catalog path, the redshift catalog
    named by its registration)."""
    out = dict(provenance)
    source = out["config"].get("redshift_catalog") or {}
    out["config"] = public_config(out["config"])
    out.pop("object_catalog_path", None)
    sources = source if isinstance(source, list) else [source]
    out["redshift_catalog"] = ", ".join(_registered(one) for one in sources)
    if "redshift_catalogs" in out:  # each catalog by its name, not where it is stored
        out["redshift_catalogs"] = [
            entry | {"source": f"registered catalog {entry.get('catalog')!r}"} for entry in out["redshift_catalogs"]
        ]
    return out


def _registered(source: Mapping[str, Any]) -> str:
    """A registered catalog of a client's config, as the client may read it named."""
    name = source.get("name")
    return f"registered catalog {name!r}" if name else f"registered catalog {source.get('id')}"


def submit(
    data: Mapping[str, Any],
    operator: OperatorSettings,
    owner: str | None = None,
    max_active: int | None = None,
    registry: Registry | None = None,
) -> tuple[Plan, int]:
    """A client's config checked against the operator's bounds (:func:`client_config`),
    planned and registered as a new product whose provenance names no server location
    (:func:`redact_provenance`), in ``registry`` (the app's); see :func:`tsm_core.service.submit`."""
    config = client_config(data, operator)
    return service.submit(config, owner=owner, max_active=max_active, redact=redact_provenance, registry=registry)
