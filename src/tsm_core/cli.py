"""The ``tsm`` command line."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from tsm_core import plugins
from tsm_core.config import tsm_home
from tsm_core.errors import TSMError


class TSMGroup(click.Group):
    """Turns expected errors into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except Exception as exc:  # noqa: BLE001 - the last line of defence of the CLI
            if ctx.obj and ctx.obj.get("debug"):
                raise
            kind = "" if isinstance(exc, TSMError) else f"{type(exc).__name__}: "
            click.echo(f"Error: {kind}{exc}", err=True)
            if not isinstance(exc, TSMError):
                click.echo("(run `tsm --debug ...` for the traceback)", err=True)
            ctx.exit(1)


def _setup_logging(verbosity: int) -> None:
    """Send the log lines of the core and of every installed plugin to stderr."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tsm: %(message)s"))
    packages = {"tsm_core"} | {
        (getattr(p, "__name__", None) or type(p).__module__).split(".")[0]
        for p in plugins.get_plugin_manager().get_plugins()
    }
    for failure in plugins.load_failures():
        click.echo(f"tsm: warning: plugin {failure.name!r} ({failure.distribution}) is left out: {failure.error}", err=True)
    for name in packages:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


@click.group(cls=TSMGroup)
@click.option("--debug", is_flag=True, help="Show the full traceback of errors.")
@click.option("-v", "--verbose", count=True, help="More log lines.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="tsm-core")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, quiet: bool) -> None:
    """Training Set Maker: photo-z training sets from spectroscopic redshifts x Rubin Objects."""
    from tsm_core.noise import quiet_known_warnings

    quiet_known_warnings()
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    _setup_logging(-1 if quiet else verbose)


class _Bar:
    """A tqdm progress bar over partitions, fed by the run's progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=stage, unit="partition", file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_and_report(config: Any, overrides: list[str], progress: bool | None) -> Any:
    from tsm_core.pipeline import run

    bar = _Bar(sys.stderr.isatty() if progress is None else progress)
    try:
        result = run(config, overrides=overrides, progress=bar)
    finally:
        bar.close()
    click.echo(f"Training set {result.product_id}: {result.n_rows} rows -> {result.output_path}")
    from tsm_core.funnel import Funnel

    for line in Funnel.from_dict(result.funnel).lines():
        click.echo(f"  {line}")
    rep = result.provenance.get("representativeness") or {}
    if rep.get("empty_cell_fraction") is not None:
        click.echo(f"  representativeness: {100 * rep['empty_cell_fraction']:.1f}% of the photometric sample in SOM cells "
                   f"without a training object; weights median {rep.get('weights', {}).get('median', float('nan')):.3g}"
                   f" ({rep['n_training_used']} of {rep['n_training']} rows weighted)")
    return result


@cli.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. crossmatch.radius_arcsec=0.5")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--scheduler", help="compute.scheduler: threads, processes, or a Dask scheduler address.")
@click.option("--n-workers", type=int, help="compute.n_workers")
@click.option("--memory-limit", help="compute.memory_limit per worker, e.g. 4GB")
def run_command(config: str, overrides: tuple[str, ...], progress: bool | None, scheduler: str | None,
                n_workers: int | None, memory_limit: str | None) -> None:
    """Build a training set from a YAML CONFIG."""
    extra = list(overrides)
    for key, value in (("scheduler", scheduler), ("n_workers", n_workers), ("memory_limit", memory_limit)):
        if value is not None:
            extra.append(f"compute.{key}={value}")
    _run_and_report(config, extra, progress)


@cli.command()
def catalogs() -> None:
    """List the installed object catalogs (releases) and their flux types."""
    home = tsm_home()
    for name, cat in plugins.object_catalogs().items():
        click.echo(f"{name}: {cat.description}")
        click.echo(f"  location: {cat.resolve_path(None, home)}" + (f" (or ${cat.env_var})" if cat.env_var else ""))
        for known in cat.known_locations:
            click.echo(f"  known location: {known}")
        for flux in plugins.flux_types(cat).values():
            mark = " (default)" if flux.default else ""
            click.echo(f"  - {flux.name}{mark}: {flux.description}")


