"""Positions on the unit sphere, as the k-D tree matches use them: unit vectors of RA/Dec,
and the chord that stands for an angle (LSDB's own formulas). Shared by the run's crossmatch
(:mod:`tsm_core.science.crossmatch`) and the duplicates across redshift catalogs
(:mod:`tsm_core.redshifts.duplicates`), and the order of HATS' spatial index; numpy only."""

from __future__ import annotations

import math

import numpy as np

#: the HEALPix order of HATS' spatial index (the ``_healpix_29`` column of every HATS catalog)
SPATIAL_ORDER = 29


def chord(radius_arcsec: float) -> float:
    """The chord on the unit sphere of an angle in arcseconds (LSDB's own formula)."""
    return 2.0 * math.sin(math.radians(0.5 * radius_arcsec / 3600.0))


def arc_arcsec(chords: np.ndarray) -> np.ndarray:
    """Angles in arcseconds of chords on the unit sphere (LSDB's own formula)."""
    return np.degrees(2.0 * np.arcsin(0.5 * chords)) * 3600


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Cartesian coordinates on the unit sphere of RA/Dec in degrees, one row per point."""
    lon, lat = np.radians(np.asarray(ra, np.float64)), np.radians(np.asarray(dec, np.float64))
    cos_lat = np.cos(lat)
    return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=1)
