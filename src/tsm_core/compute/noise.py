"""The one place where known-noisy warnings of our dependencies are silenced.

Each filter names the library, the message and why it is safe to hide, so that a new
or different warning still reaches the user.
"""

from __future__ import annotations

import warnings

#: (category, message regex, module regex, why it is harmless here)
KNOWN_NOISE: tuple[tuple[type[Warning], str, str, str], ...] = (
    (
        FutureWarning,
        ".*",
        r"(lsdb|hats|nested_pandas)(\..*)?$",
        "API deprecations inside LSDB/HATS that we do not call directly",
    ),
    (
        DeprecationWarning,
        ".*",
        r"(lsdb|hats|nested_pandas)(\..*)?$",
        "pandas 3 deprecations (Pandas4Warning: inplace=, chained_assignment) raised by LSDB's own code",
    ),
    (
        UserWarning,
        r".*[Pp]yarrow.*dtype.*",
        r"(pandas|nested_pandas)(\..*)?$",
        "pandas notes about pyarrow-backed dtypes that we convert explicitly",
    ),
    (
        RuntimeWarning,
        r"from_dataframe is not intended for large datasets",
        r"lsdb(\..*)?$",
        "we load the redshift catalog (at most a few million rows) with from_dataframe on purpose",
    ),
    (
        Warning,
        r"Configuration file not found",
        r"dustmaps(\..*)?$",
        "dustmaps wants ~/.dustmapsrc; we always give it explicit map paths",
    ),
    (
        RuntimeWarning,
        r".*(invalid value|divide by zero).*",
        r"(dask|pandas)(\..*)?$",
        "NaN fluxes in empty partitions; magnitudes are set to NaN on purpose",
    ),
)


def quiet_known_warnings() -> None:
    """Install the filters of :data:`KNOWN_NOISE` (idempotent)."""
    for category, message, module, _why in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
