"""Shared fixtures: an isolated $TSM_HOME, HATS catalogs written by the tests, and
throw-away plugins registered for one test (:func:`registered_plugin`).

The suite is isolated from the machine it runs on before anything is imported: the
user's ``~/.dustmapsrc`` is never read (dustmaps reads its configuration once, at import),
only this project's plugins load (third-party plugins installed beside them would change
the listings), and one numba cache serves the whole run and its subprocesses.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_ISOLATION = Path(tempfile.mkdtemp(prefix="tsm-test-session-"))
os.environ["DUSTMAPS_CONFIG_FNAME"] = str(_ISOLATION / "no-dustmapsrc.json")
os.environ["TSM_PLUGINS"] = "dp1,dp02,dp2,writers,web"
os.environ.setdefault("TSM_NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "tsm-test-numba-cache"))

import numpy as np
import pandas as pd
import pluggy
import pytest

from helpers import DP1_BANDS, write_objects

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference-data"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Switch the run's numba cache on before the first HATS catalog is written, so that the
    pixel-tree functions are compiled once for the whole run (and its worker processes and
    subprocesses, which share $TSM_NUMBA_CACHE_DIR) rather than once per process."""
    if session.config.pluginmanager.hasplugin("dsession"):
        return  # pytest-xdist's controller: it runs no test
    from tsm_core.compute import numba_cache

    numba_cache.enable(Path(os.environ[numba_cache.CACHE_DIR_ENV]))


#: what a test marked ``slow``, or a module fixture (a server, runs its tests share), weighs in
#: quick tests when files are handed to the workers
SLOW_WEIGHT = 40


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadfile --no-loadscope-reorder``), the heaviest files are
    handed out first, so that the workers finish together: a file weighs its number of tests,
    and :data:`SLOW_WEIGHT` more for each test marked ``slow`` and each module fixture its
    tests use. (xdist's own order, by the number of tests alone, sent the files of a few long
    tests -- real processes, servers, kernels, shared runs -- last, where one of them kept a
    worker busy alone.) Without xdist, pytest's order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    weight: dict[str, int] = {}
    module_fixtures: dict[str, set[str]] = {}
    for item in items:
        file = item.nodeid.split("::")[0]
        weight[file] = weight.get(file, 0) + (SLOW_WEIGHT if item.get_closest_marker("slow") else 1)
        definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        shared = {name for name, defs in definitions.items() if defs and defs[-1].scope == "module"}
        module_fixtures.setdefault(file, set()).update(shared)
    for file, names in module_fixtures.items():
        weight[file] += SLOW_WEIGHT * len(names)
    items.sort(key=lambda item: -weight[item.nodeid.split("::")[0]])  # stable: each file keeps its order


