"""The configuration of a run: what a user fills in the Photo-z Server form.

Read from YAML, a dict or built directly; unknown keys and invalid values are refused
with the dotted key path named (see :func:`load_config`). The package holds
:mod:`~tsm_core.config.models` (the pydantic models), :mod:`~tsm_core.config.files`
(bounded YAML reading, ``--set`` overrides, relative paths, :func:`tsm_home`) and
:mod:`~tsm_core.config.load` (:func:`load_config`); their public names are re-exported here.
"""

from tsm_core.columns import CANONICAL_REDSHIFT_COLUMNS, REQUIRED_REDSHIFT_COLUMNS
from tsm_core.config.files import (
    MAX_YAML_ALIAS_NODES,
    MAX_YAML_BYTES,
    PATH_KEYS,
    apply_overrides,
    load_yaml,
    parse_value,
    read_config_file,
    read_yaml,
    resolve_paths,
    tsm_home,
)
from tsm_core.config.load import load_config
from tsm_core.config.models import (
    LOCAL_SCHEDULERS,
    MAX_FILTERS,
    MAX_K,
    MAX_REDSHIFT_CATALOGS,
    MAX_SOM_CELLS,
    MIN_MEMORY_LIMIT,
    SPLIT_METHODS,
    WORKERS_PER_CPU,
    ComputeConfig,
    CrossmatchConfig,
    FiltersConfig,
    ObjectCatalogConfig,
    OutputConfig,
    RedshiftCatalogConfig,
    RepresentativenessConfig,
    RunConfig,
    SplitConfig,
)

__all__ = [
    "CANONICAL_REDSHIFT_COLUMNS",
    "LOCAL_SCHEDULERS",
    "MAX_FILTERS",
    "MAX_K",
    "MAX_REDSHIFT_CATALOGS",
    "MAX_SOM_CELLS",
    "MAX_YAML_ALIAS_NODES",
    "MAX_YAML_BYTES",
    "MIN_MEMORY_LIMIT",
    "PATH_KEYS",
    "REQUIRED_REDSHIFT_COLUMNS",
    "SPLIT_METHODS",
    "WORKERS_PER_CPU",
    "ComputeConfig",
    "CrossmatchConfig",
    "FiltersConfig",
    "ObjectCatalogConfig",
    "OutputConfig",
    "RedshiftCatalogConfig",
    "RepresentativenessConfig",
    "RunConfig",
    "SplitConfig",
    "apply_overrides",
    "load_config",
    "load_yaml",
    "parse_value",
    "read_config_file",
    "read_yaml",
    "resolve_paths",
    "tsm_home",
]
