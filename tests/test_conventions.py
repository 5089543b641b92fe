"""Survey conventions on the real DESI DR1 and Combine Redshift Catalogs samples, checked
against rules written out here with plain pandas and against LIneA's own homogenized flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tsm_core
from tsm_core import plugins
from tsm_core.errors import BadRowsError, CatalogError, ConfigError, UnknownChoiceError
from tsm_core.redshifts.readers import read_redshift_catalog


@pytest.fixture(scope="module")
def desi(reference) -> tuple[Path, pd.DataFrame]:
    path = reference / "desi_dr1_dp1_fields_sample.parquet"
    return path, pd.read_parquet(path)


@pytest.fixture(scope="module")
def crc(reference) -> tuple[Path, pd.DataFrame]:
    path = reference / "combined_redshift_sample.parquet"
    return path, pd.read_parquet(path)


def desi_rules(frame: pd.DataFrame) -> pd.Series:
    """The Combine Redshift Catalogs DESI rules, one row at a time (flags_translation.yaml)."""
    out = []
    for r in frame.itertuples():
        primary = getattr(r, "ZCAT_PRIMARY", True) is True or getattr(r, "ZCAT_PRIMARY", True) == 1
        spectype = getattr(r, "SPECTYPE", "GALAXY")
        flag = 0
        if spectype == "STAR":
            flag = 6
        elif r.ZWARN != 0 and primary:
            flag = 1
        elif r.ZWARN == 0 and primary and r.ZERR >= 0.001:
            flag = 3
        elif r.ZWARN == 0 and primary and r.ZERR < 0.001:
            flag = 4
        out.append(flag)
    return pd.Series(out, index=frame.index)


def test_desi_detected_without_a_mapping(desi):
    path, raw = desi
    table = read_redshift_catalog(path)
    assert table.convention == "desi" and table.detected and table.dropped == {}
    got = table.frame
    assert got["id"].tolist() == raw["TARGETID"].tolist()
    np.testing.assert_array_equal(got["ra"], raw["TARGET_RA"])
    np.testing.assert_array_equal(got["z"], raw["Z"])
    assert got["z_flag_raw"].tolist() == raw["ZWARN"].tolist()
    assert got["z_flag"].tolist() == desi_rules(raw).tolist()
    # the numbers a user sees: every star is 6, every good primary galaxy/QSO redshift is 3 or 4
    assert (got["z_flag"][raw["SPECTYPE"] == "STAR"] == 6).all()
    good = (raw["ZWARN"] == 0) & raw["ZCAT_PRIMARY"] & (raw["SPECTYPE"] != "STAR")
    assert (
        got["z_flag"][good].isin([3, 4]).all()
        and not got["z_flag"][~good & (raw["SPECTYPE"] != "STAR")].isin([3, 4]).any()
    )
    kept = table.kept_columns(None)
    assert {"SPECTYPE", "DELTACHI2", "ZCAT_PRIMARY", "z_flag_raw"} <= set(kept)


def test_desi_without_zcat_primary_counts_every_row_primary(desi, tmp_path):
    path, raw = desi
    cut = raw.drop(columns=["ZCAT_PRIMARY", "COEFF"])
    cut.to_parquet(tmp_path / "d.parquet")
    got = read_redshift_catalog(tmp_path / "d.parquet").frame
    assert got["z_flag"].tolist() == desi_rules(cut).tolist()


def test_crc_detected_bad_rows_dropped_and_counted(crc):
    path, raw = crc
    table = read_redshift_catalog(path)
    assert table.convention == "crc" and table.detected
    nan_z = int(raw["z"].isna().sum())
    negative = int((raw["z"] < -0.01).sum())
    assert nan_z == 14 and table.dropped == {"non-finite z": nan_z, "z < -0.01": negative}
    valid = raw[np.isfinite(raw["z"]) & (raw["z"] >= -0.01)].reset_index(drop=True)
    got = table.frame
    assert len(got) == len(valid) == table.n_read - nan_z - negative
    assert got["id"].tolist() == valid["CRD_ID"].tolist()
    np.testing.assert_array_equal(got["z_flag"], valid["z_flag_homogenized"])
    np.testing.assert_array_equal(got["z_flag_raw"], valid["z_flag"])
    assert got["id_raw"].tolist() == valid["id"].tolist()  # the survey's own id, renamed: `id` is CRD_ID
    assert set(table.kept_columns(None)) == {
        "id",
        "ra",
        "dec",
        "z",
        "z_err",
        "z_flag",
        "survey",
        "z_flag_raw",
        "source",
        "tie_result",
        "instrument_type_homogenized",
    }


def test_crc_refused_whole_only_when_asked(crc):
    path, _ = crc
    with pytest.raises(BadRowsError, match=r"14 row\(s\) with non-finite z"):
        read_redshift_catalog(path, bad_rows="fail")


@pytest.mark.parametrize(
    ("survey", "convention"),
    [("DESI", "desi"), ("2DFLENS", "2dflens"), ("6DFGS", "6dfgs"), ("OZDES", "ozdes"), ("VVDS", "vvds")],
)
def test_rules_reproduce_linea_homogenized_flags(crc, tmp_path, survey, convention):
    """Each survey's rows of the Combine Redshift Catalogs output, with their raw flag,
    homogenized by our convention, give LIneA's own z_flag_homogenized."""
    _, raw = crc
    rows = raw[(raw["survey"] == survey) & np.isfinite(raw["z"]) & (raw["z"] >= -0.01)].reset_index(drop=True)
    own = rows[["ra", "dec", "z", "z_err", "z_flag"]].copy()
    if convention == "desi":
        own = own.rename(columns={"ra": "TARGET_RA", "dec": "TARGET_DEC", "z": "Z", "z_err": "ZERR", "z_flag": "ZWARN"})
        own["TARGETID"] = np.arange(len(own))
        own["ZCAT_PRIMARY"] = rows["ZCAT_PRIMARY"].astype(bool)
    path = tmp_path / "survey.parquet"
    own.to_parquet(path)
    got = read_redshift_catalog(path, convention=convention).frame
    assert len(got) == len(rows) > 0
    np.testing.assert_array_equal(got["z_flag"].to_numpy(float), rows["z_flag_homogenized"].to_numpy(float))
    np.testing.assert_array_equal(got["z_flag_raw"].to_numpy(float), rows["z_flag"].to_numpy(float))