def shared_build(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder ``name`` filled once per test run by ``build(folder)``, then only read.

    With pytest-xdist each worker process has its own session, so a session fixture would
    build its data once per worker; here the first worker builds it in the run's common temp
    folder under a file lock and the others reuse it. Without xdist it is a plain mktemp.
    Only for data that no test changes.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        path = tmp_path_factory.mktemp(name)
        build(path)
        return path
    root = tmp_path_factory.getbasetemp().parent / "shared"  # common to the run's workers
    root.mkdir(exist_ok=True)
    path, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            path.mkdir(exist_ok=True)
            build(path)
            done.touch()
    return path


def isolate(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``$TSM_HOME`` at ``home`` and hide every location of the machine's own catalogs
    and dust maps (what :func:`tsm_home` does for each test; for module fixtures, with a
    ``pytest.MonkeyPatch.context()``)."""
    monkeypatch.setenv("TSM_HOME", str(home))
    monkeypatch.delenv("TSM_DP1_PATH", raising=False)
    monkeypatch.delenv("TSM_DP02_PATH", raising=False)
    monkeypatch.delenv("TSM_DP2_PATH", raising=False)
    # the releases' published locations (/rubin/..., NERSC, CANFAR) are looked up under an
    # empty folder, so that no test sees a real catalog of the machine it runs on
    monkeypatch.setenv("TSM_LOCATIONS_ROOT", str(home.parent / "no-published-catalogs"))
    monkeypatch.delenv("TSM_DUSTMAPS_DIR", raising=False)
    return home


@pytest.fixture(autouse=True)
def tsm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own registry, caches and samples (and the known-noise filters)."""
    from tsm_core.compute.noise import quiet_known_warnings

    quiet_known_warnings()
    return isolate(tmp_path / "tsm-home", monkeypatch)


@pytest.fixture
def registered_plugin() -> Iterator[Callable[[object, str], object]]:
    """Register throw-away plugins for the duration of one test (datasette's "Registering a
    plugin for the duration of a test"): ``registered_plugin(obj, "name")`` registers ``obj``
    under ``name`` in the process's plugin manager and returns it; every plugin registered so
    is unregistered when the test ends, passed or failed."""
    from tsm_core import plugins

    registered: list[tuple[pluggy.PluginManager, object]] = []

    def register(plugin: object, name: str) -> object:
        pm = plugins.get_plugin_manager()
        pm.register(plugin, name=name)
        registered.append((pm, plugin))
        return plugin

    yield register
    for pm, plugin in reversed(registered):
        if pm.is_registered(plugin):
            pm.unregister(plugin)


@pytest.fixture(scope="session")
def reference() -> Path:
    if not REFERENCE.exists():
        pytest.skip(f"shared reference data not found at {REFERENCE}")
    return REFERENCE


def _scene(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Objects and redshifts in two patches, one across RA = 0/360, dense enough that
    several objects lie within a few arcsec of each redshift and partitions are small."""
    rng = np.random.default_rng(seed)
    centres = [(0.0, 1.0), (45.0, -30.0)]
    zra, zdec = [], []
    for ra0, dec0 in centres:
        n = 400
        r = 0.25 * np.sqrt(rng.uniform(0, 1, n))
        a = rng.uniform(0, 2 * np.pi, n)
        dec = dec0 + r * np.sin(a)
        zra.append(np.mod(ra0 + r * np.cos(a) / np.cos(np.radians(dec)), 360))
        zdec.append(dec)
    zra, zdec = np.concatenate(zra), np.concatenate(zdec)
    nz = len(zra)
    redshifts = pd.DataFrame(
        {
            "id": [f"spec{i:05d}" for i in range(nz)],
            "ra": zra,
            "dec": zdec,
            "z": np.round(rng.uniform(0.01, 2.0, nz), 4),
            "z_err": rng.uniform(1e-4, 1e-3, nz),
            "z_flag": rng.choice([1, 2, 3, 4], nz),
            "survey": rng.choice(["DESI", "VVDS", "2dFLenS"], nz),
        }
    )
    # 0-4 objects within ~4 arcsec of each redshift, plus a uniform background
    k = rng.integers(0, 5, nz)
    near = np.repeat(np.arange(nz), k)
    off = rng.normal(0, 1.6 / 3600, (len(near), 2))
    odec = zdec[near] + off[:, 1]
    ora = np.mod(zra[near] + off[:, 0] / np.cos(np.radians(odec)), 360)
    bra, bdec = [], []
    for ra0, dec0 in centres:
        n = 3000
        dec = dec0 + rng.uniform(-0.3, 0.3, n)
        bra.append(np.mod(ra0 + rng.uniform(-0.3, 0.3, n) / np.cos(np.radians(dec)), 360))
        bdec.append(dec)
    ora = np.concatenate([ora, *bra])
    odec = np.concatenate([odec, *bdec])
    no = len(ora)
    objects = pd.DataFrame(
        {
            "objectId": (np.int64(1) << 60) + rng.permutation(no).astype(np.int64) * 1000 + 7,
            "coord_ra": ora,
            "coord_dec": odec,
        }
    )
    for band in DP1_BANDS:
        flux = rng.lognormal(np.log(2000), 1.5, no) - 300  # some negative fluxes
        flux[rng.uniform(0, 1, no) < 0.05] = np.nan
        objects[f"{band}_cModelFlux"] = flux.astype(np.float32)
        objects[f"{band}_cModelFluxErr"] = (np.abs(rng.normal(50, 10, no))).astype(np.float32)
        objects[f"{band}_gaap1p0Flux"] = (flux * 0.7).astype(np.float32)
        objects[f"{band}_gaap1p0FluxErr"] = np.full(no, 40, np.float32)
    objects["ebv"] = rng.uniform(0.01, 0.1, no).astype(np.float32)
    objects["refExtendedness"] = rng.choice([0.0, 1.0], no).astype(np.float32)
    return objects, redshifts


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A DP1-shaped HATS object catalog (many small partitions, margin 10 arcsec, crossing
    RA = 0) and a redshift catalog, with the source tables for brute-force checks."""
    objects, redshifts = _scene(seed=7)

    def build(base: Path) -> None:
        write_objects(objects, base / "objects", margin_arcsec=10.0, partition_rows=400)
        redshifts.to_parquet(base / "redshifts.parquet", index=False)

    base = shared_build(tmp_path_factory, "scene", build)
    objects_path, redshift_path = base / "objects", base / "redshifts.parquet"
    return {"objects": objects, "redshifts": redshifts, "objects_path": objects_path, "redshift_path": redshift_path}


@pytest.fixture(scope="session")
def coarse_objects_path(scene: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`scene`'s objects written again in a few large partitions (20000 rows each), for
    tests that check a result does not depend on the partitioning. Read only."""
    base = shared_build(
        tmp_path_factory, "coarse", lambda base: write_objects(scene["objects"], base / "coarse", partition_rows=20000)
    )
    return base / "coarse"


@pytest.fixture
def base_config(scene: dict, tmp_path: Path) -> dict:
    """A DP1 run config over :func:`scene`, written to ``tmp_path/out``."""
    return scene_config(scene, tmp_path / "out")


def scene_config(scene: dict, out: Path) -> dict:
    """:func:`base_config` written to ``out`` (for module fixtures, which have no ``tmp_path``)."""
    return {
        "name": "test set",
        "redshift_catalog": {"path": str(scene["redshift_path"])},
        "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
        "crossmatch": {"radius_arcsec": 3.0, "n_neighbors": 1},
        "output": {"format": "parquet", "directory": str(out)},
        "compute": {"scheduler": "synchronous"},
    }
