"""A hand-written crossmatch: pyarrow reads the needed columns, scipy's cKDTree matches.

What someone fluent in the stack writes in an afternoon: the object catalog's Parquet files
read with only the id, coordinates and cModel fluxes, unit vectors on the sphere, a KD-tree
over the objects, each redshift's nearest object within the radius, magnitudes for the
matched rows only, written to Parquet. No margins, partitions or provenance to care about.

python benchmarks/ckdtree.py OBJECTS REDSHIFTS OUT.parquet RADIUS_ARCSEC
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
from scipy.spatial import cKDTree


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


objects_path, redshift_path, out, radius = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
main = next(p for p in sorted(objects_path.iterdir()) if (p / "dataset").is_dir() and not p.name.endswith("arcs"))
fluxes = [f"{b}_cModelFlux{e}" for b in "ugrizy" for e in ("", "Err")]
files = sorted(str(f) for f in (main / "dataset").glob("Norder=*/Dir=*/Npix=*.parquet"))
objects = ds.dataset(files, format="parquet").to_table(columns=["objectId", "coord_ra", "coord_dec", *fluxes])
redshifts = pd.read_parquet(redshift_path)
ora, odec = objects.column("coord_ra").to_numpy(), objects.column("coord_dec").to_numpy()
chord = 2 * np.sin(np.radians(radius / 3600) / 2)
dist, idx = cKDTree(unit_vectors(ora, odec)).query(
    unit_vectors(redshifts["ra"].to_numpy(), redshifts["dec"].to_numpy()), k=1, distance_upper_bound=chord
)
keep = np.isfinite(dist)
matched = objects.take(idx[keep]).to_pandas()
result = pd.concat([redshifts[keep].reset_index(drop=True), matched], axis=1)
result["_dist_arcsec"] = np.degrees(2 * np.arcsin(dist[keep] / 2)) * 3600
for band in "ugrizy":
    flux = result.pop(f"{band}_cModelFlux").to_numpy(dtype=float)
    err = result.pop(f"{band}_cModelFluxErr").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        result[f"{band}_cModelMag"] = np.where(flux > 0, -2.5 * np.log10(flux) + 31.4, np.nan)
        result[f"{band}_cModelMagErr"] = np.where(flux > 0, 2.5 / np.log(10) * err / flux, np.nan)
result.to_parquet(out)
