"""Generate benchmark catalogs with the DP1 schema, within bounded memory.

Objects are generated in chunks of ``--chunk`` rows with the DP1 sample generator (wider
fields, so that density stays realistic), written as Parquet files, and imported as a
HATS collection with a 10 arcsec margin by hats-import on a local Dask cluster: memory
stays bounded whatever the number of rows. Redshift catalogs of 1%, 10% and 100% of the
objects (``--fractions``) sit within 0.15 arcsec of randomly chosen objects (plus 5% without counterpart).

    python benchmarks/generate.py --rows 1000000 --out benchmarks/work/1M
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from catalog_args import catalog_parser

from tsm_core import SkyField, plugins
from tsm_core.catalogs.rubin.sample import object_table

FAMILIES = ("cModel", "gaap1p0", "psf", "kron")
FRACTIONS = (0.01, 0.10, 1.0)


def bench_release(field_radius_deg: float):
    """DP1 with wider sample fields and the benchmark's flux families."""
    dp1 = plugins.object_catalog("dp1")
    fields = tuple(SkyField(f.name, f.ra, f.dec, field_radius_deg) for f in dp1.sample.fields)
    return dataclasses.replace(dp1, sample=dataclasses.replace(dp1.sample, fields=fields, flux_types=FAMILIES))


def write_inputs(rows: int, chunk: int, out: Path, seed: int, radius: float) -> list[Path]:
    release = bench_release(radius)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for k, start in enumerate(range(0, rows, chunk)):
        n = min(chunk, rows - start)
        frame, _ = object_table(release, n, seed + k)
        frame["objectId"] = frame["objectId"] + np.int64(k) * np.int64(chunk) * 8
        path = out / f"chunk_{k:04d}.parquet"
        frame.to_parquet(path, index=False)
        files.append(path)
    return files


def import_hats(files: list[Path], out: Path, name: str, workers: int) -> Path:
    from dask.distributed import Client
    from hats_import import CollectionArguments, pipeline_with_client

    args = (
        CollectionArguments(output_artifact_name=name, output_path=out, progress_bar=False, tmp_dir=out / "tmp")
        .catalog(
            input_file_list=[str(f) for f in files],
            file_reader="parquet",
            ra_column="coord_ra",
            dec_column="coord_dec",
            pixel_threshold=300_000,
            highest_healpix_order=9,
        )
        .add_margin(margin_threshold=10.0, is_default=True)
    )
    with Client(n_workers=workers, threads_per_worker=1, memory_limit="4GB", dashboard_address=None) as client:
        pipeline_with_client(args, client)
    shutil.rmtree(out / "tmp", ignore_errors=True)
    return out / name


def write_redshifts(
    inputs: list[Path], out: Path, rows: int, seed: int, fractions: tuple[float, ...] = FRACTIONS
) -> dict[float, Path]:
    rng = np.random.default_rng(seed)
    coords = pd.concat(
        [pq.read_table(f, columns=["coord_ra", "coord_dec"]).to_pandas() for f in inputs], ignore_index=True
    )
    paths = {}
    for fraction in fractions:
        n = int(rows * fraction)
        n_matched = int(n * 0.95)
        pick = rng.choice(len(coords), n_matched, replace=False)
        dec = coords["coord_dec"].to_numpy()[pick] + rng.normal(0, 0.15 / 3600, n_matched)
        ra = coords["coord_ra"].to_numpy()[pick] + rng.normal(0, 0.15 / 3600, n_matched) / np.cos(np.radians(dec))
        lonely = rng.choice(len(coords), n - n_matched, replace=False)
        ra = np.concatenate([ra, coords["coord_ra"].to_numpy()[lonely] + 20 / 3600])
        dec = np.concatenate([dec, coords["coord_dec"].to_numpy()[lonely]])
        frame = pd.DataFrame(
            {
                "id": np.arange(n, dtype=np.int64),
                "ra": np.mod(ra, 360),
                "dec": dec,
                "z": rng.gamma(3.0, 0.28, n),
                "z_err": rng.uniform(1e-4, 1e-3, n),
                "z_flag": rng.choice([3, 4], n),
                "survey": rng.choice(["DESI", "VVDS"], n),
            }
        )
        paths[fraction] = out / f"redshifts_{int(fraction * 100)}pct.parquet"
        frame.to_parquet(paths[fraction], index=False)
    return paths


def main() -> None:
    parser = catalog_parser(
        __doc__, chunk=500_000, seed=1, field_radius=1.2, radius_help="deg; 1.2 gives ~0.6 M objects/deg^2 at 20 M rows"
    )
    parser.add_argument(
        "--fractions", default=",".join(str(f) for f in FRACTIONS), help="redshift catalogs as fractions of the objects"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    inputs = write_inputs(args.rows, args.chunk, args.out / "inputs", args.seed, args.field_radius)
    import_hats(inputs, args.out, "objects", args.workers)
    write_redshifts(inputs, args.out, args.rows, args.seed, tuple(float(f) for f in args.fractions.split(",")))
    shutil.rmtree(args.out / "inputs")
    print(f"{args.rows} objects in {args.out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
