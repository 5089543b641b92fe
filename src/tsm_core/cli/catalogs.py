"""The commands that list what is installed (``tsm catalogs``, ``plugins``, ``formats``,
``dereddeners``), fetch dust maps (``tsm dustmaps fetch``) and import an object catalog
(``tsm import``)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from tsm_core import plugins
from tsm_core.cli.progress import progress_option, wants_progress
from tsm_core.cli.signals import raise_on_signals
from tsm_core.config import tsm_home
from tsm_core.errors import TSMError


@click.command()
def catalogs() -> None:
    """List the installed object catalogs (releases): where each is read from, its cut sets
    and its flux types."""
    from tsm_core.service import release_listing

    home = tsm_home()
    for release in release_listing():
        # the listing is what a client sees; the operator also sees where each release is read from
        cat = plugins.object_catalog(release.name)
        click.echo(f"{release.name}: {release.description}")
        found = None if release.backed_by == "nothing" else cat.available(home)
        if found is None or found.synthetic:
            click.echo(
                "  catalog: NONE FOUND" + (f" (synthetic sample built at {found.path}: use --sample)" if found else "")
            )
        else:
            click.echo(f"  catalog: {found.path} ({found.source}{', ' + found.site if found.site else ''})")
        if cat.env_var:
            click.echo(f"  environment variable: ${cat.env_var}" + (" (set)" if os.environ.get(cat.env_var) else ""))
        for place in cat.locations():
            click.echo(f"  location: {place.path}" + (f" ({place.site})" if place.site else ""))
        for preset, cuts in cat.cut_sets.items():
            click.echo(f"  cut set {preset} (filters.preset): {'; '.join(cuts)}")
        for flux in release.flux_types:
            mark = " (default)" if flux.default else ""
            click.echo(f"  - {flux.name}{mark}: {flux.description}")


@click.command("plugins")
def plugins_command() -> None:
    """List every plugin: its distribution, version and hooks, or why it was left out."""
    for p in plugins.plugin_report():
        version = f" {p.version}" if p.version else ""
        if p.error:
            click.echo(f"{p.name} ({p.distribution}{version}): NOT LOADED: {p.error}")
        else:
            click.echo(f"{p.name} ({p.distribution}{version}): {', '.join(p.hooks)}")


@click.command()
def formats() -> None:
    """List the installed output formats."""
    from tsm_core.service import format_listing

    for f in format_listing():
        click.echo(f"{f.name} (.{f.extension}): {f.description}")


@click.command()
@click.option(
    "--dust-maps-dir",
    type=click.Path(file_okay=False),
    help="Where the maps are (default: $TSM_DUSTMAPS_DIR or dustmaps' data_dir).",
)
def dereddeners(dust_maps_dir: str | None) -> None:
    """List the installed dereddeners and whether their map files are present."""
    from tsm_core.science.dust import resolve_maps_dir
    from tsm_core.service import dereddener_listing

    maps = resolve_maps_dir(dust_maps_dir)
    for d in dereddener_listing(maps):
        state = (
            ""
            if d.name in ("none", "catalog")
            else " [files present]"
            if d.files_present
            else f" [MISSING: {', '.join(d.missing_files)}]"
        )
        click.echo(f"{d.name}: {d.description}{state}")
    click.echo(f"(dust maps folder: {maps})")


@click.group()
def dustmaps() -> None:
    """Dust map files."""


@dustmaps.command("fetch")
@click.argument("name")
@click.option(
    "--dir",
    "target",
    type=click.Path(file_okay=False),
    help="Where to put the maps (default: $TSM_DUSTMAPS_DIR or dustmaps' data_dir).",
)
def dustmaps_fetch(name: str, target: str | None) -> None:
    """Download the files of dust map NAME (needs internet)."""
    from tsm_core.science.dust import DustMapDereddener, resolve_maps_dir

    d = plugins.dereddener(name)
    if not isinstance(d, DustMapDereddener):
        raise TSMError(f"{name!r} has no map files to fetch")
    directory = Path(target) if target else resolve_maps_dir()
    d.fetch(directory)
    click.echo(f"{name}: files in {directory}")


@click.command("import")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="The collection folder to write."
)
@click.option(
    "--release", default="dp1", show_default=True, help="Whose id, RA and Dec columns and layout the table has."
)
@click.option(
    "--margin",
    "margin_arcsec",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Margin width in arcsec: the largest crossmatch radius the collection allows.",
)
@click.option(
    "--workers", "n_workers", type=click.IntRange(1), default=1, show_default=True, help="Local Dask worker processes."
)
@click.option("--memory-limit", default="auto", show_default=True, help="Memory per worker, e.g. 4GB.")
@click.option(
    "--chunk-rows", type=click.IntRange(1000), default=250_000, show_default=True, help="Rows read at a time."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing collection at --out.")
@progress_option
def import_command(
    inputs: tuple[str, ...],
    out_dir: str,
    release: str,
    margin_arcsec: float,
    n_workers: int,
    memory_limit: str,
    chunk_rows: int,
    overwrite: bool,
    progress: bool | None,
) -> None:
    """Import your own Object table(s) INPUTS (Parquet, FITS, CSV files, folders or globs)
    as a HATS collection with a margin and an id index, for `object_catalog.path`."""
    from tsm_core.catalogs.importer import import_objects

    with raise_on_signals():  # Ctrl-C, SIGTERM: the staging folder is removed, --out is left as it was
        result = import_objects(
            inputs,
            out_dir,
            plugins.object_catalog(release),
            margin_arcsec=margin_arcsec,
            n_workers=n_workers,
            memory_limit=memory_limit,
            chunk_rows=chunk_rows,
            overwrite=overwrite,
            progress=wants_progress(progress),
        )
    click.echo(
        f"{result.path}: {result.n_rows} rows in {result.n_partitions} partitions, "
        f"margin {result.margin_arcsec:g} arcsec ({result.layout.margin}), index {result.layout.index}"
    )
    click.echo(f"use it with: object_catalog: {{release: {release}, path: {result.path}}}")


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    for command in (catalogs, plugins_command, formats, dereddeners, dustmaps, import_command):
        group.add_command(command)
