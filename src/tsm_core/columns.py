"""Column names the Training Set Maker writes or relies on, spelled once.

Output columns that a user sees (``_dist_arcsec``, ``weight``, the canonical redshift
columns) are a contract; the internal ones (``_zrow``) never reach a file. Every module
that names one of these columns imports it from here.
"""

from __future__ import annotations

#: canonical redshift columns, in output order; a file's own names map onto these
CANONICAL_REDSHIFT_COLUMNS: tuple[str, ...] = ("id", "ra", "dec", "z", "z_err", "z_flag", "survey")
#: the canonical columns every redshift catalog must provide
REQUIRED_REDSHIFT_COLUMNS: tuple[str, ...] = ("ra", "dec", "z")
#: the redshift catalog of each row, in a run with several (its label, registered name or file stem)
CATALOG_COLUMN = "catalog"
#: angular distance between a redshift and its matched object, as LSDB names it
DIST_COLUMN = "_dist_arcsec"
#: the ambiguity of a match (see tsm_core.science.crossmatch): objects within the radius of
#: the redshift, separation of the second-nearest of them, chance-coincidence probability
N_CANDIDATES_COLUMN = "n_candidates"
SECOND_DIST_COLUMN = "second_dist_arcsec"
P_CHANCE_COLUMN = "p_chance"
AMBIGUITY_COLUMNS: tuple[str, ...] = (N_CANDIDATES_COLUMN, SECOND_DIST_COLUMN, P_CHANCE_COLUMN)
#: the k-nearest-neighbour representativeness weight of a training row
WEIGHT_COLUMN = "weight"
#: E(B-V) at the object position, as the releases that carry it name it
EBV_COLUMN = "ebv"
#: internal row number of the redshift catalog; used for selection, never written
ZROW_COLUMN = "_zrow"
