"""The Photo-z Server's Training Set Maker parameters, mapped onto a :class:`~tsm_core.config.RunConfig`.

A client chooses science options only: the flux type, dereddening, magnitudes, the
crossmatch radius and neighbours, the duplicate rule, the output format and (ours)
``unmatched``, the file of the redshifts the run lost. Everything
else of the run (the object catalog's location, margins, dust-map directory, output
directory, compute) is the server's: :class:`PzUsedConfig` refuses any other key, and
:func:`run_config` builds the config from the whitelisted options alone.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tsm_core import plugins
from tsm_core.plugins.records import ObjectCatalog

#: the parameters as the pipeline's ``system_config.param`` offers them (its defaults)
DEFAULT_PARAM: dict[str, Any] = {
    "crossmatch": {"radius_arcsec": 1.0, "n_neighbors": 1},
    "flux_type": "cModel",
    "dereddening": "none",
    "convert_flux_to_mag": True,
    "duplicate_criteria": "closest",
}
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
    "output.unmatched": "unmatched",
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PzCrossmatch(_Strict):
    """``param.crossmatch``: the match radius and the neighbours kept per redshift."""

    radius_arcsec: float = Field(DEFAULT_PARAM["crossmatch"]["radius_arcsec"], gt=0)
    n_neighbors: int = Field(DEFAULT_PARAM["crossmatch"]["n_neighbors"], ge=1)


class PzParam(_Strict):
    """``used_config.param``: the science options a client may choose (names checked per release later)."""

    crossmatch: PzCrossmatch = Field(default_factory=PzCrossmatch)
    flux_type: str = DEFAULT_PARAM["flux_type"]
    dereddening: str | None = DEFAULT_PARAM["dereddening"]
    convert_flux_to_mag: bool = DEFAULT_PARAM["convert_flux_to_mag"]
    duplicate_criteria: str | None = DEFAULT_PARAM["duplicate_criteria"]
    #: ours, not the Photo-z Server's: also write the redshifts the run lost (``output.unmatched``),
    #: downloaded in the product's archive
    unmatched: bool = False


class PzUsedConfig(_Strict):
    """A process's ``used_config``: ``param`` and the process-level ``output_format``."""

    param: PzParam = Field(default_factory=PzParam)
    output_format: str | None = None


def drf_errors(exc: ValidationError) -> dict[str, Any]:
    """Pydantic's errors as DRF's nested ``{"field": {"sub": ["message"]}}``, without the ``param`` level
    (the client's names: ``flux_type``, ``crossmatch``, ...)."""
    body: dict[str, Any] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if len(loc) > 1 and loc[0] == "param":
            loc = loc[1:]
        if err["type"] == "extra_forbidden":
            message = f"unknown key; valid: {', '.join(_fields_at(err['loc'][:-1]))}"
        elif err["type"] == "missing":
            message = "This field is required."
        else:
            message = f"{err['msg'].removeprefix('Value error, ')}, not {err['input']!r}"
        node = body
        for part in loc[:-1]:
            node = node.setdefault(part, {})
        node.setdefault(loc[-1] if loc else "used_config", []).append(message)
    return body


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = PzUsedConfig
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def parse_used_config(raw: Any) -> PzUsedConfig:
    """``used_config`` as the client sends it: a JSON string or an object (or nothing)."""
    if raw in (None, ""):
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            raise _fail("used_config", "is not valid JSON") from None
    if not isinstance(raw, dict):
        raise _fail("used_config", f"must be an object, not {type(raw).__name__}")
    try:
        return PzUsedConfig.model_validate(raw)
    except ValidationError as exc:
        raise ParamError(drf_errors(exc)) from None


def _choice(field: str, value: Any, choices: list[str]) -> str:
    """``value`` matched case-insensitively against ``choices`` (the canonical spelling)."""
    if isinstance(value, str):
        for choice in choices:
            if choice.lower() == value.strip().lower():
                return choice
    raise _fail(field, f"unknown value {value!r}; valid: {', '.join(choices)}")


def dereddener_name(value: Any, release: ObjectCatalog) -> str:
    """The dereddener for the Photo-z Server's ``dereddening``: ``sfd`` is the release's own
    E(B-V) column where it has one (DP1's ``ebv`` is raw SFD), else the SFD map."""
    if value is None:
        return "none"
    name = _choice("dereddening", value, list(plugins.dereddeners()))
    if name == "sfd" and release.ebv_column and "catalog" in plugins.dereddeners():
        return "catalog"
    return name


def run_config(
    name: str, description: str, release: ObjectCatalog, catalog_id: int, used_config: PzUsedConfig
) -> dict[str, Any]:
    """The run config of a Training Set Maker process, from the science options only (the
    operator's locations and compute are added by :func:`tsm_web.trust.submit`).

    Raises :class:`ParamError` naming the field of a value that is not among the choices.
    """
    param = used_config.param
    duplicates = "none" if param.duplicate_criteria is None else param.duplicate_criteria
    return {
        "name": name,
        "description": description,
        "redshift_catalog": {"id": catalog_id},
        "object_catalog": {
            "release": release.name,
            "flux_type": _choice("flux_type", param.flux_type, list(plugins.flux_types(release))),
            "dereddening": dereddener_name(param.dereddening, release),
            "convert_to_magnitudes": param.convert_flux_to_mag,
        },
        "crossmatch": param.crossmatch.model_dump(),
        "unique_galaxies": DUPLICATE_CRITERIA[_choice("duplicate_criteria", duplicates, list(DUPLICATE_CRITERIA))],
        "output": {
            "format": _choice(
                "output_format", used_config.output_format or DEFAULT_OUTPUT_FORMAT, list(plugins.writers())
            ),
            "unmatched": param.unmatched,
        },
    }
