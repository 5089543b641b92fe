"""Built-in dereddeners: ``none``, the release's own ``catalog`` E(B-V) column, and the
``dustmaps`` maps ``sfd``, ``csfd``, ``planck`` and ``planck_gnilc``.

Maps are looked for in ``object_catalog.dust_maps_dir``, else ``$TSM_DUSTMAPS_DIR``, else
dustmaps' own configured ``data_dir``, under dustmaps' usual layout (``sfd/...``).
A map's query object is built once per process, from explicit file paths, so the
user's ``~/.dustmapsrc`` is never read for paths nor written.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tsm_core.errors import ConfigError, MissingDustMapError, TSMError
from tsm_core.plugins.manager import hookimpl
from tsm_core.plugins.records import Dereddener, EBVSource, ObjectCatalog

if TYPE_CHECKING:
    import pandas as pd

#: rows per call to a dustmaps query (bounds the memory of coordinate transforms)
QUERY_CHUNK = 1_000_000
DUSTMAPS_DIR_ENV = "TSM_DUSTMAPS_DIR"


def resolve_maps_dir(configured: str | None = None) -> Path:
    """Directory holding the dust maps (see the module docstring for the order)."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(DUSTMAPS_DIR_ENV):
        return Path(os.environ[DUSTMAPS_DIR_ENV]).expanduser()
    from dustmaps.std_paths import data_dir

    return Path(data_dir())


class NoDereddening(Dereddener):
    name = "none"
    description = "no dereddening"

    def source(self, catalog: ObjectCatalog, maps_dir: Path | None) -> EBVSource | None:
        return None


@dataclass(frozen=True)
class ColumnEBV:
    """E(B-V) read from an object column."""

    column: str

    def __call__(self, ra: np.ndarray, dec: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.column].to_numpy(dtype=np.float64, na_value=np.nan)


class CatalogDereddener(Dereddener):
    name = "catalog"
    description = "the release's own E(B-V) column (ObjectCatalog.ebv_column)"

    def required_columns(self, catalog: ObjectCatalog) -> list[str]:
        return [catalog.ebv_column] if catalog.ebv_column else []

    def source(self, catalog: ObjectCatalog, maps_dir: Path | None) -> EBVSource | None:
        if not catalog.ebv_column:
            raise ConfigError(
                "object_catalog.dereddening",
                f"release {catalog.name!r} has no E(B-V) column; choose a dust map "
                "(sfd, csfd, planck, planck_gnilc) or none",
            )
        return ColumnEBV(catalog.ebv_column)


@dataclass(frozen=True)
class DustMapSpec:
    """Where a dustmaps map lives and how its query class is built."""

    query_class: str  # "module:Class"
    files: tuple[str, ...]  # relative to the maps directory
    fetch: tuple[str, dict[str, Any]]  # dustmaps fetch function and its arguments
    citation: str


DUST_MAPS: dict[str, DustMapSpec] = {
    "sfd": DustMapSpec(
        "dustmaps.sfd:SFDQuery",
        ("sfd/SFD_dust_4096_ngp.fits", "sfd/SFD_dust_4096_sgp.fits"),
        ("dustmaps.sfd:fetch", {}),
        "Schlegel, Finkbeiner & Davis (1998), raw E(B-V)",
    ),
    "csfd": DustMapSpec(
        "dustmaps.csfd:CSFDQuery",
        ("csfd/csfd_ebv.fits", "csfd/mask.fits"),
        ("dustmaps.csfd:fetch", {}),
        "Chiang (2023) corrected SFD",
    ),
    "planck": DustMapSpec(
        "dustmaps.planck:PlanckQuery",
        ("planck/HFI_CompMap_ThermalDustModel_2048_R1.20.fits",),
        ("dustmaps.planck:fetch", {"which": "2013"}),
        "Planck Collaboration (2013), E(B-V) component",
    ),
    "planck_gnilc": DustMapSpec(
        "dustmaps.planck:PlanckGNILCQuery",
        ("planck/COM_CompMap_Dust-GNILC-Model-Opacity_2048_R2.01.fits",),
        ("dustmaps.planck:fetch", {"which": "GNILC"}),
        "Planck Collaboration (2016) GNILC",
    ),
}


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def load_query(name: str, paths: tuple[str, ...]) -> Any:
    """The dustmaps query object of map ``name`` over ``paths`` (built once per process)."""
    cls = _import(DUST_MAPS[name].query_class)
    if name == "sfd":
        return cls(map_dir=str(Path(paths[0]).parent))
    if name == "csfd":
        return cls(map_fname=paths[0], mask_fname=paths[1])
    if name == "planck":
        return cls(map_fname=paths[0], component="ebv")
    return cls(map_fname=paths[0], load_errors=False)


