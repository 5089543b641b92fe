"""Rubin Data Preview 0.2: ~147 million Objects of the simulated DESC DC2 survey
(~300 deg^2 around RA 62, Dec -37).

Object table facts: ``objectId`` (in the TAP service it is the table's key), fluxes in
nJy (float64), ``detect_isPrimary`` marks the deblended, non-duplicated objects that a
training set keeps; there is no E(B-V) column, so dereddening needs a dust map.
"""

from __future__ import annotations

from tsm_core import ObjectCatalog, SampleSpec, SkyField
from tsm_core.catalogs.rubin import OBJECT_TABLE_FAMILIES, RAIL_MAG_LIMITS, release_hooks

RELEASE = "dp02"

FLUX_FAMILIES = (*OBJECT_TABLE_FAMILIES, "gaap0p5")

#: A_b / E(B-V) for LSST u g r i z y: Cardelli, Clayton & Mathis (1989) with the DESC DC2
#: throughputs, as in DESC DC2, RAIL's default and LIneA's pipelines; for raw SFD E(B-V).
EXTINCTION = {"u": 4.81, "g": 3.64, "r": 2.70, "i": 2.06, "z": 1.58, "y": 1.31}

#: patches of the DC2 footprint for the sample (one at the reference sample's position)
FIELDS = (
    SkyField("DC2 51.0 -35.7", 51.0, -35.7, 0.3),
    SkyField("DC2 62.0 -37.0", 62.0, -37.0, 0.3),
    SkyField("DC2 56.0 -31.0", 56.0, -31.0, 0.3),
    SkyField("DC2 68.0 -42.0", 68.0, -42.0, 0.3),
    SkyField("DC2 60.0 -44.0", 60.0, -44.0, 0.3),
)

DP02 = ObjectCatalog(
    name=RELEASE,
    description="Rubin Data Preview 0.2 (simulated DESC DC2, ~300 deg^2, 147 million objects)",
    extinction_coefficients=EXTINCTION,
    extinction_source="CCM89 with DC2 throughputs (DESC DC2, RAIL default, LIneA), for raw SFD E(B-V)",
    default_filters=(("detect_isPrimary", "==", True),),
    env_var="TSM_DP02_PATH",
    mag_limits=RAIL_MAG_LIMITS,
    sample=SampleSpec(
        fields=FIELDS,
        depths={"u": 25.6, "g": 26.8, "r": 26.6, "i": 26.0, "z": 25.2, "y": 24.3},
        flux_dtype="float64",
        flux_types=("cModel", "gaap1p0", "gaapOptimal", "psf", "calib", "kron"),
        primary_column="detect_isPrimary",
        id_base=1_248_675_773_246_000_000,
    ),
)


#: the hooks of this plugin: the release, and its flux families
tsm_object_catalogs, tsm_flux_types = release_hooks(DP02, FLUX_FAMILIES)
