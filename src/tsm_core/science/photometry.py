"""Per-partition photometry on matched rows: deredden, convert to magnitudes, rename.

:class:`Photometry` is a small picklable callable applied to each crossmatched
partition, so that it runs where Dask runs the partition (threads or workers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tsm_core.columns import (
    AMBIGUITY_COLUMNS,
    DIST_COLUMN,
    EBV_COLUMN,
    N_CANDIDATES_COLUMN,
    P_CHANCE_COLUMN,
    SECOND_DIST_COLUMN,
    ZROW_COLUMN,
)
from tsm_core.plugins.records import Z_FLAG_SCALE, ColumnInfo, EBVSource, ObjectCatalog
from tsm_core.science import magnitudes

REDSHIFT_COLUMN_INFO: dict[str, ColumnInfo] = {
    "id": ColumnInfo("", "identifier of the redshift measurement"),
    "ra": ColumnInfo("deg", "right ascension of the redshift source (ICRS)"),
    "dec": ColumnInfo("deg", "declination of the redshift source (ICRS)"),
    "z": ColumnInfo("", "spectroscopic redshift", quantity="redshift"),
    "z_err": ColumnInfo("", "redshift uncertainty"),
    "z_flag": ColumnInfo("", "homogenized redshift quality: " + "; ".join(f"{k} {v}" for k, v in Z_FLAG_SCALE.items())),
    "survey": ColumnInfo("", "survey of the redshift measurement"),
}

#: descriptions of Rubin Object-table columns that a training set may keep (``extra_columns``)
OBJECT_COLUMN_INFO: dict[str, ColumnInfo] = {
    "refExtendedness": ColumnInfo("", "extendedness in the reference band: 0 point source, 1 extended"),
    "refBand": ColumnInfo("", "reference band of the object's measurements"),
    "tract": ColumnInfo("", "skymap tract of the object"),
    "patch": ColumnInfo("", "skymap patch of the object within its tract"),
    "detect_isPrimary": ColumnInfo("", "true for a primary (deblended, inner-tract, inner-patch) object"),
    "detect_isIsolated": ColumnInfo("", "true for an object with no blended parent or siblings"),
    "detect_fromBlend": ColumnInfo("", "true for an object deblended from a blend"),
    "detect_isDeblendedModelSource": ColumnInfo("", "true for a deblended child with a model"),
    EBV_COLUMN: ColumnInfo("mag", "E(B-V) at the object position (SFD 1998)"),
    "shape_xx": ColumnInfo("arcsec2", "second moment xx of the object shape"),
    "shape_yy": ColumnInfo("arcsec2", "second moment yy of the object shape"),
    "shape_xy": ColumnInfo("arcsec2", "second moment xy of the object shape"),
    **{f"{b}_blendedness": ColumnInfo("", f"{b}-band blendedness (0 isolated, 1 fully blended)") for b in "ugrizy"},
    **{f"{b}_extendedness": ColumnInfo("", f"{b}-band extendedness: 0 point source, 1 extended") for b in "ugrizy"},
}


@dataclass(frozen=True)
class Photometry:
    """Turns one crossmatched partition into output rows.

    ``redshift_columns`` are the redshift columns kept (canonical ones first); fluxes of
    ``flux_type`` in ``bands`` become magnitudes when ``to_magnitudes``; ``ebv`` (if
    given) dereddens with ``coefficients`` (A_b / E(B-V) per band). ``extra_columns``
    are object columns passed through as they are; ``notes`` gives units and
    descriptions of non-canonical columns (redshift extras).
    """

    catalog: ObjectCatalog
    flux_type: str
    bands: tuple[str, ...]
    to_magnitudes: bool
    redshift_columns: tuple[str, ...]
    coefficients: dict[str, float]
    ebv: EBVSource | None = None
    ebv_description: str = ""
    extra_columns: tuple[str, ...] = ()
    notes: Mapping[str, ColumnInfo] = field(default_factory=dict)

    @property
    def dered_suffix(self) -> str:
        return "_dered" if self.ebv is not None else ""

    def output_names(self, band: str) -> tuple[str, str]:
        """Names of the value and error columns of ``band`` in the output."""
        kind = "Mag" if self.to_magnitudes else "Flux"
        base = f"{band}_{self.flux_type}{kind}"
        return base + self.dered_suffix, base + "Err" + self.dered_suffix

    def object_columns(self) -> list[str]:
        """The object columns the transform reads (besides id and coordinates)."""
        cols = []
        for band in self.bands:
            cols += [self.catalog.flux_column(self.flux_type, band), self.catalog.flux_err_column(self.flux_type, band)]
        return list(dict.fromkeys(cols + [c for c in self.extra_columns if c not in self._identity_columns()]))

    def _identity_columns(self) -> tuple[str, ...]:
        return (self.catalog.id_column, self.catalog.ra_column, self.catalog.dec_column)

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        cat = self.catalog
        out: dict[str, object] = {}
        # .array keeps Arrow-backed dtypes (strings, nullable integers) as they are
        passed = (
            ZROW_COLUMN,
            *self.redshift_columns,
            cat.id_column,
            cat.ra_column,
            cat.dec_column,
            DIST_COLUMN,
            *(c for c in AMBIGUITY_COLUMNS if c in frame),  # a crossmatch has them, the photometric sample not
        )
        for col in dict.fromkeys(passed + self.extra_columns):
            out[col] = frame[col].array
        ebv = None
        if self.ebv is not None:
            ra = frame[cat.ra_column].to_numpy(dtype=np.float64, na_value=np.nan)
            dec = frame[cat.dec_column].to_numpy(dtype=np.float64, na_value=np.nan)
            ebv = np.asarray(self.ebv(ra, dec, frame), dtype=np.float64) if len(frame) else np.zeros(0)
        for band in self.bands:
            flux = frame[cat.flux_column(self.flux_type, band)].to_numpy(dtype=np.float64, na_value=np.nan)
            err = frame[cat.flux_err_column(self.flux_type, band)].to_numpy(dtype=np.float64, na_value=np.nan)
            a_band = None if ebv is None else magnitudes.extinction(ebv, self.coefficients[band])
            value_name, err_name = self.output_names(band)
            if self.to_magnitudes:
                mag = magnitudes.flux_to_mag(flux, cat.zero_point)
                out[value_name] = mag if a_band is None else magnitudes.deredden_mag(mag, a_band)
                out[err_name] = magnitudes.flux_err_to_mag_err(flux, err)
            elif a_band is None:
                out[value_name], out[err_name] = flux, err
            else:
                out[value_name] = magnitudes.deredden_flux(flux, a_band)
                out[err_name] = magnitudes.deredden_flux(err, a_band)
        if ebv is not None:
            out[EBV_COLUMN] = ebv
        return pd.DataFrame(out)

    def column_info(self) -> dict[str, ColumnInfo]:
        """Unit and description of every output column."""
        cat = self.catalog
        info = {
            c: REDSHIFT_COLUMN_INFO.get(c) or self.notes.get(c) or ColumnInfo("", f"redshift catalog column {c}")
            for c in self.redshift_columns
        }
        info[cat.id_column] = ColumnInfo("", f"{cat.name} object identifier")
        info[cat.ra_column] = ColumnInfo("deg", f"{cat.name} object right ascension (ICRS)")
        info[cat.dec_column] = ColumnInfo("deg", f"{cat.name} object declination (ICRS)")
        info[DIST_COLUMN] = ColumnInfo("arcsec", "angular distance between redshift source and object")
        info[N_CANDIDATES_COLUMN] = ColumnInfo("", "objects within the match radius of the redshift source")
        info[SECOND_DIST_COLUMN] = ColumnInfo(
            "arcsec", "angular distance to the second-nearest object within the radius (null if none)"
        )
        info[P_CHANCE_COLUMN] = ColumnInfo(
            "", "probability of an unrelated object this close, 1 - exp(-pi Sigma sep^2), Sigma of the partition"
        )
        for col in self.extra_columns:
            info.setdefault(col, OBJECT_COLUMN_INFO.get(col) or ColumnInfo("", f"{cat.name} object column {col}"))
        dered = ""
        if self.ebv is not None:
            dered = f", dereddened with {self.ebv_description}"
        for band in self.bands:
            value_name, err_name = self.output_names(band)
            if self.to_magnitudes:
                what = f"AB magnitude, zero point {cat.zero_point}"
                info[value_name] = ColumnInfo("mag", f"{band}-band {self.flux_type} {what}{dered}", "mag", band)
                info[err_name] = ColumnInfo("mag", f"{band}-band {self.flux_type} magnitude error", "mag_err", band)
            else:
                unit = cat.flux_unit
                info[value_name] = ColumnInfo(unit, f"{band}-band {self.flux_type} flux{dered}", "flux", band)
                info[err_name] = ColumnInfo(unit, f"{band}-band {self.flux_type} flux error{dered}", "flux_err", band)
        if self.ebv is not None:
            coeffs = ", ".join(f"{b}={self.coefficients[b]}" for b in self.bands)
            info[EBV_COLUMN] = ColumnInfo("mag", f"E(B-V) from {self.ebv_description}; A_b/E(B-V): {coeffs}")
        return info
