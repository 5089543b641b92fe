"""Independent computations the tests compare against (never the code under test)."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

DP1_BANDS = ("u", "g", "r", "i", "z", "y")


def write_objects(
    frame: pd.DataFrame,
    path: Path,
    margin_arcsec: float = 10.0,
    partition_rows: int = 500,
    ra: str = "coord_ra",
    dec: str = "coord_dec",
) -> None:
    """Write ``frame`` as a HATS collection with a margin, with LSDB."""
    from tsm_core.compute.noise import quiet_known_warnings

    quiet_known_warnings()  # before importing lsdb, which warns at import
    import lsdb

    cat = lsdb.from_dataframe(
        frame,
        ra_column=ra,
        dec_column=dec,
        catalog_name="objects",
        lowest_order=4,
        highest_order=9,
        partition_rows=partition_rows,
        margin_threshold=margin_arcsec,
    )
    cat.write_catalog(path, as_collection=True, overwrite=True, progress_bar=False)


def second_measurements(redshifts: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Second redshift measurements of ``n`` of ``redshifts``' sources, 0.2-0.8 arcsec north
    of the first, with ids ``<id>_b`` (so objects are matched by two redshifts)."""
    rng = np.random.default_rng(seed)
    twins = redshifts.sample(n, random_state=seed).copy()
    twins["id"] = twins["id"] + "_b"
    twins["dec"] = twins["dec"] + rng.uniform(0.2, 0.8, len(twins)) / 3600
    return twins


def brute_force_match(
    redshifts: pd.DataFrame, objects: pd.DataFrame, radius_arcsec: float, n_neighbors: int
) -> pd.DataFrame:
    """Every (redshift, object) pair within the radius with astropy, the n nearest kept."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    zc = SkyCoord(redshifts["ra"].to_numpy(), redshifts["dec"].to_numpy(), unit="deg")
    oc = SkyCoord(objects["coord_ra"].to_numpy(), objects["coord_dec"].to_numpy(), unit="deg")
    # returns (index into zc, index into oc, separation)
    zi, oi, sep, _ = oc.search_around_sky(zc, radius_arcsec * u.arcsec)
    pairs = pd.DataFrame({"zi": zi, "oi": oi, "dist": sep.to(u.arcsec).value})
    pairs = pairs.sort_values(["zi", "dist"]).groupby("zi").head(n_neighbors)
    return pd.DataFrame(
        {
            "id": redshifts["id"].to_numpy()[pairs["zi"]],
            "objectId": objects["objectId"].to_numpy()[pairs["oi"]],
            "dist": pairs["dist"].to_numpy(),
            "oi": pairs["oi"].to_numpy(),
        }
    ).reset_index(drop=True)


def brute_force_combination(keys: pd.DataFrame, radius: float) -> pd.DataFrame:
    """Redshifts of several catalogs combined by the rule, as a plain loop: walk them best
    first (highest flag, a star last and a missing flag just above it; smallest error, a
    missing one last; the catalog listed first; the row); each one not removed removes the
    redshifts of other catalogs within ``radius`` arcsec (astropy separations of every pair).
    ``keys`` has ``catalog`` (in list order), ``ra``, ``dec``, ``z_flag``, ``z_err``."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    keys = keys.reset_index(drop=True)
    listed = list(dict.fromkeys(keys["catalog"]))
    coords = SkyCoord(keys["ra"].to_numpy() * u.deg, keys["dec"].to_numpy() * u.deg)

    def rank(i: int) -> tuple:
        flag, err = float(keys["z_flag"].iat[i]), float(keys["z_err"].iat[i])
        flag = -2 if flag == 6 else -1 if np.isnan(flag) else flag
        return (-flag, np.inf if np.isnan(err) else err, listed.index(keys["catalog"].iat[i]), i)

    removed: set[int] = set()
    for i in sorted(range(len(keys)), key=rank):
        if i in removed:
            continue
        near = np.flatnonzero(coords[i].separation(coords).arcsec <= radius)
        removed.update(int(j) for j in near if keys["catalog"].iat[j] != keys["catalog"].iat[i])
    return keys.drop(index=sorted(removed)).reset_index(drop=True)


def ab_mag(flux: np.ndarray) -> np.ndarray:
    """AB magnitude of fluxes in nJy, written out independently: NaN for flux <= 0."""
    flux = np.asarray(flux, dtype=np.float64)
    out = np.full(flux.shape, np.nan)
    ok = flux > 0
    out[ok] = 31.4 - 2.5 * np.log10(flux[ok])
    return out


