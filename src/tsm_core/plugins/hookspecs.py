"""Hook specifications of the Training Set Maker.

A plugin is a module (or object) with functions marked ``@tsm_core.hookimpl`` whose names
are the hooks below, registered through the entry-point group ``tsm``::

    [project.entry-points.tsm]
    my_release = "my_release.plugin"

Each ``tsm_*`` hook returns a list of small typed records (see :mod:`tsm_core.plugins.records`);
the plugin manager flattens the lists of all plugins, indexes them by name and refuses
two plugins that claim the same name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from tsm_core.plugins.records import Dereddener, FluxType, ObjectCatalog, RedshiftConvention, Writer

hookspec = pluggy.HookspecMarker("tsm")


@hookspec
def tsm_object_catalogs() -> list[ObjectCatalog]:
    """Object catalogs (data releases) this plugin provides.

    Each :class:`~tsm_core.plugins.records.ObjectCatalog` describes one release: its name
    (``dp1``), where its HATS catalog lives, its id / coordinate columns, bands,
    flux-column naming, flux unit and zero point, extinction coefficients, default
    row filter and E(B-V) column, and a generator of a synthetic sample.
    """


@hookspec
def tsm_flux_types(catalog: ObjectCatalog) -> list[FluxType]:
    """Flux types selectable for ``catalog``.

    Called once per installed release; return ``[]`` for releases you do not know.
    A plugin may add flux types to a release provided by another plugin. Exactly one
    flux type per release should be marked ``default=True``.
    """


@hookspec
def tsm_dereddeners() -> list[Dereddener]:
    """Dereddeners (sources of E(B-V)) this plugin provides, such as a dust map."""


@hookspec
def tsm_writers() -> list[Writer]:
    """Output writers (file formats) this plugin provides.

    A :class:`~tsm_core.plugins.records.Writer` has a ``name`` (``output.format``), an
    ``extension`` and ``open(path, schema, metadata, options)``, which returns a sink that
    takes Arrow tables batch by batch and is closed at the end. Its optional
    ``read(path) -> pandas.DataFrame`` gives the rows of a file it wrote back (used by
    ``tsm report``, ``tsm_core.read`` and the web service; without it they fail saying the
    writer cannot read its files), and ``columns(path)`` lists the column names (by
    default from ``read``).
    """


@hookspec
def tsm_redshift_conventions() -> list[RedshiftConvention]:
    """Redshift-catalog conventions (surveys) this plugin provides.

    Each :class:`~tsm_core.plugins.records.RedshiftConvention` knows a survey's column names
    (``TARGET_RA`` for ``ra``, ...), the columns that identify its catalogs, the extra
    columns worth keeping, and how to derive the homogenized ``z_flag`` (0 no redshift,
    1 <70 %, 2 70-90 %, 3 90-99 %, 4 >99 % confidence, 6 star) from the survey's own
    flag, which is kept as ``z_flag_raw``. Chosen with ``redshift_catalog.convention``,
    or detected from a catalog's columns.
    """


@hookspec
def tsm_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``tsm`` command line (for example ``tsm serve``)."""
