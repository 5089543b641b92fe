"""Tiny, valid dust map files of each kind dustmaps reads, with values known in closed form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

SFD_N = 64
#: SFD test map: E(B-V) = SFD_BASE[pole] + SFD_SLOPE * x (x = 0-based pixel column)
SFD_BASE = {"ngp": 0.05, "sgp": 0.12}
SFD_SLOPE = 0.001
HEALPIX_NSIDE = 16


def sfd_header(n: int, pole: str) -> fits.Header:
    s = 1 if pole == "ngp" else -1
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "GLON-ZEA", "GLAT-ZEA"
    h["CRVAL1"], h["CRVAL2"] = 0.0 if s > 0 else 0.0, 90.0 * s
    h["CRPIX1"] = h["CRPIX2"] = n / 2 + 0.5
    h["CD1_1"] = -s * np.degrees(np.sqrt(2)) / (n / 2)
    h["CD2_2"] = s * np.degrees(np.sqrt(2)) / (n / 2)
    h["CD1_2"] = h["CD2_1"] = 0.0
    h["LONPOLE"] = 180.0
    return h


def write_sfd(maps_dir: Path, n: int = SFD_N) -> None:
    """``sfd/SFD_dust_4096_{ngp,sgp}.fits`` in the SFD Lambert-ZEA format."""
    (maps_dir / "sfd").mkdir(parents=True, exist_ok=True)
    x = np.arange(n, dtype=np.float64)
    for pole, base in SFD_BASE.items():
        data = np.broadcast_to(base + SFD_SLOPE * x, (n, n)).astype(np.float32)
        fits.PrimaryHDU(data, header=sfd_header(n, pole)).writeto(
            maps_dir / "sfd" / f"SFD_dust_4096_{pole}.fits", overwrite=True
        )


def sfd_expected(l_deg: np.ndarray, b_deg: np.ndarray, n: int = SFD_N) -> np.ndarray:
    """E(B-V) of :func:`write_sfd` computed with astropy.wcs, independently of dustmaps."""
    from astropy.wcs import WCS

    out = np.empty(len(l_deg))
    for pole, base in SFD_BASE.items():
        m = b_deg >= 0 if pole == "ngp" else b_deg < 0
        x, _ = WCS(sfd_header(n, pole)).wcs_world2pix(l_deg[m], b_deg[m], 0)
        out[m] = base + SFD_SLOPE * x
    return out


def healpix_values(nside: int = HEALPIX_NSIDE) -> np.ndarray:
    """Pixel p holds 0.01 + 1e-4 p."""
    return (0.01 + 1e-4 * np.arange(12 * nside**2)).astype(np.float32)


def healpix_expected(l_deg: np.ndarray, b_deg: np.ndarray, nest: bool, scale: float = 1.0) -> np.ndarray:
    import healpy as hp

    pix = hp.ang2pix(HEALPIX_NSIDE, l_deg, b_deg, nest=nest, lonlat=True)
    return healpix_values()[pix].astype(np.float64) * scale


def write_csfd(maps_dir: Path) -> None:
    """``csfd/csfd_ebv.fits`` and ``csfd/mask.fits``: RING HEALPix tables, column ``T``."""
    (maps_dir / "csfd").mkdir(parents=True, exist_ok=True)
    for name, values in (
        ("csfd_ebv.fits", healpix_values()),
        ("mask.fits", np.zeros(12 * HEALPIX_NSIDE**2, np.float32)),
    ):
        hdu = fits.BinTableHDU.from_columns([fits.Column(name="T", format="E", array=values)], name="xtension")
        hdu.header["PIXTYPE"], hdu.header["ORDERING"], hdu.header["NSIDE"] = "HEALPIX", "RING", HEALPIX_NSIDE
        hdu.header["COORDSYS"] = "G"
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(maps_dir / "csfd" / name, overwrite=True)


def _planck_file(path: Path, extname: str, field: str, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu = fits.BinTableHDU.from_columns([fits.Column(name=field, format="E", array=values)], name=extname)
    hdu.header["PIXTYPE"], hdu.header["ORDERING"], hdu.header["NSIDE"] = "HEALPIX", "NESTED", HEALPIX_NSIDE
    hdu.header["COORDSYS"] = "GALACTIC"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def write_planck(maps_dir: Path) -> None:
    """The Planck 2013 thermal dust model (HDU ``COMP-MAP``, field ``EBV``), NESTED."""
    _planck_file(
        maps_dir / "planck" / "HFI_CompMap_ThermalDustModel_2048_R1.20.fits", "COMP-MAP", "EBV", healpix_values()
    )


def write_planck_gnilc(maps_dir: Path) -> None:
    """The Planck GNILC map (first extension, field ``TAU353``; E(B-V) = 1.49e4 tau)."""
    _planck_file(
        maps_dir / "planck" / "COM_CompMap_Dust-GNILC-Model-Opacity_2048_R2.01.fits",
        "COMP-MAP",
        "TAU353",
        healpix_values() / np.float32(1e4),
    )
