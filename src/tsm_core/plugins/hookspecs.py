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

    For example (a release on the Rubin Object table's conventions)::

        @tsm_core.hookimpl
        def tsm_object_catalogs():
            return [tsm_core.ObjectCatalog(
                name="my_survey", description="My survey's Object table",
                extinction_coefficients={"g": 3.6, "r": 2.6, "i": 1.9}, extinction_source="my paper",
                bands=("g", "r", "i"), env_var="TSM_MY_SURVEY_PATH", default_path="/data/my_survey/hats",
            )]
    """


@hookspec
def tsm_flux_types(catalog: ObjectCatalog) -> list[FluxType]:
    """Flux types selectable for ``catalog``.

    Called once per installed release; return ``[]`` for releases you do not know.
    A plugin may add flux types to a release provided by another plugin. Exactly one
    flux type per release should be marked ``default=True``.

    For example::

        @tsm_core.hookimpl
        def tsm_flux_types(catalog):
            if catalog.name != "my_survey":
                return []
            return [tsm_core.FluxType("cModel", "composite model fluxes", default=True),
                    tsm_core.FluxType("psf", "PSF fluxes")]
    """


@hookspec
def tsm_dereddeners() -> list[Dereddener]:
    """Dereddeners (sources of E(B-V)) this plugin provides, such as a dust map.

    For example (E(B-V) from a column of the object catalog; ``source`` returns a picklable
    callable, ``None`` for no dereddening)::

        class ColumnEBV:
            def __call__(self, ra, dec, frame):
                return frame["my_ebv"].to_numpy(dtype=float)

        class MyEBV(tsm_core.Dereddener):
            name, description = "my_ebv", "E(B-V) from the column my_ebv"

            def required_columns(self, catalog):
                return ["my_ebv"]

            def source(self, catalog, maps_dir):
                return ColumnEBV()

        @tsm_core.hookimpl
        def tsm_dereddeners():
            return [MyEBV()]
    """


@hookspec
def tsm_writers() -> list[Writer]:
    """Output writers (file formats) this plugin provides.

    A :class:`~tsm_core.plugins.records.Writer` has a ``name`` (``output.format``), an
    ``extension`` and ``open(path, schema, metadata, options)``, which returns a sink that
    takes Arrow tables batch by batch (``.write(arrow_table)``, then ``.close()``); the core
    moves the finished file into place. Its optional ``read(path) -> pandas.DataFrame`` gives
    the rows of a file it wrote back (used by ``tsm report``, ``tsm_core.read`` and the web
    service; without it they fail saying the writer cannot read its files), and
    ``columns(path)`` lists the column names (by default from ``read``). For example::

        class VOTableWriter(tsm_core.Writer):
            name, extension, description = "votable", "xml", "IVOA VOTable"

            def open(self, path, schema, metadata, options):
                return MySink(path, schema, metadata)

            def read(self, path):
                return Table.read(path, format="votable").to_pandas()

        @tsm_core.hookimpl
        def tsm_writers():
            return [VOTableWriter()]
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

    For example::

        @tsm_core.hookimpl
        def tsm_redshift_conventions():
            return [tsm_core.RedshiftConvention(
                name="sdss", description="SDSS specObj",
                columns={"id": "SPECOBJID", "ra": "PLUG_RA", "dec": "PLUG_DEC", "z": "Z", "z_flag": "ZWARNING"},
                detect=("SPECOBJID", "PLUG_RA", "ZWARNING"),
                homogenize=lambda t: np.where(t["z_flag"] == 0, 4, 0),
            )]
    """


@hookspec
def tsm_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``tsm`` command line (for example ``tsm serve``).

    For example::

        @tsm_core.hookimpl
        def tsm_register_commands(cli):
            @cli.command(help="Say hello.")
            @click.argument("name")
            def hello(name):
                click.echo(f"hello {name}")
    """
