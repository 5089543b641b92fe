"""Rubin Data Preview 2: 786,420,720 Objects from LSSTCam science validation (about
3,000 deg^2 in 12 small fields and 6 deep-drilling fields, 8,840 HATS partitions).

Object table facts: ``objectId``, ``coord_ra``/``coord_dec`` in deg, float32 fluxes in nJy
for bands ugrizy, ``ebv`` = raw SFD E(B-V) at the object position, ``refExtendedness``,
per-band ``{b}_cModel_flag``, ``{b}_psfFlux_flag`` and ``{b}_pixelFlags_*`` flags, and no
``detect_isPrimary``: duplicates are already rejected, so no row filter is needed.
"""

from __future__ import annotations

from tsm_core import Location, ObjectCatalog, SampleSpec, SkyField
from tsm_core.catalogs.rubin import (
    PUBLISHED_COLLECTION,
    RECOMMENDED_CUTS,
    RUBIN_SIM_EXTINCTION,
    RUBIN_SIM_EXTINCTION_SOURCE,
    SAMPLE_FLAG_COLUMNS,
    release_hooks,
)

RELEASE = "dp2"

#: the flux families of the DP2 Object table (no gaap1p5, gaap2p5, gaap3p0 or gaapOptimal)
FLUX_FAMILIES = (
    "cModel",
    "free_cModel",
    "psf",
    "free_psf",
    "gaapPsf",
    "gaap0p7",
    "gaap1p0",
    "kron",
    "exponential",
    "sersic",
    "ap03",
    "ap06",
    "ap09",
    "ap12",
    "ap17",
    "ap25",
    "ap35",
    "ap50",
    "ap70",
)

#: the same coefficients as DP1 (the same filters): rubin_sim ``DustValues().r_x``, for raw SFD E(B-V)
EXTINCTION = RUBIN_SIM_EXTINCTION

#: field centres (deg) of the DP2 documentation, as in lsdb-rubin's ``DP2FieldSearch.FIELDS``:
#: 12 small fields (patch radius 0.3 deg in the sample) and 6 deep-drilling fields (0.5 deg)
SMALL_FIELDS = (
    ("Abell 2764", 5.5, -49.0),
    ("DESI SV3 R1", 180.5, -0.3),
    ("M49", 186.3, 6.9),
    ("Prawn", 253.5, -41.0),
    ("Trifid-Lagoon", 271.7, -23.9),
    ("New Horizons", 289.4, -20.2),
    ("Rubin SV 212 -7", 211.7, -7.0),
    ("Rubin SV 216 -17", 216.1, -16.7),
    ("Rubin SV 225 -40", 225.0, -39.5),
    ("Rubin SV 280 -48", 280.1, -48.0),
    ("Rubin SV 300 -41", 300.3, -41.0),
    ("Rubin SV 320 -15", 320.2, -15.1),
)
DEEP_FIELDS = (
    ("DDF ELAIS S1", 9.5, -44.0),
    ("DDF XMM LSS", 35.6, -4.8),
    ("DDF ECDFS", 53.0, -28.1),
    ("DDF EDFS A", 59.2, -49.2),
    ("DDF EDFS B", 63.2, -47.8),
    ("DDF COSMOS", 150.1, 2.1),
)
FIELDS = tuple(SkyField(n, ra, dec, 0.3) for n, ra, dec in SMALL_FIELDS) + tuple(
    SkyField(n, ra, dec, 0.5) for n, ra, dec in DEEP_FIELDS
)

DP2 = ObjectCatalog(
    name=RELEASE,
    description="Rubin Data Preview 2 (LSSTCam, ~3,000 deg^2 in 18 fields, 786 million objects)",
    extinction_coefficients=EXTINCTION,
    extinction_source=RUBIN_SIM_EXTINCTION_SOURCE,
    ebv_column="ebv",
    env_var="TSM_DP2_PATH",
    default_path="/rubin/lsdb_data/dp2/object_collection",
    known_locations=(
        Location("/global/cfs/cdirs/lsst/shared/rubin/DP2/HATS", "NERSC"),
        Location("/rubin/lsdb_data/object_collection", "Rubin Science Platform, path of some notebooks"),
    ),
    collection=PUBLISHED_COLLECTION,
    cut_sets={"recommended": RECOMMENDED_CUTS},
    sample=SampleSpec(
        fields=FIELDS,
        # approximate 5-sigma point-source depths of the DP2 coadds
        depths={"u": 24.2, "g": 25.5, "r": 25.4, "i": 24.9, "z": 24.3, "y": 23.3},
        flux_dtype="float32",
        flux_types=("cModel", "free_cModel", "psf", "gaapPsf", "gaap1p0", "kron", "exponential", "sersic"),
        id_base=3_386_792_716_400_000_000,
        flag_columns=SAMPLE_FLAG_COLUMNS,
    ),
)


#: the hooks of this plugin: the release, and its flux families
tsm_object_catalogs, tsm_flux_types = release_hooks(DP2, FLUX_FAMILIES)
