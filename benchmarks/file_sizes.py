"""File sizes of the HDF5 writer against the Parquet writer (and tables_io's HDF5).

Writes a training-set-shaped table (the columns of a DP1 run: redshift id, coordinates,
z, z_err, z_flag, survey, objectId, object coordinates, separation, six cModel
magnitudes and errors computed from float32 nJy fluxes with the core's photometry, a
split flag) through the installed writers, in batches of 100,000 rows, in the default
and the rail layout, and prints the sizes as a Markdown table.

    python benchmarks/file_sizes.py --rows 1000,1000000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

BATCH = 100_000
BANDS = "ugrizy"


def frame(start: int, n: int) -> pd.DataFrame:
    """Rows ``start .. start+n`` of a realistic training set (seeded per batch)."""
    from tsm_core.science.magnitudes import flux_err_to_mag_err, flux_to_mag

    rng = np.random.default_rng(start)
    ra = rng.uniform(52.5, 53.7, n)
    dec = rng.uniform(-28.7, -27.5, n)
    cols: dict[str, object] = {
        "id": [f"DESI_{39627000000000000 + i}" for i in range(start, start + n)],
        "ra": ra,
        "dec": dec,
        "z": np.round(rng.gamma(2.0, 0.4, n), 5),
        "z_err": rng.uniform(1e-5, 1e-3, n).astype(np.float32).astype(np.float64),
        "z_flag": rng.integers(0, 5, n),
        "survey": rng.choice(["DESI", "VVDS", "2dFLenS", "ZCOSMOS"], n),
        "objectId": np.int64(592914119181000000) + np.arange(start, start + n, dtype=np.int64) * 7,
        "coord_ra": ra + rng.normal(0, 0.1 / 3600, n),
        "coord_dec": dec + rng.normal(0, 0.1 / 3600, n),
        "_dist_arcsec": rng.rayleigh(0.12, n),
    }
    for band in BANDS:
        flux = (rng.lognormal(np.log(3000), 1.2, n) - 200).astype(np.float32).astype(np.float64)
        err = np.abs(rng.normal(60, 15, n)).astype(np.float32).astype(np.float64)
        cols[f"{band}_cModelMag"] = flux_to_mag(flux, 31.4)
        cols[f"{band}_cModelMagErr"] = flux_err_to_mag_err(flux, err)
    cols["is_training"] = rng.uniform(0, 1, n) < 0.8
    return pd.DataFrame(cols)


def info() -> dict:
    from tsm_core.plugins.records import ColumnInfo

    columns = {c: ColumnInfo("", c) for c in frame(0, 1).columns}
    columns["id"] = ColumnInfo("", "id", max_length=22)
    columns["survey"] = ColumnInfo("", "survey", max_length=7)
    columns["z"] = ColumnInfo("", "z", quantity="redshift")
    for band in BANDS:
        columns[f"{band}_cModelMag"] = ColumnInfo("mag", "", "mag", band)
        columns[f"{band}_cModelMagErr"] = ColumnInfo("mag", "", "mag_err", band)
    return columns


def write(fmt: str, layout_name: str, rows: int, out: Path) -> int:
    """Size in bytes of ``rows`` rows written with ``fmt`` in ``layout_name``."""
    from tsm_core import plugins
    from tsm_core.catalogs.rubin import RAIL_MAG_LIMITS
    from tsm_core.config import OutputConfig
    from tsm_core.plugins.records import OutputMetadata
    from tsm_core.science import layout

    options = OutputConfig(format=fmt, layout=layout_name)
    columns = info()
    fill = layout.rail_fill(options, RAIL_MAG_LIMITS, "dp1", tuple(BANDS))
    prov = {"rail_layout": fill.provenance()} if fill else {}
    metadata = OutputMetadata("bench", "", 1, layout.column_info(columns, options), prov)
    writer = plugins.writer(fmt)
    path = out / f"{fmt}-{layout_name}-{rows}.{layout.file_extension(writer.extension, options)}"
    sink = None
    for start in range(0, rows, BATCH):
        table = pa.Table.from_pandas(
            layout.apply(frame(start, min(BATCH, rows - start)), columns, options, fill), preserve_index=False
        )
        if sink is None:
            sink = writer.open(path, table.schema, metadata, options)
        sink.write(table)
    sink.close()
    return path.stat().st_size


def tables_io_size(rows: int, out: Path) -> int:
    """The same rows in the rail layout written by tables_io (RAIL's own writer)."""
    import tables_io

    from tsm_core.catalogs.rubin import RAIL_MAG_LIMITS
    from tsm_core.config import OutputConfig
    from tsm_core.science import layout

    options = OutputConfig(layout="rail")
    fill = layout.rail_fill(options, RAIL_MAG_LIMITS, "dp1", tuple(BANDS))
    data = layout.apply(frame(0, rows), info(), options, fill)
    strings = [c for c in data if pd.api.types.is_string_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])]
    table = {c: data[c].to_numpy().astype("S") if c in strings else data[c].to_numpy() for c in data}
    path = out / f"tables_io-{rows}.hdf5"
    tables_io.write({"photometry": table}, str(path))
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000,1000000", help="comma-separated row counts")
    args = parser.parse_args()
    print("| rows | layout | Parquet | HDF5 | HDF5 / Parquet | tables_io HDF5 |")
    print("|---:|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for rows in (int(r) for r in args.rows.split(",")):
            for layout_name in ("default", "rail"):
                pq_size = write("parquet", layout_name, rows, out)
                h5_size = write("hdf5", layout_name, rows, out)
                tio = f"{tables_io_size(rows, out) / 1e6:,.2f} MB" if layout_name == "rail" else ""
                print(
                    f"| {rows:,} | {layout_name} | {pq_size / 1e6:,.2f} MB | {h5_size / 1e6:,.2f} MB "
                    f"| {h5_size / pq_size:.2f} | {tio} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
