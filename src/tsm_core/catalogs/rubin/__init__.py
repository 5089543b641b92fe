"""Conventions shared by the Object tables of Rubin data releases (DP0.2, DP1, ...).

Release plugins build their :class:`~tsm_core.plugins.records.FluxType` lists from here, so that
each flux family is described once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tsm_core.plugins.locations import CollectionLayout
from tsm_core.plugins.manager import hookimpl
from tsm_core.plugins.records import FluxType, ObjectCatalog

#: the flux family offered by default (the Photo-z Server's default)
DEFAULT_FLUX_TYPE = "cModel"

#: flux families of the Object tables of both DP0.2 and DP1; each release adds its own
OBJECT_TABLE_FAMILIES: tuple[str, ...] = (
    "cModel",
    "free_cModel",
    "psf",
    "free_psf",
    "gaapOptimal",
    "gaapPsf",
    "gaap0p7",
    "gaap1p0",
    "gaap1p5",
    "gaap2p5",
    "gaap3p0",
    "kron",
    "calib",
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

#: RAIL's default 1-sigma limiting magnitudes (``rail.core.common_params.lsst_def_maglims``,
#: as in its DC2 training files and rail_bpz): the error of a non-detection in the RAIL layout
RAIL_MAG_LIMITS: dict[str, float] = {"u": 27.79, "g": 29.04, "r": 29.06, "i": 28.62, "z": 27.98, "y": 27.05}

FLUX_FAMILIES: dict[str, str] = {
    "cModel": "composite model (exponential + de Vaucouleurs) flux, forced on the reference band: "
    "the usual choice for galaxy colours",
    "free_cModel": "composite model flux fitted freely in each band",
    "psf": "PSF-model flux, forced: best for point sources",
    "free_psf": "PSF-model flux fitted freely in each band",
    "gaapOptimal": "GAaP flux with the optimal aperture: PSF-homogenised, consistent colours",
    "gaapPsf": "GAaP flux with a PSF-sized aperture",
    "gaap0p5": "GAaP flux in a 0.5 arcsec aperture",
    "gaap0p7": "GAaP flux in a 0.7 arcsec aperture",
    "gaap1p0": "GAaP flux in a 1.0 arcsec aperture (the Photo-z Server's second choice)",
    "gaap1p5": "GAaP flux in a 1.5 arcsec aperture",
    "gaap2p5": "GAaP flux in a 2.5 arcsec aperture",
    "gaap3p0": "GAaP flux in a 3.0 arcsec aperture",
    "kron": "Kron (elliptical aperture) flux",
    "calib": "flux in the 12-pixel calibration aperture",
    "sersic": "Sersic-model flux",
    "exponential": "exponential-profile model flux",
    **{
        f"ap{r}": f"flux in a circular aperture of radius {int(r)} pixels"
        for r in ("03", "06", "09", "12", "17", "25", "35", "50", "70")
    },
}


def flux_types(families: Iterable[str], default: str = DEFAULT_FLUX_TYPE) -> list[FluxType]:
    """:class:`FluxType` records of ``families``, ``default`` marked as the default."""
    return [FluxType(name, FLUX_FAMILIES[name], default=name == default) for name in families]


#: A_b / E(B-V) for LSST u g r i z y from rubin_sim ``DustValues().r_x``, as used in the
#: Rubin DP1 tutorial notebooks; they multiply raw SFD E(B-V) (the ``ebv`` column of DP1 and DP2)
RUBIN_SIM_EXTINCTION: dict[str, float] = {
    "u": 4.75721,
    "g": 3.66056,
    "r": 2.701367,
    "i": 2.053659,
    "z": 1.59009,
    "y": 1.3077049,
}
RUBIN_SIM_EXTINCTION_SOURCE = "rubin_sim DustValues().r_x (Rubin DP1 tutorials), for raw SFD E(B-V)"

#: how DP1 and DP2 are published: an LSDB collection ``object_lc`` with a 5 arcsec margin
#: ``object_lc_5arcs`` and an ``objectId`` index ``object_lc_objectId``
PUBLISHED_COLLECTION = CollectionLayout()

#: the ``recommended`` quality cuts of DP1 and DP2 (filter expressions; ``{band}`` is each
#: band of a run, ``{flux_type}`` its flux type): extended sources, no failed cModel fit,
#: no bad, saturated or edge pixels in the bands used, and S/N >= 5 in i
RECOMMENDED_CUTS: tuple[str, ...] = (
    "refExtendedness == 1",
    "{band}_cModel_flag == False",
    "{band}_pixelFlags_bad == False",
    "{band}_pixelFlags_saturated == False",
    "{band}_pixelFlags_edge == False",
    "i_{flux_type}Flux / i_{flux_type}FluxErr >= 5",
)

#: the flag columns that the synthetic DP1 and DP2 samples carry (those the cuts read)
SAMPLE_FLAG_COLUMNS: tuple[str, ...] = (
    "{band}_cModel_flag",
    "{band}_psfFlux_flag",
    "{band}_pixelFlags_bad",
    "{band}_pixelFlags_saturated",
    "{band}_pixelFlags_edge",
    "shape_flag",
)


def release_hooks(release: ObjectCatalog, families: Iterable[str], default: str = DEFAULT_FLUX_TYPE) -> tuple[Any, Any]:
    """The two hook implementations of a release plugin: ``tsm_object_catalogs`` offering
    ``release`` and ``tsm_flux_types`` offering ``families`` for it (``default`` marked)::

        tsm_object_catalogs, tsm_flux_types = release_hooks(DP1, FLUX_FAMILIES)
    """
    offered = tuple(families)

    @hookimpl
    def tsm_object_catalogs() -> list[ObjectCatalog]:
        return [release]

    @hookimpl
    def tsm_flux_types(catalog: ObjectCatalog) -> list[FluxType]:
        return flux_types(offered, default) if catalog.name == release.name else []

    return tsm_object_catalogs, tsm_flux_types
