"""What the RAIL tests share: a small BPZ lite data folder (three templates, AB files made once).

BPZ lite reads its templates from ``bpz_ref_data_path`` and writes the AB files it lacks there;
left at its default it would write into RAIL's installed package, so the tests give it a folder
of their own: the SED and FILTER files of ``pz-rail-bpz`` (linked) and the AB files of three
templates (one per broad type of the HDFN prior), made once per test run in a subprocess
(``desc_bpz`` fixes its folders when it is imported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_build

#: one template per broad type of BPZ lite's default (HDFN) prior: elliptical, spiral, irregular
BPZ_TEMPLATES = ("El_B2004a.sed", "Sbc_B2004a.sed", "Im_B2004a.sed")
BPZ_SPECTRA = "tsm_three.list"
#: what BPZ lite's informer and estimator need for that folder
BPZ_INFORM = {"nt_array": [1, 1, 1]}


def bpz_estimate_options(folder: Path) -> dict:
    return {"bpz_ref_data_path": str(folder), "spectra_file": BPZ_SPECTRA}


def _build_bpz(folder: Path) -> None:
    from rail.utils.path_utils import RAILDIR

    source = Path(RAILDIR) / "rail" / "examples_data" / "estimation_data" / "data"
    (folder / "SED").mkdir()
    (folder / "AB").mkdir()
    (folder / "FILTER").symlink_to(source / "FILTER")
    for name in BPZ_TEMPLATES:
        (folder / "SED" / name).symlink_to(source / "SED" / name)
    (folder / "SED" / BPZ_SPECTRA).write_text("\n".join(BPZ_TEMPLATES) + "\n")
    make = (
        "from desc_bpz.bpz_tools_py3 import ABflux\n"
        f"for sed in {[t.removesuffix('.sed') for t in BPZ_TEMPLATES]!r}:\n"
        "    for band in 'ugrizy':\n"
        "        ABflux(sed, f'DC2LSST_{band}', 'no')\n"
    )
    env = dict(os.environ, BPZDATAPATH=str(folder))
    subprocess.run([sys.executable, "-c", make], env=env, check=True, capture_output=True, timeout=300)


def bpz_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BPZ lite data folder; read only. Call it from a module fixture: across pytest-xdist
    workers it is built once per test run, in one process at each call (:func:`shared_build`)."""
    pytest.importorskip("rail.estimation.algos.bpz_lite", reason="pz-rail-bpz is not installed")
    return shared_build(tmp_path_factory, "bpz-data", _build_bpz)
