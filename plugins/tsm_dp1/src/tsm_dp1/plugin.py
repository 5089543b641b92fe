"""Rubin Data Preview 1: 2,299,757 Objects in seven LSSTComCam fields (2024 commissioning).

Object table facts: ``objectId`` column, ``coord_ra``/``coord_dec`` in deg, float32
fluxes in nJy (NaN where a band was not detected), ``ebv`` = E(B-V) of Schlegel,
Finkbeiner & Davis (1998) at the object position, no ``detect_isPrimary``.
"""

from __future__ import annotations

from tsm_core import Location, ObjectCatalog, SampleSpec, SkyField
from tsm_core.catalogs.rubin import (
    OBJECT_TABLE_FAMILIES,
    PUBLISHED_COLLECTION,
    RAIL_MAG_LIMITS,
    RECOMMENDED_CUTS,
    RUBIN_SIM_EXTINCTION,
    RUBIN_SIM_EXTINCTION_SOURCE,
    SAMPLE_FLAG_COLUMNS,
    release_hooks,
)

RELEASE = "dp1"

FLUX_FAMILIES = (*OBJECT_TABLE_FAMILIES, "sersic")

#: A_b / E(B-V) for LSST u g r i z y from rubin_sim ``DustValues().r_x``, as used in the
#: Rubin DP1 tutorial notebooks; they multiply raw SFD E(B-V) (the ``ebv`` column).
EXTINCTION = RUBIN_SIM_EXTINCTION

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

#: where the DP1 collection is published, tried in this order: the Rubin Science Platform
#: (``default_path``), then the copies at NERSC and CANFAR, then the path the collection had
#: on the Science Platform before DP2
DP1 = ObjectCatalog(
    name=RELEASE,
    description="Rubin Data Preview 1 (LSSTComCam, 7 fields, 2.3 million objects)",
    extinction_coefficients=EXTINCTION,
    extinction_source=RUBIN_SIM_EXTINCTION_SOURCE,
    ebv_column="ebv",
    env_var="TSM_DP1_PATH",
    default_path="/rubin/lsdb_data/dp1/object_collection",
    known_locations=(
        Location("/global/cfs/cdirs/lsst/shared/rubin/DP1/HATS/dp1_full/hats/v29_0_0/object_collection", "NERSC"),
        Location("/arc/projects/hats/lsst/dp1/object_collection", "CANFAR"),
        Location("/rubin/lsdb_data/object_collection", "Rubin Science Platform, before DP2"),
    ),
    collection=PUBLISHED_COLLECTION,
    cut_sets={"recommended": RECOMMENDED_CUTS},
    mag_limits=RAIL_MAG_LIMITS,
    sample=SampleSpec(
        fields=FIELDS,
        depths={"u": 23.8, "g": 25.0, "r": 24.9, "i": 24.4, "z": 23.8, "y": 22.8},
        flux_dtype="float32",
        flux_types=("cModel", "gaap1p0", "gaapOptimal", "psf", "calib", "kron", "sersic"),
        missing_bands={"Seagull": ("u", "y"), "Rubin SV 95 -25": ("u",), "47 Tuc": ("y",)},
        id_base=592_914_119_181_000_000,
        flag_columns=SAMPLE_FLAG_COLUMNS,
    ),
)


#: the hooks of this plugin: the release, and its flux families
tsm_object_catalogs, tsm_flux_types = release_hooks(DP1, FLUX_FAMILIES)
