"""The Photo-z Server's Training Set Maker parameters, mapped onto a :class:`~tsm_core.config.RunConfig`.

A client chooses science options only: the flux type, dereddening, magnitudes, the
crossmatch radius and neighbours, the duplicate rule and the output format. Everything
else of the run (the object catalog's location, margins, dust-map directory, output
directory, compute) is the server's: :func:`run_config` builds the config from the
whitelisted options alone, and refuses any other key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tsm_core import plugins
from tsm_core.types import ObjectCatalog

#: the parameters as the pipeline's ``system_config.param`` offers them (its defaults)
DEFAULT_PARAM: dict[str, Any] = {
    "crossmatch": {"radius_arcsec": 1.0, "n_neighbors": 1},
    "flux_type": "cModel",
    "dereddening": "none",
    "convert_flux_to_mag": True,
    "duplicate_criteria": "closest",
}
#: keys of ``used_config`` besides ``param``
PROCESS_KEYS = ("output_format",)
DEFAULT_OUTPUT_FORMAT = "parquet"
#: the Photo-z Server's duplicate rules -> ``unique_galaxies``
DUPLICATE_CRITERIA = {"closest": "closest", "best_redshift": "best_redshift", "none": "none"}

#: where a core config key's error is reported, in the Photo-z Server's field names
FIELD_OF_KEY = {
    "object_catalog.flux_type": "flux_type",
    "object_catalog.dereddening": "dereddening",
    "object_catalog.convert_to_magnitudes": "convert_flux_to_mag",
    "object_catalog.release": "release",
    "crossmatch.radius_arcsec": "crossmatch",
    "crossmatch.n_neighbors": "crossmatch",
    "unique_galaxies": "duplicate_criteria",
    "output.format": "output_format",
    "redshift_catalog": "inputs",
    "name": "display_name",
    "description": "description",
}


class ParamError(ValueError):
    """A bad parameter: ``body`` is the DRF-style error body naming it."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        super().__init__(json.dumps(body))


def _fail(field: str, message: str) -> ParamError:
    return ParamError({field: [message]})


def parse_used_config(raw: Any) -> dict[str, Any]:
    """``used_config`` as the client sends it: a JSON string or an object (or nothing)."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise _fail("used_config", "is not valid JSON") from None
    if not isinstance(raw, dict):
        raise _fail("used_config", f"must be an object, not {type(raw).__name__}")
    return raw


def _choice(field: str, value: Any, choices: list[str]) -> str:
    """``value`` matched case-insensitively against ``choices`` (the canonical spelling)."""
    if isinstance(value, str):
        for choice in choices:
            if choice.lower() == value.strip().lower():
                return choice
    raise _fail(field, f"unknown value {value!r}; valid: {', '.join(choices)}")


def _crossmatch(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail("crossmatch", "must be an object with radius_arcsec and n_neighbors")
    unknown = sorted(set(value) - {"radius_arcsec", "n_neighbors"})
    if unknown:
        raise ParamError({"crossmatch": {unknown[0]: ["unknown key; valid: radius_arcsec, n_neighbors"]}})
    out = dict(DEFAULT_PARAM["crossmatch"])
    radius = value.get("radius_arcsec", out["radius_arcsec"])
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0:
        raise ParamError({"crossmatch": {"radius_arcsec": [f"must be a number above 0, not {radius!r}"]}})
    neighbors = value.get("n_neighbors", out["n_neighbors"])
    if isinstance(neighbors, bool) or not isinstance(neighbors, int) or neighbors < 1:
        raise ParamError({"crossmatch": {"n_neighbors": [f"must be a whole number of at least 1, not {neighbors!r}"]}})
    return {"radius_arcsec": float(radius), "n_neighbors": int(neighbors)}


def dereddener_name(value: Any, release: ObjectCatalog) -> str:
    """The dereddener for the Photo-z Server's ``dereddening``: ``sfd`` is the release's own
    E(B-V) column where it has one (DP1's ``ebv`` is raw SFD), else the SFD map."""
    if value is None:
        return "none"
    name = _choice("dereddening", value, list(plugins.dereddeners()))
    if name == "sfd" and release.ebv_column and "catalog" in plugins.dereddeners():
        return "catalog"
    return name


def run_config(name: str, description: str, release: ObjectCatalog, catalog_id: int,
               used_config: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """The run config of a Training Set Maker process, from the science options only.

    Raises :class:`ParamError` naming the field of an unknown key or value.
    """
    unknown = sorted(set(used_config) - {"param", *PROCESS_KEYS})
    if unknown:
        raise _fail(unknown[0], f"unknown key; valid: param, {', '.join(PROCESS_KEYS)}")
    param = used_config.get("param") or {}
    if not isinstance(param, dict):
        raise _fail("param", "must be an object")
    unknown = sorted(set(param) - set(DEFAULT_PARAM))
    if unknown:
        raise _fail(unknown[0], f"unknown parameter; valid: {', '.join(DEFAULT_PARAM)}")
    param = {**DEFAULT_PARAM, **param}
    flux = _choice("flux_type", param["flux_type"], list(plugins.flux_types(release)))
    to_mag = param["convert_flux_to_mag"]
    if not isinstance(to_mag, bool):
        raise _fail("convert_flux_to_mag", f"must be true or false, not {to_mag!r}")
    duplicates = param["duplicate_criteria"]
    unique = DUPLICATE_CRITERIA.get(_choice("duplicate_criteria", "none" if duplicates is None else duplicates,
                                            list(DUPLICATE_CRITERIA)))
    output_format = _choice("output_format", used_config.get("output_format") or DEFAULT_OUTPUT_FORMAT,
                            list(plugins.writers()))
    return {
        "name": name,
        "description": description,
        "redshift_catalog": {"id": catalog_id},
        "object_catalog": {
            "release": release.name,
            "flux_type": flux,
            "dereddening": dereddener_name(param["dereddening"], release),
            "convert_to_magnitudes": to_mag,
        },
        "crossmatch": _crossmatch(param["crossmatch"]),
        "unique_galaxies": unique,
        "output": {"format": output_format, "directory": str(output_dir)},
    }