@cli.command("plugins")
def plugins_command() -> None:
    """List every plugin: its distribution, version and hooks, or why it was left out."""
    for p in plugins.plugin_report():
        version = f" {p.version}" if p.version else ""
        if p.error:
            click.echo(f"{p.name} ({p.distribution}{version}): NOT LOADED: {p.error}")
        else:
            click.echo(f"{p.name} ({p.distribution}{version}): {', '.join(p.hooks)}")


@cli.command()
def formats() -> None:
    """List the installed output formats."""
    from tsm_core.service import format_listing

    for f in format_listing():
        click.echo(f"{f.name} (.{f.extension}): {f.description}")


@cli.command()
@click.option("--dust-maps-dir", type=click.Path(file_okay=False), help="Where the maps are (default: $TSM_DUSTMAPS_DIR or dustmaps' data_dir).")
def dereddeners(dust_maps_dir: str | None) -> None:
    """List the installed dereddeners and whether their map files are present."""
    from tsm_core.dust import resolve_maps_dir
    from tsm_core.service import dereddener_listing

    maps = resolve_maps_dir(dust_maps_dir)
    for d in dereddener_listing(maps):
        state = "" if d.name in ("none", "catalog") else " [files present]" if d.files_present \
            else f" [MISSING: {', '.join(d.missing_files)}]"
        click.echo(f"{d.name}: {d.description}{state}")
    click.echo(f"(dust maps folder: {maps})")


@cli.command()
@click.argument("release")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Directory (default: $TSM_HOME/samples/RELEASE).")
@click.option("--objects", "n_objects", type=click.IntRange(100), default=20_000, show_default=True)
@click.option("--redshifts", "n_redshifts", type=click.IntRange(10), default=2_000, show_default=True)
@click.option("--seed", type=int, default=20250630, show_default=True)
def sample(release: str, out_dir: str | None, n_objects: int, n_redshifts: int, seed: int) -> None:
    """Write a synthetic sample of RELEASE: a HATS object catalog and a redshift catalog."""
    from tsm_core.sample import make_sample

    cat = plugins.object_catalog(release)
    if cat.sample is None:
        raise TSMError(f"release {release!r} has no sample generator")
    paths = make_sample(cat, Path(out_dir) if out_dir else cat.sample_dir(tsm_home()), n_objects, n_redshifts, seed)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


@cli.command()
@click.option("--release", default="dp1", show_default=True)
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="parquet", show_default=True)
@click.option("--progress/--no-progress", default=None)
def demo(release: str, out_dir: str, fmt: str, progress: bool | None) -> None:
    """Build the sample (once, under $TSM_HOME) and run a training set on it."""
    from tsm_core.sample import make_sample

    cat = plugins.object_catalog(release)
    paths = make_sample(cat, cat.sample_dir(tsm_home()))
    config = {
        "name": f"demo {release}",
        "description": f"demo training set on the synthetic {release} sample",
        "redshift_catalog": {"path": str(paths["redshifts"])},
        "object_catalog": {
            "release": release,
            "path": str(paths["objects"]),
            "dereddening": "catalog" if cat.ebv_column else "none",
            "convert_to_magnitudes": True,
        },
        "crossmatch": {"radius_arcsec": 1.0, "n_neighbors": 1},
        "output": {"format": fmt, "directory": out_dir},
    }
    result = _run_and_report(config, [], progress)
    median = result.median_separation_arcsec
    click.echo(
        f"{result.n_redshifts} redshifts, {result.n_matched} matched within 1 arcsec"
        + (f", median separation {median:.3f} arcsec" if median is not None else "")
    )


@cli.group()
def redshift() -> None:
    """Registered redshift catalogs."""


@redshift.command("register")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True))
@click.option("--columns", help="Column mapping, e.g. ra=TARGET_RA,dec=TARGET_DEC,z=Z,id=TARGETID")
@click.option("--description", default="")
def redshift_register(name: str, file: str, columns: str | None, description: str) -> None:
    """Validate FILE and register it as redshift catalog NAME."""
    from tsm_core.catalogs import parse_column_mapping, register_redshift_catalog

    try:
        mapping = parse_column_mapping(columns)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--columns") from None
    record = register_redshift_catalog(name, file, mapping, description)
    click.echo(f"registered {record.name!r} (id {record.id}): {record.n_rows} rows from {record.path}")


