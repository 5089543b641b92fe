"""The ``tsm`` command line."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tsm_core import plugins
from tsm_core.config import tsm_home
from tsm_core.errors import RunCancelled, TSMError, one_line
from tsm_core.plugins.records import SAMPLE_PATH

if TYPE_CHECKING:
    from tsm_core.plugins.records import ObjectCatalog

T = TypeVar("T")


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
            # the full text (a FITSIO dump, an HDF5 stack) goes to the log; the user gets one line
            logging.getLogger("tsm_core").debug("full error:", exc_info=exc)
            kind = "" if isinstance(exc, TSMError) else f"{type(exc).__name__}: "
            click.echo(f"Error: {kind}{one_line(exc)}", err=True)
            if not isinstance(exc, TSMError):
                click.echo("(run `tsm --debug ...` for the traceback)", err=True)
            code = _STOPPED.get(getattr(exc, "signal", None), 1) if isinstance(exc, RunCancelled) else 1
            ctx.exit(code)


#: exit status of a run stopped by a signal (128 + its number, as a shell reports it)
_STOPPED = {signal.SIGINT: 130, signal.SIGTERM: 143}


@contextmanager
def _stop_on_signals() -> Iterator[Any]:
    """A cancel token that SIGINT (Ctrl-C) and SIGTERM (``kill``, SLURM's ``scancel``,
    ``timeout``) set, so that a run stops at its next partition, removes its files and
    records its product cancelled (SIGINT) or failed (SIGTERM). A second signal stops
    the process at once (the next `tsm products` listing cleans up). Only the CLI does this:
    the library installs no signal handler."""
    from tsm_core.products.cancel import CancelToken

    token = CancelToken()
    token.signal = None  # type: ignore[attr-defined]
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handler(signum: int, _frame: Any) -> None:
        if token.is_set():  # asked twice: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        name = signal.Signals(signum).name
        token.signal = signum  # type: ignore[attr-defined]
        if signum == signal.SIGINT:
            token.cancel(f"cancelled by Ctrl-C ({name})", "cancelled")
        else:
            token.cancel(f"interrupted by {name}", "failed")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield token
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _guard_warning_display() -> None:
    """Drop the known noise (:data:`tsm_core.compute.noise.KNOWN_NOISE`) where warnings are shown.

    The filters alone are not enough when runs compute in threads: libraries wrap code
    in ``warnings.catch_warnings()``, which is not thread-safe, and an interleaving can
    leave a ``simplefilter("always")`` of one thread in force for good; eight runs at
    once then printed thousands of Pandas4Warning lines each. The CLI owns its process,
    so it also checks at display time."""
    import re
    import warnings

    from tsm_core.compute.noise import KNOWN_NOISE

    rules = [(category, re.compile(message), re.compile(module)) for category, message, module, _ in KNOWN_NOISE]
    shown = warnings.showwarning
    if getattr(shown, "tsm_guard", False):
        return

    def showwarning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                    line: str | None = None) -> None:
        module = _module_of(filename)
        text = str(message)
        if any(issubclass(category, c) and m.match(text) and mod.match(module) for c, m, mod in rules):
            return
        shown(message, category, filename, lineno, file, line)

    showwarning.tsm_guard = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def _module_of(filename: str) -> str:
    """``.../site-packages/lsdb/catalog/x.py`` -> ``lsdb.catalog.x``."""
    parts = Path(filename).with_suffix("").parts
    for marker in ("site-packages", "dist-packages", "src"):
        if marker in parts:
            parts = parts[len(parts) - parts[::-1].index(marker):]
            break
    return ".".join(parts)


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
    from tsm_core.compute.noise import quiet_known_warnings

    quiet_known_warnings()
    _guard_warning_display()
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


def _interruptible(work: Callable[[], T], cancel: Any) -> T:
    """``work()`` in a helper thread while this one waits for it or for ``cancel``: a
    signal stops planning within a fraction of a second even when planning is blocked
    in C code (a hung file system, a pipe), which Python's signal handlers cannot reach.
    Planning registers and writes nothing, so there is nothing to clean up when the
    process leaves the helper behind."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc

    helper = threading.Thread(target=target, name="tsm-plan", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.1)
        if cancel.is_set():
            raise RunCancelled(cancel.reason, cancel.status)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _run_and_report(config: Any, overrides: list[str], progress: bool | None) -> Any:
    from tsm_core.pipeline.main import execute, prepare

    bar = _Bar(sys.stderr.isatty() if progress is None else progress)
    try:
        with _stop_on_signals() as cancel:
            try:
                plan = _interruptible(lambda: prepare(config, overrides), cancel)
                result = execute(plan, progress=bar, cancel=cancel)
            except RunCancelled as exc:
                exc.signal = getattr(cancel, "signal", None)  # type: ignore[attr-defined]
                raise
    finally:
        bar.close()
    click.echo(f"Training set {result.product_id}: {result.n_rows} rows -> {result.output_path}")
    if result.convention:
        click.echo(f"  redshift convention: {result.convention}")
    for reason, count in result.dropped.items():
        click.echo(f"  redshift catalog: dropped {count} rows with {reason}")
    if result.output_paths.get("validation"):
        click.echo(f"  validation rows -> {result.output_paths['validation']}")
    from tsm_core.pipeline.funnel import Funnel

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
@click.option("--sample", is_flag=True, help="Use the release's SYNTHETIC sample (built if needed) as the object catalog.")
def run_command(config: str, overrides: tuple[str, ...], progress: bool | None, scheduler: str | None,
                n_workers: int | None, memory_limit: str | None, sample: bool) -> None:
    """Build a training set from a YAML CONFIG."""
    extra = list(overrides)
    if sample:
        from tsm_core.config import load_config

        release = plugins.object_catalog(load_config(config, extra).object_catalog.release)
        if not release.sample_objects(tsm_home()).exists():
            _build_sample(release, None)
        extra.append(f"object_catalog.path={SAMPLE_PATH}")
    for key, value in (("scheduler", scheduler), ("n_workers", n_workers), ("memory_limit", memory_limit)):
        if value is not None:
            extra.append(f"compute.{key}={value}")
    _run_and_report(config, extra, progress)


