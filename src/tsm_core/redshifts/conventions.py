"""Built-in redshift-catalog conventions: ``canonical``, ``crc``, ``desi`` and value maps.

Registered as a built-in plugin (see :data:`tsm_core.plugins.manager.BUILTIN_PLUGINS`), exactly as a
third-party package would register its own surveys through ``tsm_redshift_conventions``.

The homogenized ``z_flag`` is on the scale of LIneA's Combine Redshift Catalogs pipeline
(``flags_translation.yaml`` of ``linea-it/pzserver_combine_redshift_dedup``): 0 no
redshift, 1 (<70 %), 2 (70-90 %), 3 (90-99 %), 4 (>99 % confidence), 6 star. The rules
below are that pipeline's rules for the same surveys; a flag value a rule does not list
becomes 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tsm_core.errors import CatalogError
from tsm_core.plugins.manager import hookimpl
from tsm_core.plugins.records import Z_FLAG_STAR, ColumnInfo, RedshiftConvention

if TYPE_CHECKING:  # pandas is imported when a catalog is read, not by `tsm --help` and listings
    import pandas as pd

#: ``ZERR`` below which a good DESI redshift is rated 4 (>99 %) rather than 3
DESI_ZERR_LIMIT = 0.001


def _numeric(frame: pd.DataFrame, column: str, convention: str) -> np.ndarray:
    if column not in frame.columns:
        raise CatalogError(
            f"redshift_catalog.columns.{column}",
            f"the {convention!r} convention derives z_flag from the column mapped to {column!r}, which is missing",
        )
    import pandas as pd

    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _truthy(values: pd.Series) -> np.ndarray:
    """Booleans from a column of bools, 0/1 or text (``True``, ``t``, ``1``); missing is False."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values.dtype):
        return values.fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return (pd.to_numeric(values, errors="coerce") == 1).to_numpy(dtype=bool, na_value=False)
    text = values.astype("string").str.strip().str.lower()
    return text.isin(["true", "t", "1", "1.0", "yes"]).to_numpy(dtype=bool, na_value=False)


@dataclass(frozen=True)
class DesiFlag:
    """The Combine Redshift Catalogs rules for DESI (and SDSS-like) catalogs.

    ``SPECTYPE == 'STAR'`` -> 6; otherwise ``ZWARN != 0`` -> 0 (1 when ``ZCAT_PRIMARY``);
    ``ZWARN == 0`` and primary -> 3 when ``ZERR >= 0.001``, 4 when ``ZERR < 0.001``;
    anything else (not primary, ``ZERR`` missing) -> 0. A catalog without a
    ``ZCAT_PRIMARY`` column counts every row as primary, one without ``SPECTYPE`` has
    no stars.
    """

    spectype: str = "SPECTYPE"
    primary: str = "ZCAT_PRIMARY"
    name: str = "desi"

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        zwarn = _numeric(frame, "z_flag", self.name)
        zerr = _numeric(frame, "z_err", self.name)
        n = len(frame)
        primary = _truthy(frame[self.primary]) if self.primary in frame.columns else np.ones(n, dtype=bool)
        if self.spectype in frame.columns:
            star = (frame[self.spectype].astype("string").str.strip().str.upper() == "STAR").to_numpy(
                dtype=bool, na_value=False
            )
        else:
            star = np.zeros(n, dtype=bool)
        good = zwarn == 0  # NaN is not a good redshift
        flag = np.zeros(n, dtype=np.int64)
        flag[~good & primary] = 1
        with np.errstate(invalid="ignore"):
            flag[good & primary & (zerr >= DESI_ZERR_LIMIT)] = 3
            flag[good & primary & (zerr < DESI_ZERR_LIMIT)] = 4
        flag[star] = Z_FLAG_STAR
        return flag


@dataclass(frozen=True)
class FlagValueMap:
    """The survey's flag value -> homogenized flag; values not listed (and NaN) -> 0."""

    values: Mapping[float, int]
    name: str = ""

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        raw = _numeric(frame, "z_flag", self.name)
        out = np.zeros(len(raw), dtype=np.int64)
        for value, flag in self.values.items():
            out[raw == value] = flag
        return out


@dataclass(frozen=True)
class LastDigitMap:
    """The last digit of the integer part of the flag (VVDS-style ``23`` -> 3, ``219`` -> 9)
    mapped by ``values``; digits not listed, negative flags and NaN -> 0."""

    values: Mapping[int, int] = field(default_factory=lambda: {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 9: 2})
    name: str = ""

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        raw = _numeric(frame, "z_flag", self.name)
        digit = np.fmod(np.trunc(raw), 10)  # keeps the sign, as LIneA's rule does: -12 -> -2
        out = np.zeros(len(raw), dtype=np.int64)
        for value, flag in self.values.items():
            out[digit == value] = flag
        return out


AAO_FLAGS: Mapping[float, int] = {1: 0, 2: 1, 3: 3, 4: 4, 6: 6}  # 2dFLenS, 6dFGS, OzDES (AAOmega quality 1-4, 6 star)