def ab_mag_err(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    flux = np.asarray(flux, dtype=np.float64)
    out = np.full(flux.shape, np.nan)
    ok = flux > 0
    out[ok] = 1.0857362047581294 * np.asarray(err, dtype=np.float64)[ok] / flux[ok]
    return out


def select_unique(pairs: list[dict], rule: str) -> set[tuple]:
    """The unique-galaxy rules written as plain loops over (zrow, objectId, dist, z_flag, z_err).

    Returns the kept (redshift id, objectId) pairs.
    """
    if rule == "closest":
        best_for_z: dict = {}
        for p in pairs:
            cur = best_for_z.get(p["id"])
            if cur is None or p["dist"] < cur["dist"]:
                best_for_z[p["id"]] = p
        best_for_o: dict = {}
        for p in best_for_z.values():
            cur = best_for_o.get(p["objectId"])
            if cur is None or p["dist"] < cur["dist"]:
                best_for_o[p["objectId"]] = p
        return {(p["id"], p["objectId"]) for p in best_for_o.values()}
    if rule in ("best_redshift", "best_redshift_per_object"):

        def rank(p):
            # homogenized scale: a star (6) ranks below any redshift, an unknown flag just above it
            flag = -2 if p["z_flag"] == 6 else p["z_flag"] if p["z_flag"] == p["z_flag"] else -1
            err = p["z_err"] if p["z_err"] == p["z_err"] else np.inf
            return (-flag, err, p["dist"])

        best: dict = {}
        for p in pairs:
            cur = best.get(p["objectId"])
            if cur is None or rank(p) < rank(cur):
                best[p["objectId"]] = p
        if rule == "best_redshift":  # one-to-one: each redshift keeps its nearest kept object
            nearest: dict = {}
            for p in best.values():
                cur = nearest.get(p["id"])
                if cur is None or p["dist"] < cur["dist"]:
                    nearest[p["id"]] = p
            best = nearest
        return {(p["id"], p["objectId"]) for p in best.values()}
    return {(p["id"], p["objectId"]) for p in pairs}


def writers_plugin(*writers):
    """A throw-away plugin offering ``writers`` (register it with the ``registered_plugin`` fixture)."""
    import tsm_core

    class Plugin:
        @tsm_core.hookimpl
        def tsm_writers(self):
            return list(writers)

    return Plugin()


def tsm_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``tsm ARGS`` in this process, through click's test runner, as ``subprocess.run(...,
    capture_output=True, text=True)`` would return it (exit code, stdout, stderr apart). For
    tests of what the command parses, prints and exits with; a test of the process itself
    (signals, start-up, memory, entry points) starts a real one (each pays some 3 s of imports)."""
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli

    result = CliRunner().invoke(get_cli(), list(args), obj={})
    return subprocess.CompletedProcess(["tsm", *args], result.exit_code, result.stdout, result.stderr)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedURL(str):
    """The base URL of a served ``tsm serve``, with the server's process id as ``pid``."""

    pid: int

    def __new__(cls, url: str, pid: int) -> ServedURL:
        served = super().__new__(cls, url)
        served.pid = pid
        return served


@contextmanager
def tsm_serve(env: dict[str, str], *args: str, timeout: float = 60):
    """A real ``tsm serve`` process on 127.0.0.1 (a free port); yields its base URL (a
    :class:`ServedURL`: a ``str`` with the process id as ``.pid``). What the server logged is
    printed when it stops (pytest shows it with a failure)."""
    import os
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.error
    import urllib.request

    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsm_core", "serve", "--port", str(port), *args],
        env=dict(os.environ, **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("tsm serve did not start") from None
                time.sleep(0.2)
        yield ServedURL(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        print("tsm serve logged:\n" + log.read())
        log.close()


def multipart_csv(name: str, csv: bytes, boundary: str = "b0undary") -> tuple[bytes, str]:
    """The body and Content-Type of a catalog upload (fields ``name`` and a ``file`` z.csv),
    written by hand so that a test controls every byte sent."""
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="z.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + csv
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def register_csv(url: str, headers: dict[str, str], csv: bytes, name: str = "z") -> dict:
    """Upload ``csv`` to a real server's ``POST /api/redshift-catalogs``; the registered catalog."""
    import json
    import urllib.request

    body, content_type = multipart_csv(name, csv)
    request = urllib.request.Request(
        url + "/api/redshift-catalogs", data=body, method="POST", headers={**headers, "Content-Type": content_type}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def numpy_depth(flux_err: np.ndarray, zero_point: float = 31.4) -> float:
    """Median 1-sigma depth ``-2.5 log10(fluxErr) + zero_point`` of the rows with an error > 0 (NaN if none)."""
    err = np.asarray(flux_err, dtype=np.float64)
    err = err[np.isfinite(err) & (err > 0)]
    return float(np.median(zero_point - 2.5 * np.log10(err))) if len(err) else float("nan")


def in_partitions_with(catalog_path: Path, objects: pd.DataFrame, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Mask of ``objects`` whose HATS partition (of the catalog at ``catalog_path``) holds at
    least one of the points ``ra``, ``dec``: the rows of the partitions a crossmatch reads.
    Pixels from the catalog's partition list, positions placed with cdshealpix."""
    import astropy.units as u
    import hats
    from cdshealpix.nested import lonlat_to_healpix

    opened = hats.read_hats(catalog_path)
    pixels = getattr(opened, "main_catalog", opened).get_healpix_pixels()
    keep = np.zeros(len(objects), dtype=bool)
    for order in sorted({p.order for p in pixels}):
        wanted = {p.pixel for p in pixels if p.order == order}
        points = set(lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg, order).tolist()) & wanted
        obj = lonlat_to_healpix(
            objects["coord_ra"].to_numpy(float) * u.deg, objects["coord_dec"].to_numpy(float) * u.deg, order
        )
        keep |= np.isin(obj, list(points))
    return keep


def sklearn_weights(train: np.ndarray, phot: np.ndarray, k: int) -> np.ndarray:
    """Lima et al. (2008) weights with scikit-learn: ``r`` the distance from each training row
    to its k-th nearest other training row, weight = (photometric rows within r, inclusive,
    / N_phot) / (k / N_train)."""
    from sklearn.neighbors import NearestNeighbors

    radius = NearestNeighbors(n_neighbors=k + 1, algorithm="kd_tree").fit(train).kneighbors(train)[0][:, k]
    tree = NearestNeighbors(algorithm="kd_tree").fit(phot)
    inside = np.array([len(tree.radius_neighbors(row[None], radius=r)[1][0]) for row, r in zip(train, radius)])
    return (inside / len(phot)) / (k / len(train))