def test_last_digit_and_value_map_edge_values(tmp_path):
    flags = [0, 1, 2, 3, 4, 9, 13, 22, 219, 24.5, -12, 5, 7, np.nan]
    frame = pd.DataFrame({"ra": 10.0, "dec": 1.0, "z": 0.5, "z_flag": flags})
    frame.to_parquet(tmp_path / "v.parquet")
    vvds = read_redshift_catalog(tmp_path / "v.parquet", convention="zcosmos").frame["z_flag"].tolist()
    assert vvds == [0, 1, 2, 3, 4, 2, 3, 2, 2, 4, 0, 0, 0, 0]
    aao = read_redshift_catalog(tmp_path / "v.parquet", convention="6dfgs").frame["z_flag"].tolist()
    assert aao == [0, 0, 1, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]


def test_unknown_convention_lists_installed(desi):
    path, _ = desi
    with pytest.raises(
        UnknownChoiceError,
        match=r"redshift_catalog.convention: unknown redshift convention 'sdss'.*"
        r"canonical, crc, desi",
    ):
        read_redshift_catalog(path, convention="sdss")


class SDSSFlag:
    """A third party's rule: CLASS STAR -> 6, ZWARNING 0 -> 4, else 0."""

    def __call__(self, frame):
        flag = np.where(frame["z_flag"] == 0, 4, 0)
        return np.where(frame["CLASS"].str.strip() == "STAR", 6, flag)


def _sdss(name="sdss"):
    return tsm_core.RedshiftConvention(
        name=name,
        description="SDSS specObj",
        columns={
            "id": "SPECOBJID",
            "ra": "PLUG_RA",
            "dec": "PLUG_DEC",
            "z": "Z",
            "z_err": "Z_ERR",
            "z_flag": "ZWARNING",
        },
        detect=("SPECOBJID", "PLUG_RA", "ZWARNING"),
        extra_columns=("CLASS",),
        homogenize=SDSSFlag(),
    )