@cli.command()
def catalogs() -> None:
    """List the installed object catalogs (releases): where each is read from, its cut sets
    and its flux types."""
    home = tsm_home()
    for name, cat in plugins.object_catalogs().items():
        click.echo(f"{name}: {cat.description}")
        found = cat.available(home)
        if found is None or found.synthetic:
            click.echo("  catalog: NONE FOUND" + (f" (synthetic sample built at {found.path}: use --sample)" if found else ""))
        else:
            click.echo(f"  catalog: {found.path} ({found.source}{', ' + found.site if found.site else ''})")
        if cat.env_var:
            click.echo(f"  environment variable: ${cat.env_var}" + (" (set)" if os.environ.get(cat.env_var) else ""))
        for place in cat.locations():
            click.echo(f"  location: {place.path}" + (f" ({place.site})" if place.site else ""))
        for preset, cuts in cat.cut_sets.items():
            click.echo(f"  cut set {preset} (filters.preset): {'; '.join(cuts)}")
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
    from tsm_core.science.dust import resolve_maps_dir
    from tsm_core.service import dereddener_listing

    maps = resolve_maps_dir(dust_maps_dir)
    for d in dereddener_listing(maps):
        state = "" if d.name in ("none", "catalog") else " [files present]" if d.files_present \
            else f" [MISSING: {', '.join(d.missing_files)}]"
        click.echo(f"{d.name}: {d.description}{state}")
    click.echo(f"(dust maps folder: {maps})")


def _sample_size(command: Any) -> Any:
    """The ``--objects`` and ``--redshifts`` options of the synthetic sample (``tsm sample``, ``tsm demo``)."""
    command = click.option("--redshifts", "n_redshifts", type=click.IntRange(10), default=2_000, show_default=True,
                           help="Redshifts in the sample.")(command)
    return click.option("--objects", "n_objects", type=click.IntRange(100), default=20_000, show_default=True,
                        help="Objects in the sample.")(command)


def _build_sample(
    cat: ObjectCatalog, out_dir: Path | None, n_objects: int = 20_000, n_redshifts: int = 2_000, seed: int = 20250630
) -> dict[str, Path]:
    """Build (or reuse) the synthetic sample of release ``cat`` in ``out_dir`` (default: under $TSM_HOME)."""
    from tsm_core.catalogs.rubin.sample import make_sample

    if cat.sample is None:
        raise TSMError(f"release {cat.name!r} has no synthetic sample")
    return make_sample(cat, out_dir or cat.sample_dir(tsm_home()), n_objects, n_redshifts, seed)


@cli.command()
@click.argument("release")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Directory (default: $TSM_HOME/samples/RELEASE).")
@_sample_size
@click.option("--seed", type=int, default=20250630, show_default=True)
def sample(release: str, out_dir: str | None, n_objects: int, n_redshifts: int, seed: int) -> None:
    """Write a synthetic sample of RELEASE: a HATS object catalog and a redshift catalog."""
    paths = _build_sample(plugins.object_catalog(release), Path(out_dir) if out_dir else None, n_objects, n_redshifts, seed)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


