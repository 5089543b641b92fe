"""Deterministic synthetic samples of a release, for fresh machines, the demo and tests.

:func:`make_sample` writes, for an :class:`~tsm_core.plugins.records.ObjectCatalog` that has a
:class:`~tsm_core.plugins.records.SampleSpec`:

* ``objects/``: a HATS collection (with a margin cache) using the release's column
  names and dtypes, laid out as the release publishes it where it declares a
  :class:`~tsm_core.plugins.records.CollectionLayout` (DP1 and DP2: ``object_lc``, its 5 arcsec
  margin ``object_lc_5arcs``, the id index ``object_lc_objectId`` and a
  ``hats_cols_default`` without cModel, named in ``collection.properties``), objects in the release's real footprint, galaxy fluxes in nJy
  with a redshift-colour relation and Galactic extinction, errors from the release's
  depths (so faint objects have negative fluxes), NaN in bands not observed;
* ``redshifts.parquet``: a redshift catalog in the Combine Redshift Catalogs format
  (``id, ra, dec, z, z_err, z_flag, survey``) whose sources sit a fraction of an
  arcsecond from some of the objects, with a few sources matching no object and a
  few objects observed by two surveys.

The same arguments always give the same files. The collection holds a marker file
(:data:`~tsm_core.plugins.records.SAMPLE_MARKER`) so that a run on it says, in its provenance, that
its objects are synthetic.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from tsm_core.compute import numba_cache
from tsm_core.config import tsm_home
from tsm_core.plugins.locations import SAMPLE_MARKER, SAMPLE_OBJECTS_DIR
from tsm_core.plugins.records import ObjectCatalog, SampleSpec
from tsm_core.science.magnitudes import NJY_ZERO_POINT

log = logging.getLogger(__name__)

SURVEYS = ("DESI", "2dFLenS", "VVDS", "GAMA", "6dFGS")
#: colour of each band minus i, as a function of redshift z and galaxy type t (0 blue, 1 red)
_COLOURS = {
    "u": lambda z, t: 1.0 + 0.6 * np.tanh(2 * z) + 0.6 * t + 2.0 * np.clip(z - 2.5, 0, None),
    "g": lambda z, t: 0.45 + 0.5 * np.tanh(2.2 * z) + 0.35 * t,
    "r": lambda z, t: 0.15 + 0.35 * np.tanh(1.5 * z) + 0.1 * t,
    "i": lambda z, t: np.zeros_like(z),
    "z": lambda z, t: -0.1 - 0.35 * np.clip(np.tanh(1.3 * (z - 0.3)), 0, None) - 0.05 * t,
    "y": lambda z, t: -0.15 - 0.5 * np.clip(np.tanh(1.1 * (z - 0.4)), 0, None) - 0.08 * t,
}
#: fraction of the total (cModel) flux that each flux family measures, for a typical galaxy
_FAMILY_FRACTION = {
    "cModel": 1.0,
    "free_cModel": 1.0,
    "psf": 0.55,
    "free_psf": 0.55,
    "calib": 0.75,
    "kron": 0.93,
    "gaapOptimal": 0.8,
    "gaapPsf": 0.6,
    "gaap0p5": 0.45,
    "gaap0p7": 0.55,
    "gaap1p0": 0.68,
    "gaap1p5": 0.8,
    "gaap2p5": 0.9,
    "gaap3p0": 0.94,
}
#: A_b / E(B-V) used to redden the synthetic fluxes (CCM89 with DC2 throughputs)
_REDDENING = {"u": 4.81, "g": 3.64, "r": 2.70, "i": 2.06, "z": 1.58, "y": 1.31}


def sky_ebv(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """A smooth E(B-V) that grows towards the Galactic plane (a stand-in for SFD)."""
    from astropy.coordinates import SkyCoord

    gal = SkyCoord(ra, dec, unit="deg", frame="icrs").galactic
    l, b = np.radians(gal.l.deg), np.radians(gal.b.deg)
    ebv = 0.012 / np.clip(np.abs(np.sin(b)), 0.05, None) * (1 + 0.3 * np.sin(3 * l) * np.cos(2 * b))
    return np.clip(ebv, 0.003, 1.0)


def _positions(rng: np.random.Generator, spec: SampleSpec, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    which = rng.integers(0, len(spec.fields), n)
    centre_ra = np.array([f.ra for f in spec.fields])[which]
    centre_dec = np.array([f.dec for f in spec.fields])[which]
    radius = np.array([f.radius_deg for f in spec.fields])[which] * np.sqrt(rng.uniform(0, 1, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    dec = np.clip(centre_dec + radius * np.sin(angle), -89.9, 89.9)
    ra = np.mod(centre_ra + radius * np.cos(angle) / np.cos(np.radians(dec)), 360.0)
    return ra, dec, which


def _galaxies(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """True redshift, type, i magnitude and star flag of ``n`` objects."""
    z = rng.gamma(shape=3.0, scale=0.28, size=n)
    kind = rng.beta(0.7, 0.9, n)
    # counts rise steeply to the faint end, as in a deep imaging survey
    i_mag = 27.5 - rng.exponential(1.6, n)
    i_mag = np.clip(i_mag + 2.5 * np.log10(1 + z) * 0.5, 16.0, 28.5)
    star = rng.uniform(0, 1, n) < 0.08
    z[star] = 0.0
    return z, kind, i_mag, star


def _spec(release: ObjectCatalog) -> SampleSpec:
    """The sample specification of ``release`` (an error for a release without one)."""
    if release.sample is None:
        raise ValueError(f"release {release.name!r} has no sample specification")
    return release.sample


def object_table(release: ObjectCatalog, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A synthetic Object table of ``release`` and the true redshift of each row."""
    spec = _spec(release)
    rng = np.random.default_rng(seed)
    ra, dec, field_index = _positions(rng, spec, n)
    z, kind, i_mag, star = _galaxies(rng, n)
    ebv = sky_ebv(ra, dec)
    ids = spec.id_base + rng.permutation(np.arange(n, dtype=np.int64) * 7 + 3)
    columns: dict[str, np.ndarray] = {
        release.id_column: ids,
        release.ra_column: ra,
        release.dec_column: dec,
    }
    dtype = np.dtype(spec.flux_dtype)
    for band in release.bands:
        true_mag = i_mag + _COLOURS[band](z, kind) + _REDDENING[band] * ebv
        true_flux = 10 ** (-0.4 * (true_mag - NJY_ZERO_POINT))
        sigma = 10 ** (-0.4 * (spec.depths[band] - NJY_ZERO_POINT)) / 5.0
        missing = np.isin(
            field_index, [i for i, f in enumerate(spec.fields) if band in spec.missing_bands.get(f.name, ())]
        )
        for family in spec.flux_types:
            fraction = _FAMILY_FRACTION.get(family, 0.8) * np.where(star, 1.0, rng.uniform(0.9, 1.1, n))
            flux_sigma = sigma * np.sqrt(1.0 / fraction) * rng.uniform(0.9, 1.2, n)
            flux = true_flux * fraction + rng.normal(0, 1, n) * flux_sigma
            flux[missing] = np.nan
            err = flux_sigma.copy()
            err[missing] = np.nan
            columns[release.flux_column(family, band)] = flux.astype(dtype)
            columns[release.flux_err_column(family, band)] = err.astype(dtype)
    columns["refExtendedness"] = np.where(star, 0.0, 1.0).astype(dtype)
    for template in spec.flag_columns:
        for name in dict.fromkeys(template.format(band=b) for b in release.bands):
            columns[name] = rng.uniform(0, 1, n) < 0.02
    if release.ebv_column:
        columns[release.ebv_column] = ebv.astype(dtype)
    if spec.primary_column:
        columns[spec.primary_column] = rng.uniform(0, 1, n) > 0.12
    return pd.DataFrame(columns), z