@pytest.fixture
def sdss_plugin(registered_plugin):
    class Plugin:
        @tsm_core.hookimpl
        def tsm_redshift_conventions(self):
            return [_sdss()]

    registered_plugin(Plugin(), "test-sdss-convention")


def test_third_party_convention_plugin(sdss_plugin, tmp_path):
    sdss = pd.DataFrame(
        {
            "SPECOBJID": [11, 12, 13],
            "PLUG_RA": [1.0, 2.0, 3.0],
            "PLUG_DEC": [0.0, 0.5, 1.0],
            "Z": [0.1, 0.0001, 0.3],
            "Z_ERR": [1e-4, 1e-5, 1e-3],
            "ZWARNING": [0, 0, 4],
            "CLASS": ["GALAXY", "STAR  ", "QSO"],
        }
    )
    sdss.to_csv(tmp_path / "sdss.csv", index=False)
    assert "sdss" in plugins.redshift_conventions()
    table = read_redshift_catalog(tmp_path / "sdss.csv")
    assert table.convention == "sdss" and table.detected
    assert table.frame["z_flag"].tolist() == [4, 6, 0] and table.frame["id"].tolist() == [11, 12, 13]
    assert table.kept_columns(None) == ["id", "ra", "dec", "z", "z_err", "z_flag", "z_flag_raw", "CLASS"]


def test_two_plugins_claiming_a_convention_are_refused(sdss_plugin, registered_plugin):
    class Again:
        @tsm_core.hookimpl
        def tsm_redshift_conventions(self):
            return [_sdss()]

    registered_plugin(Again(), "test-sdss-again")
    with pytest.raises(tsm_core.TSMError, match="redshift convention 'sdss' is offered twice"):
        plugins.redshift_conventions()


def test_ambiguous_detection_is_refused(tmp_path, registered_plugin):
    class Plugin:
        @tsm_core.hookimpl
        def tsm_redshift_conventions(self):
            return [tsm_core.RedshiftConvention(name="desi_copy", description="x", detect=("TARGETID", "ZWARN"))]

    frame = pd.DataFrame(
        {"TARGETID": [1], "TARGET_RA": [1.0], "TARGET_DEC": [1.0], "Z": [0.5], "ZERR": [1e-4], "ZWARN": [0]}
    )
    frame.to_parquet(tmp_path / "d.parquet")
    registered_plugin(Plugin(), "test-desi-copy")
    with pytest.raises(ConfigError, match="fit conventions 'desi', 'desi_copy'; choose one"):
        read_redshift_catalog(tmp_path / "d.parquet")
    assert read_redshift_catalog(tmp_path / "d.parquet", convention="desi").frame["z_flag"].tolist() == [4]


# -- reading as written, and refusals ---------------------------------------------------------


def test_csv_hash_is_data_and_delimiter_sniffed_or_set(tmp_path):
    text = "id;ra;dec;z;survey\n1;10.0;1.0;0.5;SDSS#DR16\n2;10.1;1.1;0.6;#2dF\n"
    (tmp_path / "semi.csv").write_text(text)
    got = read_redshift_catalog(tmp_path / "semi.csv").frame
    assert got["survey"].tolist() == ["SDSS#DR16", "#2dF"] and got["z"].tolist() == [0.5, 0.6]
    (tmp_path / "pipe.txt").write_text(text.replace(";", "|"))
    assert read_redshift_catalog(tmp_path / "pipe.txt", delimiter="|").frame["survey"].tolist() == ["SDSS#DR16", "#2dF"]


