"""Rubin Data Preview 1: 2,299,757 Objects in seven LSSTComCam fields (2024 commissioning).

Object table facts: ``objectId`` column, ``coord_ra``/``coord_dec`` in deg, float32
fluxes in nJy (NaN where a band was not detected), ``ebv`` = E(B-V) of Schlegel,
Finkbeiner & Davis (1998) at the object position, no ``detect_isPrimary``.
"""

from __future__ import annotations

from tsm_core import FluxType, ObjectCatalog, SampleSpec, SkyField, hookimpl
from tsm_core.rubin import OBJECT_TABLE_FAMILIES, RAIL_MAG_LIMITS, flux_types

RELEASE = "dp1"

FLUX_FAMILIES = (*OBJECT_TABLE_FAMILIES, "sersic")

#: A_b / E(B-V) for LSST u g r i z y from rubin_sim ``DustValues().r_x``, as used in the
#: Rubin DP1 tutorial notebooks; they multiply raw SFD E(B-V) (the ``ebv`` column).
EXTINCTION = {"u": 4.75721, "g": 3.66056, "r": 2.701367, "i": 2.053659, "z": 1.59009, "y": 1.3077049}

#: the seven DP1 fields (centres from the DP1 documentation); radius of the sample patches
FIELDS = (
    SkyField("47 Tuc", 6.02, -72.08, 0.35),
    SkyField("Fornax dSph", 40.0, -34.45, 0.35),
    SkyField("ECDFS", 53.13, -28.10, 0.35),
    SkyField("EDFS", 59.10, -48.73, 0.35),
    SkyField("Rubin SV 95 -25", 95.0, -25.0, 0.35),
    SkyField("Seagull", 106.3, -10.5, 0.35),
    SkyField("Rubin SV 38 7", 37.86, 6.98, 0.35),
)

DP1 = ObjectCatalog(
    name=RELEASE,
    description="Rubin Data Preview 1 (LSSTComCam, 7 fields, 2.3 million objects)",
    extinction_coefficients=EXTINCTION,
    extinction_source="rubin_sim DustValues().r_x (Rubin DP1 tutorials), for raw SFD E(B-V)",
    ebv_column="ebv",
    env_var="TSM_DP1_PATH",
    default_path="/rubin/lsdb_data/object_collection",
    known_locations=("/rubin/lsdb_data/object_collection (Rubin Science Platform, DP1 Object HATS collection)",),
    mag_limits=RAIL_MAG_LIMITS,
    sample=SampleSpec(
        fields=FIELDS,
        depths={"u": 23.8, "g": 25.0, "r": 24.9, "i": 24.4, "z": 23.8, "y": 22.8},
        flux_dtype="float32",
        flux_types=("cModel", "gaap1p0", "gaapOptimal", "psf", "calib", "kron", "sersic"),
        missing_bands={"Seagull": ("u", "y"), "Rubin SV 95 -25": ("u",), "47 Tuc": ("y",)},
        id_base=592_914_119_181_000_000,
    ),
)


@hookimpl
def tsm_object_catalogs() -> list[ObjectCatalog]:
    return [DP1]


@hookimpl
def tsm_flux_types(catalog: ObjectCatalog) -> list[FluxType]:
    return flux_types(FLUX_FAMILIES) if catalog.name == RELEASE else []
