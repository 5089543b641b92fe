"""Generate a DP2-schema object catalog of up to 10^8 rows, and redshift catalogs over its footprint.

Objects have the DP2 column names and dtypes (``objectId`` int64, ``coord_ra``/``coord_dec``
float64, float32 fluxes in nJy) but only the columns a run reads plus a few others:
cModel and PSF fluxes and errors in six bands, ``refExtendedness``, ``ebv`` and the six
``{band}_cModel_flag`` (22 of DP2's 1,261 columns). They lie in DP2's 18 fields, each widened
to a radius of ``--field-radius`` deg (2.0 gives about 420,000 objects/deg^2 at 10^8 rows, so
that HEALPix order-7 partitions hold about 90,000 rows, DP2's average of 786 M / 8,840).

Rows are generated in chunks by a hats-import file reader (chunk ``k`` is a deterministic
function of the seed and ``k``), so no input files are stored: the import maps positions,
splits, reduces and writes a 5 arcsec margin (``object_lc``, ``object_lc_5arcs`` as DP2
publishes them) on a local Dask cluster within bounded memory and about twice the
catalog's size on disk.

Redshift catalogs (``redshifts_1M.parquet``, ``redshifts_10M.parquet`` by default) sit
within 0.15 arcsec of objects picked at random in every chunk (95 %), the rest 20 arcsec
from any picked object (no counterpart).

    python benchmarks/generate_dp2.py --rows 100000000 --out benchmarks/work/dp2_100M [--redshifts 1000000,10000000]
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from catalog_args import catalog_parser
from hats_import.catalog.file_readers import InputReader

from tsm_core import SkyField, plugins
from tsm_core.catalogs.rubin import sample as rubin_sample

FAMILIES = ("cModel", "psf")
FLAGS = ("{band}_cModel_flag",)
MARGIN_ARCSEC = 5.0


def bench_release(field_radius_deg: float):
    """DP2 with wider fields, two flux families and one flag family."""
    dp2 = plugins.object_catalog("dp2")
    fields = tuple(SkyField(f.name, f.ra, f.dec, field_radius_deg) for f in dp2.sample.fields)
    spec = dataclasses.replace(dp2.sample, fields=fields, flux_types=FAMILIES, flag_columns=FLAGS)
    return dataclasses.replace(dp2, sample=spec)


class ChunkReader(InputReader):
    """A hats-import reader: each 'input file' holds a chunk number; rows are generated."""

    def __init__(self, rows: int, chunk: int, seed: int, field_radius: float) -> None:
        self.rows, self.chunk, self.seed, self.field_radius = rows, chunk, seed, field_radius
        self._release = None

    @property
    def release(self):
        if self._release is None:
            self._release = bench_release(self.field_radius)
        return self._release

    def size(self, k: int) -> int:
        return min(self.chunk, self.rows - k * self.chunk)

    def positions(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The positions of chunk ``k``: the first draw of the same generator as :meth:`table`."""
        ra, dec, _ = rubin_sample._positions(np.random.default_rng(self.seed + k), self.release.sample, self.size(k))
        return ra, dec

    def table(self, k: int) -> pd.DataFrame:
        frame, _ = rubin_sample.object_table(self.release, self.size(k), self.seed + k)
        frame["objectId"] = frame["objectId"] + np.int64(k) * np.int64(self.chunk) * 8
        return frame

    def read(self, input_file, read_columns=None):
        k = int(Path(str(input_file)).read_text())
        if read_columns is not None and set(read_columns) <= {"coord_ra", "coord_dec"}:
            ra, dec = self.positions(k)
            yield pd.DataFrame({"coord_ra": ra, "coord_dec": dec})[list(read_columns)]
            return
        frame = self.table(k)
        yield frame if read_columns is None else frame[list(read_columns)]


def import_objects(reader: ChunkReader, out: Path, workers: int, threshold: int) -> Path:
    from dask.distributed import Client
    from hats_import import CollectionArguments, pipeline_with_client

    stubs = out / "stubs"
    stubs.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(-(-reader.rows // reader.chunk)):
        path = stubs / f"chunk_{k:05d}.txt"
        path.write_text(str(k))
        files.append(str(path))
    args = (
        CollectionArguments(output_artifact_name="objects", output_path=out, progress_bar=False, tmp_dir=out / "tmp")
        .catalog(
            input_file_list=files,
            file_reader=reader,
            ra_column="coord_ra",
            dec_column="coord_dec",
            output_artifact_name="object_lc",
            pixel_threshold=threshold,
            highest_healpix_order=10,
        )
        .add_margin(margin_threshold=MARGIN_ARCSEC, output_artifact_name="object_lc_5arcs", is_default=True)
    )
    with Client(n_workers=workers, threads_per_worker=1, memory_limit="6GB", dashboard_address=None) as client:
        pipeline_with_client(args, client)
    shutil.rmtree(out / "tmp", ignore_errors=True)
    return out / "objects"


def write_redshifts(reader: ChunkReader, out: Path, counts: list[int], seed: int) -> list[Path]:
    """Redshift catalogs of ``counts`` rows, drawn chunk by chunk (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_chunks = -(-reader.rows // reader.chunk)
    paths = []
    for count in counts:
        rng = np.random.default_rng(seed + count)
        path = (
            out / f"redshifts_{count // 1_000_000}M.parquet"
            if count % 1_000_000 == 0
            else out / f"redshifts_{count}.parquet"
        )
        tmp = path.with_suffix(".tmp")
        writer = None
        first_id = 0
        for k in range(n_chunks):
            ra_all, dec_all = reader.positions(k)
            n = count * reader.size(k) // reader.rows
            n_matched = int(n * 0.95)
            pick = rng.choice(len(ra_all), n, replace=False)
            dec = dec_all[pick].copy()
            ra = ra_all[pick].copy()
            dec[:n_matched] += rng.normal(0, 0.15 / 3600, n_matched)
            ra[:n_matched] += rng.normal(0, 0.15 / 3600, n_matched) / np.cos(np.radians(dec[:n_matched]))
            ra[n_matched:] += 20 / 3600 / np.cos(np.radians(dec[n_matched:]))
            frame = pd.DataFrame(
                {
                    "id": np.arange(first_id, first_id + n, dtype=np.int64),
                    "ra": np.mod(ra, 360),
                    "dec": dec,
                    "z": rng.gamma(3.0, 0.28, n),
                    "z_err": rng.uniform(1e-4, 1e-3, n),
                    "z_flag": rng.choice([3, 4], n),
                    "survey": rng.choice(["DESI", "VVDS"], n),
                }
            )
            first_id += n
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        writer.close()
        tmp.rename(path)
        paths.append(path)
        print(f"{first_id} redshifts in {path}", flush=True)
    return paths


def main() -> None:
    parser = catalog_parser(__doc__, chunk=1_000_000, seed=2, field_radius=2.0)
    parser.add_argument("--pixel-threshold", type=int, default=150_000)
    parser.add_argument("--redshifts", default="1000000,10000000")
    parser.add_argument("--skip-objects", action="store_true", help="only write the redshift catalogs")
    args = parser.parse_args()
    start = time.perf_counter()
    reader = ChunkReader(args.rows, args.chunk, args.seed, args.field_radius)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.skip_objects:
        import_objects(reader, args.out, args.workers, args.pixel_threshold)
        print(f"{args.rows} objects in {args.out / 'objects'} ({time.perf_counter() - start:.0f} s)", flush=True)
    write_redshifts(reader, args.out, [int(c) for c in args.redshifts.split(",") if c], args.seed + 1000)
    print(f"done ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
