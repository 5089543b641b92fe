"""Faults from outside: a full disk under every writer that could crash, a margin of
another catalog, warnings when runs share the machine."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

import tsm_core
from helpers import write_objects
from tsm_core.errors import CatalogError
from tsm_core.products.registry import Registry


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs where mounting is allowed (root), else None (a file-size limit is used)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _limit_file_size() -> None:  # in the child: writes past 512 kB fail with EFBIG, not SIGXFSZ
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, 512 * 1024))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["hdf5", "fits", "hats", "parquet", "csv", "ecsv"])
def test_full_disk_one_line_nothing_left(base_config, tmp_path, tsm_home, small_disk, fmt):
    """HDF5 crashed with SIGSEGV on a full disk, FITS printed a FITSIO dump."""
    base_config["crossmatch"]["n_neighbors"] = 3
    base_config["output"]["format"] = fmt
    out = (small_disk or tmp_path) / "out"
    base_config["output"]["directory"] = str(out)
    if small_disk is not None:  # leave less room than the file needs
        (small_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 160 * 1024))
    config = tmp_path / "full.yaml"
    config.write_text(yaml.safe_dump(base_config))
    done = subprocess.run(
        [sys.executable, "-m", "tsm_core", "-q", "run", str(config)],
        capture_output=True,
        text=True,
        timeout=240,
        preexec_fn=None if small_disk is not None else _limit_file_size,
    )
    assert done.returncode == 1, (done.returncode, done.stderr)  # not -11 (SIGSEGV)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    if small_disk is not None:
        assert lines[0].startswith(f"Error: output.directory {out}: no space left on the device (")
        assert "free)" in lines[0]
    else:
        assert lines[0].startswith(f"Error: output.directory {out}: ") and "free)" in lines[0]
    assert list(out.iterdir()) == []
    [product] = Registry.at_home(tsm_home).products()
    assert product.status == "failed" and "output.directory" in product.error


def test_foreign_margin_refused(scene, base_config, tmp_path):
    """A margin of another catalog (another pixel tree, or the same tree with other rows)."""
    from conftest import _scene
    from tsm_core.catalogs.objects import check_margin
    from tsm_core.plugins.manager import object_catalog

    own = next(p for p in Path(scene["objects_path"]).iterdir() if p.is_dir() and "arcs" in p.name)
    check_margin(object_catalog("dp1"), str(scene["objects_path"]), str(own))  # its own margin, given apart, is fine

    objects, _ = _scene(seed=7)
    objects["coord_ra"] = (objects["coord_ra"] + 0.5 / 3600) % 360  # same partitions, other objects
    shifted = tmp_path / "shifted"
    write_objects(objects, shifted, margin_arcsec=10.0, partition_rows=400)
    base_config["object_catalog"]["margin_path"] = str(next(p for p in shifted.iterdir() if "arcs" in p.name))
    with pytest.raises(CatalogError, match="object_catalog.margin_path|does not belong to the catalog") as info:
        tsm_core.run(base_config)
    assert info.value.key == "object_catalog.margin_path"
    assert "are not objects of the catalog" in str(info.value)

    base_config["object_catalog"]["margin_path"] = str(scene["objects_path"] / "objects")
    with pytest.raises(CatalogError, match="is not a margin catalog"):
        tsm_core.run(base_config)


def test_warnings_stay_quiet_when_filters_are_lost():
    """Eight `tsm -q run` at once printed thousands of Pandas4Warning lines: libraries wrap
    code in warnings.catch_warnings() in worker threads, which is not thread-safe, and an
    interleaving can leave a simplefilter("always") in force. The CLI's display guard
    still drops the known noise; other warnings still show."""
    code = f"""
import sys, warnings
from pandas.errors import Pandas4Warning
from tsm_core.cli.main import _guard_warning_display
from tsm_core.compute.noise import quiet_known_warnings
quiet_known_warnings()
_guard_warning_display()
warnings.simplefilter("always")  # what a lost race leaves behind
lsdb_code = compile("import warnings\\nfor _ in range(50): warnings.warn('inplace is deprecated', Pandas4Warning)",
                    "{sys.prefix}/lib/python3/site-packages/lsdb/catalog/fake.py", "exec")
exec(lsdb_code, {{"__name__": "lsdb.catalog.fake", "Pandas4Warning": Pandas4Warning}})
warnings.warn("{uuid.uuid4().hex} a warning of our own", UserWarning)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Pandas4Warning" not in done.stderr
    assert "a warning of our own" in done.stderr


def test_library_installs_no_warning_filters(base_config):
    import warnings

    tsm_core.run(base_config)  # imports the libraries, which add their own filters
    before = list(warnings.filters)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # as the test runner left them
    base_config["name"] = "second"
    tsm_core.run(base_config)
    assert warnings.filters == before
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the library installs no signal handler
    assert os.getpid()  # nothing else of the process changed that we can see
