"""Upload limits that hold after decompression, tried against a real ``tsm serve`` on
127.0.0.1 over real HTTP: gzip-CSV, Parquet, FITS and HDF5 bombs (kilobytes sent, hundreds of
megabytes or millions of rows once read) are refused through both APIs within seconds, with
the limit named, while the server's memory (its VmHWM in ``/proc``) stays bounded; files
under the limits still register."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from helpers import tsm_serve

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to measure memory")

ADMIN = "limits-admin-token"
DECOMPRESSED_MB = 100
MAX_ROWS = 1_000_000
#: the most the server's resident memory may grow while it refuses every bomb (read whole,
#: the gzip bomb alone is 300 MB of text, the Parquet bombs 480 MB of float64 and 1 GB of strings,
#: the HDF5 string bomb 800 MB)
MAX_GROWTH_MB = 300
#: an answer slower than this means the server read the file
MAX_SECONDS = 10


def memory_kb(pid: int, key: str) -> int:
    """``key`` (VmRSS, VmHWM) of process ``pid``, in kB, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# -- the bombs, each built in about a second and small on disk ----------------------------
def gzip_csv_bytes(path: Path) -> None:
    """300 MB of one repeated 1 kB CSV line (300 000 rows, under the row limit), about 1 kB
    of gzip per megabyte."""
    block = (b"150.0,2.0,0.5," + b"x" * 1010 + b"\n") * 1024
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(b"ra,dec,z,note\n")
        for _ in range(300 * 2**20 // len(block)):
            out.write(block)


def gzip_csv_rows(path: Path) -> None:
    """Twice the row limit, 12 MB once decompressed (under the byte limit)."""
    with gzip.open(path, "wb") as out:
        out.write(b"ra,dec,z\n" + b"1,2,3\n" * (2 * MAX_ROWS))


def gzip_csv_columns(path: Path) -> None:
    """A 3 kB gzip whose header names 1.5 million (empty) columns: pandas takes about 1 kB a
    column, whatever the bytes and rows."""
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(b"ra,dec,z" + b"," * 1_500_000 + b"\n1,2,0.5\n")


def gzip_csv_long_line(path: Path) -> None:
    """A short header, then a row of 3 million empty fields."""
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(b"ra,dec,z\n1,2,0.5" + b"," * 3_000_000 + b"\n")


def _repeated_parquet(path: Path, rows_per_group: int, groups: int, columns: int) -> None:
    """``groups`` row groups of one repeated float64 value per column (dictionary + RLE encoded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows_per_group, dtype=np.int32)), pa.array([0.5]))
    table = pa.table({f"c{i}": values for i in range(columns)})
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for _ in range(groups):
            writer.write_table(table)


def parquet_rows(path: Path) -> None:
    """20 million rows of (ra, dec, z) all 0.5: 480 MB of float64 once decoded."""
    _repeated_parquet(path, 1_000_000, 20, 3)


def parquet_bytes(path: Path) -> None:
    """Under the row limit but 20 float64 columns: 144 MB once decoded."""
    _repeated_parquet(path, 900_000, 1, 20)


def parquet_strings(path: Path) -> None:
    """Half the row limit of one 2 kB string (a dictionary of one value): 1 GB once decoded,
    which no footer field tells."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    indices = pa.array(np.zeros(MAX_ROWS // 2, dtype=np.int32))
    number = pa.DictionaryArray.from_arrays(indices, pa.array([0.5]))
    pq.write_table(
        pa.table(
            {
                "ra": number,
                "dec": number,
                "z": number,
                "name": pa.DictionaryArray.from_arrays(indices, pa.array(["x" * 2000])),
            }
        ),
        path,
    )


def fits_rows(path: Path) -> None:
    """A gzipped FITS table of twice the row limit (48 MB once decompressed)."""
    from astropy.io import fits

    columns = [fits.Column(name=n, format="D", array=np.zeros(2 * MAX_ROWS)) for n in ("ra", "dec", "z")]
    plain = path.with_suffix("")
    fits.BinTableHDU.from_columns(columns).writeto(plain)
    with open(plain, "rb") as src, gzip.open(path, "wb", compresslevel=1) as out:
        shutil.copyfileobj(src, out)
    plain.unlink()


def hdf5_rows(path: Path) -> None:
    """Datasets of twice the row limit that are never written (only their fill value)."""
    import h5py

    with h5py.File(path, "w") as fh:
        for name in ("ra", "dec", "z"):
            fh.create_dataset(name, shape=(2 * MAX_ROWS,), dtype="f8", chunks=(65536,), compression="gzip")


def hdf5_strings(path: Path) -> None:
    """Variable-length strings whose 400 000 descriptors all point at one 2 kB heap object:
    800 MB once read (the HDF5 library reads the object once per value)."""
    import zlib

    import h5py

    rows, chunk = 400_000, 65536
    with h5py.File(path, "w") as fh:
        for name in ("ra", "dec", "z"):
            fh.create_dataset(name, shape=(rows,), dtype="f8", chunks=(chunk,), compression="gzip")
        names = fh.create_dataset("name", shape=(rows,), dtype=h5py.string_dtype(), chunks=(chunk,), compression="gzip")
        names[0] = "x" * 2000  # the only heap object; the other values are empty (no heap object)
    with h5py.File(path, "r+") as fh:
        names = fh["name"]
        descriptor = zlib.decompress(names.id.read_direct_chunk((0,))[1])[:16]  # length, heap address, index
        for start in range(0, rows, chunk):
            names.id.write_direct_chunk((start,), zlib.compress(descriptor * chunk, 9), 0)


BOMBS = {
    "bomb.csv.gz": (gzip_csv_bytes, 413, "max_upload_decompressed_mb"),
    "rows.csv.gz": (gzip_csv_rows, 422, "max_upload_rows"),
    "columns.csv.gz": (gzip_csv_columns, 422, "more than 1000 columns"),
    "long-line.csv.gz": (gzip_csv_long_line, 422, "longer than 1 MB"),
    "rows.parquet": (parquet_rows, 422, "max_upload_rows"),
    "wide.parquet": (parquet_bytes, 413, "max_upload_decompressed_mb"),
    "strings.parquet": (parquet_strings, 413, "max_upload_decompressed_mb"),
    "rows.fits.gz": (fits_rows, 422, "max_upload_rows"),
    "rows.h5": (hdf5_rows, 422, "max_upload_rows"),
    "strings.h5": (hdf5_strings, 413, "max_upload_decompressed_mb"),
}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    made = {}
    for name, (build, _, _) in BOMBS.items():
        build(folder / name)
        made[name] = folder / name
        assert made[name].stat().st_size < 2**20, f"{name} should be a small file"
    return made


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A real ``tsm serve`` with a decompressed-size limit from the environment and a row
    limit from its option; a user, alice; one normal upload through each API first, so the
    readers are imported before the memory baseline is taken."""
    from tsm_core.products.registry import Registry
    from tsm_web.users import Users

    home = tmp_path_factory.mktemp("limits-home")
    token = Users(Registry.at_home(home)).add("alice")[1]
    env = {"TSM_HOME": str(home), "TSM_API_TOKEN": ADMIN, "TSM_MAX_UPLOAD_DECOMPRESSED_MB": str(DECOMPRESSED_MB)}
    small = tmp_path_factory.mktemp("small") / "small.csv"
    frame = pd.DataFrame(
        {
            "id": [f"galaxy-{i}" for i in range(50)],
            "ra": np.linspace(10, 11, 50),
            "dec": np.linspace(-1, 1, 50),
            "z": np.linspace(0.1, 1, 50),
        }
    )
    frame.to_csv(small, index=False)
    with tsm_serve(env, "--max-upload-rows", str(MAX_ROWS)) as url:
        auth = {"Authorization": f"Bearer {token}"}
        assert json_upload(url, auth, small, "warm-up").status_code == 201
        assert pz_upload(url, auth, small).status_code == 201
        yield {
            "url": url,
            "pid": url.pid,
            "auth": auth,
            "home": home,
            "small": small,
            "frame": frame,
            "baseline_kb": memory_kb(url.pid, "VmRSS"),
        }


def json_upload(url: str, auth: dict, path: Path, name: str) -> requests.Response:
    with open(path, "rb") as fh:
        return requests.post(
            f"{url}/api/redshift-catalogs",
            headers=auth,
            timeout=120,
            data={"name": name, "columns": "ra=ra,dec=dec,z=z"},
            files={"file": (path.name, fh)},
        )


def pz_product(url: str, auth: dict, name: str) -> int:
    created = requests.post(
        f"{url}/api/products/",
        headers=auth,
        timeout=30,
        json={"display_name": name, "product_type": 1, "release": None, "official_product": False, "status": 0},
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def pz_upload(url: str, auth: dict, path: Path, product: int | None = None) -> requests.Response:
    """``POST /api/product-files/`` of ``path`` to a new (or the given) product being registered."""
    product = product or pz_product(url, auth, path.name.split(".")[0])
    with open(path, "rb") as fh:
        return requests.post(
            f"{url}/api/product-files/",
            headers=auth,
            timeout=120,
            data={"product": product, "role": 0},
            files={"file": (path.name, fh)},
        )


def uploads_left(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "uploads").iterdir())


@pytest.mark.parametrize("api", ["json", "pzserver"])
@pytest.mark.parametrize("bomb", list(BOMBS))
def test_bomb_refused_quickly_with_bounded_memory(service, bombs, api, bomb):
    _, status, limit = BOMBS[bomb]
    url, auth = service["url"], service["auth"]
    kept = uploads_left(service["home"])
    start = time.monotonic()
    answer = json_upload(url, auth, bombs[bomb], f"bomb-{bomb}") if api == "json" else pz_upload(url, auth, bombs[bomb])
    elapsed = time.monotonic() - start
    assert answer.status_code == status, answer.text
    assert limit in answer.text
    if api == "json":
        assert answer.json()["field"] == "file" and "\n" not in answer.json()["message"]
    else:
        assert list(answer.json()) == ["file"] and len(answer.json()["file"]) == 1
    assert elapsed < MAX_SECONDS
    assert uploads_left(service["home"]) == kept, "a refused upload must be deleted"
    growth_mb = (memory_kb(service["pid"], "VmHWM") - service["baseline_kb"]) / 1024
    assert growth_mb < MAX_GROWTH_MB, f"the server grew by {growth_mb:.0f} MB"


def test_refused_bomb_is_not_registered(service, bombs):
    url, auth = service["url"], service["auth"]
    assert json_upload(url, auth, bombs["rows.parquet"], "never").status_code == 422
    names = [c["name"] for c in requests.get(f"{url}/api/redshift-catalogs", headers=auth, timeout=30).json()]
    assert "never" not in names
    product = pz_product(url, auth, "never")
    assert pz_upload(url, auth, bombs["rows.parquet"], product).status_code == 422
    # nothing was stored for the product: reading its main file is refused
    assert requests.get(f"{url}/api/products/{product}/registry/", headers=auth, timeout=30).status_code == 400


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` written with each format's own library, by the file's suffix."""
    if path.name.endswith(".csv.gz"):
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.name.endswith((".fits", ".fits.gz")):
        from astropy.table import Table

        Table.from_pandas(frame).write(path, format="fits")
    else:
        import h5py

        with h5py.File(path, "w") as fh:
            for column in frame:  # strings as h5py writes them: variable-length
                values = frame[column].to_numpy()
                fh.create_dataset(column, data=values, dtype=h5py.string_dtype() if values.dtype == object else None)


@pytest.mark.parametrize("suffix", [".csv.gz", ".parquet", ".fits.gz", ".h5"])
def test_upload_under_the_limits_registers(service, tmp_path, suffix):
    """A file under every limit registers through both APIs, with all its rows."""
    url, auth, frame = service["url"], service["auth"], service["frame"]
    path = tmp_path / f"fine{suffix}"
    write_frame(frame, path)
    registered = json_upload(url, auth, path, f"fine{suffix}")
    assert registered.status_code == 201, registered.text
    assert registered.json()["n_rows"] == len(frame)
    product = pz_product(url, auth, "fine")
    assert pz_upload(url, auth, path, product).status_code == 201
    read = requests.get(f"{url}/api/products/{product}/registry/", headers=auth, timeout=30)
    assert read.status_code == 200, read.text
    for content in requests.get(f"{url}/api/product-contents/?product={product}", headers=auth, timeout=30).json()[
        "results"
    ]:
        patched = requests.patch(
            f"{url}/api/product-contents/{content['id']}/",
            headers=auth,
            timeout=30,
            data={"alias": content["column_name"]},
        )
        assert patched.status_code == 200, patched.text
    published = requests.patch(f"{url}/api/products/{product}/", headers=auth, timeout=60, data={"status": 1})
    assert published.status_code == 200 and published.json()["status"] == 1, published.text


def test_limits_from_config_environment_and_options(tmp_path, monkeypatch):
    """Options override the environment, which overrides the config file; a bad value names its key."""
    from tsm_core.errors import ConfigError
    from tsm_web.settings import ServerSettings

    config = tmp_path / "server.yaml"
    config.write_text("max_upload_rows: 3\nmax_upload_decompressed_mb: 5\n")
    limits = ServerSettings.load(config).upload_limits
    assert (limits.max_rows, limits.max_decompressed_bytes) == (3, 5 * 2**20)
    monkeypatch.setenv("TSM_MAX_UPLOAD_ROWS", "4")
    assert ServerSettings.load(config).upload_limits.max_rows == 4
    assert ServerSettings.load(config, max_upload_rows=7).upload_limits.max_rows == 7
    assert ServerSettings.load().upload_limits == type(limits)(200 * 2**20, 2000 * 2**20, 4)
    monkeypatch.setenv("TSM_MAX_UPLOAD_DECOMPRESSED_MB", "lots")
    with pytest.raises(ConfigError, match="max_upload_decompressed_mb"):
        ServerSettings.load()


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.bz2"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_csv_rows_counted_exactly_at_the_limit(tmp_path, newline, suffix, final_newline):
    """Five rows pass a limit of five, whatever the line ends and compression; six do not."""
    import bz2

    from tsm_web.uploads import UploadLimits, UploadRefused, check_limits

    limits = UploadLimits(max_bytes=2**20, max_decompressed_bytes=2**20, max_rows=5)
    opener = {".csv": open, ".csv.gz": gzip.open, ".csv.bz2": bz2.open}[suffix]
    for rows, refused in ((5, False), (6, True)):
        text = newline.join(["ra,dec,z", *[f"{i},0,0.5" for i in range(rows)]]) + (newline if final_newline else "")
        path = tmp_path / f"{rows}{suffix}"
        with opener(path, "wb") as out:
            out.write(text.encode())
        assert len(pd.read_csv(path)) == rows  # what the reader will see
        if refused:
            with pytest.raises(UploadRefused, match="more than 5 rows") as caught:
                check_limits(path, limits)
            assert caught.value.status == 422
        else:
            check_limits(path, limits)


def test_unreadable_metadata_refused_in_one_line(tmp_path):
    from tsm_web.uploads import UploadLimits, UploadRefused, check_limits

    limits = UploadLimits(max_bytes=2**20, max_decompressed_bytes=2**20, max_rows=5)
    for name in ("broken.parquet", "broken.fits", "broken.h5", "broken.fits.gz"):
        path = tmp_path / name
        path.write_bytes(b"not a catalog\n" * 10)
        with pytest.raises(UploadRefused) as caught:
            check_limits(path, limits)
        assert caught.value.status == 422 and "\n" not in caught.value.message
        assert str(tmp_path) not in caught.value.message


@pytest.mark.parametrize("api", ["json", "pzserver"])
def test_hdf5_with_a_code_running_pickle_refused(service, tmp_path, api):
    """PyTables unpickles string attributes, so pandas' HDF reader would run a pickle hidden
    in one: the upload is refused before anything loads it."""
    pytest.importorskip("tables")
    import h5py

    marker = tmp_path / "the-pickle-ran"
    path = tmp_path / "evil.h5"
    service["frame"][["ra", "dec", "z"]].to_hdf(path, key="df", format="table")
    with h5py.File(path, "r+") as fh:  # protocol 0: builtins.open(marker, "w")
        fh["df/table"].attrs["non_index_axes"] = np.bytes_(f"c__builtin__\nopen\n(V{marker}\nVw\ntR.".encode())
    pd.read_hdf(path)  # the danger is real: reading it calls open()
    assert marker.exists()
    marker.unlink()
    answer = (
        json_upload(service["url"], service["auth"], path, "evil")
        if api == "json"
        else pz_upload(service["url"], service["auth"], path)
    )
    assert answer.status_code == 422, answer.text
    assert "pickled object" in answer.text and "non_index_axes" in answer.text
    assert not marker.exists()
