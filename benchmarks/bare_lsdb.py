"""What a user would write with LSDB alone: the same crossmatch, written to Parquet.

python benchmarks/bare_lsdb.py OBJECTS REDSHIFTS OUT.parquet RADIUS_ARCSEC
"""

import sys

import lsdb
import pandas as pd

objects_path, redshift_path, out, radius = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
columns = ["objectId", "coord_ra", "coord_dec"] + [f"{b}_cModelFlux{e}" for b in "ugrizy" for e in ("", "Err")]
objects = lsdb.open_catalog(objects_path, columns=columns)
redshifts = lsdb.from_dataframe(pd.read_parquet(redshift_path), ra_column="ra", dec_column="dec", margin_threshold=None)
matched = redshifts.crossmatch(objects, radius_arcsec=radius, n_neighbors=1, require_right_margin=True)
matched.compute().to_parquet(out)
