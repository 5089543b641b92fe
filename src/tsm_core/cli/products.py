"""``tsm products`` (list, show, cancel, remove, rerun the training sets built so far) and
``tsm report``."""

from __future__ import annotations

from pathlib import Path

import click

from tsm_core.cli.progress import progress_option
from tsm_core.cli.run import run_and_report
from tsm_core.config import tsm_home
from tsm_core.errors import one_line


@click.group()
def products() -> None:
    """Training sets built so far."""


@products.command("list")
@click.option("--search", help="Only names containing this text.")
def products_list(search: str | None) -> None:
    """List training sets, newest first (runs whose process is gone are marked failed first)."""
    from tsm_core.products.recovery import recover_once
    from tsm_core.products.registry import Registry

    registry = Registry.at_home(tsm_home())
    recover_once(registry)
    for p in registry.products(search=search):
        rows = "" if p.n_rows is None else f"{p.n_rows} rows"
        fields = [str(p.id), p.name, p.status, rows, p.created_at, p.output_path or p.error or ""]
        click.echo("\t".join(" ".join(f.split()) for f in fields))  # one line per product, whatever the texts hold


@products.command("cancel")
@click.argument("product_id", type=int)
@click.option("--wait", default=30.0, show_default=True, help="Seconds to wait for the run to stop.")
def products_cancel(product_id: int, wait: float) -> None:
    """Cancel a queued or running training set (its files are removed)."""
    from tsm_core.products.lifecycle import cancel_product
    from tsm_core.products.registry import Registry

    p = cancel_product(Registry.at_home(tsm_home()), product_id, wait=wait)
    if p.status in ("queued", "running"):
        click.echo(f"training set {p.id}: asked to stop; it stops at its next partition")
    else:
        click.echo(f"training set {p.id}: {p.status}" + (f" ({one_line(p.error)})" if p.error else ""))


@products.command("remove")
@click.argument("product_id", type=int)
def products_remove(product_id: int) -> None:
    """Remove a training set that has ended, and its file."""
    from tsm_core.products.lifecycle import remove_product
    from tsm_core.products.registry import Registry

    p = remove_product(Registry.at_home(tsm_home()), product_id)
    click.echo(
        f"removed training set {p.id}" + (f" and {p.output_path}" if p.status == "done" and p.output_path else "")
    )


@products.command("recover")
def products_recover() -> None:
    """Mark failed the queued and running training sets of this host whose process is gone,
    and remove their files (every `tsm` command that lists or runs products does this once)."""
    from tsm_core.products.recovery import recover_interrupted
    from tsm_core.products.registry import Registry

    gone = recover_interrupted(Registry.at_home(tsm_home()))
    click.echo(f"interrupted: {', '.join(map(str, gone))}" if gone else "no interrupted training sets")


@products.command("show")
@click.argument("product_id", type=int)
def products_show(product_id: int) -> None:
    """Show a training set, with the config that re-runs it."""
    import yaml

    from tsm_core.products.recovery import recover_once
    from tsm_core.products.registry import Registry

    registry = Registry.at_home(tsm_home())
    recover_once(registry)
    p = registry.product(product_id)
    click.echo(f"ID: {p.id}\nname: {p.name}\ndescription: {p.description}\nstatus: {p.status}")
    click.echo(
        f"created: {p.created_at}\nfinished: {p.finished_at or ''}\nrows: {p.n_rows if p.n_rows is not None else ''}"
    )
    click.echo(f"output: {p.output_path or ''}")
    split_files = (p.provenance or {}).get("output_files")
    if split_files and p.output_path:  # output.split_files: output is the training file
        click.echo(f"validation output: {Path(p.output_path).parent / split_files['validation']}")
    lost = (p.provenance or {}).get("unmatched")
    if lost and p.output_path:  # output.unmatched: the redshifts the run lost, with the reason
        click.echo(f"unmatched redshifts: {Path(p.output_path).parent / lost['file']} ({lost['rows']} rows)")
    if p.status in ("queued", "running") and p.pid is not None:
        click.echo(f"process: {p.pid} on {p.host}")
    if p.error:
        click.echo(f"error: {p.error}")
    if p.provenance and p.provenance.get("funnel"):
        from tsm_core.pipeline.funnel import Funnel

        for line in Funnel.from_dict(p.provenance["funnel"]).lines():
            click.echo(line)
    click.echo("config (re-run with `tsm run`):")
    click.echo(yaml.safe_dump(p.config, sort_keys=False).rstrip())


@products.command("rerun")
@click.argument("product_id", type=int)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key of the stored config.")
@progress_option
def products_rerun(product_id: int, overrides: tuple[str, ...], progress: bool | None) -> None:
    """Build training set PRODUCT_ID again from its stored config, as a new product."""
    from tsm_core.pipeline.main import product_config

    run_and_report(product_config(product_id), list(overrides), progress)


@click.command("report")
@click.argument("product_id", type=int)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, exists=True),
    help="Directory (default: next to the product file).",
)
def report_command(product_id: int, out_dir: str | None) -> None:
    """Write the HTML report of training set PRODUCT_ID and the JSON of its numbers."""
    from tsm_core.reports import report

    files = report(product_id, out_dir)
    click.echo(f"report: {files.html}\nnumbers: {files.json}")


def register(group: click.Group) -> None:
    """Add ``tsm products`` and ``tsm report`` to ``group``."""
    for command in (products, report_command):
        group.add_command(command)