def test_text_column_mapped_to_z_is_named(tmp_path):
    frame = pd.DataFrame({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "Z": [0.1, 0.2], "NAME": ["gal a", "gal b"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(
        CatalogError, match=r"column 'NAME' \(mapped to 'z'\) holds text, not numbers \(row 0: 'gal a'\)"
    ):
        read_redshift_catalog(tmp_path / "t.csv", {"z": "NAME"})


def test_duplicate_ids_refused_naming_the_first(tmp_path):
    frame = pd.DataFrame({"id": [5, 6, 5, 7, 6], "ra": [1.0] * 5, "dec": [0.0] * 5, "z": [0.1] * 5})
    frame.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(
        CatalogError, match=r"2 id value\(s\) occur more than once, e.g. 5 \(rows 0, 2\); 6 \(rows 1, 4\)"
    ):
        read_redshift_catalog(tmp_path / "d.parquet")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_zero_rows_refused_in_one_line(tmp_path, kind):
    empty = pd.DataFrame(
        {
            "id": pd.Series(dtype="int64"),
            "ra": pd.Series(dtype=float),
            "dec": pd.Series(dtype=float),
            "z": pd.Series(dtype=float),
        }
    )
    path = tmp_path / f"e.{kind}"
    empty.to_csv(path, index=False) if kind == "csv" else empty.to_parquet(path)
    with pytest.raises(CatalogError, match="the redshift catalog has no rows") as info:
        read_redshift_catalog(path)
    assert "\n" not in str(info.value)


def test_negative_z_dropped_or_refused(tmp_path):
    frame = pd.DataFrame({"ra": [1.0, 2.0, 3.0, 4.0], "dec": [0.0, 91.0, 0.0, 0.0], "z": [-0.005, 0.3, -5.0, 0.2]})
    frame.to_parquet(tmp_path / "n.parquet")
    table = read_redshift_catalog(tmp_path / "n.parquet")
    assert table.dropped == {"dec outside [-90, 90] deg": 1, "z < -0.01": 1}
    assert table.frame["z"].tolist() == [-0.005, 0.2] and table.frame["id"].tolist() == [0, 3]  # ids: file rows
    with pytest.raises(BadRowsError, match=r"1 row\(s\) with dec outside"):
        read_redshift_catalog(tmp_path / "n.parquet", bad_rows="fail")
    frame["z"] = -1.0
    frame.to_parquet(tmp_path / "all.parquet")
    with pytest.raises(CatalogError, match="no valid rows: all 4 were dropped"):
        read_redshift_catalog(tmp_path / "all.parquet")


def test_keep_columns_unknown_name(desi):
    path, _ = desi
    table = read_redshift_catalog(path)
    assert table.kept_columns(["ZWARN", "EBV"]) == ["id", "ra", "dec", "z", "z_err", "z_flag", "z_flag_raw", "EBV"]
    assert len(table.kept_columns("all")) == len(table.frame.columns)
    with pytest.raises(ConfigError, match="redshift_catalog.keep_columns: unknown column 'SPECTYP'"):
        table.kept_columns(["SPECTYP"])


def test_duplicate_ids_name_rows_of_the_file(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b", "c", "b"], "ra": [1.0, np.nan, 1.0, 1.0], "dec": 0.0, "z": 0.1})
    frame.loc[4] = ["c", 2.0, 0.0, 0.2]
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(CatalogError, match=r"1 id value\(s\) occur more than once, e.g. 'c' \(rows 2, 4\);"):
        read_redshift_catalog(tmp_path / "d.csv")  # row 1 (a bad row, dropped) no longer counts


def test_a_convention_off_the_scale_is_refused(tmp_path, registered_plugin):
    class Plugin:
        @tsm_core.hookimpl
        def tsm_redshift_conventions(self):
            return [tsm_core.RedshiftConvention(name="five", description="x", homogenize=lambda t: t["z_flag"] + 4)]

    pd.DataFrame({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "z": [0.1, 0.2], "z_flag": [0, 1]}).to_parquet(
        tmp_path / "f.parquet"
    )
    registered_plugin(Plugin(), "test-five")
    with pytest.raises(
        CatalogError, match=r"convention 'five' gave z_flag values off the scale \[0, 1, 2, 3, 4, 6\]: \[5.0\]"
    ):
        read_redshift_catalog(tmp_path / "f.parquet", convention="five")