CANONICAL = RedshiftConvention(
    name="canonical",
    description="TSM's own column names (id, ra, dec, z, z_err, z_flag, survey); z_flag already homogenized",
    rules="z_flag is used as it is (0-4, 6 star)",
)

CRC = RedshiftConvention(
    name="crc",
    description="output of LIneA's Combine Redshift Catalogs pipeline",
    columns={"id": "CRD_ID", "z_flag": "z_flag_homogenized"},
    detect=("CRD_ID", "z_flag_homogenized"),
    extra_columns=("z_flag", "source", "tie_result", "instrument_type_homogenized"),
    column_info={
        "z_flag": ColumnInfo("", "the survey's own redshift quality flag, as in the source catalog"),
        "source": ColumnInfo("", "source catalog of the redshift (Combine Redshift Catalogs)"),
        "tie_result": ColumnInfo("", "deduplication result: 1 kept, 0 eliminated, 2 tie (Combine Redshift Catalogs)"),
        "instrument_type_homogenized": ColumnInfo("", "instrument type: s spectroscopic, g grism, p photometric"),
        "id": ColumnInfo("", "the survey's own identifier of the redshift"),
    },
    rules="z_flag = z_flag_homogenized (already on the scale); the survey's flag z_flag is kept as z_flag_raw",
)

DESI = RedshiftConvention(
    name="desi",
    description="DESI DR1 redshift catalogs (Redrock: TARGETID, TARGET_RA, TARGET_DEC, Z, ZERR, ZWARN, SPECTYPE)",
    columns={"id": "TARGETID", "ra": "TARGET_RA", "dec": "TARGET_DEC", "z": "Z", "z_err": "ZERR", "z_flag": "ZWARN"},
    detect=("TARGETID", "TARGET_RA", "TARGET_DEC", "Z", "ZWARN"),
    extra_columns=("SPECTYPE", "SUBTYPE", "DELTACHI2", "ZCAT_PRIMARY", "ZCAT_NSPEC", "SURVEY", "PROGRAM"),
    homogenize=DesiFlag(),
    column_info={
        "ZWARN": ColumnInfo("", "DESI Redrock ZWARN warning bit mask (0: no warning)"),
        "SPECTYPE": ColumnInfo("", "Redrock spectral type: GALAXY, QSO or STAR"),
        "SUBTYPE": ColumnInfo("", "Redrock spectral subtype"),
        "DELTACHI2": ColumnInfo("", "chi2 difference between the best and second-best Redrock fits"),
        "ZCAT_PRIMARY": ColumnInfo("", "true for the best spectrum of a TARGETID in the redshift catalog"),
        "ZCAT_NSPEC": ColumnInfo("", "number of spectra of this TARGETID in the redshift catalog"),
        "SURVEY": ColumnInfo("", "DESI survey phase (sv1, sv2, sv3, main, special, cmx)"),
        "PROGRAM": ColumnInfo("", "DESI observing program (dark, bright, backup, other)"),
    },
    rules=(
        "SPECTYPE == STAR -> 6; else ZWARN != 0 -> 0 (1 if ZCAT_PRIMARY); ZWARN == 0 and ZCAT_PRIMARY "
        "(or no ZCAT_PRIMARY column) -> 3 if ZERR >= 0.001, 4 if ZERR < 0.001; otherwise 0"
    ),
)


def _value_map(name: str, survey: str) -> RedshiftConvention:
    return RedshiftConvention(
        name=name,
        description=f"{survey} (canonical column names, the survey's quality flag in z_flag)",
        homogenize=FlagValueMap(AAO_FLAGS, name),
        column_info={"z_flag": ColumnInfo("", f"{survey} redshift quality flag (1-4, 6 star)")},
        rules="z_flag 1 -> 0, 2 -> 1, 3 -> 3, 4 -> 4, 6 -> 6; other values -> 0",
    )


def _last_digit(name: str, survey: str) -> RedshiftConvention:
    return RedshiftConvention(
        name=name,
        description=f"{survey} (canonical column names, the survey's quality flag in z_flag)",
        homogenize=LastDigitMap(name=name),
        column_info={"z_flag": ColumnInfo("", f"{survey} redshift quality flag")},
        rules="last digit of the flag's integer part: 0-4 -> the same, 9 -> 2; other values -> 0",
    )


BUILTIN_CONVENTIONS: tuple[RedshiftConvention, ...] = (
    CANONICAL,
    CRC,
    DESI,
    _value_map("2dflens", "2dFLenS"),
    _value_map("6dfgs", "6dFGS"),
    _value_map("ozdes", "OzDES"),
    _last_digit("vvds", "VVDS"),
    _last_digit("zcosmos", "zCOSMOS"),
)


@hookimpl
def tsm_redshift_conventions() -> list[RedshiftConvention]:
    return list(BUILTIN_CONVENTIONS)
