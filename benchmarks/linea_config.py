"""A config for LIneA's Training Set Maker pipeline (linea-it/pzserver_training_set_maker),
the same crossmatch as `tsm run`: OBJECTS (a HATS collection) x REDSHIFTS (Parquet), 1 arcsec,
one neighbour, cModel fluxes, Parquet output, on LIneA's own local Dask cluster (2 workers).

Their pipeline is installed apart, in a venv of its own (see README, "Fixed costs of small
work"), and run as ``PYTHONPATH=REPO/packages python REPO/scripts/tsm-run CONFIG WORK``.

    python benchmarks/linea_config.py OBJECTS REDSHIFTS WORK   # prints WORK/config.yaml
"""

import sys
from pathlib import Path

objects, redshifts, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
work.mkdir(parents=True, exist_ok=True)
columns = ["objectId", "coord_ra", "coord_dec"] + [f"{b}_cModelFlux{e}" for b in "ugrizy" for e in ("", "Err")]
(work / "config.yaml").write_text(f"""executor:
  name: local
  args: {{n_workers: 2, threads_per_worker: 1, memory_limit: "3GiB", dashboard_address: null}}
inputs:
  dataset: {{path: {objects}, columns: {{id: objectId}}}}
  specz:
    - path: {redshifts}
      format: parquet
      columns: {{ra: ra, dec: dec, z: z}}
output_root_dir: {work}
output_dir: out
output_format: parquet
output_name: tsm
param:
  use_absolute_lsdb_path: true
  selected_cols: {columns}
  flux_type: cModel
  convert_flux_to_mag: false
  dereddening: none
  split_method: random
  train_fraction: 0.7
  random_seed: 1
  crossmatch: {{radius_arcsec: 1.0, n_neighbors: 1}}
""")
print(work / "config.yaml")
