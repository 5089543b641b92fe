"""``tsm redshift``: register, list, show and remove redshift catalogs; list the survey conventions."""

from __future__ import annotations

import json
from contextlib import suppress

import click

from tsm_core import plugins
from tsm_core.cli.progress import progress_option, wants_progress
from tsm_core.cli.signals import raise_on_signals
from tsm_core.config import tsm_home


@click.group()
@click.pass_context
def redshift(ctx: click.Context) -> None:
    """Registered redshift catalogs."""
    from tsm_core.errors import TSMError
    from tsm_core.products.registry import Registry
    from tsm_core.redshifts.registration import sweep_redshift_staging

    if ctx.invoked_subcommand == "conventions" or not (tsm_home() / "registry.sqlite").is_file():
        return
    # what a registration killed by SIGKILL left behind goes when the next `tsm redshift` starts
    with suppress(TSMError):  # an unusable registry: the command itself says so
        sweep_redshift_staging(Registry.at_home(tsm_home()))


@redshift.command("register")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True))
@click.option("--columns", help="Column mapping, e.g. ra=TARGET_RA,dec=TARGET_DEC,z=Z,id=TARGETID")
@click.option(
    "--convention", help="Survey convention (tsm redshift conventions); detected from the columns if not given."
)
@click.option(
    "--bad-rows",
    type=click.Choice(["drop", "fail"]),
    default="drop",
    show_default=True,
    help="Drop (and count) or refuse rows with bad coordinates or redshifts.",
)
@click.option("--delimiter", help="CSV delimiter (sniffed if not given).")
@click.option(
    "--units",
    type=click.Choice(["deg", "rad"]),
    help="Units of ra and dec (deg if not given; a file that looks like radians is refused).",
)
@click.option("--table", help="HDF5 only: the table of a file holding several (e.g. /spec).")
@click.option("--description", default="")
@progress_option
def redshift_register(
    name: str,
    file: str,
    columns: str | None,
    convention: str | None,
    bad_rows: str,
    delimiter: str | None,
    units: str | None,
    table: str | None,
    description: str,
    progress: bool | None,
) -> None:
    """Validate FILE and register a normalized copy of it as redshift catalog NAME."""
    from tsm_core.redshifts.registration import parse_column_mapping, register_redshift_catalog

    try:
        mapping = parse_column_mapping(columns)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--columns") from None
    with raise_on_signals():  # Ctrl-C, SIGTERM: the staged copy is removed, nothing is recorded
        record = register_redshift_catalog(
            name,
            file,
            mapping,
            description,
            convention=convention,
            bad_rows=bad_rows,
            delimiter=delimiter,
            progress=wants_progress(progress),
            units=units,
            table=table,
        )
    click.echo(
        f"registered {record.name!r} (id {record.id}): {record.n_rows} rows from {record.source_path}, "
        f"convention {record.convention}"
    )
    for reason, count in record.dropped.items():
        click.echo(f"  dropped {count} rows with {reason}")


@redshift.command("list")
def redshift_list() -> None:
    """List the registered redshift catalogs (with their owner: a user of ``tsm serve``, or
    ``official``; names are unique per owner)."""
    from tsm_core.products.registry import Registry

    for rec in Registry.at_home(tsm_home()).redshift_catalogs():
        click.echo(
            f"{rec.id}\t{rec.name}\t{rec.owner or 'official'}\t{rec.n_rows} rows\t{rec.convention or ''}"
            f"\t{rec.source_path or rec.path}\t{json.dumps(rec.columns)}"
        )


@redshift.command("show")
@click.argument("key")
def redshift_show(key: str) -> None:
    """Show registered redshift catalog KEY (name or ID): source, convention, rows, columns."""
    from tsm_core.products.registry import Registry
    from tsm_core.redshifts.registration import stored_table

    rec = Registry.at_home(tsm_home()).redshift_catalog(key)
    click.echo(f"ID: {rec.id}\nname: {rec.name}\ndescription: {rec.description}\ncreated: {rec.created_at}")
    click.echo(f"source file: {rec.source_path or rec.path}\nstored copy: {rec.path if rec.source_path else '(none)'}")
    click.echo(f"convention: {rec.convention or ''}\ncolumn mapping: {json.dumps(rec.columns)}\nrows: {rec.n_rows}")
    for reason, count in rec.dropped.items():
        click.echo(f"dropped: {count} rows with {reason}")
    table = stored_table(rec)
    if table is not None:
        click.echo(f"kept by default: {', '.join(table.kept_columns(None))}")
        click.echo(f"all columns: {', '.join(map(str, table.frame.columns))}")


@redshift.command("check")
@click.argument("key")
def redshift_check(key: str) -> None:
    """Verify the stored copy of registered catalog KEY (name or ID): every partition readable,
    the rows as recorded. One line; a damaged copy fails saying how to register it again."""
    from tsm_core.redshifts.registration import check_redshift_catalog

    click.echo(check_redshift_catalog(key))


@redshift.command("remove")
@click.argument("key")
def redshift_remove(key: str) -> None:
    """Unregister redshift catalog KEY (name or ID) and delete its stored copy."""
    from tsm_core.redshifts.registration import remove_redshift_catalog

    rec = remove_redshift_catalog(key)
    click.echo(f"removed {rec.name!r} (id {rec.id})")


@redshift.command("conventions")
def redshift_conventions() -> None:
    """List the installed survey conventions and how each derives the homogenized z_flag."""
    for name, conv in plugins.redshift_conventions().items():
        click.echo(f"{name}: {conv.description}")
        if conv.columns:
            click.echo(f"  columns: {', '.join(f'{k}={v}' for k, v in conv.columns.items())}")
        if conv.detect:
            click.echo(f"  detected by: {', '.join(conv.detect)}")
        if conv.extra_columns:
            click.echo(f"  kept by default: {', '.join(conv.extra_columns)}")
        if conv.rules:
            click.echo(f"  z_flag: {conv.rules}")


def register(group: click.Group) -> None:
    """Add ``tsm redshift`` to ``group``."""
    group.add_command(redshift)