@cli.command()
@click.option("--release", default="dp1", show_default=True)
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="parquet", show_default=True)
@click.option("--progress/--no-progress", default=None)
@_sample_size
def demo(release: str, out_dir: str, fmt: str, progress: bool | None, n_objects: int, n_redshifts: int) -> None:
    """Build the sample (once per size, under $TSM_HOME) and run a training set on it."""
    cat = plugins.object_catalog(release)
    paths = _build_sample(cat, None, n_objects, n_redshifts)
    config = {
        "name": f"demo {release}",
        "description": f"demo training set on the synthetic {release} sample",
        "redshift_catalog": {"path": str(paths["redshifts"])},
        "object_catalog": {
            "release": release,
            "path": SAMPLE_PATH,
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


@cli.command("import")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="The collection folder to write.")
@click.option("--release", default="dp1", show_default=True, help="Whose id, RA and Dec columns and layout the table has.")
@click.option("--margin", "margin_arcsec", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="Margin width in arcsec: the largest crossmatch radius the collection allows.")
@click.option("--workers", "n_workers", type=click.IntRange(1), default=1, show_default=True, help="Local Dask worker processes.")
@click.option("--memory-limit", default="auto", show_default=True, help="Memory per worker, e.g. 4GB.")
@click.option("--chunk-rows", type=click.IntRange(1000), default=250_000, show_default=True, help="Rows read at a time.")
@click.option("--overwrite", is_flag=True, help="Replace an existing collection at --out.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal).")
def import_command(inputs: tuple[str, ...], out_dir: str, release: str, margin_arcsec: float, n_workers: int,
                   memory_limit: str, chunk_rows: int, overwrite: bool, progress: bool | None) -> None:
    """Import your own Object table(s) INPUTS (Parquet, FITS, CSV files, folders or globs)
    as a HATS collection with a margin and an id index, for `object_catalog.path`."""
    from tsm_core.catalogs.importer import import_objects

    result = import_objects(
        inputs, out_dir, plugins.object_catalog(release), margin_arcsec=margin_arcsec, n_workers=n_workers,
        memory_limit=memory_limit, chunk_rows=chunk_rows, overwrite=overwrite,
        progress=sys.stderr.isatty() if progress is None else progress,
    )
    click.echo(f"{result.path}: {result.n_rows} rows in {result.n_partitions} partitions, "
               f"margin {result.margin_arcsec:g} arcsec ({result.layout.margin}), index {result.layout.index}")
    click.echo(f"use it with: object_catalog: {{release: {release}, path: {result.path}}}")


@cli.group()
def redshift() -> None:
    """Registered redshift catalogs."""


@redshift.command("register")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True))
@click.option("--columns", help="Column mapping, e.g. ra=TARGET_RA,dec=TARGET_DEC,z=Z,id=TARGETID")
@click.option("--convention", help="Survey convention (tsm redshift conventions); detected from the columns if not given.")
@click.option("--bad-rows", type=click.Choice(["drop", "fail"]), default="drop", show_default=True,
              help="Drop (and count) or refuse rows with bad coordinates or redshifts.")
@click.option("--delimiter", help="CSV delimiter (sniffed if not given).")
@click.option("--description", default="")
def redshift_register(name: str, file: str, columns: str | None, convention: str | None, bad_rows: str,
                      delimiter: str | None, description: str) -> None:
    """Validate FILE and register a normalized copy of it as redshift catalog NAME."""
    from tsm_core.redshifts.registration import parse_column_mapping, register_redshift_catalog

    try:
        mapping = parse_column_mapping(columns)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--columns") from None
    record = register_redshift_catalog(name, file, mapping, description, convention=convention, bad_rows=bad_rows,
                                       delimiter=delimiter)
    click.echo(f"registered {record.name!r} (id {record.id}): {record.n_rows} rows from {record.source_path}, "
               f"convention {record.convention}")
    for reason, count in record.dropped.items():
        click.echo(f"  dropped {count} rows with {reason}")


@redshift.command("list")
def redshift_list() -> None:
    """List the registered redshift catalogs (with their owner: a user of ``tsm serve``, or
    ``official``; names are unique per owner)."""
    from tsm_core.products.registry import Registry

    for rec in Registry.at_home(tsm_home()).redshift_catalogs():
        click.echo(f"{rec.id}\t{rec.name}\t{rec.owner or 'official'}\t{rec.n_rows} rows\t{rec.convention or ''}"
                   f"\t{rec.source_path or rec.path}\t{json.dumps(rec.columns)}")


@redshift.command("show")
@click.argument("key")
def redshift_show(key: str) -> None:
    """Show registered redshift catalog KEY (name or ID): source, convention, rows, columns."""
    from tsm_core.redshifts.registration import stored_table
    from tsm_core.products.registry import Registry

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


@cli.group()
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
    click.echo(f"removed training set {p.id}" + (f" and {p.output_path}" if p.status == "done" and p.output_path else ""))


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
    click.echo(f"created: {p.created_at}\nfinished: {p.finished_at or ''}\nrows: {p.n_rows if p.n_rows is not None else ''}")
    click.echo(f"output: {p.output_path or ''}")
    split_files = (p.provenance or {}).get("output_files")
    if split_files and p.output_path:  # output.split_files: output is the training file
        click.echo(f"validation output: {Path(p.output_path).parent / split_files['validation']}")
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
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def products_rerun(product_id: int, overrides: tuple[str, ...], progress: bool | None) -> None:
    """Build training set PRODUCT_ID again from its stored config, as a new product."""
    from tsm_core.pipeline.main import product_config

    _run_and_report(product_config(product_id), list(overrides), progress)


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
    from tsm_core.science.dust import DustMapDereddener, resolve_maps_dir

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
