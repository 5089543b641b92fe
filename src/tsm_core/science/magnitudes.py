"""Flux to magnitude, magnitude errors and dereddening: pure numpy.

Conventions (Rubin Object tables, fluxes in nJy):

* ``mag = -2.5 log10(flux) + zero_point``; 31.4 for nJy (2.5 log10(3631e9) = 31.40).
* ``mag_err = 2.5 / ln(10) * flux_err / flux``.
* A flux <= 0 or NaN has no magnitude (NaN), and no magnitude error.
* Dereddening with ``A_b = R_b * E(B-V)``: ``flux * 10**(0.4 A_b)`` (the same factor on
  the flux error), ``mag - A_b``.
"""

from __future__ import annotations

import numpy as np

#: 2.5 / ln(10), the factor between a relative flux error and a magnitude error
MAG_ERR_FACTOR = 2.5 / np.log(10.0)
#: AB zero point of fluxes in nJy: 2.5 log10(3631e9)
NJY_ZERO_POINT = 31.4


def _float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def flux_to_mag(flux: np.ndarray, zero_point: float = NJY_ZERO_POINT) -> np.ndarray:
    """AB magnitudes of ``flux``; NaN where the flux is <= 0 or NaN."""
    flux = _float(flux)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = -2.5 * np.log10(flux) + zero_point
    mag[~(flux > 0)] = np.nan
    return mag


def flux_err_to_mag_err(flux: np.ndarray, flux_err: np.ndarray) -> np.ndarray:
    """Magnitude errors ``2.5/ln10 * err/flux``; NaN where the flux is <= 0 or NaN."""
    flux = _float(flux)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = MAG_ERR_FACTOR * _float(flux_err) / flux
    err[~(flux > 0)] = np.nan
    return err


def extinction(ebv: np.ndarray, coefficient: float) -> np.ndarray:
    """``A_b = R_b * E(B-V)`` in magnitudes."""
    return coefficient * _float(ebv)


def deredden_flux(flux: np.ndarray, a_band: np.ndarray) -> np.ndarray:
    """Flux (or flux error) corrected for an extinction of ``a_band`` magnitudes."""
    return _float(flux) * np.power(10.0, 0.4 * _float(a_band))


def deredden_mag(mag: np.ndarray, a_band: np.ndarray) -> np.ndarray:
    """Magnitude corrected for an extinction of ``a_band`` magnitudes."""
    return _float(mag) - _float(a_band)