@redshift.command("list")
def redshift_list() -> None:
    """List the registered redshift catalogs."""
    from tsm_core.registry import Registry

    for rec in Registry.at_home(tsm_home()).redshift_catalogs():
        click.echo(f"{rec.id}\t{rec.name}\t{rec.n_rows} rows\t{rec.path}\t{json.dumps(rec.columns)}")


@cli.group()
def products() -> None:
    """Training sets built so far."""


@products.command("list")
@click.option("--search", help="Only names containing this text.")
def products_list(search: str | None) -> None:
    """List training sets, newest first."""
    from tsm_core.registry import Registry

    for p in Registry.at_home(tsm_home()).products(search=search):
        rows = "" if p.n_rows is None else f"{p.n_rows} rows"
        click.echo(f"{p.id}\t{p.name}\t{p.status}\t{rows}\t{p.created_at}\t{p.output_path or p.error or ''}")


@products.command("show")
@click.argument("product_id", type=int)
def products_show(product_id: int) -> None:
    """Show a training set, with the config that re-runs it."""
    import yaml

    from tsm_core.registry import Registry

    p = Registry.at_home(tsm_home()).product(product_id)
    click.echo(f"ID: {p.id}\nname: {p.name}\ndescription: {p.description}\nstatus: {p.status}")
    click.echo(f"created: {p.created_at}\nfinished: {p.finished_at or ''}\nrows: {p.n_rows if p.n_rows is not None else ''}")
    click.echo(f"output: {p.output_path or ''}")
    if p.error:
        click.echo(f"error: {p.error}")
    if p.provenance and p.provenance.get("funnel"):
        from tsm_core.funnel import Funnel

        for line in Funnel.from_dict(p.provenance["funnel"]).lines():
            click.echo(line)
    click.echo("config (re-run with `tsm run`):")
    click.echo(yaml.safe_dump(p.config, sort_keys=False).rstrip())


@cli.command("report")
@click.argument("product_id", type=int)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, exists=True), help="Directory (default: next to the product file).")
def report_command(product_id: int, out_dir: str | None) -> None:
    """Write the HTML report of training set PRODUCT_ID and the JSON of its numbers."""
    from tsm_core.reports import report

    files = report(product_id, out_dir)
    click.echo(f"report: {files.html}\nnumbers: {files.json}")


@cli.group()
def dustmaps() -> None:
    """Dust map files."""


@dustmaps.command("fetch")
@click.argument("name")
@click.option("--dir", "target", type=click.Path(file_okay=False), help="Where to put the maps (default: $TSM_DUSTMAPS_DIR or dustmaps' data_dir).")
def dustmaps_fetch(name: str, target: str | None) -> None:
    """Download the files of dust map NAME (needs internet)."""
    from tsm_core.dust import DustMapDereddener, resolve_maps_dir

    d = plugins.dereddener(name)
    if not isinstance(d, DustMapDereddener):
        raise TSMError(f"{name!r} has no map files to fetch")
    directory = Path(target) if target else resolve_maps_dir()
    d.fetch(directory)
    click.echo(f"{name}: files in {directory}")


@functools.cache
def get_cli() -> click.Group:
    """The ``tsm`` command with the commands of installed plugins added (once)."""
    plugins.get_plugin_manager().hook.tsm_register_commands(cli=cli)
    return cli


#: Arrow's default mimalloc pool keeps the memory that finished partitions freed, so the
#: peak memory of a run grew with the number of partitions read (941 MB against 607 MB
#: with jemalloc for 20 million objects; 534 MB for 1 million). Arrow reads this variable
#: once, when pyarrow is first imported; a pool the user chose is left alone.
ARROW_POOL = ("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")


def main() -> None:
    """Entry point of the ``tsm`` console script."""
    os.environ.setdefault(*ARROW_POOL)
    get_cli()(obj={})