@dataclass(frozen=True)
class DustMapEBV:
    """E(B-V) from a dustmaps map at the objects' coordinates, in vectorised chunks."""

    map_name: str
    paths: tuple[str, ...]

    def __call__(self, ra: np.ndarray, dec: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        from astropy.coordinates import SkyCoord

        query = load_query(self.map_name, self.paths)
        out = np.full(len(ra), np.nan)
        ok = np.isfinite(ra) & np.isfinite(dec)
        idx = np.flatnonzero(ok)
        for start in range(0, len(idx), QUERY_CHUNK):
            part = idx[start : start + QUERY_CHUNK]
            coords = SkyCoord(ra[part], dec[part], unit="deg", frame="icrs")
            out[part] = np.asarray(query.query(coords), dtype=np.float64)
        return out


class DustMapDereddener(Dereddener):
    """A dereddener backed by one of the ``dustmaps`` query classes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spec = DUST_MAPS[name]
        self.description = f"dustmaps {self.spec.query_class.split(':')[1]}: {self.spec.citation}"
        self.fetch_command = f"tsm dustmaps fetch {name}"

    def expected_files(self, maps_dir: Path | None) -> list[Path]:
        """The map files under ``maps_dir`` in dustmaps' layout (``sfd/SFD_dust_4096_ngp.fits``);
        a file found directly in ``maps_dir`` (the map's own folder) is taken too."""
        base = maps_dir if maps_dir is not None else resolve_maps_dir()
        found = []
        for relative in self.spec.files:
            flat = base / Path(relative).name
            found.append(flat if not (base / relative).is_file() and flat.is_file() else base / relative)
        return found

    def source(self, catalog: ObjectCatalog, maps_dir: Path | None) -> EBVSource | None:
        missing = self.missing_files(maps_dir)
        if missing:
            raise MissingDustMapError("object_catalog.dereddening", self.name, missing, self.fetch_command)
        return DustMapEBV(self.name, tuple(str(p.resolve()) for p in self.expected_files(maps_dir)))

    def fetch(self, target_dir: Path) -> None:
        """Download the map files into ``target_dir`` with dustmaps (needs internet).

        dustmaps' fetchers write into its configured ``data_dir``; they run in a child
        process whose dustmaps configuration names ``target_dir``, so neither this
        process's environment nor its dustmaps configuration (nor ``~/.dustmapsrc``) changes.
        """
        target_dir.mkdir(parents=True, exist_ok=True)
        rc = target_dir / ".dustmapsrc"
        rc.write_text(json.dumps({"data_dir": str(target_dir.resolve())}))
        func, kwargs = self.spec.fetch
        module, _, name = func.partition(":")
        code = f"import {module} as m; m.{name}(**{kwargs!r})"
        env = dict(os.environ, DUSTMAPS_CONFIG_FNAME=str(rc))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise TSMError(f"dust map {self.name!r} could not be fetched into {target_dir}: {last}")


def describe_source(dereddener: Dereddener, source: EBVSource | None) -> str:
    """A human description of where E(B-V) comes from, for provenance and columns."""
    if isinstance(source, DustMapEBV):
        # the files' names, not their folder: a training set made by a shared service shows no server path
        return f"{dereddener.name} map ({DUST_MAPS[source.map_name].citation}) files {', '.join(Path(p).name for p in source.paths)}"
    if isinstance(source, ColumnEBV):
        return f"the catalog column {source.column!r}"
    return dereddener.description


@hookimpl
def tsm_dereddeners() -> list[Dereddener]:
    return [NoDereddening(), CatalogDereddener(), *(DustMapDereddener(n) for n in DUST_MAPS)]