def redshift_table(
    release: ObjectCatalog, objects: pd.DataFrame, true_z: np.ndarray, n: int, seed: int
) -> pd.DataFrame:
    """A redshift catalog for ``objects``: brighter galaxies preferred, positions jittered."""
    rng = np.random.default_rng(seed + 1)
    galaxy = objects["refExtendedness"].to_numpy() > 0.5
    if release.sample and release.sample.primary_column:
        galaxy &= objects[release.sample.primary_column].to_numpy()
    i_flux = objects[release.flux_column("cModel", "i")].to_numpy(dtype=float)
    # spectroscopic targets: galaxies brighter than i ~ 24.5, brighter ones preferred
    usable = galaxy & (i_flux > 10 ** (-0.4 * (24.5 - NJY_ZERO_POINT)))
    weight = np.zeros(len(objects))
    weight[usable] = i_flux[usable] ** 0.5
    n_matched = min(int(n * 0.92), int((weight > 0).sum()))
    chosen = rng.choice(len(objects), n_matched, replace=False, p=weight / weight.sum())
    n_twice = n_matched // 20
    chosen = np.concatenate([chosen, rng.choice(chosen, n_twice, replace=False)])
    jitter = 0.15 / 3600.0
    dec = objects[release.dec_column].to_numpy()[chosen] + rng.normal(0, jitter, len(chosen))
    ra = objects[release.ra_column].to_numpy()[chosen] + rng.normal(0, jitter, len(chosen)) / np.cos(np.radians(dec))
    z = true_z[chosen] + rng.normal(0, 0.0005, len(chosen)) * (1 + true_z[chosen])
    flag = rng.choice([1, 2, 3, 4], len(chosen), p=[0.04, 0.08, 0.28, 0.60])
    wrong = flag <= 2
    z[wrong] = np.abs(z[wrong] + rng.normal(0, 0.3, wrong.sum()))
    n_lonely = max(n - len(chosen), 0)
    field_ra, field_dec, _ = _positions(rng, _spec(release), n_lonely) if n_lonely else (np.zeros(0), np.zeros(0), None)
    ra = np.mod(np.concatenate([ra, field_ra]), 360.0)
    dec = np.concatenate([dec, field_dec])
    z = np.concatenate([z, rng.gamma(3.0, 0.28, n_lonely)])
    flag = np.concatenate([flag, rng.choice([3, 4], n_lonely)])
    survey = rng.choice(SURVEYS, len(ra))
    z_err = np.round(rng.uniform(0.00005, 0.0015, len(ra)) * (1 + z), 6)
    order = rng.permutation(len(ra))
    return pd.DataFrame(
        {
            "id": [f"{s}_{k:07d}" for k, s in enumerate(survey[order])],
            "ra": ra[order],
            "dec": dec[order],
            "z": np.round(z[order], 5),
            "z_err": z_err[order],
            "z_flag": flag[order].astype(np.int64),
            "survey": survey[order],
        }
    )


