"""The naive approach: load both tables with pandas, astropy match, magnitudes for all.

python benchmarks/naive.py OBJECTS REDSHIFTS OUT.parquet RADIUS_ARCSEC
"""

import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord

objects_path, redshift_path, out, radius = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
files = sorted((objects_path / "objects" / "dataset").glob("Norder=*/Dir=*/Npix=*.parquet"))
objects = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
redshifts = pd.read_parquet(redshift_path)
for band in "ugrizy":
    flux = objects[f"{band}_cModelFlux"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        objects[f"{band}_cModelMag"] = np.where(flux > 0, -2.5 * np.log10(flux) + 31.4, np.nan)
        objects[f"{band}_cModelMagErr"] = 1.0857 * objects[f"{band}_cModelFluxErr"] / flux
idx, sep, _ = SkyCoord(redshifts["ra"], redshifts["dec"], unit="deg").match_to_catalog_sky(
    SkyCoord(objects["coord_ra"], objects["coord_dec"], unit="deg")
)
keep = sep < radius * u.arcsec
result = pd.concat([redshifts[keep].reset_index(drop=True), objects.iloc[idx[keep]].reset_index(drop=True)], axis=1)
result["_dist_arcsec"] = sep[keep].arcsec
result.to_parquet(out)