def write_hats(
    frame: pd.DataFrame, release: ObjectCatalog, path: Path, margin_arcsec: float = 10.0, progress: bool = False
) -> None:
    """Write ``frame`` as a HATS collection with a margin cache of ``margin_arcsec`` (``progress``: LSDB's bars)."""
    import lsdb

    catalog = lsdb.from_dataframe(
        frame,
        ra_column=release.ra_column,
        dec_column=release.dec_column,
        catalog_name=f"{release.name}_object",
        lowest_order=5,
        highest_order=8,
        partition_rows=max(1000, len(frame) // 16),
        margin_threshold=margin_arcsec,
    )
    catalog.write_catalog(path, as_collection=True, overwrite=True, progress_bar=progress)


def published_default_columns(release: ObjectCatalog, present: list[str]) -> list[str]:
    """A ``hats_cols_default`` like the published DP1 one: ids, positions, PSF fluxes and
    ``refExtendedness``; no cModel, GAaP or ``ebv``."""
    wanted = [release.id_column, release.ra_column, release.dec_column, "refExtendedness"]
    for band in release.bands:
        wanted += [release.flux_column("psf", band), release.flux_err_column("psf", band)]
    return [c for c in wanted if c in present]


def write_published(
    frame: pd.DataFrame,
    release: ObjectCatalog,
    path: Path,
    default_columns: list[str] | None = None,
    progress: bool = False,
) -> None:
    """Write ``frame`` as a collection in the release's published layout (main catalog, margin
    and id index named as in :attr:`~tsm_core.plugins.records.ObjectCatalog.collection`;
    ``progress``: LSDB's bars)."""
    import lsdb

    from tsm_core.catalogs.importer import write_index

    layout = release.collection
    if layout is None:
        raise ValueError(f"release {release.name!r} has no published collection layout")
    catalog = lsdb.from_dataframe(
        frame,
        ra_column=release.ra_column,
        dec_column=release.dec_column,
        catalog_name=layout.primary,
        lowest_order=5,
        highest_order=8,
        partition_rows=max(1000, len(frame) // 16),
        margin_threshold=layout.margin_arcsec,
    )
    catalog.write_catalog(
        path,
        as_collection=True,
        overwrite=True,
        progress_bar=progress,
        catalog_name=layout.primary,
        default_columns=default_columns,
    )
    if layout.index:
        write_index(Path(path), layout.primary, layout.index, layout.index_column)


def make_sample(
    release: ObjectCatalog,
    out_dir: Path,
    n_objects: int = 20_000,
    n_redshifts: int = 2_000,
    seed: int = 20250630,
    progress: bool = False,
) -> dict[str, Path]:
    """Write the synthetic sample of ``release`` under ``out_dir`` (see the module doc;
    ``progress``: progress bars on stderr while the catalog is written).

    Returns the paths ``objects`` (HATS collection) and ``redshifts`` (Parquet). A sample
    with the same parameters already in ``out_dir`` is reused.
    """
    out_dir = Path(out_dir)
    params = {"release": release.name, "n_objects": n_objects, "n_redshifts": n_redshifts, "seed": seed, "version": 2}
    paths = {"objects": out_dir / SAMPLE_OBJECTS_DIR, "redshifts": out_dir / "redshifts.parquet"}
    stamp = out_dir / "sample.json"
    if stamp.exists() and json.loads(stamp.read_text()) == params and all(p.exists() for p in paths.values()):
        return paths
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    log.info("generating the %s sample: %d objects, %d redshifts in %s", release.name, n_objects, n_redshifts, out_dir)
    objects, true_z = object_table(release, n_objects, seed)
    redshifts = redshift_table(release, objects, true_z, n_redshifts, seed)
    staging = out_dir / ".objects.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    numba_cache.enable(numba_cache.cache_dir(tsm_home()))  # margins are found with HATS' numba code
    if release.collection:
        default_columns = published_default_columns(release, list(objects.columns))
        write_published(objects, release, staging, default_columns, progress=progress)
    else:
        write_hats(objects, release, staging, progress=progress)
    (staging / SAMPLE_MARKER).write_text(json.dumps(params | {"synthetic": True}))
    shutil.rmtree(paths["objects"], ignore_errors=True)
    staging.rename(paths["objects"])
    redshifts.to_parquet(paths["redshifts"], index=False)
    stamp.write_text(json.dumps(params))
    return paths
